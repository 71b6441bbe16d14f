// The uplink: ships this node's outbox to its parent, oldest first, and deletes a message only
// after the parent's signed ack says it was applied (now or before). While the parent is
// unreachable it retries with capped exponential backoff and jitter; nothing is lost, because
// the outbox is in SQLite.
//
// One batch is in flight at a time, and a batch always starts at the oldest pending message,
// so the parent sees each child's messages in seq order.
#pragma once

#include <memory>
#include <string>

#include "federation/store/outbox.h"
#include "federation/sync/sync_types.h"
#include "federation/transport/random.h"
#include "federation/transport/transport.h"

namespace tongban {

struct UplinkState {
  std::string link = "unknown";   // "up" (last batch acked), "down" (last attempt failed), "unknown"
  TimeMs link_since_ms = 0;
  TimeMs last_ack_ms = 0;
  std::string last_error;
  uint64_t batches_sent = 0;
  uint64_t batches_failed = 0;
  uint64_t rejected_total = 0;     // messages the parent refused for good (kept in outbox_rejected)
};

class Uplink {
 public:
  Uplink(const Identity& identity, Database& db, Outbox& outbox, const Verifier& verifier, Clock& clock,
         Transport& transport, Random& random, const SyncLimits& limits, SyncObserver* observer);
  ~Uplink();
  Uplink(const Uplink&) = delete;
  Uplink& operator=(const Uplink&) = delete;

  // Creates its table (component "uplink") and starts shipping.
  Status start();
  // New messages were committed: ship now unless a batch is in flight or we are backing off.
  void kick();
  // Cancels timers; a reply that arrives later is ignored.
  void stop();

  const UplinkState& state() const { return state_; }
  bool busy() const { return in_flight_; }

 private:
  void scheduleAttempt(DurationMs delay);
  void attempt();
  void onReply(uint64_t nonce, uint64_t last_seq, Result<Bytes> reply);
  void onFailure(const std::string& why);
  Status applyAck(const struct OutboxAckMsg& ack, uint64_t last_seq);

  const Identity& identity_;
  DivisionCode parent_;
  Database& db_;
  Outbox& outbox_;
  const Verifier& verifier_;
  Clock& clock_;
  Transport& transport_;
  Random& random_;
  SyncLimits limits_;
  SyncObserver* observer_;

  UplinkState state_;
  bool started_ = false;
  bool in_flight_ = false;
  uint64_t in_flight_nonce_ = 0;
  Clock::TimerId retry_timer_ = 0;
  DurationMs backoff_ms_ = 0;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace tongban
