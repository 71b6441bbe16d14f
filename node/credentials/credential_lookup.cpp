#include "node/credentials/credential_lookup.h"

namespace tongban {

namespace {

class CredentialLookupSource : public LookupSource {
 public:
  explicit CredentialLookupSource(CredentialService& credentials) : credentials_(credentials) {}

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
  static LookupRecord toRecord(const CredentialInfo& c, const Bytes& sealed) {
    LookupRecord r;
    r.type = "credential";
    r.id = c.number;
    r.holder = c.holder_id;
    r.kind = c.kind;
    r.issued_at = c.issuer;
    r.at_ms = c.issued_at_ms;
    r.seal_verified = true;  // the issuer's signature and chain were checked when it was stored
    r.payload = sealed;
    return r;
  }

  CredentialService& credentials_;
};

}  // namespace

std::unique_ptr<LookupSource> makeCredentialLookupSource(CredentialService& credentials) {
  return std::make_unique<CredentialLookupSource>(credentials);
}

}  // namespace tongban
