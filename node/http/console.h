// The web console (node/http/console/): plain HTML, JS and CSS compiled into the binary by
// cmake/embed_files.cmake, so every node serves it from itself, offline, with no CDN. The pages
// only call the node's own JSON API (docs/api.md) from the browser.
#pragma once

#include <cstddef>

#include "node/http/router.h"

namespace tongban {

struct EmbeddedFile {
  const char* name;  // relative to node/http/console/, e.g. "app.js"
  const unsigned char* data;
  size_t size;
};

// Defined in the generated console_assets.cpp.
extern const EmbeddedFile kConsoleFiles[];
extern const size_t kConsoleFilesCount;

// GET /console/ (index.html), /console/<file> for every other embedded file, and redirects from
// / and /console to /console/. All public: the pages hold no data, the API calls they make need
// a log-in.
void registerConsoleRoutes(Router& router);

}  // namespace tongban
