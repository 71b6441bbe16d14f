// tongban login | case submit | show | step | list: drive a hall's cases through its HTTP API,
// for the demo and for a person at a terminal. The token comes from --token or TONGBAN_TOKEN.
#include <cstdlib>
#include <iostream>
#include <sstream>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "federation/util/files.h"
#include "node/cli/cli_clock.h"
#include "node/cli/commands.h"
#include "node/cli/api_reply.h"
#include "node/cli/http_client.h"

namespace tongban::cli {

namespace {

using json = nlohmann::json;

void printCase(const json& c) {
  std::cout << c.value("number", "") << "  " << c.value("item_name", "") << " (" << c.value("item_code", "") << ")\n"
            << "  state " << c.value("state", "") << ", light " << c.value("light", "");
  if (!c.value("deadline", "").empty()) std::cout << ", due " << c.value("deadline", "");
  std::cout << ", decide level " << c.value("decided_at", "") << "\n";
  if (!c.value("refusal_notice", "").empty()) std::cout << "  " << c.value("refusal_notice", "") << "\n";
  if (c.contains("held_for")) std::cout << "  forwarded here by " << c.value("held_for", "") << " (accepted there)\n";
  if (c.value("forwarded", false)) std::cout << "  where: " << c.value("location", "") << "\n";
  if (c.contains("facts") && c["facts"].is_object() && !c["facts"].empty()) {
    std::cout << "  facts:";
    for (const auto& [k, v] : c["facts"].items()) std::cout << " " << k << "=" << (v.is_string() ? v.get<std::string>() : v.dump());
    std::cout << "\n";
  }
  if (c.contains("credential") && c["credential"].is_string()) {
    std::cout << "  credential " << c["credential"].get<std::string>() << " (tongban credential show --number "
              << c["credential"].get<std::string>() << ")\n";
  }
  auto printSteps = [](const json& steps) {
    for (const auto& s : steps) {
      std::cout << "  - " << formatTime(s.value("at_ms", int64_t{0})) << " " << s.value("step", "");
      if (s.contains("actor")) std::cout << " by " << s.value("actor", "");
      // A refusal's detail is the notice printed above.
      if (!s.value("detail", "").empty() && s.value("step", "") != "refuse") std::cout << " (" << s.value("detail", "") << ")";
      std::cout << "\n";
    }
  };
  if (c.contains("steps")) printSteps(c["steps"]);
  if (c.contains("decider_steps") && !c["decider_steps"].empty()) {
    std::cout << "  at " << c.value("decider_name", "") << " (" << c.value("decider", "") << "):\n";
    printSteps(c["decider_steps"]);
  }
  if (c.contains("passages")) {
    std::cout << "  route through this node:\n";
    for (const auto& p : c["passages"]) {
      std::cout << "  - " << formatTime(p.value("at_ms", int64_t{0})) << " " << p.value("what", "") << " "
                << p.value("action", "");
      if (!p.value("from", "").empty()) std::cout << " from " << p.value("from", "");
      if (!p.value("to", "").empty()) std::cout << " to " << p.value("to", "");
      std::cout << "  [" << p.value("route", "") << "]\n";
    }
  }
}

struct Args {
  std::string url, token, number, item, applicant, name, contact, note, step, department, decision, state, light;
  std::string username;
  std::vector<std::string> materials;  // kind=path
  std::vector<std::string> facts;      // name=value
  bool json_output = false;
};

int login(const Args& a) {
  std::string password;
  std::getline(std::cin, password);
  json body = {{"username", a.username}, {"password", password}};
  json out;
  if (int rc = checkReply(httpCall(a.url, "POST", "/api/login", body.dump(), ""), &out)) return rc;
  std::cout << out.value("token", "") << "\n";
  return 0;
}

int submit(const Args& a) {
  json materials = json::array();
  for (const auto& spec : a.materials) {
    const auto eq = spec.find('=');
    if (eq == std::string::npos) {
      std::cerr << "error: --material takes kind=path (got '" << spec << "')\n";
      return 2;
    }
    const std::string kind = spec.substr(0, eq), path = spec.substr(eq + 1);
    auto content = readFileBytes(path);
    if (!content) {
      std::cerr << "error: --material " << kind << ": " << content.status().toString() << "\n";
      return 1;
    }
    json uploaded;
    if (int rc = checkReply(httpCall(a.url, "POST", "/api/materials?kind=" + percentEncode(kind) + "&holder=" + percentEncode(a.applicant),
                                std::string(content->begin(), content->end()), sessionToken(a.token), "application/octet-stream"),
                       &uploaded)) {
      return rc;
    }
    materials.push_back({{"kind", kind}, {"hash", uploaded.value("hash", "")}});
  }
  json facts = json::object();
  for (const auto& spec : a.facts) {
    const auto eq = spec.find('=');
    if (eq == std::string::npos || eq == 0) {
      std::cerr << "error: --fact takes name=value (got '" << spec << "')\n";
      return 2;
    }
    facts[spec.substr(0, eq)] = spec.substr(eq + 1);
  }
  json body = {{"item_code", a.item}, {"applicant_id", a.applicant}, {"applicant_name", a.name},
               {"contact", a.contact}, {"note", a.note}, {"materials", materials}, {"facts", facts}};
  auto reply = httpCall(a.url, "POST", "/api/cases", body.dump(), sessionToken(a.token));
  json out;
  if (int rc = checkReply(reply, &out, /*also_ok=*/422)) return rc;  // 422: recorded but refused
  if (a.json_output) {
    std::cout << out.dump(2) << "\n";
  } else {
    printCase(out);
  }
  return reply->status == 422 ? 3 : 0;  // 3: recorded but refused (不予受理)
}

int show(const Args& a) {
  const std::string t = sessionToken(a.token);
  const std::string target = "/api/cases/" + percentEncode(a.number) + (t.empty() ? "/status" : "");
  json out;
  if (int rc = checkReply(httpCall(a.url, "GET", target, "", t), &out)) return rc;
  if (a.json_output) {
    std::cout << out.dump(2) << "\n";
  } else {
    printCase(out);
  }
  return 0;
}

int step(const Args& a) {
  json body = {{"step", a.step}, {"note", a.note}, {"department", a.department}, {"decision", a.decision}};
  json out;
  if (int rc = checkReply(httpCall(a.url, "POST", "/api/cases/" + percentEncode(a.number) + "/steps", body.dump(),
                              sessionToken(a.token)),
                     &out)) {
    return rc;
  }
  if (a.json_output) {
    std::cout << out.dump(2) << "\n";
  } else {
    printCase(out);
  }
  return 0;
}

int list(const Args& a) {
  std::string target = "/api/cases?limit=100";
  if (!a.state.empty()) target += "&state=" + percentEncode(a.state);
  if (!a.light.empty()) target += "&light=" + percentEncode(a.light);
  json out;
  if (int rc = checkReply(httpCall(a.url, "GET", target, "", sessionToken(a.token)), &out)) return rc;
  if (a.json_output) {
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  for (const auto& c : out["cases"]) {
    std::cout << c.value("number", "") << "  " << c.value("state", "") << "  " << c.value("light", "") << "  due "
              << c.value("deadline", "-") << "  " << c.value("item_name", "") << "\n";
  }
  return 0;
}

}  // namespace

void registerCaseCommands(CLI::App& app, int* exit_code) {
  static Args a;
  auto url = [](CLI::App* cmd) {
    cmd->add_option("--url", a.url, "The hall's HTTP API, e.g. http://127.0.0.1:8080")->required();
  };
  auto tok = [](CLI::App* cmd) { cmd->add_option("--token", a.token, "Session token (default: $TONGBAN_TOKEN)"); };

  auto* login_cmd = app.add_subcommand("login", "Log in to a hall; reads the password from stdin, prints the token");
  url(login_cmd);
  login_cmd->add_option("--username", a.username, "Staff account")->required();
  login_cmd->callback([exit_code] { *exit_code = login(a); });

  auto* cases = app.add_subcommand("case", "Take in and move cases at a hall");
  cases->require_subcommand(1);
  auto* sub = cases->add_subcommand("submit", "Take in an application (uploads each --material first)");
  url(sub);
  tok(sub);
  sub->add_option("--item", a.item, "Catalogue item code, e.g. CG-0101")->required();
  sub->add_option("--applicant-id", a.applicant, "Resident ID or unified social credit code")->required();
  sub->add_option("--name", a.name, "Applicant's name")->required();
  sub->add_option("--contact", a.contact, "Phone number or address")->required();
  sub->add_option("--material", a.materials, "kind=path of a scanned material (repeatable)");
  sub->add_option("--note", a.note, "Clerk's note");
  sub->add_option("--fact", a.facts, "name=value: a key fact the credential will state, e.g. plates=粤E12345 (repeatable)");
  sub->add_flag("--json", a.json_output, "Print the JSON answer");
  sub->callback([exit_code] { *exit_code = submit(a); });

  auto* sh = cases->add_subcommand("show", "Show a case (public status without a token, full record with one)");
  url(sh);
  tok(sh);
  sh->add_option("--number", a.number, "Case number")->required();
  sh->add_flag("--json", a.json_output, "Print the JSON answer");
  sh->callback([exit_code] { *exit_code = show(a); });

  auto* st = cases->add_subcommand("step", "Move a case one step (undertake, review, approve, deny, conclude, supplement, resume)");
  url(st);
  tok(st);
  st->add_option("--number", a.number, "Case number")->required();
  st->add_option("--step", a.step, "The step")->required();
  st->add_option("--note", a.note, "Note for the record");
  st->add_option("--department", a.department, "Joint review: the reviewing department");
  st->add_option("--decision", a.decision, "Joint review: approve or deny");
  st->add_flag("--json", a.json_output, "Print the JSON answer");
  st->callback([exit_code] { *exit_code = step(a); });

  auto* ls = cases->add_subcommand("list", "List the hall's cases, newest first");
  url(ls);
  tok(ls);
  ls->add_option("--state", a.state, "Only this state");
  ls->add_option("--light", a.light, "Only this light (green, yellow, red)");
  ls->add_flag("--json", a.json_output, "Print the JSON answer");
  ls->callback([exit_code] { *exit_code = list(a); });
}

}  // namespace tongban::cli
