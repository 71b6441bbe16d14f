#include "simulations/scenarios/supervision_rollup.h"

#include <map>
#include <string>

namespace tongban::sim::scenario_internal {

bool rollupConsistent(ScenarioState& scenario, bool report) {
  const CivilDate from{2000, 1, 1}, to{2099, 12, 31};
  bool ok = true;
  auto fail = [&](const std::string& what) {
    ok = false;
    if (report) scenario.checker.violation(what);
  };
  // Truth: each node's own figures from its own tables, and its own snapshot versions.
  std::map<std::string, Figures> own;
  std::map<std::string, std::map<std::string, uint64_t>> own_versions;  // origin → day → version
  for (auto& n : scenario.nodes) {
    const std::string code = n->info.code.str();
    auto dirty = n->node->supervision().dirtyDays();
    if (!dirty || *dirty != 0) {
      fail(code + " has " + std::to_string(dirty ? *dirty : 0) + " supervision days not yet sent");
      if (!report) return false;
    }
    auto totals = n->node->supervision().ownTotals(from, to);
    if (!totals) return false;
    own[code] = *totals;
    auto stmt = n->node->database().prepare("SELECT day, version FROM supervision_snapshots WHERE origin = ?1");
    if (!stmt) return false;
    stmt->bind(1, code);
    while (true) {
      auto row = stmt->step();
      if (!row || !*row) break;
      own_versions[code][stmt->columnText(0)] = static_cast<uint64_t>(stmt->columnInt64(1));
    }
  }
  std::map<std::string, Figures> subtree_answer;
  for (auto& n : scenario.nodes) {
    const DivisionCode& self = n->info.code;
    auto summary = n->node->supervision().summary(self, from, to, scenario.world.now());
    if (!summary) {
      fail(self.str() + " cannot answer for its subtree: " + summary.status().toString());
      continue;
    }
    subtree_answer[self.str()] = summary->totals;
    Figures expected;
    for (const auto& [code, f] : own) {
      if (self.covers(DivisionCode::parse(code).value())) expected += f;
    }
    if (summary->totals != expected) {
      std::string diff;
      for (const auto& field : figureFields()) {
        if (summary->totals.*field.member != expected.*field.member) {
          diff += std::string(" ") + field.name + " " + std::to_string(summary->totals.*field.member) + " vs " +
                  std::to_string(expected.*field.member);
        }
      }
      fail(self.str() + "'s subtree totals differ from the sum of its nodes' own figures:" + diff);
      if (!report) return false;
    }
    // No (origin, day) held at another version than the origin's latest (none twice: the
    // table's key is (origin, day), and the totals above would show a stale or extra one).
    for (const auto& [origin, days] : own_versions) {
      if (!self.isAncestorOf(DivisionCode::parse(origin).value())) continue;
      for (const auto& [day, version] : days) {
        auto held = n->node->supervision().versionOf(origin, day);
        if (!held || *held != version) {
          fail(self.str() + " holds version " + std::to_string(held ? *held : 0) + " of " + origin + "/" + day +
               ", the origin is at " + std::to_string(version));
          if (!report) return false;
        }
      }
    }
    n->children_answer.clear();
    for (const auto& c : summary->children) n->children_answer[c.division] = c.totals;
  }
  // Drill-down: every node's per-child figures are that child's own answer for its subtree.
  for (auto& n : scenario.nodes) {
    for (const auto& [child, totals] : n->children_answer) {
      auto it = subtree_answer.find(child);
      if (it == subtree_answer.end() || it->second != totals) {
        fail(n->info.code.str() + "'s figures for child " + child + " differ from the child's own answer");
        if (!report) return false;
      }
    }
  }
  if (ok) {
    auto held = countRows(*scenario.nodes.front()->node, "SELECT COUNT(*) FROM supervision_snapshots");
    scenario.result.snapshots_at_city = held ? *held : 0;
  }
  return ok;
}

}  // namespace tongban::sim::scenario_internal
