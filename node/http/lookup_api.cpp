// GET /api/lookup (docs/api.md "Lookups"): ask this node, and through it its ancestors, about a
// holder, a material or a credential. Async: the answer may come from the city.
#include "node/http/api.h"

namespace tongban {

namespace {

using json = nlohmann::json;

json recordJson(Node& node, const LookupRecord& r) {
  json j{{"type", r.type},       {"id", r.id},       {"holder", r.holder},
         {"kind", r.kind},       {"issued_at", r.issued_at}, {"at_ms", r.at_ms},
         {"seal_verified", r.seal_verified}};
  if (r.type == "material") {
    if (auto m = decodeMaterialRecord(r.payload); m) {
      j["size_bytes"] = m->size_bytes;
      j["content_type"] = m->content_type;
      j["verified_by"] = m->verified_by;
    }
  } else if (r.type == "credential") {
    j["text"] = credentialToText(r.payload);  // verify it: POST /api/credentials/verify
    // What the answering node knew of its status when it answered.
    j["status"] = {{"verdict", r.status.empty() ? "unknown" : r.status},
                   {"reason", r.status_reason},
                   {"current_version", r.current_version},
                   {"fresh_as_of_ms", r.status_fresh_as_of_ms ? json(r.status_fresh_as_of_ms) : json(nullptr)}};
  } else if (r.type == "identity") {
    if (auto who = node.credentials().openIdentity(r.payload, node.clock().now()); who) {
      j["name"] = who->name;
      json contacts = json::object();
      for (const auto& [key, value] : who->contacts) contacts[key] = value;
      j["contacts"] = contacts;
    }
  }
  return j;
}

json lookupResultJson(Node& node, const LookupResult& r) {
  json route = json::array();
  for (const auto& hop : r.route) route.push_back({{"division", hop.division}, {"name", hop.name}, {"at", hop.at_ms}});
  json records = json::array();
  for (const auto& rec : r.records) records.push_back(recordJson(node, rec));
  json j{{"outcome", lookupOutcomeName(r.outcome)},
         {"question", lookupQuestionName(r.query.question)},
         {"key", r.query.key},
         {"answered_by", {{"division", r.answered_by}, {"name", r.answered_by_name}}},
         {"answered_at_ms", r.answered_at_ms},
         {"cached_at", r.cached_at.empty() ? json(nullptr) : json(r.cached_at)},
         {"route", route},
         {"records", records},
         {"truncated", r.truncated},
         {"took_ms", r.took_ms}};
  if (!r.note.empty()) j["note"] = r.note;
  if (r.outcome == LookupOutcome::kNotFound) {
    // The city's records are complete for everything created before this instant; a record made
    // later may still be on its way up (held back by the subtree named, when it lags).
    j["complete_as_of_ms"] = r.complete_as_of_ms;
    j["held_back_by"] = r.held_back_by.empty()
                            ? json(nullptr)
                            : json{{"division", r.held_back_by}, {"name", r.held_back_by_name}, {"since_ms", r.complete_as_of_ms}};
  }
  if (r.outcome == LookupOutcome::kCouldNotAsk) {
    j["reason"] = r.reason;
    j["failed_link"] = r.failed_link;
    j["link_down_since_ms"] = r.link_down_since_ms ? json(r.link_down_since_ms) : json(nullptr);
  }
  return j;
}

}  // namespace

void registerLookupApi(Router& router, Node& node) {
  Node* n = &node;
  router.addAsync("GET", "/api/lookup", Access::kAuthenticated,
                  [n](const HttpRequest& req, const Principal*, Router::Respond respond) {
                    // Exactly one question.
                    std::optional<LookupQuestion> question;
                    std::string key;
                    int given = 0;
                    for (auto [name, q] : {std::pair{"holder", LookupQuestion::kHolder},
                                           std::pair{"material", LookupQuestion::kMaterial},
                                           std::pair{"credential", LookupQuestion::kCredential}}) {
                      auto it = req.query.find(name);
                      if (it == req.query.end()) continue;
                      ++given;
                      question = q;
                      key = it->second;
                    }
                    if (given != 1) {
                      return respond(errorResponse(Status(
                          ErrorCode::kInvalidArgument, "ask exactly one of ?holder=ID, ?material=HASH, ?credential=N")));
                    }
                    auto query = makeLookupQuery(*question, key);
                    if (!query) return respond(errorResponse(query.status()));
                    DurationMs budget = 0;
                    if (auto it = req.query.find("budget_ms"); it != req.query.end()) {
                      const std::string& text = it->second;
                      if (text.empty() || text.size() > 6 || text.find_first_not_of("0123456789") != std::string::npos ||
                          std::stoll(text) == 0) {
                        return respond(errorResponse(
                            Status(ErrorCode::kInvalidArgument, "budget_ms is a whole number of milliseconds, 1 to 999999")));
                      }
                      budget = std::stoll(text);
                    }
                    // All three outcomes are answers, so 200; the body's "outcome" tells them apart.
                    n->lookups().lookup(*query, budget, [n, respond](LookupResult result) {
                      respond(jsonResponse(200, lookupResultJson(*n, result)));
                    });
                  });
}

}  // namespace tongban
