// The foundation scenario: a division tree of real nodes in the simulated world. First a fault
// phase (links cut and healed, nodes crashed and restarted, messages dropped, duplicated,
// delayed and reordered), then everything heals and the run must converge.
//
// Invariants checked:
//   safety   (all the time)  every applied outbox message is applied by the origin's parent
//                            (a forwarded case's steps: by its child on the way down), and at
//                            most once;
//   liveness (after healing) within the bound, every message any node enqueued has been
//                            applied exactly once at its parent (or refused REVOKED: a relay of
//                            what a revoked key signed), every outbox is empty, every
//                            node has joined, every node holds the city's latest catalogue, and
//                            every node holds exactly the case events its descendants recorded;
//   roll-up  (after healing) no node has unsent supervision days; every node's subtree totals
//                            equal the sum of the own figures (computed from their own tables)
//                            of every node in its subtree, counter by counter; every node's
//                            per-child breakdown equals that child's own answer for its
//                            subtree; and every ancestor holds exactly the origin's latest
//                            snapshot version of each (origin, day) (none counted twice).
//   forwarding (after healing and the drain) every forwarded case is held by exactly one node,
//                            its origin's ancestor at the case's decide level; it is concluded
//                            there and decided exactly once (one conclude step, at most one
//                            approve or deny); the origin shows the same state, deadline,
//                            conclusion time and full step list (index, step, time, actor); no
//                            node holds a case its origin did not forward, none was returned;
//                            and a tree with villages and a workload forwarded at least one.
//   credentials (all the time) no node reports "valid" for a credential after it stored a
//                            revocation of it (a ledger of verdicts given and of when each node
//                            stored each revocation, checked at the end); (after healing) every
//                            credential is held at its newest version by its issuer, every
//                            ancestor of the issuer and the hall that accepted its case, every
//                            node knows that newest version as current, every node holds the
//                            same winning status record of every credential that has one and
//                            every key revocation, and nothing a revoked key signed after its
//                            revocation time is held anywhere. The workload renews (a forwarded
//                            case's credential too, and once in a while at the instant an
//                            ancestor suspends it) and a lost spare key is revoked after a thief
//                            used it.
// A workload runs through the fault phase: clerks at random halls submit applications for
// items their level may accept, and staff move open cases along; the city publishes a new
// catalogue version mid-run.
// Drain (after healing, before the convergence check): staff at each decider work every
// forwarded case they hold to its conclusion, including those still arriving.
// The run ends with a trace hash: the same seed must give the same hash.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "federation/division/division.h"
#include "federation/transport/clock.h"

namespace tongban::sim {

struct TreeScenarioOptions {
  uint64_t seed = 1;
  Topology topology;
  DurationMs fault_phase_ms = 60 * 60 * 1000;   // how long faults are injected
  DurationMs heal_bound_ms = 20 * 60 * 1000;    // convergence must happen within this after healing
  std::string work_dir;                         // node data dirs go below it (removed on success)
  bool inject_faults = true;
  std::string calendar_file;                    // data/calendar-2026.json
  std::string catalogue_file;                   // data/catalog.json (published by the city)
  DurationMs workload_interval_ms = 2 * 60 * 1000;  // one application and one step this often; 0: none
  // Called now and then with a one-line progress report (long runs).
  std::function<void(const std::string&)> progress;
};

struct TreeScenarioResult {
  bool passed = false;
  std::vector<std::string> violations;          // each names the time, node and what broke
  uint64_t trace_hash = 0;
  uint64_t messages_enqueued = 0;               // distinct (origin, seq)
  uint64_t messages_applied = 0;
  uint64_t duplicates_acknowledged = 0;         // re-deliveries recognised and not applied again
  uint64_t crashes = 0, partitions = 0;
  uint64_t network_deliveries = 0, network_drops = 0;
  DurationMs converged_after_heal_ms = -1;      // virtual time from healing to convergence (drain included)
  // Virtual time from healing until the roll-up invariants first held (checked every 5 s).
  DurationMs rollup_converged_after_heal_ms = -1;
  uint64_t snapshots_at_city = 0;               // (origin, day) snapshots the city holds
  uint64_t cases_submitted = 0, case_steps_taken = 0, case_events_at_city = 0;
  uint64_t catalogue_version = 0;
  uint64_t forwarded_cases = 0, forwarded_concluded = 0;  // after convergence
  uint64_t credentials_issued = 0, credential_statuses = 0;  // after convergence
  uint64_t credential_status_changes = 0, revoked_checks = 0;  // revoked_checks: verdicts recorded and checked
  uint64_t credential_renewals = 0, concurrent_renewals = 0;    // renewals; of them, at the instant of a suspension
  uint64_t forged_documents_taken = 0;  // documents the lost key signed that a node took before the revocation
  uint64_t relays_refused_revoked = 0;  // relays of those refused REVOKED by a parent (the only refusal expected)
  uint64_t events = 0;
};

TreeScenarioResult runTreeScenario(const TreeScenarioOptions& options);

}  // namespace tongban::sim
