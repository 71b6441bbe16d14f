// tongban verify | credential show|list|revoke|suspend|reinstate|renew | identity register|show |
// keys publish-revocation: credentials (证照) from the command line.
//
// `tongban verify` checks a citizen-held credential (its text form "TBC1...." or the sealed
// bytes) either at a station (--url: the station's own data, with revocations and how fresh they
// are) or OFFLINE against the city's root certificate (--root / --keys): signature, issuer chain
// and validity, but no revocation status — it says so; without --catalogue not the issuer's
// authority for the item either, and a genuine one then exits 4, not 0.
#include <cstdlib>
#include <iostream>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "federation/trust/envelope.h"
#include "federation/util/files.h"
#include "node/calendar/calendar.h"
#include "node/catalogue/catalogue.h"
#include "node/cli/cli_clock.h"
#include "node/cli/commands.h"
#include "node/cli/api_reply.h"
#include "node/cli/http_client.h"
#include "node/credentials/credentials.h"

namespace tongban::cli {

namespace {

using json = nlohmann::json;

constexpr int kExitValid = 0;
constexpr int kExitError = 1;
constexpr int kExitNotValid = 3;
// Offline without --catalogue: genuine, under this root, in its validity period — but nothing
// said whether its issuer may issue it for that item, so it is not "valid" (0).
constexpr int kExitValidAuthorityUnchecked = 4;

std::string trim(const std::string& s) {
  const auto first = s.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return "";
  return s.substr(first, s.find_last_not_of(" \t\r\n") - first + 1);
}

// key=value pairs from repeated options into a JSON object.
bool pairsToJson(const std::vector<std::string>& specs, const char* option, json* out) {
  *out = json::object();
  for (const auto& spec : specs) {
    const auto eq = spec.find('=');
    if (eq == std::string::npos || eq == 0) {
      std::cerr << "error: " << option << " takes name=value (got '" << spec << "')\n";
      return false;
    }
    (*out)[spec.substr(0, eq)] = spec.substr(eq + 1);
  }
  return true;
}

std::string str(const json& j, const char* key) {
  if (!j.is_object() || !j.contains(key) || !j[key].is_string()) return "";
  return j[key].get<std::string>();
}
int64_t num(const json& j, const char* key) {
  if (!j.is_object() || !j.contains(key) || !j[key].is_number()) return 0;
  return j[key].get<int64_t>();
}

// ---- printing a credential and a verification (the API's JSON shapes) ----

// The last valid day, or what a null one means: the credential has no end date.
std::string validUntilText(const json& c) {
  return c.contains("valid_until") && c["valid_until"].is_string() ? str(c, "valid_until") : "long-term (长期), no end date";
}

void printCredential(const json& c, const std::string& indent) {
  std::cout << indent << "credential  " << str(c, "number") << " version " << num(c, "version") << ", "
            << str(c, "kind") << "\n"
            << indent << "holder      " << str(c, "holder_name") << " (" << str(c, "holder_id") << ")\n"
            << indent << "item        " << str(c, "item_code") << " " << str(c, "item_name") << ", case "
            << str(c, "case_number") << " accepted at " << str(c, "origin") << "\n"
            << indent << "issued by   " << str(c, "issuer_name") << " (" << str(c, "issuer") << ") at "
            << formatTime(num(c, "issued_at_ms")) << "\n"
            << indent << "valid       " << str(c, "valid_from") << " .. " << validUntilText(c) << "\n";
  if (c.contains("facts") && c["facts"].is_object() && !c["facts"].empty()) {
    std::cout << indent << "facts      ";
    for (const auto& [k, v] : c["facts"].items()) std::cout << " " << k << "=" << (v.is_string() ? v.get<std::string>() : v.dump());
    std::cout << "\n";
  }
}

void printStatus(const json& s, const std::string& indent) {
  if (!s.is_object()) {
    std::cout << indent << "status      none recorded (never revoked or suspended)\n";
    return;
  }
  std::cout << indent << "status      " << str(s, "status") << " (status version " << num(s, "version") << ") by "
            << str(s, "by_name") << " (" << str(s, "by") << ") at " << formatTime(num(s, "at_ms")) << ": "
            << str(s, "reason") << "\n";
}

void printChain(const json& chain, const std::string& root) {
  std::cout << "issuer chain ";
  bool first = true;
  for (const auto& c : chain) {
    std::cout << (first ? "" : " → ") << str(c, "name") << " (" << str(c, "division") << ", " << str(c, "level") << ")";
    first = false;
  }
  std::cout << (first ? "" : " → ") << "root " << root << "\n";
}

// ---- verify ----

struct VerifyArgs {
  std::string text, file, url, root, keys, catalogue;
  std::vector<std::string> revocations;
  bool json_output = false;
};

// The credential as text (for a station) and as sealed bytes (offline); a file may hold either.
Status readCredential(const VerifyArgs& a, std::string* text, Bytes* sealed) {
  if (!a.text.empty()) {
    *text = trim(a.text);
  } else {
    auto content = readFileBytes(a.file);
    if (!content) return content.status().withContext("--file " + a.file);
    const std::string as_text = trim(std::string(content->begin(), content->end()));
    if (as_text.rfind("TBC1.", 0) == 0) {
      *text = as_text;
    } else {
      *sealed = *content;  // the raw sealed bytes
      *text = credentialToText(*content);
      return Status::ok();
    }
  }
  if (text->empty()) return Status(ErrorCode::kInvalidArgument, "the credential text is empty");
  auto bytes = credentialFromText(*text);
  if (bytes) *sealed = std::move(bytes).value();  // else: the station (or the offline check) says why
  return Status::ok();
}

int verifyAtStation(const VerifyArgs& a, const std::string& text) {
  json body = {{"text", text}};
  json v;
  if (int rc = checkReply(httpCall(a.url, "POST", "/api/credentials/verify", body.dump(), ""), &v)) return rc;
  if (a.json_output) {
    std::cout << v.dump(2) << "\n";
    return str(v, "verdict") == "valid" ? kExitValid : kExitNotValid;
  }
  std::string verdict = str(v, "verdict");
  std::string upper;
  for (char c : verdict) upper.push_back(c == '_' ? ' ' : static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
  std::cout << upper << ": " << str(v, "reason") << "\n";
  if (v.contains("credential") && v["credential"].is_object()) printCredential(v["credential"], "");
  if (v.contains("chain") && !v["chain"].empty()) printChain(v["chain"], str(v, "root"));
  if (v.contains("credential") && v["credential"].is_object()) {
    printStatus(v["status"], "");
    if (num(v, "current_version") > 0) std::cout << "current     version " << num(v, "current_version") << " at this station\n";
  }
  const TimeMs fresh = num(v, "status_fresh_as_of_ms");
  const TimeMs checked = num(v, "checked_at_ms");
  std::cout << "status data: every revocation and suspension issued before " << formatTime(fresh)
            << " has reached this station";
  if (checked > 0 && fresh > 0) std::cout << " (" << formatAgo(fresh, checked) << " by its clock)";
  std::cout << "\n";
  return verdict == "valid" ? kExitValid : kExitNotValid;
}

int verifyOffline(const VerifyArgs& a, const std::string& text, const Bytes& sealed) {
  const std::string root_path = !a.root.empty() ? a.root : a.keys + "/root.cert";
  auto root_cert = readFileBytes(root_path);
  if (!root_cert) {
    std::cerr << "error: " << root_cert.status().withContext(a.root.empty() ? "--keys" : "--root").toString() << "\n";
    return kExitError;
  }
  KindRegistry kinds;
  registerCredentialKinds(kinds);
  auto verifier = Verifier::create(*root_cert, &kinds);
  if (!verifier) {
    std::cerr << "error: " << root_path << " is not a usable root certificate: " << verifier.status().toString() << "\n";
    return kExitError;
  }
  for (const auto& path : a.revocations) {
    auto rev = readFileBytes(path);
    if (!rev) {
      std::cerr << "error: " << rev.status().withContext("--revocation").toString() << "\n";
      return kExitError;
    }
    if (Status st = verifier->addRevocation(*rev); !st.isOk()) {
      std::cerr << "error: --revocation " << path << " is not a valid key revocation: " << st.toString() << "\n";
      return kExitError;
    }
  }
  std::optional<Catalogue> catalogue;
  if (!a.catalogue.empty()) {
    auto content = readFileBytes(a.catalogue);
    if (!content) {
      std::cerr << "error: " << content.status().withContext("--catalogue").toString() << "\n";
      return kExitError;
    }
    auto parsed = parseCatalogueJson(std::string(content->begin(), content->end()), 1, 0);
    if (!parsed) {
      std::cerr << "error: --catalogue " << a.catalogue << ": " << parsed.status().toString() << "\n";
      return kExitError;
    }
    catalogue = std::move(parsed).value();
  }
  const CertificateInfo& root = verifier->root();
  const std::string root_name = root.name + " (" + root.division.str() + ")";
  const TimeMs now = wallClockMs();
  json out = {{"offline", true}, {"root", root_name}, {"checked_at_ms", now}, {"status", nullptr},
              {"status_checked", false}, {"authority_checked", catalogue.has_value()}};
  auto finish = [&](const std::string& verdict, const std::string& reason) {
    out["verdict"] = verdict;
    out["reason"] = reason;
    const bool unchecked = verdict == "valid" && !catalogue;
    if (a.json_output) {
      std::cout << out.dump(2) << "\n";
    } else {
      std::string upper;
      for (char c : verdict) upper.push_back(c == '_' ? ' ' : static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
      std::cout << upper << (unchecked ? " (offline check, issuer's authority NOT checked)" : " (offline check)") << ": "
                << reason << "\n";
      if (out.contains("credential")) printCredential(out["credential"], "");
      if (out.contains("chain")) printChain(out["chain"], root_name);
      std::cout << "status      NOT checked: this was an offline check with no station data, so a revocation or\n"
                   "            suspension is not known here; verify at a station (--url) for the status\n";
    }
    if (verdict != "valid") return kExitNotValid;
    return unchecked ? kExitValidAuthorityUnchecked : kExitValid;
  };
  if (sealed.empty()) {
    auto bytes = credentialFromText(text);
    return finish("invalid", bytes ? "empty credential" : bytes.status().message());
  }
  auto opened = verifier->open(sealed, root.division, now, nullptr);
  if (!opened) {
    const Status& st = opened.status();
    switch (st.code()) {
      case ErrorCode::kBadSignature: return finish("invalid", "the document was altered after it was signed: " + st.message());
      case ErrorCode::kMalformed:
      case ErrorCode::kOversize: return finish("invalid", "this is not a complete credential (cut short or garbled): " + st.message());
      case ErrorCode::kUntrustedChain: return finish("invalid", "not issued under the root " + root_name + ": " + st.message());
      case ErrorCode::kRevoked: return finish("invalid", "signed with a key revoked before the issue time: " + st.message());
      case ErrorCode::kCertificateExpired: return finish("invalid", "the issuer's certificate was not valid at the issue time: " + st.message());
      default: return finish("invalid", st.toString());
    }
  }
  json chain = json::array();
  for (const auto& c : opened->chain) {
    chain.push_back({{"division", c.division.str()}, {"name", c.name}, {"level", levelName(c.level())},
                     {"valid_until_ms", c.valid_until_ms}});
  }
  out["chain"] = chain;
  if (opened->kind != kCredentialKind) {
    return finish("invalid", "a signed document of kind " + std::to_string(opened->kind) + ", not a credential");
  }
  auto c = decodeCredentialPayload(opened->payload);
  if (!c) return finish("invalid", c.status().message());
  json facts = json::object();
  for (const auto& [k, v] : c->facts) facts[k] = v;
  out["credential"] = {{"number", c->number}, {"version", c->version}, {"kind", c->kind}, {"holder_id", c->holder_id},
                       {"holder_name", c->holder_name}, {"issuer", c->issuer}, {"issuer_name", c->issuer_name},
                       {"item_code", c->item_code}, {"item_name", c->item_name}, {"case_number", c->case_number},
                       {"origin", c->origin}, {"valid_from", CivilDate::fromTimeMs(c->valid_from_ms).toString()},
                       {"valid_from_ms", c->valid_from_ms},
                       {"valid_until", c->valid_until_ms ? json(CivilDate::fromTimeMs(c->valid_until_ms - 1).toString()) : json(nullptr)},
                       {"valid_until_ms", c->valid_until_ms}, {"long_term", c->valid_until_ms == 0}, {"facts", facts},
                       {"issued_at_ms", c->issued_at_ms}};
  // Authority: the signer is the issuer the document and its number name, and covers the hall
  // that accepted the case; with the catalogue, also the item's decide level and credential kind.
  const std::string signer = opened->signer.str();
  if (c->issuer != signer) return finish("invalid", "issued without authority: it names issuer " + c->issuer + " but is signed by " + signer);
  if (c->number.rfind(signer + "-L", 0) != 0) {
    return finish("invalid", "issued without authority: number " + c->number + " was not given by its signer " + signer);
  }
  auto origin = DivisionCode::parse(c->origin);
  if (!origin || !opened->signer.covers(*origin)) {
    return finish("invalid", "issued without authority: " + signer + " may not issue for a case accepted at " + c->origin);
  }
  std::string authority = "issuer's level for the item not checked (pass --catalogue data/catalog.json)";
  if (catalogue) {
    const CatalogueItem* item = catalogue->find(c->item_code);
    if (!item) return finish("invalid", "issued without authority: item " + c->item_code + " is not in " + a.catalogue);
    if (item->decide_level != opened->signer.level()) {
      return finish("invalid", "issued without authority: " + signer + " (a " + levelName(opened->signer.level()) +
                                   ") may not issue for " + c->item_code + ", decided at " + levelName(item->decide_level) + " level");
    }
    if (item->issues != c->kind) return finish("invalid", "item " + c->item_code + " issues '" + item->issues + "', not '" + c->kind + "'");
    authority = "with authority for " + c->item_code + " (decided at " + levelName(item->decide_level) + " level)";
  }
  const std::string issuer = c->issuer_name + " (" + c->issuer + ")";
  if (now < c->valid_from_ms) return finish("not_yet_valid", "valid from " + CivilDate::fromTimeMs(c->valid_from_ms).toString());
  if (c->valid_until_ms != 0 && now >= c->valid_until_ms) {
    return finish("expired", "expired after " + CivilDate::fromTimeMs(c->valid_until_ms - 1).toString());
  }
  return finish("valid", "genuine signature and chain, issued by " + issuer + "; " + authority + "; valid" +
                             (c->valid_until_ms ? " until " + CivilDate::fromTimeMs(c->valid_until_ms - 1).toString()
                                                : " with no end date (long-term, 长期)") +
                             "; revocation status NOT checked");
}

int runVerify(const VerifyArgs& a) {
  if (a.text.empty() == a.file.empty()) {
    std::cerr << "error: give the credential with exactly one of --text or --file\n";
    return kExitError;
  }
  const int where = !a.url.empty() + !a.root.empty() + !a.keys.empty();
  if (where != 1) {
    std::cerr << "error: give exactly one of --url (ask a station: with revocation status) or --root / --keys "
                 "(offline: signature, chain and validity only)\n";
    return kExitError;
  }
  std::string text;
  Bytes sealed;
  if (Status st = readCredential(a, &text, &sealed); !st.isOk()) {
    std::cerr << "error: " << st.toString() << "\n";
    return kExitError;
  }
  return a.url.empty() ? verifyOffline(a, text, sealed) : verifyAtStation(a, text);
}

// ---- credential show|list|revoke|suspend|reinstate|renew ----

struct CredArgs {
  std::string url, token, number, holder, reason, valid_until;
  std::vector<std::string> facts;
  bool json_output = false;
  bool text_only = false;
};

void printHeld(const json& c) {
  printCredential(c, "");
  printStatus(c["status"], "");
  if (c.contains("verdict")) std::cout << "here        " << str(c, "verdict") << ": " << str(c, "reason") << "\n";
  if (c.contains("text")) std::cout << "text        " << str(c, "text") << "\n";
}

int credShow(const CredArgs& a) {
  json c;
  if (int rc = checkReply(httpCall(a.url, "GET", "/api/credentials/" + percentEncode(a.number), "", sessionToken(a.token)), &c)) return rc;
  if (a.text_only) {
    std::cout << str(c, "text") << "\n";
  } else if (a.json_output) {
    std::cout << c.dump(2) << "\n";
  } else {
    printHeld(c);
  }
  return 0;
}

int credList(const CredArgs& a) {
  json out;
  if (int rc = checkReply(httpCall(a.url, "GET", "/api/credentials?holder=" + percentEncode(a.holder), "", sessionToken(a.token)), &out)) {
    return rc;
  }
  if (a.json_output) {
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  if (out["credentials"].empty()) std::cout << "no credentials of " << a.holder << " at this node\n";
  for (const auto& c : out["credentials"]) {
    const std::string status = c["status"].is_object() ? str(c["status"], "status") : "active";
    std::cout << str(c, "number") << " v" << num(c, "version") << "  " << str(c, "kind") << "  " << status << "  valid "
              << str(c, "valid_from") << " .. " << validUntilText(c) << "  by "
              << str(c, "issuer_name") << "\n";
  }
  return 0;
}

int credSetStatus(const CredArgs& a, const std::string& status) {
  json body = {{"status", status}, {"reason", a.reason}};
  json s;
  if (int rc = checkReply(httpCall(a.url, "POST", "/api/credentials/" + percentEncode(a.number) + "/status", body.dump(),
                              sessionToken(a.token)),
                     &s)) {
    return rc;
  }
  if (a.json_output) {
    std::cout << s.dump(2) << "\n";
  } else {
    std::cout << a.number << " is now " << str(s, "status") << " (status version " << num(s, "version") << ", by "
              << str(s, "by_name") << " at " << formatTime(num(s, "at_ms")) << "): " << str(s, "reason") << "\n"
              << "it travels to every node with the status feed; each says how fresh its status data is\n";
  }
  return 0;
}

int credRenew(const CredArgs& a) {
  json facts;
  if (!pairsToJson(a.facts, "--fact", &facts)) return kExitError;
  json body = {{"facts", facts}};
  if (!a.valid_until.empty()) body["valid_until"] = a.valid_until;  // else the item's period from today
  json c;
  if (int rc = checkReply(httpCall(a.url, "POST", "/api/credentials/" + percentEncode(a.number) + "/renew", body.dump(),
                              sessionToken(a.token)),
                     &c)) {
    return rc;
  }
  if (a.json_output) {
    std::cout << c.dump(2) << "\n";
  } else {
    std::cout << "renewed: older versions are now reported superseded everywhere the status reaches\n";
    printHeld(c);
  }
  return 0;
}

// ---- identity register|show ----

struct IdArgs {
  std::string url, token, id, name;
  std::vector<std::string> contacts;
  bool json_output = false;
};

void printIdentity(const json& r) {
  std::cout << str(r, "id_number") << "  " << str(r, "name") << " (" << str(r, "kind") << "), version "
            << num(r, "version") << ", registered at " << str(r, "registered_by") << " "
            << formatTime(num(r, "registered_at_ms")) << "\n";
  for (const auto& [k, v] : r["contacts"].items()) std::cout << "  " << k << ": " << (v.is_string() ? v.get<std::string>() : v.dump()) << "\n";
}

int idRegister(const IdArgs& a) {
  json contacts;
  if (!pairsToJson(a.contacts, "--contact", &contacts)) return kExitError;
  json body = {{"id_number", a.id}, {"name", a.name}, {"contacts", contacts}};
  json r;
  if (int rc = checkReply(httpCall(a.url, "POST", "/api/identities", body.dump(), sessionToken(a.token)), &r)) return rc;
  if (a.json_output) {
    std::cout << r.dump(2) << "\n";
  } else {
    printIdentity(r);
  }
  return 0;
}

int idShow(const IdArgs& a) {
  json r;
  if (int rc = checkReply(httpCall(a.url, "GET", "/api/identities/" + percentEncode(a.id), "", sessionToken(a.token)), &r)) return rc;
  if (a.json_output) {
    std::cout << r.dump(2) << "\n";
  } else {
    printIdentity(r);
  }
  return 0;
}

int publishRevocation(const std::string& url, const std::string& token, const std::string& file) {
  auto content = readFileBytes(file);
  if (!content) {
    std::cerr << "error: " << content.status().withContext("--file").toString() << "\n";
    return kExitError;
  }
  json out;
  if (int rc = checkReply(httpCall(url, "POST", "/api/revocations/keys", std::string(content->begin(), content->end()),
                              sessionToken(token), "application/octet-stream"),
                     &out)) {
    return rc;
  }
  std::cout << "published at " << url << ": " << str(out, "note") << "\n";
  return 0;
}

}  // namespace

void registerCredentialCommands(CLI::App& app, int* exit_code) {
  static VerifyArgs v;
  auto* ver = app.add_subcommand(
      "verify", "Check a credential (text form TBC1.... or a file): at a station with --url, or offline with --root/--keys");
  ver->add_option("--text", v.text, "The credential's text form (TBC1....)");
  ver->add_option("--file", v.file, "A file holding the text form or the sealed bytes");
  ver->add_option("--url", v.url, "A station's HTTP API: it answers from its own data, with revocation status");
  ver->add_option("--root", v.root, "Offline: the city's root certificate (root.cert)");
  ver->add_option("--keys", v.keys, "Offline: a key directory (its root.cert is used)");
  ver->add_option("--catalogue", v.catalogue,
                  "Offline: the catalogue JSON, to check the issuer's level for the item (without it a genuine "
                  "credential exits 4, not 0)");
  ver->add_option("--revocation", v.revocations, "Offline: a key revocation file to enforce (repeatable)");
  ver->add_flag("--json", v.json_output, "Print the JSON answer");
  ver->footer("Exit status: 0 valid (offline: with --catalogue; the revocation status is never known offline), 4 offline "
              "without --catalogue: genuine and in its validity period but the issuer's authority for the item was not "
              "checked, 3 not valid (revoked, suspended, superseded, expired, invalid, unknown...), 1 error.");
  ver->callback([exit_code] { *exit_code = runVerify(v); });

  static CredArgs a;
  auto url = [](CLI::App* cmd) {
    cmd->add_option("--url", a.url, "The hall's HTTP API, e.g. http://127.0.0.1:8080")->required();
    cmd->add_option("--token", a.token, "Session token (default: $TONGBAN_TOKEN)");
    cmd->add_flag("--json", a.json_output, "Print the JSON answer");
  };
  auto* cred = app.add_subcommand("credential", "Credentials (证照) a hall holds: show, list, revoke, suspend, reinstate, renew");
  cred->require_subcommand(1);
  auto* sh = cred->add_subcommand("show", "A credential this node holds, its status and its text form");
  url(sh);
  sh->add_option("--number", a.number, "Credential number, e.g. 440604000000-L00000001")->required();
  sh->add_flag("--text-only", a.text_only, "Print only the citizen-held text form (for a QR code or `tongban verify`)");
  sh->callback([exit_code] { *exit_code = credShow(a); });
  auto* ls = cred->add_subcommand("list", "The credentials this node holds for a holder");
  url(ls);
  ls->add_option("--holder", a.holder, "Resident ID or unified social credit code")->required();
  ls->callback([exit_code] { *exit_code = credList(a); });
  for (auto [name, status, help] :
       {std::tuple{"revoke", "revoked", "Revoke a credential (final); role approver or admin, at its issuer or an ancestor"},
        std::tuple{"suspend", "suspended", "Suspend a credential; role approver or admin, at its issuer or an ancestor"},
        std::tuple{"reinstate", "active", "Lift a suspension; role approver or admin, at its issuer or an ancestor"}}) {
    auto* cmd = cred->add_subcommand(name, help);
    url(cmd);
    cmd->add_option("--number", a.number, "Credential number")->required();
    cmd->add_option("--reason", a.reason, "Why (shown wherever the credential is checked)")->required();
    const std::string s = status;
    cmd->callback([exit_code, s] { *exit_code = credSetStatus(a, s); });
  }
  auto* rn = cred->add_subcommand("renew", "Renew a credential at its issuer: same number, next version; the old one is superseded");
  url(rn);
  rn->add_option("--number", a.number, "Credential number")->required();
  rn->add_option("--valid-until", a.valid_until,
                 "Last valid day, YYYY-MM-DD (CST), within the item's period (default: the item's period from today)");
  rn->add_option("--fact", a.facts, "name=value of a key fact (repeatable; replaces the facts when given)");
  rn->callback([exit_code] { *exit_code = credRenew(a); });

  static IdArgs i;
  auto* ids = app.add_subcommand("identity", "Identity records (一表登记): register a person or organisation once, look one up");
  ids->require_subcommand(1);
  auto idUrl = [](CLI::App* cmd) {
    cmd->add_option("--url", i.url, "The hall's HTTP API")->required();
    cmd->add_option("--token", i.token, "Session token (default: $TONGBAN_TOKEN)");
    cmd->add_flag("--json", i.json_output, "Print the JSON answer");
  };
  auto* reg = ids->add_subcommand("register", "Register (or update: next version) a person or organisation; role clerk");
  idUrl(reg);
  reg->add_option("--id", i.id, "Resident ID or unified social credit code")->required();
  reg->add_option("--name", i.name, "Name")->required();
  reg->add_option("--contact", i.contacts, "name=value, e.g. phone=13800000000 (repeatable)");
  reg->callback([exit_code] { *exit_code = idRegister(i); });
  auto* show = ids->add_subcommand("show", "An identity record this node holds");
  idUrl(show);
  show->add_option("--id", i.id, "Resident ID or unified social credit code")->required();
  show->callback([exit_code] { *exit_code = idShow(i); });

  // Under `keys`, beside `keys revoke` that writes the file.
  static std::string pub_url, pub_token, pub_file;
  CLI::App* keys = app.get_subcommand("keys");
  auto* pub = keys->add_subcommand(
      "publish-revocation", "Publish a key revocation (from `keys revoke`) to the whole network through a hall; role admin");
  pub->add_option("--url", pub_url, "Any hall's HTTP API (it goes up to the city and down to every node)")->required();
  pub->add_option("--token", pub_token, "An admin's session token (default: $TONGBAN_TOKEN)");
  pub->add_option("--file", pub_file, "The revocation file written by `tongban keys revoke`")->required();
  pub->callback([exit_code] { *exit_code = publishRevocation(pub_url, pub_token, pub_file); });
}

}  // namespace tongban::cli
