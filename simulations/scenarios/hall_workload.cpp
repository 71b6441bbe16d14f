#include "simulations/scenarios/hall_workload.h"

#include <map>
#include <string>
#include <vector>

namespace tongban::sim::scenario_internal {

namespace {

void submitCase(ScenarioState& scenario, SimNode& n, uint64_t pick) {
  if (!n.node) return;  // crashed: the hall is closed
  const Catalogue* catalogue = n.node->catalogue().current();
  if (!catalogue) return;  // not received yet
  std::vector<const CatalogueItem*> acceptable;
  for (const auto& item : catalogue->items) {
    if (item.acceptableAt(n.info.code.level())) acceptable.push_back(&item);
  }
  if (acceptable.empty()) return;
  const CatalogueItem& item = *acceptable[pick % acceptable.size()];
  IntakeRequest request{item.code, residentId(pick >> 8), "申请人", "13800000000", {}, "", {}};
  const TimeMs now = scenario.world.now();
  for (const auto& kind : item.materials) {
    // Now and then a material is missing: the application is refused with its notice.
    if ((pick >> 20) % 7 == 0) continue;
    auto record = n.node->materials().put(toBytes(kind + " of " + request.applicant_id), kind,
                                          request.applicant_id, "image/jpeg", "clerk", now);
    if (!record) {
      scenario.checker.violation("material upload at " + n.info.code.str() + " failed: " + record.status().toString());
      return;
    }
    request.materials.push_back({kind, record->hash});
  }
  auto c = n.node->cases().submit(request, scenario.everyone, now);
  if (!c) {
    scenario.checker.violation("intake at " + n.info.code.str() + " failed: " + c.status().toString());
    return;
  }
  ++scenario.result.cases_submitted;
  scenario.world.trace("case " + c->number + " " + caseStateName(c->state));
}

// Citizens evaluate concluded cases and now and then complain (supervision counts both).
void citizenFeedback(ScenarioState& scenario, SimNode& n, uint64_t which) {
  auto concluded = n.node->cases().list("concluded", "", 50, scenario.world.now());
  if (!concluded || concluded->empty()) return;
  const CaseRecord& c = (*concluded)[(which >> 32) % concluded->size()];
  if ((which >> 40) % 3 == 0) {
    auto st = n.node->cases().complain(c.number, "", "slow service", scenario.world.now());
    if (!st.isOk()) scenario.checker.violation("complaint at " + n.info.code.str() + " failed: " + st.toString());
    return;
  }
  if (!c.evaluation.empty()) return;
  static const char* kGrades[] = {"satisfied", "satisfied", "basically_satisfied", "unsatisfied"};
  auto done = n.node->cases().evaluate(c.number, kGrades[(which >> 44) % 4], scenario.world.now());
  if (!done) scenario.checker.violation("evaluation at " + n.info.code.str() + " failed: " + done.status().toString());
}

// Returns false if the hall is closed or holds nothing it can move.
bool advanceCase(ScenarioState& scenario, SimNode& n, uint64_t which) {
  if (!n.node) return false;
  if ((which >> 24) % 4 == 0) {
    citizenFeedback(scenario, n, which);
    return true;
  }
  auto open = n.node->cases().list("", "", 50, scenario.world.now());
  if (!open) return false;
  std::vector<const CaseRecord*> movable;
  for (const auto& c : *open) {
    if (c.state == CaseState::kRefused || c.state == CaseState::kConcluded) continue;
    if (c.forwarded) continue;  // worked where it is decided; this hall only mirrors it
    auto decide = parseLevel(c.decided_at);
    const bool decidable_here = decide && n.info.code.level() <= *decide;
    if (decidable_here || c.state == CaseState::kSupplement) movable.push_back(&c);
  }
  if (movable.empty()) return false;
  const CaseRecord& c = *movable[which % movable.size()];
  StepRequest step;
  switch (c.state) {
    case CaseState::kAccepted: step.step = (which >> 12) % 5 == 0 ? "supplement" : "undertake"; break;
    case CaseState::kSupplement: step.step = "resume"; break;
    case CaseState::kUndertaken: step.step = "review"; break;
    case CaseState::kReviewed: step.step = (which >> 12) % 6 == 0 ? "deny" : "approve"; break;
    default: step.step = "conclude"; break;
  }
  if (step.step == "review" && c.kind == ItemKind::kJoint) {
    const CatalogueItem* item = n.node->catalogue().current()->find(c.item_code);
    if (!item) return false;
    for (const auto& dep : item->joint_departments) {
      bool done = false;
      for (const auto& r : c.reviews) done = done || r.first == dep;
      if (!done) {
        step.department = dep;
        break;
      }
    }
    step.decision = "approve";
  }
  auto moved = n.node->cases().step(c.number, step, scenario.everyone, scenario.world.now());
  if (moved) {
    ++scenario.result.case_steps_taken;
    scenario.world.trace("step " + c.number + " " + step.step);
  } else if (moved.status().code() != ErrorCode::kFailedPrecondition) {
    // FailedPrecondition can still happen (a joint review by a department that already
    // reviewed); anything else is a bug.
    scenario.checker.violation("step " + step.step + " on " + c.number + " failed: " + moved.status().toString());
  }
  return true;
}

// Staff work where there is work: from a random hall on, the first one holding a case it can
// move (most villages only ever hold concluded immediate cases or cases waiting to go up).
void advanceSomeCase(ScenarioState& scenario, size_t start, uint64_t which) {
  for (size_t i = 0; i < scenario.nodes.size(); ++i) {
    if (advanceCase(scenario, *scenario.nodes[(start + i) % scenario.nodes.size()], which)) return;
  }
}

void publishNewCatalogue(ScenarioState& scenario) {
  SimNode& city = *scenario.nodes.front();
  if (!city.node || !city.node->catalogue().current()) return;
  Catalogue next = *city.node->catalogue().current();
  // The city shortens a committed time limit: 承诺时限 tightened by one working day.
  for (auto& item : next.items) {
    if (item.kind == ItemKind::kCommitted && item.committed_days > 1) {
      --item.committed_days;
      break;
    }
  }
  auto version = city.node->catalogue().publish(city.identity, next, scenario.world.now());
  if (!version) scenario.checker.violation("publishing a catalogue failed: " + version.status().toString());
  scenario.world.trace("catalogue published");
}

}  // namespace

void scheduleHallWorkload(ScenarioState& scenario, TimeMs until) {
  Random& r = scenario.world.random();
  const DurationMs interval = scenario.options.workload_interval_ms;
  for (TimeMs t = kSimulationStartMs + interval; t < until; t += interval) {
    const size_t at = r.below(scenario.nodes.size());
    const uint64_t pick = r.next();
    scenario.world.at(t, [&scenario, at, pick] { submitCase(scenario, *scenario.nodes[at], pick); });
    const size_t mover = r.below(scenario.nodes.size());
    const uint64_t which = r.next();
    scenario.world.at(t + interval / 2, [&scenario, mover, which] { advanceSomeCase(scenario, mover, which); });
  }
  scenario.world.at(kSimulationStartMs + (until - kSimulationStartMs) / 2,
                    [&scenario] { publishNewCatalogue(scenario); });
}

bool hallConverged(ScenarioState& scenario, bool report) {
  if (scenario.options.catalogue_file.empty()) return true;
  bool ok = true;
  const uint64_t latest = scenario.nodes.front()->node->catalogue().version();
  std::map<std::string, uint64_t> own_steps;
  for (auto& n : scenario.nodes) {
    if (n->node->catalogue().version() != latest) {
      ok = false;
      if (report) {
        scenario.checker.violation(n->info.code.str() + " holds catalogue version " +
                                   std::to_string(n->node->catalogue().version()) + ", the city " +
                                   std::to_string(latest));
      }
    }
    auto steps = countRows(*n->node, "SELECT COUNT(*) FROM case_steps");
    own_steps[n->info.code.str()] = steps ? *steps : 0;
  }
  for (auto& n : scenario.nodes) {
    uint64_t expected = 0;
    for (const auto& [code, count] : own_steps) {
      if (n->info.code.isAncestorOf(DivisionCode::parse(code).value())) expected += count;
    }
    auto held = n->node->subtreeEventCount();
    if (!held || *held != expected) {
      ok = false;
      if (report) {
        scenario.checker.violation(n->info.code.str() + " holds " + std::to_string(held ? *held : 0) +
                                   " case events of its subtree; its descendants recorded " + std::to_string(expected));
      }
    }
  }
  if (ok) {
    scenario.result.catalogue_version = latest;
    auto at_city = scenario.nodes.front()->node->subtreeEventCount();
    scenario.result.case_events_at_city = at_city ? *at_city : 0;
  }
  return ok;
}

}  // namespace tongban::sim::scenario_internal
