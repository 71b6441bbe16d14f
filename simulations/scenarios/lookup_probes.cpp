#include "simulations/scenarios/lookup_probes.h"

namespace tongban::sim::scenario_internal {

namespace {

constexpr DurationMs kLookupBudgetMs = 3000;

// How many records matching `q` `node` has: "created" there before `before` (by the record's
// own time: a material's verification, a credential's issue, an identity's registration), or
// "held" (received or created there) before `before`.
uint64_t matchingRecords(Node& node, const LookupQuery& q, const std::string& how, TimeMs before) {
  const bool created = how == "created";
  std::vector<std::string> sql;
  if (q.question != LookupQuestion::kCredential) {
    const std::string column = q.question == LookupQuestion::kHolder ? "holder" : "hash";
    sql.push_back("SELECT COUNT(*) FROM materials WHERE " + column + " = ?1 AND verified_at_ms < ?2");
    if (!created) sql.push_back("SELECT COUNT(*) FROM subtree_materials WHERE " + column + " = ?1 AND received_ms < ?2");
  }
  if (q.question != LookupQuestion::kMaterial) {
    const std::string column = q.question == LookupQuestion::kHolder ? "holder_id" : "number";
    sql.push_back("SELECT COUNT(*) FROM credentials WHERE " + column + " = ?1 AND " +
                  (created ? "issued_at_ms" : "received_ms") + " < ?2");
  }
  if (q.question == LookupQuestion::kHolder) {
    sql.push_back(std::string("SELECT COUNT(*) FROM identity_records WHERE id_number = ?1 AND ") +
                  (created ? "registered_at_ms" : "received_ms") + " < ?2");
  }
  uint64_t n = 0;
  for (const auto& text : sql) {
    auto stmt = node.database().prepare(text);
    if (!stmt) continue;
    stmt->bind(1, q.key).bind(2, before);
    auto row = stmt->step();
    if (row && *row) n += static_cast<uint64_t>(stmt->columnInt64(0));
  }
  return n;
}

}  // namespace

LookupProbes::LookupProbes(ScenarioState& scenario, const std::vector<Bytes>& thief_documents)
    : scenario_(scenario),
      thief_documents_(thief_documents),
      lookup_random_(scenario.options.seed ^ 0x6c6f6f6b7570ULL) {}

void LookupProbes::schedule(TimeMs until) {
  for (TimeMs t = kSimulationStartMs + 3 * kMinute + 17'000; t < until; t += 3 * kMinute) {
    scenario_.world.at(t, [this] { askSomeLookup(/*after_heal=*/false); });
  }
}

// One existing record's key at `node`, chosen at random: a holder or a hash of its own
// materials, or the number of a credential it holds. Empty if it has none.
std::string LookupProbes::someKey(Node& node, LookupQuestion question) {
  const char* table = question == LookupQuestion::kCredential ? "credentials" : "materials";
  const char* column = question == LookupQuestion::kCredential ? "number"
                       : question == LookupQuestion::kMaterial ? "hash"
                                                               : "holder";
  auto count = countRows(node, std::string("SELECT COUNT(*) FROM ") + table);
  if (!count || *count == 0) return {};
  auto stmt = node.database().prepare(std::string("SELECT ") + column + " FROM " + table + " ORDER BY " + column +
                                      " LIMIT 1 OFFSET ?1");
  if (!stmt) return {};
  stmt->bind(1, static_cast<int64_t>(lookup_random_.below(*count)));
  auto row = stmt->step();
  return row && *row ? stmt->columnText(0) : std::string();
}

void LookupProbes::askSomeLookup(bool after_heal) {
  std::vector<SimNode*> live = scenario_.liveNodes();
  if (live.empty()) return;
  SimNode& holder_node = *live[lookup_random_.below(live.size())];
  const auto question = static_cast<LookupQuestion>(1 + lookup_random_.below(3));
  std::string key = someKey(*holder_node.node, question);
  if (key.empty()) return;
  SimNode& asker = *live[lookup_random_.below(live.size())];
  auto query = makeLookupQuery(question, key);
  if (!query) {
    scenario_.checker.violation("lookup of a stored record is refused: " + query.status().toString());
    return;
  }
  auto probe = std::make_shared<LookupProbe>();
  probe->query = *query;
  probe->stored_at = holder_node.info.code.str();
  probe->asked_at = asker.info.code.str();
  probe->asked_ms = scenario_.world.now();
  probe->held_by_asker = matchingRecords(*asker.node, *query, "held", scenario_.world.now() + 1) > 0;
  lookup_probes_.push_back(probe);
  scenario_.world.trace("lookup at " + probe->asked_at + " for a " + lookupQuestionName(question) + " of " +
                        probe->stored_at);
  asker.node->lookups().lookup(*query, kLookupBudgetMs, [this, probe, after_heal](LookupResult r) {
    scenario_.world.trace("lookup at " + probe->asked_at + ": " + lookupOutcomeName(r.outcome) + " by " +
                          r.answered_by);
    checkLookup(*probe, r, after_heal);
    probe->result = std::move(r);
  });
  // None hangs: unless its node crashed, the answer is in by the end of the budget.
  Node* asked_node = asker.node.get();
  SimNode* asker_ptr = &asker;
  scenario_.world.at(scenario_.world.now() + kLookupBudgetMs + 1, [this, probe, asked_node, asker_ptr] {
    if (!probe->result && asker_ptr->node.get() == asked_node) {
      scenario_.checker.violation("lookup at " + probe->asked_at + " for a " +
                                  lookupQuestionName(probe->query.question) + " of " + probe->stored_at +
                                  " had no answer " + std::to_string(kLookupBudgetMs) + " ms after it was asked");
    }
  });
}

// Is `r` (from a "found" answer) a record that exists as described at the node that stored or
// issued it? Unknown (true) while that node is down. A document the thief signed with the lost
// key exists only where the thief handed it in: until a node holds the key's revocation it is
// as genuine to it as any other (the invariant that it goes once the revocation arrives is
// checked after healing), so finding it is a true answer.
bool LookupProbes::recordIsTrue(const LookupRecord& r, std::string* why) {
  if (r.type == "credential") {
    for (const auto& d : thief_documents_) {
      if (d == r.payload) return true;
    }
  }
  SimNode* origin = nullptr;
  for (auto& n : scenario_.nodes) if (n->info.code.str() == r.issued_at) origin = n.get();
  if (!origin) {
    *why = "it names " + r.issued_at + ", which runs no node";
    return false;
  }
  if (!origin->node) return true;
  std::string sql;
  if (r.type == "material") {
    sql = "SELECT COUNT(*) FROM materials WHERE hash = ?1 AND holder = ?2 AND kind = ?3";
  } else if (r.type == "credential") {
    sql = "SELECT COUNT(*) FROM credentials WHERE number = ?1 AND holder_id = ?2 AND kind = ?3";
  } else {
    sql = "SELECT COUNT(*) FROM identity_records WHERE id_number = ?1 AND id_number = ?2 AND kind = ?3";
  }
  auto stmt = origin->node->database().prepare(sql);
  if (!stmt) return true;
  stmt->bind(1, r.id).bind(2, r.holder).bind(3, r.kind);
  auto row = stmt->step();
  if (row && *row && stmt->columnInt64(0) > 0) return true;
  *why = r.issued_at + " has no " + r.type + " " + r.id + " of " + r.holder + " (" + r.kind + ")";
  return false;
}

void LookupProbes::checkLookup(const LookupProbe& p, const LookupResult& r, bool after_heal) {
  const std::string what = "lookup at " + p.asked_at + " for " + lookupQuestionName(p.query.question) + " " +
                           p.query.key + " (stored at " + p.stored_at + "): ";
  if (scenario_.world.now() - p.asked_ms > kLookupBudgetMs) {
    scenario_.checker.violation(what + "answered after " + std::to_string(scenario_.world.now() - p.asked_ms) +
                                " ms, over its budget");
  }
  if (r.outcome == LookupOutcome::kNotFound) {
    SimNode& city = *scenario_.nodes.front();
    if (city.node && matchingRecords(*city.node, p.query, "held", r.answered_at_ms) > 0) {
      scenario_.checker.violation(what + "\"not found\" from " + r.answered_by + ", which held the record");
    }
    // Exact: the answer says every record created before W had reached the city.
    for (auto& n : scenario_.nodes) {
      if (!n->node || matchingRecords(*n->node, p.query, "created", r.complete_as_of_ms) == 0) continue;
      scenario_.checker.violation(what + "\"not found\", complete as of " + std::to_string(r.complete_as_of_ms) +
                                  ", but " + n->info.code.str() + " created a matching record before then");
    }
  }
  if (r.outcome == LookupOutcome::kFound) {
    for (const auto& rec : r.records) {
      std::string why;
      const bool matches = p.query.question == LookupQuestion::kHolder ? rec.holder == p.query.key : rec.id == p.query.key;
      if (!matches) why = "a record for another question: " + rec.type + " " + rec.id + " of " + rec.holder;
      if (!matches || !recordIsTrue(rec, &why)) scenario_.checker.violation(what + "\"found\" answer is false: " + why);
    }
  }
  if (p.held_by_asker && r.outcome != LookupOutcome::kFound) {
    scenario_.checker.violation(what + lookupOutcomeName(r.outcome) + " although the asking node holds the record (" +
                                r.reason + ")");
  }
  if (after_heal && r.outcome != LookupOutcome::kFound) {
    scenario_.checker.violation(what + lookupOutcomeName(r.outcome) + " after healing (" + r.reason + r.note + ")");
  }
}

void LookupProbes::checkAfterHeal() {
  const size_t before = lookup_probes_.size();
  for (int i = 0; i < 10; ++i) askSomeLookup(/*after_heal=*/true);
  if (auto st = scenario_.world.runUntil(scenario_.world.now() + kLookupBudgetMs + 1000); !st.isOk()) {
    scenario_.checker.violation("simulation stopped: " + st.toString());
  }
  for (size_t i = before; i < lookup_probes_.size(); ++i) {
    if (!lookup_probes_[i]->result) {
      scenario_.checker.violation("lookup at " + lookup_probes_[i]->asked_at + " after healing never answered");
    }
  }
}

}  // namespace tongban::sim::scenario_internal
