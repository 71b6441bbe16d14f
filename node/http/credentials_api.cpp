// Credentials (证照) over HTTP (docs/api.md "Credentials"): verify a citizen-held credential
// (public, answered from this node's own data with no network), what the node holds for a holder
// or by number (with the text form to print or put in a QR code), revoke / suspend / reinstate,
// renew, identity records (一表登记), and publishing a key revocation to the whole network.
#include <algorithm>
#include <cctype>

#include "federation/util/bytes.h"
#include "node/calendar/calendar.h"
#include "node/http/api.h"

namespace tongban {

namespace {

using json = nlohmann::json;
using Pairs = std::vector<std::pair<std::string, std::string>>;

// The longest credential text accepted: a credential document is at most 64 KiB, its text form
// 4/3 of that; a body far beyond is not a credential.
constexpr size_t kMaxVerifyBody = 128 * 1024;
constexpr size_t kMaxRevocationBody = 64 * 1024;

HttpResponse bad(const std::string& message) { return errorResponse(Status(ErrorCode::kInvalidArgument, message)); }

// "2026-11-23 10:02:07 CST": the day and time in China Standard Time (UTC+8), as a clerk reads it.
std::string cstTime(TimeMs t) {
  if (t <= 0) return "never";
  const CivilDate day = CivilDate::fromTimeMs(t);
  const TimeMs into = (t - startOfDayMs(day)) / 1000;
  char buf[32];
  std::snprintf(buf, sizeof buf, " %02lld:%02lld:%02lld CST", static_cast<long long>(into / 3600),
                static_cast<long long>(into / 60 % 60), static_cast<long long>(into % 60));
  return day.toString() + buf;
}

// valid_until is exclusive; the last valid day is the day before it (CST).
std::string lastDay(TimeMs exclusive_end) {
  return exclusive_end ? CivilDate::fromTimeMs(exclusive_end - 1).toString() : "";
}

json pairsJson(const Pairs& pairs) {
  json j = json::object();
  for (const auto& [k, v] : pairs) j[k] = v;
  return j;
}

json credentialJson(const CredentialInfo& c) {
  return {{"number", c.number},
          {"version", c.version},
          {"kind", c.kind},
          {"holder_id", c.holder_id},
          {"holder_name", c.holder_name},
          {"issuer", c.issuer},
          {"issuer_name", c.issuer_name},
          {"item_code", c.item_code},
          {"item_name", c.item_name},
          {"case_number", c.case_number},
          {"origin", c.origin},
          {"valid_from", CivilDate::fromTimeMs(c.valid_from_ms).toString()},
          {"valid_from_ms", c.valid_from_ms},
          {"valid_until", c.valid_until_ms ? json(lastDay(c.valid_until_ms)) : json(nullptr)},
          {"valid_until_ms", c.valid_until_ms},
          {"long_term", c.valid_until_ms == 0},  // 长期: no end date (valid_until is null)
          {"facts", pairsJson(c.facts)},
          {"issued_at_ms", c.issued_at_ms}, {"catalogue_version", c.catalogue_version}};
}

json statusJson(const std::optional<CredentialStatusInfo>& s) {
  if (!s) return nullptr;
  return {{"status", s->status}, {"version", s->version}, {"at_ms", s->at_ms}, {"at", cstTime(s->at_ms)},
          {"by", s->by},         {"by_name", s->by_name}, {"reason", s->reason}};
}

json verificationJson(const Verification& v) {
  json chain = json::array();
  for (const auto& c : v.chain) {
    chain.push_back({{"division", c.division.str()}, {"name", c.name}, {"level", levelName(c.level())},
                     {"valid_until_ms", c.valid_until_ms}});
  }
  return {{"verdict", v.verdict},
          {"reason", v.reason},
          {"credential", v.credential ? credentialJson(*v.credential) : json(nullptr)},
          {"chain", chain},
          {"root", v.root},
          {"status", statusJson(v.status)},
          {"current_version", v.current_version},
          {"status_fresh_as_of_ms", v.status_fresh_as_of_ms},
          {"status_fresh_as_of", cstTime(v.status_fresh_as_of_ms)}};
}

json identityJson(const IdentityInfo& r) {
  return {{"id_number", r.id_number},         {"name", r.name},
          {"kind", r.kind},                   {"contacts", pairsJson(r.contacts)},
          {"version", r.version},             {"registered_at_ms", r.registered_at_ms},
          {"registered_by", r.registered_by}};
}

// Reads a JSON object body; every type problem is a 400 naming the field.
Result<json> objectBody(const std::string& text) {
  json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return Status(ErrorCode::kInvalidArgument, "the request body is not valid JSON");
  if (!doc.is_object()) return Status(ErrorCode::kInvalidArgument, "the request body must be a JSON object");
  return doc;
}

Result<std::string> stringField(const json& doc, const char* key, bool required) {
  if (!doc.contains(key) || doc[key].is_null()) {
    if (required) return Status(ErrorCode::kInvalidArgument, std::string("\"") + key + "\" is required");
    return std::string();
  }
  if (!doc[key].is_string()) return Status(ErrorCode::kInvalidArgument, std::string("\"") + key + "\" must be a string");
  return doc[key].get<std::string>();
}

// {"plates": "粤E12345", ...}: an object of strings (facts, contacts).
Result<Pairs> pairsField(const json& doc, const char* key, size_t max_entries, size_t max_bytes) {
  Pairs out;
  if (!doc.contains(key) || doc[key].is_null()) return out;
  const json& obj = doc[key];
  const std::string what = std::string("\"") + key + "\"";
  if (!obj.is_object()) return Status(ErrorCode::kInvalidArgument, what + " must be an object of strings, e.g. {\"plates\": \"粤E12345\"}");
  if (obj.size() > max_entries) {
    return Status(ErrorCode::kInvalidArgument, what + " has " + std::to_string(obj.size()) + " entries; at most " +
                                                   std::to_string(max_entries));
  }
  for (const auto& [k, v] : obj.items()) {
    if (!v.is_string()) return Status(ErrorCode::kInvalidArgument, what + ": \"" + k + "\" must be a string");
    if (k.empty() || k.size() > max_bytes || v.get<std::string>().size() > max_bytes) {
      return Status(ErrorCode::kInvalidArgument, what + ": each name must be non-empty and each name and value at most " +
                                                     std::to_string(max_bytes) + " bytes");
    }
    out.emplace_back(k, v.get<std::string>());
  }
  return out;
}

// "440604000000-L00000007": the issuing division, "-L", eight digits.
bool isCredentialNumber(const std::string& n) {
  if (n.size() != 12 + 2 + 8 || n.compare(12, 2, "-L") != 0) return false;
  auto digits = [&](size_t from, size_t len) {
    return std::all_of(n.begin() + from, n.begin() + from + len, [](unsigned char c) { return std::isdigit(c); });
  };
  return digits(0, 12) && digits(14, 8);
}

std::optional<HttpResponse> checkNumber(const std::string& number) {
  if (isCredentialNumber(number)) return std::nullopt;
  return bad("'" + number.substr(0, 64) + "' is not a credential number (<issuing division>-L<8 digits>, e.g. 440604000000-L00000007)");
}

// A credential this node holds, with its citizen-held text form and its status here.
Result<json> heldJson(Node& n, const CredentialInfo& c, TimeMs now) {
  auto sealed = n.credentials().sealed(c.number);
  if (!sealed) return sealed.status();
  auto status = n.credentials().status(c.number);
  if (!status) return status.status();
  json j = credentialJson(c);
  j["status"] = statusJson(*status);
  if (*sealed) {
    j["text"] = credentialToText(**sealed);
    const Verification v = n.credentials().verify(**sealed, now);
    j["verdict"] = v.verdict;
    j["reason"] = v.reason;
  }
  return j;
}

std::string headerOf(const HttpRequest& req, const char* name) {
  auto it = req.headers.find(name);
  return it == req.headers.end() ? std::string() : it->second;
}

}  // namespace

void registerCredentialsApi(Router& router, Node& node) {
  Node* n = &node;
  auto now = [n] { return n->clock().now(); };

  // Public: anyone at any station may check a credential a citizen shows. Every verdict —
  // "invalid" included — is a 200; only a request without a credential is an error.
  router.add("POST", "/api/credentials/verify", Access::kPublic, [n, now](const HttpRequest& req, const Principal*) {
    if (req.body.size() > kMaxVerifyBody) {
      return bad("the body is " + std::to_string(req.body.size()) + " bytes; a credential's text form is at most " +
                 std::to_string(kMaxVerifyBody / 1024) + " KiB");
    }
    const std::string ct = headerOf(req, "content-type");
    Verification v;
    if (ct.rfind("application/octet-stream", 0) == 0) {
      if (req.body.empty()) return bad("send the credential: its sealed bytes, its text form (TBC1....) or {\"text\": \"TBC1....\"}");
      v = n->credentials().verify(toBytes(req.body), now());
    } else {
      std::string text;
      const bool looks_json = ct.rfind("application/json", 0) == 0 ||
                              (!req.body.empty() && req.body.find_first_not_of(" \t\r\n") != std::string::npos &&
                               req.body[req.body.find_first_not_of(" \t\r\n")] == '{');
      if (looks_json) {
        auto doc = objectBody(req.body);
        if (!doc) return errorResponse(doc.status());
        auto t = stringField(*doc, "text", true);
        if (!t) return errorResponse(t.status());
        text = *t;
      } else {
        text = req.body;
      }
      // Surrounding whitespace is what copying and scanning add; it is not part of the credential.
      const auto first = text.find_first_not_of(" \t\r\n");
      text = first == std::string::npos ? std::string() : text.substr(first, text.find_last_not_of(" \t\r\n") - first + 1);
      if (text.empty()) return bad("\"text\" is empty: send the credential's text form (TBC1....)");
      v = n->credentials().verifyText(text, now());
    }
    json j = verificationJson(v);
    j["checked_at_ms"] = now();
    return jsonResponse(200, j);
  });

  router.add("GET", "/api/credentials", Access::kAuthenticated, [n, now](const HttpRequest& req, const Principal*) {
    auto it = req.query.find("holder");
    if (it == req.query.end() || it->second.empty()) {
      return bad("list credentials with ?holder=<resident ID or unified social credit code>");
    }
    if (it->second.size() > 64) return bad("holder is at most 64 characters");
    auto list = n->credentials().listByHolder(it->second);
    if (!list) return errorResponse(list.status());
    json out = json::array();
    for (const auto& c : *list) {
      auto j = heldJson(*n, c, now());
      if (!j) return errorResponse(j.status());
      out.push_back(std::move(*j));
    }
    return jsonResponse(200, {{"holder", it->second}, {"credentials", out},
                              {"status_fresh_as_of_ms", n->feedState().fresh_as_of_ms},
                              {"status_fresh_as_of", cstTime(n->feedState().fresh_as_of_ms)}});
  });

  router.add("GET", "/api/credentials/{number}", Access::kAuthenticated, [n, now](const HttpRequest& req, const Principal*) {
    const std::string& number = req.params.at("number");
    if (auto err = checkNumber(number)) return *err;
    auto c = n->credentials().listByNumber(number);
    if (!c) return errorResponse(c.status());
    if (!*c) {
      return errorResponse(Status(ErrorCode::kNotFound, "no credential " + number +
                                                            " at this node (a node holds what its subtree issued and what was handed over here; try GET /api/lookup?credential=" +
                                                            number + ")"));
    }
    auto j = heldJson(*n, **c, now());
    if (!j) return errorResponse(j.status());
    (*j)["status_fresh_as_of_ms"] = n->feedState().fresh_as_of_ms;
    (*j)["status_fresh_as_of"] = cstTime(n->feedState().fresh_as_of_ms);
    return jsonResponse(200, *j);
  });

  router.add("POST", "/api/credentials/{number}/status", Access::kAuthenticated,
             [n, now](const HttpRequest& req, const Principal* who) {
               if (!who->has(Role::kApprover) && !who->has(Role::kAdmin)) {
                 return forbidden(who->username + " may not revoke, suspend or reinstate credentials: that needs the approver or admin role");
               }
               const std::string& number = req.params.at("number");
               if (auto err = checkNumber(number)) return *err;
               auto doc = objectBody(req.body);
               if (!doc) return errorResponse(doc.status());
               auto status = stringField(*doc, "status", true);
               if (!status) return errorResponse(status.status());
               if (*status != "revoked" && *status != "suspended" && *status != "active") {
                 return bad("\"status\" must be \"revoked\", \"suspended\" or \"active\" (lifts a suspension), not \"" +
                            status->substr(0, 40) + "\"");
               }
               auto reason = stringField(*doc, "reason", true);
               if (!reason) return errorResponse(reason.status());
               if (reason->empty()) return bad("\"reason\" must say why (it is shown wherever the credential is checked)");
               auto held = n->credentials().listByNumber(number);
               if (!held) return errorResponse(held.status());
               if (!*held) return errorResponse(Status(ErrorCode::kNotFound, "no credential " + number + " at this node"));
               auto s = n->credentials().setStatus(number, *status, *reason, now());
               if (!s) return errorResponse(s.status());
               json j = statusJson(*s);
               j["number"] = number;
               return jsonResponse(200, j);
             });

  router.add("POST", "/api/credentials/{number}/renew", Access::kAuthenticated,
             [n, now](const HttpRequest& req, const Principal* who) {
               if (!who->has(Role::kApprover) && !who->has(Role::kAdmin)) {
                 return forbidden(who->username + " may not renew credentials: that needs the approver or admin role");
               }
               const std::string& number = req.params.at("number");
               if (auto err = checkNumber(number)) return *err;
               auto doc = objectBody(req.body);
               if (!doc) return errorResponse(doc.status());
               // Without "valid_until" (or null) the item's period restarts from now, as at issuance.
               std::optional<TimeMs> until_ms;
               if (doc->contains("valid_until") && !(*doc)["valid_until"].is_null()) {
                 auto until = stringField(*doc, "valid_until", true);
                 if (!until) return errorResponse(until.status());
                 auto day = CivilDate::parse(*until);
                 if (!day) return bad("\"valid_until\" must be a date YYYY-MM-DD (the last valid day, CST)");
                 until_ms = endOfDayMs(*day);
               }
               auto facts = pairsField(*doc, "facts", 32, 500);
               if (!facts) return errorResponse(facts.status());
               auto renewed = n->credentials().renew(number, until_ms, *facts, now());
               if (!renewed) return errorResponse(renewed.status());
               auto c = n->credentials().listByNumber(number);
               if (!c) return errorResponse(c.status());
               if (!*c) return errorResponse(Status(ErrorCode::kInternal, "the renewed credential was not stored"));
               auto j = heldJson(*n, **c, now());
               if (!j) return errorResponse(j.status());
               return jsonResponse(200, *j);
             });

  router.add("POST", "/api/identities", Access::kAuthenticated, [n, now](const HttpRequest& req, const Principal* who) {
    if (!who->has(Role::kClerk)) return forbidden(who->username + " may not register identities: that needs the clerk role");
    auto doc = objectBody(req.body);
    if (!doc) return errorResponse(doc.status());
    auto id = stringField(*doc, "id_number", true);
    if (!id) return errorResponse(id.status());
    auto name = stringField(*doc, "name", true);
    if (!name) return errorResponse(name.status());
    if (name->empty()) return bad("\"name\" must not be empty");
    auto contacts = pairsField(*doc, "contacts", 32, 500);
    if (!contacts) return errorResponse(contacts.status());
    auto r = n->credentials().registerIdentity(*id, *name, *contacts, now());
    if (!r) return errorResponse(r.status());
    return jsonResponse(r->version == 1 ? 201 : 200, identityJson(*r));
  });

  router.add("GET", "/api/identities/{id}", Access::kAuthenticated, [n](const HttpRequest& req, const Principal*) {
    const std::string& id = req.params.at("id");
    if (id.empty() || id.size() > 64) return bad("an ID number is 18 characters");
    auto r = n->credentials().identity(id);
    if (!r) return errorResponse(r.status());
    if (!*r) {
      return errorResponse(Status(ErrorCode::kNotFound, "no identity record of " + id +
                                                            " at this node (a node holds the records its subtree registered)"));
    }
    return jsonResponse(200, identityJson(**r));
  });

  // The body is the file `tongban keys revoke` wrote (a SignedKeyRevocation).
  router.add("POST", "/api/revocations/keys", Access::kAuthenticated, [n, now](const HttpRequest& req, const Principal* who) {
    if (!who->has(Role::kAdmin)) return forbidden(who->username + " may not publish key revocations: that needs the admin role");
    if (req.body.empty()) return bad("send the revocation file written by `tongban keys revoke` as the body (application/octet-stream)");
    if (req.body.size() > kMaxRevocationBody) return bad("a key revocation is a few KiB; this body is " + std::to_string(req.body.size()) + " bytes");
    Status st = n->credentials().publishKeyRevocation(toBytes(req.body), now());
    if (!st.isOk()) {
      switch (st.code()) {
        case ErrorCode::kAlreadyExists:
        case ErrorCode::kInternal:
        case ErrorCode::kUnavailable:
          return errorResponse(st);
        default:
          // Garbage, a bad signature, a signer that is no ancestor of the key's holder, ...
          return bad("not a key revocation this network accepts: " + st.toString());
      }
    }
    return jsonResponse(201, {{"published", true},
                              {"note", "in force here now; it travels up to the city and from there down to every node"}});
  });
}

}  // namespace tongban
