#include "node/http/router.h"

#include <algorithm>
#include <cassert>
#include <exception>
#include <memory>
#include <optional>

#include <spdlog/spdlog.h>

namespace tongban {

namespace {

bool isParam(const std::string& segment) {
  return segment.size() >= 3 && segment.front() == '{' && segment.back() == '}';
}

// "/a/b" → {"a","b"}; "/" → {""}. The caller has checked the leading '/'.
std::vector<std::string> splitPath(const std::string& path) {
  std::vector<std::string> out;
  size_t start = 1;
  while (true) {
    size_t end = path.find('/', start);
    if (end == std::string::npos) {
      out.push_back(path.substr(start));
      return out;
    }
    out.push_back(path.substr(start, end - start));
    start = end + 1;
  }
}

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string toLower(std::string s) {
  for (char& c : s) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return s;
}

// The token of "Authorization: Bearer <token>", or empty.
std::string bearerToken(const HttpRequest& req) {
  auto it = req.headers.find("authorization");
  if (it == req.headers.end()) return {};
  const std::string& value = it->second;
  const std::string scheme = "bearer ";
  if (value.size() <= scheme.size() || toLower(value.substr(0, scheme.size())) != scheme) return {};
  size_t start = value.find_first_not_of(' ', scheme.size());
  size_t end = value.find_last_not_of(" \t");
  if (start == std::string::npos || end < start) return {};
  return value.substr(start, end - start + 1);
}

HttpResponse unauthorizedResponse(const std::string& message) {
  HttpResponse res = jsonError(401, errorCodeName(ErrorCode::kUnauthorized), message);
  res.headers.emplace_back("WWW-Authenticate", "Bearer");
  return res;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Responses

HttpResponse jsonResponse(int status, const nlohmann::json& body) {
  HttpResponse res;
  res.status = status;
  // replace: a stray invalid UTF-8 byte in stored text must not turn a response into a throw.
  res.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return res;
}

HttpResponse jsonError(int status, const std::string& code, const std::string& message) {
  return jsonResponse(status, nlohmann::json{{"error", {{"code", code}, {"message", message}}}});
}

int httpStatusFor(ErrorCode code) {
  switch (code) {
    case ErrorCode::kOk: return 200;
    case ErrorCode::kInvalidArgument:
    case ErrorCode::kMalformed:
    case ErrorCode::kFutureDated: return 400;
    case ErrorCode::kUnauthorized: return 401;
    case ErrorCode::kPermissionDenied: return 403;
    case ErrorCode::kNotFound: return 404;
    case ErrorCode::kAlreadyExists:
    case ErrorCode::kFailedPrecondition: return 409;
    case ErrorCode::kOversize: return 413;
    case ErrorCode::kResourceExhausted: return 429;
    case ErrorCode::kUnavailable:
    case ErrorCode::kNoResponders: return 503;
    case ErrorCode::kTimeout: return 504;
    default: return 500;
  }
}

HttpResponse errorResponse(const Status& status) {
  if (status.isOk()) {
    HttpResponse res;
    res.status = 204;
    return res;
  }
  HttpResponse res = jsonError(httpStatusFor(status.code()), errorCodeName(status.code()), status.message());
  if (status.code() == ErrorCode::kUnauthorized) res.headers.emplace_back("WWW-Authenticate", "Bearer");
  return res;
}

HttpResponse forbidden(const std::string& message) { return jsonError(403, "FORBIDDEN", message); }

// ---------------------------------------------------------------------------------------------
// Decoding

bool percentDecode(const std::string& in, bool plus_is_space, std::string* out) {
  std::string decoded;
  decoded.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '%') {
      if (i + 2 >= in.size()) return false;  // needs two hex digits after it
      int hi = hexValue(in[i + 1]), lo = hexValue(in[i + 2]);
      if (hi < 0 || lo < 0) return false;
      decoded.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      decoded.push_back(' ');
    } else {
      decoded.push_back(c);
    }
  }
  *out = std::move(decoded);
  return true;
}

std::map<std::string, std::string> parseQuery(const std::string& query) {
  std::map<std::string, std::string> out;
  size_t start = 0;
  while (start < query.size()) {
    size_t end = query.find('&', start);
    if (end == std::string::npos) end = query.size();
    std::string pair = query.substr(start, end - start);
    if (!pair.empty()) {
      size_t eq = pair.find('=');
      std::string raw_key = pair.substr(0, eq);
      std::string raw_value = eq == std::string::npos ? std::string() : pair.substr(eq + 1);
      std::string key, value;
      if (!percentDecode(raw_key, true, &key)) key = raw_key;
      if (!percentDecode(raw_value, true, &value)) value = raw_value;
      out[key] = value;
    }
    start = end + 1;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Router

void Router::add(std::string method, std::string pattern, Access access, Handler handler) {
  const bool has_handler = static_cast<bool>(handler);
  assert(has_handler && "a route needs a handler");
  if (!has_handler) return;
  addRoute(Route{std::move(method), std::move(pattern), {}, access, std::move(handler), nullptr});
}

void Router::addAsync(std::string method, std::string pattern, Access access, AsyncHandler handler) {
  const bool has_handler = static_cast<bool>(handler);
  assert(has_handler && "a route needs a handler");
  if (!has_handler) return;
  addRoute(Route{std::move(method), std::move(pattern), {}, access, nullptr, std::move(handler)});
}

void Router::addRoute(Route route) {
  const bool well_formed = !route.pattern.empty() && route.pattern.front() == '/';
  assert(well_formed && "route pattern must start with '/'");
  if (!well_formed) return;
  route.segments = splitPath(route.pattern);
  for (const auto& segment : route.segments) {
    const bool braces = segment.find('{') != std::string::npos || segment.find('}') != std::string::npos;
    const bool ok = !braces || isParam(segment);
    assert(ok && "a route parameter must be a whole segment: /x/{name}/y");
    if (!ok) return;
  }
  for (const auto& existing : routes_) {
    const bool duplicate = existing.method == route.method && existing.segments == route.segments;
    assert(!duplicate && "route added twice");
    if (duplicate) return;
  }
  routes_.push_back(std::move(route));
}

std::variant<Router::Matched, HttpResponse> Router::match(HttpRequest& req, StaffDirectory* staff,
                                                          TimeMs now) const {
  if (req.path.empty() || req.path.front() != '/') {
    return jsonError(400, errorCodeName(ErrorCode::kInvalidArgument), "the request path must start with '/'");
  }
  req.route.clear();
  std::vector<std::string> segments = splitPath(req.path);
  for (auto& segment : segments) {
    if (!percentDecode(segment, false, &segment)) {
      return jsonError(400, errorCodeName(ErrorCode::kInvalidArgument), "malformed %-escape in the path " + req.path);
    }
  }

  // Among the patterns that match, the most specific one with the request's method wins.
  const Route* best = nullptr;
  std::vector<std::string> allowed;
  for (const auto& route : routes_) {
    if (route.segments.size() != segments.size()) continue;
    bool fits = true;
    for (size_t i = 0; i < segments.size() && fits; ++i) {
      fits = isParam(route.segments[i]) || route.segments[i] == segments[i];
    }
    if (!fits) continue;
    if (route.method != req.method) {
      if (std::find(allowed.begin(), allowed.end(), route.method) == allowed.end()) allowed.push_back(route.method);
      continue;
    }
    if (best == nullptr) {
      best = &route;
      continue;
    }
    for (size_t i = 0; i < segments.size(); ++i) {
      const bool best_param = isParam(best->segments[i]), route_param = isParam(route.segments[i]);
      if (best_param == route_param) continue;
      if (best_param) best = &route;
      break;
    }
  }
  if (best == nullptr) {
    if (allowed.empty()) {
      return jsonError(404, errorCodeName(ErrorCode::kNotFound), "no such resource: " + req.path);
    }
    std::string allow;
    for (const auto& m : allowed) allow += (allow.empty() ? "" : ", ") + m;
    HttpResponse res =
        jsonError(405, "METHOD_NOT_ALLOWED", req.method + " is not allowed on " + req.path + " (allowed: " + allow + ")");
    res.headers.emplace_back("Allow", allow);
    return res;
  }

  req.params.clear();
  req.route = best->pattern;
  for (size_t i = 0; i < segments.size(); ++i) {
    const std::string& pattern_segment = best->segments[i];
    if (isParam(pattern_segment)) req.params[pattern_segment.substr(1, pattern_segment.size() - 2)] = segments[i];
  }

  Matched matched;
  matched.route = best;
  if (best->access == Access::kAuthenticated) {
    if (staff == nullptr) {
      return jsonError(500, errorCodeName(ErrorCode::kInternal), "this node has no staff directory to check logins");
    }
    const std::string token = bearerToken(req);
    if (token.empty()) return unauthorizedResponse("log in first: send Authorization: Bearer <token>");
    auto who = staff->authenticate(token, now);
    if (!who) {
      if (who.status().code() == ErrorCode::kUnauthorized) return unauthorizedResponse(who.status().message());
      return errorResponse(who.status());
    }
    matched.principal = std::move(who).value();
    matched.authenticated = true;
  }
  return matched;
}

namespace {
HttpResponse internalError(const HttpRequest& req) {
  return jsonError(500, errorCodeName(ErrorCode::kInternal), "internal error while handling " + req.method + " " +
                                                                 req.path + "; the node log has the details");
}
}  // namespace

HttpResponse Router::dispatch(HttpRequest& req, StaffDirectory* staff, TimeMs now) const {
  std::optional<HttpResponse> answer;
  dispatchAsync(req, staff, now, [&answer](HttpResponse res) { answer = std::move(res); });
  if (answer) return std::move(*answer);
  spdlog::error("{} {} answers asynchronously; dispatch() cannot wait for it", req.method, req.path);
  return jsonError(500, errorCodeName(ErrorCode::kInternal),
                   req.method + " " + req.path + " answers asynchronously; this caller cannot wait for it");
}

void Router::dispatchAsync(HttpRequest& req, StaffDirectory* staff, TimeMs now, Respond respond) const {
  auto matched = match(req, staff, now);
  if (auto* early = std::get_if<HttpResponse>(&matched)) return respond(std::move(*early));
  const Matched& m = std::get<Matched>(matched);
  const Principal* caller = m.authenticated ? &m.principal : nullptr;

  // Handlers return errors as values; a throw is a bug, but it must cost one request, not the node.
  if (m.route->handler) {
    std::optional<HttpResponse> res;
    try {
      res = m.route->handler(req, caller);
    } catch (const std::exception& e) {
      spdlog::error("handler for {} {} threw: {}", req.method, req.path, e.what());
    } catch (...) {
      spdlog::error("handler for {} {} threw a non-standard exception", req.method, req.path);
    }
    return respond(res ? std::move(*res) : internalError(req));
  }

  // Exactly once: the flag is shared by every copy of the callback the handler may make.
  auto answered = std::make_shared<bool>(false);
  Respond once = [answered, respond, method = req.method, path = req.path](HttpResponse res) {
    if (*answered) {
      spdlog::error("handler for {} {} answered twice; the second answer is dropped", method, path);
      return;
    }
    *answered = true;
    respond(std::move(res));
  };
  try {
    m.route->async_handler(req, caller, once);
    return;
  } catch (const std::exception& e) {
    spdlog::error("handler for {} {} threw: {}", req.method, req.path, e.what());
  } catch (...) {
    spdlog::error("handler for {} {} threw a non-standard exception", req.method, req.path);
  }
  if (!*answered) once(internalError(req));
}

}  // namespace tongban
