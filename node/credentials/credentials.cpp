#include "node/credentials/credentials.h"

#include <cstdio>
#include <cstring>
#include <limits>
#include <tuple>

#include <spdlog/spdlog.h>

#include "node/applicants/id_numbers.h"
#include "node/calendar/calendar.h"
#include "node/cases/cases.h"
#include "node/credentials/credential_store.h"
#include "node/credentials/credential_wire.h"

namespace tongban {

namespace {

constexpr DurationMs kDayMs = 24LL * 3600 * 1000;
// "Now" for re-opening a document stored after it verified: a stored one is not "from the
// future" (the checks that matter use the document's own time).
constexpr TimeMs kNoFutureCheck = std::numeric_limits<TimeMs>::max() / 2;

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
  registry.add(kCredentialDownKind, {"credential-down", Direction::kDownToDescendant, /*durable=*/true});
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
  EnqueueTo enqueue_to;
  CredentialSettings settings;
  std::function<void(const std::string&)> status_observer;  // setStatusObserver
  std::optional<CredentialStore> store;

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
    TB_ASSIGN_OR_RETURN(OpenedEnvelope e, verifier->open(sealed, self(), kNoFutureCheck, nullptr));
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

  // Checks 1-6 passed; now: is the document consistent with its envelope, and may this signer
  // have issued it? Authority is judged by the catalogue version the credential names (a later
  // catalogue changes what is issued from then on, never what was issued before); a reader that
  // does not hold that version yet answers kUnavailable (retry later), not a refusal.
  Status checkIssuerAuthority(const OpenedEnvelope& e, const CredentialInfo& c) {
    if (c.issued_at_ms != e.timestamp_ms) {
      return Status(ErrorCode::kMalformed, "credential " + c.number + " states issue time " + std::to_string(c.issued_at_ms) +
                                               " but was signed at " + std::to_string(e.timestamp_ms));
    }
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
    // 0: a document from before credentials named their catalogue version; judged by ours.
    const uint64_t under = c.catalogue_version ? c.catalogue_version : cat->version;
    if (under > cat->version) {
      return Status(ErrorCode::kUnavailable, "credential " + c.number + " was issued under catalogue version " +
                                                 std::to_string(under) + " and this node holds version " +
                                                 std::to_string(cat->version) +
                                                 ", so the issuer's authority cannot be checked until the newer catalogue arrives");
    }
    const std::optional<ItemAuthority> item = cat->authorityAt(c.item_code, under);
    if (!item) {
      return Status(ErrorCode::kUnauthorized, "item " + c.item_code + " of credential " + c.number +
                                                  " is not in catalogue version " + std::to_string(under));
    }
    if (item->decide_level != e.signer.level()) {
      return Status(ErrorCode::kUnauthorized, e.signer.str() + " (a " + levelName(e.signer.level()) + ") may not issue " +
                                                  c.kind + ": item " + c.item_code + " is decided at " +
                                                  levelName(item->decide_level) + " level (catalogue version " +
                                                  std::to_string(under) + ")");
    }
    if (item->issues != c.kind) {
      return Status(ErrorCode::kUnauthorized, "item " + c.item_code + " issues '" + item->issues + "', not '" + c.kind +
                                                  "' (catalogue version " + std::to_string(under) + ")");
    }
    auto origin = DivisionCode::parse(c.origin);
    if (!origin || !e.signer.covers(*origin)) {
      return Status(ErrorCode::kUnauthorized, e.signer.str() + " may not issue for a case accepted at " + c.origin +
                                                  ", outside its subtree");
    }
    return Status::ok();
  }

  // Opens, decodes and checks a credential (the statement checks, then authority).
  Result<std::pair<OpenedEnvelope, CredentialInfo>> openCredential(const Bytes& sealed, TimeMs now) {
    TB_ASSIGN_OR_RETURN(OpenedEnvelope e, open(sealed, kCredentialKind, now));
    TB_ASSIGN_OR_RETURN(CredentialInfo c, decodeCredential(e.payload));
    TB_RETURN_IF_ERROR(checkIssuerAuthority(e, c));
    return std::make_pair(std::move(e), std::move(c));
  }

  // Verifies a status record or renewal notice and keeps it (credential_store.h decides what is
  // current). True if new here.
  Result<bool> acceptStatus(const Bytes& sealed, TimeMs now) {
    TB_ASSIGN_OR_RETURN(OpenedEnvelope e, open(sealed, kCredentialStatusKind, now));
    TB_ASSIGN_OR_RETURN(auto decoded, decodeStatus(e.payload));
    auto& [s, current_version] = decoded;
    if (s.at_ms != e.timestamp_ms) {
      return Status(ErrorCode::kMalformed, "status record of " + s.number + " is dated " + std::to_string(s.at_ms) +
                                               " but was signed at " + std::to_string(e.timestamp_ms));
    }
    TB_ASSIGN_OR_RETURN(DivisionCode issuer, issuerOf(s.number));
    if (s.by != e.signer.str() || !e.signer.covers(issuer)) {
      return Status(ErrorCode::kUnauthorized, e.signer.str() + " may not change the status of " + s.number +
                                                  ": only its issuer " + issuer.str() + " or an ancestor may");
    }
    if (s.status == "renewed" && e.signer != issuer) {
      return Status(ErrorCode::kUnauthorized, e.signer.str() + " may not announce a renewal of " + s.number +
                                                  ": only its issuer " + issuer.str() + " renews it");
    }
    TB_ASSIGN_OR_RETURN(bool fresh, store->putStatus(s, current_version, sealed, now));
    if (fresh && status_observer) status_observer(s.number);
    return fresh;
  }

  // Keeps a credential version that verified; a new one is news to the status observer too (a
  // cached answer may name the version it supersedes).
  Result<bool> putCredential(const CredentialInfo& c, const Bytes& sealed, TimeMs now) {
    TB_ASSIGN_OR_RETURN(bool fresh, store->putCredential(c, sealed, now));
    if (fresh && status_observer) status_observer(c.number);
    return fresh;
  }

  // An identity record that verifies, is signed by the node it names and dated as it was signed.
  Result<IdentityInfo> openIdentity(const Bytes& sealed, TimeMs now) {
    TB_ASSIGN_OR_RETURN(OpenedEnvelope e, open(sealed, kIdentityRecordKind, now));
    TB_ASSIGN_OR_RETURN(IdentityInfo r, decodeIdentity(e.payload));
    if (r.registered_by != e.signer.str()) {
      return Status(ErrorCode::kUnauthorized, "identity record of " + r.id_number + " names " + r.registered_by +
                                                  " but is signed by " + e.signer.str());
    }
    if (r.registered_at_ms != e.timestamp_ms) {
      return Status(ErrorCode::kMalformed, "identity record of " + r.id_number + " is dated " +
                                               std::to_string(r.registered_at_ms) + " but was signed at " +
                                               std::to_string(e.timestamp_ms));
    }
    return r;
  }

  Result<bool> acceptIdentity(const Bytes& sealed, TimeMs now) {
    TB_ASSIGN_OR_RETURN(IdentityInfo r, openIdentity(sealed, now));
    TB_RETURN_IF_ERROR(parseApplicantId(r.id_number).status());
    return store->putIdentity(r, sealed, now);
  }

  // A key revocation notice (kind 138). The revocation inside carries its own authority (signed
  // by an ancestor of the key's holder, checked here); the hall that published the notice adds
  // none. So a revocation already held is recognised before anything is opened (its notice may
  // be signed by a key revoked since), and a notice whose own signer's key is revoked or expired
  // still delivers a revocation that verifies by itself. Enforcing it takes out what the key
  // signed from the revocation time on (CredentialStore::dropRevokedSince), in this transaction.
  Result<bool> acceptKeyRevocation(const Bytes& notice, TimeMs now) {
    TB_ASSIGN_OR_RETURN(ClaimedEnvelope claimed, peekEnvelope(notice));
    if (claimed.kind != kKeyRevocationNoticeKind) {
      return Status(ErrorCode::kInvalidArgument, "expected a key revocation notice (kind 138), got kind " +
                                                     std::to_string(claimed.kind));
    }
    TB_ASSIGN_OR_RETURN(auto stmt, db->prepare("SELECT 1 FROM key_revocations WHERE revocation = ?1"));
    stmt.bind(1, claimed.payload);
    TB_ASSIGN_OR_RETURN(bool known, stmt.step());
    if (known) return false;
    Bytes revocation;
    auto opened = open(notice, kKeyRevocationNoticeKind, now);
    if (opened) {
      revocation = std::move(opened->payload);
    } else if (opened.status().code() == ErrorCode::kRevoked || opened.status().code() == ErrorCode::kCertificateExpired) {
      spdlog::warn("[{}] a key revocation notice from {} does not verify ({}); taking the revocation inside on its own "
                   "signature",
                   self().str(), claimed.signer, opened.status().toString());
      revocation = claimed.payload;
    } else {
      return opened.status();
    }
    TB_ASSIGN_OR_RETURN(KeyRevocationInfo info, verifier->checkRevocation(revocation));
    if (key_revoked) TB_RETURN_IF_ERROR(key_revoked(revocation));
    TB_ASSIGN_OR_RETURN(auto put, db->prepare("INSERT INTO key_revocations (revocation, received_ms) VALUES (?1, ?2)"));
    TB_RETURN_IF_ERROR(put.bind(1, revocation).bind(2, now).run());
    TB_ASSIGN_OR_RETURN(size_t dropped, store->dropRevokedSince(info.revoked_at_ms, [this](const Bytes& sealed) {
      auto reopened = verifier->open(sealed, self(), kNoFutureCheck, nullptr);
      return !reopened && reopened.status().code() == ErrorCode::kRevoked;
    }));
    spdlog::info("[{}] key {} of {} is revoked from {} on; {} documents it signed since are no longer held",
                 self().str(), hexEncode(info.key.data(), 4), info.holder.str(), info.revoked_at_ms, dropped);
    return true;
  }

  // A credential version for the hall that accepted its case, one hop further down (kind 132).
  Status sendTowardOrigin(const CredentialInfo& c, const Bytes& sealed) {
    TB_ASSIGN_OR_RETURN(DivisionCode origin, DivisionCode::parse(c.origin));
    auto next = self().childToward(origin);
    if (!next) {
      return Status(ErrorCode::kInternal, "credential " + c.number + " is for " + c.origin + ", which is not below " +
                                              self().str());
    }
    if (!enqueue_to) return Status(ErrorCode::kUnavailable, "no way down from " + self().str() + " yet");
    return enqueue_to(*next, kCredentialDownKind, sealed).status();
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
  TB_RETURN_IF_ERROR(CredentialStore::migrate(db));
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
  impl->store.emplace(db, identity.division.str());
  return CredentialService(impl);
}

void CredentialService::setEnqueueDown(EnqueueTo enqueue_to) { impl_->enqueue_to = std::move(enqueue_to); }

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
  if (!cat) return Status(ErrorCode::kFailedPrecondition, "no service catalogue here yet, so no credential can be issued");
  // The case is decided under the catalogue version it was accepted under (a later move of the
  // item to another level does not strand it), and so is its credential: receivers judge the
  // issuer's authority by the version the credential names (checkIssuerAuthority).
  const uint64_t under = c.catalogue_version && c.catalogue_version <= cat->version ? c.catalogue_version : cat->version;
  const std::optional<ItemAuthority> authority = cat->authorityAt(c.item_code, under);
  if (!authority || authority->removed) {
    return Status(ErrorCode::kFailedPrecondition, "item " + c.item_code + " is not in catalogue version " +
                                                      std::to_string(under) + ", which case " + c.number +
                                                      " was accepted under");
  }
  if (authority->issues.empty()) return Status(ErrorCode::kFailedPrecondition, "item " + c.item_code + " issues no credential");
  if (authority->decide_level != m.self().level()) {
    return Status(ErrorCode::kFailedPrecondition, "only a " + std::string(levelName(authority->decide_level)) +
                                                      " node issues " + authority->issues + " (catalogue version " +
                                                      std::to_string(under) + ")");
  }
  // The validity period is today's rule for the item (the default if it has left the catalogue).
  CatalogueItem today;
  if (const CatalogueItem* current = cat->find(c.item_code)) today = *current;
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
  cred.kind = authority->issues;
  cred.holder_id = c.applicant_id;
  cred.holder_name = c.applicant_name;
  cred.issuer = m.self().str();
  cred.issuer_name = m.identity->name;
  cred.item_code = c.item_code;
  cred.item_name = c.item_name;
  cred.case_number = c.number;
  cred.origin = c.held_for.empty() ? m.self().str() : c.held_for;
  cred.valid_from_ms = now;
  cred.valid_until_ms = m.validUntil(today, now);
  cred.facts = c.facts;
  cred.issued_at_ms = now;
  cred.catalogue_version = under;
  Bytes sealed = signCredential(*m.identity, cred);
  TB_RETURN_IF_ERROR(m.putCredential(cred, sealed, now).status());
  // Up to every ancestor; a forwarded case's credential rides down with its conclusion (kind 107).
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
  TB_ASSIGN_OR_RETURN(OpenedEnvelope e, m.open(*held, kCredentialKind, kNoFutureCheck));
  TB_ASSIGN_OR_RETURN(CredentialInfo cred, decodeCredential(e.payload));
  if (cred.issuer != m.self().str()) {
    return Status(ErrorCode::kPermissionDenied, "only its issuer " + cred.issuer + " renews " + number);
  }
  TB_ASSIGN_OR_RETURN(auto status, m.store->winningStatus(number));
  if (status && status->status == "revoked") return Status(ErrorCode::kFailedPrecondition, number + " is revoked");
  if (facts.size() > kMaxFacts) return Status(ErrorCode::kInvalidArgument, "at most 32 facts");
  for (const auto& [key, value] : facts) {
    // The same limits every receiver's decoder applies: a fact it would refuse must not be signed.
    if (key.empty() || key.size() > kMaxText || value.size() > kMaxText) {
      return Status(ErrorCode::kInvalidArgument, "each fact needs a name, and name and value at most 500 bytes");
    }
  }
  // A renewal is issued under this node's catalogue: one every reader would refuse is not signed.
  const Catalogue* cat = m.catalogue->current();
  if (!cat) return Status(ErrorCode::kFailedPrecondition, "no service catalogue here yet; a renewal needs one");
  const std::optional<ItemAuthority> authority = cat->authorityAt(cred.item_code, cat->version);
  if (authority && (authority->decide_level != m.self().level() || authority->issues != cred.kind)) {
    return Status(ErrorCode::kFailedPrecondition, "item " + cred.item_code + " is now decided at " +
                                                      levelName(authority->decide_level) + " level (catalogue version " +
                                                      std::to_string(cat->version) + "); " + m.self().str() +
                                                      " may no longer renew " + number);
  }
  TB_ASSIGN_OR_RETURN(uint32_t current, m.store->currentVersion(number));
  if (current >= kMaxRecordVersion) {
    return Status(ErrorCode::kFailedPrecondition, number + " is at version " + std::to_string(current) +
                                                      ", the last a credential may have; issue a new one instead");
  }
  TB_ASSIGN_OR_RETURN(const TimeMs until, m.renewedUntil(cred, valid_until_ms, now));
  cred.version = current + 1;
  cred.valid_from_ms = now;
  cred.valid_until_ms = until;
  if (!facts.empty()) cred.facts = facts;
  cred.issued_at_ms = now;
  cred.catalogue_version = cat->version;
  Bytes renewed = signCredential(*m.identity, cred);
  TB_RETURN_IF_ERROR(m.putCredential(cred, renewed, now).status());
  if (m.enqueue_up) TB_RETURN_IF_ERROR(m.enqueue_up(kCredentialUpKind, renewed).status());
  // The hall that accepted a forwarded case hands out the new text too: down to it, hop by hop.
  if (cred.origin != m.self().str()) TB_RETURN_IF_ERROR(m.sendTowardOrigin(cred, renewed));
  // Every node learns of the new version through a renewal notice (the feed), so an older copy
  // presented anywhere is reported superseded. It takes no part in the status order: it neither
  // lifts nor overrides a suspension, concurrent or not.
  CredentialStatusInfo notice{number, "renewed", cred.version, now, m.self().str(), m.identity->name,
                              "renewed as version " + std::to_string(cred.version)};
  Bytes sealed_notice = m.seal(kCredentialStatusKind, encodeStatus(notice, cred.version), now);
  TB_RETURN_IF_ERROR(m.acceptStatus(sealed_notice, now).status());
  TB_RETURN_IF_ERROR(m.spread(kCredentialStatusUpKind, sealed_notice, /*to_feed=*/true));
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
  TB_ASSIGN_OR_RETURN(auto held, m.store->winningStatus(number));
  TB_ASSIGN_OR_RETURN(uint32_t held_version, m.store->heldVersion(number));
  if (held_version == 0) {
    // Its issuer and every ancestor hold it once it has travelled up; a number never issued (or
    // still on its way) gets no status from here.
    return Status(ErrorCode::kNotFound, "no credential " + number + " at this node (not issued, or still on its way up)");
  }
  if (held && held->status == "revoked") {
    return Status(ErrorCode::kFailedPrecondition, number + " was revoked by " + held->by + "; that is final");
  }
  if (status == "active" && (!held || held->status != "suspended")) {
    return Status(ErrorCode::kFailedPrecondition, number + " is not suspended; only a suspension is lifted");
  }
  // After every status record held (not only the winner), so it wins.
  TB_ASSIGN_OR_RETURN(uint32_t last, m.store->lastStatusVersion(number));
  if (last >= kMaxRecordVersion) {
    return Status(ErrorCode::kFailedPrecondition, number + " has had " + std::to_string(last) +
                                                      " status changes, the most one credential may have");
  }
  CredentialStatusInfo s{number, status, last + 1, now, m.self().str(), m.identity->name, reason};
  TB_ASSIGN_OR_RETURN(uint32_t current, m.store->currentVersion(number));
  Bytes sealed_status = m.seal(kCredentialStatusKind, encodeStatus(s, current), now);
  TB_ASSIGN_OR_RETURN(bool stored, m.acceptStatus(sealed_status, now));
  if (!stored) return Status(ErrorCode::kInternal, "the status record of " + number + " just made is already held");
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
  if (existing && existing->version >= kMaxRecordVersion) {
    return Status(ErrorCode::kFailedPrecondition, "the identity record of " + id.number + " is at version " +
                                                      std::to_string(existing->version) + ", the last one allowed");
  }
  IdentityInfo r{id.number, name, id.kind == ApplicantKind::kPerson ? "person" : "organisation", contacts,
                 existing ? existing->version + 1 : 1, now, m.self().str()};
  Bytes sealed_record = m.seal(kIdentityRecordKind, encodeIdentity(r), now);
  TB_ASSIGN_OR_RETURN(bool stored, m.acceptIdentity(sealed_record, now));
  if (!stored) return Status(ErrorCode::kInternal, "the identity record of " + id.number + " just made is already held");
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
  return impl_->openIdentity(sealed_record, now);
}

Result<bool> CredentialService::acceptCredential(const Bytes& sealed_credential, TimeMs now) {
  Impl& m = *impl_;
  TB_ASSIGN_OR_RETURN(auto opened, m.openCredential(sealed_credential, now));
  return m.putCredential(opened.second, sealed_credential, now);
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
  if (!*fresh) return Status::ok();  // known here: it went on when it first came
  return m.spread(e.kind, e.payload, to_feed);
}

Status CredentialService::applyFromParent(const OpenedEnvelope& e, TimeMs now) {
  Impl& m = *impl_;
  if (e.kind != kCredentialDownKind) {
    return Status(ErrorCode::kInvalidArgument, "kind " + std::to_string(e.kind) + " is not a credential going down");
  }
  TB_ASSIGN_OR_RETURN(auto opened, m.openCredential(e.payload, now));
  const CredentialInfo& c = opened.second;
  TB_ASSIGN_OR_RETURN(DivisionCode origin, DivisionCode::parse(c.origin));
  // It comes down the one path from its issuer to the hall that accepted its case.
  if (!opened.first.signer.covers(e.signer) || !m.self().covers(origin)) {
    return Status(ErrorCode::kUnauthorized, "credential " + c.number + " of " + c.origin + " issued by " + c.issuer +
                                                " reached " + m.self().str() + " from " + e.signer.str() +
                                                ", which is not on its way down");
  }
  if (m.self() != origin) return m.sendTowardOrigin(c, e.payload);
  return m.putCredential(c, e.payload, now).status();
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
  auto unknown = [&](const std::string& why) {
    v.verdict = "unknown";
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
      case ErrorCode::kFutureDated:
        return unknown("the credential is dated ahead of this station's clock (check the clock): " + st.message());
      default: return invalid(st.toString());
    }
  }
  v.chain = opened->chain;
  auto decoded = decodeCredential(opened->payload);
  if (!decoded) return invalid(decoded.status().message());
  v.credential = *decoded;
  const CredentialInfo& c = *decoded;
  if (Status authority = m.checkIssuerAuthority(*opened, c); !authority.isOk()) {
    if (authority.code() == ErrorCode::kUnavailable) return unknown(authority.message());
    if (authority.code() == ErrorCode::kMalformed) return invalid(authority.message());
    return invalid("issued without authority: " + authority.message());
  }
  auto current_version = m.store->currentVersion(c.number);
  auto status = m.store->winningStatus(c.number);
  if (!current_version || !status) {
    return unknown("this node's records could not be read: " +
                   (!current_version ? current_version.status() : status.status()).toString());
  }
  v.current_version = *current_version;
  v.status = *status;
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
      "SELECT number, sealed FROM credentials WHERE holder_id = ?1 ORDER BY issued_at_ms LIMIT 200"));
  stmt.bind(1, holder_id);
  std::vector<CredentialInfo> out;
  while (true) {
    TB_ASSIGN_OR_RETURN(bool row, stmt.step());
    if (!row) break;
    // A credential whose signing key was revoked later still opens (check 6 uses its own time).
    // One that does not (damaged on disk, say) is left out, not the holder's whole list.
    auto payload = impl_->payloadOfStored(stmt.columnBlob(1));
    auto c = payload ? decodeCredential(*payload) : Result<CredentialInfo>(payload.status());
    if (!c) {
      spdlog::error("[{}] stored credential {} of {} no longer opens, left out of the list: {}", impl_->self().str(),
                    stmt.columnText(0), holder_id, c.status().toString());
      continue;
    }
    out.push_back(std::move(c).value());
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
  return impl_->store->winningStatus(number);
}

void CredentialService::setStatusObserver(std::function<void(const std::string& number)> observer) {
  impl_->status_observer = std::move(observer);
}

}  // namespace tongban
