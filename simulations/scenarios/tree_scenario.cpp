// The driver of the tree scenario (tree_scenario.h): it builds the nodes, schedules the faults
// and the workloads, heals, drains the forwarded cases and waits for convergence. Each concern
// it drives lives in a file of its own under simulations/scenarios/ (scenario_state.h lists
// what they share).
#include "simulations/scenarios/tree_scenario.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <memory>
#include <string>

#include "federation/trust/certificate.h"
#include "simulations/scenarios/credential_workload.h"
#include "simulations/scenarios/forwarded_cases.h"
#include "simulations/scenarios/hall_workload.h"
#include "simulations/scenarios/lookup_probes.h"
#include "simulations/scenarios/scenario_state.h"
#include "simulations/scenarios/supervision_rollup.h"

namespace tongban::sim {
namespace scenario_internal {
namespace {

class Scenario {
 public:
  explicit Scenario(const TreeScenarioOptions& options)
      : state_(options), credentials_(state_), lookups_(state_, credentials_.thiefDocuments()) {}

  TreeScenarioResult run() {
    if (!state_.options.calendar_file.empty()) {
      auto calendar = WorkingCalendar::loadFile(state_.options.calendar_file);
      if (!calendar) {
        state_.result.violations.push_back("setting up: " + calendar.status().toString());
        return finish();
      }
      state_.calendar = std::move(calendar).value();
    }
    if (auto st = buildNodes(); !st.isOk()) {
      state_.result.violations.push_back("setting up: " + st.toString());
      return finish();
    }
    const TimeMs heal_at = kSimulationStartMs + state_.options.fault_phase_ms;
    if (state_.options.inject_faults) {
      state_.world.faults() = NetworkFaults{0.05, 0.05, 1, 300};
      scheduleFaults(heal_at);
    }
    if (state_.options.workload_interval_ms > 0 && !state_.options.catalogue_file.empty()) {
      scheduleHallWorkload(state_, heal_at);
    }
    const bool lookups = state_.options.workload_interval_ms > 0 && !state_.options.catalogue_file.empty();  // lookups
    if (lookups) {
      lookups_.schedule(heal_at);
      credentials_.schedule(heal_at);
    }
    runTo(heal_at);
    heal();
    if (state_.options.workload_interval_ms > 0 && !state_.options.catalogue_file.empty()) {  // forwarded cases
      drainForwardedCases(state_, heal_at + state_.options.heal_bound_ms);
    }
    awaitConvergence(heal_at);
    if (lookups) credentials_.checkVerdicts();  // credentials: over the whole run
    if (lookups && state_.result.converged_after_heal_ms >= 0) lookups_.checkAfterHeal();  // lookups
    return finish();
  }

 private:
  Status buildNodes() {
    Random keys(state_.world.random().fork());
    const auto& divisions = state_.options.topology.divisions();
    const TimeMs valid_from = kSimulationStartMs - 24 * 3600 * 1000;
    const TimeMs valid_until = kSimulationStartMs + 365LL * 24 * 3600 * 1000;
    std::map<std::string, const Identity*> by_code;
    for (const auto& d : divisions) {
      auto sim_node = std::make_unique<SimNode>();
      sim_node->info = d;
      KeyPair pair = KeyPair::fromSeed(keySeed(keys));
      Result<Identity> identity =
          d.code.level() == Level::kCity
              ? createRootIdentity(d.code, d.name, pair, valid_from, valid_until)
              : issueChildIdentity(*by_code.at(d.code.parent()->str()), d.code, d.name, pair, state_.nodes.size() + 1,
                                   valid_from, valid_until);
      if (!identity) return identity.status().withContext("identity of " + d.code.str());
      sim_node->identity = std::move(identity).value();
      sim_node->endpoint = state_.world.addEndpoint(d.code, d.code.str());
      sim_node->random = std::make_unique<Random>(state_.world.random().fork());
      sim_node->data_dir = state_.options.work_dir + "/" + d.code.str();
      std::filesystem::remove_all(sim_node->data_dir);
      state_.nodes.push_back(std::move(sim_node));
      by_code[d.code.str()] = &state_.nodes.back()->identity;
    }
    for (auto& n : state_.nodes) TB_RETURN_IF_ERROR(startNode(*n));
    return Status::ok();
  }

  Status startNode(SimNode& n) {
    NodeOptions options;
    options.identity = n.identity;
    options.data_dir = n.data_dir;
    // The simulated "crash" never loses the OS page cache, so fsync buys nothing here; the
    // durability of acknowledged writes is the daemon's FULL setting (docs/operations.md).
    options.synchronous = Synchronous::kOff;
    options.limits.heartbeat_interval_ms = 30 * 1000;
    options.limits.request_timeout_ms = 2000;
    options.limits.retry_initial_ms = 200;
    options.limits.retry_max_ms = 20 * 1000;
    options.calendar = state_.calendar;
    options.catalogue_poll_ms = 60 * 1000;
    // Snapshots of changed days every virtual minute (the daemon's default is 30 s).
    options.supervision.snapshot_interval_ms = 60 * 1000;
    options.feed.poll_interval_ms = 30 * 1000;
    if (n.info.code.level() == Level::kCity) options.catalogue_file = state_.options.catalogue_file;
    // Its children, so its completeness watermark waits for every one (lookups).
    for (const auto& m : state_.nodes) {
      if (n.info.code.isParentOf(m->info.code)) options.expected_children.push_back(m->info.code);
    }
    NodeEnvironment env{&state_.world.clock(n.endpoint), &state_.world.transport(n.endpoint), n.random.get(),
                        &state_.checker};
    auto node = Node::open(options, env);
    if (!node) return node.status().withContext("starting node " + n.info.code.str());
    n.node = std::move(node).value();
    return Status::ok();
  }

  void crash(SimNode& n) {
    if (!n.node) return;
    ++state_.result.crashes;
    state_.world.crash(n.endpoint);
    n.node.reset();  // the process is gone; its files stay
  }

  void restart(SimNode& n) {
    if (n.node) return;
    state_.world.restart(n.endpoint);
    if (auto st = startNode(n); !st.isOk()) state_.checker.violation("restart failed: " + st.toString());
  }

  void scheduleFaults(TimeMs heal_at) {
    Random& r = state_.world.random();
    // Fault events at random times through the fault phase; each is undone by itself later,
    // and heal() undoes whatever is still in force.
    TimeMs t = kSimulationStartMs + r.between(kMinute / 2, 3 * kMinute);
    while (t < heal_at) {
      const size_t victim = 1 + r.below(state_.nodes.size() - 1);  // never the city's own uplink (it has none)
      const DurationMs length = r.between(10 * 1000, 12 * kMinute);
      if (r.chance(0.6)) {
        const DivisionCode link = state_.nodes[victim]->info.code;
        state_.world.at(t, [this, link] {
          ++state_.result.partitions;
          state_.world.setLinkUp(link, false);
        });
        state_.world.at(std::min(t + length, heal_at), [this, link] { state_.world.setLinkUp(link, true); });
      } else {
        const size_t crashed = r.below(state_.nodes.size());  // the city may crash too
        state_.world.at(t, [this, crashed] { crash(*state_.nodes[crashed]); });
        state_.world.at(std::min(t + length / 3, heal_at), [this, crashed] { restart(*state_.nodes[crashed]); });
      }
      t += r.between(20 * 1000, 4 * kMinute);
    }
  }

  void runTo(TimeMs until) {
    const DurationMs step = 10 * kMinute;
    for (TimeMs t = std::min(until, state_.world.now() + step);; t = std::min(until, t + step)) {
      if (auto st = state_.world.runUntil(t); !st.isOk()) {
        state_.checker.violation("simulation stopped: " + st.toString());
        return;
      }
      if (state_.options.progress) {
        state_.options.progress("seed " + std::to_string(state_.options.seed) + ": t=+" +
                                std::to_string((t - kSimulationStartMs) / kMinute) + "min, " +
                                std::to_string(state_.checker.appliedCount()) + "/" +
                                std::to_string(state_.checker.enqueuedCount()) +
                                " messages applied, " + std::to_string(state_.result.crashes) + " crashes, " +
                                std::to_string(state_.result.partitions) + " partitions");
      }
      if (t >= until) return;
    }
  }

  void heal() {
    state_.world.trace("heal");
    state_.world.faults() = NetworkFaults{0.0, 0.0, 1, 20};
    state_.world.healAll();
    for (auto& n : state_.nodes) restart(*n);
  }

  bool converged() {
    if (!state_.checker.unapplied().empty()) return false;
    for (auto& n : state_.nodes) {
      auto depth = n->node->outboxDepth();
      auto joined = n->node->joined();
      if (!depth || *depth != 0 || !joined || !*joined) return false;
    }
    return hallConverged(state_, /*report=*/false) && rollupConsistent(state_, /*report=*/false) &&
           forwardingConsistent(state_, /*report=*/false) && credentials_.consistent(/*report=*/false);
  }

  void awaitConvergence(TimeMs heal_at) {
    const TimeMs deadline = heal_at + state_.options.heal_bound_ms;
    while (state_.world.now() < deadline) {
      if (state_.result.rollup_converged_after_heal_ms < 0 && (state_.world.now() - heal_at) % 5000 == 0 &&
          rollupConsistent(state_, /*report=*/false)) {
        state_.result.rollup_converged_after_heal_ms = state_.world.now() - heal_at;
      }
      if (converged()) {
        if (state_.result.rollup_converged_after_heal_ms < 0) {
          state_.result.rollup_converged_after_heal_ms = state_.world.now() - heal_at;
        }
        state_.result.converged_after_heal_ms = state_.world.now() - heal_at;
        return;
      }
      if (auto st = state_.world.runUntil(state_.world.now() + 1000); !st.isOk()) {
        state_.checker.violation("simulation stopped: " + st.toString());
        return;
      }
    }
    if (converged()) {
      state_.result.converged_after_heal_ms = state_.world.now() - heal_at;
      return;
    }
    hallConverged(state_, /*report=*/true);
    rollupConsistent(state_, /*report=*/true);
    forwardingConsistent(state_, /*report=*/true);
    credentials_.consistent(/*report=*/true);
    auto missing = state_.checker.unapplied();
    std::string list;
    for (size_t i = 0; i < missing.size() && i < 10; ++i) list += (i ? ", " : "") + missing[i];
    state_.checker.violation("not converged " + std::to_string(state_.options.heal_bound_ms / 1000) +
                             "s after healing: " + std::to_string(missing.size()) + " messages never applied (" + list +
                             ")");
    for (auto& n : state_.nodes) {
      auto depth = n->node->outboxDepth();
      if (depth && *depth) {
        auto st = n->node->status();
        state_.checker.violation(n->info.code.str() + " still holds " + std::to_string(*depth) + " outbox messages" +
                                 (st ? " (uplink " + st->parent_link + ": " + st->last_error + ")" : ""));
      }
    }
  }

  TreeScenarioResult finish() {
    state_.result.messages_enqueued = state_.checker.enqueuedCount();
    state_.result.messages_applied = state_.checker.appliedCount();
    state_.result.network_deliveries = state_.world.messagesDelivered();
    state_.result.network_drops = state_.world.messagesDropped();
    state_.result.events = state_.world.eventsRun();
    state_.result.trace_hash = state_.world.traceHash();
    state_.result.passed = state_.result.violations.empty();
    for (auto& n : state_.nodes) n->node.reset();
    if (state_.result.passed) {
      std::error_code ignored;
      for (auto& n : state_.nodes) std::filesystem::remove_all(n->data_dir, ignored);
    }
    return state_.result;
  }

  ScenarioState state_;
  CredentialWorkload credentials_;
  LookupProbes lookups_;
};

}  // namespace
}  // namespace scenario_internal

TreeScenarioResult runTreeScenario(const TreeScenarioOptions& options) {
  return scenario_internal::Scenario(options).run();
}

}  // namespace tongban::sim
