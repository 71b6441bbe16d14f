#include "federation/sync/downlink.h"

#include <algorithm>
#include <optional>

#include <spdlog/spdlog.h>

namespace tongban {

namespace {
const std::vector<Migration> kDownlinkMigrations = {
    {1,
     "CREATE TABLE children ("
     "  division TEXT PRIMARY KEY, name TEXT NOT NULL DEFAULT '', joined_at_ms INTEGER NOT NULL DEFAULT 0,"
     "  last_seen_ms INTEGER NOT NULL DEFAULT 0, reported_outbox_depth INTEGER NOT NULL DEFAULT 0,"
     "  last_seq INTEGER NOT NULL DEFAULT 0, software_version TEXT NOT NULL DEFAULT '');"},
    // The child's subtree completeness watermark from its latest applied heartbeat (never lowered)
    // and the division it named as holding it back.
    {2,
     "ALTER TABLE children ADD COLUMN complete_as_of_ms INTEGER NOT NULL DEFAULT 0;"
     "ALTER TABLE children ADD COLUMN held_back_by TEXT NOT NULL DEFAULT '';"
     "ALTER TABLE children ADD COLUMN held_back_by_name TEXT NOT NULL DEFAULT '';"},
};

bool isPermanent(ErrorCode code) {
  switch (code) {
    case ErrorCode::kIo:
    case ErrorCode::kInternal:
    case ErrorCode::kUnavailable:
    case ErrorCode::kTimeout:
    case ErrorCode::kResourceExhausted:
    case ErrorCode::kFutureDated:  // dated ahead of our clock: acceptable once it catches up
      return false;
    default:
      return true;
  }
}
}  // namespace

Downlink::Downlink(const Identity& identity, Database& db, Receipts& receipts, const Verifier& verifier,
                   Clock& clock, Transport& transport, SyncObserver* observer)
    : identity_(identity),
      db_(db),
      receipts_(receipts),
      verifier_(verifier),
      clock_(clock),
      transport_(transport),
      observer_(observer) {
  appliers_[kinds::kJoin] = [this](const OpenedEnvelope& e) { return applyJoin(e); };
  appliers_[kinds::kHeartbeat] = [this](const OpenedEnvelope& e) { return applyHeartbeat(e); };
}

Downlink::~Downlink() { stop(); }

void Downlink::registerApplier(MessageKind kind, Applier applier) { appliers_[kind] = std::move(applier); }

Status Downlink::start() {
  TB_RETURN_IF_ERROR(db_.migrate("downlink", kDownlinkMigrations));
  auto on_batch = [this](const InboundMessage& m) {
    Bytes ack = handleBatch(m.data);
    if (!ack.empty()) {
      if (auto st = transport_.reply(m, ack); !st.isOk()) {
        spdlog::warn("[{}] could not send ack: {}", identity_.division.str(), st.toString());
      }
    }
  };
  auto sub = transport_.subscribe(upSubject(identity_.division), on_batch);
  if (!sub) return sub.status().withContext("subscribing to " + upSubject(identity_.division));
  subscription_ = *sub;
  if (identity_.division.parent()) {
    auto down = transport_.subscribe(downSubject(identity_.division), on_batch);
    if (!down) return down.status().withContext("subscribing to " + downSubject(identity_.division));
    down_subscription_ = *down;
  }
  return Status::ok();
}

void Downlink::stop() {
  if (subscription_) transport_.unsubscribe(subscription_);
  if (down_subscription_) transport_.unsubscribe(down_subscription_);
  subscription_ = 0;
  down_subscription_ = 0;
}

Bytes Downlink::handleBatch(const Bytes& batch_bytes) {
  ++counters_.batches;
  auto batch = decodeOutboxBatch(batch_bytes);
  if (!batch) {
    // Unsigned garbage: nobody to answer with authority. The sender times out and retries.
    ++counters_.malformed_batches;
    spdlog::warn("[{}] dropped a malformed outbox batch: {}", identity_.division.str(), batch.status().toString());
    return {};
  }
  OutboxAckMsg ack;
  std::string ack_target;
  for (const auto& sealed : batch->envelopes) {
    std::string signer;
    bool transient = false;
    AckResultMsg result = applyOne(sealed, &signer, &transient);
    if (transient) break;  // keep order: nothing after a message we could not apply yet
    if (ack_target.empty() && !signer.empty()) ack_target = signer;
    ack.results.push_back(std::move(result));
  }
  if (ack_target.empty()) {
    if (batch->envelopes.empty()) return {};
    // Nothing verifiable: answer whoever the first envelope claims to be, so a misconfigured
    // child learns why (its messages carry no authority here anyway).
    return {};
  }
  auto target = DivisionCode::parse(ack_target);
  if (!target) return {};
  SealParams p;
  p.kind = kinds::kOutboxAck;
  p.seq = 0;
  p.timestamp_ms = clock_.now();
  p.target = *target;
  p.payload = encode(ack);
  p.nonce = batch->nonce;
  return sealEnvelope(identity_, p);
}

AckResultMsg Downlink::applyOne(const Bytes& sealed, std::string* signer, bool* transient) {
  AckResultMsg result;
  auto fail = [&](const Status& st) {
    ++counters_.rejected;
    result.outcome = errorCodeName(st.code());
    result.message = st.message();
    return result;
  };
  auto opened = verifier_.open(sealed, identity_.division, clock_.now(), &receipts_);
  if (!opened) {
    const Status& st = opened.status();
    if (st.code() == ErrorCode::kReplay) {
      // Everything but the sequence verified: a genuine re-delivery of a message applied
      // before (its ack was lost). Acknowledge it again without applying it.
      auto again = verifier_.open(sealed, identity_.division, clock_.now(), nullptr);
      if (!again) return fail(again.status());
      *signer = again->signer.str();
      result.seq = again->seq;
      result.outcome = kOutcomeDuplicate;
      ++counters_.duplicates;
      if (observer_) observer_->onAcknowledged(again->signer, again->seq, kOutcomeDuplicate);
      return result;
    }
    if (!isPermanent(st.code())) {
      spdlog::warn("[{}] cannot take an envelope yet (its sender retries): {}", identity_.division.str(), st.toString());
      *transient = true;
      return result;
    }
    if (st.code() == ErrorCode::kRollback) {
      // Everything but the sequence verified. A message refused for good before, sent again
      // because the refusal's ack was lost, gets the same answer again.
      if (auto claimed = peekEnvelope(sealed)) {
        auto before = receipts_.refusal(claimed->signer, claimed->seq);
        if (before && *before) {
          *signer = claimed->signer;
          result.seq = claimed->seq;
          ++counters_.rejected;
          result.outcome = (*before)->outcome;
          result.message = (*before)->message;
          return result;
        }
      }
    }
    spdlog::warn("[{}] rejected an envelope: {}", identity_.division.str(), st.toString());
    // Report the seq the envelope claims, so its sender can set it aside; the ack is signed by
    // us and goes only to the requester's inbox, so a forged claim gains nothing.
    if (auto claimed = peekEnvelope(sealed)) {
      *signer = claimed->signer;
      result.seq = claimed->seq;
    }
    return fail(st);
  }
  *signer = opened->signer.str();
  result.seq = opened->seq;
  // A genuine message refused for good: the refusal is kept (a transaction of its own, after the
  // applying one rolled back) so that a re-delivery is answered the same.
  auto refuse = [&](const Status& st) {
    auto txn = db_.begin();
    Status kept = txn ? receipts_.recordRefusal(opened->signer.str(), opened->seq,
                                                Receipts::Refusal{errorCodeName(st.code()), st.message()}, clock_.now())
                      : txn.status();
    if (kept.isOk()) kept = txn->commit();
    if (!kept.isOk()) {
      spdlog::warn("[{}] could not keep the refusal of {} seq {}: {}", identity_.division.str(), opened->signer.str(),
                   opened->seq, kept.toString());
    }
    return fail(st);
  };
  auto it = appliers_.find(opened->kind);
  if (it == appliers_.end()) {
    return refuse(Status(ErrorCode::kUnauthorized, "no applier for message kind " + std::to_string(opened->kind) +
                                                       " at " + identity_.division.str()));
  }
  std::optional<Transaction> txn;
  if (auto begun = db_.begin()) {
    txn.emplace(std::move(begun).value());
  } else {
    *transient = true;
    return result;
  }
  Status st = it->second(*opened);
  if (st.isOk() && identity_.division.isParentOf(opened->signer)) {
    auto stmt = db_.prepare(
        "INSERT INTO children (division, last_seen_ms, last_seq) VALUES (?1, ?2, ?3) "
        "ON CONFLICT(division) DO UPDATE SET last_seen_ms = excluded.last_seen_ms, last_seq = excluded.last_seq");
    st = stmt ? stmt->bind(1, opened->signer.str()).bind(2, clock_.now()).bind(3, static_cast<int64_t>(opened->seq)).run()
              : stmt.status();
  }
  if (st.isOk()) st = receipts_.record(opened->signer.str(), opened->seq, clock_.now());
  if (st.isOk()) st = txn->commit();
  if (!st.isOk()) {
    if (isPermanent(st.code())) {
      txn.reset();  // rolls the applier's effects back
      return refuse(st);
    }
    spdlog::warn("[{}] could not apply {} seq {} yet: {}", identity_.division.str(), opened->signer.str(),
                 opened->seq, st.toString());
    *transient = true;
    return result;
  }
  ++counters_.applied;
  result.outcome = kOutcomeApplied;
  if (observer_) observer_->onApplied(identity_.division, opened->signer, opened->seq, opened->kind);
  return result;
}

Status Downlink::applyJoin(const OpenedEnvelope& e) {
  auto join = decodeJoin(e.payload);
  if (!join) return join.status();
  TB_ASSIGN_OR_RETURN(auto stmt, db_.prepare(
      "INSERT INTO children (division, name, joined_at_ms, software_version) VALUES (?1, ?2, ?3, ?4) "
      "ON CONFLICT(division) DO UPDATE SET name = excluded.name, joined_at_ms = excluded.joined_at_ms, "
      "software_version = excluded.software_version"));
  stmt.bind(1, e.signer.str()).bind(2, join->name).bind(3, e.timestamp_ms).bind(4, join->software_version);
  TB_RETURN_IF_ERROR(stmt.run());
  spdlog::info("[{}] child {} ({}) joined", identity_.division.str(), e.signer.str(), join->name);
  return Status::ok();
}

Status Downlink::applyHeartbeat(const OpenedEnvelope& e) {
  auto hb = decodeHeartbeat(e.payload);
  if (!hb) return hb.status();
  // What the child says about its subtree: it cannot speak for divisions outside it, nor for a
  // moment after it sealed the heartbeat.
  std::string held_back_by = hb->held_back_by, held_back_by_name = hb->held_back_by_name;
  if (!held_back_by.empty()) {
    auto named = DivisionCode::parse(held_back_by);
    if (!named || !e.signer.covers(*named)) {
      held_back_by = e.signer.str();
      held_back_by_name.clear();
    }
  }
  const TimeMs as_of = std::min(hb->subtree_complete_as_of_ms, e.timestamp_ms);
  // Every message the child enqueued before this heartbeat has been applied (the shipper sends
  // in seq order and this applies in order), so the watermark holds from now on. A statement
  // about the past stays true, so an older value arriving later (a replaced heartbeat payload
  // applied under its seq) never lowers it.
  TB_ASSIGN_OR_RETURN(auto stmt, db_.prepare(
      "INSERT INTO children (division, reported_outbox_depth, complete_as_of_ms, held_back_by, held_back_by_name)"
      " VALUES (?1, ?2, ?3, ?4, ?5) "
      "ON CONFLICT(division) DO UPDATE SET reported_outbox_depth = excluded.reported_outbox_depth,"
      " held_back_by = CASE WHEN excluded.complete_as_of_ms >= complete_as_of_ms THEN excluded.held_back_by"
      "   ELSE held_back_by END,"
      " held_back_by_name = CASE WHEN excluded.complete_as_of_ms >= complete_as_of_ms THEN excluded.held_back_by_name"
      "   ELSE held_back_by_name END,"
      " complete_as_of_ms = MAX(complete_as_of_ms, excluded.complete_as_of_ms)"));
  stmt.bind(1, e.signer.str()).bind(2, static_cast<int64_t>(hb->outbox_depth)).bind(3, as_of);
  stmt.bind(4, held_back_by).bind(5, held_back_by_name);
  return stmt.run();
}

Result<Downlink::Completeness> Downlink::completeness(TimeMs now, const std::vector<DivisionCode>& expected) {
  Completeness c;
  c.as_of_ms = now;
  TB_ASSIGN_OR_RETURN(auto stmt, db_.prepare(
      "SELECT division, name, complete_as_of_ms, held_back_by, held_back_by_name FROM children ORDER BY division"));
  std::vector<std::string> heard;
  while (true) {
    TB_ASSIGN_OR_RETURN(bool row, stmt.step());
    if (!row) break;
    heard.push_back(stmt.columnText(0));
    const TimeMs child = stmt.columnInt64(2);
    if (child >= c.as_of_ms) continue;
    c.as_of_ms = child;
    const std::string named = stmt.columnText(3);
    c.held_back_by = named.empty() ? stmt.columnText(0) : named;
    c.held_back_by_name = named.empty() ? stmt.columnText(1) : stmt.columnText(4);
  }
  for (const auto& child : expected) {
    if (std::find(heard.begin(), heard.end(), child.str()) != heard.end()) continue;
    if (c.as_of_ms > 0 || c.held_back_by.empty()) {
      c.as_of_ms = 0;  // never heard of: whatever it recorded is unknown here
      c.held_back_by = child.str();
      c.held_back_by_name.clear();
    }
  }
  return c;
}

Result<std::vector<ChildStatusMsg>> Downlink::children() {
  TB_ASSIGN_OR_RETURN(auto stmt, db_.prepare(
      "SELECT division, name, joined_at_ms, last_seen_ms, reported_outbox_depth, last_seq FROM children "
      "ORDER BY division"));
  std::vector<ChildStatusMsg> out;
  while (true) {
    TB_ASSIGN_OR_RETURN(bool row, stmt.step());
    if (!row) break;
    out.push_back({stmt.columnText(0), stmt.columnText(1), stmt.columnInt64(2), stmt.columnInt64(3),
                   static_cast<uint64_t>(stmt.columnInt64(4)), static_cast<uint64_t>(stmt.columnInt64(5))});
  }
  return out;
}

}  // namespace tongban
