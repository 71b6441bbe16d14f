#include "node/cases/cases.h"

#include <algorithm>
#include <cstdio>
#include <set>

#include "federation/util/capnp_io.h"
#include "node/applicants/id_numbers.h"
#include "node/cases/case_service_impl.h"
#include "schema/node.capnp.h"

namespace tongban {

namespace {

const std::vector<Migration> kCaseMigrations = {
    {1,
     "CREATE TABLE case_counter (id INTEGER PRIMARY KEY CHECK (id = 1), next INTEGER NOT NULL);"
     "INSERT INTO case_counter (id, next) VALUES (1, 0);"
     "CREATE TABLE cases ("
     "  number TEXT PRIMARY KEY, item_code TEXT NOT NULL, item_name TEXT NOT NULL, department TEXT NOT NULL,"
     "  kind TEXT NOT NULL, applicant_id TEXT NOT NULL, applicant_name TEXT NOT NULL, contact TEXT NOT NULL,"
     "  state TEXT NOT NULL, paused_from TEXT NOT NULL DEFAULT '', accepted_ms INTEGER NOT NULL,"
     "  deadline_ms INTEGER NOT NULL, concluded_ms INTEGER NOT NULL DEFAULT 0, paused_ms INTEGER NOT NULL DEFAULT 0,"
     "  decided_at TEXT NOT NULL, refusal_notice TEXT NOT NULL DEFAULT '', evaluation TEXT NOT NULL DEFAULT '',"
     "  updated_ms INTEGER NOT NULL);"
     "CREATE INDEX cases_by_state ON cases (state, accepted_ms);"
     "CREATE TABLE case_steps (number TEXT NOT NULL, idx INTEGER NOT NULL, step TEXT NOT NULL, actor TEXT NOT NULL,"
     "  at_ms INTEGER NOT NULL, note TEXT NOT NULL, detail TEXT NOT NULL, PRIMARY KEY (number, idx));"
     "CREATE TABLE case_reviews (number TEXT NOT NULL, department TEXT NOT NULL, decision TEXT NOT NULL,"
     "  actor TEXT NOT NULL, at_ms INTEGER NOT NULL, PRIMARY KEY (number, department));"
     "CREATE TABLE case_materials (number TEXT NOT NULL, kind TEXT NOT NULL, hash TEXT NOT NULL,"
     "  PRIMARY KEY (number, kind));"
     "CREATE TABLE case_lights (number TEXT NOT NULL, light TEXT NOT NULL, at_ms INTEGER NOT NULL,"
     "  PRIMARY KEY (number, light));"
     "CREATE TABLE complaints (id INTEGER PRIMARY KEY AUTOINCREMENT, number TEXT NOT NULL, department TEXT NOT NULL,"
     "  text TEXT NOT NULL, at_ms INTEGER NOT NULL);"},
    {2,
     // Forwarded cases. At the decider: held_for = the origin. At the origin: forwarded = 1, the
     // outbox seq of the transfer (to tell "waiting for the uplink"), the decider once known,
     // and the decider's steps as they arrive (kept apart from case_steps: supervision counts a
     // step where it was taken, and these were taken at the decider).
     "ALTER TABLE cases ADD COLUMN held_for TEXT NOT NULL DEFAULT '';"
     "ALTER TABLE cases ADD COLUMN forwarded INTEGER NOT NULL DEFAULT 0;"
     "ALTER TABLE cases ADD COLUMN forward_seq INTEGER NOT NULL DEFAULT 0;"
     "ALTER TABLE cases ADD COLUMN decider TEXT NOT NULL DEFAULT '';"
     "ALTER TABLE cases ADD COLUMN decider_name TEXT NOT NULL DEFAULT '';"
     "CREATE TABLE case_decider_steps (number TEXT NOT NULL, idx INTEGER NOT NULL, step TEXT NOT NULL,"
     "  state TEXT NOT NULL, actor TEXT NOT NULL, at_ms INTEGER NOT NULL, note TEXT NOT NULL, detail TEXT NOT NULL,"
     "  received_ms INTEGER NOT NULL, PRIMARY KEY (number, idx));"},
    {3,
     // Key facts for the credential, and the credential issued when the case concluded.
     "CREATE TABLE case_facts (number TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (number, key));"
     "ALTER TABLE cases ADD COLUMN credential TEXT NOT NULL DEFAULT '';"},
    {4,
     // The catalogue version a case was accepted under (at the decider: the origin's, from the
     // transfer), and at the origin the refusal of a forwarded case by a hop on its way up (退回).
     "ALTER TABLE cases ADD COLUMN catalogue_version INTEGER NOT NULL DEFAULT 0;"
     "ALTER TABLE cases ADD COLUMN returned_by TEXT NOT NULL DEFAULT '';"
     "ALTER TABLE cases ADD COLUMN returned_by_name TEXT NOT NULL DEFAULT '';"
     "ALTER TABLE cases ADD COLUMN returned_reason TEXT NOT NULL DEFAULT '';"
     "ALTER TABLE cases ADD COLUMN returned_ms INTEGER NOT NULL DEFAULT 0;"},
};


struct Transition {
  const char* step;
  std::vector<CaseState> from;
  CaseState to;               // for resume: replaced by the state the case left
  std::vector<Role> roles;    // any of them
};

const std::vector<Transition>& transitions() {
  static const std::vector<Transition> kTransitions = {
      {"undertake", {CaseState::kAccepted}, CaseState::kUndertaken, {Role::kUndertaker}},
      {"review", {CaseState::kUndertaken}, CaseState::kReviewed, {Role::kReviewer}},
      {"approve", {CaseState::kReviewed}, CaseState::kApproved, {Role::kApprover}},
      {"deny", {CaseState::kReviewed}, CaseState::kDenied, {Role::kApprover}},
      {"conclude", {CaseState::kApproved, CaseState::kDenied}, CaseState::kConcluded, {Role::kClerk}},
      {"supplement", {CaseState::kAccepted, CaseState::kUndertaken}, CaseState::kSupplement,
       {Role::kClerk, Role::kUndertaker, Role::kReviewer}},
      {"resume", {CaseState::kSupplement}, CaseState::kAccepted, {Role::kClerk}},
  };
  return kTransitions;
}

bool isOpen(CaseState s) { return s != CaseState::kRefused && s != CaseState::kConcluded; }

std::string roleList(const std::vector<Role>& roles) {
  std::string out;
  for (size_t i = 0; i < roles.size(); ++i) out += (i ? " or " : "") + std::string(roleName(roles[i]));
  return out;
}

}  // namespace

const char* caseStateName(CaseState state) {
  switch (state) {
    case CaseState::kRefused: return "refused";
    case CaseState::kAccepted: return "accepted";
    case CaseState::kUndertaken: return "undertaken";
    case CaseState::kReviewed: return "reviewed";
    case CaseState::kApproved: return "approved";
    case CaseState::kDenied: return "denied";
    case CaseState::kConcluded: return "concluded";
    case CaseState::kSupplement: return "supplement";
  }
  return "unknown";
}

Result<CaseState> parseCaseState(const std::string& name) {
  for (CaseState s : {CaseState::kRefused, CaseState::kAccepted, CaseState::kUndertaken, CaseState::kReviewed,
                      CaseState::kApproved, CaseState::kDenied, CaseState::kConcluded, CaseState::kSupplement}) {
    if (name == caseStateName(s)) return s;
  }
  return Status(ErrorCode::kInvalidArgument, "unknown case state '" + name + "'");
}

const char* lightName(Light light) {
  switch (light) {
    case Light::kNone: return "none";
    case Light::kGreen: return "green";
    case Light::kYellow: return "yellow";
    case Light::kRed: return "red";
  }
  return "none";
}

Result<CaseService> CaseService::open(Database& db, const DivisionCode& self, const CatalogueStore& catalogue,
                                      const WorkingCalendar& calendar, MaterialStore& materials, EnqueueUp enqueue_up,
                                      CaseSettings settings, Notifier* notifier) {
  TB_RETURN_IF_ERROR(db.migrate("cases", kCaseMigrations));
  auto impl = std::make_shared<Impl>();
  impl->db = &db;
  impl->self = self;
  impl->catalogue = &catalogue;
  impl->calendar = &calendar;
  impl->materials = &materials;
  impl->enqueue_up = std::move(enqueue_up);
  impl->settings = settings;
  impl->notifier = notifier;
  CaseService service(impl);
  service.settings_ = settings;
  return service;
}

Result<std::string> CaseService::Impl::nextNumber() {
  TB_ASSIGN_OR_RETURN(auto stmt, db->prepare("UPDATE case_counter SET next = next + 1 WHERE id = 1 RETURNING next"));
  TB_ASSIGN_OR_RETURN(bool row, stmt.step());
  if (!row) return Status(ErrorCode::kInternal, "case counter missing");
  const int64_t n = stmt.columnInt64(0);
  TB_RETURN_IF_ERROR(stmt.run());  // finish the statement so the transaction can commit
  char buf[16];
  std::snprintf(buf, sizeof buf, "%08lld", static_cast<long long>(n));
  return self.str() + "-" + buf;
}

Status CaseService::Impl::saveRow(const CaseRecord& c, TimeMs now, bool insert) {
  TB_ASSIGN_OR_RETURN(auto stmt, db->prepare(
      insert ? "INSERT INTO cases (number, item_code, item_name, department, kind, applicant_id, applicant_name,"
               " contact, state, paused_from, accepted_ms, deadline_ms, concluded_ms, paused_ms, decided_at,"
               " refusal_notice, evaluation, updated_ms, held_for, forwarded, decider, decider_name, credential,"
               " catalogue_version)"
               " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20,"
               " ?21, ?22, ?23, ?24)"
             : "UPDATE cases SET item_code = ?2, item_name = ?3, department = ?4, kind = ?5, applicant_id = ?6,"
               " applicant_name = ?7, contact = ?8, state = ?9, paused_from = ?10, accepted_ms = ?11,"
               " deadline_ms = ?12, concluded_ms = ?13, paused_ms = ?14, decided_at = ?15, refusal_notice = ?16,"
               " evaluation = ?17, updated_ms = ?18, held_for = ?19, forwarded = ?20, decider = ?21,"
               " decider_name = ?22, credential = ?23, catalogue_version = ?24 WHERE number = ?1"));
  stmt.bind(1, c.number).bind(2, c.item_code).bind(3, c.item_name).bind(4, c.department).bind(5, itemKindName(c.kind));
  stmt.bind(6, c.applicant_id).bind(7, c.applicant_name).bind(8, c.contact).bind(9, caseStateName(c.state));
  stmt.bind(10, c.state == CaseState::kSupplement ? caseStateName(c.paused_from) : "");
  stmt.bind(11, c.accepted_ms).bind(12, c.deadline_ms).bind(13, c.concluded_ms).bind(14, c.paused_ms);
  stmt.bind(15, c.decided_at).bind(16, c.refusal_notice).bind(17, c.evaluation).bind(18, now);
  stmt.bind(19, c.held_for).bind(20, static_cast<int64_t>(c.forwarded ? 1 : 0)).bind(21, c.decider);
  stmt.bind(22, c.decider_name).bind(23, c.credential).bind(24, static_cast<int64_t>(c.catalogue_version));
  return stmt.run();
}

Status CaseService::Impl::record(CaseRecord& c, const std::string& step, const std::string& actor, TimeMs now,
                                 const std::string& note, const std::string& detail, bool insert) {
  if (insert) TB_RETURN_IF_ERROR(saveRow(c, now, true));
  CaseStep s{static_cast<uint32_t>(c.steps.size()), step, actor, now, note, detail};
  TB_ASSIGN_OR_RETURN(auto stmt, db->prepare(
      "INSERT INTO case_steps (number, idx, step, actor, at_ms, note, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"));
  stmt.bind(1, c.number).bind(2, static_cast<int64_t>(s.index)).bind(3, step).bind(4, actor).bind(5, now);
  stmt.bind(6, note).bind(7, detail);
  TB_RETURN_IF_ERROR(stmt.run());
  c.steps.push_back(s);
  if (!insert) TB_RETURN_IF_ERROR(saveRow(c, now, false));
  if (!c.held_for.empty() && hooks.progress) TB_RETURN_IF_ERROR(hooks.progress(c, s));
  if (!enqueue_up) return Status::ok();
  CaseEventInfo e;
  e.case_number = c.number;
  e.origin = self.str();
  e.item_code = c.item_code;
  e.department = c.department;
  e.step = step;
  e.state = caseStateName(c.state);
  e.actor = actor;
  e.at_ms = now;
  e.accepted_at_ms = c.accepted_ms;
  e.deadline_ms = c.deadline_ms;
  e.note = note;
  e.detail = detail;
  e.step_index = s.index;
  auto seq = enqueue_up(kCaseEventKind, encodeCaseEvent(e));
  return seq.status();
}

Result<CaseRecord> CaseService::Impl::load(const std::string& number) {
  if (number.empty() || number.size() > 40) return Status(ErrorCode::kInvalidArgument, "'" + number + "' is not a case number");
  TB_ASSIGN_OR_RETURN(auto stmt, db->prepare(
      "SELECT number, item_code, item_name, department, kind, applicant_id, applicant_name, contact, state,"
      " paused_from, accepted_ms, deadline_ms, concluded_ms, paused_ms, decided_at, refusal_notice, evaluation,"
      " held_for, forwarded, forward_seq, decider, decider_name, credential, catalogue_version, returned_by,"
      " returned_by_name, returned_reason, returned_ms FROM cases WHERE number = ?1"));
  stmt.bind(1, number);
  TB_ASSIGN_OR_RETURN(bool row, stmt.step());
  if (!row) return Status(ErrorCode::kNotFound, "no case " + number + " at this node");
  CaseRecord c;
  c.number = stmt.columnText(0);
  c.item_code = stmt.columnText(1);
  c.item_name = stmt.columnText(2);
  c.department = stmt.columnText(3);
  const std::string kind = stmt.columnText(4);
  c.kind = kind == "immediate" ? ItemKind::kImmediate : kind == "joint" ? ItemKind::kJoint
           : kind == "upward"  ? ItemKind::kUpward    : ItemKind::kCommitted;
  c.applicant_id = stmt.columnText(5);
  c.applicant_name = stmt.columnText(6);
  c.contact = stmt.columnText(7);
  TB_ASSIGN_OR_RETURN(c.state, parseCaseState(stmt.columnText(8)));
  if (c.state == CaseState::kSupplement) {
    TB_ASSIGN_OR_RETURN(c.paused_from, parseCaseState(stmt.columnText(9)));
  }
  c.accepted_ms = stmt.columnInt64(10);
  c.deadline_ms = stmt.columnInt64(11);
  c.concluded_ms = stmt.columnInt64(12);
  c.paused_ms = stmt.columnInt64(13);
  c.decided_at = stmt.columnText(14);
  c.refusal_notice = stmt.columnText(15);
  c.evaluation = stmt.columnText(16);
  c.held_for = stmt.columnText(17);
  c.forwarded = stmt.columnInt64(18) != 0;
  const auto forward_seq = static_cast<uint64_t>(stmt.columnInt64(19));
  c.decider = stmt.columnText(20);
  c.decider_name = stmt.columnText(21);
  c.credential = stmt.columnText(22);
  c.catalogue_version = static_cast<uint64_t>(stmt.columnInt64(23));
  c.returned_by = stmt.columnText(24);
  c.returned_by_name = stmt.columnText(25);
  c.returned_reason = stmt.columnText(26);
  c.returned_ms = stmt.columnInt64(27);

  TB_ASSIGN_OR_RETURN(auto steps, db->prepare(
      "SELECT idx, step, actor, at_ms, note, detail FROM case_steps WHERE number = ?1 ORDER BY idx"));
  steps.bind(1, number);
  while (true) {
    TB_ASSIGN_OR_RETURN(bool more, steps.step());
    if (!more) break;
    c.steps.push_back({static_cast<uint32_t>(steps.columnInt64(0)), steps.columnText(1), steps.columnText(2),
                       steps.columnInt64(3), steps.columnText(4), steps.columnText(5)});
  }
  TB_ASSIGN_OR_RETURN(auto reviews, db->prepare(
      "SELECT department, decision FROM case_reviews WHERE number = ?1 ORDER BY department"));
  reviews.bind(1, number);
  while (true) {
    TB_ASSIGN_OR_RETURN(bool more, reviews.step());
    if (!more) break;
    c.reviews.emplace_back(reviews.columnText(0), reviews.columnText(1));
  }
  TB_ASSIGN_OR_RETURN(auto mats, db->prepare("SELECT kind, hash FROM case_materials WHERE number = ?1 ORDER BY kind"));
  mats.bind(1, number);
  while (true) {
    TB_ASSIGN_OR_RETURN(bool more, mats.step());
    if (!more) break;
    c.materials.emplace_back(mats.columnText(0), mats.columnText(1));
    c.material_hashes.push_back(mats.columnText(1));
  }
  TB_ASSIGN_OR_RETURN(auto facts, db->prepare("SELECT key, value FROM case_facts WHERE number = ?1 ORDER BY key"));
  facts.bind(1, number);
  while (true) {
    TB_ASSIGN_OR_RETURN(bool more, facts.step());
    if (!more) break;
    c.facts.emplace_back(facts.columnText(0), facts.columnText(1));
  }
  if (c.forwarded) TB_RETURN_IF_ERROR(loadForwarding(c, forward_seq));
  return c;
}

Status CaseService::Impl::saveFacts(const std::string& number, const std::vector<std::pair<std::string, std::string>>& facts) {
  TB_ASSIGN_OR_RETURN(auto stmt, db->prepare("INSERT OR REPLACE INTO case_facts (number, key, value) VALUES (?1, ?2, ?3)"));
  for (const auto& [key, value] : facts) {
    stmt.reset();
    TB_RETURN_IF_ERROR(stmt.bind(1, number).bind(2, key).bind(3, value).run());
  }
  return Status::ok();
}

Light CaseService::Impl::lightOf(const CaseRecord& c, TimeMs now) const {
  if (!isOpen(c.state) || c.deadline_ms == 0) return Light::kNone;
  if (c.state == CaseState::kSupplement) return Light::kGreen;  // the clock is paused
  if (now >= c.deadline_ms) return Light::kRed;
  // deadline_ms is the end of the last allowed day, so that day is the deadline's "date".
  const CivilDate last_day = CivilDate::fromTimeMs(c.deadline_ms - 1);
  const int remaining = calendar->workingDaysBetween(CivilDate::fromTimeMs(now), last_day);
  return remaining <= settings.yellow_working_days ? Light::kYellow : Light::kGreen;
}

Light CaseService::lightOf(const CaseRecord& c, TimeMs now) const { return impl_->lightOf(c, now); }

Result<CaseRecord> CaseService::submit(const IntakeRequest& request, const Principal& clerk, TimeMs now) {
  Impl& m = *impl_;
  if (!clerk.has(Role::kClerk)) {
    return Status(ErrorCode::kPermissionDenied, clerk.username + " may not accept applications: that needs the clerk role");
  }
  const Catalogue* catalogue = m.catalogue->current();
  if (!catalogue) {
    return Status(ErrorCode::kUnavailable, "this node has no service catalogue yet; it arrives from the city when the link is up");
  }
  const CatalogueItem* item = catalogue->find(request.item_code);
  if (!item) return Status(ErrorCode::kNotFound, "no item '" + request.item_code + "' in catalogue version " + std::to_string(catalogue->version));
  if (!item->acceptableAt(m.self.level())) {
    return Status(ErrorCode::kFailedPrecondition, "a " + std::string(levelName(m.self.level())) + " hall may not accept this: " +
                                                      whereToApply(*item));
  }
  auto applicant = parseApplicantId(request.applicant_id, CivilDate::fromTimeMs(now));
  if (!applicant) return applicant.status().withContext("applicant_id");
  if (request.applicant_name.empty() || !limited(request.applicant_name, kMaxTextField)) {
    return Status(ErrorCode::kInvalidArgument, "applicant_name is required (at most 200 bytes)");
  }
  if (request.contact.empty() || !limited(request.contact, kMaxTextField)) {
    return Status(ErrorCode::kInvalidArgument, "contact is required (a phone number or address, at most 200 bytes)");
  }
  if (!limited(request.note, kMaxNote)) return Status(ErrorCode::kInvalidArgument, "note is longer than 2000 bytes");
  if (request.materials.size() > 64) return Status(ErrorCode::kInvalidArgument, "more than 64 materials offered");
  if (request.facts.size() > 16) return Status(ErrorCode::kInvalidArgument, "more than 16 facts");
  for (const auto& [key, value] : request.facts) {
    if (key.empty() || !limited(key, kMaxTextField) || value.empty() || !limited(value, kMaxTextField)) {
      return Status(ErrorCode::kInvalidArgument, "each fact needs a name and a value of at most 200 bytes ('" +
                                                     key.substr(0, 40) + "')");
    }
  }

  // Completeness check: every required kind must be present and valid; collect every problem
  // so the applicant is told once (一次性告知).
  std::vector<std::string> problems;
  std::vector<std::pair<std::string, std::string>> accepted_materials;  // kind → hash
  std::set<std::string> required(item->materials.begin(), item->materials.end());
  std::map<std::string, std::string> offered;
  for (const auto& offer : request.materials) {
    if (!required.count(offer.kind)) continue;  // extra materials are harmless; they are not kept with the case
    offered[offer.kind] = offer.hash;
  }
  for (const auto& kind : item->materials) {
    const std::string kind_name = catalogue->material_kinds.count(kind) ? catalogue->material_kinds.at(kind) : kind;
    auto it = offered.find(kind);
    if (it != offered.end() && !it->second.empty()) {
      // The file as this kind: one file may be stored under several kinds, each its own record.
      auto record = m.materials->get(it->second, applicant->number, kind);
      if (record) {
        accepted_materials.emplace_back(kind, record->hash);
      } else if (auto other = m.materials->get(it->second, applicant->number)) {
        problems.push_back(kind_name + ": the uploaded file is a '" + other->kind + "', not a '" + kind + "'");
      } else {
        problems.push_back(kind_name + ": the uploaded file " + it->second.substr(0, 12) + " is not this applicant's or was never uploaded");
      }
      continue;
    }
    TB_ASSIGN_OR_RETURN(auto reusable, m.materials->findReusable(applicant->number, kind));
    if (reusable) {
      accepted_materials.emplace_back(kind, reusable->hash);
    } else {
      problems.push_back(kind_name + " (" + kind + "): missing");
    }
  }

  CaseRecord c;
  c.item_code = item->code;
  c.item_name = item->name;
  c.department = item->department;
  c.kind = item->kind;
  c.applicant_id = applicant->number;
  c.applicant_name = request.applicant_name;
  c.contact = request.contact;
  c.accepted_ms = now;
  c.decided_at = levelName(item->decide_level);
  c.catalogue_version = catalogue->version;

  TB_ASSIGN_OR_RETURN(auto txn, m.db->begin());
  TB_ASSIGN_OR_RETURN(c.number, m.nextNumber());
  if (!problems.empty()) {
    c.state = CaseState::kRefused;
    c.deadline_ms = 0;
    std::string notice = "不予受理 — not accepted. Bring all of the following at once:";
    for (const auto& p : problems) notice += "\n- " + p;
    c.refusal_notice = notice;
    TB_RETURN_IF_ERROR(m.record(c, "refuse", clerk.username, now, request.note, notice, /*insert=*/true));
    TB_RETURN_IF_ERROR(txn.commit());
    return c;
  }
  c.state = CaseState::kAccepted;
  c.deadline_ms = m.calendar->deadlineMs(now, item->committed_days);
  c.facts = request.facts;
  TB_RETURN_IF_ERROR(m.record(c, "accept", clerk.username, now, request.note, "", /*insert=*/true));
  TB_RETURN_IF_ERROR(m.saveFacts(c.number, c.facts));
  for (const auto& [kind, hash] : accepted_materials) {
    TB_ASSIGN_OR_RETURN(auto stmt, m.db->prepare("INSERT INTO case_materials (number, kind, hash) VALUES (?1, ?2, ?3)"));
    TB_RETURN_IF_ERROR(stmt.bind(1, c.number).bind(2, kind).bind(3, hash).run());
  }
  std::sort(accepted_materials.begin(), accepted_materials.end());  // as load() reads them: by kind
  c.materials = accepted_materials;
  for (const auto& [kind, hash] : c.materials) c.material_hashes.push_back(hash);
  const bool decidable_here = m.self.level() <= item->decide_level;
  if (item->kind == ItemKind::kImmediate && decidable_here) {
    // 即办件: decided and handed over on the spot.
    c.state = CaseState::kConcluded;
    c.concluded_ms = now;
    std::string detail;
    if (m.issuer && !item->issues.empty() && item->decide_level == m.self.level()) {
      TB_ASSIGN_OR_RETURN(c.credential, m.issuer(c, now));
      detail = "issued " + item->issues + " " + c.credential;
    }
    TB_RETURN_IF_ERROR(m.record(c, "conclude", clerk.username, now, "immediate item concluded on the spot", detail));
  }
  if (!decidable_here && m.hooks.forward) {
    // 上报件: the case leaves with this transaction or not at all.
    TB_ASSIGN_OR_RETURN(uint64_t forward_seq, m.hooks.forward(c, clerk.username, now));
    c.forwarded = true;
    TB_ASSIGN_OR_RETURN(auto stmt, m.db->prepare("UPDATE cases SET forwarded = 1, forward_seq = ?2 WHERE number = ?1"));
    TB_RETURN_IF_ERROR(stmt.bind(1, c.number).bind(2, static_cast<int64_t>(forward_seq)).run());
  }
  TB_RETURN_IF_ERROR(txn.commit());
  if (c.forwarded) return get(c.number);  // with its location
  return c;
}

Result<CaseRecord> CaseService::step(const std::string& number, const StepRequest& request, const Principal& actor,
                                     TimeMs now) {
  Impl& m = *impl_;
  if (!limited(request.note, kMaxNote)) return Status(ErrorCode::kInvalidArgument, "note is longer than 2000 bytes");
  const Transition* t = nullptr;
  for (const auto& candidate : transitions()) {
    if (request.step == candidate.step) t = &candidate;
  }
  if (!t) {
    return Status(ErrorCode::kInvalidArgument, "unknown step '" + request.step +
                                                   "' (undertake, review, approve, deny, conclude, supplement, resume)");
  }
  TB_ASSIGN_OR_RETURN(auto txn, m.db->begin());
  TB_ASSIGN_OR_RETURN(CaseRecord c, m.load(number));
  if (c.forwarded) {
    return Status(ErrorCode::kFailedPrecondition, "case " + number + " is decided at the " + c.decided_at +
                                                      " level and its steps are taken there; it is " + c.location);
  }
  if (std::none_of(t->roles.begin(), t->roles.end(), [&](Role r) { return actor.has(r); })) {
    return Status(ErrorCode::kPermissionDenied, actor.username + " may not " + request.step + " a case: that needs the " +
                                                roleList(t->roles) + " role");
  }
  if (std::find(t->from.begin(), t->from.end(), c.state) == t->from.end()) {
    std::string allowed;
    for (size_t i = 0; i < t->from.size(); ++i) allowed += (i ? " or " : "") + std::string(caseStateName(t->from[i]));
    return Status(ErrorCode::kFailedPrecondition, "case " + number + " is " + caseStateName(c.state) + "; '" +
                                                      request.step + "' needs it to be " + allowed);
  }
  const bool window_step = request.step == "supplement" || request.step == "resume";
  const Catalogue* catalogue = m.catalogue->current();
  const CatalogueItem* item = catalogue ? catalogue->find(c.item_code) : nullptr;
  // The level recorded when the case was accepted (a held case: the level it was forwarded for),
  // not the current catalogue's: a catalogue that moves an item's decide level later does not
  // strand the cases already accepted under the old one.
  TB_ASSIGN_OR_RETURN(const Level decide_level, parseLevel(c.decided_at));
  if (!window_step && m.self.level() > decide_level) {
    return Status(ErrorCode::kFailedPrecondition, "case " + number + " is decided at " + c.decided_at +
                                                      " level, not here; it waits to be forwarded there");
  }

  std::string detail;
  CaseState next = t->to;
  if (request.step == "review" && c.kind == ItemKind::kJoint) {
    // 并联审批: each department reviews once, in any order; the case moves on when all have.
    if (!item) return Status(ErrorCode::kFailedPrecondition, "item " + c.item_code + " is no longer in the catalogue");
    const auto& deps = item->joint_departments;
    if (std::find(deps.begin(), deps.end(), request.department) == deps.end()) {
      std::string list;
      for (size_t i = 0; i < deps.size(); ++i) list += (i ? ", " : "") + deps[i];
      return Status(ErrorCode::kInvalidArgument, "department '" + request.department + "' is not one of this joint item's: " + list);
    }
    if (request.decision != "approve" && request.decision != "deny") {
      return Status(ErrorCode::kInvalidArgument, "a joint review needs decision 'approve' or 'deny'");
    }
    for (const auto& [dep, decision] : c.reviews) {
      if (dep == request.department) {
        return Status(ErrorCode::kFailedPrecondition, request.department + " already reviewed case " + number + " (" + decision + ")");
      }
    }
    TB_ASSIGN_OR_RETURN(auto stmt, m.db->prepare(
        "INSERT INTO case_reviews (number, department, decision, actor, at_ms) VALUES (?1, ?2, ?3, ?4, ?5)"));
    TB_RETURN_IF_ERROR(stmt.bind(1, number).bind(2, request.department).bind(3, request.decision)
                           .bind(4, actor.username).bind(5, now).run());
    c.reviews.emplace_back(request.department, request.decision);
    detail = request.department + ": " + request.decision;
    const bool denied = std::any_of(c.reviews.begin(), c.reviews.end(), [](auto& r) { return r.second == "deny"; });
    if (denied) {
      next = CaseState::kDenied;
    } else if (c.reviews.size() < deps.size()) {
      next = c.state;  // still waiting for other departments
    }
  }
  if (request.step == "supplement") {
    c.paused_from = c.state;
    c.paused_ms = now;
    detail = request.note;
  }
  if (request.step == "resume") {
    next = c.paused_from;
    // The working days spent waiting for the applicant do not count against the unit.
    const int paused_days =
        m.calendar->workingDaysBetween(CivilDate::fromTimeMs(c.paused_ms), CivilDate::fromTimeMs(now));
    const CivilDate old_last = CivilDate::fromTimeMs(c.deadline_ms - 1);
    c.deadline_ms = endOfDayMs(m.calendar->addWorkingDays(old_last, paused_days));
    detail = "paused " + std::to_string(paused_days) + " working days";
    c.paused_ms = 0;
  }
  if (next == CaseState::kConcluded && c.state == CaseState::kApproved && m.issuer && item && !item->issues.empty() &&
      decide_level == m.self.level()) {
    // 办结发证: the credential is issued in the same transaction as the conclusion.
    TB_ASSIGN_OR_RETURN(c.credential, m.issuer(c, now));
    detail = "issued " + item->issues + " " + c.credential;
  }
  c.state = next;
  if (next == CaseState::kConcluded) c.concluded_ms = now;
  TB_RETURN_IF_ERROR(m.record(c, request.step, actor.username, now, request.note, detail));
  TB_RETURN_IF_ERROR(txn.commit());
  return c;
}

Result<CaseRecord> CaseService::evaluate(const std::string& number, const std::string& grade, TimeMs now) {
  Impl& m = *impl_;
  if (grade != "satisfied" && grade != "basically_satisfied" && grade != "unsatisfied") {
    return Status(ErrorCode::kInvalidArgument, "grade must be satisfied, basically_satisfied or unsatisfied");
  }
  TB_ASSIGN_OR_RETURN(auto txn, m.db->begin());
  TB_ASSIGN_OR_RETURN(CaseRecord c, m.load(number));
  if (c.state != CaseState::kConcluded) {
    return Status(ErrorCode::kFailedPrecondition, "case " + number + " is " + caseStateName(c.state) + "; only a concluded case is evaluated");
  }
  if (!c.evaluation.empty()) {
    return Status(ErrorCode::kAlreadyExists, "case " + number + " was already evaluated (" + c.evaluation + ")");
  }
  c.evaluation = grade;
  TB_RETURN_IF_ERROR(m.record(c, "evaluate", "citizen", now, "", grade));
  TB_RETURN_IF_ERROR(txn.commit());
  return c;
}

Status CaseService::complain(const std::string& number, const std::string& department, const std::string& text,
                             TimeMs now) {
  Impl& m = *impl_;
  if (text.empty() || !limited(text, kMaxNote)) return Status(ErrorCode::kInvalidArgument, "a complaint needs a text of at most 2000 bytes");
  if (number.empty() && department.empty()) {
    return Status(ErrorCode::kInvalidArgument, "a complaint names a case number or a department");
  }
  TB_ASSIGN_OR_RETURN(auto txn, m.db->begin());
  std::string dep = department;
  if (!number.empty()) {
    TB_ASSIGN_OR_RETURN(CaseRecord c, m.load(number));
    if (dep.empty()) dep = c.department;
    TB_RETURN_IF_ERROR(m.record(c, "complain", "citizen", now, text, dep));
  } else if (m.enqueue_up) {
    CaseEventInfo e;
    e.origin = m.self.str();
    e.department = dep;
    e.step = "complain";
    e.actor = "citizen";
    e.at_ms = now;
    e.note = text;
    TB_RETURN_IF_ERROR(m.enqueue_up(kCaseEventKind, encodeCaseEvent(e)).status());
  }
  TB_ASSIGN_OR_RETURN(auto stmt, m.db->prepare("INSERT INTO complaints (number, department, text, at_ms) VALUES (?1, ?2, ?3, ?4)"));
  TB_RETURN_IF_ERROR(stmt.bind(1, number).bind(2, dep).bind(3, text).bind(4, now).run());
  return txn.commit();
}

Result<CaseRecord> CaseService::get(const std::string& number) {
  TB_ASSIGN_OR_RETURN(CaseRecord c, impl_->load(number));
  return c;
}

Result<std::vector<CaseRecord>> CaseService::list(const std::string& state, const std::string& light, size_t limit,
                                                  TimeMs now) {
  if (!state.empty()) TB_RETURN_IF_ERROR(parseCaseState(state).status());
  if (!light.empty() && light != "green" && light != "yellow" && light != "red" && light != "none") {
    return Status(ErrorCode::kInvalidArgument, "light must be green, yellow, red or none");
  }
  TB_ASSIGN_OR_RETURN(auto stmt, impl_->db->prepare(
      "SELECT number FROM cases WHERE (?1 = '' OR state = ?1) ORDER BY accepted_ms DESC, number DESC LIMIT ?2"));
  // Light filters run after loading, so read more rows than asked for (bounded).
  stmt.bind(1, state).bind(2, static_cast<int64_t>(light.empty() ? limit : std::max<size_t>(limit * 20, 1000)));
  std::vector<std::string> numbers;
  while (true) {
    TB_ASSIGN_OR_RETURN(bool row, stmt.step());
    if (!row) break;
    numbers.push_back(stmt.columnText(0));
  }
  std::vector<CaseRecord> out;
  for (const auto& n : numbers) {
    if (out.size() >= limit) break;
    TB_ASSIGN_OR_RETURN(CaseRecord c, impl_->load(n));
    c.light = impl_->lightOf(c, now);
    if (!light.empty() && light != lightName(c.light)) continue;
    out.push_back(std::move(c));
  }
  return out;
}

Result<std::vector<CaseRecord>> CaseService::warnings(TimeMs now) {
  TB_ASSIGN_OR_RETURN(auto stmt, impl_->db->prepare(
      "SELECT number FROM cases WHERE state NOT IN ('refused', 'concluded', 'supplement') ORDER BY deadline_ms"));
  std::vector<CaseRecord> out;
  std::vector<std::string> numbers;
  while (true) {
    TB_ASSIGN_OR_RETURN(bool row, stmt.step());
    if (!row) break;
    numbers.push_back(stmt.columnText(0));
  }
  for (const auto& n : numbers) {
    TB_ASSIGN_OR_RETURN(CaseRecord c, impl_->load(n));
    c.light = impl_->lightOf(c, now);
    if (c.light == Light::kYellow || c.light == Light::kRed) out.push_back(std::move(c));
  }
  return out;
}

Result<int> CaseService::scanLights(TimeMs now) {
  Impl& m = *impl_;
  TB_ASSIGN_OR_RETURN(auto open_cases, warnings(now));
  int recorded = 0;
  for (auto& c : open_cases) {
    if (c.forwarded) continue;  // its lights are the decider's: it runs the clock and records them
    // A red case has passed yellow too: record the yellow transition first if it was missed
    // (the node was down, or the limit is shorter than the yellow threshold).
    std::vector<Light> lights = {Light::kYellow};
    if (c.light == Light::kRed) lights.push_back(Light::kRed);
    for (Light light : lights) {
      TB_ASSIGN_OR_RETURN(auto txn, m.db->begin());
      TB_ASSIGN_OR_RETURN(auto stmt, m.db->prepare(
          "INSERT OR IGNORE INTO case_lights (number, light, at_ms) VALUES (?1, ?2, ?3)"));
      TB_RETURN_IF_ERROR(stmt.bind(1, c.number).bind(2, lightName(light)).bind(3, now).run());
      if (m.db->changes() == 0) continue;  // recorded before; the transaction rolls back harmlessly
      const std::string responsible = c.steps.empty() ? "" : c.steps.back().actor;
      const std::string message = std::string(light == Light::kRed ? "overdue" : "nearing its time limit") +
                                  ": case " + c.number + " (" + c.item_name + "), due " +
                                  CivilDate::fromTimeMs(c.deadline_ms - 1).toString();
      TB_RETURN_IF_ERROR(m.record(c, lightName(light), "system", now, message, responsible));
      TB_RETURN_IF_ERROR(txn.commit());
      ++recorded;
      if (m.notifier) m.notifier->notify(c.number, light, responsible, message);
    }
  }
  return recorded;
}

Bytes encodeCaseEvent(const CaseEventInfo& e) {
  capnp::MallocMessageBuilder b;
  auto w = b.initRoot<wire::CaseEvent>();
  w.setCaseNumber(e.case_number);
  w.setOrigin(e.origin);
  w.setItemCode(e.item_code);
  w.setDepartment(e.department);
  w.setStep(e.step);
  w.setState(e.state);
  w.setActor(e.actor);
  w.setAtMs(e.at_ms);
  w.setAcceptedAtMs(e.accepted_at_ms);
  w.setDeadlineMs(e.deadline_ms);
  w.setNote(e.note);
  w.setDetail(e.detail);
  w.setStepIndex(e.step_index);
  return capnp_io::flatBytes(b);
}

Result<CaseEventInfo> decodeCaseEvent(const Bytes& bytes) {
  return capnp_io::read<wire::CaseEvent>(bytes, "case event", 64 * 1024, [](wire::CaseEvent::Reader w) -> Result<CaseEventInfo> {
    using capnp_io::text;
    CaseEventInfo e;
    e.case_number = text(w.getCaseNumber());
    e.origin = text(w.getOrigin());
    e.item_code = text(w.getItemCode());
    e.department = text(w.getDepartment());
    e.step = text(w.getStep());
    e.state = text(w.getState());
    e.actor = text(w.getActor());
    e.at_ms = w.getAtMs();
    e.accepted_at_ms = w.getAcceptedAtMs();
    e.deadline_ms = w.getDeadlineMs();
    e.note = text(w.getNote());
    e.detail = text(w.getDetail());
    e.step_index = w.getStepIndex();
    if (e.step.empty() || !DivisionCode::parse(e.origin).isOk()) {
      return Status(ErrorCode::kMalformed, "case event lacks a step or a valid origin");
    }
    return e;
  });
}

}  // namespace tongban
