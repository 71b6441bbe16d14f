#include "node/http/console.h"

#include <string>

namespace tongban {

namespace {

std::string contentTypeFor(const std::string& name) {
  auto ends = [&](const char* ext) {
    const std::string e(ext);
    return name.size() >= e.size() && name.compare(name.size() - e.size(), e.size(), e) == 0;
  };
  if (ends(".html")) return "text/html; charset=utf-8";
  if (ends(".js")) return "text/javascript; charset=utf-8";
  if (ends(".css")) return "text/css; charset=utf-8";
  if (ends(".svg")) return "image/svg+xml";
  if (ends(".png")) return "image/png";
  return "application/octet-stream";
}

HttpResponse redirect(const char* to) {
  HttpResponse res;
  res.status = 302;
  res.content_type = "text/plain; charset=utf-8";
  res.body = std::string("see ") + to + "\n";
  res.headers.emplace_back("Location", to);
  return res;
}

}  // namespace

void registerConsoleRoutes(Router& router) {
  for (size_t i = 0; i < kConsoleFilesCount; ++i) {
    const EmbeddedFile* file = &kConsoleFiles[i];
    const std::string name = file->name;
    const std::string pattern = name == "index.html" ? "/console/" : "/console/" + name;
    router.add("GET", pattern, Access::kPublic, [file, name](const HttpRequest&, const Principal*) {
      HttpResponse res;
      res.content_type = contentTypeFor(name);
      res.body.assign(reinterpret_cast<const char*>(file->data), file->size);
      // The assets change only with the binary: a browser may keep them but must ask again
      // (cheap on a hall LAN) so that an upgraded node never runs yesterday's app.js.
      res.headers.emplace_back("Cache-Control", "no-cache");
      res.headers.emplace_back("X-Content-Type-Options", "nosniff");
      // Only this node's own scripts, styles and API: nothing is ever fetched from elsewhere.
      res.headers.emplace_back("Content-Security-Policy",
                               "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                               "connect-src 'self'; frame-ancestors 'none'");
      return res;
    });
  }
  router.add("GET", "/console", Access::kPublic, [](const HttpRequest&, const Principal*) { return redirect("/console/"); });
  router.add("GET", "/", Access::kPublic, [](const HttpRequest&, const Principal*) { return redirect("/console/"); });
}

}  // namespace tongban
