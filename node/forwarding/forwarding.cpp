#include "node/forwarding/forwarding.h"

#include <spdlog/spdlog.h>

#include "node/forwarding/forwarding_wire.h"

namespace tongban {

using namespace forwarding_wire;

namespace {

const std::vector<Migration> kForwardingMigrations = {
    {1,
     // The audit trail: every forwarded transfer and step this node made, passed on or took in.
     "CREATE TABLE case_passages (id INTEGER PRIMARY KEY AUTOINCREMENT, number TEXT NOT NULL, what TEXT NOT NULL,"
     "  step_index INTEGER NOT NULL, action TEXT NOT NULL, from_division TEXT NOT NULL, to_division TEXT NOT NULL,"
     "  route TEXT NOT NULL, at_ms INTEGER NOT NULL);"
     "CREATE INDEX case_passages_by_number ON case_passages (number, id);"},
    {2,
     // The decide level the transfer or step named (1 city .. 4 village; 0 in rows from before):
     // a hop that passed a case up refuses steps on it that claim another level.
     "ALTER TABLE case_passages ADD COLUMN decide_level INTEGER NOT NULL DEFAULT 0;"},
};

std::string routeText(const std::vector<Hop>& hops) {
  std::string out;
  for (const auto& h : hops) out += (out.empty() ? "" : " → ") + h.division;
  return out;
}

// The division a case number was given by ("440604001001-00000012" → 440604001001).
Result<DivisionCode> originOf(const std::string& number) {
  const auto dash = number.find('-');
  if (dash == std::string::npos) return Status(ErrorCode::kInvalidArgument, "'" + number + "' is not a case number");
  return DivisionCode::parse(number.substr(0, dash));
}

}  // namespace

void registerForwardingKinds(KindRegistry& registry) {
  registry.add(kCaseTransferKind, {"case-transfer", Direction::kStatement, /*durable=*/false});
  registry.add(kCaseRelayUpKind, {"case-relay-up", Direction::kUpToParent, /*durable=*/true});
  registry.add(kCaseProgressKind, {"case-progress", Direction::kStatement, /*durable=*/false});
  registry.add(kCaseRelayDownKind, {"case-relay-down", Direction::kDownToDescendant, /*durable=*/true});
}

struct ForwardingService::Impl {
  Database* db;
  const Identity* identity;
  const Verifier* verifier;
  CaseService* cases;
  MaterialStore* materials;
  EnqueueTo enqueue_to;
  std::function<bool(uint64_t)> outbox_pending;
  std::function<std::string(uint64_t)> outbox_refused;
  CredentialLink credentials;

  const DivisionCode& self() const { return identity->division; }

  Status recordPassage(const Passage& p) {
    TB_ASSIGN_OR_RETURN(auto stmt, db->prepare(
        "INSERT INTO case_passages (number, what, step_index, action, from_division, to_division, route, at_ms,"
        " decide_level) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"));
    stmt.bind(1, p.number).bind(2, p.what).bind(3, static_cast<int64_t>(p.step_index)).bind(4, p.action);
    stmt.bind(5, p.from).bind(6, p.to).bind(7, p.route).bind(8, p.at_ms).bind(9, static_cast<int64_t>(p.decide_level));
    return stmt.run();
  }

  // The decide level named by the transfer of `number` that this node sent, passed up or took in
  // (none if the case never went up through here).
  Result<std::optional<Level>> levelSeen(const std::string& number) {
    TB_ASSIGN_OR_RETURN(auto stmt, db->prepare(
        "SELECT decide_level FROM case_passages WHERE number = ?1 AND what = 'transfer' AND decide_level > 0"
        " ORDER BY id LIMIT 1"));
    stmt.bind(1, number);
    TB_ASSIGN_OR_RETURN(bool row, stmt.step());
    if (!row) return std::optional<Level>();
    return std::optional<Level>(static_cast<Level>(stmt.columnInt64(0)));
  }

  Bytes seal(MessageKind kind, const DivisionCode& about, const Bytes& payload, TimeMs now) {
    SealParams p;
    p.kind = kind;
    p.timestamp_ms = now;
    p.target = about;  // not checked for a statement; names whom it concerns
    p.payload = payload;
    return sealEnvelope(*identity, p);
  }

  Result<uint64_t> forward(const CaseRecord& c, const std::string& clerk, TimeMs now) {
    const auto parent = self().parent();
    if (!parent) return Status(ErrorCode::kInternal, "the city decides everything; nothing to forward");
    TB_ASSIGN_OR_RETURN(Level decide_level, parseLevel(c.decided_at));
    Transfer t;
    t.number = c.number;
    t.origin = self().str();
    t.origin_name = identity->name;
    t.item_code = c.item_code;
    t.item_name = c.item_name;
    t.department = c.department;
    t.kind = itemKindName(c.kind);
    t.decide_level = static_cast<uint8_t>(decide_level);
    t.applicant_id = c.applicant_id;
    t.applicant_name = c.applicant_name;
    t.contact = c.contact;
    t.accepted_ms = c.accepted_ms;
    t.deadline_ms = c.deadline_ms;
    t.accepted_by = clerk;
    t.note = c.steps.empty() ? "" : c.steps.front().note;
    t.facts = c.facts;
    t.catalogue_version = c.catalogue_version;
    // The case's own (kind, file) rows, each with the record of that file as that kind: one file
    // may be stored under two kinds, and each kind goes up once.
    for (const auto& [kind, hash] : c.materials) {
      TB_ASSIGN_OR_RETURN(MaterialRecordInfo record, materials->get(hash, c.applicant_id, kind));
      t.materials.push_back(encodeMaterialRecord(record));
    }
    Relay relay{seal(kCaseTransferKind, *parent, encodeTransfer(t), now), {{self().str(), now}}};
    TB_ASSIGN_OR_RETURN(uint64_t seq, enqueue_to(*parent, kCaseRelayUpKind, encodeRelay(relay)));
    TB_RETURN_IF_ERROR(recordPassage({c.number, "transfer", 0, "sent up", "", parent->str(), self().str(), now,
                                      t.decide_level}));
    return seq;
  }

  Status progress(const CaseRecord& c, const CaseStep& step) {
    TB_ASSIGN_OR_RETURN(DivisionCode origin, DivisionCode::parse(c.held_for));
    auto next = self().childToward(origin);
    if (!next) {
      return Status(ErrorCode::kInternal, "case " + c.number + " is held for " + c.held_for + ", which is not below " +
                                              self().str());
    }
    TB_ASSIGN_OR_RETURN(Level decide_level, parseLevel(c.decided_at));
    Progress p;
    p.number = c.number;
    p.decider = self().str();
    p.decider_name = identity->name;
    p.step_index = step.index;
    p.step = step.step;
    p.state = caseStateName(c.state);
    p.actor = step.actor;
    p.at_ms = step.at_ms;
    p.note = step.note;
    p.detail = step.detail;
    p.deadline_ms = c.deadline_ms;
    p.concluded_ms = c.concluded_ms;
    p.decide_level = static_cast<uint8_t>(decide_level);
    if (step.step == "conclude" && !c.credential.empty() && credentials.sealed_of) {
      TB_ASSIGN_OR_RETURN(auto sealed, credentials.sealed_of(c.credential));
      if (!sealed) return Status(ErrorCode::kInternal, "credential " + c.credential + " of case " + c.number + " is not held here");
      p.credential = *sealed;
      p.credential_number = c.credential;
    }
    Relay relay{seal(kCaseProgressKind, origin, encodeProgress(p), step.at_ms), {{self().str(), step.at_ms}}};
    TB_RETURN_IF_ERROR(enqueue_to(*next, kCaseRelayDownKind, encodeRelay(relay)).status());
    return recordPassage({c.number, "progress", step.index, "sent down", "", next->str(), self().str(), step.at_ms,
                          p.decide_level});
  }

  // Opens the statement inside a relay: it must be of `kind`, and is checked like any envelope
  // (chain to the root, validity, revocation). Errors are permanent: the sender set it aside.
  Result<OpenedEnvelope> openStatement(const Relay& relay, MessageKind kind, TimeMs now) {
    auto opened = verifier->open(relay.statement, self(), now, nullptr);
    // Dated ahead of this node's clock is the one refusal that time cures: passed on as it is, the
    // downlink retries it instead of setting the case aside for good.
    if (!opened && opened.status().code() == ErrorCode::kFutureDated) return opened.status();
    if (!opened) return Status(ErrorCode::kUnauthorized, "the relayed statement does not verify: " + opened.status().toString());
    if (opened->kind != kind) {
      return Status(ErrorCode::kInvalidArgument, "a relay of kind " + std::to_string(kind == kCaseTransferKind ? kCaseRelayUpKind : kCaseRelayDownKind) +
                                                     " carries a statement of kind " + std::to_string(opened->kind));
    }
    return opened;
  }

  Status checkLastHop(const Relay& relay, const DivisionCode& sender) {
    if (relay.hops.back().division != sender.str()) {
      return Status(ErrorCode::kInvalidArgument, "relay from " + sender.str() + " names " + relay.hops.back().division +
                                                     " as its last hop");
    }
    return Status::ok();
  }

  // The case as this node holds it, from a genuine transfer: every material must be a record of
  // the applicant stored at the origin, sealed with the origin's key (checked with the key the
  // transfer's own chain certified), so the decider can trust the hash it fetches the file by.
  Result<ForwardedCase> caseOf(const Transfer& t, const OpenedEnvelope& statement, const std::string& route) {
    ForwardedCase fc;
    fc.number = t.number;
    fc.origin = t.origin;
    fc.item_code = t.item_code;
    fc.item_name = t.item_name;
    fc.department = t.department;
    TB_ASSIGN_OR_RETURN(fc.kind, parseItemKind(t.kind));
    fc.decide_level = static_cast<Level>(t.decide_level);
    fc.applicant_id = t.applicant_id;
    fc.applicant_name = t.applicant_name;
    fc.contact = t.contact;
    fc.accepted_ms = t.accepted_ms;
    fc.deadline_ms = t.deadline_ms;
    fc.accepted_by = t.accepted_by;
    fc.route = route;
    fc.facts = t.facts;
    fc.catalogue_version = t.catalogue_version;
    for (const MaterialRecordInfo& record : t.records) {
      const std::string text = sealedText(record.hash, record.kind, record.holder);
      Signature sig{};
      if (record.seal.size() != sig.size() || record.stored_at != t.origin || record.holder != t.applicant_id) {
        return Status(ErrorCode::kInvalidArgument, "material " + record.hash.substr(0, 12) + " of case " + t.number +
                                                       " is not a sealed record of the applicant stored at " + t.origin);
      }
      std::copy(record.seal.begin(), record.seal.end(), sig.begin());
      if (!verifySignature(statement.signer_key, reinterpret_cast<const uint8_t*>(text.data()), text.size(), sig)) {
        return Status(ErrorCode::kBadSignature, "the seal on material " + record.hash.substr(0, 12) + " of case " + t.number +
                                                    " is not " + t.origin + "'s");
      }
      fc.materials.emplace_back(record.kind, record.hash);
    }
    return fc;
  }

  // This node may not take in a genuine transfer (the origin sealed it, a child covering the
  // origin brought it): the relay is consumed, and a signed "returned" (退回) progress naming
  // this node and the reason goes down to the origin in the same transaction, so the origin
  // shows why its case went no further instead of "not yet taken in" forever.
  Status returnToOrigin(const Transfer& t, const DivisionCode& origin, const DivisionCode& from,
                        const std::vector<Hop>& hops, const Status& why, TimeMs now) {
    const auto next = self().childToward(origin);
    if (!next) return Status(ErrorCode::kInternal, origin.str() + " is not below " + self().str());
    Progress p;
    p.number = t.number;
    p.decider = self().str();
    p.decider_name = identity->name;
    p.step = kReturnedStep;
    p.actor = "system";
    p.at_ms = now;
    p.note = why.message().substr(0, kMaxForwardedText);
    p.detail = routeText(hops);
    p.decide_level = t.decide_level;
    Relay relay{seal(kCaseProgressKind, origin, encodeProgress(p), now), {{self().str(), now}}};
    TB_RETURN_IF_ERROR(enqueue_to(*next, kCaseRelayDownKind, encodeRelay(relay)).status());
    spdlog::warn("[{}] returned case {} to {}: {}", self().str(), t.number, t.origin, why.toString());
    return recordPassage({t.number, "transfer", 0, "returned", from.str(), next->str(), routeText(hops), now,
                          t.decide_level});
  }

  Status applyRelayUp(const OpenedEnvelope& e, TimeMs now) {
    TB_ASSIGN_OR_RETURN(Relay relay, decodeRelay(e.payload));
    TB_ASSIGN_OR_RETURN(OpenedEnvelope statement, openStatement(relay, kCaseTransferKind, now));
    TB_ASSIGN_OR_RETURN(Transfer t, decodeTransfer(statement.payload));
    TB_ASSIGN_OR_RETURN(DivisionCode origin, DivisionCode::parse(t.origin));
    // Authority: only the origin may say what it accepted, and only a child covering the origin
    // may bring it here.
    if (statement.signer != origin) {
      return Status(ErrorCode::kUnauthorized, "case " + t.number + " was accepted at " + t.origin + " but the transfer is signed by " +
                                                  statement.signer.str());
    }
    if (!e.signer.covers(origin)) {
      return Status(ErrorCode::kUnauthorized, e.signer.str() + " relayed case " + t.number + " of " + t.origin +
                                                  ", which is outside its subtree");
    }
    TB_RETURN_IF_ERROR(checkLastHop(relay, e.signer));
    const auto decide_level = static_cast<Level>(t.decide_level);
    if (static_cast<int>(origin.level()) <= static_cast<int>(decide_level)) {
      return Status(ErrorCode::kInvalidArgument, "case " + t.number + " is decided at " + levelName(decide_level) +
                                                     " level, which its origin " + t.origin + " could do itself");
    }
    if (static_cast<int>(self().level()) < static_cast<int>(decide_level)) {
      // The first node of the decide level on the way up takes it in; nothing passes above it.
      return Status(ErrorCode::kInvalidArgument, "case " + t.number + " is decided at " + levelName(decide_level) +
                                                     " level, but " + e.signer.str() + " passed it up to " + self().str() +
                                                     ", a " + levelName(self().level()) + "-level node above it");
    }
    relay.hops.push_back({self().str(), now});
    const std::string route = routeText(relay.hops);
    if (static_cast<int>(self().level()) > static_cast<int>(decide_level)) {
      // Not ours to decide: up one more level.
      const auto parent = self().parent();
      if (!parent) return Status(ErrorCode::kInternal, "the city has no parent to pass case " + t.number + " to");
      TB_RETURN_IF_ERROR(enqueue_to(*parent, kCaseRelayUpKind, encodeRelay(relay)).status());
      return recordPassage({t.number, "transfer", 0, "passed up", e.signer.str(), parent->str(), route, now,
                            t.decide_level});
    }
    // Ours to decide (our level is the decide level).
    auto fc = caseOf(t, statement, route);
    if (!fc) {
      const ErrorCode code = fc.status().code();
      if (code == ErrorCode::kInvalidArgument || code == ErrorCode::kMalformed || code == ErrorCode::kBadSignature) {
        return returnToOrigin(t, origin, e.signer, relay.hops, fc.status(), now);
      }
      return fc.status();
    }
    TB_ASSIGN_OR_RETURN(Received received, cases->receiveForwarded(*fc, now));
    const bool held_before = received == Received::kAlreadyHeld;
    if (held_before) {
      spdlog::info("[{}] case {} from {} arrived again via {}; it is already held here", self().str(), t.number,
                   t.origin, route);
    } else {
      spdlog::info("[{}] took in case {} from {} via {}", self().str(), t.number, t.origin, route);
    }
    return recordPassage({t.number, "transfer", 0, held_before ? "already held" : "taken in", e.signer.str(), "",
                          route, now, t.decide_level});
  }

  Status applyRelayDown(const OpenedEnvelope& e, TimeMs now) {
    TB_ASSIGN_OR_RETURN(Relay relay, decodeRelay(e.payload));
    // Down one level at a time: only this node's parent hands it a step.
    if (!e.signer.isParentOf(self())) {
      return Status(ErrorCode::kUnauthorized, "a case step reached " + self().str() + " from " + e.signer.str() +
                                                  ", which is not its parent");
    }
    TB_RETURN_IF_ERROR(checkLastHop(relay, e.signer));
    TB_ASSIGN_OR_RETURN(OpenedEnvelope statement, openStatement(relay, kCaseProgressKind, now));
    TB_ASSIGN_OR_RETURN(Progress p, decodeProgress(statement.payload));
    TB_ASSIGN_OR_RETURN(DivisionCode origin, originOf(p.number));
    if (!self().covers(origin)) {
      return Status(ErrorCode::kInvalidArgument, "a step on case " + p.number + " of " + origin.str() +
                                                     " reached " + self().str() + ", which is not on its way down");
    }
    // Authority: the signer is the origin's ancestor at the case's decide level (a "returned"
    // word: a hop at or below that level, which is all the way up it can have come).
    const auto decide_level = static_cast<Level>(p.decide_level);
    const bool returned = p.step == kReturnedStep;
    const int signer_level = static_cast<int>(statement.signer.level());
    if (statement.signer.str() != p.decider || !statement.signer.isAncestorOf(origin) ||
        static_cast<int>(origin.level()) <= static_cast<int>(decide_level) ||
        (returned ? signer_level < static_cast<int>(decide_level) : signer_level != static_cast<int>(decide_level))) {
      return Status(ErrorCode::kUnauthorized,
                    "a step '" + p.step.substr(0, 40) + "' on case " + p.number + " of " + origin.str() + " claims the " +
                        levelName(decide_level) + " level decides it, but is signed by " + statement.signer.str() +
                        " (" + levelName(statement.signer.level()) + " level) for decider " + p.decider.substr(0, 40) +
                        "; only " + origin.str() + "'s ancestor at the decide level reports steps on it");
    }
    relay.hops.push_back({self().str(), now});
    if (self() != origin) {
      // A hop that passed the case up knows its decide level and holds the step to it.
      TB_ASSIGN_OR_RETURN(std::optional<Level> seen, levelSeen(p.number));
      if (seen && *seen != decide_level) {
        return Status(ErrorCode::kUnauthorized, "case " + p.number + " went up through " + self().str() +
                                                    " to be decided at the " + levelName(*seen) + " level; " +
                                                    statement.signer.str() + " claims the " + levelName(decide_level) +
                                                    " level");
      }
      const auto next = self().childToward(origin);
      TB_RETURN_IF_ERROR(enqueue_to(*next, kCaseRelayDownKind, encodeRelay(relay)).status());
      return recordPassage({p.number, "progress", p.step_index, "passed down", e.signer.str(), next->str(),
                            routeText(relay.hops), now, p.decide_level});
    }
    DeciderStep s;
    s.number = p.number;
    s.decider = p.decider;
    s.decider_name = p.decider_name;
    s.decide_level = decide_level;
    s.step = {p.step_index, p.step, p.actor, p.at_ms, p.note, p.detail};
    s.state = p.state;
    s.deadline_ms = p.deadline_ms;
    s.concluded_ms = p.concluded_ms;
    s.credential = p.credential.empty() ? "" : p.credential_number;
    // The case's own record decides who may report on it (CaseService::applyDeciderStep), before
    // anything the step carries is kept.
    TB_ASSIGN_OR_RETURN(bool applied, cases->applyDeciderStep(s, now));
    if (!applied) return Status::ok();
    if (!p.credential.empty()) {
      // The citizen collects the credential here: keep it (it is checked like any credential).
      if (!credentials.accept) return Status(ErrorCode::kUnavailable, "no credential store at " + self().str() + " yet");
      TB_RETURN_IF_ERROR(credentials.accept(p.credential).status());
    }
    return recordPassage({p.number, "progress", p.step_index, returned ? "returned here" : "delivered", e.signer.str(),
                          "", routeText(relay.hops), now, p.decide_level});
  }
};

Result<ForwardingService> ForwardingService::open(Database& db, const Identity& identity, const Verifier& verifier,
                                                  CaseService& cases, MaterialStore& materials, EnqueueTo enqueue_to,
                                                  std::function<bool(uint64_t)> outbox_pending,
                                                  std::function<std::string(uint64_t)> outbox_refused) {
  TB_RETURN_IF_ERROR(db.migrate("forwarding", kForwardingMigrations));
  auto impl = std::make_shared<Impl>();
  impl->db = &db;
  impl->identity = &identity;
  impl->verifier = &verifier;
  impl->cases = &cases;
  impl->materials = &materials;
  impl->enqueue_to = std::move(enqueue_to);
  impl->outbox_pending = std::move(outbox_pending);
  impl->outbox_refused = std::move(outbox_refused);
  return ForwardingService(impl);
}

ForwardingHooks ForwardingService::hooks() {
  ForwardingHooks h;
  auto impl = impl_;
  if (impl->self().parent()) {
    h.forward = [impl](const CaseRecord& c, const std::string& clerk, TimeMs now) { return impl->forward(c, clerk, now); };
  }
  h.progress = [impl](const CaseRecord& c, const CaseStep& step) { return impl->progress(c, step); };
  h.pending = impl->outbox_pending;
  h.refused = impl->outbox_refused;
  return h;
}

void ForwardingService::setCredentialLink(CredentialLink link) { impl_->credentials = std::move(link); }

Status ForwardingService::applyRelayUp(const OpenedEnvelope& e, TimeMs now) { return impl_->applyRelayUp(e, now); }
Status ForwardingService::applyRelayDown(const OpenedEnvelope& e, TimeMs now) { return impl_->applyRelayDown(e, now); }

Result<std::vector<Passage>> ForwardingService::passages(const std::string& number) {
  TB_ASSIGN_OR_RETURN(auto stmt, impl_->db->prepare(
      "SELECT number, what, step_index, action, from_division, to_division, route, at_ms, decide_level FROM case_passages"
      " WHERE number = ?1 ORDER BY id"));
  stmt.bind(1, number);
  std::vector<Passage> out;
  while (true) {
    TB_ASSIGN_OR_RETURN(bool row, stmt.step());
    if (!row) break;
    out.push_back({stmt.columnText(0), stmt.columnText(1), static_cast<uint32_t>(stmt.columnInt64(2)),
                   stmt.columnText(3), stmt.columnText(4), stmt.columnText(5), stmt.columnText(6), stmt.columnInt64(7),
                   static_cast<uint8_t>(stmt.columnInt64(8))});
  }
  return out;
}

}  // namespace tongban
