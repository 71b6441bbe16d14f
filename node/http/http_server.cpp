#include "node/http/http_server.h"

#include <utility>  // before Asio: Boost 1.74's awaitable.hpp misses it under C++20

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <array>
#include <cctype>
#include <chrono>
#include <map>
#include <optional>

#include <spdlog/spdlog.h>

namespace tongban {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

// After a response that closes the connection, the server stops sending and keeps reading (and
// discarding) for at most this long: closing a socket with unread input makes the kernel send a
// reset, which can destroy the response (a 413, a 503) before the client has read it.
constexpr auto kLingerTime = std::chrono::seconds(2);
// An accept that fails (out of file descriptors) is retried after this pause, not in a busy loop.
constexpr auto kAcceptRetryDelay = std::chrono::milliseconds(100);
constexpr char kContinue[] = "HTTP/1.1 100 Continue\r\n\r\n";
constexpr unsigned kHttp11 = 11;

class Connection;

}  // namespace

struct HttpServerState {
  HttpServerState(asio::io_context& io, HttpLimits limits, Router& router, StaffDirectory* staff, Clock& clock,
                  RequestObserver observer)
      : io(io), acceptor(io), retry_timer(io), limits(limits), router(&router), staff(staff), clock(&clock),
        observer(std::move(observer)) {}

  asio::io_context& io;
  tcp::acceptor acceptor;
  asio::steady_timer retry_timer;
  HttpLimits limits;
  // Used only while !stopped: after stop() the server may be gone while completions drain.
  Router* router;
  StaffDirectory* staff;
  Clock* clock;
  RequestObserver observer;  // may be empty
  bool stopped = false;
  size_t served_connections = 0;  // counted against max_connections (not the 503 ones)
  uint64_t next_connection_id = 1;
  std::map<uint64_t, std::weak_ptr<Connection>> live;  // every open connection, for stop()
  uint16_t port = 0;
};

namespace {

HttpRequest toHttpRequest(http::request<http::string_body>& req) {
  HttpRequest out;
  out.method = std::string(req.method_string());
  const std::string target(req.target());
  const size_t question = target.find('?');
  out.path = target.substr(0, question);
  if (question != std::string::npos) out.query = parseQuery(target.substr(question + 1));
  for (const auto& field : req) {
    std::string name(field.name_string());
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    auto [it, inserted] = out.headers.emplace(name, std::string(field.value()));
    if (!inserted) it->second += ", " + std::string(field.value());  // repeated header: RFC 9110 list
  }
  out.body = std::move(req.body());
  return out;
}

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(std::shared_ptr<HttpServerState> state, tcp::socket socket, uint64_t id, bool counted)
      : state_(std::move(state)), stream_(std::move(socket)), id_(id), counted_(counted) {}

  ~Connection() {
    if (counted_) --state_->served_connections;
    state_->live.erase(id_);
  }

  void serve() { readHeader(); }

  void reject() {
    respond(jsonError(503, errorCodeName(ErrorCode::kUnavailable),
                      "this node has too many open connections; try again shortly"),
            kHttp11, false);
  }

  void close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.close();
  }

 private:
  std::chrono::milliseconds timeout() const { return std::chrono::milliseconds(state_->limits.read_timeout_ms); }

  void readHeader() {
    parser_.emplace();
    parser_->body_limit(static_cast<std::uint64_t>(state_->limits.max_body_bytes));
    parser_->header_limit(static_cast<std::uint32_t>(state_->limits.max_header_bytes));
    // One deadline for the whole request, headers and body: a client trickling bytes cannot
    // hold a connection open longer than this (nor can an idle keep-alive connection).
    stream_.expires_after(timeout());
    http::async_read_header(stream_, buffer_, *parser_,
                            beast::bind_front_handler(&Connection::onHeader, shared_from_this()));
  }

  void onHeader(beast::error_code ec, std::size_t) {
    if (state_->stopped) return;
    if (ec) return readFailed(ec);
    if (parser_->is_done()) return handle();
    const auto& req = parser_->get();
    if (beast::iequals(req[http::field::expect], "100-continue")) {
      asio::async_write(stream_, asio::buffer(kContinue, sizeof(kContinue) - 1),
                        beast::bind_front_handler(&Connection::onContinueWritten, shared_from_this()));
      return;
    }
    readBody();
  }

  void onContinueWritten(beast::error_code ec, std::size_t) {
    if (state_->stopped) return;
    if (ec) return close();
    readBody();
  }

  void readBody() {
    http::async_read(stream_, buffer_, *parser_, beast::bind_front_handler(&Connection::onBody, shared_from_this()));
  }

  void onBody(beast::error_code ec, std::size_t) {
    if (state_->stopped) return;
    if (ec) return readFailed(ec);
    handle();
  }

  void readFailed(beast::error_code ec) {
    if (ec == http::error::body_limit) {
      return respond(jsonError(413, errorCodeName(ErrorCode::kOversize),
                               "request body larger than " + std::to_string(state_->limits.max_body_bytes) + " bytes"),
                     kHttp11, false);
    }
    if (ec == http::error::header_limit) {
      return respond(jsonError(431, errorCodeName(ErrorCode::kOversize),
                               "request headers larger than " + std::to_string(state_->limits.max_header_bytes) +
                                   " bytes"),
                     kHttp11, false);
    }
    // End of stream between requests, a timeout, or bytes that are not HTTP: nothing useful can
    // be said on a stream whose framing is lost, so the connection just ends.
    if (ec != http::error::end_of_stream && ec != asio::error::operation_aborted) {
      spdlog::debug("http connection {}: closing: {}", id_, ec.message());
    }
    close();
  }

  // The router may answer later (async routes): until then this connection reads nothing more
  // (pipelined requests wait in buffer_) and `answer` holds it alive. If the server stops first,
  // the late answer is dropped.
  void handle() {
    auto& raw = parser_->get();
    const unsigned version = raw.version();
    const bool keep_alive = raw.keep_alive();
    const auto started = std::chrono::steady_clock::now();
    auto req = std::make_shared<HttpRequest>();
    auto answer = [self = shared_from_this(), req, started, version, keep_alive](HttpResponse response) {
      if (self->state_->stopped) return;
      if (self->state_->observer) {
        const std::chrono::duration<double> took = std::chrono::steady_clock::now() - started;
        self->state_->observer(*req, response.status, took.count());
      }
      self->respond(std::move(response), version, keep_alive);
    };
    try {
      *req = toHttpRequest(raw);
      state_->router->dispatchAsync(*req, state_->staff, state_->clock->now(), answer);
    } catch (const std::exception& e) {
      // The router already catches handler exceptions; this is for anything else (bad_alloc).
      // If the router answered before throwing, the router's once-guard does not cover us, so
      // this can only answer a request that got no answer yet.
      spdlog::error("http connection {}: request failed: {}", id_, e.what());
      if (!response_) {
        respond(jsonError(500, errorCodeName(ErrorCode::kInternal), "internal error; the node log has the details"),
                version, keep_alive);
      }
    }
  }

  void respond(HttpResponse res, unsigned version, bool keep_alive) {
    response_.emplace();
    auto& out = *response_;
    out.version(version);
    out.result(static_cast<unsigned>(res.status));
    out.set(http::field::server, "tongban");
    if (!res.body.empty() || res.status != 204) out.set(http::field::content_type, res.content_type);
    bool has_cache_control = false;
    for (const auto& [name, value] : res.headers) {
      out.insert(name, value);
      has_cache_control = has_cache_control || beast::iequals(name, "cache-control");
    }
    // API answers hold case data: no browser or proxy cache keeps them unless a handler says so.
    if (!has_cache_control) out.set(http::field::cache_control, "no-store");
    out.body() = std::move(res.body);
    out.keep_alive(keep_alive);
    out.prepare_payload();
    stream_.expires_after(timeout());
    http::async_write(stream_, out,
                      beast::bind_front_handler(&Connection::onWritten, shared_from_this(), keep_alive));
  }

  void onWritten(bool keep_alive, beast::error_code ec, std::size_t) {
    if (state_->stopped) return;
    response_.reset();
    if (ec) return close();
    if (keep_alive) return readHeader();
    lingerClose();
  }

  void lingerClose() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    if (ec) return close();
    stream_.expires_after(kLingerTime);
    drain();
  }

  void drain() {
    stream_.async_read_some(asio::buffer(discard_), [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (self->state_->stopped) return;
      if (ec) return self->close();  // EOF from the client, or the linger time is up
      self->drain();
    });
  }

  std::shared_ptr<HttpServerState> state_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;  // kept across requests: it may hold the start of a pipelined one
  std::optional<http::request_parser<http::string_body>> parser_;
  std::optional<http::response<http::string_body>> response_;
  std::array<char, 4096> discard_{};
  uint64_t id_;
  bool counted_;
};

void accept(const std::shared_ptr<HttpServerState>& state);

void onAccept(const std::shared_ptr<HttpServerState>& state, beast::error_code ec, tcp::socket socket) {
  if (state->stopped) return;
  if (ec) {
    spdlog::warn("http: accept failed ({}); retrying", ec.message());
    state->retry_timer.expires_after(kAcceptRetryDelay);
    state->retry_timer.async_wait([state](beast::error_code wait_ec) {
      if (!wait_ec && !state->stopped) accept(state);
    });
    return;
  }
  const bool over_limit = state->served_connections >= state->limits.max_connections;
  const uint64_t id = state->next_connection_id++;
  auto connection = std::make_shared<Connection>(state, std::move(socket), id, !over_limit);
  state->live[id] = connection;
  if (over_limit) {
    connection->reject();
  } else {
    ++state->served_connections;
    connection->serve();
  }
  accept(state);
}

void accept(const std::shared_ptr<HttpServerState>& state) {
  state->acceptor.async_accept(state->io, [state](beast::error_code ec, tcp::socket socket) {
    onAccept(state, ec, std::move(socket));
  });
}

Result<tcp::endpoint> parseListen(const std::string& listen) {
  const size_t colon = listen.rfind(':');
  auto bad = [&](const std::string& why) {
    return Status(ErrorCode::kInvalidArgument,
                  "listen address '" + listen + "' " + why + " (expected e.g. 127.0.0.1:8080 or [::1]:8080)");
  };
  if (colon == std::string::npos || colon == 0) return bad("has no port");
  std::string host = listen.substr(0, colon);
  const std::string port_text = listen.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (port_text.empty() || port_text.size() > 5 ||
      port_text.find_first_not_of("0123456789") != std::string::npos || std::stoul(port_text) > 65535) {
    return bad("has an invalid port");
  }
  beast::error_code ec;
  auto address = asio::ip::make_address(host, ec);
  if (ec) return bad("does not start with an IP address");
  return tcp::endpoint(address, static_cast<unsigned short>(std::stoul(port_text)));
}

}  // namespace

Result<std::unique_ptr<HttpServer>> HttpServer::start(asio::io_context& io, const std::string& listen,
                                                       HttpLimits limits, Router& router, StaffDirectory* staff,
                                                       Clock& clock, RequestObserver observer) {
  if (limits.max_connections == 0 || limits.read_timeout_ms <= 0 || limits.max_header_bytes == 0 ||
      limits.max_header_bytes > UINT32_MAX) {
    return Status(ErrorCode::kInvalidArgument, "http limits: connections, timeout and header size must be positive");
  }
  TB_ASSIGN_OR_RETURN(tcp::endpoint endpoint, parseListen(listen));
  auto state = std::make_shared<HttpServerState>(io, limits, router, staff, clock, std::move(observer));
  beast::error_code ec;
  auto failed = [&](const char* doing) {
    return Status(ErrorCode::kUnavailable, std::string("cannot listen on ") + listen + ": " + doing + ": " + ec.message());
  };
  state->acceptor.open(endpoint.protocol(), ec);
  if (ec) return failed("open");
  // A restarted node must be able to rebind while old connections sit in TIME_WAIT.
  state->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (ec) return failed("set_option");
  state->acceptor.bind(endpoint, ec);
  if (ec) return failed("bind");
  state->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return failed("listen");
  state->port = state->acceptor.local_endpoint(ec).port();
  if (ec) return failed("local_endpoint");
  accept(state);
  spdlog::info("http: listening on {} (port {})", listen, state->port);
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(state)));
}

HttpServer::~HttpServer() { stop(); }

uint16_t HttpServer::port() const { return state_->port; }

size_t HttpServer::openConnections() const { return state_->live.size(); }

void HttpServer::stop() {
  if (state_->stopped) return;
  state_->stopped = true;
  beast::error_code ec;
  state_->retry_timer.cancel();
  state_->acceptor.close(ec);
  // Copy first: closing does not destroy a connection now (its pending operation holds it), but
  // iterating a map that destructors erase from is not worth reasoning about.
  std::vector<std::shared_ptr<Connection>> open;
  for (auto& [id, weak] : state_->live) {
    if (auto connection = weak.lock()) open.push_back(std::move(connection));
  }
  for (auto& connection : open) connection->close();
  open.clear();  // a connection without pending work dies here and erases itself from `live`
}

}  // namespace tongban
