// Internal to simulations/scenarios: the supervision roll-up invariants.
#pragma once

#include "simulations/scenarios/scenario_state.h"

namespace tongban::sim::scenario_internal {

// The roll-up invariants (tree_scenario.h): no node has unsent supervision days; every node's
// subtree totals equal the sum of the own figures of every node in its subtree; every node's
// per-child breakdown equals that child's own answer; every ancestor holds the origin's latest
// snapshot version of each (origin, day). Quiet unless `report`.
bool rollupConsistent(ScenarioState& scenario, bool report);

}  // namespace tongban::sim::scenario_internal
