// Internal to simulations/scenarios: the service halls' workload and its convergence check.
#pragma once

#include "simulations/scenarios/scenario_state.h"

namespace tongban::sim::scenario_internal {

// The hall's daily work, as world events until `until`: every workload interval an application
// at a random hall and a step on a random open case (or citizen feedback on a concluded one),
// and once, a new catalogue version from the city. Draws from the world's random generator.
void scheduleHallWorkload(ScenarioState& scenario, TimeMs until);

// Every node holds exactly the case events its strict descendants recorded (drill-down
// consistency), and every node holds the city's catalogue version. Quiet unless `report`.
bool hallConverged(ScenarioState& scenario, bool report);

}  // namespace tongban::sim::scenario_internal
