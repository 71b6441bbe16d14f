#include "simulations/scenarios/credential_workload.h"

#include <algorithm>
#include <set>

#include "federation/trust/certificate.h"

namespace tongban::sim::scenario_internal {

namespace {

struct HeldCredential {
  std::string number, status, issuer, origin;
};

std::vector<HeldCredential> heldCredentials(SimNode& n) {
  std::vector<HeldCredential> held;
  auto stmt = n.node->database().prepare(
      "SELECT c.number, COALESCE(s.status, ''), c.issuer, c.origin FROM credentials c"
      " LEFT JOIN credential_status s ON s.number = c.number ORDER BY c.number");
  while (stmt) {
    auto row = stmt->step();
    if (!row || !*row) break;
    held.push_back({stmt->columnText(0), stmt->columnText(1), stmt->columnText(2), stmt->columnText(3)});
  }
  return held;
}

bool holdsRevocation(SimNode& n, const std::string& number) {
  auto stmt = n.node->database().prepare(
      "SELECT COUNT(*) FROM credential_status_records WHERE number = ?1 AND status = 'revoked'");
  if (!stmt) return false;
  stmt->bind(1, number);
  auto row = stmt->step();
  return row && *row && stmt->columnInt64(0) > 0;
}

}  // namespace

CredentialWorkload::CredentialWorkload(ScenarioState& scenario)
    : scenario_(scenario), credential_random_(scenario.options.seed ^ 0x63726564ULL) {}

void CredentialWorkload::schedule(TimeMs until) {
  for (TimeMs t = kSimulationStartMs + scenario_.options.workload_interval_ms * 3 / 4; t < until;
       t += scenario_.options.workload_interval_ms) {
    scenario_.world.at(t, [this] { credentialAction(); });
  }
  const TimeMs lost_at = kSimulationStartMs + (until - kSimulationStartMs) * 2 / 5;
  scenario_.world.at(lost_at, [this] { loseSpareKey(); });
  scenario_.world.at(lost_at + 30 * 1000, [this] { thiefActs(); });
  scenario_.world.at(lost_at + 150 * 1000, [this] { thiefActs(); });  // after the publication: taken or not
  scenario_.world.at(lost_at + 2 * kMinute, [this] { publishSpareKeyRevocation(); });
}

void CredentialWorkload::credentialAction() {
  std::vector<SimNode*> live = scenario_.liveNodes();
  if (live.empty()) return;
  SimNode& n = *live[credential_random_.below(live.size())];
  const uint64_t kind = credential_random_.below(8);
  if (kind < 2) {
    renewSome(n);
  } else if (kind == 2) {
    suspendWhileRenewing(n);
  } else {
    changeSomeStatus(n);
  }
  sampleVerdicts(*live[credential_random_.below(live.size())]);
}

void CredentialWorkload::changeSomeStatus(SimNode& n) {
  std::vector<HeldCredential> held;
  for (auto& h : heldCredentials(n)) {
    auto issuer = DivisionCode::parse(h.issuer);
    if (issuer && n.info.code.covers(*issuer)) held.push_back(std::move(h));
  }
  if (held.empty()) return;
  const HeldCredential& h = held[credential_random_.below(held.size())];
  const uint64_t dice = credential_random_.below(6);
  const std::string next = h.status == "revoked"     ? ""
                           : h.status == "suspended" ? (dice < 3 ? "active" : "revoked")
                           : (dice < 2 ? "revoked" : dice < 4 ? "suspended" : "");
  if (!next.empty()) setCredentialStatus(n, h.number, next);
}

bool CredentialWorkload::setCredentialStatus(SimNode& n, const std::string& number, const std::string& next) {
  auto changed = n.node->credentials().setStatus(number, next, "simulated " + next, scenario_.world.now());
  if (!changed) {
    scenario_.checker.violation("setting " + number + " " + next + " at " + n.info.code.str() + " failed: " +
                                changed.status().toString());
    return false;
  }
  ++scenario_.result.credential_status_changes;
  scenario_.world.trace("credential " + number + " " + next + " at " + n.info.code.str());
  return true;
}

// The issuer renews one of its credentials (not revoked): a forwarded case's when it has one,
// half of the time.
void CredentialWorkload::renewSome(SimNode& n) {
  std::vector<HeldCredential> own, forwarded;
  for (auto& h : heldCredentials(n)) {
    if (h.issuer != n.info.code.str() || h.status == "revoked") continue;
    (h.origin != h.issuer ? forwarded : own).push_back(h);
  }
  const bool pick_forwarded = !forwarded.empty() && (own.empty() || credential_random_.below(2) == 0);
  const auto& pool = pick_forwarded ? forwarded : own;
  if (pool.empty()) return;
  renew(n, pool[credential_random_.below(pool.size())].number);
}

bool CredentialWorkload::renew(SimNode& n, const std::string& number) {
  auto renewed = n.node->credentials().renew(number, std::nullopt, {}, scenario_.world.now());
  if (!renewed) {
    // The issuer may know of a revocation the node that picked the credential does not.
    if (renewed.status().code() != ErrorCode::kFailedPrecondition) {
      scenario_.checker.violation("renewing " + number + " at " + n.info.code.str() + " failed: " +
                                  renewed.status().toString());
    }
    scenario_.world.trace("credential " + number + " not renewed at " + n.info.code.str());
    return false;
  }
  ++scenario_.result.credential_renewals;
  scenario_.world.trace("credential " + number + " renewed at " + n.info.code.str());
  return true;
}

// `n` suspends a credential issued by a strict descendant of it that is running, and that
// issuer renews it at the same instant: the two must converge to "suspended, new version".
// Only credentials the issuer holds: what the thief signed with the lost key names the village
// as its issuer, but the village never had it and cannot renew it.
void CredentialWorkload::suspendWhileRenewing(SimNode& n) {
  std::vector<std::pair<std::string, SimNode*>> candidates;
  for (const auto& h : heldCredentials(n)) {
    auto issuer = DivisionCode::parse(h.issuer);
    if (!issuer || !n.info.code.isAncestorOf(*issuer) || (!h.status.empty() && h.status != "active")) continue;
    SimNode* at_issuer = scenario_.nodeOf(*issuer);
    if (!at_issuer || !at_issuer->node) continue;
    auto held = at_issuer->node->credentials().listByNumber(h.number);
    if (held && held->has_value()) candidates.emplace_back(h.number, at_issuer);
  }
  if (candidates.empty()) return;
  const auto& [number, issuer] = candidates[credential_random_.below(candidates.size())];
  if (!setCredentialStatus(n, number, "suspended")) return;
  if (renew(*issuer, number)) ++scenario_.result.concurrent_renewals;
}

// --- the verdict ledger ---
// A random live node verifies up to four documents (any version) held by a random live node.
void CredentialWorkload::sampleVerdicts(SimNode& verifier) {
  recordRevocationsHeld();
  std::vector<SimNode*> live = scenario_.liveNodes();
  SimNode& holder = *live[credential_random_.below(live.size())];
  std::vector<Bytes> copies;
  auto stmt = holder.node->database().prepare("SELECT sealed FROM credential_versions ORDER BY number, version");
  while (stmt) {
    auto row = stmt->step();
    if (!row || !*row) break;
    copies.push_back(stmt->columnBlob(0));
  }
  for (int i = 0; i < 4 && !copies.empty(); ++i) {
    const Bytes& sealed = copies[credential_random_.below(copies.size())];
    Verification v = verifier.node->credentials().verify(sealed, scenario_.world.now());
    if (!v.credential) continue;
    ++scenario_.result.revoked_checks;
    verdicts_.push_back({verifier.info.code.str(), v.credential->number, v.verdict, v.credential->version,
                         scenario_.world.now(), holdsRevocation(verifier, v.credential->number)});
  }
}

// When each live node first stored a revocation of each number (its own record of it, which
// survives crashes), kept by the scenario even if the node later drops the record.
void CredentialWorkload::recordRevocationsHeld() {
  for (SimNode* n : scenario_.liveNodes()) {
    auto stmt = n->node->database().prepare(
        "SELECT number, MIN(received_ms) FROM credential_status_records WHERE status = 'revoked' GROUP BY number");
    while (stmt) {
      auto row = stmt->step();
      if (!row || !*row) break;
      auto [it, added] =
          revocation_held_since_[n->info.code.str()].try_emplace(stmt->columnText(0), stmt->columnInt64(1));
      if (!added) it->second = std::min<TimeMs>(it->second, stmt->columnInt64(1));
    }
  }
}

// The safety invariant: no node gave "valid" for a credential once it held a revocation of it
// — checked against the ledger (a verdict given before the ledger learnt of a revocation the
// node had already stored is caught too), and at the moment of the verdict.
void CredentialWorkload::checkVerdicts() {
  recordRevocationsHeld();
  for (const auto& v : verdicts_) {
    if (v.verdict != "valid") continue;
    auto node = revocation_held_since_.find(v.node);
    const bool held_before = node != revocation_held_since_.end() && node->second.count(v.number) &&
                             node->second.at(v.number) < v.at_ms;
    if (held_before || v.held_revocation_then) {
      scenario_.checker.violation(v.node + " reported version " + std::to_string(v.version) + " of " + v.number +
                                  " valid at t=+" + std::to_string((v.at_ms - kSimulationStartMs) / 1000) +
                                  "s although it held a revocation of it since t=+" +
                                  std::to_string(held_before ? (node->second.at(v.number) - kSimulationStartMs) / 1000 : 0) +
                                  "s");
    }
  }
}

// --- the lost laptop ---
// A village's second certified key (a spare laptop the hall had), lost now: revoked from now on
// by the village's parent. The key is made from the scenario's credential randomness.
void CredentialWorkload::loseSpareKey() {
  std::vector<SimNode*> villages;
  for (auto& n : scenario_.nodes) {
    if (n->info.code.level() == Level::kVillage) villages.push_back(n.get());
  }
  if (villages.empty()) return;
  SimNode& village = *villages[credential_random_.below(villages.size())];
  SimNode* parent = scenario_.nodeOf(*village.info.code.parent());
  if (!parent) return;
  auto spare = issueChildIdentity(parent->identity, village.info.code, village.info.name + " (spare laptop)",
                                  KeyPair::fromSeed(keySeed(credential_random_)), 9000, kSimulationStartMs - 1000,
                                  kSimulationStartMs + 365LL * 24 * 3600 * 1000);
  if (!spare) {
    scenario_.checker.violation("issuing the spare laptop's identity: " + spare.status().toString());
    return;
  }
  auto revocation = signKeyRevocation(parent->identity, village.info.code, spare->keys.public_key,
                                      scenario_.world.now(), "spare laptop lost");
  if (!revocation) {
    scenario_.checker.violation("signing the key revocation: " + revocation.status().toString());
    return;
  }
  spare_ = std::move(spare).value();
  spare_revocation_ = std::move(revocation).value();
  scenario_.world.trace("spare key of " + village.info.code.str() + " lost");
}

// The thief signs with the lost key and hands the documents to the village's parent as the
// village would relay them up (what a stolen laptop on the hall's network does). A parent that
// already holds the revocation refuses them.
void CredentialWorkload::thiefActs() {
  if (!spare_) return;
  const DivisionCode& village = spare_->division;
  SimNode* parent = scenario_.nodeOf(*village.parent());
  if (!parent || !parent->node || !parent->node->catalogue().current()) return;
  const Catalogue& cat = *parent->node->catalogue().current();
  const CatalogueItem* item = nullptr;
  for (const auto& i : cat.items) {
    if (!i.issues.empty() && i.decide_level == Level::kVillage) item = item ? item : &i;
  }
  const TimeMs now = scenario_.world.now();
  if (item) {
    CredentialInfo forged;
    forged.number = village.str() + "-L" + std::to_string(90000000 + thief_documents_.size());
    forged.kind = item->issues;
    forged.holder_id = residentId(credential_random_.below(1000));
    forged.holder_name = "冒名";
    forged.issuer = village.str();
    forged.issuer_name = spare_->name;
    forged.item_code = item->code;
    forged.item_name = item->name;
    forged.case_number = village.str() + "-99999999";
    forged.origin = village.str();
    forged.valid_from_ms = now;
    forged.valid_until_ms = now + 90LL * 24 * 3600 * 1000;
    forged.issued_at_ms = now;
    forged.catalogue_version = cat.version;
    injectAsRelayedBy(*parent, kCredentialUpKind, signCredential(*spare_, forged));
  }
  // A forged suspension of a credential the village issued, when the parent holds one.
  for (const auto& h : heldCredentials(*parent)) {
    if (h.issuer != village.str()) continue;
    CredentialStatusInfo s{h.number, "suspended", 999, now, village.str(), spare_->name, "forged by the thief"};
    injectAsRelayedBy(*parent, kCredentialStatusUpKind, signCredentialStatus(*spare_, s, 1));
    break;
  }
}

void CredentialWorkload::injectAsRelayedBy(SimNode& parent, MessageKind up_kind, Bytes document) {
  thief_documents_.push_back(document);
  OpenedEnvelope relayed{spare_->division, up_kind, 0, scenario_.world.now(), parent.info.code, document, 0,
                         spare_->keys.public_key, {}};
  auto txn = parent.node->database().begin();
  if (!txn) return;
  Status st = parent.node->credentials().applyFromChild(relayed, scenario_.world.now());
  if (st.isOk()) st = txn->commit();
  scenario_.world.trace("thief's document at " + parent.info.code.str() + ": " +
                        (st.isOk() ? "taken" : errorCodeName(st.code())));
  if (st.isOk()) ++scenario_.result.forged_documents_taken;
}

void CredentialWorkload::publishSpareKeyRevocation() {
  if (!spare_) return;
  std::vector<SimNode*> live = scenario_.liveNodes();
  if (live.empty()) return;
  SimNode& at = *live[credential_random_.below(live.size())];
  Status st = at.node->credentials().publishKeyRevocation(spare_revocation_, scenario_.world.now());
  if (!st.isOk()) {
    scenario_.checker.violation("publishing the key revocation at " + at.info.code.str() + " failed: " + st.toString());
    return;
  }
  key_revocations_published_ = 1;
  scenario_.world.trace("key revocation published at " + at.info.code.str());
}

// After healing: every credential is held, at its newest version and only that one as current,
// by its issuer, every ancestor of the issuer and the hall that accepted its case; every node
// knows that newest version (current_version, learnt from renewal notices where the
// credential itself is not held); every node holds the same winning status record of every
// credential that has one, and every key revocation; nothing the lost key signed after its
// revocation is held anywhere. Quiet unless `report`.
bool CredentialWorkload::consistent(bool report) {
  bool ok = true;
  auto fail = [&](const std::string& what) {
    ok = false;
    if (report) scenario_.checker.violation(what);
  };
  struct Held {
    uint32_t version = 0;
    std::string issuer, origin;
  };
  std::map<std::string, Held> newest;                             // number → newest version seen anywhere
  std::map<std::string, std::map<std::string, uint32_t>> held_at;  // node → number → version
  std::map<std::string, std::map<std::string, uint32_t>> current_at;  // node → number → current version known
  std::map<std::string, std::map<std::string, std::string>> status_at;  // node → number → "status/version/by"
  std::set<std::string> thief;  // the lost key's documents, as byte strings
  for (const auto& d : thief_documents_) thief.emplace(d.begin(), d.end());
  for (auto& n : scenario_.nodes) {
    const std::string code = n->info.code.str();
    auto creds = n->node->database().prepare("SELECT number, version, issuer, origin, sealed FROM credentials");
    while (creds) {
      auto row = creds->step();
      if (!row || !*row) break;
      const auto version = static_cast<uint32_t>(creds->columnInt64(1));
      held_at[code][creds->columnText(0)] = version;
      Held& h = newest[creds->columnText(0)];
      if (version > h.version) h = {version, creds->columnText(2), creds->columnText(3)};
    }
    auto current = n->node->database().prepare(
        "SELECT number, MAX(v) FROM (SELECT number, version AS v FROM credential_versions"
        " UNION ALL SELECT number, current_version AS v FROM credential_status_records) GROUP BY number");
    while (current) {
      auto row = current->step();
      if (!row || !*row) break;
      current_at[code][current->columnText(0)] = static_cast<uint32_t>(current->columnInt64(1));
    }
    auto statuses = n->node->database().prepare("SELECT number, status, version, by_division FROM credential_status");
    while (statuses) {
      auto row = statuses->step();
      if (!row || !*row) break;
      status_at[code][statuses->columnText(0)] =
          statuses->columnText(1) + "/" + std::to_string(statuses->columnInt64(2)) + "/" + statuses->columnText(3);
    }
    auto kept = n->node->database().prepare(
        "SELECT sealed FROM credential_versions UNION ALL SELECT sealed FROM credential_status_records");
    while (kept && !thief.empty()) {
      auto row = kept->step();
      if (!row || !*row) break;
      const Bytes held = kept->columnBlob(0);
      if (thief.count(std::string(held.begin(), held.end()))) fail(code + " still holds a document signed with the revoked spare key");
    }
    auto revocations = countRows(*n->node, "SELECT COUNT(*) FROM key_revocations");
    if (!revocations || *revocations != key_revocations_published_) {
      fail(code + " holds " + std::to_string(revocations ? *revocations : 0) + " key revocations; " +
           std::to_string(key_revocations_published_) + " were published");
    }
  }
  for (const auto& [number, h] : newest) {
    auto issuer = DivisionCode::parse(h.issuer);
    auto origin = DivisionCode::parse(h.origin);
    if (!issuer || !origin) {
      fail("credential " + number + " names issuer " + h.issuer + " and origin " + h.origin);
      continue;
    }
    std::vector<DivisionCode> must_hold = issuer->ancestors();
    must_hold.push_back(*issuer);
    must_hold.push_back(*origin);
    for (const auto& code : must_hold) {
      auto it = held_at[code.str()].find(number);
      if (it == held_at[code.str()].end() || it->second != h.version) {
        fail(code.str() + " holds " + (it == held_at[code.str()].end() ? "no copy" : "version " + std::to_string(it->second)) +
             " of credential " + number + "; the newest is version " + std::to_string(h.version));
      }
    }
    // Exactly one current version: every node that knows the number knows the same newest one.
    for (auto& n : scenario_.nodes) {
      const std::string code = n->info.code.str();
      auto it = current_at[code].find(number);
      const bool must_know = h.version > 1 || held_at[code].count(number);
      if (it == current_at[code].end() ? must_know : it->second != h.version) {
        fail(code + " knows version " + (it == current_at[code].end() ? "none" : std::to_string(it->second)) +
             " of credential " + number + " as current; the newest is version " + std::to_string(h.version));
      }
    }
  }
  std::map<std::string, std::string> any_status;
  for (const auto& [code, by_number] : status_at) {
    for (const auto& [number, s] : by_number) any_status[number] = s;
  }
  for (auto& n : scenario_.nodes) {
    const std::string code = n->info.code.str();
    for (const auto& [number, s] : any_status) {
      auto it = status_at[code].find(number);
      if (it == status_at[code].end()) {
        fail(code + " has not received the status of credential " + number + " (" + s + ")");
      } else if (it->second != s) {
        // Every node must agree on the winner; report both sides.
        for (const auto& [other, by_number] : status_at) {
          auto o = by_number.find(number);
          if (o != by_number.end() && o->second != it->second) {
            fail(code + " holds status " + it->second + " of " + number + ", " + other + " holds " + o->second);
            break;
          }
        }
      }
    }
  }
  if (ok) {
    scenario_.result.credentials_issued = newest.size();
    scenario_.result.credential_statuses = any_status.size();
  }
  return ok;
}

}  // namespace tongban::sim::scenario_internal
