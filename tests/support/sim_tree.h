// A small division tree of real nodes in one simulated world, for tests of what travels
// between levels: city → district → town → two villages, real identities, real nodes on SQLite
// files in a temp dir. A test starts the nodes it needs; configure() adds options.
#pragma once

#include <map>
#include <memory>
#include <set>

#include <gtest/gtest.h>

#include "federation/trust/certificate.h"
#include "node/app/node.h"
#include "simulations/world/sim_world.h"
#include "tests/support/temp_dir.h"

namespace tongban::testing {

constexpr TimeMs kStart = 1795395600000LL;  // 2026-11-23 09:00 CST

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

// A chain city → district → town → village (+ a second village), real identities, real nodes
// on SQLite files in a temp dir, in one simulated world.
class SimTree : public ::testing::Test {
 protected:
  // Extra options for every node a test starts (calendar, catalogue...).
  virtual void configure(NodeOptions&) {}

  void SetUp() override {
    const char* codes[] = {"440600000000", "440604000000", "440604001000", "440604001001", "440604001002"};
    for (uint8_t i = 0; i < 5; ++i) {
      std::array<uint8_t, 32> seed{};
      seed.fill(static_cast<uint8_t>(i + 1));
      auto code = DivisionCode::parse(codes[i]).value();
      Result<Identity> id = i == 0 ? createRootIdentity(code, "city", KeyPair::fromSeed(seed), kStart - 1000, kStart + 1000LL * 3600 * 24 * 365)
                                   : issueChildIdentity(identities_[code.parent()->str()], code, codes[i],
                                                        KeyPair::fromSeed(seed), i, kStart - 1000,
                                                        kStart + 1000LL * 3600 * 24 * 365);
      ASSERT_TRUE(id.isOk()) << id.status().toString();
      identities_[codes[i]] = *id;
      endpoints_[codes[i]] = world_.addEndpoint(code, codes[i]);
      randoms_[codes[i]] = std::make_unique<Random>(i + 100);
    }
  }

  void start(const std::string& code) {
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
    int ep = endpoints_[code];
    auto node = Node::open(o, NodeEnvironment{&world_.clock(ep), &world_.transport(ep), randoms_[code].get(), &observer_});
    ASSERT_TRUE(node.isOk()) << node.status().toString();
    nodes_[code] = std::move(node).value();
  }

  void crash(const std::string& code) {
    world_.crash(endpoints_[code]);
    nodes_[code].reset();
  }

  void restart(const std::string& code) {
    world_.restart(endpoints_[code]);
    start(code);
  }

  void runFor(DurationMs ms) { ASSERT_TRUE(world_.runUntil(world_.now() + ms).isOk()); }

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

  TempDir dir_;
  sim::SimWorld world_{7, kStart};
  CountingObserver observer_;
  std::map<std::string, Identity> identities_;
  std::map<std::string, int> endpoints_;
  std::map<std::string, std::unique_ptr<Random>> randoms_;
  std::map<std::string, std::unique_ptr<Node>> nodes_;
  std::map<std::string, std::vector<Bytes>> revocations_;  // per node, enforced from its start
};

}  // namespace tongban::testing
