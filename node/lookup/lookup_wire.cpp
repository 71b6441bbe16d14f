#include "node/lookup/lookup_wire.h"

#include "federation/util/capnp_io.h"
#include "schema/lookup.capnp.h"

namespace tongban {

namespace {

Result<LookupQuery> readQuery(uint8_t question, const std::string& key) {
  if (question < 1 || question > 3) {
    return Status(ErrorCode::kMalformed, "unknown lookup question " + std::to_string(question));
  }
  auto q = makeLookupQuery(static_cast<LookupQuestion>(question), key);
  if (!q) return Status(ErrorCode::kMalformed, q.status().message());
  if (q->key != key) return Status(ErrorCode::kMalformed, "lookup key is not in normal form");
  return q;
}

}  // namespace

Bytes encodeRequest(const RequestMsg& m) {
  capnp::MallocMessageBuilder builder;
  auto w = builder.initRoot<wire::LookupRequest>();
  w.setQuestion(static_cast<uint8_t>(m.query.question));
  w.setKey(m.query.key);
  w.setBudgetMs(m.budget_ms);
  w.setAskedAt(m.asked_at);
  return capnp_io::flatBytes(builder);
}

Result<RequestMsg> decodeRequest(const Bytes& b) {
  return capnp_io::read<wire::LookupRequest>(b, "lookup request", kMaxLookupRequestBytes,
                                             [](wire::LookupRequest::Reader w) -> Result<RequestMsg> {
                                               RequestMsg m;
                                               TB_ASSIGN_OR_RETURN(m.query,
                                                                   readQuery(w.getQuestion(), capnp_io::text(w.getKey())));
                                               m.budget_ms = w.getBudgetMs();
                                               m.asked_at = capnp_io::text(w.getAskedAt());
                                               return m;
                                             });
}

Bytes encodeAnswer(const AnswerMsg& m) {
  capnp::MallocMessageBuilder builder;
  auto w = builder.initRoot<wire::LookupAnswer>();
  w.setQuestion(static_cast<uint8_t>(m.query.question));
  w.setKey(m.query.key);
  w.setOutcome(static_cast<uint8_t>(m.outcome));
  auto records = w.initRecords(static_cast<unsigned>(m.records.size()));
  for (size_t i = 0; i < m.records.size(); ++i) {
    const LookupRecord& r = m.records[i];
    auto o = records[static_cast<unsigned>(i)];
    o.setType(r.type);
    o.setId(r.id);
    o.setHolder(r.holder);
    o.setKind(r.kind);
    o.setIssuedAt(r.issued_at);
    o.setAtMs(r.at_ms);
    o.setSealVerified(r.seal_verified);
    o.setPayload(capnp_io::dataOf(r.payload));
    o.setStatus(r.status);
    o.setStatusReason(r.status_reason);
    o.setCurrentVersion(r.current_version);
    o.setStatusFreshAsOfMs(r.status_fresh_as_of_ms);
  }
  w.setTruncated(m.truncated);
  w.setAnswererName(m.answerer_name);
  w.setNote(m.note);
  w.setFailedLink(m.failed_link);
  w.setReason(m.reason);
  w.setLinkDownSinceMs(m.link_down_since_ms);
  w.setCompleteAsOfMs(m.complete_as_of_ms);
  w.setHeldBackBy(m.held_back_by);
  w.setHeldBackByName(m.held_back_by_name);
  return capnp_io::flatBytes(builder);
}

Result<AnswerMsg> decodeAnswer(const Bytes& b) {
  return capnp_io::read<wire::LookupAnswer>(
      b, "lookup answer", kMaxLookupAnswerBytes, [](wire::LookupAnswer::Reader w) -> Result<AnswerMsg> {
        using capnp_io::text;
        AnswerMsg m;
        TB_ASSIGN_OR_RETURN(m.query, readQuery(w.getQuestion(), text(w.getKey())));
        if (w.getOutcome() < 1 || w.getOutcome() > 3) {
          return Status(ErrorCode::kMalformed, "unknown lookup outcome " + std::to_string(w.getOutcome()));
        }
        m.outcome = static_cast<LookupOutcome>(w.getOutcome());
        if (w.getRecords().size() > kMaxLookupRecords) {
          return Status(ErrorCode::kMalformed, "lookup answer carries " + std::to_string(w.getRecords().size()) +
                                                   " records; at most " + std::to_string(kMaxLookupRecords));
        }
        for (auto o : w.getRecords()) {
          LookupRecord r;
          r.type = text(o.getType());
          r.id = text(o.getId());
          r.holder = text(o.getHolder());
          r.kind = text(o.getKind());
          r.issued_at = text(o.getIssuedAt());
          r.at_ms = o.getAtMs();
          r.seal_verified = o.getSealVerified();
          r.payload = capnp_io::bytesOf(o.getPayload());
          r.status = text(o.getStatus());
          r.status_reason = text(o.getStatusReason());
          r.current_version = o.getCurrentVersion();
          r.status_fresh_as_of_ms = o.getStatusFreshAsOfMs();
          if ((r.type != "material" && r.type != "credential" && r.type != "identity") ||
              !DivisionCode::parse(r.issued_at)) {
            return Status(ErrorCode::kMalformed, "lookup record lacks a known type or a valid issuing division");
          }
          m.records.push_back(std::move(r));
        }
        m.truncated = w.getTruncated();
        m.answerer_name = text(w.getAnswererName());
        m.note = text(w.getNote());
        m.failed_link = text(w.getFailedLink());
        m.reason = text(w.getReason());
        m.link_down_since_ms = w.getLinkDownSinceMs();
        m.complete_as_of_ms = w.getCompleteAsOfMs();
        m.held_back_by = text(w.getHeldBackBy());
        m.held_back_by_name = text(w.getHeldBackByName());
        if (!m.held_back_by.empty() && !DivisionCode::parse(m.held_back_by)) {
          return Status(ErrorCode::kMalformed, "lookup answer names a bad division as holding completeness back");
        }
        return m;
      });
}

Bytes encodeReply(const ReplyMsg& m) {
  capnp::MallocMessageBuilder builder;
  auto w = builder.initRoot<wire::LookupReply>();
  w.setAnswer(capnp_io::dataOf(m.answer));
  auto route = w.initRoute(static_cast<unsigned>(m.route.size()));
  for (size_t i = 0; i < m.route.size(); ++i) {
    auto h = route[static_cast<unsigned>(i)];
    h.setDivision(m.route[i].division);
    h.setName(m.route[i].name);
    h.setAtMs(m.route[i].at_ms);
  }
  w.setCachedAt(m.cached_at);
  w.setError(m.error);
  return capnp_io::flatBytes(builder);
}

Result<ReplyMsg> decodeReply(const Bytes& b) {
  return capnp_io::read<wire::LookupReply>(
      b, "lookup reply", kMaxLookupReplyBytes, [](wire::LookupReply::Reader w) -> Result<ReplyMsg> {
        using capnp_io::text;
        ReplyMsg m;
        m.answer = capnp_io::bytesOf(w.getAnswer());
        if (w.getRoute().size() > kMaxLookupRouteHops) {
          return Status(ErrorCode::kMalformed, "lookup route has " + std::to_string(w.getRoute().size()) +
                                                   " hops; at most " + std::to_string(kMaxLookupRouteHops));
        }
        for (auto h : w.getRoute()) {
          LookupHop hop{text(h.getDivision()), text(h.getName()), h.getAtMs()};
          if (!DivisionCode::parse(hop.division)) return Status(ErrorCode::kMalformed, "lookup route names a bad division");
          m.route.push_back(std::move(hop));
        }
        m.cached_at = text(w.getCachedAt());
        m.error = text(w.getError());
        if (!m.cached_at.empty() && !DivisionCode::parse(m.cached_at)) {
          return Status(ErrorCode::kMalformed, "lookup reply names a bad cache division");
        }
        return m;
      });
}

}  // namespace tongban
