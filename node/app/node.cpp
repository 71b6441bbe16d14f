#include "node/app/node.h"

#include <filesystem>

#include <spdlog/spdlog.h>

#include "federation/store/outbox.h"
#include "federation/store/receipts.h"
#include "federation/sync/downlink.h"
#include "federation/sync/uplink.h"

namespace tongban {

namespace {
const std::vector<Migration> kNodeMigrations = {
    {1, "CREATE TABLE node_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"},
};
}  // namespace

struct Node::Impl {
  NodeOptions options;
  NodeEnvironment env;
  std::unique_ptr<Database> db;
  std::optional<Outbox> outbox;
  std::optional<Receipts> receipts;
  KindRegistry kinds;
  std::optional<Verifier> verifier;
  std::unique_ptr<Downlink> downlink;
  std::unique_ptr<Uplink> uplink;   // null for the city
  Transport::SubscriptionId status_subscription = 0;
  Clock::TimerId heartbeat_timer = 0;
  TimeMs started_at_ms = 0;
  bool stopped = false;

  const DivisionCode& self() const { return options.identity.division; }

  Result<std::string> meta(const std::string& key) {
    TB_ASSIGN_OR_RETURN(auto stmt, db->prepare("SELECT value FROM node_meta WHERE key = ?1"));
    stmt.bind(1, key);
    TB_ASSIGN_OR_RETURN(bool row, stmt.step());
    if (!row) return std::string();
    return stmt.columnText(0);
  }

  Status setMeta(const std::string& key, const std::string& value) {
    TB_ASSIGN_OR_RETURN(auto stmt, db->prepare("INSERT OR REPLACE INTO node_meta (key, value) VALUES (?1, ?2)"));
    return stmt.bind(1, key).bind(2, value).run();
  }

  // Enqueues a message to the parent in its own transaction (for messages that are not the
  // consequence of another state change) and wakes the uplink.
  Result<uint64_t> enqueueUp(MessageKind kind, const Bytes& payload, bool coalescing,
                             const std::function<Status(uint64_t seq)>& also_in_txn = nullptr) {
    const auto parent = self().parent();
    if (!parent) return Status(ErrorCode::kFailedPrecondition, "the city has no parent");
    TB_ASSIGN_OR_RETURN(auto txn, db->begin());
    const TimeMs now = env.clock->now();
    TB_ASSIGN_OR_RETURN(uint64_t seq, coalescing ? outbox->enqueueCoalescing(kind, parent->str(), payload, now)
                                                 : outbox->enqueue(kind, parent->str(), payload, now));
    if (also_in_txn) TB_RETURN_IF_ERROR(also_in_txn(seq));
    TB_RETURN_IF_ERROR(txn.commit());
    if (env.observer) env.observer->onEnqueued(self(), seq, kind);
    if (uplink) uplink->kick();
    return seq;
  }

  Status ensureJoinEnqueued() {
    TB_ASSIGN_OR_RETURN(std::string join_seq, meta("join_seq"));
    if (!join_seq.empty()) return Status::ok();
    JoinMsg join{options.identity.name, kSoftwareVersion};
    auto seq = enqueueUp(kinds::kJoin, encode(join), /*coalescing=*/false,
                         [&](uint64_t join_seq) { return setMeta("join_seq", std::to_string(join_seq)); });
    return seq.status();
  }

  void scheduleHeartbeat() {
    heartbeat_timer = env.clock->schedule(options.limits.heartbeat_interval_ms, [this] {
      heartbeat_timer = 0;
      if (stopped) return;
      sendHeartbeat();
      scheduleHeartbeat();
    });
  }

  void sendHeartbeat() {
    HeartbeatMsg hb;
    auto depth = outbox->depth();
    hb.outbox_depth = depth ? *depth : 0;
    hb.started_at_ms = started_at_ms;
    auto kids = downlink->children();
    hb.children_count = kids ? static_cast<uint32_t>(kids->size()) : 0;
    auto seq = enqueueUp(kinds::kHeartbeat, encode(hb), /*coalescing=*/true);
    if (!seq) spdlog::error("[{}] could not enqueue heartbeat: {}", self().str(), seq.status().toString());
  }

  void answerStatus(const InboundMessage& m) {
    auto request = decodeStatusRequest(m.data);
    if (!request) {
      spdlog::warn("[{}] ignored a malformed status request: {}", self().str(), request.status().toString());
      return;
    }
    auto st = buildStatus();
    if (!st) {
      spdlog::error("[{}] could not build status: {}", self().str(), st.status().toString());
      return;
    }
    SealParams p;
    p.kind = kinds::kStatusReply;
    p.timestamp_ms = env.clock->now();
    p.target = self();  // a statement about itself; the asker checks signer == the node it asked
    p.payload = encode(*st);
    p.nonce = request->nonce;
    (void)env.transport->reply(m, sealEnvelope(options.identity, p));
  }

  Result<bool> joined() {
    if (!uplink) return true;
    TB_ASSIGN_OR_RETURN(std::string join_seq, meta("join_seq"));
    if (join_seq.empty()) return false;
    TB_ASSIGN_OR_RETURN(auto stmt, db->prepare(
        "SELECT (SELECT COUNT(*) FROM outbox WHERE seq = ?1) + (SELECT COUNT(*) FROM outbox_rejected WHERE seq = ?1)"));
    stmt.bind(1, static_cast<int64_t>(std::stoll(join_seq)));
    TB_ASSIGN_OR_RETURN(bool row, stmt.step());
    return row && stmt.columnInt64(0) == 0;
  }

  Result<NodeStatusMsg> buildStatus() {
    NodeStatusMsg s;
    s.division = self().str();
    s.name = options.identity.name;
    s.level = levelName(self().level());
    s.parent = self().parent() ? self().parent()->str() : "";
    s.bus_connected = env.transport->connected();
    if (uplink) {
      const auto& u = uplink->state();
      s.parent_link = u.link;
      s.parent_link_since_ms = u.link_since_ms;
      s.last_ack_ms = u.last_ack_ms;
      s.last_error = u.last_error;
    } else {
      s.parent_link = "none";
    }
    TB_ASSIGN_OR_RETURN(s.outbox_depth, outbox->depth());
    s.now_ms = env.clock->now();
    s.started_at_ms = started_at_ms;
    TB_ASSIGN_OR_RETURN(s.joined, joined());
    TB_ASSIGN_OR_RETURN(s.children, downlink->children());
    return s;
  }

  void stop() {
    if (stopped) return;
    stopped = true;
    if (heartbeat_timer) env.clock->cancel(heartbeat_timer);
    if (status_subscription) env.transport->unsubscribe(status_subscription);
    if (uplink) uplink->stop();
    if (downlink) downlink->stop();
  }
};

Node::Node(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Node::~Node() { stop(); }

Result<std::unique_ptr<Node>> Node::open(NodeOptions options, NodeEnvironment env) {
  if (!env.clock || !env.transport || !env.random) {
    return Status(ErrorCode::kInvalidArgument, "a node needs a clock, a transport and a random generator");
  }
  auto impl = std::make_unique<Impl>();
  impl->options = std::move(options);
  impl->env = env;
  const std::string code = impl->self().str();

  std::error_code ec;
  std::filesystem::create_directories(impl->options.data_dir, ec);
  if (ec) {
    return Status(ErrorCode::kIo, "cannot create data directory " + impl->options.data_dir + ": " + ec.message());
  }
  DatabaseOptions db_options;
  db_options.path = impl->options.data_dir + "/node.db";
  db_options.synchronous = impl->options.synchronous;
  TB_ASSIGN_OR_RETURN(impl->db, Database::open(db_options));
  TB_RETURN_IF_ERROR(impl->db->migrate("node", kNodeMigrations));
  TB_ASSIGN_OR_RETURN(auto outbox, Outbox::open(*impl->db));
  impl->outbox.emplace(std::move(outbox));
  TB_ASSIGN_OR_RETURN(auto receipts, Receipts::open(*impl->db));
  impl->receipts.emplace(std::move(receipts));

  // A node refuses to run on a database that belongs to another division: mixing two nodes'
  // outboxes and receipts would corrupt both.
  TB_ASSIGN_OR_RETURN(std::string stored_division, impl->meta("division"));
  if (stored_division.empty()) {
    TB_RETURN_IF_ERROR(impl->setMeta("division", code));
  } else if (stored_division != code) {
    return Status(ErrorCode::kFailedPrecondition, "data directory " + impl->options.data_dir +
                                                      " belongs to division " + stored_division + ", not " + code);
  }

  registerFederationKinds(impl->kinds);
  TB_ASSIGN_OR_RETURN(auto verifier, Verifier::create(impl->options.identity.root_certificate, &impl->kinds));
  impl->verifier.emplace(std::move(verifier));
  for (size_t i = 0; i < impl->options.revocations.size(); ++i) {
    TB_RETURN_IF_ERROR(impl->verifier->addRevocation(impl->options.revocations[i])
                           .withContext("key revocation #" + std::to_string(i + 1)));
  }

  impl->started_at_ms = env.clock->now();
  Impl* raw = impl.get();
  impl->downlink = std::make_unique<Downlink>(impl->options.identity, *impl->db, *impl->receipts, *impl->verifier,
                                              *env.clock, *env.transport, env.observer);
  TB_RETURN_IF_ERROR(impl->downlink->start());
  auto sub = env.transport->subscribe(statusSubject(impl->self()),
                                      [raw](const InboundMessage& m) { raw->answerStatus(m); });
  if (!sub) return sub.status().withContext("subscribing to " + statusSubject(impl->self()));
  impl->status_subscription = *sub;

  if (impl->self().parent()) {
    impl->uplink = std::make_unique<Uplink>(impl->options.identity, *impl->db, *impl->outbox, *impl->verifier,
                                            *env.clock, *env.transport, *env.random, impl->options.limits,
                                            env.observer);
    TB_RETURN_IF_ERROR(impl->uplink->start());
    TB_RETURN_IF_ERROR(impl->ensureJoinEnqueued());
    impl->scheduleHeartbeat();
  }
  spdlog::info("[{}] node {} ({}) started, data in {}", code, impl->options.identity.name,
               levelName(impl->self().level()), impl->options.data_dir);
  return std::unique_ptr<Node>(new Node(std::move(impl)));
}

void Node::stop() { impl_->stop(); }
const Identity& Node::identity() const { return impl_->options.identity; }
Result<NodeStatusMsg> Node::status() { return impl_->buildStatus(); }
Result<uint64_t> Node::outboxDepth() { return impl_->outbox->depth(); }
Result<bool> Node::joined() { return impl_->joined(); }
Database& Node::database() { return *impl_->db; }
std::optional<UplinkState> Node::uplinkState() const {
  if (!impl_->uplink) return std::nullopt;
  return impl_->uplink->state();
}

}  // namespace tongban
