// Module-internal: what a node holds of credentials, status records and identity records, and the
// conflict rules that pick what is current (docs/protocol.md, "Conflict rules"). Only
// node/credentials includes this; callers hand it documents that already verified and passed
// their authority checks.
//
// Every document is kept, not only the winner: every version of a credential
// (credential_versions), every status record and renewal notice (credential_status_records),
// every identity record (identity_record_versions). What is current is a pure function of that
// set, materialised in the tables the rest of the node reads (credentials, credential_status,
// identity_records). Because of that a key revocation that arrives after documents its key
// signed can take exactly those out and recompute (dropRevokedSince): a node ends in the same
// state whatever order the documents and the revocation arrived in.
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "federation/store/database.h"
#include "node/credentials/credentials.h"

namespace tongban {

class CredentialStore {
 public:
  static Status migrate(Database& db);
  explicit CredentialStore(Database& db, std::string self) : db_(&db), self_(std::move(self)) {}

  // A credential version. True if it is new here (pass it on): a version not held yet, or one
  // that wins an equal-version conflict (different bytes: the later issue time wins, then the
  // greater signed bytes; the conflict is logged and kept in credential_conflicts). An older
  // version is kept too (it is current again if a key revocation takes the newer one out).
  Result<bool> putCredential(const CredentialInfo& c, const Bytes& sealed, TimeMs now);
  // The highest version held (0: none).
  Result<uint32_t> heldVersion(const std::string& number);
  // The newest version known here: the highest held, or announced by any status record or
  // renewal notice held (each a max-merge, whichever record wins the status order).
  Result<uint32_t> currentVersion(const std::string& number);

  // A status record or renewal notice. True if new here (not these exact bytes already).
  Result<bool> putStatus(const CredentialStatusInfo& s, uint32_t current_version, const Bytes& sealed, TimeMs now);
  // The winning status record: greatest (is revoked, version, at, by, signed bytes) among
  // revoked / suspended / active (renewal notices take no part).
  Result<std::optional<CredentialStatusInfo>> winningStatus(const std::string& number);
  // The highest version of any status record of `number` (renewal notices excluded; 0: none).
  Result<uint32_t> lastStatusVersion(const std::string& number);

  // An identity record. True if new here; the greatest (version, registered at, registered by,
  // signed bytes) is current.
  Result<bool> putIdentity(const IdentityInfo& r, const Bytes& sealed, TimeMs now);

  // After a key revocation from `since` on: every document signed at or after `since` for which
  // `revoked` says so is taken out, and what is current is recomputed. Returns how many went.
  Result<size_t> dropRevokedSince(TimeMs since, const std::function<bool(const Bytes& sealed)>& revoked);

 private:
  Status refreshCredential(const std::string& number);
  Status refreshStatus(const std::string& number);
  Status refreshIdentity(const std::string& id_number);

  Database* db_;
  std::string self_;  // for log lines
};

}  // namespace tongban
