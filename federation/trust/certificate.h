// Certificates: "this key speaks for this division". The city's root certificate is
// self-signed; every other is signed by its parent's key, so a chain leads to the root.
#pragma once

#include <string>
#include <vector>

#include "federation/trust/keys.h"

namespace tongban {

struct CertificateInfo {
  uint64_t serial = 0;
  DivisionCode division;
  PublicKey public_key{};
  DivisionCode issuer;
  TimeMs valid_from_ms = 0;
  TimeMs valid_until_ms = 0;
  std::string name;

  Level level() const { return division.level(); }
};

// Default validity of a node certificate issued by `tongban keys issue`.
inline constexpr DurationMs kDefaultCertificateValidityMs = 5LL * 365 * 24 * 3600 * 1000;

// Signs `info` with `issuer_key` and returns SignedCertificate bytes. Fails if info is not
// coherent (validity period empty). Does not check authority: that is issueChildCertificate's
// and the verifier's job.
Result<Bytes> signCertificate(const CertificateInfo& info, const SecretKey& issuer_key);

// Root: a self-signed certificate for a city code (anything else is refused).
Result<Identity> createRootIdentity(const DivisionCode& city, const std::string& name, const KeyPair& keys,
                                    TimeMs valid_from_ms, TimeMs valid_until_ms);

// A node key and certificate issued by `parent` for `child`. Refused unless child's parent code
// is exactly parent.division (a city issues districts, a district towns, a town villages).
Result<Identity> issueChildIdentity(const Identity& parent, const DivisionCode& child, const std::string& name,
                                    const KeyPair& child_keys, uint64_t serial, TimeMs valid_from_ms,
                                    TimeMs valid_until_ms);

// Decodes a SignedCertificate with tight limits and checks its own signature against
// `issuer_key`. Does not check validity time or the chain.
Result<CertificateInfo> decodeCertificate(const Bytes& signed_certificate, const PublicKey& issuer_key);
// Decodes without checking the signature (for display and for finding the issuer).
Result<CertificateInfo> peekCertificate(const Bytes& signed_certificate);

}  // namespace tongban
