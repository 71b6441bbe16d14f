#include "node/http/api.h"

#include "federation/util/bytes.h"

namespace tongban {

namespace {

using json = nlohmann::json;

// Reads a JSON object body; every type problem is a 400 naming the field.
class Body {
 public:
  static Result<Body> parse(const std::string& text) {
    json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (doc.is_discarded()) return Status(ErrorCode::kInvalidArgument, "the request body is not valid JSON");
    if (!doc.is_object()) return Status(ErrorCode::kInvalidArgument, "the request body must be a JSON object");
    return Body(std::move(doc));
  }
  Result<std::string> str(const char* key, bool required) const {
    if (!doc_.contains(key) || doc_[key].is_null()) {
      if (required) return Status(ErrorCode::kInvalidArgument, std::string("\"") + key + "\" is required");
      return std::string();
    }
    if (!doc_[key].is_string()) return Status(ErrorCode::kInvalidArgument, std::string("\"") + key + "\" must be a string");
    return doc_[key].get<std::string>();
  }
  const json& raw() const { return doc_; }

 private:
  explicit Body(json doc) : doc_(std::move(doc)) {}
  json doc_;
};

std::string maskId(const std::string& id) {
  // The public status page shows whose case it is without publishing the whole ID number.
  if (id.size() < 8) return "****";
  return id.substr(0, 4) + std::string(id.size() - 8, '*') + id.substr(id.size() - 4);
}

json stepsJson(const std::vector<CaseStep>& history, bool with_actors) {
  json steps = json::array();
  for (const auto& s : history) {
    json j = {{"index", s.index}, {"step", s.step}, {"at_ms", s.at_ms}};
    if (with_actors) {
      j["actor"] = s.actor;
      j["note"] = s.note;
      j["detail"] = s.detail;
    }
    steps.push_back(std::move(j));
  }
  return steps;
}

json caseJson(const CaseRecord& c, Light light, bool full) {
  json j = {{"number", c.number},
            {"item_code", c.item_code},
            {"item_name", c.item_name},
            {"department", c.department},
            {"kind", itemKindName(c.kind)},
            {"state", caseStateName(c.state)},
            {"accepted_ms", c.accepted_ms},
            {"deadline_ms", c.deadline_ms},
            {"deadline", c.deadline_ms ? CivilDate::fromTimeMs(c.deadline_ms - 1).toString() : ""},
            {"concluded_ms", c.concluded_ms},
            {"decided_at", c.decided_at},
            {"light", lightName(light)},
            {"refusal_notice", c.refusal_notice},
            {"evaluation", c.evaluation},
            {"steps", stepsJson(c.steps, full)}};
  // Forwarded cases (上报件): where the case is, and at the origin the steps taken at the decider.
  if (c.forwarded) {
    j["forwarded"] = true;
    j["decider"] = c.decider;
    j["decider_name"] = c.decider_name;
    j["location"] = c.location;
    j["waiting_for_uplink"] = c.waiting_for_uplink;
    j["decider_steps"] = stepsJson(c.decider_steps, full);
    if (!c.returned_by.empty()) {
      j["returned"] = {{"by", c.returned_by}, {"by_name", c.returned_by_name}, {"reason", c.returned_reason},
                       {"at_ms", c.returned_ms}};
    }
  }
  if (!c.held_for.empty()) j["held_for"] = c.held_for;
  j["catalogue_version"] = c.catalogue_version;
  // The credential issued when the case concluded; the key facts it states are for staff only.
  j["credential"] = c.credential.empty() ? json(nullptr) : json(c.credential);
  j["applicant_id"] = full ? c.applicant_id : maskId(c.applicant_id);
  if (full) {
    j["applicant_name"] = c.applicant_name;
    j["contact"] = c.contact;
    j["materials"] = c.material_hashes;
    json facts = json::object();
    for (const auto& [k, v] : c.facts) facts[k] = v;
    j["facts"] = facts;
    json reviews = json::object();
    for (const auto& [dep, decision] : c.reviews) reviews[dep] = decision;
    j["reviews"] = reviews;
  }
  return j;
}

json catalogueJson(const Catalogue& c) {
  json items = json::array();
  for (const auto& it : c.items) {
    json levels = json::array();
    for (Level l : it.accept_levels) levels.push_back(levelName(l));
    items.push_back({{"code", it.code}, {"name", it.name}, {"name_en", it.name_en}, {"department", it.department},
                     {"kind", itemKindName(it.kind)}, {"decide_level", levelName(it.decide_level)},
                     {"accept_levels", levels}, {"legal_days", it.legal_days}, {"committed_days", it.committed_days},
                     {"fee_cny", static_cast<double>(it.fee_fen) / 100.0}, {"legal_basis", it.legal_basis},
                     {"materials", it.materials}, {"joint_departments", it.joint_departments}, {"issues", it.issues}});
  }
  json kinds = json::object();
  for (const auto& [code, name] : c.material_kinds) kinds[code] = name;
  return {{"version", c.version}, {"published_at_ms", c.published_at_ms}, {"material_kinds", kinds}, {"items", items}};
}

json materialJson(const MaterialRecordInfo& r) {
  return {{"hash", r.hash}, {"kind", r.kind}, {"holder", r.holder}, {"size_bytes", r.size_bytes},
          {"content_type", r.content_type}, {"stored_at", r.stored_at}, {"verified_by", r.verified_by},
          {"verified_at_ms", r.verified_at_ms}, {"seal", hexEncode(r.seal)}};
}

HttpResponse fail(const Status& st) { return errorResponse(st); }

}  // namespace

void registerNodeApi(Router& router, Node& node, StaffDirectory& staff) {
  Node* n = &node;
  StaffDirectory* directory = &staff;
  auto now = [n] { return n->clock().now(); };

  router.add("GET", "/health", Access::kPublic, [n](const HttpRequest&, const Principal*) {
    auto status = n->status();
    if (!status) return fail(status.status());
    return jsonResponse(200, {{"status", "ok"},
                              {"division", status->division},
                              {"name", status->name},
                              {"level", status->level},
                              {"bus_connected", status->bus_connected},
                              {"uplink", status->parent_link},
                              {"outbox_depth", status->outbox_depth},
                              {"catalogue_version", n->catalogue().version()},
                              {"revocations_fresh_as_of_ms", n->feedState().fresh_as_of_ms},
                              {"now_ms", n->clock().now()}});
  });

  router.add("GET", "/api/status", Access::kAuthenticated, [n](const HttpRequest&, const Principal*) {
    auto s = n->status();
    if (!s) return fail(s.status());
    const FeedState feed = n->feedState();
    json children = json::array();
    for (const auto& c : s->children) {
      children.push_back({{"division", c.division}, {"name", c.name}, {"joined_at_ms", c.joined_at_ms},
                          {"last_seen_ms", c.last_seen_ms}, {"reported_outbox_depth", c.reported_outbox_depth}});
    }
    return jsonResponse(200, {{"division", s->division}, {"name", s->name}, {"level", s->level}, {"parent", s->parent},
                              {"bus_connected", s->bus_connected}, {"uplink", s->parent_link},
                              {"uplink_since_ms", s->parent_link_since_ms}, {"last_ack_ms", s->last_ack_ms},
                              {"outbox_depth", s->outbox_depth}, {"joined", s->joined}, {"last_error", s->last_error},
                              {"children", children},
                              {"revocations", {{"fresh_as_of_ms", feed.fresh_as_of_ms}, {"last_pull_ms", feed.last_pull_ms},
                                               {"link", feed.link}, {"last_error", feed.last_error}, {"head", feed.head}}}});
  });

  router.add("GET", "/api/catalogue", Access::kPublic, [n](const HttpRequest&, const Principal*) {
    const Catalogue* c = n->catalogue().current();
    if (!c) {
      return fail(Status(ErrorCode::kUnavailable, "this node has not received the catalogue yet; try again when its uplink is up"));
    }
    return jsonResponse(200, catalogueJson(*c));
  });

  router.add("POST", "/api/login", Access::kPublic, [directory, now](const HttpRequest& req, const Principal*) {
    auto body = Body::parse(req.body);
    if (!body) return fail(body.status());
    auto user = body->str("username", true);
    auto password = body->str("password", true);
    if (!user) return fail(user.status());
    if (!password) return fail(password.status());
    auto session = directory->login(*user, *password, now());
    if (!session) return fail(session.status());
    return jsonResponse(200, {{"token", session->token}, {"username", session->username}, {"expires_ms", session->expires_ms}});
  });

  router.add("POST", "/api/logout", Access::kAuthenticated, [directory](const HttpRequest& req, const Principal*) {
    const auto it = req.headers.find("authorization");
    const std::string token = it == req.headers.end() ? "" : it->second.substr(std::min<size_t>(7, it->second.size()));
    auto st = directory->logout(token);
    if (!st.isOk()) return fail(st);
    return jsonResponse(200, {{"logged_out", true}});
  });

  // Public case status: what the citizen sees with the number on their receipt.
  router.add("GET", "/api/cases/{number}/status", Access::kPublic, [n, now](const HttpRequest& req, const Principal*) {
    auto c = n->cases().get(req.params.at("number"));
    if (!c) return fail(c.status());
    return jsonResponse(200, caseJson(*c, n->cases().lightOf(*c, now()), /*full=*/false));
  });

  router.add("POST", "/api/cases", Access::kAuthenticated, [n, now](const HttpRequest& req, const Principal* who) {
    auto body = Body::parse(req.body);
    if (!body) return fail(body.status());
    IntakeRequest r;
    for (auto [field, key] : {std::pair{&r.item_code, "item_code"}, {&r.applicant_id, "applicant_id"},
                              {&r.applicant_name, "applicant_name"}, {&r.contact, "contact"}}) {
      auto v = body->str(key, true);
      if (!v) return fail(v.status());
      *field = *v;
    }
    auto note = body->str("note", false);
    if (!note) return fail(note.status());
    r.note = *note;
    if (body->raw().contains("materials")) {
      const json& mats = body->raw()["materials"];
      if (!mats.is_array()) return fail(Status(ErrorCode::kInvalidArgument, "\"materials\" must be an array"));
      for (const auto& m : mats) {
        if (!m.is_object() || !m.contains("kind") || !m["kind"].is_string() ||
            (m.contains("hash") && !m["hash"].is_string())) {
          return fail(Status(ErrorCode::kInvalidArgument, "each material is {\"kind\": string, \"hash\": string (optional)}"));
        }
        r.materials.push_back({m["kind"].get<std::string>(), m.value("hash", std::string())});
      }
    }
    // Key facts for the credential the case will issue: {"plates": "粤E12345"}.
    if (body->raw().contains("facts") && !body->raw()["facts"].is_null()) {
      const json& facts = body->raw()["facts"];
      if (!facts.is_object()) {
        return fail(Status(ErrorCode::kInvalidArgument, "\"facts\" must be an object of strings, e.g. {\"plates\": \"粤E12345\"}"));
      }
      for (const auto& [key, value] : facts.items()) {
        if (!value.is_string()) return fail(Status(ErrorCode::kInvalidArgument, "\"facts\": \"" + key + "\" must be a string"));
        r.facts.emplace_back(key, value.get<std::string>());
      }
    }
    auto c = n->cases().submit(r, *who, now());
    if (!c) return fail(c.status());
    return jsonResponse(c->state == CaseState::kRefused ? 422 : 201, caseJson(*c, n->cases().lightOf(*c, now()), true));
  });

  router.add("GET", "/api/cases", Access::kAuthenticated, [n, now](const HttpRequest& req, const Principal*) {
    auto get = [&](const char* key) { auto it = req.query.find(key); return it == req.query.end() ? std::string() : it->second; };
    size_t limit = 100;
    if (!get("limit").empty()) {
      try {
        limit = std::stoul(get("limit"));
      } catch (...) {
        return fail(Status(ErrorCode::kInvalidArgument, "limit must be a number from 1 to 1000"));
      }
      if (limit < 1 || limit > 1000) return fail(Status(ErrorCode::kInvalidArgument, "limit must be a number from 1 to 1000"));
    }
    auto cases = n->cases().list(get("state"), get("light"), limit, now());
    if (!cases) return fail(cases.status());
    json out = json::array();
    for (const auto& c : *cases) out.push_back(caseJson(c, c.light, true));
    return jsonResponse(200, {{"cases", out}});
  });

  router.add("GET", "/api/cases/{number}", Access::kAuthenticated, [n, now](const HttpRequest& req, const Principal*) {
    auto c = n->cases().get(req.params.at("number"));
    if (!c) return fail(c.status());
    json j = caseJson(*c, n->cases().lightOf(*c, now()), true);
    // The audit trail of a forwarded case at this node: what it sent, passed on or took in.
    auto passages = n->forwarding().passages(c->number);
    if (!passages) return fail(passages.status());
    if (!passages->empty()) {
      json route = json::array();
      for (const auto& p : *passages) {
        route.push_back({{"what", p.what}, {"step_index", p.step_index}, {"action", p.action}, {"from", p.from},
                         {"to", p.to}, {"route", p.route}, {"at_ms", p.at_ms}});
      }
      j["passages"] = route;
    }
    return jsonResponse(200, j);
  });

  router.add("POST", "/api/cases/{number}/steps", Access::kAuthenticated,
             [n, now](const HttpRequest& req, const Principal* who) {
               auto body = Body::parse(req.body);
               if (!body) return fail(body.status());
               StepRequest s;
               for (auto [field, key, required] : {std::tuple{&s.step, "step", true}, {&s.note, "note", false},
                                                   {&s.department, "department", false}, {&s.decision, "decision", false}}) {
                 auto v = body->str(key, required);
                 if (!v) return fail(v.status());
                 *field = *v;
               }
               // The responsible person is the logged-in user, never a name from the body.
               auto c = n->cases().step(req.params.at("number"), s, *who, now());
               if (!c) return fail(c.status());
               return jsonResponse(200, caseJson(*c, n->cases().lightOf(*c, now()), true));
             });

  router.add("GET", "/api/warnings", Access::kAuthenticated, [n, now](const HttpRequest&, const Principal*) {
    auto cases = n->cases().warnings(now());
    if (!cases) return fail(cases.status());
    json out = json::array();
    for (const auto& c : *cases) out.push_back(caseJson(c, c.light, true));
    return jsonResponse(200, {{"warnings", out}});
  });

  router.add("POST", "/api/cases/{number}/evaluation", Access::kPublic, [n, now](const HttpRequest& req, const Principal*) {
    auto body = Body::parse(req.body);
    if (!body) return fail(body.status());
    auto grade = body->str("grade", true);
    auto applicant = body->str("applicant_id", true);
    if (!grade) return fail(grade.status());
    if (!applicant) return fail(applicant.status());
    auto c = n->cases().get(req.params.at("number"));
    if (!c) return fail(c.status());
    // The evaluation terminal proves who is evaluating with the applicant's ID number.
    if (c->applicant_id != *applicant) {
      return fail(Status(ErrorCode::kPermissionDenied, "only the applicant of case " + c->number + " may evaluate it"));
    }
    auto done = n->cases().evaluate(c->number, *grade, now());
    if (!done) return fail(done.status());
    return jsonResponse(200, {{"number", done->number}, {"evaluation", done->evaluation}});
  });

  router.add("POST", "/api/complaints", Access::kPublic, [n, now](const HttpRequest& req, const Principal*) {
    auto body = Body::parse(req.body);
    if (!body) return fail(body.status());
    auto number = body->str("case_number", false);
    auto department = body->str("department", false);
    auto text = body->str("text", true);
    for (const auto* r : {&number, &department, &text}) {
      if (!*r) return fail(r->status());
    }
    auto st = n->cases().complain(*number, *department, *text, now());
    if (!st.isOk()) return fail(st);
    return jsonResponse(201, {{"recorded", true}});
  });

  // Upload: the body is the file; ?kind=id_card&holder=<ID>. The uploader is the verifying clerk.
  router.add("POST", "/api/materials", Access::kAuthenticated, [n, now](const HttpRequest& req, const Principal* who) {
    if (!who->has(Role::kClerk)) return forbidden(who->username + " may not take in materials: that needs the clerk role");
    auto q = [&](const char* key) { auto it = req.query.find(key); return it == req.query.end() ? std::string() : it->second; };
    if (q("kind").empty() || q("holder").empty()) {
      return fail(Status(ErrorCode::kInvalidArgument, "upload with ?kind=<material kind>&holder=<applicant ID>"));
    }
    auto ct = req.headers.find("content-type");
    auto r = n->materials().put(toBytes(req.body), q("kind"), q("holder"),
                                ct == req.headers.end() ? "" : ct->second, who->username, now());
    if (!r) return fail(r.status());
    return jsonResponse(201, materialJson(*r));
  });

  router.add("GET", "/api/materials/{hash}", Access::kAuthenticated, [n](const HttpRequest& req, const Principal*) {
    auto record = n->materials().get(req.params.at("hash"));
    if (!record) return fail(record.status());
    auto content = n->materials().read(record->hash);
    if (!content) return fail(content.status());
    HttpResponse r;
    r.content_type = record->content_type;
    r.body = toString(*content);
    r.headers.emplace_back("X-Tongban-Seal", hexEncode(record->seal));
    return r;
  });

  router.add("GET", "/api/materials", Access::kAuthenticated, [n](const HttpRequest& req, const Principal*) {
    auto it = req.query.find("holder");
    if (it == req.query.end() || it->second.empty()) {
      return fail(Status(ErrorCode::kInvalidArgument, "list materials with ?holder=<applicant ID>"));
    }
    auto list = n->materials().listByHolder(it->second);
    if (!list) return fail(list.status());
    json out = json::array();
    for (const auto& r : *list) out.push_back(materialJson(r));
    return jsonResponse(200, {{"materials", out}});
  });
  registerSupervisionApi(router, node);
  registerLookupApi(router, node);
  registerMaterialsApi(router, node);
  registerCredentialsApi(router, node);
}

}  // namespace tongban
