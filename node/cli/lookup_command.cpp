// tongban lookup: ask a hall (and through it the levels above) about a holder, a material or a
// credential, and print the answer, who gave it and the route it took.
#include <cstdlib>
#include <iostream>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "node/cli/cli_clock.h"
#include "node/cli/commands.h"
#include "node/cli/api_reply.h"
#include "node/cli/http_client.h"

namespace tongban::cli {

namespace {

using json = nlohmann::json;

struct LookupArgs {
  std::string url, at, holder, material, credential, token;
  int64_t budget_ms = 0;
  bool json_output = false;
};

// "佛山市 (440600)": the name and the code without its trailing zero groups, as people write it.
std::string shortCode(const std::string& code) {
  std::string c = code;
  while (c.size() > 6 && c.size() >= 3 && c.compare(c.size() - 3, 3, "000") == 0) c.resize(c.size() - 3);
  return c;
}

std::string who(const json& division) {
  const std::string name = division.value("name", "");
  const std::string code = shortCode(division.value("division", ""));
  return name.empty() ? code : name + " (" + code + ")";
}

int run(const LookupArgs& a) {
  const int given = !a.holder.empty() + !a.material.empty() + !a.credential.empty();
  if (given != 1) {
    std::cerr << "error: give exactly one of --holder, --material, --credential\n";
    return 2;
  }
  // The hall must be the one the person means: a lookup "at 石湾镇" answered by another hall would
  // show a route that is not theirs.
  auto health = httpCall(a.url, "GET", "/health", "", "");
  if (!health) {
    std::cerr << "error: cannot reach " << a.url << ": " << health.status().toString() << "\n";
    return 1;
  }
  json h = json::parse(health->body, nullptr, false);
  const std::string division = h.is_object() ? h.value("division", "") : "";
  if (division != a.at && shortCode(division) != a.at) {
    std::cerr << "error: the hall at " << a.url << " is " << (division.empty() ? "not a Tongban node" : division)
              << ", not " << a.at << "; pass that hall's URL or --at " << division << "\n";
    return 1;
  }
  std::string target = "/api/lookup?";
  if (!a.holder.empty()) target += "holder=" + percentEncode(a.holder);
  if (!a.material.empty()) target += "material=" + percentEncode(a.material);
  if (!a.credential.empty()) target += "credential=" + percentEncode(a.credential);
  if (a.budget_ms > 0) target += "&budget_ms=" + std::to_string(a.budget_ms);
  std::string token = a.token;
  if (token.empty()) {
    const char* env = std::getenv("TONGBAN_TOKEN");
    token = env ? env : "";
  }
  const DurationMs http_wait = (a.budget_ms > 0 ? a.budget_ms : 30'000) + 5'000;
  auto reply = httpCall(a.url, "GET", target, "", token, "application/json", http_wait);
  if (!reply) {
    std::cerr << "error: " << reply.status().toString() << "\n";
    return 1;
  }
  json doc = json::parse(reply->body, nullptr, false);
  if (reply->status >= 400 || !doc.is_object()) {
    if (doc.is_object() && doc.contains("error")) {
      std::cerr << "error " << reply->status << " " << doc["error"].value("code", "") << ": "
                << doc["error"].value("message", "") << "\n";
    } else {
      std::cerr << "error " << reply->status << ": " << reply->body << "\n";
    }
    return 1;
  }
  if (a.json_output) {
    std::cout << doc.dump(2) << "\n";
    return 0;
  }
  std::string route;
  for (const auto& hop : doc["route"]) route += (route.empty() ? "" : " → ") + shortCode(hop.value("division", ""));
  const std::string outcome = doc.value("outcome", "");
  const int64_t took = doc.value("took_ms", int64_t{0});
  const std::string by = who(doc["answered_by"]);
  if (outcome == "found") {
    std::cout << "found by " << by;
    if (doc["cached_at"].is_string()) std::cout << " (cached at " << shortCode(doc["cached_at"]) << ")";
    std::cout << " via " << route << " in " << took << " ms\n";
    for (const auto& r : doc["records"]) {
      std::cout << "  " << r.value("type", "") << " " << r.value("kind", "") << " " << r.value("id", "") << " of "
                << r.value("holder", "") << ", at " << r.value("issued_at", "") << " "
                << formatTime(r.value("at_ms", int64_t{0}))
                << (r.value("seal_verified", false) ? ", seal verified" : ", vouched for by " + by) << "\n";
      if (r.contains("status") && r["status"].is_object()) {
        const json& s = r["status"];
        std::cout << "    status: " << s.value("verdict", "unknown");
        if (!s.value("reason", "").empty()) std::cout << " (" << s.value("reason", "") << ")";
        if (s["fresh_as_of_ms"].is_number()) {
          std::cout << "; status data as of " << formatTime(s["fresh_as_of_ms"].get<int64_t>()) << " at " << by;
        }
        std::cout << "\n";
      }
    }
    if (doc.value("truncated", false)) std::cout << "  (more records exist than one answer carries)\n";
  } else if (outcome == "not_found") {
    std::cout << "not found: " << by << " has none of the records created before "
              << formatTime(doc.value("complete_as_of_ms", int64_t{0})) << ", via " << route << " in " << took << " ms\n";
    if (doc["held_back_by"].is_object()) {
      std::cout << "  incomplete: records of " << who(doc["held_back_by"]) << " are known only up to "
                << formatTime(doc["held_back_by"].value("since_ms", int64_t{0}))
                << " (its link is down or lagging); a newer record there may exist\n";
    }
  } else {
    std::cout << "could not ask: " << doc.value("reason", "") << " (said by " << by << ", via " << route << ", "
              << took << " ms)";
    if (doc["link_down_since_ms"].is_number()) {
      std::cout << "; the link is down since " << formatTime(doc["link_down_since_ms"].get<int64_t>());
    }
    std::cout << "\n";
  }
  if (doc.contains("note")) std::cout << "  note: " << doc.value("note", "") << "\n";
  return outcome == "could_not_ask" ? 3 : 0;
}

}  // namespace

void registerLookupCommand(CLI::App& app, int* exit_code) {
  static LookupArgs a;
  auto* cmd = app.add_subcommand(
      "lookup", "Ask a hall, and through it the levels above, what a holder has or whether a material or credential is genuine");
  cmd->add_option("--url", a.url, "The hall's HTTP API, e.g. http://127.0.0.1:8080")->required();
  cmd->add_option("--at", a.at, "The hall's division code (checked against the hall's /health)")->required();
  cmd->add_option("--holder", a.holder, "Resident ID or unified social credit code");
  cmd->add_option("--material", a.material, "A material's SHA-256 (64 hex digits)");
  cmd->add_option("--credential", a.credential, "A credential number");
  cmd->add_option("--budget-ms", a.budget_ms, "How long to wait for the answer (default: the node's, 3000)");
  cmd->add_option("--token", a.token, "Session token (default: $TONGBAN_TOKEN)");
  cmd->add_flag("--json", a.json_output, "Print the API's JSON");
  cmd->footer("Exit status: 0 found or not found, 3 could not ask, 1 error, 2 bad usage.");
  cmd->callback([exit_code] { *exit_code = run(a); });
}

}  // namespace tongban::cli
