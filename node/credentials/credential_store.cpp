#include "node/credentials/credential_store.h"

#include <set>
#include <tuple>
#include <utility>
#include <vector>

#include <spdlog/spdlog.h>

namespace tongban {

namespace {

const std::vector<Migration> kCredentialMigrations = {
    {1,
     "CREATE TABLE credential_counter (id INTEGER PRIMARY KEY CHECK (id = 1), next INTEGER NOT NULL);"
     "INSERT INTO credential_counter (id, next) VALUES (1, 0);"
     // The current (highest) version of every credential this node holds: its own, its
     // subtree's, and those of the cases it accepted.
     "CREATE TABLE credentials (number TEXT PRIMARY KEY, version INTEGER NOT NULL, kind TEXT NOT NULL,"
     "  holder_id TEXT NOT NULL, issuer TEXT NOT NULL, item_code TEXT NOT NULL, case_number TEXT NOT NULL,"
     "  origin TEXT NOT NULL, valid_from_ms INTEGER NOT NULL, valid_until_ms INTEGER NOT NULL,"
     "  issued_at_ms INTEGER NOT NULL, sealed BLOB NOT NULL, received_ms INTEGER NOT NULL);"
     "CREATE INDEX credentials_by_holder ON credentials (holder_id);"
     // The winning status record per credential number (every node holds every one).
     "CREATE TABLE credential_status (number TEXT PRIMARY KEY, status TEXT NOT NULL, version INTEGER NOT NULL,"
     "  at_ms INTEGER NOT NULL, by_division TEXT NOT NULL, by_name TEXT NOT NULL, reason TEXT NOT NULL,"
     "  current_version INTEGER NOT NULL, sealed BLOB NOT NULL, received_ms INTEGER NOT NULL);"
     "CREATE TABLE identity_records (id_number TEXT PRIMARY KEY, name TEXT NOT NULL, kind TEXT NOT NULL,"
     "  version INTEGER NOT NULL, registered_at_ms INTEGER NOT NULL, registered_by TEXT NOT NULL,"
     "  sealed BLOB NOT NULL, received_ms INTEGER NOT NULL);"
     "CREATE TABLE key_revocations (id INTEGER PRIMARY KEY AUTOINCREMENT, revocation BLOB NOT NULL UNIQUE,"
     "  received_ms INTEGER NOT NULL);"},
    // Every document kept, not only the winner (credential_store.h); the tables of version 1 are
    // now what is current, recomputed from these. The time columns are the signing times (each
    // equals its envelope's timestamp), indexed for a key revocation's "from then on".
    {2,
     "CREATE TABLE credential_versions (number TEXT NOT NULL, version INTEGER NOT NULL, kind TEXT NOT NULL,"
     "  holder_id TEXT NOT NULL, issuer TEXT NOT NULL, item_code TEXT NOT NULL, case_number TEXT NOT NULL,"
     "  origin TEXT NOT NULL, valid_from_ms INTEGER NOT NULL, valid_until_ms INTEGER NOT NULL,"
     "  issued_at_ms INTEGER NOT NULL, sealed BLOB NOT NULL, received_ms INTEGER NOT NULL,"
     "  PRIMARY KEY (number, version));"
     "CREATE INDEX credential_versions_by_time ON credential_versions (issued_at_ms);"
     "INSERT INTO credential_versions SELECT number, version, kind, holder_id, issuer, item_code, case_number, origin,"
     "  valid_from_ms, valid_until_ms, issued_at_ms, sealed, received_ms FROM credentials;"
     "CREATE TABLE credential_status_records (id INTEGER PRIMARY KEY AUTOINCREMENT, number TEXT NOT NULL,"
     "  status TEXT NOT NULL, version INTEGER NOT NULL, at_ms INTEGER NOT NULL, by_division TEXT NOT NULL,"
     "  by_name TEXT NOT NULL, reason TEXT NOT NULL, current_version INTEGER NOT NULL, sealed BLOB NOT NULL UNIQUE,"
     "  received_ms INTEGER NOT NULL);"
     "CREATE INDEX credential_status_records_by_number ON credential_status_records (number);"
     "CREATE INDEX credential_status_records_by_time ON credential_status_records (at_ms);"
     "INSERT INTO credential_status_records (number, status, version, at_ms, by_division, by_name, reason,"
     "  current_version, sealed, received_ms) SELECT number, status, version, at_ms, by_division, by_name, reason,"
     "  current_version, sealed, received_ms FROM credential_status;"
     "CREATE TABLE identity_record_versions (id INTEGER PRIMARY KEY AUTOINCREMENT, id_number TEXT NOT NULL,"
     "  name TEXT NOT NULL, kind TEXT NOT NULL, version INTEGER NOT NULL, registered_at_ms INTEGER NOT NULL,"
     "  registered_by TEXT NOT NULL, sealed BLOB NOT NULL UNIQUE, received_ms INTEGER NOT NULL);"
     "CREATE INDEX identity_record_versions_by_id ON identity_record_versions (id_number);"
     "CREATE INDEX identity_record_versions_by_time ON identity_record_versions (registered_at_ms);"
     "INSERT INTO identity_record_versions (id_number, name, kind, version, registered_at_ms, registered_by, sealed,"
     "  received_ms) SELECT id_number, name, kind, version, registered_at_ms, registered_by, sealed, received_ms"
     "  FROM identity_records;"
     // Two different documents claiming one credential version (an issuer restored from an old
     // backup that issued again): which was kept, which was not, for the operator.
     "CREATE TABLE credential_conflicts (number TEXT NOT NULL, version INTEGER NOT NULL, kept BLOB NOT NULL,"
     "  dropped BLOB NOT NULL, at_ms INTEGER NOT NULL);"},
};

constexpr const char* kCredentialColumns =
    "number, version, kind, holder_id, issuer, item_code, case_number, origin, valid_from_ms, valid_until_ms,"
    " issued_at_ms, sealed, received_ms";

}  // namespace

Status CredentialStore::migrate(Database& db) { return db.migrate("credentials", kCredentialMigrations); }

Result<uint32_t> CredentialStore::heldVersion(const std::string& number) {
  TB_ASSIGN_OR_RETURN(auto stmt, db_->prepare("SELECT MAX(version) FROM credential_versions WHERE number = ?1"));
  stmt.bind(1, number);
  TB_ASSIGN_OR_RETURN(bool row, stmt.step());
  return row ? static_cast<uint32_t>(stmt.columnInt64(0)) : 0u;  // NULL (none) reads as 0
}

Result<uint32_t> CredentialStore::currentVersion(const std::string& number) {
  TB_ASSIGN_OR_RETURN(auto stmt, db_->prepare(
      "SELECT MAX(COALESCE((SELECT MAX(version) FROM credential_versions WHERE number = ?1), 0),"
      "           COALESCE((SELECT MAX(current_version) FROM credential_status_records WHERE number = ?1), 0))"));
  stmt.bind(1, number);
  TB_ASSIGN_OR_RETURN(bool row, stmt.step());
  return row ? static_cast<uint32_t>(stmt.columnInt64(0)) : 0u;
}

Result<bool> CredentialStore::putCredential(const CredentialInfo& c, const Bytes& sealed, TimeMs now) {
  TB_ASSIGN_OR_RETURN(auto held, db_->prepare(
      "SELECT issued_at_ms, sealed FROM credential_versions WHERE number = ?1 AND version = ?2"));
  held.bind(1, c.number).bind(2, static_cast<int64_t>(c.version));
  TB_ASSIGN_OR_RETURN(bool exists, held.step());
  if (exists) {
    const TimeMs held_at = held.columnInt64(0);
    const Bytes held_sealed = held.columnBlob(1);
    if (held_sealed == sealed) return false;  // a re-delivery
    // Two documents for one version: one deterministic winner everywhere.
    const bool incoming_wins = std::tie(c.issued_at_ms, sealed) > std::tie(held_at, held_sealed);
    TB_ASSIGN_OR_RETURN(auto note, db_->prepare(
        "INSERT INTO credential_conflicts (number, version, kept, dropped, at_ms) VALUES (?1, ?2, ?3, ?4, ?5)"));
    note.bind(1, c.number).bind(2, static_cast<int64_t>(c.version));
    note.bind(3, incoming_wins ? sealed : held_sealed).bind(4, incoming_wins ? held_sealed : sealed).bind(5, now);
    TB_RETURN_IF_ERROR(note.run());
    spdlog::warn("[{}] two different documents claim version {} of credential {}; keeping the one issued {} "
                 "(the later issue time wins; was the issuer restored from an old backup?)",
                 self_, c.version, c.number, incoming_wins ? "now" : "before");
    if (!incoming_wins) return false;
  }
  TB_ASSIGN_OR_RETURN(auto put, db_->prepare(std::string("INSERT OR REPLACE INTO credential_versions (") +
                                             kCredentialColumns +
                                             ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"));
  put.bind(1, c.number).bind(2, static_cast<int64_t>(c.version)).bind(3, c.kind).bind(4, c.holder_id);
  put.bind(5, c.issuer).bind(6, c.item_code).bind(7, c.case_number).bind(8, c.origin).bind(9, c.valid_from_ms);
  put.bind(10, c.valid_until_ms).bind(11, c.issued_at_ms).bind(12, sealed).bind(13, now);
  TB_RETURN_IF_ERROR(put.run());
  TB_RETURN_IF_ERROR(refreshCredential(c.number));
  TB_RETURN_IF_ERROR(refreshStatus(c.number));
  return true;
}

Status CredentialStore::refreshCredential(const std::string& number) {
  TB_ASSIGN_OR_RETURN(auto drop, db_->prepare("DELETE FROM credentials WHERE number = ?1"));
  TB_RETURN_IF_ERROR(drop.bind(1, number).run());
  TB_ASSIGN_OR_RETURN(auto put, db_->prepare(std::string("INSERT INTO credentials (") + kCredentialColumns + ") SELECT " +
                                             kCredentialColumns +
                                             " FROM credential_versions WHERE number = ?1 ORDER BY version DESC LIMIT 1"));
  return put.bind(1, number).run();
}

Result<bool> CredentialStore::putStatus(const CredentialStatusInfo& s, uint32_t current_version, const Bytes& sealed,
                                        TimeMs now) {
  TB_ASSIGN_OR_RETURN(auto put, db_->prepare(
      "INSERT OR IGNORE INTO credential_status_records (number, status, version, at_ms, by_division, by_name, reason,"
      " current_version, sealed, received_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"));
  put.bind(1, s.number).bind(2, s.status).bind(3, static_cast<int64_t>(s.version)).bind(4, s.at_ms).bind(5, s.by);
  put.bind(6, s.by_name).bind(7, s.reason).bind(8, static_cast<int64_t>(current_version)).bind(9, sealed).bind(10, now);
  TB_RETURN_IF_ERROR(put.run());
  if (db_->changes() == 0) return false;  // these exact bytes are held already
  TB_RETURN_IF_ERROR(refreshStatus(s.number));
  return true;
}

namespace {
// The status order (docs/protocol.md): a revocation beats anything that is not one (revoked is
// final), then the higher version, time, signer, and — for two different documents equal in all
// of these — the greater signed bytes. SQLite compares TEXT and BLOB bytewise.
constexpr const char* kWinningStatus =
    "SELECT status, version, at_ms, by_division, by_name, reason, sealed, received_ms FROM credential_status_records"
    " WHERE number = ?1 AND status != 'renewed'"
    " ORDER BY (status = 'revoked') DESC, version DESC, at_ms DESC, by_division DESC, sealed DESC LIMIT 1";
}  // namespace

Result<std::optional<CredentialStatusInfo>> CredentialStore::winningStatus(const std::string& number) {
  TB_ASSIGN_OR_RETURN(auto stmt, db_->prepare(kWinningStatus));
  stmt.bind(1, number);
  TB_ASSIGN_OR_RETURN(bool row, stmt.step());
  if (!row) return std::optional<CredentialStatusInfo>();
  return std::make_optional(CredentialStatusInfo{number, stmt.columnText(0), static_cast<uint32_t>(stmt.columnInt64(1)),
                                                 stmt.columnInt64(2), stmt.columnText(3), stmt.columnText(4),
                                                 stmt.columnText(5)});
}

Result<uint32_t> CredentialStore::lastStatusVersion(const std::string& number) {
  TB_ASSIGN_OR_RETURN(auto stmt, db_->prepare(
      "SELECT MAX(version) FROM credential_status_records WHERE number = ?1 AND status != 'renewed'"));
  stmt.bind(1, number);
  TB_ASSIGN_OR_RETURN(bool row, stmt.step());
  return row ? static_cast<uint32_t>(stmt.columnInt64(0)) : 0u;
}

Status CredentialStore::refreshStatus(const std::string& number) {
  TB_ASSIGN_OR_RETURN(uint32_t current, currentVersion(number));
  TB_ASSIGN_OR_RETURN(auto drop, db_->prepare("DELETE FROM credential_status WHERE number = ?1"));
  TB_RETURN_IF_ERROR(drop.bind(1, number).run());
  TB_ASSIGN_OR_RETURN(auto put, db_->prepare(
      "INSERT INTO credential_status (number, status, version, at_ms, by_division, by_name, reason, current_version,"
      " sealed, received_ms) SELECT ?1, status, version, at_ms, by_division, by_name, reason, ?2, sealed, received_ms"
      " FROM (" + std::string(kWinningStatus) + ")"));
  return put.bind(1, number).bind(2, static_cast<int64_t>(current)).run();
}

Result<bool> CredentialStore::putIdentity(const IdentityInfo& r, const Bytes& sealed, TimeMs now) {
  TB_ASSIGN_OR_RETURN(auto put, db_->prepare(
      "INSERT OR IGNORE INTO identity_record_versions (id_number, name, kind, version, registered_at_ms, registered_by,"
      " sealed, received_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"));
  put.bind(1, r.id_number).bind(2, r.name).bind(3, r.kind).bind(4, static_cast<int64_t>(r.version));
  put.bind(5, r.registered_at_ms).bind(6, r.registered_by).bind(7, sealed).bind(8, now);
  TB_RETURN_IF_ERROR(put.run());
  if (db_->changes() == 0) return false;
  TB_RETURN_IF_ERROR(refreshIdentity(r.id_number));
  return true;
}

Status CredentialStore::refreshIdentity(const std::string& id_number) {
  TB_ASSIGN_OR_RETURN(auto drop, db_->prepare("DELETE FROM identity_records WHERE id_number = ?1"));
  TB_RETURN_IF_ERROR(drop.bind(1, id_number).run());
  TB_ASSIGN_OR_RETURN(auto put, db_->prepare(
      "INSERT INTO identity_records (id_number, name, kind, version, registered_at_ms, registered_by, sealed,"
      " received_ms) SELECT id_number, name, kind, version, registered_at_ms, registered_by, sealed, received_ms"
      " FROM identity_record_versions WHERE id_number = ?1"
      " ORDER BY version DESC, registered_at_ms DESC, registered_by DESC, sealed DESC LIMIT 1"));
  return put.bind(1, id_number).run();
}

Result<size_t> CredentialStore::dropRevokedSince(TimeMs since, const std::function<bool(const Bytes&)>& revoked) {
  // Collect first, then delete: never modify a table under an open statement over it.
  auto collect = [&](const char* sql, std::vector<std::tuple<std::string, int64_t>>& out) -> Status {
    TB_ASSIGN_OR_RETURN(auto stmt, db_->prepare(sql));
    stmt.bind(1, since);
    while (true) {
      TB_ASSIGN_OR_RETURN(bool row, stmt.step());
      if (!row) return Status::ok();
      if (revoked(stmt.columnBlob(2))) out.emplace_back(stmt.columnText(0), stmt.columnInt64(1));
    }
  };
  std::vector<std::tuple<std::string, int64_t>> versions, statuses, identities;
  TB_RETURN_IF_ERROR(collect("SELECT number, version, sealed FROM credential_versions WHERE issued_at_ms >= ?1", versions));
  TB_RETURN_IF_ERROR(collect("SELECT number, id, sealed FROM credential_status_records WHERE at_ms >= ?1", statuses));
  TB_RETURN_IF_ERROR(collect("SELECT id_number, id, sealed FROM identity_record_versions WHERE registered_at_ms >= ?1",
                             identities));
  std::set<std::string> numbers, ids;
  for (const auto& [number, version] : versions) {
    TB_ASSIGN_OR_RETURN(auto drop, db_->prepare("DELETE FROM credential_versions WHERE number = ?1 AND version = ?2"));
    TB_RETURN_IF_ERROR(drop.bind(1, number).bind(2, version).run());
    spdlog::warn("[{}] version {} of credential {} was signed with a key revoked by then: no longer held", self_,
                 version, number);
    numbers.insert(number);
  }
  for (const auto& [number, id] : statuses) {
    TB_ASSIGN_OR_RETURN(auto drop, db_->prepare("DELETE FROM credential_status_records WHERE id = ?1"));
    TB_RETURN_IF_ERROR(drop.bind(1, id).run());
    spdlog::warn("[{}] a status record of credential {} was signed with a key revoked by then: no longer in force",
                 self_, number);
    numbers.insert(number);
  }
  for (const auto& [id_number, id] : identities) {
    TB_ASSIGN_OR_RETURN(auto drop, db_->prepare("DELETE FROM identity_record_versions WHERE id = ?1"));
    TB_RETURN_IF_ERROR(drop.bind(1, id).run());
    spdlog::warn("[{}] an identity record of {} was signed with a key revoked by then: no longer held", self_,
                 id_number);
    ids.insert(id_number);
  }
  for (const auto& number : numbers) {
    TB_RETURN_IF_ERROR(refreshCredential(number));
    TB_RETURN_IF_ERROR(refreshStatus(number));
  }
  for (const auto& id_number : ids) TB_RETURN_IF_ERROR(refreshIdentity(id_number));
  return versions.size() + statuses.size() + identities.size();
}

}  // namespace tongban
