// tongban: one binary for every level of the network. See `tongban --help`.
#include <iostream>

#include <CLI/CLI.hpp>

#include "node/app/node.h"
#include "node/cli/commands.h"

int tongban::cli::printFailure(const Status& st) {
  std::cerr << "error: " << st.toString() << "\n";
  return 1;
}

int main(int argc, char** argv) {
  CLI::App app{"Tongban (通办): one node per division of a city's government service network"};
  app.set_version_flag("--version", std::string("tongban ") + tongban::kSoftwareVersion);
  app.require_subcommand(1);
  int exit_code = 0;
  tongban::cli::registerKeysCommands(app, &exit_code);
  tongban::cli::registerNodeCommand(app, &exit_code);
  tongban::cli::registerStatusCommand(app, &exit_code);
  tongban::cli::registerSimCommand(app, &exit_code);
  tongban::cli::registerTopologyCommand(app, &exit_code);
  tongban::cli::registerUserCommand(app, &exit_code);
  tongban::cli::registerCaseCommands(app, &exit_code);
  tongban::cli::registerLookupCommand(app, &exit_code);
  tongban::cli::registerCredentialCommands(app, &exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return exit_code;
}
