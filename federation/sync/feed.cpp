#include "federation/sync/feed.h"

#include <algorithm>

#include <sodium.h>
#include <spdlog/spdlog.h>

#include "federation/sync/wire.h"
#include "federation/util/capnp_io.h"
#include "schema/feed.capnp.h"

namespace tongban {

namespace {

const std::vector<Migration> kFeedMigrations = {
    {1,
     // This node's own log: what its children pull. Never deleted from (a restore from backup
     // is the only way it goes back, and children notice that).
     "CREATE TABLE feed_log (idx INTEGER PRIMARY KEY, payload BLOB NOT NULL, appended_ms INTEGER NOT NULL);"
     // The pull side: one row. cursor_digest identifies the parent's entry at the cursor.
     "CREATE TABLE feed_state (id INTEGER PRIMARY KEY CHECK (id = 1), parent_cursor INTEGER NOT NULL,"
     "  cursor_digest BLOB NOT NULL, fresh_as_of_ms INTEGER NOT NULL, last_pull_ms INTEGER NOT NULL,"
     "  skipped_total INTEGER NOT NULL, restarts_total INTEGER NOT NULL);"
     "INSERT INTO feed_state VALUES (1, 0, x'', 0, 0, 0, 0);"
     // Entries from the parent that the applier refused for good: kept for the operator.
     "CREATE TABLE feed_rejected (parent_index INTEGER NOT NULL, payload BLOB NOT NULL, outcome TEXT NOT NULL,"
     "  message TEXT NOT NULL, rejected_ms INTEGER NOT NULL);"},
};

// Refusals no later pull can change. kRevoked: signed by a key revoked at or before its time
// (revocations are never withdrawn). Everything else — kFutureDated (our clock is behind the
// signer's), kUnavailable, kIo — may pass on a later try, so the batch is retried.
bool isPermanentRefusal(ErrorCode code) {
  return code == ErrorCode::kInvalidArgument || code == ErrorCode::kMalformed || code == ErrorCode::kUnauthorized ||
         code == ErrorCode::kRevoked;
}

Bytes digestOf(const Bytes& entry) {
  Bytes out(crypto_generichash_BYTES);
  crypto_generichash(out.data(), out.size(), entry.data(), entry.size(), nullptr, 0);
  return out;
}

struct RequestMsg {
  uint64_t after = 0;
  uint32_t max_entries = 0;
};

Bytes encodeRequest(const RequestMsg& m) {
  capnp::MallocMessageBuilder b;
  auto r = b.initRoot<wire::FeedRequest>();
  r.setAfter(m.after);
  r.setMaxEntries(m.max_entries);
  return capnp_io::flatBytes(b);
}

Result<RequestMsg> decodeRequest(const Bytes& bytes) {
  return capnp_io::read<wire::FeedRequest>(bytes, "feed request", 256,
                                           [](wire::FeedRequest::Reader r) -> Result<RequestMsg> {
                                             return RequestMsg{r.getAfter(), r.getMaxEntries()};
                                           });
}

Bytes encodeHint(uint64_t head) {
  capnp::MallocMessageBuilder b;
  b.initRoot<wire::FeedHint>().setHead(head);
  return capnp_io::flatBytes(b);
}

Result<uint64_t> decodeHint(const Bytes& bytes) {
  return capnp_io::read<wire::FeedHint>(bytes, "feed hint", 64,
                                        [](wire::FeedHint::Reader r) -> Result<uint64_t> { return r.getHead(); });
}

// Refused hints are logged at most this often: a flood must not flood the log (the count is in
// FeedState::hints_refused_total).
constexpr DurationMs kHintWarningGapMs = 60 * 1000;

}  // namespace

struct Feed::Batch {
  std::vector<std::pair<uint64_t, Bytes>> entries;
  uint64_t head = 0;
  TimeMs fresh_as_of_ms = 0;
  Bytes after_digest;
  std::string error;
};

namespace {

Bytes encodeBatch(const std::vector<std::pair<uint64_t, Bytes>>& entries, uint64_t head, TimeMs fresh,
                  const Bytes& after_digest, const std::string& error) {
  capnp::MallocMessageBuilder b;
  auto r = b.initRoot<wire::FeedBatch>();
  auto list = r.initEntries(static_cast<unsigned>(entries.size()));
  for (unsigned i = 0; i < entries.size(); ++i) {
    list[i].setIndex(entries[i].first);
    list[i].setPayload(capnp_io::dataOf(entries[i].second));
  }
  r.setHead(head);
  r.setFreshAsOfMs(fresh);
  r.setAfterDigest(capnp_io::dataOf(after_digest));
  r.setError(error);
  return capnp_io::flatBytes(b);
}

// Decodes and checks a batch against the request it answers: at most the asked number of
// entries, within the byte limits, indices strictly increasing, above `after`, not above head.
template <typename BatchT>
Result<BatchT> decodeBatch(const Bytes& bytes, uint64_t after, size_t max_entries) {
  return capnp_io::read<wire::FeedBatch>(
      bytes, "feed batch", EnvelopeLimits{}.max_bytes, [&](wire::FeedBatch::Reader r) -> Result<BatchT> {
        BatchT m;
        m.head = r.getHead();
        m.fresh_as_of_ms = r.getFreshAsOfMs();
        m.after_digest = capnp_io::bytesOf(r.getAfterDigest());
        m.error = capnp_io::text(r.getError());
        if (!m.error.empty()) return m;
        if (m.after_digest.size() != 0 && m.after_digest.size() != crypto_generichash_BYTES) {
          return Status(ErrorCode::kMalformed, "feed batch has an afterDigest of " +
                                                   std::to_string(m.after_digest.size()) + " bytes");
        }
        auto list = r.getEntries();
        if (list.size() > max_entries) {
          return Status(ErrorCode::kMalformed, "feed batch carries " + std::to_string(list.size()) +
                                                   " entries; " + std::to_string(max_entries) + " were asked for");
        }
        uint64_t previous = after;
        size_t total = 0;
        for (auto e : list) {
          const uint64_t index = e.getIndex();
          if (index <= previous || index > m.head) {
            return Status(ErrorCode::kMalformed, "feed batch entry index " + std::to_string(index) +
                                                     " is out of order (after " + std::to_string(previous) +
                                                     ", head " + std::to_string(m.head) + ")");
          }
          auto payload = e.getPayload();
          if (payload.size() == 0 || payload.size() > kMaxFeedEntryBytes) {
            return Status(ErrorCode::kMalformed, "feed entry " + std::to_string(index) + " is " +
                                                     std::to_string(payload.size()) + " bytes; the limit is " +
                                                     std::to_string(kMaxFeedEntryBytes));
          }
          total += payload.size();
          if (total > kMaxFeedBatchBytes) {
            return Status(ErrorCode::kMalformed, "feed batch carries more than " +
                                                     std::to_string(kMaxFeedBatchBytes) + " bytes of entries");
          }
          previous = index;
          m.entries.emplace_back(index, capnp_io::bytesOf(payload));
        }
        return m;
      });
}

}  // namespace

std::string feedSubject(const DivisionCode& node) { return "tb." + node.str() + ".feed"; }
std::string feedHintSubject(const DivisionCode& node) { return "tb." + node.str() + ".feed.head"; }

void registerFeedKinds(KindRegistry& registry) {
  registry.add(kinds::kFeedRequest, {"feed-request", Direction::kUpToParent, /*durable=*/false});
  registry.add(kinds::kFeedBatch, {"feed-batch", Direction::kReply, /*durable=*/false});
  // Published once for all children, so it is addressed to no one of them (the verifier checks
  // chain, validity and revocation); the child checks that signer and target are its parent.
  registry.add(kinds::kFeedHint, {"feed-hint", Direction::kStatement, /*durable=*/false});
}

Feed::Feed(const Identity& identity, Database& db, const Verifier& verifier, Clock& clock, Transport& transport,
           Random& random, FeedSettings settings, FeedApplier applier)
    : identity_(identity),
      db_(db),
      verifier_(verifier),
      clock_(clock),
      transport_(transport),
      random_(random),
      settings_(settings),
      applier_(std::move(applier)) {
  settings_.batch_max_entries = std::clamp<size_t>(settings_.batch_max_entries, 1, kMaxFeedBatchEntries);
  settings_.batch_max_bytes = std::clamp<size_t>(settings_.batch_max_bytes, 1, kMaxFeedBatchBytes);
  settings_.poll_interval_ms = std::max<DurationMs>(settings_.poll_interval_ms, 1);
  state_.link = identity_.division.parent() ? "unknown" : "none";
}

Feed::~Feed() { stop(); }

Status Feed::migrate(Database& db) { return db.migrate("feed", kFeedMigrations); }

Status Feed::start() {
  const std::string self = identity_.division.str();
  {
    TB_ASSIGN_OR_RETURN(auto stmt, db_.prepare(
        "SELECT parent_cursor, cursor_digest, fresh_as_of_ms, last_pull_ms, skipped_total, restarts_total "
        "FROM feed_state WHERE id = 1"));
    TB_ASSIGN_OR_RETURN(bool row, stmt.step());
    if (!row) return Status(ErrorCode::kCorrupt, "feed_state has no row at " + self + " (was Feed::migrate run?)");
    state_.parent_cursor = static_cast<uint64_t>(stmt.columnInt64(0));
    cursor_digest_ = stmt.columnBlob(1);
    state_.fresh_as_of_ms = stmt.columnInt64(2);
    state_.last_pull_ms = stmt.columnInt64(3);
    state_.skipped_total = static_cast<uint64_t>(stmt.columnInt64(4));
    state_.restarts_total = static_cast<uint64_t>(stmt.columnInt64(5));
  }
  TB_ASSIGN_OR_RETURN(state_.head, readHead());
  auto sub = transport_.subscribe(feedSubject(identity_.division), [this](const InboundMessage& m) {
    if (m.reply_to.empty()) return;  // nobody to answer
    Bytes answer = handleRequest(m.data);
    if (answer.empty()) return;
    if (auto st = transport_.reply(m, answer); !st.isOk()) {
      spdlog::warn("[{}] could not send a feed batch: {}", identity_.division.str(), st.toString());
    }
  });
  if (!sub) return sub.status().withContext("subscribing to " + feedSubject(identity_.division));
  subscription_ = *sub;
  if (auto parent = identity_.division.parent()) {
    auto hints = transport_.subscribe(feedHintSubject(*parent), [this](const InboundMessage& m) {
      (void)handleHint(m.data);  // refusals are counted and logged there
    });
    if (!hints) return hints.status().withContext("subscribing to " + feedHintSubject(*parent));
    hint_subscription_ = *hints;
  }
  hinted_head_ = state_.head;  // children pull at their own start; only growth from now on is hinted
  started_ = true;
  alive_ = std::make_shared<bool>(true);  // callbacks of an earlier start() stay dead
  backoff_ms_ = kFeedRetryInitialMs;
  if (identity_.division.parent()) schedulePull(0);
  return Status::ok();
}

void Feed::stop() {
  started_ = false;
  *alive_ = false;
  in_flight_ = false;
  if (timer_) clock_.cancel(timer_);
  timer_ = 0;
  if (subscription_) transport_.unsubscribe(subscription_);
  subscription_ = 0;
  if (hint_timer_) clock_.cancel(hint_timer_);
  hint_timer_ = 0;
  if (hint_pull_timer_) clock_.cancel(hint_pull_timer_);
  hint_pull_timer_ = 0;
  hint_head_ = 0;
  if (hint_subscription_) transport_.unsubscribe(hint_subscription_);
  hint_subscription_ = 0;
}

void Feed::setRootFreshness(std::function<TimeMs()> fresh_as_of) { root_freshness_ = std::move(fresh_as_of); }

TimeMs Feed::rootFreshness() const {
  const TimeMs now = clock_.now();
  return root_freshness_ ? std::min(now, root_freshness_()) : now;
}

Result<uint64_t> Feed::readHead() const {
  TB_ASSIGN_OR_RETURN(auto stmt, db_.prepare("SELECT COALESCE(MAX(idx), 0) FROM feed_log"));
  TB_ASSIGN_OR_RETURN(bool row, stmt.step());
  return row ? static_cast<uint64_t>(stmt.columnInt64(0)) : 0;
}

const FeedState& Feed::state() const {
  if (auto head = readHead()) state_.head = *head;
  if (!identity_.division.parent()) {
    state_.fresh_as_of_ms = rootFreshness();
    state_.last_pull_ms = 0;
  }
  return state_;
}

Result<uint64_t> Feed::append(const Bytes& entry) {
  if (!db_.inTransaction()) {
    return Status(ErrorCode::kFailedPrecondition,
                  "Feed::append at " + identity_.division.str() + " needs the caller's open transaction");
  }
  if (entry.empty() || entry.size() > kMaxFeedEntryBytes) {
    return Status(ErrorCode::kInvalidArgument, "a feed entry of " + std::to_string(entry.size()) +
                                                   " bytes; entries are 1 to " + std::to_string(kMaxFeedEntryBytes) +
                                                   " bytes");
  }
  TB_ASSIGN_OR_RETURN(uint64_t head, readHead());
  TB_ASSIGN_OR_RETURN(auto stmt, db_.prepare("INSERT INTO feed_log (idx, payload, appended_ms) VALUES (?1, ?2, ?3)"));
  stmt.bind(1, static_cast<int64_t>(head + 1)).bind(2, entry).bind(3, clock_.now());
  TB_RETURN_IF_ERROR(stmt.run());
  state_.head = head + 1;  // state() re-reads it: a rollback of the caller's transaction undoes this
  scheduleHint();
  return head + 1;
}

Result<std::vector<std::pair<uint64_t, Bytes>>> Feed::entriesAfter(uint64_t index, size_t max_entries) {
  std::vector<std::pair<uint64_t, Bytes>> out;
  if (max_entries == 0) return out;
  TB_ASSIGN_OR_RETURN(auto stmt, db_.prepare("SELECT idx, payload FROM feed_log WHERE idx > ?1 ORDER BY idx LIMIT ?2"));
  // SQLite integers are signed: an index above INT64_MAX is past any head.
  if (index > static_cast<uint64_t>(INT64_MAX)) return out;
  stmt.bind(1, static_cast<int64_t>(index)).bind(2, static_cast<int64_t>(std::min<size_t>(max_entries, INT64_MAX)));
  while (true) {
    TB_ASSIGN_OR_RETURN(bool row, stmt.step());
    if (!row) break;
    out.emplace_back(static_cast<uint64_t>(stmt.columnInt64(0)), stmt.columnBlob(1));
  }
  return out;
}

// ---- serving children ----

Bytes Feed::handleRequest(const Bytes& request) {
  const std::string self = identity_.division.str();
  if (request.size() > kMaxFeedRequestBytes) {
    spdlog::warn("[{}] ignored a feed request of {} bytes (limit {})", self, request.size(), kMaxFeedRequestBytes);
    return {};
  }
  const TimeMs now = clock_.now();
  auto e = verifier_.open(request, identity_.division, now, nullptr);
  if (!e) {
    // Not a verified child of ours: no answer (a child's key problem shows in its own log as
    // a timeout naming us; our log says why).
    spdlog::warn("[{}] ignored a feed request: {}", self, e.status().toString());
    return {};
  }
  if (e->kind != kinds::kFeedRequest) {
    spdlog::warn("[{}] ignored kind {} from {} on {}", self, e->kind, e->signer.str(), feedSubject(identity_.division));
    return {};
  }
  // The verifier checked that the signer is a direct child of ours (kUpToParent, target = us).
  SealParams p;
  p.kind = kinds::kFeedBatch;
  p.timestamp_ms = now;
  p.target = e->signer;
  p.nonce = e->nonce;
  auto req = decodeRequest(e->payload);
  if (!req) {
    p.payload = encodeBatch({}, 0, 0, {}, req.status().toString());
    return sealEnvelope(identity_, p);
  }
  const size_t max_entries =
      std::min<size_t>(settings_.batch_max_entries, req->max_entries == 0 ? 1 : req->max_entries);
  auto head = readHead();
  auto rows = head ? entriesAfter(req->after, max_entries) : Result<std::vector<std::pair<uint64_t, Bytes>>>(head.status());
  Bytes after_digest;
  if (rows && head && req->after > 0 && req->after <= *head) {
    auto at = entriesAfter(req->after - 1, 1);
    if (!at) {
      rows = at.status();
    } else if (!at->empty() && at->front().first == req->after) {
      after_digest = digestOf(at->front().second);
    }
  }
  if (!rows) {
    // Our own database failed: tell the child (signed), it retries later.
    spdlog::error("[{}] could not read the feed for {}: {}", self, e->signer.str(), rows.status().toString());
    p.payload = encodeBatch({}, 0, 0, {}, Status(ErrorCode::kUnavailable, "reading the feed at " + self + ": " +
                                                                              rows.status().message())
                                              .toString());
    return sealEnvelope(identity_, p);
  }
  // Byte limit: always at least one entry (each is at most kMaxFeedEntryBytes), so a pull progresses.
  size_t total = 0, keep = 0;
  for (; keep < rows->size(); ++keep) {
    total += (*rows)[keep].second.size();
    if (keep > 0 && total > settings_.batch_max_bytes) break;
  }
  rows->resize(keep);
  const TimeMs fresh = identity_.division.parent() ? state_.fresh_as_of_ms : rootFreshness();
  p.payload = encodeBatch(*rows, *head, fresh, after_digest, "");
  return sealEnvelope(identity_, p);
}

// ---- hints to the children ----

void Feed::scheduleHint() {
  // A village has no children; before start() (and after stop()) nobody is told.
  if (!started_ || hint_timer_ != 0 || identity_.division.level() == Level::kVillage) return;
  // The timer runs after the caller's handler returned, so its transaction has committed (or
  // rolled back: then the head did not grow and nothing is sent).
  hint_timer_ = clock_.schedule(kFeedHintDelayMs, [this, alive = alive_] {
    if (!*alive) return;
    hint_timer_ = 0;
    publishHint();
  });
}

void Feed::publishHint() {
  const std::string self = identity_.division.str();
  auto head = readHead();
  if (!head) {
    spdlog::warn("[{}] no feed hint sent (children get the entries at their next poll): {}", self,
                 head.status().toString());
    return;
  }
  if (*head <= hinted_head_) return;
  SealParams p;
  p.kind = kinds::kFeedHint;
  p.timestamp_ms = clock_.now();
  p.target = identity_.division;  // about our own log, for all our children
  p.payload = encodeHint(*head);
  if (auto st = transport_.publish(feedHintSubject(identity_.division), sealEnvelope(identity_, p)); !st.isOk()) {
    // Not remembered as sent: the next append tries again; meanwhile the children poll.
    spdlog::debug("[{}] no feed hint sent: {}", self, st.toString());
    return;
  }
  hinted_head_ = *head;
}

// ---- hints from the parent ----

Status Feed::handleHint(const Bytes& hint) {
  if (!started_ || !identity_.division.parent()) {
    return Status(ErrorCode::kFailedPrecondition, "feed at " + identity_.division.str() +
                                                      " takes hints only while started and below the city");
  }
  auto head = verifyHint(hint);
  if (!head) {
    ++state_.hints_refused_total;
    logRefusedHint(head.status());
    return head.status();
  }
  ++state_.hints_total;
  onHintHead(*head);
  return Status::ok();
}

// Size first, then the whole envelope check (signature, chain to the root, validity, revocation),
// then that it is our parent's hint about its own log and recent, then the tiny payload.
Result<uint64_t> Feed::verifyHint(const Bytes& hint) const {
  const DivisionCode parent = *identity_.division.parent();
  if (hint.size() > kMaxFeedHintBytes) {
    return Status(ErrorCode::kOversize, "a feed hint of " + std::to_string(hint.size()) + " bytes; the limit is " +
                                            std::to_string(kMaxFeedHintBytes));
  }
  const TimeMs now = clock_.now();
  TB_ASSIGN_OR_RETURN(auto e, verifier_.open(hint, identity_.division, now, nullptr));
  if (e.kind != kinds::kFeedHint) {
    return Status(ErrorCode::kUnauthorized, "kind " + std::to_string(e.kind) + " from " + e.signer.str() + " on " +
                                                feedHintSubject(parent) + " (only feed hints, kind " +
                                                std::to_string(kinds::kFeedHint) + ", are taken there)");
  }
  if (e.signer != parent || e.target != parent) {
    return Status(ErrorCode::kUnauthorized, "a feed hint signed by " + e.signer.str() + " about " + e.target.str() +
                                                "'s log; only our parent " + parent.str() + "'s hints about its own log count");
  }
  // Unsigned: the timestamp is the sender's and a signed difference could overflow.
  if (e.timestamp_ms < now && static_cast<uint64_t>(now) - static_cast<uint64_t>(e.timestamp_ms) >
                                  static_cast<uint64_t>(kFeedHintMaxAgeMs)) {
    return Status(ErrorCode::kReplay, "a feed hint from " + parent.str() + " dated " +
                                          std::to_string(now - e.timestamp_ms) + " ms ago (the limit is " +
                                          std::to_string(kFeedHintMaxAgeMs) +
                                          " ms): replayed, or its clock lags ours (polling still works)");
  }
  return decodeHint(e.payload);
}

void Feed::onHintHead(uint64_t head) {
  if (head <= state_.parent_cursor) return;  // nothing new for us (or an old hint)
  hint_head_ = std::max(hint_head_, head);
  if (hint_pull_timer_ != 0) return;  // a hint-triggered pull is already due
  const TimeMs now = clock_.now();
  const DurationMs wait = last_hint_pull_ms_ ? std::max<DurationMs>(0, *last_hint_pull_ms_ + kFeedHintPullGapMs - now) : 0;
  hint_pull_timer_ = clock_.schedule(wait, [this, alive = alive_] {
    if (!*alive) return;
    hint_pull_timer_ = 0;
    startHintPull();
  });
}

void Feed::startHintPull() {
  const uint64_t head = std::exchange(hint_head_, 0);
  if (head <= state_.parent_cursor) return;  // a pull since the hint already got there
  last_hint_pull_ms_ = clock_.now();
  ++state_.hint_pulls_total;
  pullNow();  // coalesces with a pull in flight: one follows it
}

void Feed::logRefusedHint(const Status& why) {
  const TimeMs now = clock_.now();
  if (last_hint_warning_ms_ && now - *last_hint_warning_ms_ < kHintWarningGapMs) return;
  last_hint_warning_ms_ = now;
  spdlog::warn("[{}] refused a feed hint on {} ({} refused so far; at most one such line a minute): {}",
               identity_.division.str(), feedHintSubject(*identity_.division.parent()), state_.hints_refused_total,
               why.toString());
}

// ---- pulling from the parent ----

void Feed::pullNow() {
  if (!started_ || !identity_.division.parent()) return;
  if (in_flight_) {
    again_ = true;
    return;
  }
  schedulePull(0);
}

void Feed::schedulePull(DurationMs delay) {
  if (timer_) clock_.cancel(timer_);
  timer_ = clock_.schedule(delay, [this, alive = alive_] {
    if (!*alive) return;
    timer_ = 0;
    pull();
  });
}

void Feed::pull() {
  if (!started_ || in_flight_) return;
  const auto parent = identity_.division.parent();
  if (!parent) return;
  again_ = false;
  SealParams p;
  p.kind = kinds::kFeedRequest;
  p.timestamp_ms = clock_.now();
  p.target = *parent;
  p.payload = encodeRequest(RequestMsg{state_.parent_cursor, static_cast<uint32_t>(settings_.batch_max_entries)});
  p.nonce = random_.next() | 1;  // never 0
  in_flight_ = true;
  in_flight_nonce_ = p.nonce;
  transport_.request(feedSubject(*parent), sealEnvelope(identity_, p), settings_.request_timeout_ms,
                     [this, alive = alive_, nonce = p.nonce, after = state_.parent_cursor](Result<Bytes> reply) {
                       if (!*alive) return;
                       onReply(nonce, after, std::move(reply));
                     });
}

void Feed::onReply(uint64_t nonce, uint64_t after, Result<Bytes> reply) {
  if (!in_flight_ || nonce != in_flight_nonce_) return;  // stale
  in_flight_ = false;
  const DivisionCode parent = *identity_.division.parent();
  const std::string from = "feed from " + parent.str();
  if (!reply) {
    const Status& st = reply.status();
    if (st.code() == ErrorCode::kTimeout) {
      onFailure(from + ": no answer within " + std::to_string(settings_.request_timeout_ms) + " ms");
    } else if (st.code() == ErrorCode::kNoResponders) {
      onFailure(from + ": nobody answers on " + feedSubject(parent) + " (link cut or node not running)");
    } else {
      onFailure(from + ": " + st.toString());
    }
    return;
  }
  auto opened = verifier_.open(*reply, identity_.division, clock_.now(), nullptr);
  if (!opened) {
    onFailure(from + ": answer rejected: " + opened.status().toString());
    return;
  }
  if (opened->kind != kinds::kFeedBatch || opened->signer != parent || opened->nonce != nonce) {
    onFailure(from + ": the answer is not " + parent.str() + "'s feed batch for this request (kind " +
              std::to_string(opened->kind) + ", signer " + opened->signer.str() + ")");
    return;
  }
  auto batch = decodeBatch<Batch>(opened->payload, after, settings_.batch_max_entries);
  if (!batch) {
    onFailure(from + ": " + batch.status().toString());
    return;
  }
  if (!batch->error.empty()) {
    onFailure(from + ": refused: " + batch->error);
    return;
  }
  // Anti-entropy: the parent's log went back (restored from a backup) or is not the one we
  // consumed: pull everything again; appliers dedupe.
  if (after > 0 && batch->head >= after && batch->after_digest.empty()) {
    onFailure(from + ": the batch does not say which entry " + parent.str() + " holds at our cursor " +
              std::to_string(after));
    return;
  }
  if (after > 0 && (batch->head < after || batch->after_digest != cursor_digest_)) {
    const std::string why = batch->head < after
                                ? parent.str() + "'s feed head " + std::to_string(batch->head) +
                                      " is below our cursor " + std::to_string(after)
                                : parent.str() + "'s feed entry " + std::to_string(after) +
                                      " is not the one we consumed there";
    if (auto st = resetCursor(why); !st.isOk()) {
      onFailure(from + ": resetting the cursor: " + st.toString());
      return;
    }
    schedulePull(0);
    return;
  }
  if (batch->entries.empty() && batch->head > after) {
    // Would loop at once, forever: a parent that says it has more must send some.
    onFailure(from + ": reports head " + std::to_string(batch->head) + " but sent no entries after " +
              std::to_string(after));
    return;
  }
  bool reached_head = false;
  if (auto st = applyBatch(*batch, after, &reached_head); !st.isOk()) {
    onFailure(from + ": applying entries: " + st.toString());
    return;
  }
  if (state_.link != "up" && state_.link != "none") {
    spdlog::info("[{}] {} link up (cursor {}, parent head {})", identity_.division.str(), from,
                 state_.parent_cursor, batch->head);
  }
  state_.link = "up";
  backoff_ms_ = kFeedRetryInitialMs;
  schedulePull(reached_head && !again_ ? settings_.poll_interval_ms : 0);
}

Status Feed::applyBatch(const Batch& batch, uint64_t after, bool* reached_head) {
  const TimeMs now = clock_.now();
  TB_ASSIGN_OR_RETURN(auto txn, db_.begin());
  uint64_t cursor = after;
  Bytes digest = cursor_digest_;
  uint64_t appended = 0, skipped = 0;
  std::vector<std::string> refusals;
  for (const auto& [index, payload] : batch.entries) {
    Result<bool> fresh = applier_(payload);
    if (!fresh) {
      const Status& st = fresh.status();
      if (!isPermanentRefusal(st.code())) {
        return st.withContext("entry " + std::to_string(index));  // rolls back the whole batch
      }
      TB_ASSIGN_OR_RETURN(auto stmt, db_.prepare(
          "INSERT INTO feed_rejected (parent_index, payload, outcome, message, rejected_ms) VALUES (?1, ?2, ?3, ?4, ?5)"));
      stmt.bind(1, static_cast<int64_t>(index)).bind(2, payload).bind(3, errorCodeName(st.code()));
      stmt.bind(4, st.message()).bind(5, now);
      TB_RETURN_IF_ERROR(stmt.run());
      ++skipped;
      refusals.push_back("entry " + std::to_string(index) + ": " + st.toString());
    } else if (*fresh) {
      TB_RETURN_IF_ERROR(append(payload).status());
      ++appended;
    }
    cursor = index;
    digest = digestOf(payload);
  }
  *reached_head = cursor >= batch.head;
  TimeMs fresh_as_of = state_.fresh_as_of_ms;
  if (*reached_head) fresh_as_of = std::max(fresh_as_of, batch.fresh_as_of_ms);
  TB_ASSIGN_OR_RETURN(auto stmt, db_.prepare(
      "UPDATE feed_state SET parent_cursor = ?1, cursor_digest = ?2, fresh_as_of_ms = ?3, last_pull_ms = ?4,"
      " skipped_total = skipped_total + ?5 WHERE id = 1"));
  stmt.bind(1, static_cast<int64_t>(cursor)).bind(2, digest).bind(3, fresh_as_of).bind(4, now);
  stmt.bind(5, static_cast<int64_t>(skipped));
  TB_RETURN_IF_ERROR(stmt.run());
  TB_RETURN_IF_ERROR(txn.commit());

  state_.parent_cursor = cursor;
  cursor_digest_ = std::move(digest);
  state_.fresh_as_of_ms = fresh_as_of;
  state_.last_pull_ms = now;
  state_.skipped_total += skipped;
  for (const auto& r : refusals) {
    spdlog::error("[{}] skipped a feed entry from {} for good: {}", identity_.division.str(),
                  identity_.division.parent()->str(), r);
  }
  if (!refusals.empty()) state_.last_error = "skipped " + refusals.back();
  if (appended > 0) {
    spdlog::debug("[{}] feed: {} new entries from {} (cursor {})", identity_.division.str(), appended,
                  identity_.division.parent()->str(), cursor);
  }
  return Status::ok();
}

Status Feed::resetCursor(const std::string& why) {
  spdlog::warn("[{}] {}; pulling the whole feed again from index 0 (entries already held are ignored)",
               identity_.division.str(), why);
  TB_ASSIGN_OR_RETURN(auto txn, db_.begin());
  TB_ASSIGN_OR_RETURN(auto stmt, db_.prepare(
      "UPDATE feed_state SET parent_cursor = 0, cursor_digest = x'', restarts_total = restarts_total + 1 WHERE id = 1"));
  TB_RETURN_IF_ERROR(stmt.run());
  TB_RETURN_IF_ERROR(txn.commit());
  state_.parent_cursor = 0;
  cursor_digest_.clear();
  ++state_.restarts_total;
  state_.last_error = why;
  return Status::ok();
}

void Feed::onFailure(const std::string& why) {
  if (state_.link != "down") {
    spdlog::warn("[{}] {}", identity_.division.str(), why);
  }
  state_.link = "down";
  state_.last_error = why;
  // Jitter over the upper half, doubling up to the poll interval.
  const DurationMs cap = settings_.poll_interval_ms;
  const DurationMs base = std::min(backoff_ms_, cap);
  const DurationMs delay = base / 2 + static_cast<DurationMs>(random_.below(static_cast<uint64_t>(base / 2 + 1)));
  backoff_ms_ = std::min(cap, backoff_ms_ * 2);
  schedulePull(again_ ? 0 : delay);
  again_ = false;
}

}  // namespace tongban
