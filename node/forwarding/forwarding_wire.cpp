#include "node/forwarding/forwarding_wire.h"

#include <set>

#include "federation/util/capnp_io.h"
#include "schema/forwarding.capnp.h"

namespace tongban::forwarding_wire {

namespace {
bool tooLong(const std::string& s) { return s.size() > kMaxForwardedText; }
}  // namespace

Bytes encodeRelay(const Relay& r) {
  capnp::MallocMessageBuilder b;
  auto w = b.initRoot<wire::CaseRelay>();
  w.setStatement(capnp_io::dataOf(r.statement));
  auto hops = w.initHops(static_cast<unsigned>(r.hops.size()));
  for (unsigned i = 0; i < r.hops.size(); ++i) {
    hops[i].setDivision(r.hops[i].division);
    hops[i].setAtMs(r.hops[i].at_ms);
  }
  return capnp_io::flatBytes(b);
}

Result<Relay> decodeRelay(const Bytes& bytes) {
  return capnp_io::read<wire::CaseRelay>(bytes, "case relay", kMaxRelayBytes, [](wire::CaseRelay::Reader w) -> Result<Relay> {
    Relay r;
    r.statement = capnp_io::bytesOf(w.getStatement());
    if (r.statement.empty()) return Status(ErrorCode::kMalformed, "case relay carries no statement");
    if (w.getHops().size() == 0 || w.getHops().size() > kMaxHops) {
      return Status(ErrorCode::kMalformed, "case relay has " + std::to_string(w.getHops().size()) +
                                               " hops; between 1 and " + std::to_string(kMaxHops) + " expected");
    }
    for (auto h : w.getHops()) r.hops.push_back({capnp_io::text(h.getDivision()), h.getAtMs()});
    return r;
  });
}

Bytes encodeTransfer(const Transfer& t) {
  capnp::MallocMessageBuilder b;
  auto w = b.initRoot<wire::CaseTransfer>();
  w.setCaseNumber(t.number);
  w.setOrigin(t.origin);
  w.setOriginName(t.origin_name);
  w.setItemCode(t.item_code);
  w.setItemName(t.item_name);
  w.setDepartment(t.department);
  w.setKind(t.kind);
  w.setDecideLevel(t.decide_level);
  w.setApplicantId(t.applicant_id);
  w.setApplicantName(t.applicant_name);
  w.setContact(t.contact);
  w.setAcceptedAtMs(t.accepted_ms);
  w.setDeadlineMs(t.deadline_ms);
  w.setAcceptedBy(t.accepted_by);
  w.setNote(t.note);
  auto mats = w.initMaterials(static_cast<unsigned>(t.materials.size()));
  for (unsigned i = 0; i < t.materials.size(); ++i) mats.set(i, capnp_io::dataOf(t.materials[i]));
  w.setCatalogueVersion(t.catalogue_version);
  auto facts = w.initFacts(static_cast<unsigned>(t.facts.size()));
  for (unsigned i = 0; i < t.facts.size(); ++i) {
    facts[i].setKey(t.facts[i].first);
    facts[i].setValue(t.facts[i].second);
  }
  return capnp_io::flatBytes(b);
}

Result<Transfer> decodeTransfer(const Bytes& bytes) {
  return capnp_io::read<wire::CaseTransfer>(bytes, "case transfer", kMaxRelayBytes, [](wire::CaseTransfer::Reader w) -> Result<Transfer> {
    using capnp_io::text;
    Transfer t;
    t.number = text(w.getCaseNumber());
    t.origin = text(w.getOrigin());
    t.origin_name = text(w.getOriginName());
    t.item_code = text(w.getItemCode());
    t.item_name = text(w.getItemName());
    t.department = text(w.getDepartment());
    t.kind = text(w.getKind());
    t.decide_level = w.getDecideLevel();
    t.applicant_id = text(w.getApplicantId());
    t.applicant_name = text(w.getApplicantName());
    t.contact = text(w.getContact());
    t.accepted_ms = w.getAcceptedAtMs();
    t.deadline_ms = w.getDeadlineMs();
    t.accepted_by = text(w.getAcceptedBy());
    t.note = text(w.getNote());
    if (w.getMaterials().size() > kMaxTransferMaterials) {
      return Status(ErrorCode::kMalformed, "case transfer lists more than 64 materials");
    }
    std::set<std::string> kinds;
    for (auto m : w.getMaterials()) {
      t.materials.push_back(capnp_io::bytesOf(m));
      auto record = decodeMaterialRecord(t.materials.back());
      if (!record) return record.status().withContext("a material of case transfer " + t.number);
      // The decider keeps one file per kind (case_materials is keyed by case and kind).
      if (!kinds.insert(record->kind).second) {
        return Status(ErrorCode::kMalformed, "case transfer " + t.number + " lists material kind '" +
                                                 record->kind.substr(0, 64) + "' twice");
      }
      t.records.push_back(std::move(record).value());
    }
    t.catalogue_version = w.getCatalogueVersion();
    if (w.getFacts().size() > kMaxTransferFacts) return Status(ErrorCode::kMalformed, "case transfer lists more than 16 facts");
    for (auto f : w.getFacts()) t.facts.emplace_back(text(f.getKey()), text(f.getValue()));
    for (const auto* s : {&t.number, &t.item_code, &t.item_name, &t.department, &t.applicant_id, &t.applicant_name,
                          &t.contact, &t.accepted_by, &t.note, &t.origin_name}) {
      if (tooLong(*s)) return Status(ErrorCode::kMalformed, "case transfer has a field longer than 2000 bytes");
    }
    if (t.decide_level < 1 || t.decide_level > 4) {
      return Status(ErrorCode::kMalformed, "case transfer has decide level " + std::to_string(t.decide_level));
    }
    if (t.number.rfind(t.origin + "-", 0) != 0) {
      return Status(ErrorCode::kMalformed, "case number " + t.number + " was not given by its origin " + t.origin);
    }
    return t;
  });
}

Bytes encodeProgress(const Progress& p) {
  capnp::MallocMessageBuilder b;
  auto w = b.initRoot<wire::CaseProgress>();
  w.setCaseNumber(p.number);
  w.setDecider(p.decider);
  w.setDeciderName(p.decider_name);
  w.setStepIndex(p.step_index);
  w.setStep(p.step);
  w.setState(p.state);
  w.setActor(p.actor);
  w.setAtMs(p.at_ms);
  w.setNote(p.note);
  w.setDetail(p.detail);
  w.setDeadlineMs(p.deadline_ms);
  w.setConcludedAtMs(p.concluded_ms);
  w.setCredential(capnp_io::dataOf(p.credential));
  w.setCredentialNumber(p.credential_number);
  w.setDecideLevel(p.decide_level);
  return capnp_io::flatBytes(b);
}

Result<Progress> decodeProgress(const Bytes& bytes) {
  return capnp_io::read<wire::CaseProgress>(bytes, "case progress", kMaxProgressBytes, [](wire::CaseProgress::Reader w) -> Result<Progress> {
    using capnp_io::text;
    Progress p;
    p.number = text(w.getCaseNumber());
    p.decider = text(w.getDecider());
    p.decider_name = text(w.getDeciderName());
    p.step_index = w.getStepIndex();
    p.step = text(w.getStep());
    p.state = text(w.getState());
    p.actor = text(w.getActor());
    p.at_ms = w.getAtMs();
    p.note = text(w.getNote());
    p.detail = text(w.getDetail());
    p.deadline_ms = w.getDeadlineMs();
    p.concluded_ms = w.getConcludedAtMs();
    p.credential = capnp_io::bytesOf(w.getCredential());
    p.credential_number = text(w.getCredentialNumber());
    p.decide_level = w.getDecideLevel();
    if (p.number.empty() || p.step.empty()) return Status(ErrorCode::kMalformed, "case progress lacks a case number or a step");
    for (const auto* s : {&p.number, &p.decider, &p.decider_name, &p.step, &p.state, &p.actor, &p.note, &p.detail,
                          &p.credential_number}) {
      if (tooLong(*s)) return Status(ErrorCode::kMalformed, "case progress has a field longer than 2000 bytes");
    }
    if (p.decide_level < 1 || p.decide_level > 4) {
      return Status(ErrorCode::kMalformed, "case progress on " + p.number.substr(0, 40) + " has decide level " +
                                               std::to_string(p.decide_level) + "; 1 (city) to 4 (village) expected");
    }
    return p;
  });
}

}  // namespace tongban::forwarding_wire
