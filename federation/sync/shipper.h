// A shipper: ships this node's outbox messages for one neighbour (the parent on tb.<parent>.up,
// or a child on tb.<child>.down), oldest first, and deletes a message only after that
// neighbour's signed ack says it was applied (now or before). While the neighbour is
// unreachable it retries with capped exponential backoff and jitter; nothing is lost, because
// the outbox is in SQLite.
//
// One batch is in flight at a time, and a batch always starts at the oldest pending message
// for the neighbour, so the neighbour sees this node's messages in seq order.
#pragma once

#include <memory>
#include <string>

#include "federation/store/outbox.h"
#include "federation/sync/sync_types.h"
#include "federation/transport/random.h"
#include "federation/transport/transport.h"

namespace tongban {

struct LinkState {
  std::string link = "unknown";   // "up" (last batch acked), "down" (last attempt failed), "unknown"
  TimeMs link_since_ms = 0;
  TimeMs last_ack_ms = 0;
  std::string last_error;
  uint64_t batches_sent = 0;
  uint64_t batches_failed = 0;
  uint64_t rejected_total = 0;     // messages the neighbour refused for good (kept in outbox_rejected)
};

class Shipper {
 public:
  // `peer` must be this node's parent or one of its children; `subject` is where it listens
  // (upSubject(parent) or downSubject(child), sync/wire.h).
  Shipper(const Identity& identity, DivisionCode peer, std::string subject, Database& db, Outbox& outbox,
          const Verifier& verifier, Clock& clock, Transport& transport, Random& random, const SyncLimits& limits,
          SyncObserver* observer);
  ~Shipper();
  Shipper(const Shipper&) = delete;
  Shipper& operator=(const Shipper&) = delete;

  // Creates the table every shipper shares (component "uplink": outbox_rejected). Call once at
  // start-up, before any transaction is open.
  static Status migrate(Database& db);

  // Starts shipping (after migrate()).
  Status start();
  // New messages were committed: ship now unless a batch is in flight or we are backing off.
  void kick();
  // Cancels timers; a reply that arrives later is ignored.
  void stop();

  const LinkState& state() const { return state_; }
  const DivisionCode& peer() const { return peer_; }
  bool busy() const { return in_flight_; }

 private:
  void scheduleAttempt(DurationMs delay);
  void attempt();
  void onReply(uint64_t nonce, uint64_t last_seq, Result<Bytes> reply);
  void onFailure(const std::string& why);
  Status applyAck(const struct OutboxAckMsg& ack, uint64_t last_seq);

  const Identity& identity_;
  DivisionCode peer_;
  std::string subject_;
  Database& db_;
  Outbox& outbox_;
  const Verifier& verifier_;
  Clock& clock_;
  Transport& transport_;
  Random& random_;
  SyncLimits limits_;
  SyncObserver* observer_;

  LinkState state_;
  bool started_ = false;
  bool in_flight_ = false;
  uint64_t in_flight_nonce_ = 0;
  Clock::TimerId retry_timer_ = 0;
  DurationMs backoff_ms_ = 0;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace tongban
