// tongban topology sample: prints a sub-tree of a topology file, one "code level parent name"
// line per division, parents first. The demo and test scripts build their networks from it.
#include <iostream>

#include <CLI/CLI.hpp>

#include "federation/division/division.h"
#include "node/cli/commands.h"

#ifndef TONGBAN_DATA_DIR
#define TONGBAN_DATA_DIR "data"
#endif

namespace tongban::cli {

void registerTopologyCommand(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand("topology", "Inspect a topology file");
  cmd->require_subcommand(1);
  auto* sample = cmd->add_subcommand("sample", "Print a sub-tree: code, level, parent, name per line");
  static std::string file = TONGBAN_DATA_DIR "/foshan.json";
  static size_t districts = 1, towns = 1, villages = 2;
  sample->add_option("--topology", file, "Topology file (JSON)");
  sample->add_option("--districts", districts, "Districts to take (0: all)");
  sample->add_option("--towns", towns, "Towns per district (0: all)");
  sample->add_option("--villages", villages, "Villages per town (0: all)");
  sample->callback([exit_code] {
    auto topo = Topology::loadFile(file);
    if (!topo) {
      std::cerr << "error: " << topo.status().toString() << "\n";
      *exit_code = 1;
      return;
    }
    const size_t all = 1'000'000;
    auto picked = topo->sample(districts ? districts : all, towns ? towns : all, villages ? villages : all);
    for (const auto& d : picked.divisions()) {
      std::cout << d.code.str() << " " << levelName(d.code.level()) << " "
                << (d.code.parent() ? d.code.parent()->str() : "-") << " " << d.name << "\n";
    }
  });
}

}  // namespace tongban::cli
