#include "node/app/node.h"

#include <filesystem>

#include <spdlog/spdlog.h>

#include "federation/store/outbox.h"
#include "federation/store/receipts.h"
#include "federation/sync/downlink.h"
#include "federation/sync/shipper.h"
#include "federation/util/files.h"
#include "node/credentials/credential_lookup.h"
#include "node/forwarding/forwarding.h"

namespace tongban {

namespace {
const std::vector<Migration> kNodeMigrations = {
    {1, "CREATE TABLE node_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"},
    {2,
     // What the subtree below this node recorded: every case event and material record, as
     // received (each ancestor holds its whole subtree's records; the city holds everything).
     "CREATE TABLE subtree_case_events (origin TEXT NOT NULL, case_number TEXT NOT NULL,"
     "  step_index INTEGER NOT NULL, step TEXT NOT NULL, item_code TEXT NOT NULL, department TEXT NOT NULL,"
     "  state TEXT NOT NULL, actor TEXT NOT NULL, at_ms INTEGER NOT NULL, deadline_ms INTEGER NOT NULL,"
     "  detail TEXT NOT NULL, payload BLOB NOT NULL, received_ms INTEGER NOT NULL,"
     "  PRIMARY KEY (origin, case_number, step_index, step));"
     "CREATE TABLE subtree_materials (hash TEXT NOT NULL, holder TEXT NOT NULL, kind TEXT NOT NULL,"
     "  stored_at TEXT NOT NULL, payload BLOB NOT NULL, received_ms INTEGER NOT NULL,"
     "  PRIMARY KEY (hash, holder, kind, stored_at));"},
};

// Yellow/red notices: logged with the responsible person (an SMS gateway can replace this).
class LogNotifier : public Notifier {
 public:
  explicit LogNotifier(std::string self) : self_(std::move(self)) {}
  void notify(const std::string& case_number, Light light, const std::string& responsible,
              const std::string& message) override {
    spdlog::warn("[{}] {} light for {} (responsible: {}): {}", self_, lightName(light), case_number,
                 responsible.empty() ? "nobody" : responsible, message);
  }
 private:
  std::string self_;
};

constexpr DurationMs kCatalogueRequestTimeoutMs = 5000;
// A city's completeness watermark normally trails its clock by a few heartbeat intervals (one per
// level on the way up); beyond this many a "not found" names the subtree that holds it back.
constexpr int64_t kCompletenessLagHeartbeats = 6;
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
  std::unique_ptr<Shipper> uplink;   // to the parent; null for the city
  // To children, for what travels down (decisions on forwarded cases); started on demand.
  std::map<std::string, std::unique_ptr<Shipper>> downlinks;
  std::optional<CatalogueStore> catalogue;
  std::optional<MaterialStore> materials;
  std::optional<CaseService> cases;
  std::optional<ForwardingService> forwarding;
  std::optional<CredentialService> credentials;
  std::unique_ptr<Feed> feed;
  // --- supervision ---
  std::optional<SupervisionService> supervision;
  Clock::TimerId supervision_timer = 0;
  // --- end supervision ---
  std::unique_ptr<LogNotifier> notifier;
  // --- material fetch: files on demand from the node that stores them (node/materials/fetch.h) ---
  std::unique_ptr<MaterialResponder> material_responder;
  std::unique_ptr<MaterialFetcher> material_fetcher;

  // The records of a file that this node's subtree relayed up: the newest per storing node,
  // newest first, at most `limit` (the nodes a fetch asks in turn).
  Result<std::vector<MaterialRecordInfo>> findSubtreeMaterials(const std::string& hash, const std::string& holder,
                                                               size_t limit) {
    // SQLite takes the bare column `payload` from the row holding MAX(received_ms) in each group.
    TB_ASSIGN_OR_RETURN(auto stmt, db->prepare("SELECT payload, MAX(received_ms) AS newest FROM subtree_materials"
                                               " WHERE hash = ?1 AND holder = ?2 GROUP BY stored_at"
                                               " ORDER BY newest DESC, stored_at LIMIT ?3"));
    stmt.bind(1, hash).bind(2, holder).bind(3, static_cast<int64_t>(limit));
    std::vector<MaterialRecordInfo> records;
    while (true) {
      TB_ASSIGN_OR_RETURN(bool row, stmt.step());
      if (!row) break;
      TB_ASSIGN_OR_RETURN(MaterialRecordInfo record, decodeMaterialRecord(stmt.columnBlob(0)));
      records.push_back(std::move(record));
    }
    return records;
  }
  // --- end material fetch ---
  std::unique_ptr<LookupService> lookups;  // --- lookups --- (see the block in open())
  Transport::SubscriptionId status_subscription = 0;
  Transport::SubscriptionId catalogue_subscription = 0;
  Clock::TimerId heartbeat_timer = 0;
  Clock::TimerId catalogue_timer = 0;
  Clock::TimerId lights_timer = 0;
  bool catalogue_request_in_flight = false;
  std::shared_ptr<bool> alive = std::make_shared<bool>(true);
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

  // For services that enqueue inside their own transaction (case events, material records).
  Result<uint64_t> enqueueInTransaction(MessageKind kind, const Bytes& payload) {
    const auto parent = self().parent();
    if (!parent) return Status(ErrorCode::kFailedPrecondition, "the city has no parent");
    return enqueueTo(*parent, kind, payload);
  }

  // Enqueues for a neighbour (the parent or a child) inside the caller's open transaction.
  Result<uint64_t> enqueueTo(const DivisionCode& neighbour, MessageKind kind, const Bytes& payload) {
    if (!neighbour.isParentOf(self()) && !self().isParentOf(neighbour)) {
      return Status(ErrorCode::kInternal, self().str() + " has no link to " + neighbour.str() +
                                              ": messages go to the parent or a child only");
    }
    TB_ASSIGN_OR_RETURN(uint64_t seq, outbox->enqueue(kind, neighbour.str(), payload, env.clock->now()));
    // Notified before the caller commits: the services commit right after enqueueing.
    if (env.observer) env.observer->onEnqueued(self(), seq, kind);
    kickShipper(neighbour);  // the send runs after the current handler, i.e. after the commit
    return seq;
  }

  // Wakes the shipper for a neighbour, starting one for a child the first time it is needed.
  void kickShipper(const DivisionCode& neighbour) {
    if (stopped) return;
    if (uplink && neighbour == uplink->peer()) {
      uplink->kick();
      return;
    }
    if (!self().isParentOf(neighbour)) return;
    auto& shipper = downlinks[neighbour.str()];
    if (!shipper) {
      shipper = std::make_unique<Shipper>(options.identity, neighbour, downSubject(neighbour), *db, *outbox, *verifier,
                                          *env.clock, *env.transport, *env.random, options.limits, env.observer);
      if (auto st = shipper->start(); !st.isOk()) {
        spdlog::error("[{}] cannot ship to {}: {}", self().str(), neighbour.str(), st.toString());
        shipper.reset();
        downlinks.erase(neighbour.str());
      }
      return;  // start() schedules the first attempt
    }
    shipper->kick();
  }

  // Applies a case event from a child: keep it, and pass it on to our own parent in the same
  // transaction, so every ancestor ends up holding its subtree's events.
  Status applyCaseEvent(const OpenedEnvelope& e) {
    TB_ASSIGN_OR_RETURN(CaseEventInfo event, decodeCaseEvent(e.payload));
    auto origin = DivisionCode::parse(event.origin);
    if (!origin || !e.signer.covers(*origin)) {
      return Status(ErrorCode::kInvalidArgument, "case event of " + event.origin + " relayed by " + e.signer.str() +
                                                     ", which does not cover it");
    }
    TB_ASSIGN_OR_RETURN(auto stmt, db->prepare(
        "INSERT OR IGNORE INTO subtree_case_events (origin, case_number, step_index, step, item_code, department,"
        " state, actor, at_ms, deadline_ms, detail, payload, received_ms)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"));
    stmt.bind(1, event.origin).bind(2, event.case_number).bind(3, static_cast<int64_t>(event.step_index));
    stmt.bind(4, event.step).bind(5, event.item_code).bind(6, event.department).bind(7, event.state);
    stmt.bind(8, event.actor).bind(9, event.at_ms).bind(10, event.deadline_ms).bind(11, event.detail);
    stmt.bind(12, e.payload).bind(13, env.clock->now());
    TB_RETURN_IF_ERROR(stmt.run());
    if (db->changes() == 0 || !uplink) return Status::ok();
    return enqueueInTransaction(kCaseEventKind, e.payload).status();
  }

  Status applyMaterialRecord(const OpenedEnvelope& e) {
    TB_ASSIGN_OR_RETURN(MaterialRecordInfo record, decodeMaterialRecord(e.payload));
    auto stored_at = DivisionCode::parse(record.stored_at);
    if (!stored_at || !e.signer.covers(*stored_at)) {
      return Status(ErrorCode::kInvalidArgument, "material record stored at " + record.stored_at + " relayed by " +
                                                     e.signer.str() + ", which does not cover it");
    }
    TB_ASSIGN_OR_RETURN(auto stmt, db->prepare(
        "INSERT OR IGNORE INTO subtree_materials (hash, holder, kind, stored_at, payload, received_ms)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6)"));
    stmt.bind(1, record.hash).bind(2, record.holder).bind(3, record.kind).bind(4, record.stored_at);
    stmt.bind(5, e.payload).bind(6, env.clock->now());
    TB_RETURN_IF_ERROR(stmt.run());
    if (db->changes() == 0 || !uplink) return Status::ok();
    return enqueueInTransaction(kMaterialRecordKind, e.payload).status();
  }

  // Rules flow down by pull: ask the parent whether it holds a newer catalogue. Children ask us
  // the same way, so a new version spreads one level per poll interval at most.
  void pollCatalogue() {
    const auto parent = self().parent();
    if (!parent || catalogue_request_in_flight || stopped) return;
    catalogue_request_in_flight = true;
    env.transport->request(catalogueSubject(*parent), encodeCatalogueRequest(catalogue->version()),
                           kCatalogueRequestTimeoutMs, [this, alive = alive](Result<Bytes> reply) {
                             if (!*alive) return;
                             catalogue_request_in_flight = false;
                             if (!reply || reply->empty()) return;  // unreachable, or nothing newer
                             auto newer = catalogue->offer(*reply, env.clock->now());
                             if (!newer) {
                               spdlog::warn("[{}] refused a catalogue from {}: {}", self().str(),
                                            self().parent()->str(), newer.status().toString());
                             } else if (*newer) {
                               spdlog::info("[{}] catalogue version {} received", self().str(), catalogue->version());
                             }
                           });
  }

  void answerCatalogue(const InboundMessage& m) {
    auto have = decodeCatalogueRequest(m.data);
    if (!have) return;  // garbage: nothing to say
    const bool newer = catalogue->version() > *have;
    (void)env.transport->reply(m, newer ? catalogue->currentSealed() : Bytes{});
  }

  // Runs `work` after `first_delay` and then every `interval` on the node's executor until
  // stop(). `slot` holds the pending timer so stop() can cancel it.
  void every(DurationMs first_delay, DurationMs interval, Clock::TimerId* slot, std::function<void()> work) {
    *slot = env.clock->schedule(first_delay, [this, interval, slot, work] {
      *slot = 0;
      if (stopped) return;
      work();
      every(interval, interval, slot, work);
    });
  }

  void scanLights() {
    auto recorded = cases->scanLights(env.clock->now());
    if (!recorded) spdlog::error("[{}] light scan failed: {}", self().str(), recorded.status().toString());
  }

  // Supervision: snapshots of the days whose figures changed, sent up.
  void publishSupervision() {
    auto made = supervision->publish(env.clock->now());
    if (!made) spdlog::error("[{}] supervision snapshot failed: {}", self().str(), made.status().toString());
  }

  Status publishCatalogueFile() {
    TB_ASSIGN_OR_RETURN(Bytes text, readFileBytes(options.catalogue_file));
    auto parsed = parseCatalogueJson(toString(text), 0, env.clock->now());
    if (!parsed) return parsed.status().withContext("catalogue file " + options.catalogue_file);
    auto version = catalogue->publish(options.identity, std::move(parsed).value(), env.clock->now());
    if (!version && version.status().code() == ErrorCode::kAlreadyExists) return Status::ok();
    if (!version) return version.status();
    spdlog::info("[{}] published catalogue version {} from {}", self().str(), *version, options.catalogue_file);
    return Status::ok();
  }

  Status ensureJoinEnqueued() {
    TB_ASSIGN_OR_RETURN(std::string join_seq, meta("join_seq"));
    if (!join_seq.empty()) return Status::ok();
    JoinMsg join{options.identity.name, kSoftwareVersion};
    auto seq = enqueueUp(kinds::kJoin, encode(join), /*coalescing=*/false,
                         [&](uint64_t join_seq) { return setMeta("join_seq", std::to_string(join_seq)); });
    return seq.status();
  }

  void sendHeartbeat() {
    HeartbeatMsg hb;
    auto depth = outbox->depth();
    hb.outbox_depth = depth ? *depth : 0;
    hb.started_at_ms = started_at_ms;
    auto kids = downlink->children();
    hb.children_count = kids ? static_cast<uint32_t>(kids->size()) : 0;
    addCompleteness(hb);
    auto seq = enqueueUp(kinds::kHeartbeat, encode(hb), /*coalescing=*/true);
    if (!seq) spdlog::error("[{}] could not enqueue heartbeat: {}", self().str(), seq.status().toString());
  }

  // --- completeness watermark (docs/protocol.md "Completeness watermark") ---
  Result<Downlink::Completeness> completeness() {
    return downlink->completeness(env.clock->now(), options.expected_children);
  }

  // Computed when the heartbeat is enqueued: everything applied here so far (and so relayed up
  // in the same transactions) precedes it in the outbox, and the coalescing outbox only replaces
  // a heartbeat that is still its newest message.
  void addCompleteness(HeartbeatMsg& hb) {
    auto c = completeness();
    if (!c) {
      spdlog::error("[{}] could not compute the completeness watermark: {}", self().str(), c.status().toString());
      return;  // 0: claims nothing
    }
    hb.subtree_complete_as_of_ms = c->as_of_ms;
    hb.held_back_by = c->held_back_by;
    hb.held_back_by_name = c->held_back_by_name;
  }

  // What the city's "not found" states: its watermark, and who holds it back when it lags.
  Completeness lookupCompleteness() {
    auto c = completeness();
    if (!c) {
      spdlog::error("[{}] could not compute the completeness watermark: {}", self().str(), c.status().toString());
      return Completeness{};
    }
    Completeness out{c->as_of_ms, {}, {}};
    if (env.clock->now() - c->as_of_ms > kCompletenessLagHeartbeats * options.limits.heartbeat_interval_ms) {
      out.held_back_by = c->held_back_by;
      out.held_back_by_name = c->held_back_by_name;
    }
    return out;
  }
  // --- end completeness watermark ---

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

  // Why the parent refused outbox message `seq` for good (the uplink set it aside), "" if it did
  // not or the table cannot be read.
  std::string refusalOf(uint64_t seq) {
    auto stmt = db->prepare("SELECT target, outcome, message FROM outbox_rejected WHERE seq = ?1");
    if (!stmt) return "";
    stmt->bind(1, static_cast<int64_t>(seq));
    auto row = stmt->step();
    if (!row || !*row) return "";
    return stmt->columnText(0) + " refused it (" + stmt->columnText(1) + "): " + stmt->columnText(2);
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
    *alive = false;
    if (material_responder) material_responder->stop();  // material fetch
    if (lookups) lookups->stop();  // lookups: waiting askers get "could not ask"
    if (heartbeat_timer) env.clock->cancel(heartbeat_timer);
    if (catalogue_timer) env.clock->cancel(catalogue_timer);
    if (lights_timer) env.clock->cancel(lights_timer);
    if (supervision_timer) env.clock->cancel(supervision_timer);
    if (status_subscription) env.transport->unsubscribe(status_subscription);
    if (catalogue_subscription) env.transport->unsubscribe(catalogue_subscription);
    if (uplink) uplink->stop();
    if (feed) feed->stop();
    for (auto& [child, shipper] : downlinks) shipper->stop();
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
  TB_RETURN_IF_ERROR(Shipper::migrate(*impl->db));
  TB_RETURN_IF_ERROR(Feed::migrate(*impl->db));
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
  registerCatalogueKind(impl->kinds);
  impl->kinds.add(kCaseEventKind, {"case-event", Direction::kUpToParent, /*durable=*/true});
  impl->kinds.add(kMaterialRecordKind, {"material-record", Direction::kUpToParent, /*durable=*/true});
  impl->kinds.add(kSupervisionSnapshotKind, {"supervision-snapshot", Direction::kUpToParent, /*durable=*/true});
  registerForwardingKinds(impl->kinds);
  registerMaterialFetchKinds(impl->kinds);
  registerFeedKinds(impl->kinds);
  registerCredentialKinds(impl->kinds);
  TB_ASSIGN_OR_RETURN(auto verifier, Verifier::create(impl->options.identity.root_certificate, &impl->kinds));
  impl->verifier.emplace(std::move(verifier));
  for (size_t i = 0; i < impl->options.revocations.size(); ++i) {
    TB_RETURN_IF_ERROR(impl->verifier->addRevocation(impl->options.revocations[i])
                           .withContext("key revocation #" + std::to_string(i + 1)));
  }

  impl->started_at_ms = env.clock->now();
  Impl* raw = impl.get();
  const bool has_parent = impl->self().parent().has_value();
  MaterialStore::EnqueueUp enqueue_up;
  if (has_parent) {
    enqueue_up = [raw](MessageKind kind, const Bytes& payload) { return raw->enqueueInTransaction(kind, payload); };
  }
  TB_ASSIGN_OR_RETURN(auto catalogue, CatalogueStore::open(*impl->db, *impl->verifier, impl->self()));
  impl->catalogue.emplace(std::move(catalogue));
  TB_ASSIGN_OR_RETURN(auto materials, MaterialStore::open(*impl->db, impl->options.data_dir + "/materials",
                                                          impl->options.identity, enqueue_up));
  impl->materials.emplace(std::move(materials));
  impl->notifier = std::make_unique<LogNotifier>(code);
  TB_ASSIGN_OR_RETURN(auto cases, CaseService::open(*impl->db, impl->self(), *impl->catalogue, impl->options.calendar,
                                                    *impl->materials, enqueue_up, impl->options.cases,
                                                    impl->notifier.get()));
  impl->cases.emplace(std::move(cases));
  TB_ASSIGN_OR_RETURN(auto forwarding, ForwardingService::open(
      *impl->db, impl->options.identity, *impl->verifier, *impl->cases, *impl->materials,
      [raw](const DivisionCode& to, MessageKind kind, const Bytes& payload) { return raw->enqueueTo(to, kind, payload); },
      [raw](uint64_t seq) {
        auto pending = raw->outbox->pending(seq);
        return pending.isOk() && *pending;
      },
      [raw](uint64_t seq) { return raw->refusalOf(seq); }));
  impl->forwarding.emplace(std::move(forwarding));
  impl->cases->setForwardingHooks(impl->forwarding->hooks());
  // --- credentials: issued on conclusion, replicated up, status records down through the feed ---
  TB_ASSIGN_OR_RETURN(auto credentials, CredentialService::open(
      *impl->db, impl->options.identity, *impl->verifier, *impl->catalogue, enqueue_up,
      [raw](const Bytes& entry) { return raw->feed->append(entry); },
      [raw] { return raw->feed ? raw->feed->state().fresh_as_of_ms : TimeMs{0}; },
      [raw](const Bytes& revocation) {
        TB_RETURN_IF_ERROR(raw->verifier->addRevocation(revocation));
        if (raw->lookups) raw->lookups->clearCache();  // cached answers may rest on the revoked key
        return Status::ok();
      },
      impl->options.credentials));
  impl->credentials.emplace(std::move(credentials));
  impl->credentials->setEnqueueDown(
      [raw](const DivisionCode& to, MessageKind kind, const Bytes& payload) { return raw->enqueueTo(to, kind, payload); });
  TB_ASSIGN_OR_RETURN(auto known_revocations, impl->credentials->keyRevocations());
  for (const auto& revocation : known_revocations) {
    TB_RETURN_IF_ERROR(impl->verifier->addRevocation(revocation).withContext("a key revocation received earlier"));
  }
  impl->cases->setCredentialIssuer([raw](const CaseRecord& c, TimeMs now) { return raw->credentials->issue(c, now); });
  impl->forwarding->setCredentialLink(
      {[raw](const std::string& number) { return raw->credentials->sealed(number); },
       [raw](const Bytes& sealed) { return raw->credentials->acceptCredential(sealed, raw->env.clock->now()); }});
  impl->feed = std::make_unique<Feed>(impl->options.identity, *impl->db, *impl->verifier, *env.clock, *env.transport,
                                      *env.random, impl->options.feed, [raw](const Bytes& entry) {
                                        return raw->credentials->applyFeedEntry(entry, raw->env.clock->now());
                                      });
  // --- end credentials ---
  // --- supervision: after cases (its triggers watch the cases tables) ---
  TB_ASSIGN_OR_RETURN(auto supervision, SupervisionService::open(
      *impl->db, impl->self(), impl->options.identity.name, impl->options.calendar, enqueue_up,
      [raw]() -> Result<std::vector<ChildStatusMsg>> {
        if (!raw->downlink) return std::vector<ChildStatusMsg>{};
        return raw->downlink->children();
      },
      [raw] { return raw->outbox->depth(); }, impl->options.supervision));
  impl->supervision.emplace(std::move(supervision));
  // --- end supervision ---
  if (!impl->options.catalogue_file.empty()) {
    if (has_parent) {
      return Status(ErrorCode::kInvalidArgument, "only the city publishes a catalogue_file; " + code + " receives it");
    }
    TB_RETURN_IF_ERROR(impl->publishCatalogueFile());
  }
  impl->downlink = std::make_unique<Downlink>(impl->options.identity, *impl->db, *impl->receipts, *impl->verifier,
                                              *env.clock, *env.transport, env.observer);
  TB_RETURN_IF_ERROR(impl->downlink->start());
  impl->downlink->registerApplier(kCaseEventKind, [raw](const OpenedEnvelope& e) { return raw->applyCaseEvent(e); });
  impl->downlink->registerApplier(kMaterialRecordKind,
                                  [raw](const OpenedEnvelope& e) { return raw->applyMaterialRecord(e); });
  impl->downlink->registerApplier(kCaseRelayUpKind, [raw](const OpenedEnvelope& e) {
    return raw->forwarding->applyRelayUp(e, raw->env.clock->now());
  });
  impl->downlink->registerApplier(kCaseRelayDownKind, [raw](const OpenedEnvelope& e) {
    return raw->forwarding->applyRelayDown(e, raw->env.clock->now());
  });
  for (MessageKind kind : {kCredentialUpKind, kCredentialStatusUpKind, kIdentityRecordUpKind, kKeyRevocationUpKind}) {
    impl->downlink->registerApplier(kind, [raw](const OpenedEnvelope& e) {
      return raw->credentials->applyFromChild(e, raw->env.clock->now());
    });
  }
  impl->downlink->registerApplier(kCredentialDownKind, [raw](const OpenedEnvelope& e) {
    return raw->credentials->applyFromParent(e, raw->env.clock->now());
  });
  TB_RETURN_IF_ERROR(impl->feed->start());
  impl->downlink->registerApplier(kSupervisionSnapshotKind, [raw](const OpenedEnvelope& e) {
    return raw->supervision->applySnapshot(e.signer, e.payload, raw->env.clock->now());
  });
  auto sub = env.transport->subscribe(statusSubject(impl->self()),
                                      [raw](const InboundMessage& m) { raw->answerStatus(m); });
  if (!sub) return sub.status().withContext("subscribing to " + statusSubject(impl->self()));
  impl->status_subscription = *sub;
  auto catalogue_sub = env.transport->subscribe(catalogueSubject(impl->self()),
                                                [raw](const InboundMessage& m) { raw->answerCatalogue(m); });
  if (!catalogue_sub) return catalogue_sub.status().withContext("subscribing to " + catalogueSubject(impl->self()));
  impl->catalogue_subscription = *catalogue_sub;
  // --- material fetch: answer for the files stored here; fetch those our subtree recorded ---
  impl->material_responder = std::make_unique<MaterialResponder>(impl->options.identity, *impl->verifier,
                                                                 *impl->materials, *env.clock, *env.transport,
                                                                 impl->options.material_fetch);
  TB_RETURN_IF_ERROR(impl->material_responder->start());
  impl->material_fetcher = std::make_unique<MaterialFetcher>(
      impl->options.identity, *impl->verifier, *impl->materials, *env.clock, *env.transport, *env.random,
      [raw](const std::string& hash, const std::string& holder, size_t limit) {
        return raw->findSubtreeMaterials(hash, holder, limit);
      },
      impl->options.material_fetch);
  // --- end material fetch ---
  impl->every(impl->options.cases.light_scan_interval_ms, impl->options.cases.light_scan_interval_ms,
              &impl->lights_timer, [raw] { raw->scanLights(); });
  impl->every(impl->options.supervision.snapshot_interval_ms, impl->options.supervision.snapshot_interval_ms,
              &impl->supervision_timer, [raw] { raw->publishSupervision(); });

  if (impl->self().parent()) {
    impl->uplink = std::make_unique<Shipper>(impl->options.identity, *impl->self().parent(),
                                             upSubject(*impl->self().parent()), *impl->db, *impl->outbox,
                                             *impl->verifier, *env.clock, *env.transport, *env.random,
                                             impl->options.limits, env.observer);
    TB_RETURN_IF_ERROR(impl->uplink->start());
    TB_RETURN_IF_ERROR(impl->ensureJoinEnqueued());
    impl->every(impl->options.limits.heartbeat_interval_ms, impl->options.limits.heartbeat_interval_ms,
                &impl->heartbeat_timer, [raw] { raw->sendHeartbeat(); });
    impl->every(0, impl->options.catalogue_poll_ms, &impl->catalogue_timer, [raw] { raw->pollCatalogue(); });
  }
  // What was waiting for children when the node stopped goes out again now.
  TB_ASSIGN_OR_RETURN(auto pending_targets, impl->outbox->pendingTargets());
  for (const auto& target : pending_targets) {
    auto child = DivisionCode::parse(target);
    if (child && impl->self().isParentOf(*child)) impl->kickShipper(*child);
  }
  // --- lookups: answer from our store and our subtree's, else ask the parent (node/lookup/lookup.h) ---
  registerLookupKinds(impl->kinds);  // the verifier reads the registry on every open
  {
    UplinkProbe probe = [raw]() -> std::optional<UplinkView> {
      if (!raw->uplink) return std::nullopt;
      const auto& state = raw->uplink->state();
      return UplinkView{state.link, state.link_since_ms};
    };
    TB_ASSIGN_OR_RETURN(impl->lookups, LookupService::start(impl->options.identity, *impl->verifier, *env.clock,
                                                            *env.transport, *env.random, impl->options.lookups,
                                                            std::move(probe)));
    impl->lookups->addSource(makeMaterialLookupSource(*impl->db, impl->options.identity));
    impl->lookups->addSource(makeCredentialLookupSource(*impl->credentials, *env.clock));
    impl->lookups->setCredentialCheck(checkCredentialRecord);
    // A key revocation clears the whole cache (the key_revoked hook above); a credential's new
    // status or version only the cached answers that name it.
    impl->credentials->setStatusObserver([raw](const std::string& number) {
      if (raw->lookups) raw->lookups->forgetCredential(number);
    });
    if (!has_parent) {
      impl->lookups->setCompleteness([raw] { return raw->lookupCompleteness(); });
      // Revocations made below reach the city's feed only when they arrive: its freshness is its
      // watermark, not its clock, and every node below takes what its parent states.
      impl->feed->setRootFreshness([raw] {
        auto c = raw->completeness();
        return c ? c->as_of_ms : TimeMs{0};
      });
    }
  }
  // --- end lookups ---
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
CatalogueStore& Node::catalogue() { return *impl_->catalogue; }
CaseService& Node::cases() { return *impl_->cases; }
MaterialStore& Node::materials() { return *impl_->materials; }
CredentialService& Node::credentials() { return *impl_->credentials; }
FeedState Node::feedState() const { return impl_->feed->state(); }
ForwardingService& Node::forwarding() { return *impl_->forwarding; }
MaterialFetcher& Node::materialFetcher() { return *impl_->material_fetcher; }
SupervisionService& Node::supervision() { return *impl_->supervision; }
Clock& Node::clock() { return *impl_->env.clock; }
LookupService& Node::lookups() { return *impl_->lookups; }
Result<Downlink::Completeness> Node::completeness() { return impl_->completeness(); }
Result<uint64_t> Node::subtreeEventCount() {
  TB_ASSIGN_OR_RETURN(auto stmt, impl_->db->prepare("SELECT COUNT(*) FROM subtree_case_events"));
  TB_ASSIGN_OR_RETURN(bool row, stmt.step());
  return row ? static_cast<uint64_t>(stmt.columnInt64(0)) : 0;
}
std::optional<LinkState> Node::uplinkState() const {
  if (!impl_->uplink) return std::nullopt;
  return impl_->uplink->state();
}

}  // namespace tongban
