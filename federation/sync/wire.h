// The federation's own messages as plain structs, and their Cap'n Proto encoding
// (schema/federation.capnp). Cap'n Proto stays inside wire.cpp; callers see only these types.
//
// Decoding treats the bytes as hostile: size cap, word alignment, traversal and nesting
// limits, and field checks; a failure is kMalformed with the reason.
#pragma once

#include <string>
#include <vector>

#include "federation/transport/clock.h"
#include "federation/trust/envelope.h"
#include "federation/util/bytes.h"

namespace tongban {

// Message kinds the federation owns (1-99); the node layer uses 100 and up.
namespace kinds {
inline constexpr MessageKind kJoin = 1;         // durable, up
inline constexpr MessageKind kHeartbeat = 2;    // durable (coalescing), up
inline constexpr MessageKind kOutboxAck = 3;    // reply, parent → child
inline constexpr MessageKind kStatusReply = 5;  // reply, node → whoever asked
// 4 and 6 are unused (never assigned).
inline constexpr MessageKind kFeedRequest = 7;  // up, not durable: child asks its parent for entries (sync/feed.h)
inline constexpr MessageKind kFeedBatch = 8;    // reply, parent → child: the entries after the cursor (sync/feed.h)
inline constexpr MessageKind kFeedHint = 9;     // statement, parent → its children: "my head is now N" (sync/feed.h)
}  // namespace kinds

// Registers the federation's kinds with their authority rules.
void registerFederationKinds(KindRegistry& registry);

// Subjects (documented in docs/protocol.md).
std::string upSubject(const DivisionCode& parent);      // tb.<parent>.up      child → parent batches
std::string downSubject(const DivisionCode& child);     // tb.<child>.down     parent → child batches
std::string statusSubject(const DivisionCode& node);    // tb.<node>.status    status requests

struct JoinMsg {
  std::string name;
  std::string software_version;
};

struct HeartbeatMsg {
  uint64_t outbox_depth = 0;
  TimeMs started_at_ms = 0;
  uint32_t children_count = 0;
  // The sender's subtree completeness watermark when it enqueued the heartbeat (Downlink::
  // completeness), and the division that holds it back ("" if none). 0 from older software.
  TimeMs subtree_complete_as_of_ms = 0;
  std::string held_back_by;
  std::string held_back_by_name;
};

struct OutboxBatchMsg {
  uint64_t nonce = 0;
  std::vector<Bytes> envelopes;
};

// Outcomes in an ack: the message was applied now, or earlier (both mean "delete it").
// Anything else is the name of the ErrorCode that rejected it for good.
inline constexpr const char* kOutcomeApplied = "applied";
inline constexpr const char* kOutcomeDuplicate = "duplicate";

struct AckResultMsg {
  uint64_t seq = 0;
  std::string outcome;
  std::string message;
};

struct OutboxAckMsg {
  std::vector<AckResultMsg> results;
};

struct StatusRequestMsg {
  uint64_t nonce = 0;
};

struct ChildStatusMsg {
  std::string division;
  std::string name;
  TimeMs joined_at_ms = 0;
  TimeMs last_seen_ms = 0;
  uint64_t reported_outbox_depth = 0;
  uint64_t last_seq = 0;
};

struct NodeStatusMsg {
  std::string division;
  std::string name;
  std::string level;
  std::string parent;
  bool bus_connected = false;
  std::string parent_link;        // "up", "down", "unknown", "none"
  TimeMs parent_link_since_ms = 0;
  TimeMs last_ack_ms = 0;
  uint64_t outbox_depth = 0;
  TimeMs now_ms = 0;
  TimeMs started_at_ms = 0;
  bool joined = false;
  std::string last_error;
  std::vector<ChildStatusMsg> children;
};

// Limits for the federation's own messages.
inline constexpr size_t kMaxBatchBytes = 512 * 1024;   // one OutboxBatch on the wire
inline constexpr size_t kMaxBatchEnvelopes = 256;
inline constexpr size_t kMaxStatusChildren = 4096;

Bytes encode(const JoinMsg& m);
Bytes encode(const HeartbeatMsg& m);
Bytes encode(const OutboxBatchMsg& m);
Bytes encode(const OutboxAckMsg& m);
Bytes encode(const StatusRequestMsg& m);
Bytes encode(const NodeStatusMsg& m);

Result<JoinMsg> decodeJoin(const Bytes& b);
Result<HeartbeatMsg> decodeHeartbeat(const Bytes& b);
Result<OutboxBatchMsg> decodeOutboxBatch(const Bytes& b);
Result<OutboxAckMsg> decodeOutboxAck(const Bytes& b);
Result<StatusRequestMsg> decodeStatusRequest(const Bytes& b);
Result<NodeStatusMsg> decodeNodeStatus(const Bytes& b);

}  // namespace tongban
