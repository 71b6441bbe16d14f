#include "federation/transport/nats/nats_transport.h"

#include <utility>  // before Asio: Boost 1.74's awaitable.hpp misses it under C++20

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <nats/nats.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <random>
#include <unordered_map>

namespace tongban {

namespace {

// NATS has no hard subject limit, but the server refuses protocol lines longer than its
// max_control_line (4 KiB by default); our subjects are division codes and short names.
constexpr size_t kMaxSubjectBytes = 512;
// Reconnect delays get up to this fraction shaved off at random, so a hundred villages that
// lost the same town server do not all knock on it in the same millisecond.
constexpr double kReconnectJitterFraction = 0.2;

// ---------------------------------------------------------------------------------------------
// Routing nats.c callbacks back to a live transport.
//
// nats.c calls us on its own threads and may do so after a subscription or the connection was
// destroyed (a delivery already in progress). So the closure handed to nats.c is never a
// pointer: it is a token looked up here, under a lock. Removing a transport's tokens (done
// first in its shutdown) guarantees that no callback can reach it afterwards, and because
// callbacks post while holding the lock, no post can be half-way done either.
struct Route {
  std::weak_ptr<NatsTransport::Impl> impl;
  boost::asio::io_context* io = nullptr;
  uint64_t sub_id = 0;  // 0: connection events; kInboxSubId: request replies; else a subscription
  DurationMs reconnect_wait_ms = 0;
  DurationMs reconnect_wait_max_ms = 0;
};

constexpr uint64_t kConnectionRoute = 0;
constexpr uint64_t kInboxSubId = UINT64_MAX;

std::mutex g_routes_mu;
std::unordered_map<uintptr_t, Route> g_routes;
uintptr_t g_next_route = 1;

uintptr_t addRoute(Route route) {
  std::lock_guard<std::mutex> lock(g_routes_mu);
  uintptr_t token = g_next_route++;
  g_routes.emplace(token, std::move(route));
  return token;
}

void removeRoute(uintptr_t token) {
  std::lock_guard<std::mutex> lock(g_routes_mu);
  g_routes.erase(token);
}

void* closureOf(uintptr_t token) { return reinterpret_cast<void*>(token); }
uintptr_t tokenOf(void* closure) { return reinterpret_cast<uintptr_t>(closure); }

// Runs `fn(route)` under the routes lock if the token is still registered.
template <typename Fn>
void withRoute(void* closure, Fn&& fn) {
  std::lock_guard<std::mutex> lock(g_routes_mu);
  auto it = g_routes.find(tokenOf(closure));
  if (it != g_routes.end()) fn(it->second);
}

ErrorCode codeFor(natsStatus s) {
  switch (s) {
    case NATS_MAX_PAYLOAD:
    case NATS_INSUFFICIENT_BUFFER:
    case NATS_SLOW_CONSUMER:
      return ErrorCode::kResourceExhausted;
    case NATS_CONNECTION_CLOSED:
    case NATS_CONNECTION_DISCONNECTED:
    case NATS_NOT_YET_CONNECTED:
    case NATS_STALE_CONNECTION:
    case NATS_NO_SERVER:
    case NATS_IO_ERROR:
      return ErrorCode::kUnavailable;
    case NATS_INVALID_SUBJECT:
    case NATS_INVALID_ARG:
    case NATS_ADDRESS_MISSING:
      return ErrorCode::kInvalidArgument;
    case NATS_TIMEOUT:
      return ErrorCode::kTimeout;
    case NATS_NO_RESPONDERS:
      return ErrorCode::kNoResponders;
    default:
      return ErrorCode::kInternal;
  }
}

Status natsError(natsStatus s, const std::string& doing) {
  return Status(codeFor(s), doing + ": " + natsStatus_GetText(s));
}

// Subjects are dot-separated tokens of printable, non-space characters. Wildcards ("*" as a
// token, ">" as the last token) are for subscriptions only: publishing to one is a bug.
Status validateSubject(const std::string& subject, bool allow_wildcards) {
  if (subject.empty()) return Status(ErrorCode::kInvalidArgument, "subject is empty");
  if (subject.size() > kMaxSubjectBytes) {
    return Status(ErrorCode::kInvalidArgument, "subject of " + std::to_string(subject.size()) +
                                                   " bytes is longer than the limit of " +
                                                   std::to_string(kMaxSubjectBytes));
  }
  for (unsigned char c : subject) {
    if (c <= 0x20 || c == 0x7f) {
      return Status(ErrorCode::kInvalidArgument,
                    "subject \"" + subject + "\" contains a space or control character");
    }
  }
  size_t start = 0;
  while (true) {
    size_t dot = subject.find('.', start);
    std::string token = subject.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    bool last = dot == std::string::npos;
    if (token.empty()) return Status(ErrorCode::kInvalidArgument, "subject \"" + subject + "\" has an empty token");
    if (token == "*" || token == ">") {
      if (!allow_wildcards) {
        return Status(ErrorCode::kInvalidArgument,
                      "subject \"" + subject + "\" contains a wildcard; only subscriptions may use wildcards");
      }
      if (token == ">" && !last) {
        return Status(ErrorCode::kInvalidArgument, "subject \"" + subject + "\": '>' must be the last token");
      }
    }
    if (last) break;
    start = dot + 1;
  }
  return Status::ok();
}

Status checkSize(const std::string& subject, size_t size) {
  if (size <= kMaxMessageBytes) return Status::ok();
  return Status(ErrorCode::kResourceExhausted, "message for " + subject + " is " + std::to_string(size) +
                                                   " bytes, over the limit of " + std::to_string(kMaxMessageBytes) +
                                                   " bytes; split it (outbox batches) or send a reference");
}

std::string joinUrls(const std::vector<std::string>& urls) {
  std::string out;
  for (const auto& u : urls) out += (out.empty() ? "" : ",") + u;
  return out;
}

}  // namespace

// ---------------------------------------------------------------------------------------------

struct NatsTransport::Impl : std::enable_shared_from_this<NatsTransport::Impl> {
  struct Subscription {
    natsSubscription* sub = nullptr;
    std::shared_ptr<MessageHandler> handler;  // shared: a handler may unsubscribe itself
    uintptr_t route = 0;
  };
  struct Pending {
    ReplyHandler handler;
    std::unique_ptr<boost::asio::steady_timer> timer;
    std::string subject;  // for error messages
    DurationMs timeout_ms = 0;
  };

  Impl(boost::asio::io_context& io, NatsOptions options) : io(io), options(std::move(options)) {}
  ~Impl() { shutdown(); }

  // --- called on nats.c threads: post and nothing else --------------------------------------

  static void onMessage(natsConnection*, natsSubscription*, natsMsg* msg, void* closure) {
    InboundMessage m;
    if (const char* s = natsMsg_GetSubject(msg)) m.subject = s;
    if (const char* r = natsMsg_GetReply(msg)) m.reply_to = r;
    const char* data = natsMsg_GetData(msg);
    int len = natsMsg_GetDataLength(msg);
    if (data != nullptr && len > 0) m.data.assign(data, data + len);
    // nats.c 3.x: the server answers a request nobody listens to with an empty message whose
    // header "Status" is "503"; for an async subscription it is handed to us like any message.
    bool no_responders = natsMsg_IsNoResponders(msg);
    natsMsg_Destroy(msg);
    withRoute(closure, [&](Route& route) {
      boost::asio::post(*route.io, [weak = route.impl, sub_id = route.sub_id, m = std::move(m), no_responders]() {
        if (auto impl = weak.lock()) impl->deliver(sub_id, m, no_responders);
      });
    });
  }

  static void postConnectionEvent(void* closure, bool up, const char* what) {
    withRoute(closure, [&](Route& route) {
      boost::asio::post(*route.io, [weak = route.impl, up, what]() {
        if (auto impl = weak.lock()) impl->connectionEvent(up, what);
      });
    });
  }
  static void onConnected(natsConnection*, void* closure) { postConnectionEvent(closure, true, "connected"); }
  static void onReconnected(natsConnection*, void* closure) { postConnectionEvent(closure, true, "reconnected"); }
  static void onDisconnected(natsConnection*, void* closure) { postConnectionEvent(closure, false, "disconnected"); }
  static void onClosed(natsConnection*, void* closure) { postConnectionEvent(closure, false, "closed"); }

  static void onAsyncError(natsConnection*, natsSubscription*, natsStatus err, void* closure) {
    withRoute(closure, [&](Route& route) {
      boost::asio::post(*route.io, [weak = route.impl, err]() {
        if (auto impl = weak.lock()) {
          spdlog::warn("[{}] nats asynchronous error: {}", impl->options.name, natsStatus_GetText(err));
        }
      });
    });
  }

  // Called on the reconnect thread; returns at once (no posting: it only computes a number).
  static int64_t reconnectDelay(natsConnection*, int attempts, void* closure) {
    DurationMs base = 250, cap = 5000;
    withRoute(closure, [&](Route& route) {
      base = route.reconnect_wait_ms;
      cap = route.reconnect_wait_max_ms;
    });
    DurationMs delay = base;
    for (int i = 1; i < attempts && delay < cap; ++i) delay *= 2;
    delay = std::min(delay, cap);
    // Jitter comes from a local generator: this adapter runs only in the daemon, never in the
    // simulator, whose randomness must all come from its seed.
    thread_local std::minstd_rand rng{std::random_device{}()};
    auto max_cut = static_cast<DurationMs>(static_cast<double>(delay) * kReconnectJitterFraction);
    if (max_cut > 0) delay -= std::uniform_int_distribution<DurationMs>(0, max_cut)(rng);
    return std::max<DurationMs>(1, delay);
  }

  // --- on the io_context ---------------------------------------------------------------------

  void deliver(uint64_t sub_id, const InboundMessage& m, bool no_responders) {
    if (closed) return;
    if (sub_id == kInboxSubId) {
      deliverReply(m, no_responders);
      return;
    }
    auto it = subs.find(sub_id);
    if (it == subs.end()) return;  // unsubscribed while the message was queued
    auto handler = it->second.handler;
    (*handler)(m);
  }

  void deliverReply(const InboundMessage& m, bool no_responders) {
    // Reply subjects are "<inbox>.<token>".
    if (m.subject.size() <= inbox_prefix.size() + 1 || m.subject.compare(0, inbox_prefix.size(), inbox_prefix) != 0) {
      return;
    }
    uint64_t token = 0;
    for (size_t i = inbox_prefix.size() + 1; i < m.subject.size(); ++i) {
      char c = m.subject[i];
      if (c < '0' || c > '9') return;
      token = token * 10 + static_cast<uint64_t>(c - '0');
    }
    auto it = pending.find(token);
    if (it == pending.end()) return;  // timed out already, or a second reply
    if (no_responders) {
      complete(token, Status(ErrorCode::kNoResponders, "no subscriber for " + it->second.subject +
                                                           " (the node that serves it is not connected)"));
    } else {
      complete(token, Result<Bytes>(m.data));
    }
  }

  void complete(uint64_t token, Result<Bytes> result) {
    auto it = pending.find(token);
    if (it == pending.end()) return;
    Pending p = std::move(it->second);
    pending.erase(it);
    if (p.timer) p.timer->cancel();
    p.handler(std::move(result));
  }

  void connectionEvent(bool up, const char* what) {
    if (closed) return;
    if (up == reported_up) return;
    reported_up = up;
    if (up) {
      spdlog::info("[{}] nats {} to {}", options.name, what, joinUrls(options.urls));
    } else {
      spdlog::warn("[{}] nats {} from {}", options.name, what, joinUrls(options.urls));
      // A reply on its way to the old connection is lost with it: say so now instead of letting
      // every caller wait out its full timeout.
      std::vector<uint64_t> tokens;
      for (auto& [token, p] : pending) tokens.push_back(token);
      for (uint64_t token : tokens) {
        auto it = pending.find(token);
        if (it == pending.end()) continue;
        std::string subject = it->second.subject;
        complete(token, Status(ErrorCode::kUnavailable,
                               "connection to NATS lost while waiting for the reply from " + subject));
      }
    }
    if (connection_handler) {
      auto handler = connection_handler;  // the handler may replace itself
      handler(up);
    }
  }

  // Posts a reply-handler call: request() must never call its handler from inside itself.
  void failLater(ReplyHandler handler, Status status) {
    boost::asio::post(io, [weak = weak_from_this(), handler = std::move(handler), status]() {
      if (weak.lock()) handler(status);
    });
  }

  bool isConnected() const { return nc != nullptr && natsConnection_Status(nc) == NATS_CONN_STATUS_CONNECTED; }

  Status notConnected(const std::string& doing) const {
    return Status(ErrorCode::kUnavailable,
                  doing + ": not connected to NATS at " + joinUrls(options.urls) + " (reconnecting in the background)");
  }

  Status ensureInbox() {
    if (inbox_sub != nullptr) return Status::ok();
    natsInbox* inbox = nullptr;
    natsStatus s = natsInbox_Create(&inbox);
    if (s != NATS_OK) return natsError(s, "creating the reply inbox");
    std::string prefix = inbox;
    natsInbox_Destroy(inbox);
    uintptr_t route = addRoute(Route{weak_from_this(), &io, kInboxSubId, 0, 0});
    natsSubscription* sub = nullptr;
    s = natsConnection_Subscribe(&sub, nc, (prefix + ".>").c_str(), &Impl::onMessage, closureOf(route));
    if (s != NATS_OK) {
      removeRoute(route);
      return natsError(s, "subscribing to the reply inbox " + prefix + ".>");
    }
    inbox_prefix = prefix;
    inbox_sub = sub;
    inbox_route = route;
    return Status::ok();
  }

  void shutdown() {
    if (closed) return;
    closed = true;
    // First cut every route, so no nats.c thread can reach us from here on.
    {
      std::lock_guard<std::mutex> lock(g_routes_mu);
      g_routes.erase(connection_route);
      g_routes.erase(inbox_route);
      for (auto& [id, s] : subs) g_routes.erase(s.route);
    }
    for (auto& [id, s] : subs) natsSubscription_Destroy(s.sub);
    subs.clear();
    if (inbox_sub != nullptr) natsSubscription_Destroy(inbox_sub);
    inbox_sub = nullptr;
    if (nc != nullptr) natsConnection_Destroy(nc);  // closes, joins the connection's threads
    nc = nullptr;
    // Requests still in flight are dropped without calling their handlers: the node that made
    // them is being torn down too, and its handlers may refer to objects already gone.
    for (auto& [token, p] : pending) {
      if (p.timer) p.timer->cancel();
    }
    pending.clear();
    connection_handler = nullptr;
  }

  boost::asio::io_context& io;
  NatsOptions options;
  natsConnection* nc = nullptr;
  uintptr_t connection_route = 0;
  bool closed = false;
  bool reported_up = false;
  ConnectionHandler connection_handler;

  std::map<SubscriptionId, Subscription> subs;
  SubscriptionId next_sub_id = 1;

  std::string inbox_prefix;
  natsSubscription* inbox_sub = nullptr;
  uintptr_t inbox_route = 0;
  std::unordered_map<uint64_t, Pending> pending;
  uint64_t next_request_token = 1;
};

// ---------------------------------------------------------------------------------------------

Result<std::unique_ptr<NatsTransport>> NatsTransport::create(boost::asio::io_context& io, const NatsOptions& options) {
  if (options.urls.empty()) return Status(ErrorCode::kInvalidArgument, "NATS options: no server URL given");
  if (options.reconnect_wait_ms <= 0 || options.reconnect_wait_max_ms < options.reconnect_wait_ms) {
    return Status(ErrorCode::kInvalidArgument,
                  "NATS options: reconnect_wait_ms must be > 0 and <= reconnect_wait_max_ms (got " +
                      std::to_string(options.reconnect_wait_ms) + " and " +
                      std::to_string(options.reconnect_wait_max_ms) + ")");
  }
  if (options.ping_interval_ms <= 0 || options.max_pings_out <= 0 || options.connect_timeout_ms <= 0) {
    return Status(ErrorCode::kInvalidArgument,
                  "NATS options: ping_interval_ms, max_pings_out and connect_timeout_ms must be positive");
  }

  std::unique_ptr<NatsTransport> transport(new NatsTransport());
  auto impl = std::make_shared<Impl>(io, options);
  transport->impl_ = impl;
  impl->connection_route = addRoute(
      Route{impl, &io, kConnectionRoute, options.reconnect_wait_ms, options.reconnect_wait_max_ms});
  void* closure = closureOf(impl->connection_route);
  const std::string doing = "connecting to NATS at " + joinUrls(options.urls);

  natsOptions* opts = nullptr;
  natsStatus s = natsOptions_Create(&opts);
  if (s != NATS_OK) return natsError(s, doing);
  std::vector<const char*> servers;
  for (const auto& u : options.urls) servers.push_back(u.c_str());
  auto step = [&](natsStatus st) {
    if (s == NATS_OK) s = st;
  };
  step(natsOptions_SetServers(opts, servers.data(), static_cast<int>(servers.size())));
  if (!options.name.empty()) step(natsOptions_SetName(opts, options.name.c_str()));
  // Replies and small control messages go out at once instead of waiting ~1 ms for the
  // flusher thread (BUILD-NOTES: p50 1 ms → 0.35 ms on loopback).
  step(natsOptions_SetSendAsap(opts, true));
  step(natsOptions_SetAllowReconnect(opts, true));
  step(natsOptions_SetMaxReconnect(opts, -1));  // forever: the outbox waits, the node keeps serving
  step(natsOptions_SetReconnectWait(opts, options.reconnect_wait_ms));
  step(natsOptions_SetCustomReconnectDelay(opts, &Impl::reconnectDelay, closure));
  step(natsOptions_SetPingInterval(opts, options.ping_interval_ms));
  step(natsOptions_SetMaxPingsOut(opts, options.max_pings_out));
  step(natsOptions_SetTimeout(opts, options.connect_timeout_ms));
  // With a connected callback, Connect returns NATS_NOT_YET_CONNECTED instead of failing when
  // the server is down, and keeps trying in the background with the reconnect settings.
  step(natsOptions_SetRetryOnFailedConnect(opts, true, &Impl::onConnected, closure));
  step(natsOptions_SetDisconnectedCB(opts, &Impl::onDisconnected, closure));
  step(natsOptions_SetReconnectedCB(opts, &Impl::onReconnected, closure));
  step(natsOptions_SetClosedCB(opts, &Impl::onClosed, closure));
  step(natsOptions_SetErrorHandler(opts, &Impl::onAsyncError, closure));
  if (s != NATS_OK) {
    natsOptions_Destroy(opts);
    return natsError(s, doing + ": setting options");
  }

  natsConnection* nc = nullptr;
  s = natsConnection_Connect(&nc, opts);
  natsOptions_Destroy(opts);  // the connection keeps its own copy
  if (s != NATS_OK && s != NATS_NOT_YET_CONNECTED) {
    if (nc != nullptr) natsConnection_Destroy(nc);
    return natsError(s, doing);  // impl's destructor removes the route
  }
  impl->nc = nc;
  impl->reported_up = impl->isConnected();
  if (!impl->reported_up) {
    spdlog::warn("[{}] NATS at {} not reachable yet; retrying in the background", options.name,
                 joinUrls(options.urls));
  }
  return transport;
}

NatsTransport::~NatsTransport() {
  if (impl_) impl_->shutdown();
}

Result<Transport::SubscriptionId> NatsTransport::subscribe(const std::string& subject, MessageHandler handler) {
  Impl& impl = *impl_;
  TB_RETURN_IF_ERROR(validateSubject(subject, /*allow_wildcards=*/true).withContext("subscribing"));
  if (!handler) return Status(ErrorCode::kInvalidArgument, "subscribing to " + subject + ": no handler given");
  if (impl.closed || impl.nc == nullptr) {
    return Status(ErrorCode::kUnavailable, "subscribing to " + subject + ": transport is shut down");
  }
  SubscriptionId id = impl.next_sub_id++;
  uintptr_t route = addRoute(Route{impl.weak_from_this(), &impl.io, id, 0, 0});
  natsSubscription* sub = nullptr;
  // Works while disconnected too: nats.c sends the interest when the connection comes back.
  natsStatus s = natsConnection_Subscribe(&sub, impl.nc, subject.c_str(), &Impl::onMessage, closureOf(route));
  if (s != NATS_OK) {
    removeRoute(route);
    return natsError(s, "subscribing to " + subject);
  }
  impl.subs.emplace(id, Impl::Subscription{sub, std::make_shared<MessageHandler>(std::move(handler)), route});
  return id;
}

void NatsTransport::unsubscribe(SubscriptionId id) {
  Impl& impl = *impl_;
  auto it = impl.subs.find(id);
  if (it == impl.subs.end()) return;
  removeRoute(it->second.route);
  natsSubscription_Destroy(it->second.sub);  // removes the interest; safe with a callback in progress
  impl.subs.erase(it);
}

Status NatsTransport::publish(const std::string& subject, const Bytes& data) {
  Impl& impl = *impl_;
  TB_RETURN_IF_ERROR(validateSubject(subject, /*allow_wildcards=*/false).withContext("publishing"));
  TB_RETURN_IF_ERROR(checkSize(subject, data.size()));
  const std::string doing = "publishing to " + subject;
  // nats.c would buffer while reconnecting; the contract is to fail fast instead, so the
  // caller's outbox (not an invisible 8 MB buffer) holds what must not be lost.
  if (impl.closed || !impl.isConnected()) return impl.notConnected(doing);
  natsStatus s = natsConnection_Publish(impl.nc, subject.c_str(), data.empty() ? nullptr : data.data(),
                                        static_cast<int>(data.size()));
  if (s != NATS_OK) return natsError(s, doing);
  return Status::ok();
}

Status NatsTransport::reply(const InboundMessage& request, const Bytes& data) {
  if (request.reply_to.empty()) return Status::ok();
  return publish(request.reply_to, data);
}

void NatsTransport::request(const std::string& subject, const Bytes& data, DurationMs timeout, ReplyHandler handler) {
  Impl& impl = *impl_;
  if (!handler) return;  // nobody to tell
  if (Status v = validateSubject(subject, /*allow_wildcards=*/false); !v.isOk()) {
    impl.failLater(std::move(handler), v.withContext("requesting"));
    return;
  }
  if (Status v = checkSize(subject, data.size()); !v.isOk()) {
    impl.failLater(std::move(handler), v);
    return;
  }
  if (timeout <= 0) {
    impl.failLater(std::move(handler), Status(ErrorCode::kInvalidArgument,
                                              "requesting " + subject + ": timeout must be positive, got " +
                                                  std::to_string(timeout) + " ms"));
    return;
  }
  const std::string doing = "requesting " + subject;
  if (impl.closed || !impl.isConnected()) {
    impl.failLater(std::move(handler), impl.notConnected(doing));
    return;
  }
  if (Status inbox = impl.ensureInbox(); !inbox.isOk()) {
    impl.failLater(std::move(handler), inbox.withContext(doing));
    return;
  }

  uint64_t token = impl.next_request_token++;
  std::string reply_to = impl.inbox_prefix + "." + std::to_string(token);
  auto timer = std::make_unique<boost::asio::steady_timer>(impl.io);
  timer->expires_after(std::chrono::milliseconds(timeout));
  timer->async_wait([weak = impl.weak_from_this(), token, subject, timeout](const boost::system::error_code& ec) {
    if (ec == boost::asio::error::operation_aborted) return;
    if (auto locked = weak.lock()) {
      locked->complete(token, Status(ErrorCode::kTimeout, "no reply from " + subject + " within " +
                                                              std::to_string(timeout) + " ms"));
    }
  });
  impl.pending.emplace(token, Impl::Pending{std::move(handler), std::move(timer), subject, timeout});

  natsStatus s = natsConnection_PublishRequest(impl.nc, subject.c_str(), reply_to.c_str(),
                                               data.empty() ? nullptr : data.data(), static_cast<int>(data.size()));
  if (s != NATS_OK) {
    auto it = impl.pending.find(token);
    Impl::Pending p = std::move(it->second);
    impl.pending.erase(it);
    p.timer->cancel();
    impl.failLater(std::move(p.handler), natsError(s, doing));
  }
}

bool NatsTransport::connected() const { return impl_ && !impl_->closed && impl_->isConnected(); }

void NatsTransport::onConnectionChange(ConnectionHandler handler) { impl_->connection_handler = std::move(handler); }

Status NatsTransport::flush(DurationMs timeout) {
  Impl& impl = *impl_;
  if (impl.closed || !impl.isConnected()) return impl.notConnected("flushing");
  natsStatus s = natsConnection_FlushTimeout(impl.nc, std::max<DurationMs>(1, timeout));
  if (s != NATS_OK) return natsError(s, "flushing to NATS within " + std::to_string(timeout) + " ms");
  return Status::ok();
}

}  // namespace tongban
