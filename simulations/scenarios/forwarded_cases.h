// Internal to simulations/scenarios: forwarded cases after healing — the drain phase and the
// forwarding invariant (issue #5).
#pragma once

#include "simulations/scenarios/scenario_state.h"

namespace tongban::sim::scenario_internal {

// The drain phase, after healing: staff at each decider work every forwarded case they hold to
// its conclusion through CaseService, as the workload does (resume a supplement, undertake,
// review, approve or deny, conclude); a case still on its way up is worked once it arrives.
// Ends when every case an origin forwarded is held and concluded at its decider, or at
// `deadline` (the convergence check then reports what is missing).
// Its choices come from a generator of its own, seeded from the run's seed.
void drainForwardedCases(ScenarioState& scenario, TimeMs deadline);

// The invariant (tree_scenario.h), after the drain: every case an origin forwarded is held by
// exactly one node, its ancestor at the case's decide level; it is concluded there, decided
// exactly once (one conclude step, at most one approve or deny); the origin shows the same
// state, deadline and conclusion time and the decider's full step list (index, step, time,
// actor); no node holds a case no origin forwarded, and none was returned. A run whose tree
// has villages and a workload must have forwarded some. Quiet unless `report`.
bool forwardingConsistent(ScenarioState& scenario, bool report);

}  // namespace tongban::sim::scenario_internal
