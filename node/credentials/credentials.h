// Credentials (证照): licences, permits and approvals issued as signed Cap'n Proto documents
// that any node can check with no network ("全区通办"), plus identity records (一表登记) and the
// status records that revoke or suspend a credential.
//
// Issuance. Concluding an approved case at the node of the item's decide level issues the
// item's credential (catalogue `issues`), sealed by that node: the envelope carries its chain to
// the city root and its timestamp is the issue time. Its validity is the catalogue item's
// `validity_days` (0: long-term, no end date), or the default when the item states none. A
// receiver accepts a credential only if the signer is its issuer, the issuer's level is the
// item's decide level in the catalogue version the credential names (every catalogue carries the
// authority history of the earlier ones), and the issuer covers the hall that accepted the case.
//
// Replication. A credential, a status record or an identity record goes up through the outbox
// to every ancestor (each stores it and relays it in one transaction), and a forwarded case's
// credential rides down to its origin with the conclusion, each renewal after it as kind 132.
// Status records, renewal notices and key revocations also enter the feed
// (federation/sync/feed.h) at every node they pass, so they reach every node. Every document
// accepted is kept and what is current follows from them (credential_store.h; the conflict
// rules are in docs/protocol.md): the highest credential version; the greatest (is revoked,
// version, time, signer) status record, "revoked" being final; the highest version any record
// announces; the greatest (version, time, registering node) identity record. A key revocation
// takes out what the key signed from its time on, whenever it arrives.
//
// Verification answers valid / revoked / suspended / superseded / expired / not yet valid /
// invalid / unknown, with the issuer chain, the validity period, the status record and how
// fresh this node's status data is.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "federation/store/database.h"
#include "federation/trust/certificate.h"
#include "federation/trust/envelope.h"
#include "federation/trust/keys.h"
#include "node/catalogue/catalogue.h"

namespace tongban {

struct CaseRecord;

inline constexpr MessageKind kCredentialKind = 130;            // statement, by the issuer
inline constexpr MessageKind kCredentialUpKind = 131;          // durable, up, relayed: a sealed credential
inline constexpr MessageKind kCredentialDownKind = 132;        // durable, down to the case's origin: a renewal
inline constexpr MessageKind kCredentialStatusKind = 134;      // statement, by the issuer or an ancestor
inline constexpr MessageKind kCredentialStatusUpKind = 135;    // durable, up, relayed
inline constexpr MessageKind kIdentityRecordKind = 136;        // statement, by the registering node
inline constexpr MessageKind kIdentityRecordUpKind = 137;      // durable, up, relayed
inline constexpr MessageKind kKeyRevocationNoticeKind = 138;   // statement carrying a SignedKeyRevocation
inline constexpr MessageKind kKeyRevocationUpKind = 139;       // durable, up, relayed

void registerCredentialKinds(KindRegistry& registry);

// The citizen-held text form: "TBC1." + base64url of the sealed credential (QR-ready).
std::string credentialToText(const Bytes& sealed);
Result<Bytes> credentialFromText(const std::string& text);

struct CredentialInfo {
  std::string number;
  uint32_t version = 1;
  uint64_t sequence = 0;
  std::string kind;
  std::string holder_id;
  std::string holder_name;
  std::string issuer;
  std::string issuer_name;
  std::string item_code;
  std::string item_name;
  std::string case_number;
  std::string origin;
  TimeMs valid_from_ms = 0;
  TimeMs valid_until_ms = 0;   // exclusive; 0 = no end
  std::vector<std::pair<std::string, std::string>> facts;
  TimeMs issued_at_ms = 0;
  uint64_t catalogue_version = 0;  // the issuer's catalogue version (0: a document from before it was stated)
};

// Seals a credential document as `issuer` (its envelope time is `issued_at_ms`). The service
// issues through this; tests and tools use it to make documents a node would refuse.
Bytes signCredential(const Identity& issuer, const CredentialInfo& credential);
// The credential document inside an opened kind-130 envelope (for tools that verify offline
// with their own Verifier, e.g. `tongban verify --root`).
Result<CredentialInfo> decodeCredentialPayload(const Bytes& payload);

struct CredentialStatusInfo {
  std::string number;
  std::string status;          // revoked | suspended | active
  uint32_t version = 0;
  TimeMs at_ms = 0;
  std::string by;
  std::string by_name;
  std::string reason;
};

// Seals a status record (or a renewal notice) as `signer` at `s.at_ms`, announcing
// `current_version`. The service makes these; tests and the simulator use it to make ones a node
// would refuse (a stolen key's).
Bytes signCredentialStatus(const Identity& signer, const CredentialStatusInfo& s, uint32_t current_version);

struct IdentityInfo {
  std::string id_number;
  std::string name;
  std::string kind;            // person | organisation
  std::vector<std::pair<std::string, std::string>> contacts;
  uint32_t version = 1;
  TimeMs registered_at_ms = 0;
  std::string registered_by;
};

struct Verification {
  // valid | revoked | suspended | superseded | expired | not_yet_valid | invalid | unknown
  std::string verdict;
  std::string reason;                        // a sentence a clerk can read out
  std::optional<CredentialInfo> credential;  // what the document says (once it decoded)
  std::vector<CertificateInfo> chain;        // the issuer's certificate first, up to the root's child
  std::string root;                          // the city whose root key the chain ends at
  std::optional<CredentialStatusInfo> status;
  uint32_t current_version = 0;              // the newest version this node holds (0: none)
  TimeMs status_fresh_as_of_ms = 0;          // every status issued before this has reached this node
};

struct CredentialSettings {
  // For an item whose catalogue entry states no "validity_days" (a catalogue written before the
  // field existed): the validity it has always had.
  DurationMs default_validity_ms = 5LL * 365 * 24 * 3600 * 1000;
};

class CredentialService {
 public:
  // Enqueues for the parent inside the open transaction; null at the city.
  using EnqueueUp = std::function<Result<uint64_t>(MessageKind kind, const Bytes& payload)>;
  // Appends an entry to this node's feed inside the open transaction (reaches every descendant).
  using PublishDown = std::function<Result<uint64_t>(const Bytes& entry)>;
  // How fresh this node's feed is (FeedState::fresh_as_of_ms).
  using Freshness = std::function<TimeMs()>;
  // Enforces a verified key revocation from now on (the node's Verifier, and caches).
  using KeyRevoked = std::function<Status(const Bytes& signed_revocation)>;
  // Enqueues for a child inside the open transaction.
  using EnqueueTo = std::function<Result<uint64_t>(const DivisionCode& to, MessageKind kind, const Bytes& payload)>;

  static Result<CredentialService> open(Database& db, const Identity& identity, const Verifier& verifier,
                                        const CatalogueStore& catalogue, EnqueueUp enqueue_up, PublishDown publish_down,
                                        Freshness freshness, KeyRevoked key_revoked, CredentialSettings settings = {});

  // How a renewal travels down to the hall that accepted its case (kind 132); set by the node.
  void setEnqueueDown(EnqueueTo enqueue_to);

  // The key revocations this node has received, oldest first (the node re-enforces them at start).
  Result<std::vector<Bytes>> keyRevocations();

  // Inside the conclude transaction of an approved case at its decide level: issues the item's
  // credential and returns its number (kFailedPrecondition if the item issues none or this node
  // may not issue it).
  Result<std::string> issue(const CaseRecord& c, TimeMs now);
  // The issuer renews a credential: same number, next version, valid from `now`, new facts when
  // given. Without `valid_until_ms` the validity restarts from `now` for the item's period, as
  // at issuance (long-term stays long-term). An explicit end (exclusive; 0 = none) may shorten
  // that period but not exceed it (kInvalidArgument, naming the latest day allowed).
  Result<Bytes> renew(const std::string& number, std::optional<TimeMs> valid_until_ms,
                      const std::vector<std::pair<std::string, std::string>>& facts, TimeMs now);
  // Revokes, suspends or reinstates ("active") a credential: this node must be its issuer or an
  // ancestor of it. Revoked is final.
  Result<CredentialStatusInfo> setStatus(const std::string& number, const std::string& status,
                                         const std::string& reason, TimeMs now);
  // Publishes a key revocation (made by `tongban keys revoke`) to the whole network.
  Status publishKeyRevocation(const Bytes& signed_revocation, TimeMs now);

  // Registers a person or organisation once (一表登记); a later registration of the same ID
  // number is the next version.
  Result<IdentityInfo> registerIdentity(const std::string& id_number, const std::string& name,
                                        const std::vector<std::pair<std::string, std::string>>& contacts, TimeMs now);
  Result<std::optional<IdentityInfo>> identity(const std::string& id_number);
  // The signed identity record as held (for passing on: lookups), and what one says once its
  // signature and chain check out.
  Result<std::optional<Bytes>> identitySealed(const std::string& id_number);
  Result<IdentityInfo> openIdentity(const Bytes& sealed, TimeMs now);

  // What arrives from the network, inside the applying transaction. Each verifies, checks
  // authority and the conflict rule, stores what is newer and returns whether it was.
  Result<bool> acceptCredential(const Bytes& sealed, TimeMs now);
  // The downlink applier for kinds 131, 135, 137, 139: accept, and relay to the parent if new.
  Status applyFromChild(const OpenedEnvelope& envelope, TimeMs now);
  // The downlink applier for kind 132 (a renewed credential on its way to the hall that accepted
  // its case): checked at every hop, relayed to the next child, kept at that hall.
  Status applyFromParent(const OpenedEnvelope& envelope, TimeMs now);
  // The feed applier: a status record or a key revocation notice from the parent.
  Result<bool> applyFeedEntry(const Bytes& entry, TimeMs now);

  Verification verify(const Bytes& sealed, TimeMs now);
  // The text form (credentialToText); a string that is not one is "invalid" with the reason.
  Verification verifyText(const std::string& text, TimeMs now);

  Result<std::optional<Bytes>> sealed(const std::string& number);
  Result<std::vector<CredentialInfo>> listByHolder(const std::string& holder_id);
  Result<std::optional<CredentialInfo>> listByNumber(const std::string& number);
  Result<std::optional<CredentialStatusInfo>> status(const std::string& number);

  // Observer hook: called with a credential's number whenever a status record for it (a
  // revocation, suspension, reinstatement or renewal notice) or a new version of it is stored here, inside the storing
  // transaction (so possibly rolled back: use it only to forget cached knowledge). Lookups use it.
  void setStatusObserver(std::function<void(const std::string& number)> observer);

  struct Impl;
 private:
  explicit CredentialService(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<Impl> impl_;
};

}  // namespace tongban
