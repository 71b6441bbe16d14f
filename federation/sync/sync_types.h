// Limits and observation hooks shared by the uplink (shipping the outbox to the parent) and
// the downlink (applying what children ship).
#pragma once

#include <cstdint>
#include <string>

#include "federation/transport/clock.h"
#include "federation/trust/envelope.h"

namespace tongban {

struct SyncLimits {
  size_t batch_max_messages = 64;           // envelopes per OutboxBatch
  size_t batch_max_bytes = 256 * 1024;      // payload bytes per OutboxBatch (kMaxBatchBytes caps the wire)
  DurationMs request_timeout_ms = 5000;     // how long a batch waits for the parent's ack
  DurationMs retry_initial_ms = 500;        // first backoff after a failed batch
  DurationMs retry_max_ms = 30000;          // backoff cap: a returning link is used within this
  DurationMs heartbeat_interval_ms = 10000;
};

// Hooks for the simulator's invariant checks and for metrics. Called on the node's executor,
// after the corresponding transaction committed.
class SyncObserver {
 public:
  virtual ~SyncObserver() = default;
  virtual void onEnqueued(const DivisionCode& origin, uint64_t seq, MessageKind kind) {}
  virtual void onApplied(const DivisionCode& receiver, const DivisionCode& origin, uint64_t seq, MessageKind kind) {}
  virtual void onAcknowledged(const DivisionCode& origin, uint64_t seq, const std::string& outcome) {}
};

}  // namespace tongban
