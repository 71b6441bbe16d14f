// Internal to simulations/scenarios: the credentials workload (issue #6) and its invariants.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "simulations/scenarios/scenario_state.h"

namespace tongban::sim::scenario_internal {

// The workload, every workload interval at a random live node: it revokes, suspends or
// reinstates a credential it covers, or (its issuer) renews one — a forwarded case's first when
// there is one, so the renewal travels down to the accepting hall — or suspends one as an
// ancestor while its issuer renews it at the same instant. Then a random live node verifies a
// few credentials (any version any node holds) and the verdicts are recorded.
// Once per run a village's spare laptop is lost: its parent revokes the laptop's certified key
// from that moment, a thief uses the key (a forged credential and a forged suspension, handed
// to the village's parent as its child would relay them) before the revocation is published at
// a random node and once after, so some nodes store what the thief signed before the revocation
// reaches them and others refuse it.
// Safety (checkVerdicts): no node gave "valid" for a credential after it held a revocation of
// it, from the scenario's own ledger of when each node stored each revocation.
// Its choices come from a generator of its own, seeded from the run's seed.
class CredentialWorkload {
 public:
  explicit CredentialWorkload(ScenarioState& scenario);

  // The workload's events, as world events until `until`.
  void schedule(TimeMs until);

  // The safety invariant over the whole run (after it).
  void checkVerdicts();

  // The invariants after healing (tree_scenario.h). Quiet unless `report`.
  bool consistent(bool report);

  // What the thief signed with the lost key (a lookup that finds one is a true answer).
  const std::vector<Bytes>& thiefDocuments() const { return thief_documents_; }

 private:
  struct Verdict {
    std::string node, number, verdict;
    uint32_t version = 0;
    TimeMs at_ms = 0;
    bool held_revocation_then = false;  // the node's records held a revocation at that moment
  };

  void credentialAction();
  void changeSomeStatus(SimNode& n);
  bool setCredentialStatus(SimNode& n, const std::string& number, const std::string& next);
  void renewSome(SimNode& n);
  bool renew(SimNode& n, const std::string& number);
  void suspendWhileRenewing(SimNode& n);
  void sampleVerdicts(SimNode& verifier);
  void recordRevocationsHeld();
  void loseSpareKey();
  void thiefActs();
  void injectAsRelayedBy(SimNode& parent, MessageKind up_kind, Bytes document);
  void publishSpareKeyRevocation();

  ScenarioState& scenario_;
  Random credential_random_;
  std::optional<Identity> spare_;  // the lost laptop's identity (once lost)
  Bytes spare_revocation_;
  uint64_t key_revocations_published_ = 0;
  std::vector<Bytes> thief_documents_;
  std::vector<Verdict> verdicts_;
  std::map<std::string, std::map<std::string, TimeMs>> revocation_held_since_;  // node → number → first stored
};

}  // namespace tongban::sim::scenario_internal
