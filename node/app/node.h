// A Tongban node: the same code at every level (city, district, town, village), in the daemon
// and in the simulator. It owns its SQLite store and, through the federation layer, joins its
// parent, ships its outbox upward, applies what its children ship, and answers status requests.
//
// Threading: every method and every callback runs on the node's one executor (the thread that
// runs the Clock's timers and the Transport's handlers). Nothing here locks.
#pragma once

#include <memory>
#include <string>

#include "federation/store/database.h"
#include "federation/sync/downlink.h"
#include "federation/sync/sync_types.h"
#include "federation/sync/shipper.h"
#include "federation/sync/wire.h"
#include "federation/transport/random.h"
#include "federation/transport/transport.h"
#include "federation/trust/keys.h"
#include "node/calendar/calendar.h"
#include "node/cases/cases.h"
#include "federation/sync/feed.h"
#include "node/catalogue/catalogue.h"
#include "node/credentials/credentials.h"
#include "node/forwarding/forwarding.h"
#include "node/materials/fetch.h"
#include "node/materials/materials.h"
#include "node/lookup/lookup.h"
#include "node/supervision/supervision.h"

namespace tongban {

inline constexpr const char* kSoftwareVersion = "0.1.0";

struct NodeOptions {
  Identity identity;
  std::string data_dir;                       // holds node.db (created if missing)
  Synchronous synchronous = Synchronous::kFull;
  SyncLimits limits;
  // SignedKeyRevocation documents to enforce from the start (a lost laptop's key). Each is
  // verified against the root; an invalid one stops the node with the reason.
  std::vector<Bytes> revocations;
  // Working days for deadlines (data/calendar-2026.json and later years).
  WorkingCalendar calendar;
  // City only: the catalogue file to publish at start when its content changed.
  std::string catalogue_file;
  // How often a node asks its parent for a newer catalogue (also right after start).
  DurationMs catalogue_poll_ms = 60 * 1000;
  CaseSettings cases;
  // Supervision figures: snapshot interval, keepalive, staleness (docs/supervision.md).
  SupervisionSettings supervision;
  // The feed of status records and key revocations pulled from the parent.
  FeedSettings feed;
  CredentialSettings credentials;
  // Lookups across levels: cache size and lifetime, time budgets (node/lookup/lookup.h).
  LookupSettings lookups;
  // Material files on demand: timeouts, deadline, chunk size (node/materials/fetch.h).
  MaterialFetchSettings material_fetch;
  // The children this node expects (from the topology). Until one has sent a heartbeat, this
  // node's subtree completeness watermark stays at 0 (whatever that child recorded is unknown);
  // without the list a child is counted only from its first message (docs/protocol.md
  // "Completeness watermark").
  std::vector<DivisionCode> expected_children;
};

// The seams the node runs on: real ones in the daemon, virtual ones in the simulator.
struct NodeEnvironment {
  Clock* clock = nullptr;
  Transport* transport = nullptr;
  Random* random = nullptr;
  SyncObserver* observer = nullptr;           // optional
};

class Node {
 public:
  // Opens (or creates) the store, checks the identity against the root, subscribes, enqueues
  // the Join on first start and begins heartbeats and shipping.
  static Result<std::unique_ptr<Node>> open(NodeOptions options, NodeEnvironment env);
  ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  // Unsubscribes and cancels every timer; safe to call twice. The store stays consistent at
  // any point (every change is one transaction), so a crash instead of stop() loses nothing
  // committed.
  void stop();

  const Identity& identity() const;
  Result<NodeStatusMsg> status();
  Result<uint64_t> outboxDepth();
  // The parent has acknowledged our Join (always true for the city).
  Result<bool> joined();
  Database& database();
  // The uplink's counters and link state; nullopt for the city (it has no parent).
  std::optional<LinkState> uplinkState() const;

  // The service hall on this node.
  CatalogueStore& catalogue();
  CaseService& cases();
  MaterialStore& materials();
  // Credentials (证照), identity records and their status; the feed that brings status records
  // and key revocations down from the parent (feedState().fresh_as_of_ms: how fresh they are).
  CredentialService& credentials();
  FeedState feedState() const;
  // Forwarded cases: the audit trail of what passed through this node (cases() holds the cases).
  ForwardingService& forwarding();
  // Material files from the node that stores them (own, cached or fetched; node/materials/fetch.h).
  MaterialFetcher& materialFetcher();
  // Supervision (电子监察): figures, roll-up, warnings and scores of this node's subtree.
  SupervisionService& supervision();
  // Lookups (查询核验): ask this node, and through it its ancestors, about a holder, a material
  // or a credential (node/lookup/lookup.h).
  LookupService& lookups();
  // The subtree completeness watermark now: every durable record created in this node's subtree
  // before `as_of_ms` has been applied here (Downlink::completeness).
  Result<Downlink::Completeness> completeness();
  Clock& clock();
  // How many case events / material records of its subtree this node has received.
  Result<uint64_t> subtreeEventCount();

  struct Impl;
 private:
  explicit Node(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tongban
