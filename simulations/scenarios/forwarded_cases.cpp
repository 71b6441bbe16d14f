#include "simulations/scenarios/forwarded_cases.h"

#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace tongban::sim::scenario_internal {

namespace {

constexpr DurationMs kDrainRoundMs = 5000;
constexpr int kMaxStepsPerCase = 12;  // undertake, a review per department, decide, conclude

// Works each open case `n` holds for an origin to its conclusion; returns how many stay open.
uint64_t workHeldCases(ScenarioState& scenario, Random& drain_random, SimNode& n) {
  auto stmt = n.node->database().prepare(
      "SELECT number FROM cases WHERE held_for != '' AND state NOT IN ('concluded', 'refused') ORDER BY number");
  if (!stmt) {
    scenario.checker.violation("drain: cannot list the held cases at " + n.info.code.str() + ": " +
                               stmt.status().toString());
    return 1;
  }
  std::vector<std::string> numbers;
  while (true) {
    auto row = stmt->step();
    if (!row) {
      scenario.checker.violation("drain: cannot list the held cases at " + n.info.code.str() + ": " +
                                 row.status().toString());
      return 1;
    }
    if (!*row) break;
    numbers.push_back(stmt->columnText(0));
  }
  uint64_t open = 0;
  for (const auto& number : numbers) {
    for (int i = 0; i < kMaxStepsPerCase; ++i) {
      auto c = n.node->cases().get(number);
      if (!c) {
        scenario.checker.violation("drain: case " + number + " at " + n.info.code.str() + ": " + c.status().toString());
        break;
      }
      if (c->state == CaseState::kConcluded) break;
      StepRequest step;
      switch (c->state) {
        case CaseState::kSupplement: step.step = "resume"; break;
        case CaseState::kAccepted: step.step = "undertake"; break;
        case CaseState::kUndertaken: step.step = "review"; break;
        case CaseState::kReviewed: step.step = drain_random.below(6) == 0 ? "deny" : "approve"; break;
        default: step.step = "conclude"; break;
      }
      if (step.step == "review" && c->kind == ItemKind::kJoint) {
        const CatalogueItem* item = n.node->catalogue().current()->find(c->item_code);
        for (const auto& dep : item ? item->joint_departments : std::vector<std::string>{}) {
          bool done = false;
          for (const auto& r : c->reviews) done = done || r.first == dep;
          if (!done) {
            step.department = dep;
            break;
          }
        }
        step.decision = "approve";
      }
      auto moved = n.node->cases().step(number, step, scenario.everyone, scenario.world.now());
      if (!moved) {
        scenario.checker.violation("drain: " + step.step + " on " + number + " at " + n.info.code.str() + " failed: " +
                                   moved.status().toString());
        break;
      }
      ++scenario.result.case_steps_taken;
      scenario.world.trace("drain " + number + " " + step.step);
    }
    auto after = n.node->cases().get(number);
    if (!after || after->state != CaseState::kConcluded) ++open;
  }
  return open;
}

}  // namespace

void drainForwardedCases(ScenarioState& scenario, TimeMs deadline) {
  Random drain_random(scenario.options.seed ^ 0x647261696eULL);
  scenario.world.trace("drain forwarded cases");
  while (scenario.world.now() < deadline) {
    uint64_t forwarded = 0, held = 0, open = 0;
    for (auto& n : scenario.nodes) {
      auto f = countRows(*n->node, "SELECT COUNT(*) FROM cases WHERE forwarded = 1");
      auto h = countRows(*n->node, "SELECT COUNT(*) FROM cases WHERE held_for != ''");
      if (!f || !h) {
        scenario.checker.violation("drain: cannot count the cases at " + n->info.code.str() + ": " +
                                   (f ? h.status() : f.status()).toString());
        return;
      }
      forwarded += *f;
      held += *h;
      open += workHeldCases(scenario, drain_random, *n);
    }
    if (open == 0 && held == forwarded) return;
    if (auto st = scenario.world.runUntil(scenario.world.now() + kDrainRoundMs); !st.isOk()) {
      scenario.checker.violation("simulation stopped: " + st.toString());
      return;
    }
  }
}

bool forwardingConsistent(ScenarioState& scenario, bool report) {
  struct StepRow {
    int64_t idx = 0;
    std::string step;
    TimeMs at_ms = 0;
    std::string actor;
    bool operator==(const StepRow&) const = default;
    std::string text() const { return "#" + std::to_string(idx) + " " + step + " at " + std::to_string(at_ms) + " by " + actor; }
  };
  struct Mirror {
    std::string holder, state, decided_at, returned_by;
    TimeMs deadline_ms = 0, concluded_ms = 0;
    std::vector<StepRow> steps;
  };
  bool ok = true;
  auto fail = [&](const std::string& what) {
    ok = false;
    if (report) scenario.checker.violation(what);
  };
  // A query that cannot run is a failed check, never an empty answer.
  auto query = [&](SimNode& n, const std::string& sql, const std::function<void(Statement&)>& row) {
    auto stmt = n.node->database().prepare(sql);
    if (!stmt) return fail("forwarding check at " + n.info.code.str() + ": " + stmt.status().toString());
    while (true) {
      auto more = stmt->step();
      if (!more) return fail("forwarding check at " + n.info.code.str() + ": " + more.status().toString());
      if (!*more) return;
      row(*stmt);
    }
  };
  auto stepRow = [](Statement& st) {
    return StepRow{st.columnInt64(1), st.columnText(2), st.columnInt64(3), st.columnText(4)};
  };
  std::map<std::string, std::vector<Mirror>> held;  // case number → every node holding it for an origin
  std::map<std::string, std::pair<std::string, Mirror>> forwarded;  // case number → origin, its mirror
  bool has_villages = false;
  for (auto& n : scenario.nodes) {
    const std::string code = n->info.code.str();
    has_villages = has_villages || n->info.code.level() == Level::kVillage;
    std::map<std::string, Mirror> here, mirrored;
    query(*n, "SELECT number, state, deadline_ms, concluded_ms, held_for, forwarded, decided_at, returned_by"
              " FROM cases WHERE held_for != '' OR forwarded = 1", [&](Statement& st) {
      Mirror m{code, st.columnText(1), st.columnText(6), st.columnText(7), st.columnInt64(2), st.columnInt64(3), {}};
      (st.columnInt64(5) != 0 ? mirrored : here)[st.columnText(0)] = m;
    });
    query(*n, "SELECT s.number, s.idx, s.step, s.at_ms, s.actor FROM case_steps s JOIN cases c ON c.number = s.number"
              " WHERE c.held_for != '' ORDER BY s.number, s.idx",
          [&](Statement& st) { here[st.columnText(0)].steps.push_back(stepRow(st)); });
    query(*n, "SELECT number, idx, step, at_ms, actor FROM case_decider_steps ORDER BY number, idx",
          [&](Statement& st) { mirrored[st.columnText(0)].steps.push_back(stepRow(st)); });
    for (auto& [number, m] : here) held[number].push_back(std::move(m));
    for (auto& [number, m] : mirrored) forwarded[number] = {code, std::move(m)};
  }
  uint64_t concluded = 0;
  for (const auto& [number, entry] : forwarded) {
    const auto& [origin_code, origin] = entry;
    const auto origin_div = DivisionCode::parse(origin_code).value();
    if (!origin.returned_by.empty()) {
      fail("forwarded case " + number + " of " + origin_code + " was returned by " + origin.returned_by);
    }
    auto it = held.find(number);
    if (it == held.end() || it->second.size() != 1) {
      fail("forwarded case " + number + " of " + origin_code + " is held by " +
           std::to_string(it == held.end() ? 0 : it->second.size()) + " nodes, not exactly one");
      continue;
    }
    const Mirror& decider = it->second.front();
    const auto holder = DivisionCode::parse(decider.holder).value();
    if (!holder.isAncestorOf(origin_div) || origin.decided_at != levelName(holder.level()) ||
        decider.decided_at != origin.decided_at) {
      fail("forwarded case " + number + " of " + origin_code + " (" + origin.decided_at + " level) is held by " +
           decider.holder + " (" + decider.decided_at + "), not by its " + origin.decided_at + "-level ancestor");
    }
    if (decider.state != "concluded") {
      fail("forwarded case " + number + " is " + decider.state + " at its decider " + decider.holder +
           " after the drain, not concluded");
    }
    int conclusions = 0, decisions = 0;
    for (const auto& step : decider.steps) {
      conclusions += step.step == "conclude";
      decisions += step.step == "approve" || step.step == "deny";
    }
    if (conclusions != 1 || decisions > 1) {
      fail("forwarded case " + number + " at " + decider.holder + " has " + std::to_string(conclusions) +
           " conclude and " + std::to_string(decisions) + " approve/deny steps; it is decided exactly once");
    }
    if (origin.state != decider.state || origin.deadline_ms != decider.deadline_ms ||
        origin.concluded_ms != decider.concluded_ms || origin.steps != decider.steps) {
      size_t first = 0;
      while (first < origin.steps.size() && first < decider.steps.size() && origin.steps[first] == decider.steps[first]) ++first;
      fail("forwarded case " + number + ": " + origin_code + " shows " + origin.state + ", deadline " +
           std::to_string(origin.deadline_ms) + ", concluded " + std::to_string(origin.concluded_ms) + ", " +
           std::to_string(origin.steps.size()) + " steps; " + decider.holder + " has " + decider.state + ", " +
           std::to_string(decider.deadline_ms) + ", " + std::to_string(decider.concluded_ms) + ", " +
           std::to_string(decider.steps.size()) + " steps (first difference at step " + std::to_string(first) + ": '" +
           (first < origin.steps.size() ? origin.steps[first].text() : "") + "' vs '" +
           (first < decider.steps.size() ? decider.steps[first].text() : "") + "')");
    }
    if (decider.state == "concluded") ++concluded;
  }
  for (const auto& [number, holders] : held) {
    if (!forwarded.count(number)) {
      fail(holders.front().holder + " holds case " + number + " for an origin that did not forward it");
    }
  }
  if (has_villages && scenario.options.workload_interval_ms > 0 && !scenario.options.catalogue_file.empty() &&
      forwarded.empty() && scenario.result.cases_submitted > 0) {
    fail("no case was forwarded in a tree with villages (" + std::to_string(scenario.result.cases_submitted) +
         " submitted): the forwarding invariant checked nothing");
  }
  if (ok) {
    scenario.result.forwarded_cases = forwarded.size();
    scenario.result.forwarded_concluded = concluded;
  }
  return ok;
}

}  // namespace tongban::sim::scenario_internal
