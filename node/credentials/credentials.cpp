#include "node/credentials/credentials.h"

#include <cstdio>
#include <cstring>
#include <limits>
#include <tuple>

#include <spdlog/spdlog.h>

#include "node/applicants/id_numbers.h"
#include "node/calendar/calendar.h"
#include "node/cases/cases.h"
#include "node/credentials/credential_wire.h"

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
};

constexpr DurationMs kDayMs = 24LL * 3600 * 1000;

// The issuer a credential number names ("440604000000-L00000007" → 440604000000).
Result<DivisionCode> issuerOf(const std::string& number) {
  const auto dash = number.find("-L");
  if (dash == std::string::npos) return Status(ErrorCode::kInvalidArgument, "'" + number + "' is not a credential number");
  return DivisionCode::parse(number.substr(0, dash));
}

}  // namespace

void registerCredentialKinds(KindRegistry& registry) {
  registry.add(kCredentialKind, {"credential", Direction::kStatement, /*durable=*/false});
  registry.add(kCredentialUpKind, {"credential-up", Direction::kUpToParent, /*durable=*/true});
  registry.add(kCredentialStatusKind, {"credential-status", Direction::kStatement, /*durable=*/false});
  registry.add(kCredentialStatusUpKind, {"credential-status-up", Direction::kUpToParent, /*durable=*/true});
  registry.add(kIdentityRecordKind, {"identity-record", Direction::kStatement, /*durable=*/false});
  registry.add(kIdentityRecordUpKind, {"identity-record-up", Direction::kUpToParent, /*durable=*/true});
  registry.add(kKeyRevocationNoticeKind, {"key-revocation-notice", Direction::kStatement, /*durable=*/false});
  registry.add(kKeyRevocationUpKind, {"key-revocation-up", Direction::kUpToParent, /*durable=*/true});
}

struct CredentialService::Impl {
  Database* db;
  const Identity* identity;
  const Verifier* verifier;
  const CatalogueStore* catalogue;
  EnqueueUp enqueue_up;
  PublishDown publish_down;
  Freshness freshness;
  KeyRevoked key_revoked;
  CredentialSettings settings;
  std::function<void(const std::string&)> status_observer;  // setStatusObserver

  const DivisionCode& self() const { return identity->division; }

  // How long a credential of `item` is valid, or nothing for a long-term one (长期, no end). An
  // item that states no period gets the default (0 there also meaning no end, as it always did).
  std::optional<DurationMs> periodOf(const CatalogueItem& item) const {
    const DurationMs period = item.validity_days ? *item.validity_days * kDayMs : settings.default_validity_ms;
    return period > 0 ? std::optional<DurationMs>(period) : std::nullopt;
  }

  // The exclusive end of a credential of `item` issued or renewed at `now`: the end (CST) of the
  // N-th day after that day (the day itself does not count, as 《民法典》第二百零一条 counts
  // periods), or 0 (no end) for a long-term item.
  TimeMs validUntil(const CatalogueItem& item, TimeMs now) const {
    const auto period = periodOf(item);
    return period ? endOfDayMs(CivilDate::fromTimeMs(now + *period)) : 0;
  }

  // The validity end of a renewal at `now`: the item's period restarted from `now`, as at
  // issuance, or the `requested` end when it is within that period (an issuer may shorten a
  // licence, not make a 90-day permit last years). With the item gone from the catalogue only
  // an explicit end can be used.
  Result<TimeMs> renewedUntil(const CredentialInfo& cred, std::optional<TimeMs> requested, TimeMs now) const {
    if (requested && *requested != 0 && *requested <= now) {
      return Status(ErrorCode::kInvalidArgument, "the renewed validity must end in the future");
    }
    const Catalogue* cat = catalogue->current();
    const CatalogueItem* item = cat ? cat->find(cred.item_code) : nullptr;
    if (!item) {
      if (requested) return *requested;
      return Status(ErrorCode::kFailedPrecondition, "item " + cred.item_code + " of " + cred.number +
                                                        " is not in this node's catalogue, so its validity period is "
                                                        "unknown: give the last valid day explicitly");
    }
    const TimeMs longest = validUntil(*item, now);
    if (!requested) return longest;
    if (longest != 0 && (*requested == 0 || *requested > longest)) {
      return Status(ErrorCode::kInvalidArgument, item->code + " credentials are valid for at most " +
                                                     std::to_string(*periodOf(*item) / kDayMs) + " days: renewed on " +
                                                     CivilDate::fromTimeMs(now).toString() + ", it may be valid until " +
                                                     CivilDate::fromTimeMs(longest - 1).toString() + " at the latest");
    }
    return *requested;
  }

  // The payload of a document stored after it was verified. Opened again rather than trusted
  // from columns; any time will do as "now" (the checks that matter use the document's own time).
  Result<Bytes> payloadOfStored(const Bytes& sealed) {
    TB_ASSIGN_OR_RETURN(OpenedEnvelope e, verifier->open(sealed, self(), std::numeric_limits<TimeMs>::max() / 2, nullptr));
    return std::move(e.payload);
  }

  Bytes seal(MessageKind kind, const Bytes& payload, TimeMs now) {
    SealParams p;
    p.kind = kind;
    p.timestamp_ms = now;
    p.target = self();
    p.payload = payload;
    return sealEnvelope(*identity, p);
  }

  Result<OpenedEnvelope> open(const Bytes& sealed, MessageKind kind, TimeMs now) {
    TB_ASSIGN_OR_RETURN(OpenedEnvelope e, verifier->open(sealed, self(), now, nullptr));
    if (e.kind != kind) {
      return Status(ErrorCode::kInvalidArgument, "expected a document of kind " + std::to_string(kind) + ", got kind " +
                                                     std::to_string(e.kind));
    }
    return e;
  }

  // Checks 1-6 passed; now: may this signer have issued this credential?
  Status checkIssuerAuthority(const OpenedEnvelope& e, const CredentialInfo& c) {
    if (c.issuer != e.signer.str()) {
      return Status(ErrorCode::kUnauthorized, "credential " + c.number + " names issuer " + c.issuer + " but is signed by " +
                                                  e.signer.str());
    }
    TB_ASSIGN_OR_RETURN(DivisionCode numbered_by, issuerOf(c.number));
    if (numbered_by != e.signer) {
      return Status(ErrorCode::kUnauthorized, "credential number " + c.number + " was not given by its signer " + e.signer.str());
    }
    const Catalogue* cat = catalogue->current();
    if (!cat) return Status(ErrorCode::kUnavailable, "no service catalogue here yet, so the issuer's authority cannot be checked");
    const CatalogueItem* item = cat->find(c.item_code);
    if (!item) {
      return Status(ErrorCode::kUnauthorized, "item " + c.item_code + " of credential " + c.number +
                                                  " is not in catalogue version " + std::to_string(cat->version));
    }
    if (item->decide_level != e.signer.level()) {
      return Status(ErrorCode::kUnauthorized, e.signer.str() + " (a " + levelName(e.signer.level()) + ") may not issue " +
                                                  c.kind + ": item " + c.item_code + " is decided at " +
                                                  levelName(item->decide_level) + " level");
    }
    if (item->issues != c.kind) {
      return Status(ErrorCode::kUnauthorized, "item " + c.item_code + " issues '" + item->issues + "', not '" + c.kind + "'");
    }
    auto origin = DivisionCode::parse(c.origin);
    if (!origin || !e.signer.covers(*origin)) {
      return Status(ErrorCode::kUnauthorized, e.signer.str() + " may not issue for a case accepted at " + c.origin +
                                                  ", outside its subtree");
    }
    return Status::ok();
  }

  Result<uint32_t> heldVersion(const std::string& number) {
    TB_ASSIGN_OR_RETURN(auto stmt, db->prepare("SELECT version FROM credentials WHERE number = ?1"));
    stmt.bind(1, number);
    TB_ASSIGN_OR_RETURN(bool row, stmt.step());
    return row ? static_cast<uint32_t>(stmt.columnInt64(0)) : 0u;
  }

  Result<bool> store(const CredentialInfo& c, const Bytes& sealed, TimeMs now) {
    TB_ASSIGN_OR_RETURN(uint32_t held, heldVersion(c.number));
    if (held >= c.version) return false;  // the highest version wins; an equal one is a re-delivery
    TB_ASSIGN_OR_RETURN(auto stmt, db->prepare(
        "INSERT OR REPLACE INTO credentials (number, version, kind, holder_id, issuer, item_code, case_number, origin,"
        " valid_from_ms, valid_until_ms, issued_at_ms, sealed, received_ms)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"));
    stmt.bind(1, c.number).bind(2, static_cast<int64_t>(c.version)).bind(3, c.kind).bind(4, c.holder_id);
    stmt.bind(5, c.issuer).bind(6, c.item_code).bind(7, c.case_number).bind(8, c.origin).bind(9, c.valid_from_ms);
    stmt.bind(10, c.valid_until_ms).bind(11, c.issued_at_ms).bind(12, sealed).bind(13, now);
    TB_RETURN_IF_ERROR(stmt.run());
    return true;
  }

  Result<std::optional<std::pair<CredentialStatusInfo, uint32_t>>> loadStatus(const std::string& number) {
    TB_ASSIGN_OR_RETURN(auto stmt, db->prepare(
        "SELECT status, version, at_ms, by_division, by_name, reason, current_version FROM credential_status WHERE number = ?1"));
    stmt.bind(1, number);
    TB_ASSIGN_OR_RETURN(bool row, stmt.step());
    if (!row) return std::optional<std::pair<CredentialStatusInfo, uint32_t>>();
    CredentialStatusInfo s{number, stmt.columnText(0), static_cast<uint32_t>(stmt.columnInt64(1)), stmt.columnInt64(2),
                           stmt.columnText(3), stmt.columnText(4), stmt.columnText(5)};
    return std::make_optional(std::make_pair(s, static_cast<uint32_t>(stmt.columnInt64(6))));
  }

  // Verifies a status record and stores it if it wins (docs/protocol.md's rule).
  Result<bool> acceptStatus(const Bytes& sealed, TimeMs now) {
    TB_ASSIGN_OR_RETURN(OpenedEnvelope e, open(sealed, kCredentialStatusKind, now));
    TB_ASSIGN_OR_RETURN(auto decoded, decodeStatus(e.payload));
    auto& [s, current_version] = decoded;
    TB_ASSIGN_OR_RETURN(DivisionCode issuer, issuerOf(s.number));
    if (s.by != e.signer.str() || !e.signer.covers(issuer)) {
      return Status(ErrorCode::kUnauthorized, e.signer.str() + " may not change the status of " + s.number +
                                                  ": only its issuer " + issuer.str() + " or an ancestor may");
    }
    TB_ASSIGN_OR_RETURN(auto held, loadStatus(s.number));
    if (held) {
      // One total order, so every node keeps the same winner whatever order records arrive in:
      // a revocation beats anything that is not one (revoked is final, even against a record
      // made concurrently with a higher version), then the higher (version, time, signer).
      const auto& h = held->first;
      const bool new_revoked = s.status == "revoked", held_revoked = h.status == "revoked";
      if (std::tie(new_revoked, s.version, s.at_ms, s.by) <= std::tie(held_revoked, h.version, h.at_ms, h.by)) {
        return false;
      }
    }
    TB_ASSIGN_OR_RETURN(auto stmt, db->prepare(
        "INSERT OR REPLACE INTO credential_status (number, status, version, at_ms, by_division, by_name, reason,"
        " current_version, sealed, received_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"));
    stmt.bind(1, s.number).bind(2, s.status).bind(3, static_cast<int64_t>(s.version)).bind(4, s.at_ms).bind(5, s.by);
    stmt.bind(6, s.by_name).bind(7, s.reason).bind(8, static_cast<int64_t>(current_version)).bind(9, sealed).bind(10, now);
    TB_RETURN_IF_ERROR(stmt.run());
    if (status_observer) status_observer(s.number);
    return true;
  }

  Result<bool> acceptIdentity(const Bytes& sealed, TimeMs now) {
    TB_ASSIGN_OR_RETURN(OpenedEnvelope e, open(sealed, kIdentityRecordKind, now));
    TB_ASSIGN_OR_RETURN(IdentityInfo r, decodeIdentity(e.payload));
    if (r.registered_by != e.signer.str()) {
      return Status(ErrorCode::kUnauthorized, "identity record of " + r.id_number + " names " + r.registered_by +
                                                  " but is signed by " + e.signer.str());
    }
    TB_RETURN_IF_ERROR(parseApplicantId(r.id_number).status());
    TB_ASSIGN_OR_RETURN(auto stmt, db->prepare(
        "SELECT version, registered_at_ms, registered_by FROM identity_records WHERE id_number = ?1"));
    stmt.bind(1, r.id_number);
    TB_ASSIGN_OR_RETURN(bool row, stmt.step());
    if (row) {
      const auto held = std::make_tuple(static_cast<uint32_t>(stmt.columnInt64(0)), stmt.columnInt64(1), stmt.columnText(2));
      if (std::make_tuple(r.version, r.registered_at_ms, r.registered_by) <= held) return false;
    }
    TB_ASSIGN_OR_RETURN(auto put, db->prepare(
        "INSERT OR REPLACE INTO identity_records (id_number, name, kind, version, registered_at_ms, registered_by,"
        " sealed, received_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"));
    put.bind(1, r.id_number).bind(2, r.name).bind(3, r.kind).bind(4, static_cast<int64_t>(r.version));
    put.bind(5, r.registered_at_ms).bind(6, r.registered_by).bind(7, sealed).bind(8, now);
    TB_RETURN_IF_ERROR(put.run());
    return true;
  }

  Result<bool> acceptKeyRevocation(const Bytes& notice, TimeMs now) {
    TB_ASSIGN_OR_RETURN(OpenedEnvelope e, open(notice, kKeyRevocationNoticeKind, now));
    // The revocation inside is signed by an ancestor of the revoked node (checked there); the
    // node that published the notice adds nothing to its authority.
    TB_ASSIGN_OR_RETURN(auto stmt, db->prepare("SELECT 1 FROM key_revocations WHERE revocation = ?1"));
    stmt.bind(1, e.payload);
    TB_ASSIGN_OR_RETURN(bool known, stmt.step());
    if (known) return false;
    if (key_revoked) TB_RETURN_IF_ERROR(key_revoked(e.payload));
    TB_ASSIGN_OR_RETURN(auto put, db->prepare("INSERT INTO key_revocations (revocation, received_ms) VALUES (?1, ?2)"));
    TB_RETURN_IF_ERROR(put.bind(1, e.payload).bind(2, now).run());
    return true;
  }

  // A status record made here or received from a child: every descendant gets it through the
  // feed, every ancestor through the outbox.
  Status spread(MessageKind up_kind, const Bytes& sealed, bool to_feed) {
    if (to_feed && publish_down) TB_RETURN_IF_ERROR(publish_down(sealed).status());
    if (enqueue_up) TB_RETURN_IF_ERROR(enqueue_up(up_kind, sealed).status());
    return Status::ok();
  }
};

Result<CredentialService> CredentialService::open(Database& db, const Identity& identity, const Verifier& verifier,
                                                  const CatalogueStore& catalogue, EnqueueUp enqueue_up,
                                                  PublishDown publish_down, Freshness freshness, KeyRevoked key_revoked,
                                                  CredentialSettings settings) {
  TB_RETURN_IF_ERROR(db.migrate("credentials", kCredentialMigrations));
  auto impl = std::make_shared<Impl>();
  impl->db = &db;
  impl->identity = &identity;
  impl->verifier = &verifier;
  impl->catalogue = &catalogue;
  impl->enqueue_up = std::move(enqueue_up);
  impl->publish_down = std::move(publish_down);
  impl->freshness = std::move(freshness);
  impl->key_revoked = std::move(key_revoked);
  impl->settings = settings;
  return CredentialService(impl);
}

Result<std::vector<Bytes>> CredentialService::keyRevocations() {
  TB_ASSIGN_OR_RETURN(auto stmt, impl_->db->prepare("SELECT revocation FROM key_revocations ORDER BY id"));
  std::vector<Bytes> out;
  while (true) {
    TB_ASSIGN_OR_RETURN(bool row, stmt.step());
    if (!row) break;
    out.push_back(stmt.columnBlob(0));
  }
  return out;
}

Result<std::string> CredentialService::issue(const CaseRecord& c, TimeMs now) {
  Impl& m = *impl_;
  if (!m.db->inTransaction()) return Status(ErrorCode::kInternal, "issue runs inside the conclude transaction");
  const Catalogue* cat = m.catalogue->current();
  const CatalogueItem* item = cat ? cat->find(c.item_code) : nullptr;
  if (!item) return Status(ErrorCode::kFailedPrecondition, "item " + c.item_code + " is not in this node's catalogue");
  if (item->issues.empty()) return Status(ErrorCode::kFailedPrecondition, "item " + c.item_code + " issues no credential");
  if (item->decide_level != m.self().level()) {
    return Status(ErrorCode::kFailedPrecondition, "only a " + std::string(levelName(item->decide_level)) +
                                                      " node issues " + item->issues);
  }
  TB_ASSIGN_OR_RETURN(auto counter, m.db->prepare("UPDATE credential_counter SET next = next + 1 WHERE id = 1 RETURNING next"));
  TB_ASSIGN_OR_RETURN(bool row, counter.step());
  if (!row) return Status(ErrorCode::kInternal, "credential counter missing");
  const auto sequence = static_cast<uint64_t>(counter.columnInt64(0));
  TB_RETURN_IF_ERROR(counter.run());
  char digits[16];
  std::snprintf(digits, sizeof digits, "%08llu", static_cast<unsigned long long>(sequence));
  CredentialInfo cred;
  cred.number = m.self().str() + "-L" + digits;
  cred.version = 1;
  cred.sequence = sequence;
  cred.kind = item->issues;
  cred.holder_id = c.applicant_id;
  cred.holder_name = c.applicant_name;
  cred.issuer = m.self().str();
  cred.issuer_name = m.identity->name;
  cred.item_code = c.item_code;
  cred.item_name = c.item_name;
  cred.case_number = c.number;
  cred.origin = c.held_for.empty() ? m.self().str() : c.held_for;
  cred.valid_from_ms = now;
  cred.valid_until_ms = m.validUntil(*item, now);
  cred.facts = c.facts;
  cred.issued_at_ms = now;
  Bytes sealed = signCredential(*m.identity, cred);
  TB_RETURN_IF_ERROR(m.store(cred, sealed, now).status());
  if (m.enqueue_up) TB_RETURN_IF_ERROR(m.enqueue_up(kCredentialUpKind, sealed).status());
  spdlog::info("[{}] issued {} {} to {} for case {}", m.self().str(), cred.kind, cred.number, cred.holder_id, c.number);
  return cred.number;
}

Result<Bytes> CredentialService::renew(const std::string& number, std::optional<TimeMs> valid_until_ms, const Pairs& facts,
                                       TimeMs now) {
  Impl& m = *impl_;
  TB_ASSIGN_OR_RETURN(auto txn, m.db->begin());
  TB_ASSIGN_OR_RETURN(auto held, sealed(number));
  if (!held) return Status(ErrorCode::kNotFound, "no credential " + number + " at this node");
  TB_ASSIGN_OR_RETURN(OpenedEnvelope e, m.open(*held, kCredentialKind, now));
  TB_ASSIGN_OR_RETURN(CredentialInfo cred, decodeCredential(e.payload));
  if (cred.issuer != m.self().str()) {
    return Status(ErrorCode::kPermissionDenied, "only its issuer " + cred.issuer + " renews " + number);
  }
  TB_ASSIGN_OR_RETURN(auto status, m.loadStatus(number));
  if (status && status->first.status == "revoked") return Status(ErrorCode::kFailedPrecondition, number + " is revoked");
  if (facts.size() > kMaxFacts) return Status(ErrorCode::kInvalidArgument, "at most 32 facts");
  for (const auto& [key, value] : facts) {
    // The same limits every receiver's decoder applies: a fact it would refuse must not be signed.
    if (key.empty() || key.size() > kMaxText || value.size() > kMaxText) {
      return Status(ErrorCode::kInvalidArgument, "each fact needs a name, and name and value at most 500 bytes");
    }
  }
  TB_ASSIGN_OR_RETURN(const TimeMs until, m.renewedUntil(cred, valid_until_ms, now));
  cred.version += 1;
  cred.valid_from_ms = now;
  cred.valid_until_ms = until;
  if (!facts.empty()) cred.facts = facts;
  cred.issued_at_ms = now;
  Bytes renewed = signCredential(*m.identity, cred);
  TB_RETURN_IF_ERROR(m.store(cred, renewed, now).status());
  if (m.enqueue_up) TB_RETURN_IF_ERROR(m.enqueue_up(kCredentialUpKind, renewed).status());
  // Every node learns of the new version through a status record, so an older copy presented
  // anywhere is reported superseded.
  CredentialStatusInfo s{number, "active", status ? status->first.version + 1 : 1, now, m.self().str(), m.identity->name,
                         "renewed as version " + std::to_string(cred.version)};
  if (status && status->first.status == "suspended") s.status = "suspended";  // renewal does not lift a suspension
  Bytes sealed_status = m.seal(kCredentialStatusKind, encodeStatus(s, cred.version), now);
  TB_RETURN_IF_ERROR(m.acceptStatus(sealed_status, now).status());
  TB_RETURN_IF_ERROR(m.spread(kCredentialStatusUpKind, sealed_status, /*to_feed=*/true));
  TB_RETURN_IF_ERROR(txn.commit());
  return renewed;
}

Result<CredentialStatusInfo> CredentialService::setStatus(const std::string& number, const std::string& status,
                                                          const std::string& reason, TimeMs now) {
  Impl& m = *impl_;
  if (status != "revoked" && status != "suspended" && status != "active") {
    return Status(ErrorCode::kInvalidArgument, "status must be revoked, suspended or active (to lift a suspension)");
  }
  if (reason.empty() || reason.size() > kMaxText) return Status(ErrorCode::kInvalidArgument, "a reason of at most 500 bytes is required");
  TB_ASSIGN_OR_RETURN(DivisionCode issuer, issuerOf(number));
  if (!m.self().covers(issuer)) {
    return Status(ErrorCode::kPermissionDenied, m.self().str() + " may not change " + number + ": only its issuer " +
                                                    issuer.str() + " or an ancestor of it may");
  }
  TB_ASSIGN_OR_RETURN(auto txn, m.db->begin());
  TB_ASSIGN_OR_RETURN(auto held, m.loadStatus(number));
  TB_ASSIGN_OR_RETURN(uint32_t held_version, m.heldVersion(number));
  if (held_version == 0) {
    // Its issuer and every ancestor hold it once it has travelled up; a number never issued (or
    // still on its way) gets no status from here.
    return Status(ErrorCode::kNotFound, "no credential " + number + " at this node (not issued, or still on its way up)");
  }
  if (held && held->first.status == "revoked") {
    return Status(ErrorCode::kFailedPrecondition, number + " was revoked by " + held->first.by + "; that is final");
  }
  if (status == "active" && (!held || held->first.status != "suspended")) {
    return Status(ErrorCode::kFailedPrecondition, number + " is not suspended; only a suspension is lifted");
  }
  CredentialStatusInfo s{number, status, held ? held->first.version + 1 : 1, now, m.self().str(), m.identity->name, reason};
  const uint32_t current = std::max(held ? held->second : 0u, held_version);
  Bytes sealed_status = m.seal(kCredentialStatusKind, encodeStatus(s, current), now);
  TB_ASSIGN_OR_RETURN(bool stored, m.acceptStatus(sealed_status, now));
  if (!stored) return Status(ErrorCode::kInternal, "a newer status of " + number + " is already held");
  TB_RETURN_IF_ERROR(m.spread(kCredentialStatusUpKind, sealed_status, /*to_feed=*/true));
  TB_RETURN_IF_ERROR(txn.commit());
  spdlog::info("[{}] credential {} is now {}: {}", m.self().str(), number, status, reason);
  return s;
}

Status CredentialService::publishKeyRevocation(const Bytes& signed_revocation, TimeMs now) {
  Impl& m = *impl_;
  TB_ASSIGN_OR_RETURN(auto txn, m.db->begin());
  Bytes notice = m.seal(kKeyRevocationNoticeKind, signed_revocation, now);
  TB_ASSIGN_OR_RETURN(bool fresh, m.acceptKeyRevocation(notice, now));
  if (!fresh) return Status(ErrorCode::kAlreadyExists, "this key revocation is already in force here");
  TB_RETURN_IF_ERROR(m.spread(kKeyRevocationUpKind, notice, /*to_feed=*/true));
  return txn.commit();
}

Result<IdentityInfo> CredentialService::registerIdentity(const std::string& id_number, const std::string& name,
                                                         const Pairs& contacts, TimeMs now) {
  Impl& m = *impl_;
  TB_ASSIGN_OR_RETURN(ApplicantId id, parseApplicantId(id_number, CivilDate::fromTimeMs(now)));
  if (name.empty() || name.size() > kMaxText) return Status(ErrorCode::kInvalidArgument, "a name of at most 500 bytes is required");
  if (contacts.size() > kMaxFacts) return Status(ErrorCode::kInvalidArgument, "at most 32 contacts");
  for (const auto& [k, v] : contacts) {
    if (k.empty() || k.size() > kMaxText || v.size() > kMaxText) return Status(ErrorCode::kInvalidArgument, "each contact needs a name and at most 500 bytes");
  }
  TB_ASSIGN_OR_RETURN(auto txn, m.db->begin());
  TB_ASSIGN_OR_RETURN(auto existing, identity(id.number));
  IdentityInfo r{id.number, name, id.kind == ApplicantKind::kPerson ? "person" : "organisation", contacts,
                 existing ? existing->version + 1 : 1, now, m.self().str()};
  Bytes sealed_record = m.seal(kIdentityRecordKind, encodeIdentity(r), now);
  TB_ASSIGN_OR_RETURN(bool stored, m.acceptIdentity(sealed_record, now));
  if (!stored) return Status(ErrorCode::kInternal, "a newer identity record of " + id.number + " is already held");
  TB_RETURN_IF_ERROR(m.spread(kIdentityRecordUpKind, sealed_record, /*to_feed=*/false));
  TB_RETURN_IF_ERROR(txn.commit());
  return r;
}

Result<std::optional<IdentityInfo>> CredentialService::identity(const std::string& id_number) {
  TB_ASSIGN_OR_RETURN(auto stmt, impl_->db->prepare("SELECT sealed FROM identity_records WHERE id_number = ?1"));
  stmt.bind(1, id_number);
  TB_ASSIGN_OR_RETURN(bool row, stmt.step());
  if (!row) return std::optional<IdentityInfo>();
  TB_ASSIGN_OR_RETURN(Bytes payload, impl_->payloadOfStored(stmt.columnBlob(0)));
  TB_ASSIGN_OR_RETURN(IdentityInfo r, decodeIdentity(payload));
  return std::make_optional(std::move(r));
}

Result<std::optional<Bytes>> CredentialService::identitySealed(const std::string& id_number) {
  TB_ASSIGN_OR_RETURN(auto stmt, impl_->db->prepare("SELECT sealed FROM identity_records WHERE id_number = ?1"));
  stmt.bind(1, id_number);
  TB_ASSIGN_OR_RETURN(bool row, stmt.step());
  if (!row) return std::optional<Bytes>();
  return std::make_optional(stmt.columnBlob(0));
}

Result<IdentityInfo> CredentialService::openIdentity(const Bytes& sealed_record, TimeMs now) {
  TB_ASSIGN_OR_RETURN(OpenedEnvelope e, impl_->open(sealed_record, kIdentityRecordKind, now));
  TB_ASSIGN_OR_RETURN(IdentityInfo r, decodeIdentity(e.payload));
  if (r.registered_by != e.signer.str()) {
    return Status(ErrorCode::kUnauthorized, "identity record of " + r.id_number + " is not signed by " + r.registered_by);
  }
  return r;
}

Result<bool> CredentialService::acceptCredential(const Bytes& sealed_credential, TimeMs now) {
  Impl& m = *impl_;
  TB_ASSIGN_OR_RETURN(OpenedEnvelope e, m.open(sealed_credential, kCredentialKind, now));
  TB_ASSIGN_OR_RETURN(CredentialInfo c, decodeCredential(e.payload));
  TB_RETURN_IF_ERROR(m.checkIssuerAuthority(e, c));
  return m.store(c, sealed_credential, now);
}

Status CredentialService::applyFromChild(const OpenedEnvelope& e, TimeMs now) {
  Impl& m = *impl_;
  // The relaying child must cover whoever signed the document it carries.
  TB_ASSIGN_OR_RETURN(ClaimedEnvelope inner, peekEnvelope(e.payload));
  auto inner_signer = DivisionCode::parse(inner.signer);
  if (!inner_signer || !e.signer.covers(*inner_signer)) {
    return Status(ErrorCode::kUnauthorized, e.signer.str() + " relayed a document signed by " + inner.signer +
                                                ", which is outside its subtree");
  }
  Result<bool> fresh = false;
  bool to_feed = false;
  switch (e.kind) {
    case kCredentialUpKind: fresh = acceptCredential(e.payload, now); break;
    case kCredentialStatusUpKind: fresh = m.acceptStatus(e.payload, now); to_feed = true; break;
    case kIdentityRecordUpKind: fresh = m.acceptIdentity(e.payload, now); break;
    case kKeyRevocationUpKind: fresh = m.acceptKeyRevocation(e.payload, now); to_feed = true; break;
    default: return Status(ErrorCode::kInvalidArgument, "kind " + std::to_string(e.kind) + " is not a credential record");
  }
  if (!fresh) return fresh.status();
  if (!*fresh) return Status::ok();  // known or superseded here: it went on when it first came
  return m.spread(e.kind, e.payload, to_feed);
}

Result<bool> CredentialService::applyFeedEntry(const Bytes& entry, TimeMs now) {
  TB_ASSIGN_OR_RETURN(ClaimedEnvelope claimed, peekEnvelope(entry));
  if (claimed.kind == kCredentialStatusKind) return impl_->acceptStatus(entry, now);
  if (claimed.kind == kKeyRevocationNoticeKind) return impl_->acceptKeyRevocation(entry, now);
  return Status(ErrorCode::kInvalidArgument, "feed entry of kind " + std::to_string(claimed.kind) + " is not a status record");
}

Verification CredentialService::verify(const Bytes& sealed_credential, TimeMs now) {
  Impl& m = *impl_;
  Verification v;
  v.root = m.verifier->root().name + " (" + m.verifier->root().division.str() + ")";
  v.status_fresh_as_of_ms = m.freshness ? m.freshness() : 0;
  auto invalid = [&](const std::string& why) {
    v.verdict = "invalid";
    v.reason = why;
    return v;
  };
  auto opened = m.open(sealed_credential, kCredentialKind, now);
  if (!opened) {
    const Status& st = opened.status();
    switch (st.code()) {
      case ErrorCode::kBadSignature: return invalid("the document was altered after it was signed: " + st.message());
      case ErrorCode::kMalformed:
      case ErrorCode::kOversize: return invalid("this is not a complete credential (cut short or garbled): " + st.message());
      case ErrorCode::kUntrustedChain: return invalid("not issued under this city's root " + v.root + ": " + st.message());
      case ErrorCode::kRevoked: return invalid("signed with a key that was revoked before the issue time: " + st.message());
      case ErrorCode::kCertificateExpired: return invalid("the issuer's certificate was not valid at the issue time: " + st.message());
      default: return invalid(st.toString());
    }
  }
  v.chain = opened->chain;
  auto decoded = decodeCredential(opened->payload);
  if (!decoded) return invalid(decoded.status().message());
  v.credential = *decoded;
  const CredentialInfo& c = *decoded;
  if (Status authority = m.checkIssuerAuthority(*opened, c); !authority.isOk()) {
    if (authority.code() == ErrorCode::kUnavailable) {
      v.verdict = "unknown";
      v.reason = authority.message();
      return v;
    }
    return invalid("issued without authority: " + authority.message());
  }
  auto held_version = m.heldVersion(c.number);
  auto status = m.loadStatus(c.number);
  if (!held_version || !status) {
    v.verdict = "unknown";
    v.reason = "this node's records could not be read: " + (!held_version ? held_version.status() : status.status()).toString();
    return v;
  }
  v.current_version = std::max(*held_version, *status ? (*status)->second : 0u);
  if (*status) v.status = (*status)->first;
  const std::string issuer = c.issuer_name + " (" + c.issuer + ")";
  if (v.status && v.status->status == "revoked") {
    v.verdict = "revoked";
    v.reason = "revoked by " + v.status->by_name + " (" + v.status->by + ") on " + CivilDate::fromTimeMs(v.status->at_ms).toString() +
               ": " + v.status->reason;
  } else if (v.current_version > c.version) {
    v.verdict = "superseded";
    v.reason = "version " + std::to_string(c.version) + " was replaced by version " + std::to_string(v.current_version) +
               " issued by " + issuer;
  } else if (v.status && v.status->status == "suspended") {
    v.verdict = "suspended";
    v.reason = "suspended by " + v.status->by_name + " (" + v.status->by + ") on " + CivilDate::fromTimeMs(v.status->at_ms).toString() +
               ": " + v.status->reason;
  } else if (now < c.valid_from_ms) {
    v.verdict = "not_yet_valid";
    v.reason = "valid from " + CivilDate::fromTimeMs(c.valid_from_ms).toString();
  } else if (c.valid_until_ms != 0 && now >= c.valid_until_ms) {
    v.verdict = "expired";
    v.reason = "expired after " + CivilDate::fromTimeMs(c.valid_until_ms - 1).toString();
  } else {
    v.verdict = "valid";
    v.reason = std::string("genuine, issued by ") + issuer + " with authority for " + c.item_code + ", valid" +
               (c.valid_until_ms ? " until " + CivilDate::fromTimeMs(c.valid_until_ms - 1).toString()
                                 : " with no end date (long-term, 长期)") +
               "; no revocation or suspension known here";
  }
  return v;
}

Verification CredentialService::verifyText(const std::string& text, TimeMs now) {
  auto bytes = credentialFromText(text);
  if (!bytes) {
    Verification v;
    v.verdict = "invalid";
    v.reason = bytes.status().message();
    v.status_fresh_as_of_ms = impl_->freshness ? impl_->freshness() : 0;
    return v;
  }
  return verify(*bytes, now);
}

Result<std::optional<Bytes>> CredentialService::sealed(const std::string& number) {
  TB_ASSIGN_OR_RETURN(auto stmt, impl_->db->prepare("SELECT sealed FROM credentials WHERE number = ?1"));
  stmt.bind(1, number);
  TB_ASSIGN_OR_RETURN(bool row, stmt.step());
  if (!row) return std::optional<Bytes>();
  return std::make_optional(stmt.columnBlob(0));
}

Result<std::vector<CredentialInfo>> CredentialService::listByHolder(const std::string& holder_id) {
  TB_ASSIGN_OR_RETURN(auto stmt, impl_->db->prepare(
      "SELECT sealed FROM credentials WHERE holder_id = ?1 ORDER BY issued_at_ms LIMIT 200"));
  stmt.bind(1, holder_id);
  std::vector<CredentialInfo> out;
  while (true) {
    TB_ASSIGN_OR_RETURN(bool row, stmt.step());
    if (!row) break;
    // A credential whose signing key was revoked later still opens (check 6 uses its own time).
    TB_ASSIGN_OR_RETURN(Bytes payload, impl_->payloadOfStored(stmt.columnBlob(0)));
    TB_ASSIGN_OR_RETURN(CredentialInfo c, decodeCredential(payload));
    out.push_back(std::move(c));
  }
  return out;
}

Result<std::optional<CredentialInfo>> CredentialService::listByNumber(const std::string& number) {
  TB_ASSIGN_OR_RETURN(auto held, sealed(number));
  if (!held) return std::optional<CredentialInfo>();
  TB_ASSIGN_OR_RETURN(Bytes payload, impl_->payloadOfStored(*held));
  TB_ASSIGN_OR_RETURN(CredentialInfo c, decodeCredential(payload));
  return std::make_optional(std::move(c));
}

Result<std::optional<CredentialStatusInfo>> CredentialService::status(const std::string& number) {
  TB_ASSIGN_OR_RETURN(auto held, impl_->loadStatus(number));
  if (!held) return std::optional<CredentialStatusInfo>();
  return std::make_optional(held->first);
}

void CredentialService::setStatusObserver(std::function<void(const std::string& number)> observer) {
  impl_->status_observer = std::move(observer);
}

}  // namespace tongban
