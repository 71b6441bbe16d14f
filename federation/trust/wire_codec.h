// Internal to federation/trust (not part of any contract): certificate decoding shared by the
// trust module's .cpp files, on top of the generic hostile-bytes readers in util/capnp_io.h.
#pragma once

#include "federation/trust/certificate.h"
#include "federation/util/capnp_io.h"
#include "schema/trust.capnp.h"

namespace tongban::trust_internal {

using capnp_io::bytesOf;
using capnp_io::canonicalBytes;
using capnp_io::dataOf;
using capnp_io::DecodeLimits;
using capnp_io::flatBytes;
using capnp_io::readCanonical;
using capnp_io::readFlat;

// Certificates are small and flat: these limits are generous for them and tiny for attackers.
inline constexpr DecodeLimits kCertificateLimits{4, 8};

// A SignedCertificate split into what was signed and what it says.
struct SignedCertificateParts {
  CertificateInfo info;
  uint8_t declared_level = 0;
  Bytes body;            // the signed bytes
  Signature signature{};
};

// Decodes and checks field shapes (codes parse, key 32 bytes, signature 64 bytes). Checks
// neither the signature nor the declared level against the code: callers decide what those
// failures mean (kBadSignature / kMalformed for a lone certificate, kUntrustedChain in a chain).
Result<SignedCertificateParts> decodeSignedCertificate(const uint8_t* data, size_t size, DecodeLimits limits);

}  // namespace tongban::trust_internal
