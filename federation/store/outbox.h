// The durable outbox: messages a node must deliver to a neighbour (its parent, or one of its
// children for what travels down), committed in the same transaction as the change that causes
// them. One shipper per neighbour (sync/shipper.h) sends that neighbour's messages in seq order
// and deletes them only after the neighbour acknowledges.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "federation/store/database.h"
#include "federation/transport/clock.h"

namespace tongban {

struct OutboxMessage {
  uint64_t seq = 0;        // per node, strictly increasing, never reused (even after deletion)
  uint16_t kind = 0;
  std::string target;      // division code of the receiver
  Bytes payload;
  TimeMs created_ms = 0;
  uint32_t attempts = 0;   // how many times a batch containing it was sent
};

class Outbox {
 public:
  // Creates its tables (component "outbox") if needed.
  static Result<Outbox> open(Database& db);

  // Appends a message. Must be called inside the caller's open transaction (the state change
  // and the message commit together); refuses with kFailedPrecondition otherwise.
  Result<uint64_t> enqueue(uint16_t kind, const std::string& target, const Bytes& payload, TimeMs now_ms);

  // Like enqueue, but if the newest pending message for `target` has the same kind, replaces its payload
  // (keeping its seq) instead of adding one: for kinds where a later message supersedes an
  // earlier one (heartbeats), so at most one waits however long the parent is away. If a batch
  // carrying the older payload was already applied, the parent keeps that one.
  Result<uint64_t> enqueueCoalescing(uint16_t kind, const std::string& target, const Bytes& payload,
                                     TimeMs now_ms);

  // The oldest pending messages, in seq order, at most `max_count` and at most `max_bytes` of
  // payload (at least one message if any is pending, whatever its size). With a `target`, only
  // that neighbour's messages; with "" every target's.
  Result<std::vector<OutboxMessage>> peek(size_t max_count, size_t max_bytes, const std::string& target = "");

  // Counts a send attempt for every pending message for `target` ("" = any) with seq <= up_to.
  Status markAttempted(uint64_t up_to_seq, const std::string& target = "");

  // Every target with at least one pending message (a node starts a shipper for each).
  Result<std::vector<std::string>> pendingTargets();

  // Whether message `seq` is still waiting for its acknowledgement.
  Result<bool> pending(uint64_t seq);

  // Deletes the given messages (acknowledged, or permanently rejected by the parent).
  Status remove(const std::vector<uint64_t>& seqs);

  Result<uint64_t> depth();

 private:
  explicit Outbox(Database& db) : db_(&db) {}
  Database* db_;
};

}  // namespace tongban
