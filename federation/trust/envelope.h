// Signed envelopes: how every message between nodes is sealed and opened.
//
// Opening runs the checks in this order and stops at the first failure, each with its own
// ErrorCode (see util/status.h) and a message naming the culprit:
//   1. size cap                      kOversize
//   2. outer frame decodes (tiny)    kMalformed
//      signature over the raw body   kBadSignature
//   3. body decodes within limits    kMalformed
//   4. chain reaches the root        kUntrustedChain   (and the leaf binds signerKey to signer)
//   5. every certificate valid at
//      the message time              kCertificateExpired
//   6. revoked keys in the chain     kRevoked
//   7. signer may say this kind to
//      this target                   kUnauthorized
//   8. sequence not replayed /
//      not rolled back               kReplay / kRollback   (only for kinds with a ReplayGuard)
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "federation/trust/certificate.h"

namespace tongban {

using MessageKind = uint16_t;

// Who may send a kind to whom. The federation registers its own kinds; the node layer adds its
// own (case events, credentials...) at start-up.
enum class Direction {
  kUpToParent,          // signer must be a direct child of the target (join, heartbeat, events)
  kDownToDescendant,    // signer must be a strict ancestor of the target (catalogue, decisions)
  kReply,               // any verified node; the caller checks the signer it expected
  kFromRoot,            // signed by the city's root key, for every node (the catalogue); any target
  kStatement,           // a signed statement any node may check and pass on (a forwarded case, a
                        // lookup answer): chain, validity and revocation are checked, the target is
                        // not; the reader checks that the signer had authority over the content
};

struct KindRule {
  std::string name;     // for errors and logs
  Direction direction;
  bool durable;         // outbox kinds: sequence checked against the ReplayGuard
};

class KindRegistry {
 public:
  void add(MessageKind kind, KindRule rule);
  const KindRule* find(MessageKind kind) const;
 private:
  std::map<MessageKind, KindRule> rules_;
};

// What the receiver knows about sequences it has accepted. Implemented over SQLite by the
// store (store/receipts.h) and in memory for tests.
class ReplayGuard {
 public:
  enum class Verdict { kFresh, kReplay, kRollback };
  virtual ~ReplayGuard() = default;
  virtual Result<Verdict> check(const std::string& signer, uint64_t seq) = 0;
};

class MemoryReplayGuard : public ReplayGuard {
 public:
  Result<Verdict> check(const std::string& signer, uint64_t seq) override;
  void record(const std::string& signer, uint64_t seq);
 private:
  std::map<std::string, std::pair<uint64_t, std::vector<uint64_t>>> seen_;  // last, all seen
};

struct EnvelopeLimits {
  size_t max_bytes = 256 * 1024;           // whole sealed envelope
  uint64_t traversal_words_factor = 4;     // traversal limit = factor * message words
  int nesting_limit = 16;
  size_t max_chain_length = 4;             // village → town → district → (root excluded)
  DurationMs max_future_skew_ms = 5 * 60 * 1000;  // message time may lead our clock by this
};

struct OpenedEnvelope {
  DivisionCode signer;
  MessageKind kind;
  uint64_t seq;
  TimeMs timestamp_ms;
  DivisionCode target;
  Bytes payload;
  uint64_t nonce;
  PublicKey signer_key;
  // The signer's verified certificates, its own first, up to (not including) the root: who
  // vouches for the signer, for a reader that shows it (a credential's issuer chain).
  std::vector<CertificateInfo> chain;
};

// A verified key revocation: `holder`'s `key` is revoked from `revoked_at_ms` on, by `issuer`.
struct KeyRevocationInfo {
  DivisionCode holder;
  PublicKey key;
  TimeMs revoked_at_ms = 0;
  DivisionCode issuer;
};

struct SealParams {
  MessageKind kind = 0;
  uint64_t seq = 0;
  TimeMs timestamp_ms = 0;
  DivisionCode target;
  Bytes payload;
  uint64_t nonce = 0;
};

// What an envelope claims about itself, decoded within limits but NOT verified: only for
// telling a sender which of its messages was rejected, never for trusting anything.
struct ClaimedEnvelope {
  std::string signer;
  uint64_t seq = 0;
  MessageKind kind = 0;
  TimeMs timestamp_ms = 0;
  Bytes payload;  // unverified: compare it with what was verified before, never act on it
};
Result<ClaimedEnvelope> peekEnvelope(const Bytes& sealed, const EnvelopeLimits& limits = {});

// Seals a message with the identity's key and chain.
Bytes sealEnvelope(const Identity& identity, const SealParams& params);

class Verifier {
 public:
  // `root_certificate`: the city's self-signed SignedCertificate (checked here: a bad root is
  // a configuration error, reported by create()).
  static Result<Verifier> create(const Bytes& root_certificate, const KindRegistry* kinds,
                                 EnvelopeLimits limits = {});

  // Runs checks 1-8. `receiver` is the division of the node opening the envelope; `now_ms` its
  // clock (used for the future-skew check). `guard` may be null for non-durable kinds.
  // Does not record the sequence: the caller records it in the same transaction as the effect.
  Result<OpenedEnvelope> open(const Bytes& sealed, const DivisionCode& receiver, TimeMs now_ms,
                              ReplayGuard* guard) const;

  // Key revocations (a lost laptop): messages signed by that key at or after `revoked_at_ms`
  // are rejected with kRevoked, as are messages whose chain contains the key then.
  Status addRevocation(const Bytes& signed_revocation);
  // The same checks (signature, the issuer's chain at the revocation time, the issuer an
  // ancestor of the holder) without enforcing it: what the revocation says.
  Result<KeyRevocationInfo> checkRevocation(const Bytes& signed_revocation) const;
  void revokeKey(const PublicKey& key, TimeMs revoked_at_ms);  // already verified input

  const CertificateInfo& root() const { return root_; }

 private:
  Verifier() = default;
  // Checks 4-6 for `chain` (leaf first) presented by `signer` holding `signer_key`, at `at_ms`.
  Result<std::vector<CertificateInfo>> verifyChain(const std::vector<Bytes>& chain, const DivisionCode& signer,
                                                   const PublicKey& signer_key, TimeMs at_ms) const;

  CertificateInfo root_;
  const KindRegistry* kinds_ = nullptr;
  EnvelopeLimits limits_;
  std::map<PublicKey, TimeMs> revoked_;
  // Verified certificates by their issuer's key followed by their signed bytes: skip re-verifying
  // a chain seen before (keying on the issuer key too stops a cached certificate from being
  // presented under a different issuer certificate).
  mutable std::unordered_map<std::string, CertificateInfo> verified_cache_;
};

// Signs a key revocation for `holder`'s key, issued by `issuer` (an ancestor of holder).
Result<Bytes> signKeyRevocation(const Identity& issuer, const DivisionCode& holder, const PublicKey& key,
                                TimeMs revoked_at_ms, const std::string& reason);

}  // namespace tongban
