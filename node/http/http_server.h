// The node's HTTP/1.1 server: carries bytes between browsers and the Router (router.h).
//
// It runs on the node's own io_context, so handlers run on the node's one thread, one at a time,
// and need no locks. start() and stop() must be called on that thread too (or while the
// io_context is not running). Asio and Beast stay inside http_server.cpp.
//
// Robustness, per connection:
//   - a body larger than max_body_bytes → 413 OVERSIZE (as soon as Content-Length says so,
//     before the body is read) and the connection is closed;
//   - headers larger than max_header_bytes → 431 and close;
//   - anything that does not parse as HTTP/1.x → the connection is closed without an answer;
//   - reading one request (headers and body) or writing one response must finish within
//     read_timeout_ms, and an idle keep-alive connection is closed after it too;
//   - beyond max_connections open connections, a new one gets 503 UNAVAILABLE and is closed;
//   - keep-alive and pipelined requests are served in order; "Expect: 100-continue" is answered;
//   - every response the server makes itself is JSON, like the router's.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "federation/transport/clock.h"
#include "federation/util/status.h"
#include "node/http/router.h"
#include "node/staff/staff.h"

namespace boost::asio { class io_context; }

namespace tongban {

struct HttpServerState;  // defined in http_server.cpp

inline constexpr size_t kDefaultMaxBodyBytes = 16u << 20;    // one scanned material per upload
inline constexpr size_t kDefaultMaxHeaderBytes = 16u << 10;
inline constexpr DurationMs kDefaultReadTimeoutMs = 30'000;  // 16 MiB needs ~0.6 MB/s: fine on a hall LAN
inline constexpr size_t kDefaultMaxConnections = 256;

struct HttpLimits {
  size_t max_body_bytes = kDefaultMaxBodyBytes;
  size_t max_header_bytes = kDefaultMaxHeaderBytes;
  DurationMs read_timeout_ms = kDefaultReadTimeoutMs;
  size_t max_connections = kDefaultMaxConnections;
};

// Told about every request the router answered (not the server's own 413/431/503 answers), with
// the time from a complete request to a ready response, measured by the server's steady clock:
// how metrics (metrics.h) see latencies without the router or the node reading a clock.
using RequestObserver = std::function<void(const HttpRequest& req, int status, double seconds)>;

class HttpServer {
 public:
  // listen: "127.0.0.1:8080", "0.0.0.0:8080" or "[::1]:8080" (IP literals only); port 0 picks a
  // free port (see port()). `router`, `staff` (may be null if no route needs a login) and
  // `clock` must outlive the server. kInvalidArgument for a bad address, kUnavailable if the
  // port cannot be bound.
  static Result<std::unique_ptr<HttpServer>> start(boost::asio::io_context& io, const std::string& listen,
                                                   HttpLimits limits, Router& router, StaffDirectory* staff,
                                                   Clock& clock, RequestObserver observer = {});
  ~HttpServer();  // stop()
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  uint16_t port() const;
  size_t openConnections() const;
  // Stops accepting and closes every connection; no handler runs after it returns. Idempotent.
  void stop();

 private:
  explicit HttpServer(std::shared_ptr<HttpServerState> state) : state_(std::move(state)) {}
  std::shared_ptr<HttpServerState> state_;
};

}  // namespace tongban
