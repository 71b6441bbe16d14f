#include "federation/sync/shipper.h"

#include <algorithm>
#include <set>

#include <spdlog/spdlog.h>

#include "federation/sync/wire.h"

namespace tongban {

namespace {
const std::vector<Migration> kShipperMigrations = {
    {1,
     // Messages a neighbour refused for good. Kept, never silently dropped: an operator can read
     // them (and a later version can re-send them after the cause is fixed).
     "CREATE TABLE outbox_rejected ("
     "  seq INTEGER PRIMARY KEY, kind INTEGER NOT NULL, target TEXT NOT NULL, payload BLOB NOT NULL,"
     "  created_ms INTEGER NOT NULL, outcome TEXT NOT NULL, message TEXT NOT NULL, rejected_ms INTEGER NOT NULL);"},
};
}  // namespace

Shipper::Shipper(const Identity& identity, DivisionCode peer, std::string subject, Database& db, Outbox& outbox,
                 const Verifier& verifier, Clock& clock, Transport& transport, Random& random,
                 const SyncLimits& limits, SyncObserver* observer)
    : identity_(identity),
      peer_(std::move(peer)),
      subject_(std::move(subject)),
      db_(db),
      outbox_(outbox),
      verifier_(verifier),
      clock_(clock),
      transport_(transport),
      random_(random),
      limits_(limits),
      observer_(observer) {}

Shipper::~Shipper() { stop(); }

Status Shipper::migrate(Database& db) {
  // The component keeps its first name ("uplink"): stores created before downward shipping exist.
  return db.migrate("uplink", kShipperMigrations);
}

Status Shipper::start() {
  if (!peer_.isParentOf(identity_.division) && !identity_.division.isParentOf(peer_)) {
    return Status(ErrorCode::kFailedPrecondition, identity_.division.str() + " ships only to its parent and its children, not to " +
                                                      peer_.str());
  }
  started_ = true;
  alive_ = std::make_shared<bool>(true);  // callbacks of an earlier start() stay dead
  backoff_ms_ = limits_.retry_initial_ms;
  scheduleAttempt(0);
  return Status::ok();
}

void Shipper::stop() {
  started_ = false;
  *alive_ = false;
  if (retry_timer_) clock_.cancel(retry_timer_);
  retry_timer_ = 0;
}

void Shipper::kick() {
  if (!started_ || in_flight_ || retry_timer_) return;  // a pending retry keeps its backoff
  scheduleAttempt(0);
}

void Shipper::scheduleAttempt(DurationMs delay) {
  if (retry_timer_) clock_.cancel(retry_timer_);
  retry_timer_ = clock_.schedule(delay, [this, alive = alive_] {
    if (!*alive) return;
    retry_timer_ = 0;
    attempt();
  });
}

void Shipper::attempt() {
  if (!started_ || in_flight_) return;
  auto pending = outbox_.peek(limits_.batch_max_messages, limits_.batch_max_bytes, peer_.str());
  if (!pending) {
    onFailure("reading the outbox: " + pending.status().toString());
    return;
  }
  if (pending->empty()) return;  // idle until kick()

  OutboxBatchMsg batch;
  batch.nonce = random_.next() | 1;  // never 0: 0 means "unbound"
  const TimeMs now = clock_.now();
  for (const auto& m : *pending) {
    SealParams p;
    p.kind = m.kind;
    p.seq = m.seq;
    p.timestamp_ms = now;
    p.target = peer_;
    p.payload = m.payload;
    batch.envelopes.push_back(sealEnvelope(identity_, p));
  }
  const uint64_t last_seq = pending->back().seq;
  if (auto st = outbox_.markAttempted(last_seq, peer_.str()); !st.isOk()) {
    onFailure("recording the send attempt: " + st.toString());
    return;
  }
  in_flight_ = true;
  in_flight_nonce_ = batch.nonce;
  ++state_.batches_sent;
  transport_.request(subject_, encode(batch), limits_.request_timeout_ms,
                     [this, alive = alive_, nonce = batch.nonce, last_seq](Result<Bytes> reply) {
                       if (!*alive) return;
                       onReply(nonce, last_seq, std::move(reply));
                     });
}

void Shipper::onReply(uint64_t nonce, uint64_t last_seq, Result<Bytes> reply) {
  if (nonce != in_flight_nonce_) return;  // a stale reply from a superseded attempt
  in_flight_ = false;
  if (!reply) {
    onFailure("sending to " + peer_.str() + ": " + reply.status().toString());
    return;
  }
  auto opened = verifier_.open(*reply, identity_.division, clock_.now(), nullptr);
  if (!opened) {
    onFailure("ack from " + peer_.str() + " rejected: " + opened.status().toString());
    return;
  }
  if (opened->kind != kinds::kOutboxAck || opened->signer != peer_ || opened->nonce != nonce) {
    onFailure("reply to batch is not " + peer_.str() + "'s ack for it (kind " + std::to_string(opened->kind) + ", signer " +
              opened->signer.str() + ")");
    return;
  }
  auto ack = decodeOutboxAck(opened->payload);
  if (!ack) {
    onFailure("ack from " + peer_.str() + " does not decode: " + ack.status().toString());
    return;
  }
  if (auto st = applyAck(*ack, last_seq); !st.isOk()) {
    onFailure("applying ack: " + st.toString());
    return;
  }
  const TimeMs now = clock_.now();
  if (state_.link != "up") {
    state_.link = "up";
    state_.link_since_ms = now;
  }
  state_.last_ack_ms = now;
  backoff_ms_ = limits_.retry_initial_ms;
  // Whatever the neighbour did not answer for (it stopped at a transient error) stays pending;
  // if it answered nothing at all, back off rather than spin.
  if (ack->results.empty()) {
    onFailure(peer_.str() + " applied nothing of the batch (transient error on its side)");
    return;
  }
  scheduleAttempt(0);  // more may be pending; attempt() goes idle when the outbox is empty
}

Status Shipper::applyAck(const OutboxAckMsg& ack, uint64_t last_seq) {
  auto pending = outbox_.peek(limits_.batch_max_messages, limits_.batch_max_bytes, peer_.str());
  if (!pending) return pending.status();
  std::map<uint64_t, const OutboxMessage*> by_seq;
  for (const auto& m : *pending) by_seq[m.seq] = &m;

  std::vector<uint64_t> done;
  std::vector<std::pair<const OutboxMessage*, const AckResultMsg*>> rejected;
  for (const auto& r : ack.results) {
    auto it = by_seq.find(r.seq);
    if (it == by_seq.end() || r.seq > last_seq) continue;  // not ours or already handled
    done.push_back(r.seq);
    if (r.outcome != kOutcomeApplied && r.outcome != kOutcomeDuplicate) rejected.emplace_back(it->second, &r);
  }
  if (done.empty()) return Status::ok();
  TB_ASSIGN_OR_RETURN(auto txn, db_.begin());
  for (const auto& [m, r] : rejected) {
    TB_ASSIGN_OR_RETURN(auto stmt, db_.prepare(
        "INSERT OR REPLACE INTO outbox_rejected (seq, kind, target, payload, created_ms, outcome, message, rejected_ms)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"));
    stmt.bind(1, static_cast<int64_t>(m->seq)).bind(2, static_cast<int64_t>(m->kind)).bind(3, m->target);
    stmt.bind(4, m->payload).bind(5, m->created_ms).bind(6, r->outcome).bind(7, r->message).bind(8, clock_.now());
    TB_RETURN_IF_ERROR(stmt.run());
  }
  TB_RETURN_IF_ERROR(outbox_.remove(done));
  TB_RETURN_IF_ERROR(txn.commit());
  for (const auto& [m, r] : rejected) {
    ++state_.rejected_total;
    state_.last_error = peer_.str() + " refused message " + std::to_string(m->seq) + ": " + r->outcome + ": " + r->message;
    spdlog::error("[{}] {} refused outbox message {} (kind {}) for good: {}: {}", identity_.division.str(),
                  peer_.str(), m->seq, m->kind, r->outcome, r->message);
  }
  if (observer_) {
    for (const auto& r : ack.results) {
      if (std::find(done.begin(), done.end(), r.seq) != done.end()) observer_->onAcknowledged(identity_.division, r.seq, r.outcome);
    }
  }
  return Status::ok();
}

void Shipper::onFailure(const std::string& why) {
  const TimeMs now = clock_.now();
  ++state_.batches_failed;
  if (state_.link != "down") {
    state_.link = "down";
    state_.link_since_ms = now;
    spdlog::warn("[{}] link to {} down: {}", identity_.division.str(), peer_.str(), why);
  }
  state_.last_error = why;
  // Full jitter over the upper half: spreads the retries of many villages after an outage.
  const DurationMs delay = backoff_ms_ / 2 + static_cast<DurationMs>(random_.below(backoff_ms_ / 2 + 1));
  backoff_ms_ = std::min(limits_.retry_max_ms, backoff_ms_ * 2);
  scheduleAttempt(delay);
}

}  // namespace tongban
