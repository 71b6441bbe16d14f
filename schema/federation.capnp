@0xe4e340c70f5c9279;
# Messages of the federation layer itself: joining the tree, heartbeats, shipping the outbox
# and acknowledging it, and asking a node for its status. Subjects are in docs/protocol.md.

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("tongban::wire");

# kind 1 (durable, up): a node announces itself to its parent once.
struct Join {
  name @0 :Text;
  softwareVersion @1 :Text;
}

# kind 2 (durable, up, coalescing): a node's periodic sign of life.
struct Heartbeat {
  outboxDepth @0 :UInt64;
  startedAtMs @1 :Int64;
  childrenCount @2 :UInt32;
  # The sender's subtree completeness watermark, computed when it enqueued this heartbeat: every
  # durable upward message created in its subtree before this instant had been applied at the
  # sender (and so is in its outbox before this heartbeat). docs/protocol.md "Completeness watermark".
  subtreeCompleteAsOfMs @3 :Int64;
  heldBackBy @4 :Text;         # the division whose records hold the watermark back ("" = none)
  heldBackByName @5 :Text;
}

# Request on tb.<parent>.up: a batch of sealed envelopes, oldest first. Not signed itself:
# every envelope in it is.
struct OutboxBatch {
  nonce @0 :UInt64;            # echoed in the ack to bind it to this request
  envelopes @1 :List(Data);    # SealedEnvelope bytes
}

# kind 3 (reply): the parent's answer to an OutboxBatch, sealed by the parent.
struct OutboxAck {
  results @0 :List(AckResult);
}

struct AckResult {
  seq @0 :UInt64;
  # "applied", "duplicate" (already applied earlier: safe to delete), or an error code name
  # such as "UNAUTHORIZED" (the message will never be accepted: the sender must not retry it).
  outcome @1 :Text;
  message @2 :Text;
}

# kind 4 (request on tb.<code>.status): unsigned; answered with a sealed NodeStatus (kind 5).
struct StatusRequest {
  nonce @0 :UInt64;
}

struct NodeStatus {
  division @0 :Text;
  name @1 :Text;
  level @2 :Text;
  parent @3 :Text;                  # empty for the city
  busConnected @4 :Bool;            # connection to the local message bus
  parentLink @5 :Text;              # "up", "down", "unknown" ("none" for the city)
  parentLinkSinceMs @6 :Int64;      # when parentLink last changed
  lastAckMs @7 :Int64;              # last batch the parent acknowledged (0: never)
  outboxDepth @8 :UInt64;
  nowMs @9 :Int64;                  # the node's clock when answering
  startedAtMs @10 :Int64;
  joined @11 :Bool;                 # the parent has applied our Join
  lastError @12 :Text;              # last shipping error, for the operator
  children @13 :List(ChildStatus);
}

struct ChildStatus {
  division @0 :Text;
  name @1 :Text;
  joinedAtMs @2 :Int64;
  lastSeenMs @3 :Int64;             # last envelope applied from it
  reportedOutboxDepth @4 :UInt64;
  lastSeq @5 :UInt64;
}
