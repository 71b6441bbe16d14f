// The receiving end of shipping: takes children's outbox batches on tb.<self>.up and the
// parent's on tb.<self>.down, verifies each envelope (the kind's Direction decides who may send
// it: a child's kinds are refused from the parent and the other way round), applies it and
// records its (signer, seq) receipt in one transaction, and answers with a signed ack only after
// commit. A message delivered twice is acknowledged as "duplicate" and not applied again. Keeps
// the children table (who joined, when last heard).
//
// (The name is historical: it began as the child-to-parent link's receiving end.)
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <vector>

#include "federation/store/receipts.h"
#include "federation/sync/sync_types.h"
#include "federation/sync/wire.h"
#include "federation/transport/transport.h"

namespace tongban {

// Applies one verified durable message inside the open transaction. Return kInvalidArgument
// or kMalformed for content that will never be acceptable (the child is told and stops
// resending it); any other error is treated as transient (retried later).
using Applier = std::function<Status(const OpenedEnvelope& envelope)>;

class Downlink {
 public:
  Downlink(const Identity& identity, Database& db, Receipts& receipts, const Verifier& verifier, Clock& clock,
           Transport& transport, SyncObserver* observer);
  ~Downlink();
  Downlink(const Downlink&) = delete;
  Downlink& operator=(const Downlink&) = delete;

  // Before start(): who applies each durable kind. Join and heartbeat are built in.
  void registerApplier(MessageKind kind, Applier applier);

  // Creates its table (component "downlink") and subscribes to tb.<self>.up and tb.<self>.down.
  Status start();
  void stop();

  Result<std::vector<ChildStatusMsg>> children();

  // The subtree completeness watermark at `now` (docs/protocol.md "Completeness watermark"):
  // the instant W such that every durable upward message created in this node's subtree before W
  // has been applied here. It is min(now, each child's watermark from its latest applied
  // heartbeat); a child in `expected` that has never sent a heartbeat with one holds it at 0.
  // `held_back_by` is where the minimum comes from (the deepest division the children named), ""
  // when W is `now` (no children). Each child's value is stored with the heartbeat that carried
  // it (table children), so a restart claims no more than was applied.
  struct Completeness {
    TimeMs as_of_ms = 0;
    std::string held_back_by;
    std::string held_back_by_name;
  };
  Result<Completeness> completeness(TimeMs now, const std::vector<DivisionCode>& expected);

  struct Counters {
    uint64_t batches = 0, applied = 0, duplicates = 0, rejected = 0, malformed_batches = 0;
  };
  const Counters& counters() const { return counters_; }

  // Handles one batch and returns the sealed ack (empty if nothing could be attributed to a
  // child). Public for tests; the subscription calls it.
  Bytes handleBatch(const Bytes& batch_bytes);

 private:
  AckResultMsg applyOne(const Bytes& sealed, std::string* signer, bool* transient);
  Status applyJoin(const OpenedEnvelope& e);
  Status applyHeartbeat(const OpenedEnvelope& e);

  const Identity& identity_;
  Database& db_;
  Receipts& receipts_;
  const Verifier& verifier_;
  Clock& clock_;
  Transport& transport_;
  SyncObserver* observer_;
  std::map<MessageKind, Applier> appliers_;
  Transport::SubscriptionId subscription_ = 0;
  Transport::SubscriptionId down_subscription_ = 0;
  Counters counters_;
};

}  // namespace tongban
