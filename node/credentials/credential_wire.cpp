#include "node/credentials/credential_wire.h"

#include <algorithm>
#include <cstring>

#include <sodium.h>

#include "federation/util/capnp_io.h"
#include "schema/credential.capnp.h"

namespace tongban {

namespace {

constexpr const char* kTextPrefix = "TBC1.";

template <typename List>
void setPairs(List list, const Pairs& pairs) {
  for (unsigned i = 0; i < pairs.size(); ++i) {
    list[i].setKey(pairs[i].first);
    list[i].setValue(pairs[i].second);
  }
}

template <typename List>
Result<Pairs> getPairs(List list, const char* what) {
  if (list.size() > kMaxFacts) return Status(ErrorCode::kMalformed, std::string(what) + ": more than 32 entries");
  Pairs out;
  for (auto f : list) {
    out.emplace_back(capnp_io::text(f.getKey()), capnp_io::text(f.getValue()));
    if (out.back().first.size() > kMaxText || out.back().second.size() > kMaxText) {
      return Status(ErrorCode::kMalformed, std::string(what) + ": an entry is longer than 500 bytes");
    }
  }
  return out;
}

}  // namespace

Bytes encodeCredential(const CredentialInfo& c) {
  capnp::MallocMessageBuilder b;
  auto w = b.initRoot<wire::Credential>();
  w.setNumber(c.number);
  w.setVersion(c.version);
  w.setSequence(c.sequence);
  w.setKind(c.kind);
  w.setHolderId(c.holder_id);
  w.setHolderName(c.holder_name);
  w.setIssuer(c.issuer);
  w.setIssuerName(c.issuer_name);
  w.setItemCode(c.item_code);
  w.setItemName(c.item_name);
  w.setCaseNumber(c.case_number);
  w.setOrigin(c.origin);
  w.setValidFromMs(c.valid_from_ms);
  w.setValidUntilMs(c.valid_until_ms);
  setPairs(w.initFacts(static_cast<unsigned>(c.facts.size())), c.facts);
  w.setIssuedAtMs(c.issued_at_ms);
  w.setCatalogueVersion(c.catalogue_version);
  return capnp_io::flatBytes(b);
}

Result<CredentialInfo> decodeCredential(const Bytes& bytes) {
  return capnp_io::read<wire::Credential>(bytes, "credential", kMaxDocumentBytes, [](wire::Credential::Reader w) -> Result<CredentialInfo> {
    using capnp_io::text;
    CredentialInfo c;
    c.number = text(w.getNumber());
    c.version = w.getVersion();
    c.sequence = w.getSequence();
    c.kind = text(w.getKind());
    c.holder_id = text(w.getHolderId());
    c.holder_name = text(w.getHolderName());
    c.issuer = text(w.getIssuer());
    c.issuer_name = text(w.getIssuerName());
    c.item_code = text(w.getItemCode());
    c.item_name = text(w.getItemName());
    c.case_number = text(w.getCaseNumber());
    c.origin = text(w.getOrigin());
    c.valid_from_ms = w.getValidFromMs();
    c.valid_until_ms = w.getValidUntilMs();
    TB_ASSIGN_OR_RETURN(c.facts, getPairs(w.getFacts(), "credential facts"));
    c.issued_at_ms = w.getIssuedAtMs();
    c.catalogue_version = w.getCatalogueVersion();
    if (c.number.empty() || c.version == 0 || c.kind.empty() || c.holder_id.empty()) {
      return Status(ErrorCode::kMalformed, "credential lacks a number, version, kind or holder");
    }
    if (c.version > kMaxRecordVersion) {
      return Status(ErrorCode::kMalformed, "credential " + c.number + " claims version " + std::to_string(c.version) +
                                               "; versions end at " + std::to_string(kMaxRecordVersion));
    }
    return c;
  });
}

Bytes encodeStatus(const CredentialStatusInfo& s, uint32_t current_version) {
  capnp::MallocMessageBuilder b;
  auto w = b.initRoot<wire::CredentialStatus>();
  w.setNumber(s.number);
  w.setStatus(s.status);
  w.setVersion(s.version);
  w.setAtMs(s.at_ms);
  w.setBy(s.by);
  w.setByName(s.by_name);
  w.setReason(s.reason);
  w.setCurrentVersion(current_version);
  return capnp_io::flatBytes(b);
}

Result<std::pair<CredentialStatusInfo, uint32_t>> decodeStatus(const Bytes& bytes) {
  return capnp_io::read<wire::CredentialStatus>(bytes, "credential status", kMaxDocumentBytes,
      [](wire::CredentialStatus::Reader w) -> Result<std::pair<CredentialStatusInfo, uint32_t>> {
        using capnp_io::text;
        CredentialStatusInfo s{text(w.getNumber()), text(w.getStatus()), w.getVersion(), w.getAtMs(),
                               text(w.getBy()),     text(w.getByName()), text(w.getReason())};
        if (s.status != "revoked" && s.status != "suspended" && s.status != "active" && s.status != "renewed") {
          return Status(ErrorCode::kMalformed, "credential status '" + s.status + "' is not revoked, suspended, active or renewed");
        }
        if (s.version == 0 || s.reason.size() > kMaxText) return Status(ErrorCode::kMalformed, "credential status has version 0 or a reason over 500 bytes");
        const uint32_t current = w.getCurrentVersion();
        if (s.version > kMaxRecordVersion || current > kMaxRecordVersion) {
          return Status(ErrorCode::kMalformed, "status record of " + s.number + " claims version " +
                                                   std::to_string(std::max(s.version, current)) + "; versions end at " +
                                                   std::to_string(kMaxRecordVersion));
        }
        if (s.status == "renewed" && s.version != current) {
          return Status(ErrorCode::kMalformed, "renewal notice of " + s.number + " names version " + std::to_string(s.version) +
                                                   " but announces " + std::to_string(current));
        }
        return std::make_pair(s, current);
      });
}

Bytes encodeIdentity(const IdentityInfo& r) {
  capnp::MallocMessageBuilder b;
  auto w = b.initRoot<wire::IdentityRecord>();
  w.setIdNumber(r.id_number);
  w.setName(r.name);
  w.setKind(r.kind);
  setPairs(w.initContacts(static_cast<unsigned>(r.contacts.size())), r.contacts);
  w.setVersion(r.version);
  w.setRegisteredAtMs(r.registered_at_ms);
  w.setRegisteredBy(r.registered_by);
  return capnp_io::flatBytes(b);
}

Result<IdentityInfo> decodeIdentity(const Bytes& bytes) {
  return capnp_io::read<wire::IdentityRecord>(bytes, "identity record", kMaxDocumentBytes,
      [](wire::IdentityRecord::Reader w) -> Result<IdentityInfo> {
        using capnp_io::text;
        IdentityInfo r;
        r.id_number = text(w.getIdNumber());
        r.name = text(w.getName());
        r.kind = text(w.getKind());
        TB_ASSIGN_OR_RETURN(r.contacts, getPairs(w.getContacts(), "identity contacts"));
        r.version = w.getVersion();
        r.registered_at_ms = w.getRegisteredAtMs();
        r.registered_by = text(w.getRegisteredBy());
        if (r.id_number.empty() || r.name.empty() || r.name.size() > kMaxText || r.version == 0) {
          return Status(ErrorCode::kMalformed, "identity record lacks an ID number, a name or a version");
        }
        if (r.version > kMaxRecordVersion) {
          return Status(ErrorCode::kMalformed, "identity record of " + r.id_number + " claims version " +
                                                   std::to_string(r.version) + "; versions end at " +
                                                   std::to_string(kMaxRecordVersion));
        }
        return r;
      });
}

Result<CredentialInfo> decodeCredentialPayload(const Bytes& payload) { return decodeCredential(payload); }

Bytes signCredential(const Identity& issuer, const CredentialInfo& credential) {
  SealParams p;
  p.kind = kCredentialKind;
  p.timestamp_ms = credential.issued_at_ms;
  p.target = issuer.division;
  p.payload = encodeCredential(credential);
  return sealEnvelope(issuer, p);
}

Bytes signCredentialStatus(const Identity& signer, const CredentialStatusInfo& s, uint32_t current_version) {
  SealParams p;
  p.kind = kCredentialStatusKind;
  p.timestamp_ms = s.at_ms;
  p.target = signer.division;
  p.payload = encodeStatus(s, current_version);
  return sealEnvelope(signer, p);
}

std::string credentialToText(const Bytes& sealed) {
  std::string out(sodium_base64_encoded_len(sealed.size(), sodium_base64_VARIANT_URLSAFE_NO_PADDING), '\0');
  sodium_bin2base64(out.data(), out.size(), sealed.data(), sealed.size(), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  out.resize(std::strlen(out.c_str()));
  return kTextPrefix + out;
}

Result<Bytes> credentialFromText(const std::string& text) {
  std::string t = text;
  while (!t.empty() && (t.back() == '\n' || t.back() == '\r' || t.back() == ' ')) t.pop_back();
  if (t.rfind(kTextPrefix, 0) != 0) {
    return Status(ErrorCode::kMalformed, "a credential's text form starts with 'TBC1.'; this one does not");
  }
  t = t.substr(std::strlen(kTextPrefix));
  if (t.size() > 2 * kMaxDocumentBytes) return Status(ErrorCode::kOversize, "the credential text is too long");
  Bytes out(t.size());
  size_t len = 0;
  if (sodium_base642bin(out.data(), out.size(), t.data(), t.size(), nullptr, &len, nullptr,
                        sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0) {
    return Status(ErrorCode::kMalformed, "the credential text is not base64url (cut short or mistyped?)");
  }
  out.resize(len);
  return out;
}

}  // namespace tongban
