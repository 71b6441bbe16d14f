// tongban user add | list: staff accounts in a node's database (node/staff/staff.h). Safe to run
// while the node runs: SQLite (WAL, busy timeout) serialises the writes.
#include <termios.h>
#include <unistd.h>

#include <filesystem>
#include <iostream>
#include <string>

#include <CLI/CLI.hpp>

#include "federation/store/database.h"
#include "node/cli/cli_clock.h"
#include "node/cli/commands.h"
#include "node/staff/staff.h"

namespace tongban::cli {

namespace {

Result<std::unique_ptr<Database>> openNodeDb(const std::string& data_dir) {
  std::error_code ec;
  std::filesystem::create_directories(data_dir, ec);
  if (ec) return Status(ErrorCode::kIo, "cannot create data dir " + data_dir + ": " + ec.message());
  DatabaseOptions options;
  options.path = data_dir + "/node.db";
  options.synchronous = Synchronous::kFull;
  return Database::open(options);
}

// One line from stdin without its line ending. On a terminal the typing is not echoed.
Result<std::string> readPassword(bool prompt) {
  const bool tty = isatty(STDIN_FILENO) == 1;
  termios saved{};
  if (tty) {
    if (prompt) std::cerr << "password: " << std::flush;
    tcgetattr(STDIN_FILENO, &saved);
    termios quiet = saved;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
  }
  std::string line;
  const bool got = static_cast<bool>(std::getline(std::cin, line));
  if (tty) {
    tcsetattr(STDIN_FILENO, TCSANOW, &saved);
    std::cerr << "\n";
  }
  if (!got) return Status(ErrorCode::kInvalidArgument, "no password on stdin (give it as the first line)");
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

int addUser(const std::string& data_dir, const std::string& username, const std::string& name,
            const std::string& roles_text) {
  auto roles = parseRoles(roles_text);
  if (!roles) return printFailure(roles.status().withContext("--roles"));
  auto password = readPassword(true);
  if (!password) return printFailure(password.status());
  auto db = openNodeDb(data_dir);
  if (!db) return printFailure(db.status());
  auto staff = StaffDirectory::open(**db);
  if (!staff) return printFailure(staff.status());
  if (auto st = staff->addUser(username, name, *password, *roles, wallClockMs()); !st.isOk()) return printFailure(st);
  std::cout << "user " << username << " (" << name << ") added with roles " << joinRoles(*roles) << "\n";
  return 0;
}

int listUsers(const std::string& data_dir) {
  auto db = openNodeDb(data_dir);
  if (!db) return printFailure(db.status());
  auto staff = StaffDirectory::open(**db);
  if (!staff) return printFailure(staff.status());
  auto users = staff->listUsers();
  if (!users) return printFailure(users.status());
  for (const auto& user : *users) {
    std::cout << user.username << "\t" << user.display_name << "\t" << joinRoles(user.roles) << "\t"
              << (user.disabled ? "disabled" : "active") << "\tsince " << formatTime(user.created_ms) << "\n";
  }
  if (users->empty()) std::cout << "no users yet: add one with 'tongban user add'\n";
  return 0;
}

}  // namespace

void registerUserCommand(CLI::App& app, int* exit_code) {
  auto* user = app.add_subcommand("user", "Staff accounts of this node (clerks, reviewers, ...)");
  user->require_subcommand(1);

  auto* add = user->add_subcommand("add", "Add a staff account; the password is read from stdin");
  static std::string add_dir, add_username, add_name, add_roles;
  static bool password_stdin = false;
  add->add_option("--data-dir", add_dir, "The node's data directory (holds node.db)")->required();
  add->add_option("--username", add_username, "Login name: 2-32 of a-z 0-9 _ . -")->required();
  add->add_option("--name", add_name, "Display name, e.g. 张三")->required();
  add->add_option("--roles", add_roles, "Comma list of clerk, undertaker, reviewer, approver, supervisor, admin")
      ->required();
  add->add_flag("--password-stdin", password_stdin, "Read the password from stdin (always the case; for scripts)");
  add->callback([exit_code] { *exit_code = addUser(add_dir, add_username, add_name, add_roles); });

  auto* list = user->add_subcommand("list", "List the staff accounts");
  static std::string list_dir;
  list->add_option("--data-dir", list_dir, "The node's data directory (holds node.db)")->required();
  list->callback([exit_code] { *exit_code = listUsers(list_dir); });
}

}  // namespace tongban::cli
