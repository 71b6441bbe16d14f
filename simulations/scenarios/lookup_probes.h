// Internal to simulations/scenarios: lookups (issue #5), the probes and their invariants.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "simulations/scenarios/scenario_state.h"

namespace tongban::sim::scenario_internal {

// Through the fault phase a clerk at a random hall asks about a record that exists somewhere:
// a holder whose material is stored, a material by its hash, or a credential by its number;
// after healing, ten more. Every lookup must complete (found / not found / could not ask) within
// its budget unless its node crashed. "Not found" is a violation if a matching record was
// created anywhere before the completeness watermark the city states in it (or if the city
// held one when it answered); every record in a "found" answer must really exist as described
// at the node that stored or issued it; a node that holds the record itself must answer
// "found"; after healing everything is reachable, so every answer must be "found".
// Its choices come from a generator of its own, seeded from the run's seed.
class LookupProbes {
 public:
  // `thief_documents`: what the thief signed with the lost key (CredentialWorkload), which a
  // true "found" answer may hold.
  LookupProbes(ScenarioState& scenario, const std::vector<Bytes>& thief_documents);

  // A lookup every three minutes, as world events until `until`.
  void schedule(TimeMs until);

  // After convergence every record is at the city and every link is up: ten more lookups, each
  // must be answered "found".
  void checkAfterHeal();

 private:
  struct LookupProbe {
    LookupQuery query;
    std::string stored_at, asked_at;
    TimeMs asked_ms = 0;
    bool held_by_asker = false;
    std::optional<LookupResult> result;
  };

  std::string someKey(Node& node, LookupQuestion question);
  void askSomeLookup(bool after_heal);
  bool recordIsTrue(const LookupRecord& r, std::string* why);
  void checkLookup(const LookupProbe& p, const LookupResult& r, bool after_heal);

  ScenarioState& scenario_;
  const std::vector<Bytes>& thief_documents_;
  Random lookup_random_;
  std::vector<std::shared_ptr<LookupProbe>> lookup_probes_;
};

}  // namespace tongban::sim::scenario_internal
