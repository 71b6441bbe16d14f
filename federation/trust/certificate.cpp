#include "federation/trust/certificate.h"

#include <algorithm>

#include "federation/trust/wire_codec.h"

namespace tongban {

namespace trust_internal {

namespace {
Result<DivisionCode> parseField(capnp::Text::Reader text, const char* field) {
  auto code = DivisionCode::parse(std::string_view(text.cStr(), text.size()));
  if (!code) return Status(ErrorCode::kMalformed, std::string("certificate field ") + field + ": " + code.status().message());
  return code;
}
}  // namespace

Result<SignedCertificateParts> decodeSignedCertificate(const uint8_t* data, size_t size, DecodeLimits limits) {
  struct Outer {
    Bytes body;
    Signature signature{};
  };
  auto outer = readFlat(data, size, limits, "certificate", [](capnp::MessageReader& reader) -> Result<Outer> {
    auto signed_cert = reader.getRoot<wire::SignedCertificate>();
    auto sig = signed_cert.getSignature();
    if (sig.size() != Signature{}.size()) {
      return Status(ErrorCode::kMalformed,
                    "certificate signature is " + std::to_string(sig.size()) + " bytes; expected 64");
    }
    Outer out;
    out.body = bytesOf(signed_cert.getBody());
    std::copy(sig.begin(), sig.end(), out.signature.begin());
    return out;
  });
  if (!outer) return outer.status();

  return readCanonical(
      outer->body.data(), outer->body.size(), limits, "certificate body",
      [&](capnp::MessageReader& reader) -> Result<SignedCertificateParts> {
        auto cert = reader.getRoot<wire::Certificate>();
        TB_ASSIGN_OR_RETURN(DivisionCode division, parseField(cert.getDivision(), "division"));
        TB_ASSIGN_OR_RETURN(DivisionCode issuer, parseField(cert.getIssuer(), "issuer"));
        auto key = cert.getPublicKey();
        if (key.size() != PublicKey{}.size()) {
          return Status(ErrorCode::kMalformed, "certificate of " + division.str() + " holds a " +
                                                   std::to_string(key.size()) + "-byte key; expected 32");
        }
        PublicKey public_key{};
        std::copy(key.begin(), key.end(), public_key.begin());
        auto name = cert.getName();
        CertificateInfo info{cert.getSerial(),      division,
                             public_key,            issuer,
                             cert.getValidFromMs(), cert.getValidUntilMs(),
                             std::string(name.cStr(), name.size())};
        return SignedCertificateParts{std::move(info), cert.getLevel(), std::move(outer->body), outer->signature};
      });
}

}  // namespace trust_internal

namespace {

Status checkDeclaredLevel(const trust_internal::SignedCertificateParts& parts) {
  if (parts.declared_level != static_cast<uint8_t>(parts.info.division.level())) {
    return Status(ErrorCode::kMalformed, "certificate of " + parts.info.division.str() + " declares level " +
                                             std::to_string(parts.declared_level) + " but the code is a " +
                                             levelName(parts.info.division.level()));
  }
  return Status::ok();
}

}  // namespace

Result<Bytes> signCertificate(const CertificateInfo& info, const SecretKey& issuer_key) {
  if (info.valid_until_ms <= info.valid_from_ms) {
    return Status(ErrorCode::kInvalidArgument, "certificate for " + info.division.str() +
                                                    " has an empty validity period (valid until " +
                                                    std::to_string(info.valid_until_ms) + " <= valid from " +
                                                    std::to_string(info.valid_from_ms) + ")");
  }
  try {
    capnp::MallocMessageBuilder inner;
    auto cert = inner.initRoot<wire::Certificate>();
    cert.setSerial(info.serial);
    cert.setDivision(info.division.str());
    cert.setLevel(static_cast<uint8_t>(info.division.level()));
    cert.setPublicKey(capnp::Data::Reader(info.public_key.data(), info.public_key.size()));
    cert.setIssuer(info.issuer.str());
    cert.setValidFromMs(info.valid_from_ms);
    cert.setValidUntilMs(info.valid_until_ms);
    cert.setName(info.name);
    Bytes body = trust_internal::canonicalBytes(cert.asReader());
    Signature sig = sign(issuer_key, body.data(), body.size());

    capnp::MallocMessageBuilder outer;
    auto signed_cert = outer.initRoot<wire::SignedCertificate>();
    signed_cert.setBody(trust_internal::dataOf(body));
    signed_cert.setSignature(capnp::Data::Reader(sig.data(), sig.size()));
    return trust_internal::flatBytes(outer);
  } catch (const kj::Exception& e) {
    return Status(ErrorCode::kInternal, std::string("cannot encode certificate: ") + e.getDescription().cStr());
  }
}

Result<Identity> createRootIdentity(const DivisionCode& city, const std::string& name, const KeyPair& keys,
                                    TimeMs valid_from_ms, TimeMs valid_until_ms) {
  if (city.level() != Level::kCity) {
    return Status(ErrorCode::kInvalidArgument,
                  "the root of a network must be a city; " + city.str() + " is a " + levelName(city.level()));
  }
  CertificateInfo info{1, city, keys.public_key, city, valid_from_ms, valid_until_ms, name};
  TB_ASSIGN_OR_RETURN(Bytes cert, signCertificate(info, keys.secret_key));
  return Identity{city, name, keys, cert, {}, cert};
}

Result<Identity> issueChildIdentity(const Identity& parent, const DivisionCode& child, const std::string& name,
                                    const KeyPair& child_keys, uint64_t serial, TimeMs valid_from_ms,
                                    TimeMs valid_until_ms) {
  if (!parent.division.isParentOf(child)) {
    auto real_parent = child.parent();
    std::string what = real_parent
                           ? child.str() + " is a " + levelName(child.level()) + " of " + describeDivision(*real_parent)
                           : child.str() + " is a city";
    return Status(ErrorCode::kInvalidArgument, what + ", not a child of " + describeDivision(parent.division));
  }
  CertificateInfo info{serial, child, child_keys.public_key, parent.division, valid_from_ms, valid_until_ms, name};
  TB_ASSIGN_OR_RETURN(Bytes cert, signCertificate(info, parent.keys.secret_key));
  std::vector<Bytes> chain;
  chain.reserve(parent.chain.size() + 1);
  chain.push_back(cert);
  chain.insert(chain.end(), parent.chain.begin(), parent.chain.end());
  return Identity{child, name, child_keys, std::move(cert), std::move(chain), parent.root_certificate};
}

Result<CertificateInfo> decodeCertificate(const Bytes& signed_certificate, const PublicKey& issuer_key) {
  TB_ASSIGN_OR_RETURN(auto parts, trust_internal::decodeSignedCertificate(
                                      signed_certificate.data(), signed_certificate.size(),
                                      trust_internal::kCertificateLimits));
  TB_RETURN_IF_ERROR(checkDeclaredLevel(parts));
  if (!verifySignature(issuer_key, parts.body.data(), parts.body.size(), parts.signature)) {
    return Status(ErrorCode::kBadSignature,
                  "certificate of " + parts.info.division.str() + " is not signed by the given issuer key");
  }
  return std::move(parts.info);
}

Result<CertificateInfo> peekCertificate(const Bytes& signed_certificate) {
  TB_ASSIGN_OR_RETURN(auto parts, trust_internal::decodeSignedCertificate(
                                      signed_certificate.data(), signed_certificate.size(),
                                      trust_internal::kCertificateLimits));
  TB_RETURN_IF_ERROR(checkDeclaredLevel(parts));
  return std::move(parts.info);
}

}  // namespace tongban
