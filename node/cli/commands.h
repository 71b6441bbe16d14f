// The `tongban` command line: one function per command group registers its subcommands.
// Each subcommand sets *exit_code when it runs (0 success, 1 failure, 2 bad usage).
#pragma once

namespace CLI { class App; }
namespace tongban { class Status; }

namespace tongban::cli {

void registerKeysCommands(CLI::App& app, int* exit_code);
void registerNodeCommand(CLI::App& app, int* exit_code);
void registerStatusCommand(CLI::App& app, int* exit_code);
void registerSimCommand(CLI::App& app, int* exit_code);
void registerTopologyCommand(CLI::App& app, int* exit_code);
void registerUserCommand(CLI::App& app, int* exit_code);
void registerCaseCommands(CLI::App& app, int* exit_code);
void registerLookupCommand(CLI::App& app, int* exit_code);
// verify, credential, identity, keys publish-revocation (after registerKeysCommands).
void registerCredentialCommands(CLI::App& app, int* exit_code);

// Prints "error: <what went wrong>" on stderr and returns 1, the failure exit code.
int printFailure(const Status& st);

}  // namespace tongban::cli
