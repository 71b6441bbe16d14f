// The simulated world. See sim_world.h for the contract; the choices made here:
//
// - Determinism: every container iterated to make a decision is ordered (std::map/std::set keyed
//   by ids or subjects, never by pointers); every random choice comes from the world's Random in
//   the order receivers are found (ascending endpoint id). No system clock, no threads.
// - Epochs: each endpoint has an epoch, bumped at crash AND at restart. Timers and connection
//   events capture the owner's epoch when armed and run only if the owner is alive in that same
//   epoch, so nothing armed before a crash (or while crashed) runs in a later life. Messages
//   capture both the sender's and the receiver's epoch at send time.
// - A message is decided at send time (reachable? dropped? duplicated? delay?) and checked
//   again at delivery time (both epochs unchanged, path still up, a matching subscription still
//   there). Anything sent to a receiver that does not reach it is counted in messagesDropped()
//   and traced ("drop" for a fault at send, "lost" for a loss in flight).
// - connected() models "connected to the local bus": alive, and the endpoint's own uplink is up
//   (a city is always connected). Same-bus peers stay reachable either way.
// - A request made by a crashed endpoint is dropped without calling its handler: a crashed
//   node's code does not run, and its pending requests die with it anyway.
#include "simulations/world/sim_world.h"

#include <algorithm>
#include <utility>

namespace tongban::sim {
namespace {

// A request to a subject nobody reachable subscribes to is answered after this delay, as an
// event (the contract forbids calling a handler from inside request()).
constexpr DurationMs kNoRespondersDelayMs = 1;

constexpr uint64_t kFnvPrime = 1099511628211ULL;

std::vector<std::string> splitTokens(const std::string& subject) {
  std::vector<std::string> tokens;
  size_t start = 0;
  while (true) {
    const size_t dot = subject.find('.', start);
    tokens.push_back(subject.substr(start, dot == std::string::npos ? std::string::npos : dot - start));
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return tokens;
}

// Subjects are dot-separated non-empty tokens without whitespace. Subscriptions may use "*" for
// one token and a final ">" for one or more tokens (as NATS does); published subjects may not.
Status checkSubject(const std::string& subject, bool allow_wildcards) {
  if (subject.empty()) return Status(ErrorCode::kInvalidArgument, "empty subject");
  const auto tokens = splitTokens(subject);
  for (size_t i = 0; i < tokens.size(); ++i) {
    const std::string& t = tokens[i];
    if (t.empty()) return Status(ErrorCode::kInvalidArgument, "subject '" + subject + "' has an empty token");
    for (char c : t) {
      if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
        return Status(ErrorCode::kInvalidArgument, "subject '" + subject + "' contains whitespace");
      }
    }
    const bool wild = t == "*" || t == ">";
    if (wild && !allow_wildcards) {
      return Status(ErrorCode::kInvalidArgument, "cannot publish to wildcard subject '" + subject + "'");
    }
    if (t == ">" && i + 1 != tokens.size()) {
      return Status(ErrorCode::kInvalidArgument, "'>' must be the last token of '" + subject + "'");
    }
  }
  return Status::ok();
}

bool isWildcard(const std::string& subject) {
  for (const auto& t : splitTokens(subject)) {
    if (t == "*" || t == ">") return true;
  }
  return false;
}

bool wildcardMatches(const std::vector<std::string>& pattern, const std::vector<std::string>& subject) {
  for (size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] == ">") return subject.size() > i;  // one or more remaining tokens
    if (i >= subject.size()) return false;
    if (pattern[i] != "*" && pattern[i] != subject[i]) return false;
  }
  return pattern.size() == subject.size();
}

}  // namespace

struct PendingRequest {
  std::shared_ptr<Transport::ReplyHandler> handler;
  Transport::SubscriptionId inbox_sub = 0;
  Clock::TimerId timeout_timer = 0;
};

struct SimWorld::EndpointState {
  EndpointState(int id, DivisionCode div, std::string name) : id(id), division(std::move(div)), label(std::move(name)) {
    chain.push_back(division.str());
    for (const auto& a : division.ancestors()) chain.push_back(a.str());
  }
  int id;
  DivisionCode division;
  std::string label;
  std::vector<std::string> chain;  // own division first, then each ancestor up to the city
  bool alive = true;
  uint64_t epoch = 0;
  std::unique_ptr<SimClock> clock;
  std::unique_ptr<SimTransport> transport;
  std::set<Transport::SubscriptionId> subs;
  std::map<uint64_t, PendingRequest> pending;  // by inbox number
  uint64_t next_inbox = 0;                     // never reset: old inboxes stay unique
  std::vector<std::shared_ptr<Transport::ConnectionHandler>> connection_handlers;
};

struct SimWorld::Network {
  struct Sub {
    int endpoint;
    std::string subject;
    std::vector<std::string> tokens;  // only for wildcard subscriptions
    std::shared_ptr<Transport::MessageHandler> handler;
  };

  explicit Network(SimWorld& w) : world(w) {}

  SimWorld& world;
  std::map<Transport::SubscriptionId, Sub> subs;
  // Exact subject -> (endpoint, subscription): ordered so one endpoint's subscriptions are adjacent.
  std::map<std::string, std::set<std::pair<int, Transport::SubscriptionId>>> exact;
  std::set<Transport::SubscriptionId> wildcards;  // a small list, scanned per message
  Transport::SubscriptionId next_sub = 1;
  std::set<Clock::TimerId> armed;  // timers scheduled and neither fired nor cancelled

  Transport::SubscriptionId addSub(int endpoint, const std::string& subject, Transport::MessageHandler handler) {
    const auto id = next_sub++;
    Sub sub{endpoint, subject, {}, std::make_shared<Transport::MessageHandler>(std::move(handler))};
    if (isWildcard(subject)) {
      sub.tokens = splitTokens(subject);
      wildcards.insert(id);
    } else {
      exact[subject].insert({endpoint, id});
    }
    subs.emplace(id, std::move(sub));
    world.endpoint(endpoint).subs.insert(id);
    return id;
  }

  void removeSub(Transport::SubscriptionId id) {
    auto it = subs.find(id);
    if (it == subs.end()) return;
    const Sub& sub = it->second;
    if (!sub.tokens.empty()) {
      wildcards.erase(id);
    } else {
      auto e = exact.find(sub.subject);
      if (e != exact.end()) {
        e->second.erase({sub.endpoint, id});
        if (e->second.empty()) exact.erase(e);
      }
    }
    world.endpoint(sub.endpoint).subs.erase(id);
    subs.erase(it);
  }

  // Endpoints with at least one subscription matching `subject`, ascending.
  std::set<int> receivers(const std::string& subject) const {
    std::set<int> out;
    if (auto e = exact.find(subject); e != exact.end()) {
      for (const auto& [endpoint, id] : e->second) out.insert(endpoint);
    }
    if (!wildcards.empty()) {
      const auto tokens = splitTokens(subject);
      for (auto id : wildcards) {
        const Sub& sub = subs.at(id);
        if (wildcardMatches(sub.tokens, tokens)) out.insert(sub.endpoint);
      }
    }
    return out;
  }

  // One endpoint's subscriptions matching `subject`, ascending by id.
  std::vector<Transport::SubscriptionId> matching(int endpoint, const std::string& subject) const {
    std::vector<Transport::SubscriptionId> out;
    if (auto e = exact.find(subject); e != exact.end()) {
      for (auto it = e->second.lower_bound({endpoint, 0}); it != e->second.end() && it->first == endpoint; ++it) {
        out.push_back(it->second);
      }
    }
    if (!wildcards.empty()) {
      const auto tokens = splitTokens(subject);
      for (auto id : wildcards) {
        const Sub& sub = subs.at(id);
        if (sub.endpoint == endpoint && wildcardMatches(sub.tokens, tokens)) out.push_back(id);
      }
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  // Ends a request exactly once: later replies, the timeout or a no-responders answer that come
  // after the first find nothing pending and do nothing.
  void completeRequest(int endpoint, uint64_t inbox, Result<Bytes> result) {
    auto& ep = world.endpoint(endpoint);
    auto it = ep.pending.find(inbox);
    if (it == ep.pending.end()) return;
    PendingRequest req = std::move(it->second);
    ep.pending.erase(it);
    world.cancelTimer(req.timeout_timer);
    removeSub(req.inbox_sub);
    (*req.handler)(std::move(result));
  }

  // Runs on the endpoint's executor (as an event), with the state it had when scheduled.
  void announceConnection(int endpoint, bool connected) {
    world.scheduleFor(endpoint, 0, [this, endpoint, connected] {
      auto handlers = world.endpoint(endpoint).connection_handlers;  // a handler may register more
      for (auto& h : handlers) (*h)(connected);
    });
  }
};

// ---- SimClock ----

TimeMs SimClock::now() const { return world_->now(); }

Clock::TimerId SimClock::schedule(DurationMs delay, Task task) {
  return world_->scheduleFor(endpoint_, delay, std::move(task));
}

void SimClock::cancel(TimerId id) { world_->cancelTimer(id); }

// ---- SimTransport ----

Result<Transport::SubscriptionId> SimTransport::subscribe(const std::string& subject, MessageHandler handler) {
  if (!world_->alive(endpoint_)) return Status(ErrorCode::kUnavailable, "endpoint is crashed; restart it first");
  TB_RETURN_IF_ERROR(checkSubject(subject, /*allow_wildcards=*/true));
  return world_->network().addSub(endpoint_, subject, std::move(handler));
}

void SimTransport::unsubscribe(SubscriptionId id) {
  auto& net = world_->network();
  auto it = net.subs.find(id);
  if (it == net.subs.end() || it->second.endpoint != endpoint_) return;  // not ours: leave it
  net.removeSub(id);
}

Status SimTransport::publish(const std::string& subject, const Bytes& data) {
  if (!world_->alive(endpoint_)) return Status(ErrorCode::kUnavailable, "endpoint is crashed");
  TB_RETURN_IF_ERROR(checkSubject(subject, /*allow_wildcards=*/false));
  if (data.size() > kMaxMessageBytes) {
    return Status(ErrorCode::kResourceExhausted, "message of " + std::to_string(data.size()) +
                                                     " bytes exceeds the limit of " +
                                                     std::to_string(kMaxMessageBytes));
  }
  world_->send(endpoint_, subject, "", data);
  return Status::ok();
}

Status SimTransport::reply(const InboundMessage& request, const Bytes& data) {
  if (request.reply_to.empty()) return Status::ok();
  return publish(request.reply_to, data);
}

void SimTransport::request(const std::string& subject, const Bytes& data, DurationMs timeout,
                           ReplyHandler handler) {
  SimWorld* world = world_;
  const int self = endpoint_;
  auto& ep = world->endpoint(self);
  if (!ep.alive) return;  // see the note at the top of this file
  Status bad = checkSubject(subject, /*allow_wildcards=*/false);
  if (bad.isOk() && data.size() > kMaxMessageBytes) {
    bad = Status(ErrorCode::kResourceExhausted, "request of " + std::to_string(data.size()) +
                                                    " bytes exceeds the limit of " +
                                                    std::to_string(kMaxMessageBytes));
  }
  if (!bad.isOk()) {
    world->scheduleFor(self, 0, [handler = std::move(handler), bad] { handler(bad); });
    return;
  }
  auto& net = world->network();
  const uint64_t inbox = ++ep.next_inbox;
  const std::string reply_subject = "_INBOX." + std::to_string(self) + "." + std::to_string(inbox);
  PendingRequest req;
  req.handler = std::make_shared<ReplyHandler>(std::move(handler));
  req.inbox_sub = net.addSub(self, reply_subject, [world, self, inbox](const InboundMessage& m) {
    world->network().completeRequest(self, inbox, Result<Bytes>(m.data));
  });
  req.timeout_timer = world->scheduleFor(self, timeout, [world, self, inbox, subject, timeout] {
    world->network().completeRequest(
        self, inbox,
        Status(ErrorCode::kTimeout, "no reply to '" + subject + "' within " + std::to_string(timeout) + " ms"));
  });
  ep.pending.emplace(inbox, std::move(req));

  bool anyone = false;
  for (int r : net.receivers(subject)) {
    if (world->reachable(self, r)) { anyone = true; break; }
  }
  if (!anyone) {
    world->scheduleFor(self, kNoRespondersDelayMs, [world, self, inbox, subject] {
      world->network().completeRequest(
          self, inbox, Status(ErrorCode::kNoResponders, "nobody reachable subscribes to '" + subject + "'"));
    });
    return;
  }
  world->send(self, subject, reply_subject, data);
}

bool SimTransport::connected() const {
  auto& ep = world_->endpoint(endpoint_);
  if (!ep.alive) return false;
  if (ep.chain.size() == 1) return true;  // the city: its bus is the root
  return world_->linkUp(ep.division);
}

void SimTransport::onConnectionChange(ConnectionHandler handler) {
  world_->endpoint(endpoint_).connection_handlers.push_back(
      std::make_shared<ConnectionHandler>(std::move(handler)));
}

// ---- SimWorld ----

SimWorld::SimWorld(uint64_t seed, TimeMs start_ms)
    : now_ms_(start_ms), random_(seed), network_(std::make_unique<Network>(*this)) {}

SimWorld::~SimWorld() = default;

int SimWorld::addEndpoint(const DivisionCode& division, const std::string& label) {
  const int id = static_cast<int>(endpoints_.size());
  auto ep = std::make_unique<EndpointState>(id, division, label);
  ep->clock.reset(new SimClock(this, id));          // constructors are private to SimWorld
  ep->transport.reset(new SimTransport(this, id));
  endpoints_.push_back(std::move(ep));
  return id;
}

SimClock& SimWorld::clock(int endpoint) { return *endpoints_.at(endpoint)->clock; }
SimTransport& SimWorld::transport(int endpoint) { return *endpoints_.at(endpoint)->transport; }

void SimWorld::crash(int endpoint) {
  auto& ep = *endpoints_.at(endpoint);
  if (!ep.alive) return;
  ep.alive = false;
  ++ep.epoch;  // timers and messages of the old life now fail their epoch check
  const std::vector<Transport::SubscriptionId> subs(ep.subs.begin(), ep.subs.end());
  for (auto id : subs) network_->removeSub(id);
  for (auto& [inbox, req] : ep.pending) cancelTimer(req.timeout_timer);
  ep.pending.clear();  // their handlers are never called
  ep.connection_handlers.clear();
  trace("crash " + std::to_string(endpoint) + " " + ep.label);
}

void SimWorld::restart(int endpoint) {
  auto& ep = *endpoints_.at(endpoint);
  if (ep.alive) return;
  ep.alive = true;
  ++ep.epoch;  // anything armed while crashed stays dead
  trace("restart " + std::to_string(endpoint) + " " + ep.label);
  // Runs after the caller has built the new node, so its handler hears the initial state.
  network_->announceConnection(endpoint, ep.transport->connected());
}

bool SimWorld::alive(int endpoint) const { return endpoints_.at(endpoint)->alive; }

void SimWorld::setLinkUp(const DivisionCode& child, bool up) {
  if (linkUp(child) == up) return;
  if (up) {
    down_links_.erase(child.str());
  } else {
    down_links_.insert(child.str());
  }
  trace("link " + child.str() + (up ? " up" : " down"));
  for (auto& ep : endpoints_) {
    if (ep->alive && ep->division == child) network_->announceConnection(ep->id, ep->transport->connected());
  }
}

bool SimWorld::linkUp(const DivisionCode& child) const { return down_links_.count(child.str()) == 0; }

void SimWorld::healAll() {
  const std::vector<std::string> down(down_links_.begin(), down_links_.end());
  for (const auto& code : down) {
    auto parsed = DivisionCode::parse(code);
    if (parsed.isOk()) setLinkUp(*parsed, true);
  }
}

void SimWorld::at(TimeMs when, std::function<void()> task) {
  queue_.push(Event{std::max(when, now_ms_), next_order_++, -1, 0, std::move(task)});
}

Status SimWorld::runUntil(TimeMs until_ms, uint64_t max_events) {
  uint64_t ran = 0;
  while (!queue_.empty()) {
    if (queue_.top().when > until_ms) break;
    if (ran >= max_events) {
      return Status(ErrorCode::kResourceExhausted,
                    "simulation stopped after " + std::to_string(ran) + " events at t=" + std::to_string(now_ms_) +
                        " ms, before reaching " + std::to_string(until_ms) +
                        " ms: raise max_events or look for a timer loop that never ends");
    }
    // Moving out of top() is safe: pop() only compares (when, order), which a move leaves intact.
    Event ev = std::move(const_cast<Event&>(queue_.top()));
    queue_.pop();
    if (ev.timer_id != 0) {
      if (cancelled_.erase(ev.timer_id) > 0) continue;
      network_->armed.erase(ev.timer_id);
    }
    now_ms_ = ev.when;
    ++ran;
    ++events_run_;
    ev.task();
  }
  now_ms_ = std::max(now_ms_, until_ms);
  return Status::ok();
}

void SimWorld::trace(const std::string& line) {
  auto fold = [this](const std::string& s) {
    for (unsigned char c : s) {
      trace_hash_ ^= c;
      trace_hash_ *= kFnvPrime;
    }
  };
  fold(std::to_string(now_ms_));
  fold(" ");
  fold(line);
  fold("\n");
}

Clock::TimerId SimWorld::scheduleFor(int owner, DurationMs delay, std::function<void()> task) {
  const Clock::TimerId id = next_timer_++;
  network_->armed.insert(id);
  std::function<void()> run;
  if (owner < 0) {
    run = std::move(task);
  } else {
    const uint64_t epoch = endpoints_.at(owner)->epoch;
    run = [this, owner, epoch, task = std::move(task)] {
      const auto& ep = *endpoints_[owner];
      if (ep.alive && ep.epoch == epoch) task();
    };
  }
  queue_.push(Event{now_ms_ + std::max<DurationMs>(delay, 0), next_order_++, owner, id, std::move(run)});
  return id;
}

void SimWorld::cancelTimer(Clock::TimerId id) {
  // Only a timer still armed is marked, so cancelling a fired or unknown id leaves no residue.
  if (network_->armed.erase(id) > 0) cancelled_.insert(id);
}

void SimWorld::send(int from, const std::string& subject, const std::string& reply_to, const Bytes& data) {
  const auto receivers = network_->receivers(subject);
  if (receivers.empty()) return;
  const uint64_t from_epoch = endpoints_.at(from)->epoch;
  auto payload = std::make_shared<const Bytes>(data);  // shared by every copy in flight
  const DurationMs lo = std::max<DurationMs>(faults_.min_delay_ms, 0);
  const DurationMs hi = std::max(faults_.max_delay_ms, lo);
  for (int to : receivers) {
    if (!reachable(from, to)) continue;
    if (random_.chance(faults_.drop)) {
      ++dropped_;
      trace("drop " + std::to_string(from) + "->" + std::to_string(to) + " " + subject);
      continue;
    }
    const uint64_t to_epoch = endpoints_[to]->epoch;
    const int copies = 1 + (random_.chance(faults_.duplicate) ? 1 : 0);
    for (int c = 0; c < copies; ++c) {
      const DurationMs delay = random_.between(lo, hi);
      queue_.push(Event{now_ms_ + delay, next_order_++, -1, 0,
                        [this, from, to, from_epoch, to_epoch, subject, reply_to, payload] {
                          deliver(from, to, from_epoch, to_epoch, subject, reply_to, *payload);
                        }});
    }
  }
}

bool SimWorld::reachable(int a, int b) const {
  const auto& ea = *endpoints_.at(a);
  const auto& eb = *endpoints_.at(b);
  if (!ea.alive || !eb.alive) return false;
  if (ea.division == eb.division) return true;
  // Lowest common ancestor: the first division of a's chain that also appears in b's.
  for (size_t i = 0; i < ea.chain.size(); ++i) {
    const auto j = std::find(eb.chain.begin(), eb.chain.end(), ea.chain[i]);
    if (j == eb.chain.end()) continue;
    if (down_links_.empty()) return true;
    // Links below the common ancestor are named by their child division.
    for (size_t k = 0; k < i; ++k) {
      if (down_links_.count(ea.chain[k])) return false;
    }
    for (auto k = eb.chain.begin(); k != j; ++k) {
      if (down_links_.count(*k)) return false;
    }
    return true;
  }
  return false;  // different trees (different cities): no path
}

void SimWorld::deliver(int from, int to, uint64_t from_epoch, uint64_t to_epoch, const std::string& subject,
                       const std::string& reply_to, const Bytes& data) {
  const auto& dst = *endpoints_.at(to);
  const char* why = nullptr;
  std::vector<Transport::SubscriptionId> subs;
  if (endpoints_.at(from)->epoch != from_epoch) {
    why = "sender crashed";
  } else if (!dst.alive || dst.epoch != to_epoch) {
    why = "receiver crashed";
  } else if (!reachable(from, to)) {
    why = "partitioned";
  } else {
    subs = network_->matching(to, subject);
    if (subs.empty()) why = "unsubscribed";
  }
  const std::string route = std::to_string(from) + "->" + std::to_string(to) + " " + subject;
  if (why != nullptr) {
    ++dropped_;
    trace("lost " + route + " (" + why + ")");
    return;
  }
  ++delivered_;
  trace("deliver " + route + " " + std::to_string(data.size()));
  for (auto id : subs) {
    // An earlier handler may have unsubscribed this one or crashed the endpoint.
    if (!dst.alive || dst.epoch != to_epoch) return;
    auto it = network_->subs.find(id);
    if (it == network_->subs.end()) continue;
    auto handler = it->second.handler;  // keeps the handler alive if it unsubscribes itself
    (*handler)(InboundMessage{subject, reply_to, data});
  }
}

}  // namespace tongban::sim
