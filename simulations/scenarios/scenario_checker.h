// Internal to simulations/scenarios: the message checker. It records what nodes enqueue and
// apply (it is every node's SyncObserver) and checks safety as it happens; at the end it tells
// which enqueued messages were never applied (liveness).
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "federation/sync/sync_types.h"
#include "simulations/scenarios/tree_scenario.h"
#include "simulations/world/sim_world.h"

namespace tongban::sim::scenario_internal {

class Checker : public SyncObserver {
 public:
  Checker(SimWorld& world, TreeScenarioResult& result) : world_(world), result_(result) {}

  void onEnqueued(const DivisionCode& origin, uint64_t seq, MessageKind kind) override;
  void onApplied(const DivisionCode& receiver, const DivisionCode& origin, uint64_t seq, MessageKind kind) override;
  void onAcknowledged(const DivisionCode& origin, uint64_t seq, const std::string& outcome) override;

  // Records a broken invariant, with the virtual time.
  void violation(const std::string& what);

  // Liveness: every enqueued message applied exactly once.
  std::vector<std::string> unapplied() const;

  uint64_t enqueuedCount() const { return enqueued_.size(); }
  uint64_t appliedCount() const { return applied_.size(); }

 private:
  SimWorld& world_;
  TreeScenarioResult& result_;
  std::set<std::pair<std::string, uint64_t>> enqueued_;
  std::map<std::pair<std::string, uint64_t>, int> applied_;
  std::set<std::pair<std::string, uint64_t>> refused_;  // acknowledged REVOKED (see onAcknowledged)
};

}  // namespace tongban::sim::scenario_internal
