// tongban keys init-root | issue | show: the key ceremony (docs/operations.md).
#include <cstdio>
#include <iostream>

#include <CLI/CLI.hpp>

#include "federation/trust/certificate.h"
#include "federation/transport/random.h"
#include "federation/trust/envelope.h"
#include "federation/util/files.h"
#include "node/cli/commands.h"
#include "node/cli/cli_clock.h"

namespace tongban::cli {

namespace {
int initRoot(const std::string& division_text, const std::string& name, const std::string& out, int valid_days) {
  auto division = DivisionCode::parse(division_text);
  if (!division) return printFailure(division.status().withContext("--division"));
  const TimeMs now = wallClockMs();
  auto root = createRootIdentity(*division, name, KeyPair::generate(), now - 3600 * 1000,
                                 now + static_cast<TimeMs>(valid_days) * 24 * 3600 * 1000);
  if (!root) return printFailure(root.status());
  if (auto st = saveIdentity(out, *root); !st.isOk()) return printFailure(st);
  std::cout << "root key and self-signed certificate for " << division->str() << " (" << name << ") written to "
            << out << "\n";
  return 0;
}

int issue(const std::string& parent_dir, const std::string& division_text, const std::string& name,
          const std::string& out, int valid_days) {
  auto parent = loadIdentity(parent_dir);
  if (!parent) return printFailure(parent.status().withContext("--parent"));
  auto division = DivisionCode::parse(division_text);
  if (!division) return printFailure(division.status().withContext("--division"));
  const TimeMs now = wallClockMs();
  // Serials only need to be unique per issuer; time plus entropy is unique without a registry.
  const uint64_t serial = (static_cast<uint64_t>(now) << 16) ^ (seedFromEntropy() & 0xffff);
  auto child = issueChildIdentity(*parent, *division, name, KeyPair::generate(), serial, now - 3600 * 1000,
                                  now + static_cast<TimeMs>(valid_days) * 24 * 3600 * 1000);
  if (!child) return printFailure(child.status());
  if (auto st = saveIdentity(out, *child); !st.isOk()) return printFailure(st);
  std::cout << levelName(division->level()) << " " << division->str() << " (" << name << ") key issued by "
            << parent->division.str() << ", written to " << out << "\n";
  return 0;
}

int revoke(const std::string& issuer_dir, const std::string& holder_dir, const std::string& reason,
           const std::string& out) {
  auto issuer = loadIdentity(issuer_dir);
  if (!issuer) return printFailure(issuer.status().withContext("--issuer"));
  // Only the public half of the lost key is needed: node.pub and node.cert, never node.key.
  auto cert = readFileBytes(holder_dir + "/node.cert");
  if (!cert) return printFailure(cert.status().withContext("--holder"));
  auto holder = peekCertificate(*cert);
  if (!holder) return printFailure(holder.status().withContext("--holder " + holder_dir + "/node.cert"));
  auto signed_revocation = signKeyRevocation(*issuer, holder->division, holder->public_key, wallClockMs(), reason);
  if (!signed_revocation) return printFailure(signed_revocation.status());
  if (auto st = writeFileAtomically(out, *signed_revocation); !st.isOk()) return printFailure(st);
  std::cout << "key of " << holder->division.str() << " revoked by " << issuer->division.str() << " from "
            << formatTime(wallClockMs()) << "; give " << out << " to every node (config key 'revocations')\n";
  return 0;
}

int show(const std::string& dir) {
  auto id = loadIdentity(dir);
  if (!id) return printFailure(id.status());
  std::cout << "division   " << id->division.str() << " (" << levelName(id->division.level()) << ") " << id->name << "\n"
            << "public key " << hexEncode(id->keys.public_key.data(), id->keys.public_key.size()) << "\n";
  auto print = [](const char* label, const Bytes& cert) {
    auto info = peekCertificate(cert);
    if (!info) {
      std::cout << label << " <unreadable: " << info.status().toString() << ">\n";
      return;
    }
    std::cout << label << " " << info->division.str() << " issued by " << info->issuer.str() << ", serial "
              << info->serial << ", valid " << formatTime(info->valid_from_ms) << " .. "
              << formatTime(info->valid_until_ms) << "\n";
  };
  for (const auto& c : id->chain) print("chain     ", c);
  print("root      ", id->root_certificate);
  return 0;
}
}  // namespace

void registerKeysCommands(CLI::App& app, int* exit_code) {
  auto* keys = app.add_subcommand("keys", "Create and inspect node keys and certificates");
  keys->require_subcommand(1);

  auto* root = keys->add_subcommand("init-root", "Create the city's root key and self-signed certificate");
  static std::string root_division, root_name = "", root_out;
  static int root_days = 3650;
  root->add_option("--division", root_division, "City division code, e.g. 440600000000")->required();
  root->add_option("--name", root_name, "Name of the city, e.g. 佛山市")->default_val("city");
  root->add_option("--out", root_out, "Key directory to create")->required();
  root->add_option("--valid-days", root_days, "Validity of the root certificate in days")->default_val(3650);
  root->callback([exit_code] { *exit_code = initRoot(root_division, root_name, root_out, root_days); });

  auto* iss = keys->add_subcommand("issue", "Issue a node key and certificate signed by its parent");
  static std::string parent_dir, child_division, child_name, child_out;
  static int child_days = 1825;
  iss->add_option("--parent", parent_dir, "Parent's key directory (holds node.key)")->required();
  iss->add_option("--division", child_division, "Division code of the new node (a child of the parent's)")->required();
  iss->add_option("--name", child_name, "Name of the division")->default_val("");
  iss->add_option("--out", child_out, "Key directory to create")->required();
  iss->add_option("--valid-days", child_days, "Validity of the certificate in days")->default_val(1825);
  iss->callback([exit_code] {
    *exit_code = issue(parent_dir, child_division, child_name.empty() ? child_division : child_name, child_out, child_days);
  });

  auto* rv = keys->add_subcommand("revoke", "Revoke a node's key (lost or stolen): everything it signs from now on is refused");
  static std::string rv_issuer, rv_holder, rv_reason, rv_out;
  rv->add_option("--issuer", rv_issuer, "Key directory of an ancestor of the holder (or the city)")->required();
  rv->add_option("--holder", rv_holder, "Key directory (node.cert is enough) of the key to revoke")->required();
  rv->add_option("--reason", rv_reason, "Why, for the record")->default_val("key lost");
  rv->add_option("--out", rv_out, "File to write the signed revocation to")->required();
  rv->callback([exit_code] { *exit_code = revoke(rv_issuer, rv_holder, rv_reason, rv_out); });

  auto* sh = keys->add_subcommand("show", "Print a key directory's identity and chain");
  static std::string show_dir;
  sh->add_option("--dir", show_dir, "Key directory")->required();
  sh->callback([exit_code] { *exit_code = show(show_dir); });
}

}  // namespace tongban::cli
