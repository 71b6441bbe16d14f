// Module-internal: the Cap'n Proto encodings of credentials, status records and identity records
// (schema/credential.capnp), decoded as hostile bytes within explicit limits. Only
// node/credentials (and its tests, to make odd documents) includes this; everyone else sees the
// structs in credentials.h.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "node/credentials/credentials.h"

namespace tongban {

using Pairs = std::vector<std::pair<std::string, std::string>>;

inline constexpr size_t kMaxDocumentBytes = 64 * 1024;
inline constexpr size_t kMaxFacts = 32;       // facts of a credential, contacts of an identity
inline constexpr size_t kMaxText = 500;       // one fact, contact, name or reason
// The highest version a credential, a status record or an identity record may have: a signer
// cannot pick a version that makes the next one overflow (a million renewals or status changes
// of one document is no real history). Decoders refuse more (kMalformed); making the next
// version past it is refused with kFailedPrecondition.
inline constexpr uint32_t kMaxRecordVersion = 1'000'000;

Bytes encodeCredential(const CredentialInfo& c);
Result<CredentialInfo> decodeCredential(const Bytes& bytes);
// A status record and the credential's newest version it announces.
Bytes encodeStatus(const CredentialStatusInfo& s, uint32_t current_version);
Result<std::pair<CredentialStatusInfo, uint32_t>> decodeStatus(const Bytes& bytes);
Bytes encodeIdentity(const IdentityInfo& r);
Result<IdentityInfo> decodeIdentity(const Bytes& bytes);

}  // namespace tongban
