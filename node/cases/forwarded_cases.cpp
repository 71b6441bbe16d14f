// The forwarded-case side of the case service (上报件): where a case accepted here and decided
// elsewhere is, the decider taking a case in, and the origin mirroring the decider's steps.
#include <cstdio>
#include <set>

#include "node/cases/case_service_impl.h"

namespace tongban {

std::string cstMinute(TimeMs ms) {
  const TimeMs local = ms + kCstOffsetMs;
  const TimeMs minute_of_day = ((local % 86400000) + 86400000) % 86400000 / 60000;
  char buf[8];
  std::snprintf(buf, sizeof buf, "%02d:%02d", static_cast<int>(minute_of_day / 60), static_cast<int>(minute_of_day % 60));
  return CivilDate::fromTimeMs(ms).toString() + " " + buf;
}

Status CaseService::Impl::loadForwarding(CaseRecord& c, uint64_t forward_seq) {
  TB_ASSIGN_OR_RETURN(auto steps, db->prepare(
      "SELECT idx, step, actor, at_ms, note, detail FROM case_decider_steps WHERE number = ?1 ORDER BY idx"));
  steps.bind(1, c.number);
  while (true) {
    TB_ASSIGN_OR_RETURN(bool more, steps.step());
    if (!more) break;
    c.decider_steps.push_back({static_cast<uint32_t>(steps.columnInt64(0)), steps.columnText(1), steps.columnText(2),
                               steps.columnInt64(3), steps.columnText(4), steps.columnText(5)});
  }
  const std::string where = c.decider_name.empty() ? c.decider : c.decider_name + " (" + c.decider + ")";
  if (!c.decider_steps.empty()) {
    const CaseStep& last = c.decider_steps.back();
    c.location = c.state == CaseState::kConcluded
                     ? "decided at " + where + ", concluded " + cstMinute(last.at_ms) + "; the result is handed over here"
                     : "at " + where + ": " + caseStateName(c.state) + " since " + cstMinute(last.at_ms);
    return Status::ok();
  }
  if (!c.returned_by.empty()) {
    const std::string by = c.returned_by_name.empty() ? c.returned_by : c.returned_by_name + " (" + c.returned_by + ")";
    c.location = "returned (退回) by " + by + " on " + cstMinute(c.returned_ms) + ": " + c.returned_reason +
                 "; it was not taken in at the " + c.decided_at + " level";
    return Status::ok();
  }
  c.waiting_for_uplink = forward_seq != 0 && hooks.pending && hooks.pending(forward_seq);
  if (c.waiting_for_uplink) {
    c.location = "waiting for the uplink since " + cstMinute(c.accepted_ms) + " (it leaves when the link to the parent is up)";
    return Status::ok();
  }
  const std::string refused = forward_seq != 0 && hooks.refused ? hooks.refused(forward_seq) : "";
  c.location = refused.empty() ? "sent up towards the " + c.decided_at + " level; not yet taken in there"
                               : "refused on the way up, not taken in at the " + c.decided_at + " level: " + refused;
  return Status::ok();
}

void CaseService::setForwardingHooks(ForwardingHooks hooks) { impl_->hooks = std::move(hooks); }
void CaseService::setCredentialIssuer(CredentialIssuer issuer) { impl_->issuer = std::move(issuer); }

Result<Received> CaseService::receiveForwarded(const ForwardedCase& fc, TimeMs now) {
  Impl& m = *impl_;
  if (!m.db->inTransaction()) {
    return Status(ErrorCode::kInternal, "receiveForwarded runs inside the applying transaction");
  }
  std::set<std::string> kinds;
  for (const auto& [kind, hash] : fc.materials) {
    if (!kinds.insert(kind).second) {
      return Status(ErrorCode::kInvalidArgument, "case " + fc.number + " lists material kind '" + kind + "' twice");
    }
  }
  if (auto existing = m.load(fc.number); existing.isOk()) {
    return Received::kAlreadyHeld;
  } else if (existing.status().code() != ErrorCode::kNotFound) {
    return existing.status();
  }
  CaseRecord c;
  c.number = fc.number;
  c.item_code = fc.item_code;
  c.item_name = fc.item_name;
  c.department = fc.department;
  c.kind = fc.kind;
  c.applicant_id = fc.applicant_id;
  c.applicant_name = fc.applicant_name;
  c.contact = fc.contact;
  c.state = CaseState::kAccepted;
  // The clock started when the citizen applied at the origin, not when the case arrived here.
  c.accepted_ms = fc.accepted_ms;
  c.deadline_ms = fc.deadline_ms;
  c.decided_at = levelName(fc.decide_level);
  c.held_for = fc.origin;
  c.catalogue_version = fc.catalogue_version;
  c.facts = fc.facts;
  TB_RETURN_IF_ERROR(m.record(c, "receive", "system", now, "accepted at " + fc.origin + " by " + fc.accepted_by,
                              fc.route, /*insert=*/true));
  TB_RETURN_IF_ERROR(m.saveFacts(c.number, c.facts));
  for (const auto& [kind, hash] : fc.materials) {
    TB_ASSIGN_OR_RETURN(auto stmt, m.db->prepare("INSERT INTO case_materials (number, kind, hash) VALUES (?1, ?2, ?3)"));
    TB_RETURN_IF_ERROR(stmt.bind(1, c.number).bind(2, kind).bind(3, hash).run());
  }
  return Received::kTakenIn;
}

Result<bool> CaseService::applyDeciderStep(const DeciderStep& s, TimeMs now) {
  Impl& m = *impl_;
  TB_ASSIGN_OR_RETURN(CaseRecord c, m.load(s.number));
  if (!c.forwarded) {
    return Status(ErrorCode::kInvalidArgument, "case " + s.number + " was not forwarded from here; " + s.decider +
                                                   " cannot report steps on it");
  }
  // Authority, from what this node recorded when it accepted the case: only its ancestor at the
  // case's decide level decides it (a returned case: a hop at or below that level on the way).
  TB_ASSIGN_OR_RETURN(const Level decide_level, parseLevel(c.decided_at));
  TB_ASSIGN_OR_RETURN(const DivisionCode signer, DivisionCode::parse(s.decider));
  const bool returned = s.step.step == kReturnedStep;
  const bool on_the_way = signer.isAncestorOf(m.self) && static_cast<int>(signer.level()) >= static_cast<int>(decide_level);
  if (s.decide_level != decide_level || !on_the_way || (!returned && signer.level() != decide_level)) {
    return Status(ErrorCode::kUnauthorized,
                  "case " + s.number + " is decided by " + m.self.str() + "'s " + c.decided_at + "-level ancestor; " +
                      s.decider + " (" + levelName(signer.level()) + " level, claiming " + levelName(s.decide_level) +
                      ") may not " + (returned ? "return it" : "report steps on it"));
  }
  if (!c.decider.empty() && c.decider != s.decider) {
    return Status(ErrorCode::kInvalidArgument, "case " + s.number + " is decided at " + c.decider + ", not at " +
                                                   s.decider);
  }
  if (returned) {
    // Refused on the way up: no decider holds it. Once a decider reported, or once returned, a
    // (late or repeated) return changes nothing.
    if (!c.decider_steps.empty() || !c.returned_by.empty()) return false;
    TB_ASSIGN_OR_RETURN(auto stmt, m.db->prepare(
        "UPDATE cases SET returned_by = ?2, returned_by_name = ?3, returned_reason = ?4, returned_ms = ?5,"
        " updated_ms = ?6 WHERE number = ?1"));
    stmt.bind(1, s.number).bind(2, s.decider).bind(3, s.decider_name).bind(4, s.step.note).bind(5, s.step.at_ms);
    TB_RETURN_IF_ERROR(stmt.bind(6, now).run());
    return true;
  }
  TB_ASSIGN_OR_RETURN(auto state, parseCaseState(s.state));
  TB_ASSIGN_OR_RETURN(auto stmt, m.db->prepare(
      "INSERT OR IGNORE INTO case_decider_steps (number, idx, step, state, actor, at_ms, note, detail, received_ms)"
      " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"));
  stmt.bind(1, s.number).bind(2, static_cast<int64_t>(s.step.index)).bind(3, s.step.step).bind(4, s.state);
  stmt.bind(5, s.step.actor).bind(6, s.step.at_ms).bind(7, s.step.note).bind(8, s.step.detail).bind(9, now);
  TB_RETURN_IF_ERROR(stmt.run());
  if (m.db->changes() == 0) return false;
  // Steps travel in order on one path, so the newest is the last applied; a stray older one
  // (never expected) is kept in the history without moving the state back.
  TB_ASSIGN_OR_RETURN(auto newest, m.db->prepare("SELECT MAX(idx) FROM case_decider_steps WHERE number = ?1"));
  newest.bind(1, s.number);
  TB_ASSIGN_OR_RETURN(bool row, newest.step());
  if (row && newest.columnInt64(0) > static_cast<int64_t>(s.step.index)) return true;
  c.decider = s.decider;
  c.decider_name = s.decider_name;
  if (c.state == CaseState::kSupplement && state != CaseState::kSupplement) c.paused_ms = 0;
  if (state == CaseState::kSupplement && c.state != CaseState::kSupplement) {
    c.paused_from = c.state;
    c.paused_ms = s.step.at_ms;
  }
  c.state = state;
  c.deadline_ms = s.deadline_ms;
  c.concluded_ms = s.concluded_ms;
  if (!s.credential.empty()) c.credential = s.credential;
  TB_RETURN_IF_ERROR(m.saveRow(c, now, false));
  return true;
}

}  // namespace tongban
