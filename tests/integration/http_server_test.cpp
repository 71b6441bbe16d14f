// The HTTP server over real loopback sockets: a server on 127.0.0.1 (port 0) in an io_context on
// its own thread, and a raw-socket client, so malformed and oversize requests can be sent as
// bytes. Receive timeouts on the client are only a safety net against a hung test; no assertion
// depends on timing.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <utility>  // before Asio: Boost 1.74's awaitable.hpp misses it under C++20

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <chrono>
#include <future>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>

#include <sodium.h>

#include "federation/store/database.h"
#include "federation/transport/asio_clock.h"
#include "node/http/http_server.h"

namespace tongban {
namespace {

constexpr int kClientSafetyTimeoutSec = 10;

struct RawResponse {
  int status = -1;  // -1: the connection ended before a whole response arrived
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  nlohmann::json json() const { return nlohmann::json::parse(body, nullptr, false); }
};

// A blocking loopback client that speaks raw bytes.
class RawClient {
 public:
  explicit RawClient(uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    timeval tv{kClientSafetyTimeoutSec, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  }
  ~RawClient() {
    if (fd_ >= 0) ::close(fd_);
  }
  bool connected() const { return connected_; }

  bool send(const std::string& bytes) {
    size_t sent = 0;
    while (sent < bytes.size()) {
      ssize_t n = ::send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return false;
      sent += static_cast<size_t>(n);
    }
    return true;
  }

  // Reads exactly one response (Content-Length framed, as the server always sends).
  RawResponse readResponse() {
    RawResponse res;
    size_t header_end;
    while ((header_end = pending_.find("\r\n\r\n")) == std::string::npos) {
      if (!fill()) return res;
    }
    std::string head = pending_.substr(0, header_end);
    pending_.erase(0, header_end + 4);
    size_t line_end = head.find("\r\n");
    std::string status_line = head.substr(0, line_end);
    size_t pos = line_end == std::string::npos ? head.size() : line_end + 2;
    while (pos < head.size()) {
      size_t end = head.find("\r\n", pos);
      if (end == std::string::npos) end = head.size();
      std::string line = head.substr(pos, end - pos);
      size_t colon = line.find(':');
      std::string name = line.substr(0, colon);
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      res.headers[name] = line.substr(line.find_first_not_of(' ', colon + 1));
      pos = end + 2;
    }
    size_t length = res.headers.count("content-length") ? std::stoul(res.headers["content-length"]) : 0;
    while (pending_.size() < length) {
      if (!fill()) return res;
    }
    res.body = pending_.substr(0, length);
    pending_.erase(0, length);
    res.status = std::stoi(status_line.substr(9, 3));
    return res;
  }

  // True when the server has closed the connection (EOF or reset) with nothing more unread.
  bool closedByServer() {
    char byte;
    ssize_t n = ::recv(fd_, &byte, 1, 0);
    if (n > 0) pending_.push_back(byte);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
  }

 private:
  bool fill() {
    char buf[4096];
    ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
    if (n <= 0) return false;
    pending_.append(buf, static_cast<size_t>(n));
    return true;
  }
  int fd_ = -1;
  bool connected_ = false;
  std::string pending_;
};

std::string get(const std::string& path, bool close = false) {
  return "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" + (close ? "Connection: close\r\n" : "") + "\r\n";
}

class HttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // The staff directory is set up here, before the io thread starts; afterwards only handlers
    // (on the io thread) touch it.
    DatabaseOptions db_options;
    db_options.path = ":memory:";
    auto db = Database::open(db_options);
    ASSERT_TRUE(db.isOk()) << db.status().toString();
    db_ = std::move(db).value();
    StaffOptions staff_options;
    staff_options.pwhash_opslimit = crypto_pwhash_OPSLIMIT_MIN;
    staff_options.pwhash_memlimit = crypto_pwhash_MEMLIMIT_MIN;
    auto staff = StaffDirectory::open(*db_, staff_options);
    ASSERT_TRUE(staff.isOk()) << staff.status().toString();
    staff_ = std::make_unique<StaffDirectory>(std::move(staff).value());
    ASSERT_TRUE(staff_->addUser("zhangsan", "张三", "correct horse", {Role::kClerk}, clock_.now()).isOk());
    auto session = staff_->login("zhangsan", "correct horse", clock_.now());
    ASSERT_TRUE(session.isOk()) << session.status().toString();
    token_ = session->token;

    router_.add("GET", "/health", Access::kPublic, [](const HttpRequest& req, const Principal*) {
      return jsonResponse(200, {{"ok", true}, {"query", req.query}});
    });
    router_.add("POST", "/echo", Access::kPublic, [](const HttpRequest& req, const Principal*) {
      return jsonResponse(200, {{"bytes", req.body.size()}, {"body", req.body}});
    });
    router_.add("GET", "/api/private", Access::kAuthenticated, [](const HttpRequest&, const Principal* who) {
      return jsonResponse(200, {{"caller", who->display_name}});
    });
    // Answers 50 ms later from a timer on the io thread, as a lookup answers when its reply comes.
    router_.addAsync("GET", "/later", Access::kPublic,
                     [this](const HttpRequest&, const Principal*, Router::Respond respond) {
                       clock_.schedule(50, [respond] { respond(jsonResponse(200, {{"later", true}})); });
                     });
    // Never answers by itself: the test holds the callback.
    router_.addAsync("GET", "/held", Access::kPublic,
                     [this](const HttpRequest&, const Principal*, Router::Respond respond) {
                       held_ = std::move(respond);
                     });
    router_.add("GET", "/boom", Access::kPublic,
                [](const HttpRequest&, const Principal*) -> HttpResponse { throw std::runtime_error("bug"); });
  }

  void start(HttpLimits limits = {}) {
    auto server = HttpServer::start(io_, "127.0.0.1:0", limits, router_, staff_.get(), clock_);
    ASSERT_TRUE(server.isOk()) << server.status().toString();
    server_ = std::move(server).value();
    ASSERT_NE(server_->port(), 0);
    thread_ = std::thread([this] { io_.run(); });
  }

  void TearDown() override {
    if (!thread_.joinable()) return;
    // stop() on the node's thread; io.run() then returns by itself once every connection is
    // gone, which also proves stop() leaves no work behind.
    boost::asio::post(io_, [this] { server_->stop(); });
    thread_.join();
  }

  // Runs `fn` on the io thread and waits for its result (the server is not thread-safe).
  template <typename Fn>
  auto onIoThread(Fn fn) {
    std::packaged_task<decltype(fn())()> task(fn);
    auto result = task.get_future();
    boost::asio::post(io_, [&task] { task(); });
    return result.get();
  }

  uint16_t port() const { return server_->port(); }

  boost::asio::io_context io_;
  AsioClock clock_{io_};
  std::unique_ptr<Database> db_;
  std::unique_ptr<StaffDirectory> staff_;
  std::string token_;
  Router router_;
  std::unique_ptr<HttpServer> server_;
  Router::Respond held_;  // touched on the io thread only
  std::thread thread_;
};

TEST_F(HttpServerTest, GetIsAnsweredWithJson) {
  start();
  RawClient client(port());
  ASSERT_TRUE(client.connected());
  ASSERT_TRUE(client.send(get("/health?name=%E5%BC%A0%E4%B8%89", true)));
  RawResponse res = client.readResponse();
  ASSERT_EQ(res.status, 200);
  EXPECT_EQ(res.headers["content-type"], "application/json; charset=utf-8");
  EXPECT_EQ(res.headers["cache-control"], "no-store");
  EXPECT_EQ(res.json()["ok"], true);
  EXPECT_EQ(res.json()["query"]["name"], "张三");
  EXPECT_TRUE(client.closedByServer());
}

TEST_F(HttpServerTest, UnknownPathIsA404JsonError) {
  start();
  RawClient client(port());
  ASSERT_TRUE(client.send(get("/nope")));
  RawResponse res = client.readResponse();
  EXPECT_EQ(res.status, 404);
  EXPECT_EQ(res.json()["error"]["code"], "NOT_FOUND");
}

TEST_F(HttpServerTest, KeepAliveServesTwoRequestsOnOneConnection) {
  start();
  RawClient client(port());
  ASSERT_TRUE(client.send(get("/health")));
  EXPECT_EQ(client.readResponse().status, 200);
  ASSERT_TRUE(client.send(get("/nope")));
  EXPECT_EQ(client.readResponse().status, 404);
  EXPECT_EQ(onIoThread([this] { return server_->openConnections(); }), 1u);
}

TEST_F(HttpServerTest, PipelinedRequestsAreAnsweredInOrder) {
  start();
  RawClient client(port());
  ASSERT_TRUE(client.send(get("/health") + get("/nope") + get("/health", true)));
  EXPECT_EQ(client.readResponse().status, 200);
  EXPECT_EQ(client.readResponse().status, 404);
  EXPECT_EQ(client.readResponse().status, 200);
  EXPECT_TRUE(client.closedByServer());
}

TEST_F(HttpServerTest, BodyReachesTheHandler) {
  start();
  RawClient client(port());
  const std::string body = "{\"name\":\"张三\"}";
  ASSERT_TRUE(client.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " +
                          std::to_string(body.size()) + "\r\n\r\n" + body));
  RawResponse res = client.readResponse();
  ASSERT_EQ(res.status, 200);
  EXPECT_EQ(res.json()["body"], body);
}

TEST_F(HttpServerTest, ExpectContinueIsAnsweredBeforeTheBodyIsSent) {
  start();
  RawClient client(port());
  ASSERT_TRUE(client.send("POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"));
  RawResponse interim = client.readResponse();
  EXPECT_EQ(interim.status, 100);
  ASSERT_TRUE(client.send("hello"));
  RawResponse res = client.readResponse();
  ASSERT_EQ(res.status, 200);
  EXPECT_EQ(res.json()["body"], "hello");
}

TEST_F(HttpServerTest, OversizeBodyIs413AndTheServerKeepsServing) {
  HttpLimits limits;
  limits.max_body_bytes = 1024;
  start(limits);
  {
    RawClient client(port());
    ASSERT_TRUE(client.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4096\r\n\r\n" + std::string(4096, 'x')));
    RawResponse res = client.readResponse();
    EXPECT_EQ(res.status, 413);
    EXPECT_EQ(res.json()["error"]["code"], "OVERSIZE");
    EXPECT_TRUE(client.closedByServer());
  }
  {
    // Refused from the header alone: the client need not send 100 MiB first.
    RawClient client(port());
    ASSERT_TRUE(client.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 104857600\r\n\r\n"));
    EXPECT_EQ(client.readResponse().status, 413);
  }
  {
    // A chunked body over the limit is caught while it streams in.
    RawClient client(port());
    ASSERT_TRUE(client.send("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n800\r\n" +
                            std::string(2048, 'y') + "\r\n0\r\n\r\n"));
    EXPECT_EQ(client.readResponse().status, 413);
  }
  RawClient next(port());
  ASSERT_TRUE(next.send(get("/health")));
  EXPECT_EQ(next.readResponse().status, 200);
}

TEST_F(HttpServerTest, OversizeHeadersAre431) {
  HttpLimits limits;
  limits.max_header_bytes = 1024;
  start(limits);
  RawClient client(port());
  ASSERT_TRUE(client.send("GET /health HTTP/1.1\r\nHost: x\r\nX-Filler: " + std::string(2048, 'z') + "\r\n\r\n"));
  RawResponse res = client.readResponse();
  EXPECT_EQ(res.status, 431);
  EXPECT_TRUE(client.closedByServer());
}

TEST_F(HttpServerTest, MalformedRequestClosesTheConnectionAndTheNextClientIsServed) {
  start();
  RawClient bad(port());
  ASSERT_TRUE(bad.send("HELLO THERE\x01\r\n\r\n"));
  EXPECT_TRUE(bad.closedByServer());

  RawClient good(port());
  ASSERT_TRUE(good.send(get("/health")));
  EXPECT_EQ(good.readResponse().status, 200);
}

TEST_F(HttpServerTest, SlowClientIsDisconnectedAfterTheReadTimeout) {
  HttpLimits limits;
  limits.read_timeout_ms = 200;
  start(limits);
  RawClient slow(port());
  ASSERT_TRUE(slow.send("GET /health HTTP/1.1\r\nHost:"));  // and never the rest
  EXPECT_TRUE(slow.closedByServer());

  RawClient good(port());
  ASSERT_TRUE(good.send(get("/health")));
  EXPECT_EQ(good.readResponse().status, 200);
}

TEST_F(HttpServerTest, ConnectionsBeyondTheLimitGet503) {
  HttpLimits limits;
  limits.max_connections = 1;
  start(limits);
  RawClient first(port());
  ASSERT_TRUE(first.send(get("/health")));
  ASSERT_EQ(first.readResponse().status, 200);  // accepted and counted: it holds the one slot

  RawClient second(port());
  RawResponse res = second.readResponse();
  EXPECT_EQ(res.status, 503);
  EXPECT_EQ(res.json()["error"]["code"], "UNAVAILABLE");
  EXPECT_TRUE(second.closedByServer());

  ASSERT_TRUE(first.send(get("/health")));
  EXPECT_EQ(first.readResponse().status, 200);
}

TEST_F(HttpServerTest, ThrowingHandlerGives500AndTheConnectionKeepsWorking) {
  start();
  RawClient client(port());
  ASSERT_TRUE(client.send(get("/boom")));
  RawResponse res = client.readResponse();
  EXPECT_EQ(res.status, 500);
  EXPECT_EQ(res.json()["error"]["code"], "INTERNAL");
  ASSERT_TRUE(client.send(get("/health")));
  EXPECT_EQ(client.readResponse().status, 200);
}

TEST_F(HttpServerTest, AuthenticatedRouteNeedsTheBearerTokenOfASession) {
  start();
  RawClient client(port());
  ASSERT_TRUE(client.send(get("/api/private")));
  RawResponse anonymous = client.readResponse();
  EXPECT_EQ(anonymous.status, 401);
  EXPECT_EQ(anonymous.headers["www-authenticate"], "Bearer");

  ASSERT_TRUE(client.send("GET /api/private HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + token_ + "\r\n\r\n"));
  RawResponse res = client.readResponse();
  ASSERT_EQ(res.status, 200);
  EXPECT_EQ(res.json()["caller"], "张三");
}

TEST_F(HttpServerTest, AsyncRouteIsAnsweredLaterAndTheConnectionKeepsWorking) {
  start();
  RawClient client(port());
  ASSERT_TRUE(client.send(get("/later") + get("/health")));  // pipelined: answered in order
  auto later = client.readResponse();
  EXPECT_EQ(later.status, 200);
  EXPECT_EQ(later.json()["later"], true);
  EXPECT_EQ(client.readResponse().status, 200);
}

TEST_F(HttpServerTest, AnswerArrivingAfterStopIsDroppedSafely) {
  start();
  RawClient client(port());
  ASSERT_TRUE(client.send(get("/held")));
  // Wait until the handler has run and holds the callback.
  for (int i = 0; i < 200 && !onIoThread([this] { return static_cast<bool>(held_); }); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_TRUE(onIoThread([this] { return static_cast<bool>(held_); }));
  onIoThread([this] {
    server_->stop();
    held_(jsonResponse(200, {{"too", "late"}}));  // must not write to a closed connection
    held_ = nullptr;                              // releases the connection
    return true;
  });
  EXPECT_TRUE(client.closedByServer());
}

TEST(HttpServerStartTest, BadListenAddressesAreRefused) {
  boost::asio::io_context io;
  AsioClock clock(io);
  Router router;
  for (const char* listen : {"127.0.0.1", "localhost:80", "127.0.0.1:99999", "127.0.0.1:x", ":80"}) {
    auto server = HttpServer::start(io, listen, {}, router, nullptr, clock);
    ASSERT_FALSE(server.isOk()) << listen;
    EXPECT_EQ(server.status().code(), ErrorCode::kInvalidArgument) << listen;
  }
}

TEST(HttpServerStartTest, PortInUseIsUnavailable) {
  boost::asio::io_context io;
  AsioClock clock(io);
  Router router;
  auto first = HttpServer::start(io, "127.0.0.1:0", {}, router, nullptr, clock);
  ASSERT_TRUE(first.isOk());
  auto second = HttpServer::start(io, "127.0.0.1:" + std::to_string((*first)->port()), {}, router, nullptr, clock);
  ASSERT_FALSE(second.isOk());
  EXPECT_EQ(second.status().code(), ErrorCode::kUnavailable);
}

}  // namespace
}  // namespace tongban
