#include "node/credentials/credential_lookup.h"

namespace tongban {

namespace {

class CredentialLookupSource : public LookupSource {
 public:
  CredentialLookupSource(CredentialService& credentials, Clock& clock) : credentials_(credentials), clock_(clock) {}

  bool answers(LookupQuestion question) const override {
    return question == LookupQuestion::kHolder || question == LookupQuestion::kCredential;
  }

  Result<std::vector<LookupRecord>> find(const LookupQuery& query, size_t limit) override {
    std::vector<LookupRecord> out;
    if (query.question == LookupQuestion::kHolder) {
      // 一表登记: who the holder is, registered once anywhere below (or at) this node.
      TB_ASSIGN_OR_RETURN(auto registered, credentials_.identitySealed(query.key));
      if (registered && out.size() < limit) {
        TB_ASSIGN_OR_RETURN(auto info, credentials_.identity(query.key));
        if (info) {
          LookupRecord r;
          r.type = "identity";
          r.id = info->id_number;
          r.holder = info->id_number;
          r.kind = info->kind;
          r.issued_at = info->registered_by;
          r.at_ms = info->registered_at_ms;
          r.seal_verified = true;  // its registering node's signature was checked when it was stored
          r.payload = *registered;
          out.push_back(std::move(r));
        }
      }
      TB_ASSIGN_OR_RETURN(auto held, credentials_.listByHolder(query.key));
      for (const auto& c : held) {
        if (out.size() >= limit) break;
        TB_ASSIGN_OR_RETURN(auto sealed, credentials_.sealed(c.number));
        if (sealed) out.push_back(toRecord(c, *sealed));
      }
    } else if (query.question == LookupQuestion::kCredential) {
      TB_ASSIGN_OR_RETURN(auto sealed, credentials_.sealed(query.key));
      if (sealed) {
        // Held only after verification; list it with what it says.
        TB_ASSIGN_OR_RETURN(auto held, credentials_.listByNumber(query.key));
        if (held) out.push_back(toRecord(*held, *sealed));
      }
    }
    return out;
  }

 private:
  LookupRecord toRecord(const CredentialInfo& c, const Bytes& sealed) {
    LookupRecord r;
    r.type = "credential";
    r.id = c.number;
    r.holder = c.holder_id;
    r.kind = c.kind;
    r.issued_at = c.issuer;
    r.at_ms = c.issued_at_ms;
    r.seal_verified = true;  // the issuer's signature and chain were checked when it was stored
    r.payload = sealed;
    // Genuine is not the same as in force: say what this node knows of its status now.
    const Verification v = credentials_.verify(sealed, clock_.now());
    r.status = v.verdict;
    r.status_reason = v.reason;
    r.current_version = v.current_version;
    r.status_fresh_as_of_ms = v.status_fresh_as_of_ms;
    return r;
  }

  CredentialService& credentials_;
  Clock& clock_;
};

}  // namespace

std::unique_ptr<LookupSource> makeCredentialLookupSource(CredentialService& credentials, Clock& clock) {
  return std::make_unique<CredentialLookupSource>(credentials, clock);
}

Status checkCredentialRecord(const LookupRecord& record, const OpenedEnvelope& document) {
  if (document.kind != kCredentialKind) {
    return Status(ErrorCode::kUnauthorized, "its payload is a kind " + std::to_string(document.kind) +
                                                " document, not a credential (kind " + std::to_string(kCredentialKind) + ")");
  }
  TB_ASSIGN_OR_RETURN(CredentialInfo c, decodeCredentialPayload(document.payload));
  if (c.number != record.id || c.holder_id != record.holder || c.issuer != record.issued_at) {
    return Status(ErrorCode::kUnauthorized, "the document is credential " + c.number + " of " + c.holder_id +
                                                " issued by " + c.issuer + ", the record says " + record.id + " of " +
                                                record.holder + " issued by " + record.issued_at);
  }
  return Status::ok();
}

}  // namespace tongban
