// Internal to simulations/scenarios (not part of any contract; the contract is tree_scenario.h):
// what every part of the tree scenario shares — the options, the simulated world, the nodes, the
// result and the message checker — and the helpers more than one part uses.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "node/app/node.h"
#include "simulations/scenarios/scenario_checker.h"
#include "simulations/scenarios/tree_scenario.h"
#include "simulations/world/sim_world.h"

namespace tongban::sim::scenario_internal {

// 2026-11-23 09:00 China Standard Time: the simulated network opens for business.
constexpr TimeMs kSimulationStartMs = 1795395600000LL;
constexpr DurationMs kMinute = 60 * 1000;

struct SimNode {
  DivisionInfo info;
  Identity identity;
  int endpoint = -1;
  std::unique_ptr<Random> random;
  std::unique_ptr<Node> node;
  std::string data_dir;
  std::map<std::string, Figures> children_answer;  // roll-up check scratch: child → its figures here
};

struct ScenarioState {
  explicit ScenarioState(const TreeScenarioOptions& options);

  TreeScenarioOptions options;
  SimWorld world;
  TreeScenarioResult result;
  Checker checker;
  std::vector<std::unique_ptr<SimNode>> nodes;  // in the topology's order: the city first
  WorkingCalendar calendar;
  // The simulated staff: one person holding every role, so only the rules decide.
  Principal everyone{"staff", "simulated staff", {Role::kClerk, Role::kUndertaker, Role::kReviewer, Role::kApprover}};

  std::vector<SimNode*> liveNodes();                // the nodes whose process runs
  SimNode* nodeOf(const DivisionCode& code);        // nullptr if no node has that code
};

// A valid resident ID number (GB 11643) for simulated applicant `n`: the check character is
// computed, so the service hall's validation passes.
std::string residentId(uint64_t n);

// A key seed drawn from `random` (32 bytes from four draws).
std::array<uint8_t, 32> keySeed(Random& random);

// The first column of the first row of `sql` at `node` (0 if there is no row).
Result<uint64_t> countRows(Node& node, const std::string& sql);

}  // namespace tongban::sim::scenario_internal
