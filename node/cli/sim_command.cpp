// tongban sim: runs the deterministic simulator over a division tree for one seed or a range.
// Every failure prints the seed and the exact command that replays it.
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <sstream>

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include "node/cli/cli_clock.h"
#include "node/cli/commands.h"
#include "simulations/scenarios/tree_scenario.h"

#ifndef TONGBAN_DATA_DIR
#define TONGBAN_DATA_DIR "data"
#endif

namespace tongban::cli {

namespace {

struct SimArgs {
  uint64_t seed = 0;
  std::string seeds;
  std::string topology = TONGBAN_DATA_DIR "/foshan.json";
  std::string calendar = TONGBAN_DATA_DIR "/calendar-2026.json";
  std::string catalogue = TONGBAN_DATA_DIR "/catalog.json";
  int workload_minutes = 2;
  size_t districts = 1, towns = 1, villages = 2;
  double hours = 1.0;
  int heal_minutes = 20;
  bool check_determinism = false;
  bool progress = false;
  bool no_faults = false;
  std::string work_dir;
  std::string log_level = "off";
};

std::string hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

std::string replayCommand(const SimArgs& a, uint64_t seed) {
  std::ostringstream s;
  s << "tongban sim --seed " << seed << " --topology " << a.topology << " --districts " << a.districts << " --towns "
    << a.towns << " --villages " << a.villages << " --hours " << a.hours << " --heal-minutes " << a.heal_minutes
    << " --workload-minutes " << a.workload_minutes << (a.no_faults ? " --no-faults" : "");
  return s.str();
}

int runSim(SimArgs a) {
  // Off by default: thousands of simulated nodes' logs help nobody, traces do. For one failing
  // seed, `--log warn` shows what the nodes said (timestamps are the wall clock, not virtual).
  spdlog::set_level(spdlog::level::from_str(a.log_level));
  auto topology = Topology::loadFile(a.topology);
  if (!topology) {
    std::cerr << "error: " << topology.status().toString() << "\n";
    return 2;
  }
  const size_t all = 1'000'000;
  Topology tree = topology->sample(a.districts ? a.districts : all, a.towns ? a.towns : all,
                                   a.villages ? a.villages : all);

  uint64_t first = a.seed, last = a.seed;
  if (!a.seeds.empty()) {
    auto colon = a.seeds.find(':');
    try {
      first = std::stoull(a.seeds.substr(0, colon));
      last = colon == std::string::npos ? first : std::stoull(a.seeds.substr(colon + 1));
    } catch (...) {
      std::cerr << "error: --seeds must look like 1:100 (got '" << a.seeds << "')\n";
      return 2;
    }
    if (last < first || last - first > 100000) {
      std::cerr << "error: --seeds range " << a.seeds << " is empty or larger than 100000 seeds\n";
      return 2;
    }
  }
  if (a.work_dir.empty()) {
    // tmpfs when there is one: the simulator's SQLite files need no real disk.
    a.work_dir = std::filesystem::exists("/dev/shm") ? "/dev/shm" : std::filesystem::temp_directory_path().string();
    a.work_dir += "/tongban-sim-" + std::to_string(::getpid());
  }

  std::cout << "simulating " << tree.divisions().size() << " nodes, " << a.hours << " h of faults then up to "
            << a.heal_minutes << " min to converge, seeds " << first << ".." << last << "\n";
  int passed = 0, failed = 0;
  for (uint64_t seed = first; seed <= last; ++seed) {
    sim::TreeScenarioOptions o;
    o.seed = seed;
    o.topology = tree;
    o.fault_phase_ms = static_cast<DurationMs>(a.hours * 3600 * 1000);
    o.heal_bound_ms = static_cast<DurationMs>(a.heal_minutes) * 60 * 1000;
    o.work_dir = a.work_dir + "/seed-" + std::to_string(seed);
    o.inject_faults = !a.no_faults;
    o.calendar_file = a.calendar;
    o.catalogue_file = a.catalogue;
    o.workload_interval_ms = static_cast<DurationMs>(a.workload_minutes) * 60 * 1000;
    if (a.progress) o.progress = [](const std::string& line) { std::cerr << "  " << line << "\n"; };
    const TimeMs started = wallClockMs();
    sim::TreeScenarioResult r = sim::runTreeScenario(o);
    const TimeMs took = wallClockMs() - started;
    bool ok = r.passed;
    std::string determinism;
    if (ok && a.check_determinism) {
      o.work_dir += "-again";
      sim::TreeScenarioResult again = sim::runTreeScenario(o);
      if (again.trace_hash != r.trace_hash || !again.passed) {
        ok = false;
        determinism = "NON-DETERMINISTIC: trace hash " + hex(r.trace_hash) + " then " + hex(again.trace_hash);
      } else {
        determinism = ", same trace hash twice";
      }
    }
    std::cout << "seed " << seed << ": " << (ok ? "PASS" : "FAIL") << " trace " << hex(r.trace_hash) << ", "
              << r.messages_applied << "/" << r.messages_enqueued << " messages applied once, "
              << r.duplicates_acknowledged << " re-deliveries ignored, " << r.crashes << " crashes, " << r.partitions
              << " partitions, " << r.network_drops << " drops, " << r.cases_submitted << " applications, "
              << r.case_steps_taken << " steps, " << r.forwarded_cases << " forwarded (" << r.forwarded_concluded
              << " concluded), " << r.credentials_issued << " credentials (" << r.credential_status_changes
              << " status changes, " << r.credential_renewals << " renewals (" << r.concurrent_renewals
              << " during a suspension), " << r.forged_documents_taken << " forged documents taken, "
              << r.revoked_checks << " verdicts checked), " << r.case_events_at_city << " case events at the city, catalogue v"
              << r.catalogue_version << " everywhere; converged "
              << (r.converged_after_heal_ms >= 0 ? std::to_string(r.converged_after_heal_ms / 1000) + " s" : "never")
              << " after healing, roll-up of " << r.snapshots_at_city << " day snapshots exact at the city after "
              << (r.rollup_converged_after_heal_ms >= 0 ? std::to_string(r.rollup_converged_after_heal_ms / 1000) + " s"
                                                        : "never")
              << " (" << took << " ms wall" << (ok ? determinism : "") << ")\n";
    if (ok) {
      ++passed;
      continue;
    }
    ++failed;
    for (const auto& v : r.violations) std::cout << "  violation: " << v << "\n";
    if (!determinism.empty() && determinism[0] == 'N') std::cout << "  " << determinism << "\n";
    std::cout << "  node data kept in " << o.work_dir << "\n"
              << "  replay: " << replayCommand(a, seed) << (a.check_determinism ? " --check-determinism" : "") << "\n";
  }
  std::error_code ignored;
  if (failed == 0) std::filesystem::remove_all(a.work_dir, ignored);
  std::cout << "sim: " << passed << " passed, " << failed << " failed\n";
  return failed == 0 ? 0 : 1;
}
}  // namespace

void registerSimCommand(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand("sim", "Run the deterministic simulator (real node code, virtual time and network)");
  static SimArgs a;
  auto* seed = cmd->add_option("--seed", a.seed, "One seed to run");
  auto* seeds = cmd->add_option("--seeds", a.seeds, "A range of seeds, FIRST:LAST");
  seed->excludes(seeds);
  cmd->add_option("--topology", a.topology, "Topology file (JSON, like data/foshan.json)");
  cmd->add_option("--districts", a.districts, "Districts to take from the topology (0: all)");
  cmd->add_option("--towns", a.towns, "Towns per district (0: all)");
  cmd->add_option("--villages", a.villages, "Villages per town (0: all)");
  cmd->add_option("--hours", a.hours, "Virtual hours of fault injection");
  cmd->add_option("--heal-minutes", a.heal_minutes, "Virtual minutes allowed to converge after healing");
  cmd->add_flag("--check-determinism", a.check_determinism, "Run each seed twice and require the same trace hash");
  cmd->add_flag("--progress", a.progress, "Print a progress line every 10 virtual minutes");
  cmd->add_flag("--no-faults", a.no_faults, "No partitions, crashes or message faults");
  cmd->add_option("--calendar", a.calendar, "Working-day calendar file");
  cmd->add_option("--catalogue", a.catalogue, "Catalogue the city publishes");
  cmd->add_option("--workload-minutes", a.workload_minutes, "An application and a case step every N virtual minutes (0: none)");
  cmd->add_option("--work-dir", a.work_dir, "Where the simulated nodes' SQLite files go");
  cmd->add_option("--log", a.log_level, "Node log level while simulating (off, error, warn, info, debug)")
      ->check(CLI::IsMember({"off", "critical", "error", "warn", "info", "debug", "trace"}));
  cmd->callback([exit_code] { *exit_code = runSim(a); });
}

}  // namespace tongban::cli
