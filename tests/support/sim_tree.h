// A small division tree of real nodes in one simulated world, for tests of what travels
// between levels: real identities, real nodes on SQLite files in a temp dir, a virtual clock and
// the simulated transport. By default city → district → town → two villages; a suite may pass
// its own SimTreeShape (names, more divisions, another world seed). A test starts the nodes it
// needs; configure() adds options to every node, start()'s `tweak` to one.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "federation/sync/wire.h"
#include "federation/trust/certificate.h"
#include "node/app/node.h"
#include "simulations/world/sim_world.h"
#include "tests/support/temp_dir.h"

namespace tongban::testing {

constexpr TimeMs kStart = 1795395600000LL;  // 2026-11-23 09:00 CST

// The divisions of SimTreeShape::chain(), by their place in it.
constexpr const char* kCity = "440600000000";
constexpr const char* kDistrict = "440604000000";
constexpr const char* kTown = "440604001000";
constexpr const char* kVillage = "440604001001";
constexpr const char* kSibling = "440604001002";  // the village's sibling under the same town

// What every node of the tree enqueued, applied and had acknowledged (SimTree hands it to each
// node it starts), keyed by origin division and sequence.
struct CountingObserver : SyncObserver {
  std::map<std::pair<std::string, uint64_t>, int> applied;
  std::set<std::pair<std::string, uint64_t>> enqueued;
  int duplicates = 0;
  void onEnqueued(const DivisionCode& o, uint64_t seq, MessageKind) override { enqueued.insert({o.str(), seq}); }
  void onApplied(const DivisionCode&, const DivisionCode& o, uint64_t seq, MessageKind) override {
    ++applied[{o.str(), seq}];
  }
  void onAcknowledged(const DivisionCode&, uint64_t, const std::string& outcome) override {
    if (outcome == "duplicate") ++duplicates;
  }
  int maxApplies() const {
    int m = 0;
    for (const auto& [k, v] : applied) m = std::max(m, v);
    return m;
  }
  // Every message enqueued by `origin` (all origins if empty) was applied.
  bool allApplied(const std::string& origin = "") const {
    for (const auto& k : enqueued) {
      if ((origin.empty() || k.first == origin) && !applied.count(k)) return false;
    }
    return true;
  }
};

// One division of the tree: its code and the name its certificate carries (what nodes show in
// routes, children lists and messages).
struct SimDivision {
  std::string code;
  std::string name;
};

// Which tree SimTree builds, in which world.
struct SimTreeShape {
  // Parents before children; the first is the root (the city). The i-th division gets the key
  // from 32 seed bytes all equal to i + 1, certificate serial i (the root: self-signed), and its
  // node the Random seeded i + 100, so the same shape always gives the same identities.
  std::vector<SimDivision> divisions;
  uint64_t world_seed = 7;

  // city → district → town → village + its sibling, each named by its code (the city "city").
  static SimTreeShape chain() {
    return {{{kCity, "city"}, {kDistrict, kDistrict}, {kTown, kTown}, {kVillage, kVillage}, {kSibling, kSibling}}};
  }
};

class SimTree : public ::testing::Test {
 protected:
  explicit SimTree(SimTreeShape shape = SimTreeShape::chain()) : shape_(std::move(shape)) {}

  // Extra options for every node a test starts (calendar, catalogue...).
  virtual void configure(NodeOptions&) {}

  // Every division of the shape gets its identity (valid from kStart - 1 s for a year) and an
  // endpoint on its bus; no node runs yet. kinds_ holds the federation's kinds.
  void SetUp() override {
    const TimeMs until = kStart + 1000LL * 3600 * 24 * 365;
    for (size_t i = 0; i < shape_.divisions.size(); ++i) {
      const SimDivision& d = shape_.divisions[i];
      std::array<uint8_t, 32> seed{};
      seed.fill(static_cast<uint8_t>(i + 1));
      const DivisionCode code = division(d.code);
      Result<Identity> id = Status(ErrorCode::kInvalidArgument, d.code + ": its parent is not earlier in the shape");
      if (i == 0) {
        id = createRootIdentity(code, d.name, KeyPair::fromSeed(seed), kStart - 1000, until);
      } else if (code.parent() && identities_.count(code.parent()->str())) {
        id = issueChildIdentity(identities_[code.parent()->str()], code, d.name, KeyPair::fromSeed(seed), i,
                                kStart - 1000, until);
      }
      ASSERT_TRUE(id.isOk()) << id.status().toString();
      identities_[d.code] = *id;
      endpoints_[d.code] = world_.addEndpoint(code, d.code);
      randoms_[d.code] = std::make_unique<Random>(i + 100);
    }
    registerFederationKinds(kinds_);
  }

  // Opens the node of `code` on its endpoint (files kept from an earlier run are reused), with
  // the tree's limits (5 s heartbeats, 1 s request timeout, retries 200 ms doubling to 10 s),
  // its revocations_, then configure(), then `tweak` (options for this start of this node only).
  void start(const std::string& code, const std::function<void(NodeOptions&)>& tweak = {}) {
    NodeOptions o;
    o.identity = identities_[code];
    o.data_dir = dir_.path() + "/" + code;
    o.synchronous = Synchronous::kOff;
    o.limits.heartbeat_interval_ms = 5000;
    o.limits.request_timeout_ms = 1000;
    o.limits.retry_initial_ms = 200;
    o.limits.retry_max_ms = 10000;
    o.revocations = revocations_[code];
    configure(o);
    if (tweak) tweak(o);
    int ep = endpoints_[code];
    auto node = Node::open(o, NodeEnvironment{&world_.clock(ep), &world_.transport(ep), randoms_[code].get(), &observer_});
    ASSERT_TRUE(node.isOk()) << node.status().toString();
    nodes_[code] = std::move(node).value();
  }

  // Every division's node, in the shape's order (parents first).
  void startEveryNode() {
    for (const auto& d : shape_.divisions) start(d.code);
  }

  // The endpoint goes dark (in-flight messages lost) and the node object is dropped; its files
  // stay for restart().
  void crash(const std::string& code) {
    world_.crash(endpoints_[code]);
    nodes_[code].reset();
  }

  // After crash(): the endpoint is reachable again and a fresh node opens over the same files.
  void restart(const std::string& code, const std::function<void(NodeOptions&)>& tweak = {}) {
    world_.restart(endpoints_[code]);
    start(code, tweak);
  }

  // The running node of `code`. One that is not running fails the test (an exception gtest
  // reports) instead of dereferencing null.
  Node& at(const std::string& code) {
    auto it = nodes_.find(code);
    if (it == nodes_.end() || !it->second) throw std::logic_error("no node is running at " + code);
    return *it->second;
  }

  // The parsed code; a malformed one fails the test (an exception gtest reports).
  static DivisionCode division(const std::string& code) {
    auto parsed = DivisionCode::parse(code);
    if (!parsed) throw std::invalid_argument("not a division code: " + code);
    return *parsed;
  }

  // Advances the virtual clock by `ms`, running every event due; a runaway loop fails the test.
  void runFor(DurationMs ms) { ASSERT_TRUE(world_.runUntil(world_.now() + ms).isOk()); }

  // Runs the world in `step_ms` steps until `done()` holds, checking before each step; false if
  // it still does not after `bound_ms` of virtual time.
  bool runUntil(const std::function<bool()>& done, DurationMs bound_ms, DurationMs step_ms = 100) {
    for (DurationMs waited = 0; !done(); waited += step_ms) {
      if (waited >= bound_ms) return false;
      runFor(step_ms);
    }
    return true;
  }

  // How many messages wait in the outbox of the running node `code`.
  uint64_t depth(const std::string& code) { return nodes_[code]->outboxDepth().value(); }

  // Heartbeats keep arriving, so an outbox is empty only between them: step until every
  // running node's outbox is empty at once, within a bound.
  bool runUntilDrained(DurationMs bound_ms, std::vector<std::string> codes) {
    for (DurationMs waited = 0; waited <= bound_ms; waited += 100) {
      bool empty = true;
      for (const auto& code : codes) {
        if (depth(code) != 0) empty = false;
      }
      if (empty) return true;
      runFor(100);
    }
    return false;
  }

  // Where an asynchronous answer lands. answerSlot() hands `ask` the callback to pass on; the
  // test fails if that callback runs inside `ask` or more than once (`what` names the call).
  template <class T>
  using Slot = std::shared_ptr<std::optional<T>>;
  template <class T, class Ask>
  static Slot<T> answerSlot(Ask&& ask, const std::string& what) {
    auto slot = std::make_shared<std::optional<T>>();
    ask([slot, what](T answer) {
      EXPECT_FALSE(slot->has_value()) << what << ": the callback ran twice";
      slot->emplace(std::move(answer));
    });
    EXPECT_FALSE(slot->has_value()) << what << ": the callback must not run inside the call";
    return slot;
  }

  // Whether the running node `code` lists the material `hash` among its subtree's records (the
  // record travelled up to it).
  bool holdsMaterialRecord(const std::string& code, const std::string& hash) {
    auto stmt = at(code).database().prepare("SELECT COUNT(*) FROM subtree_materials WHERE hash = ?1").value();
    stmt.bind(1, hash);
    return stmt.step().value() && stmt.columnInt64(0) > 0;
  }

  // An extra endpoint on `code`'s bus that no node uses (a client such as a CLI), made on first
  // use and the same one afterwards.
  int clientEndpoint(const std::string& code) {
    if (!clients_.count(code)) clients_[code] = world_.addEndpoint(division(code), "client-" + code);
    return clients_[code];
  }

  // A hand-made request from `endpoint` on `subject`; runs the world in 50 ms steps until the
  // reply (or the transport's error) arrives, at most 5 s of virtual time, else kInternal.
  Result<Bytes> rawRequest(int endpoint, const std::string& subject, const Bytes& bytes, DurationMs timeout_ms = 2000) {
    auto slot = std::make_shared<std::optional<Result<Bytes>>>();
    world_.transport(endpoint).request(subject, bytes, timeout_ms, [slot](Result<Bytes> r) { slot->emplace(std::move(r)); });
    if (!runUntil([&] { return slot->has_value(); }, 5000, 50)) {
      return Status(ErrorCode::kInternal, "the request never completed");
    }
    return std::move(**slot);
  }

  // An envelope sealed by `by` now (world time), as a node would seal it.
  Bytes sealNow(const Identity& by, MessageKind kind, const DivisionCode& target, const Bytes& payload, uint64_t nonce) {
    SealParams p;
    p.kind = kind;
    p.timestamp_ms = world_.now();
    p.target = target;
    p.payload = payload;
    p.nonce = nonce;
    return sealEnvelope(by, p);
  }

  // Opens envelopes as the tree's nodes do: rooted at the city's certificate, knowing kinds_
  // (a suite registers its own kinds there, before or after the first call).
  const Verifier& verifier() {
    if (!verifier_) {
      const Identity& root = identities_[shape_.divisions.front().code];
      verifier_.emplace(Verifier::create(root.root_certificate, &kinds_).value());
    }
    return *verifier_;
  }

  // Destroyed in reverse order: nodes_ before the world and observer they use, verifier_ before
  // kinds_.
  const SimTreeShape shape_;
  TempDir dir_;  // each node's files under <dir>/<code>, kept across crash() and restart()
  sim::SimWorld world_{shape_.world_seed, kStart};
  CountingObserver observer_;
  std::map<std::string, Identity> identities_;  // every division of the shape, from SetUp()
  std::map<std::string, int> endpoints_;  // each division's node endpoint
  std::map<std::string, std::unique_ptr<Random>> randoms_;
  std::map<std::string, std::unique_ptr<Node>> nodes_;  // null or absent: not running
  std::map<std::string, std::vector<Bytes>> revocations_;  // per node, enforced from its start
  KindRegistry kinds_;  // the federation's kinds, plus what the suite adds (see verifier())

 private:
  std::map<std::string, int> clients_;
  std::optional<Verifier> verifier_;
};

}  // namespace tongban::testing
