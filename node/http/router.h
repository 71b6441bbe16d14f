// The node's HTTP API as plain data and functions: requests, responses, and the Router that picks
// a handler and establishes who is calling. No sockets here (http_server.h carries the bytes), so
// every route can be tested by calling dispatch() directly.
//
// The router authenticates (Authorization: Bearer <token> → Principal); it never authorises.
// Role checks live in the handlers, which get the Principal (use forbidden() when one fails).
//
// Async routes (addAsync) answer later: the handler gets a `respond` callback to call exactly once,
// on the node's thread, when its answer is ready (a lookup that asks the parent). The server
// keeps the connection open until then; dispatchAsync() answers sync routes and errors at once
// through the same callback, so the server has one path for both.
//
// Every error is JSON: {"error":{"code":"NOT_FOUND","message":"..."}}. Status mapping of
// errorResponse(): INVALID_ARGUMENT, MALFORMED → 400; UNAUTHORIZED → 401; PERMISSION_DENIED → 403; NOT_FOUND → 404;
// ALREADY_EXISTS, FAILED_PRECONDITION → 409; OVERSIZE → 413; RESOURCE_EXHAUSTED → 429;
// UNAVAILABLE, NO_RESPONDERS → 503; TIMEOUT → 504; everything else → 500.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "federation/transport/clock.h"
#include "federation/util/status.h"
#include "node/staff/staff.h"

namespace tongban {

struct HttpRequest {
  std::string method;                          // "GET", "POST", ... as sent
  std::string path;                            // raw path, without the query string
  std::map<std::string, std::string> query;    // percent-decoded ('+' is a space); last one wins
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  std::map<std::string, std::string> params;   // from the route pattern, percent-decoded
  std::string route;  // the matched pattern ("/api/cases/{number}"), set by dispatch; "" if none (metrics label)
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json; charset=utf-8";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers
};

// {"error":{"code":code,"message":message}}
HttpResponse jsonError(int status, const std::string& code, const std::string& message);
HttpResponse jsonResponse(int status, const nlohmann::json& body);
// Maps the error code to an HTTP status (table above); the code name is errorCodeName(). An OK
// status gives 204 with no body.
HttpResponse errorResponse(const Status& status);
// 403 FORBIDDEN, for a handler whose caller lacks the role: "needs role approver".
HttpResponse forbidden(const std::string& message);
int httpStatusFor(ErrorCode code);

enum class Access { kPublic, kAuthenticated };

class Router {
 public:
  // `principal` is null for kPublic routes and never null for kAuthenticated ones.
  using Handler = std::function<HttpResponse(const HttpRequest&, const Principal* principal)>;
  // Called at most once per request (a second call is logged and ignored). Safe to call after
  // the server stopped or the client left: the answer is then dropped.
  using Respond = std::function<void(HttpResponse)>;
  // The request and principal are valid only during the call: copy what the answer needs.
  using AsyncHandler = std::function<void(const HttpRequest&, const Principal* principal, Respond respond)>;

  // Pattern: literal segments and whole-segment parameters, e.g. "/api/cases/{number}/steps".
  // Matching is exact (no trailing-slash folding). When several patterns match a path, the one
  // with a literal at the first differing segment wins ("/api/cases/search" over
  // "/api/cases/{number}"), whatever the order of add() calls. Adding the same method and
  // pattern twice, or a malformed pattern, is a programming error (asserts in debug builds;
  // the later one is ignored otherwise).
  void add(std::string method, std::string pattern, Access access, Handler handler);
  // The same for a handler that answers later through `respond` (same matching rules; a method
  // and pattern may be added once, sync or async).
  void addAsync(std::string method, std::string pattern, Access access, AsyncHandler handler);

  // 404 NOT_FOUND for an unknown path, 405 METHOD_NOT_ALLOWED (with an Allow header) for a known
  // path and another method, 401 UNAUTHORIZED (with WWW-Authenticate: Bearer) for a missing,
  // unknown or expired token on a kAuthenticated route. Fills req.params. A handler that throws
  // gives 500 INTERNAL and the router stays usable.
  HttpResponse dispatch(HttpRequest& req, StaffDirectory* staff, TimeMs now) const;

  // As dispatch(), for every kind of route: `respond` is called exactly once, at once for sync
  // routes and errors, later for async ones. An async handler that throws before answering
  // gives 500 INTERNAL. dispatch() on an async route answers only if the handler responds
  // before returning; otherwise 500 (use dispatchAsync).
  void dispatchAsync(HttpRequest& req, StaffDirectory* staff, TimeMs now, Respond respond) const;

 private:
  struct Route {
    std::string method;
    std::string pattern;
    std::vector<std::string> segments;  // "{name}" for a parameter
    Access access;
    Handler handler;             // exactly one of the two is set
    AsyncHandler async_handler;
  };
  void addRoute(Route route);
  // Matching and authentication: the route and caller, or the error response to send.
  struct Matched {
    const Route* route = nullptr;
    Principal principal;
    bool authenticated = false;
  };
  std::variant<Matched, HttpResponse> match(HttpRequest& req, StaffDirectory* staff, TimeMs now) const;
  std::vector<Route> routes_;
};

// Helpers shared with the server (and useful to handlers): percent-decoding and the query string.
// percentDecode: false for a malformed escape ("%G1", "%4"); `plus_is_space` for query strings.
bool percentDecode(const std::string& in, bool plus_is_space, std::string* out);
// "a=1&b=%E4%B8%AD" → {a:1, b:中}; malformed escapes keep the raw text.
std::map<std::string, std::string> parseQuery(const std::string& query);

}  // namespace tongban
