#include "simulations/scenarios/scenario_checker.h"

#include "node/credentials/credentials.h"
#include "node/forwarding/forwarding.h"
#include "simulations/scenarios/scenario_state.h"

namespace tongban::sim::scenario_internal {

void Checker::onEnqueued(const DivisionCode& origin, uint64_t seq, MessageKind kind) {
  enqueued_.insert({origin.str(), seq});
  world_.trace("enqueue " + origin.str() + " " + std::to_string(seq) + " kind " + std::to_string(kind));
}

void Checker::onApplied(const DivisionCode& receiver, const DivisionCode& origin, uint64_t seq, MessageKind kind) {
  world_.trace("apply " + receiver.str() + " <- " + origin.str() + " " + std::to_string(seq));
  // Everything goes to the parent, except the steps of forwarded cases and renewed credentials
  // on their way to the hall that accepted the case, which go down.
  const bool down = kind == kCaseRelayDownKind || kind == kCredentialDownKind;
  if (down ? !origin.isParentOf(receiver) : !receiver.isParentOf(origin)) {
    violation("message " + origin.str() + "#" + std::to_string(seq) + " (kind " + std::to_string(kind) +
              ") applied at " + receiver.str() + ", which is not its " + (down ? "child" : "parent"));
  }
  if (++applied_[{origin.str(), seq}] > 1) {
    violation("message " + origin.str() + "#" + std::to_string(seq) + " applied " +
              std::to_string(applied_[{origin.str(), seq}]) + " times at " + receiver.str());
  }
}

void Checker::onAcknowledged(const DivisionCode& origin, uint64_t seq, const std::string& outcome) {
  if (outcome == "duplicate") ++result_.duplicates_acknowledged;
  // A relay of what a revoked key signed (the lost laptop's documents, which the relaying
  // node took before the revocation reached it) is refused for good by a parent that holds
  // the revocation: the one refusal the scenario expects. Any other refusal stays unapplied.
  if (outcome == "REVOKED" && refused_.insert({origin.str(), seq}).second) ++result_.relays_refused_revoked;
}

void Checker::violation(const std::string& what) {
  result_.violations.push_back("t=+" + std::to_string((world_.now() - kSimulationStartMs) / 1000) + "s: " + what);
}

std::vector<std::string> Checker::unapplied() const {
  std::vector<std::string> missing;
  for (const auto& key : enqueued_) {
    auto it = applied_.find(key);
    if (it == applied_.end() && !refused_.count(key)) missing.push_back(key.first + "#" + std::to_string(key.second));
  }
  return missing;
}

}  // namespace tongban::sim::scenario_internal
