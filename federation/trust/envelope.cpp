#include "federation/trust/envelope.h"

#include <algorithm>

#include "federation/trust/wire_codec.h"

namespace tongban {

using trust_internal::DecodeLimits;
using trust_internal::SignedCertificateParts;

namespace {

// Verified certificates are genuine ones issued inside the tree, so the cache is naturally
// bounded by the network's size; the cap only matters if a compromised parent mints
// certificates in bulk, and then forgetting everything is the cheap, safe answer.
constexpr size_t kMaxCachedCertificates = 4096;

// The outer frame holds three pointers: reading it touches each word about once.
constexpr DecodeLimits kOuterLimits{2, 2};

std::string keyPrefix(const PublicKey& key) { return hexEncode(key.data(), 4) + "…"; }

template <size_t N>
bool copyFixed(capnp::Data::Reader data, std::array<uint8_t, N>& out) {
  if (data.size() != N) return false;
  std::copy(data.begin(), data.end(), out.begin());
  return true;
}

Result<DivisionCode> parseCode(capnp::Text::Reader text, const std::string& field) {
  auto code = DivisionCode::parse(std::string_view(text.cStr(), text.size()));
  if (!code) return Status(ErrorCode::kMalformed, field + ": " + code.status().message());
  return code;
}

struct SealedParts {
  Bytes body;
  PublicKey signer_key{};
  Signature signature{};
};

struct EnvelopeParts {
  DivisionCode signer;
  MessageKind kind;
  uint64_t seq;
  TimeMs timestamp_ms;
  DivisionCode target;
  Bytes payload;
  std::vector<Bytes> chain;
  uint64_t nonce;
};

struct RevocationOuter {
  Bytes body;
  Signature signature{};
  std::vector<Bytes> chain;
};

struct RevocationParts {
  DivisionCode division;
  PublicKey key;
  TimeMs revoked_at_ms;
  DivisionCode issuer;
};

std::vector<Bytes> copyChain(capnp::List<capnp::Data>::Reader list) {
  std::vector<Bytes> out;
  out.reserve(list.size());
  for (auto cert : list) out.push_back(trust_internal::bytesOf(cert));
  return out;
}

bool validAt(const CertificateInfo& c, TimeMs t) { return c.valid_from_ms <= t && t < c.valid_until_ms; }

}  // namespace

void KindRegistry::add(MessageKind kind, KindRule rule) { rules_.insert_or_assign(kind, std::move(rule)); }

const KindRule* KindRegistry::find(MessageKind kind) const {
  auto it = rules_.find(kind);
  return it == rules_.end() ? nullptr : &it->second;
}

Result<ReplayGuard::Verdict> MemoryReplayGuard::check(const std::string& signer, uint64_t seq) {
  auto it = seen_.find(signer);
  if (it == seen_.end()) return Verdict::kFresh;
  const auto& [last, all] = it->second;
  if (std::find(all.begin(), all.end(), seq) != all.end()) return Verdict::kReplay;
  return seq > last ? Verdict::kFresh : Verdict::kRollback;
}

void MemoryReplayGuard::record(const std::string& signer, uint64_t seq) {
  auto [it, inserted] = seen_.try_emplace(signer, seq, std::vector<uint64_t>{});
  auto& [last, all] = it->second;
  last = std::max(last, seq);
  all.push_back(seq);
}

Bytes sealEnvelope(const Identity& identity, const SealParams& params) {
  try {
    capnp::MallocMessageBuilder inner;
    auto env = inner.initRoot<wire::Envelope>();
    env.setSigner(identity.division.str());
    env.setKind(params.kind);
    env.setSeq(params.seq);
    env.setTimestampMs(params.timestamp_ms);
    env.setTarget(params.target.str());
    env.setPayload(trust_internal::dataOf(params.payload));
    auto chain = env.initChain(static_cast<unsigned>(identity.chain.size()));
    for (size_t i = 0; i < identity.chain.size(); ++i) {
      chain.set(static_cast<unsigned>(i), trust_internal::dataOf(identity.chain[i]));
    }
    env.setNonce(params.nonce);
    Bytes body = trust_internal::canonicalBytes(env.asReader());
    Signature sig = sign(identity.keys.secret_key, body.data(), body.size());

    capnp::MallocMessageBuilder outer;
    auto sealed = outer.initRoot<wire::SealedEnvelope>();
    sealed.setBody(trust_internal::dataOf(body));
    sealed.setSignerKey(capnp::Data::Reader(identity.keys.public_key.data(), identity.keys.public_key.size()));
    sealed.setSignature(capnp::Data::Reader(sig.data(), sig.size()));
    return trust_internal::flatBytes(outer);
  } catch (const kj::Exception&) {
    // Only a payload beyond Cap'n Proto's own size limits gets here. The return type leaves no
    // room for an error, and empty bytes are refused by every receiver as malformed.
    return {};
  }
}

Result<Verifier> Verifier::create(const Bytes& root_certificate, const KindRegistry* kinds, EnvelopeLimits limits) {
  if (kinds == nullptr) return Status(ErrorCode::kInvalidArgument, "verifier needs a kind registry");
  auto parts = trust_internal::decodeSignedCertificate(root_certificate.data(), root_certificate.size(),
                                                       trust_internal::kCertificateLimits);
  if (!parts) {
    return Status(ErrorCode::kUntrustedChain, "the root certificate does not decode: " + parts.status().message());
  }
  const CertificateInfo& info = parts->info;
  if (info.division.level() != Level::kCity) {
    return Status(ErrorCode::kUntrustedChain, "the root certificate names " + describeDivision(info.division) +
                                                  "; a network's root must be a city");
  }
  if (parts->declared_level != static_cast<uint8_t>(Level::kCity)) {
    return Status(ErrorCode::kUntrustedChain, "the root certificate of " + info.division.str() +
                                                  " declares level " + std::to_string(parts->declared_level) +
                                                  ", not city");
  }
  if (info.issuer != info.division) {
    return Status(ErrorCode::kUntrustedChain, "the root certificate of " + info.division.str() + " is issued by " +
                                                  info.issuer.str() + "; a root must be self-signed");
  }
  if (!verifySignature(info.public_key, parts->body.data(), parts->body.size(), parts->signature)) {
    return Status(ErrorCode::kUntrustedChain,
                  "the root certificate of " + info.division.str() + " is not signed by its own key");
  }
  Verifier verifier;
  verifier.root_ = std::move(parts->info);
  verifier.kinds_ = kinds;
  verifier.limits_ = limits;
  return verifier;
}

Result<std::vector<CertificateInfo>> Verifier::verifyChain(const std::vector<Bytes>& chain, const DivisionCode& signer,
                                                           const PublicKey& signer_key, TimeMs at_ms) const {
  // Decoding first, so a garbled certificate is reported as malformed rather than untrusted.
  std::vector<SignedCertificateParts> parts;
  parts.reserve(chain.size());
  for (size_t i = 0; i < chain.size(); ++i) {
    auto p = trust_internal::decodeSignedCertificate(chain[i].data(), chain[i].size(),
                                                     trust_internal::kCertificateLimits);
    if (!p) return p.status().withContext("certificate " + std::to_string(i) + " of " + signer.str() + "'s chain");
    parts.push_back(std::move(*p));
  }

  // 4. The chain binds signer_key to signer and leads, parent by parent, to our root.
  if (chain.empty()) {
    if (signer != root_.division) {
      return Status(ErrorCode::kUntrustedChain, signer.str() + " sent no certificate chain; only the root " +
                                                    root_.division.str() + " may sign without one");
    }
    if (signer_key != root_.public_key) {
      return Status(ErrorCode::kUntrustedChain, "message claims to come from the root " + signer.str() +
                                                    " but is signed with key " + keyPrefix(signer_key) +
                                                    ", not the root key");
    }
  } else {
    const CertificateInfo& leaf = parts.front().info;
    if (leaf.division != signer) {
      return Status(ErrorCode::kUntrustedChain, "signer " + signer.str() +
                                                    " presents a certificate chain that starts with " +
                                                    leaf.division.str() + "'s certificate");
    }
    if (leaf.public_key != signer_key) {
      return Status(ErrorCode::kUntrustedChain, "the message from " + signer.str() + " is signed with key " +
                                                    keyPrefix(signer_key) + ", which " + signer.str() +
                                                    "'s certificate does not certify");
    }
  }
  for (size_t i = parts.size(); i-- > 0;) {
    const CertificateInfo& cert = parts[i].info;
    const bool top = i + 1 == parts.size();
    const CertificateInfo& issuer = top ? root_ : parts[i + 1].info;
    const std::string who = "certificate of " + cert.division.str();
    if (parts[i].declared_level != static_cast<uint8_t>(cert.division.level())) {
      return Status(ErrorCode::kUntrustedChain, who + " declares level " + std::to_string(parts[i].declared_level) +
                                                    " but the code is a " + levelName(cert.division.level()));
    }
    if (cert.issuer != issuer.division) {
      return Status(ErrorCode::kUntrustedChain,
                    top ? who + " is issued by " + cert.issuer.str() + ", not by this network's root " +
                              root_.division.str()
                        : who + " names issuer " + cert.issuer.str() + ", but the next certificate in the chain is " +
                              issuer.division.str() + "'s");
    }
    if (!issuer.division.isParentOf(cert.division)) {
      return Status(ErrorCode::kUntrustedChain, who + " is issued by " + describeDivision(issuer.division) +
                                                    ", which is not the parent of " + describeDivision(cert.division));
    }
    std::string cache_key(issuer.public_key.begin(), issuer.public_key.end());
    cache_key.append(chain[i].begin(), chain[i].end());
    if (verified_cache_.count(cache_key) == 0) {
      if (!verifySignature(issuer.public_key, parts[i].body.data(), parts[i].body.size(), parts[i].signature)) {
        return Status(ErrorCode::kUntrustedChain,
                      who + " is signed by a key that is not " + issuer.division.str() + "'s");
      }
      if (verified_cache_.size() >= kMaxCachedCertificates) verified_cache_.clear();
      verified_cache_.emplace(std::move(cache_key), cert);
    }
  }

  // 5. Every certificate, the root included, valid when the message was signed.
  auto expired = [&](const CertificateInfo& c) {
    return Status(ErrorCode::kCertificateExpired,
                  "certificate of " + c.division.str() + " is valid from " + std::to_string(c.valid_from_ms) +
                      " until " + std::to_string(c.valid_until_ms) + " (ms); the message is dated " +
                      std::to_string(at_ms));
  };
  for (const auto& p : parts) {
    if (!validAt(p.info, at_ms)) return expired(p.info);
  }
  if (!validAt(root_, at_ms)) return expired(root_);

  // 6. No key on the path revoked at or before the message time.
  auto revoked = [&](const PublicKey& key, const DivisionCode& holder) -> Status {
    auto it = revoked_.find(key);
    if (it != revoked_.end() && it->second <= at_ms) {
      return Status(ErrorCode::kRevoked, "the key " + keyPrefix(key) + " of " + holder.str() + " was revoked at " +
                                             std::to_string(it->second) + "; the message is dated " +
                                             std::to_string(at_ms));
    }
    return Status::ok();
  };
  TB_RETURN_IF_ERROR(revoked(signer_key, signer));
  for (const auto& p : parts) TB_RETURN_IF_ERROR(revoked(p.info.public_key, p.info.division));
  TB_RETURN_IF_ERROR(revoked(root_.public_key, root_.division));

  std::vector<CertificateInfo> infos;
  infos.reserve(parts.size());
  for (auto& p : parts) infos.push_back(std::move(p.info));
  return infos;
}

Result<OpenedEnvelope> Verifier::open(const Bytes& sealed, const DivisionCode& receiver, TimeMs now_ms,
                                      ReplayGuard* guard) const {
  // 1. Size, before looking at a single byte.
  if (sealed.size() > limits_.max_bytes) {
    return Status(ErrorCode::kOversize, "envelope is " + std::to_string(sealed.size()) + " bytes; the limit is " +
                                            std::to_string(limits_.max_bytes));
  }

  // 2. The outer frame, then the signature over the raw body bytes.
  auto outer = trust_internal::readFlat(
      sealed.data(), sealed.size(), kOuterLimits, "sealed envelope",
      [](capnp::MessageReader& reader) -> Result<SealedParts> {
        auto root = reader.getRoot<wire::SealedEnvelope>();
        SealedParts out;
        if (!copyFixed(root.getSignerKey(), out.signer_key)) {
          return Status(ErrorCode::kMalformed, "sealed envelope signer key is " +
                                                   std::to_string(root.getSignerKey().size()) + " bytes; expected 32");
        }
        if (!copyFixed(root.getSignature(), out.signature)) {
          return Status(ErrorCode::kMalformed, "sealed envelope signature is " +
                                                   std::to_string(root.getSignature().size()) + " bytes; expected 64");
        }
        out.body = trust_internal::bytesOf(root.getBody());
        return out;
      });
  if (!outer) return outer.status();
  if (!verifySignature(outer->signer_key, outer->body.data(), outer->body.size(), outer->signature)) {
    return Status(ErrorCode::kBadSignature, "envelope signature does not verify with the key it names (" +
                                                keyPrefix(outer->signer_key) + "); altered in transit or forged");
  }

  // 3. The signed body, within limits and canonical.
  const DecodeLimits body_limits{limits_.traversal_words_factor, limits_.nesting_limit};
  const size_t max_chain = limits_.max_chain_length;
  auto body = trust_internal::readCanonical(
      outer->body.data(), outer->body.size(), body_limits, "envelope body",
      [max_chain](capnp::MessageReader& reader) -> Result<EnvelopeParts> {
        auto env = reader.getRoot<wire::Envelope>();
        TB_ASSIGN_OR_RETURN(DivisionCode signer, parseCode(env.getSigner(), "envelope signer"));
        TB_ASSIGN_OR_RETURN(DivisionCode target, parseCode(env.getTarget(), "envelope target"));
        auto chain = env.getChain();
        if (chain.size() > max_chain) {
          return Status(ErrorCode::kMalformed, "envelope from " + signer.str() + " carries " +
                                                   std::to_string(chain.size()) + " certificates; the limit is " +
                                                   std::to_string(max_chain));
        }
        return EnvelopeParts{signer,         env.getKind(),
                             env.getSeq(),   env.getTimestampMs(),
                             target,         trust_internal::bytesOf(env.getPayload()),
                             copyChain(chain), env.getNonce()};
      });
  if (!body) return body.status();
  EnvelopeParts& env = *body;
  // A timestamp far ahead of our clock would let a sender pre-date messages past a coming
  // revocation or expiry, so it is refused here (still check 3) — but with its own code: either
  // clock may be the wrong one, and the same bytes become acceptable once ours catches up, so
  // the outbox and the feed retry it rather than set it aside for good.
  // Unsigned difference: the timestamp is attacker-chosen and a signed one could overflow.
  const uint64_t lead = static_cast<uint64_t>(env.timestamp_ms) - static_cast<uint64_t>(now_ms);
  if (env.timestamp_ms > now_ms && lead > static_cast<uint64_t>(std::max<DurationMs>(limits_.max_future_skew_ms, 0))) {
    return Status(ErrorCode::kFutureDated, "envelope from " + env.signer.str() + " is dated " +
                                             std::to_string(lead) +
                                             " ms in the future; the allowed clock skew is " +
                                             std::to_string(limits_.max_future_skew_ms) + " ms");
  }

  // 4-6.
  auto chain = verifyChain(env.chain, env.signer, outer->signer_key, env.timestamp_ms);
  if (!chain) return chain.status();

  // 7. Authority: may this signer say this kind to this target, and is it meant for us?
  const KindRule* rule = kinds_->find(env.kind);
  if (rule == nullptr) {
    return Status(ErrorCode::kUnauthorized,
                  "unknown message kind " + std::to_string(env.kind) + " from " + env.signer.str());
  }
  switch (rule->direction) {
    case Direction::kUpToParent:
      if (!env.target.isParentOf(env.signer)) {
        return Status(ErrorCode::kUnauthorized, describeDivision(env.signer) + " may send " + rule->name +
                                                    " only to its parent, not to " + describeDivision(env.target));
      }
      break;
    case Direction::kDownToDescendant:
      if (!env.signer.isAncestorOf(env.target)) {
        return Status(ErrorCode::kUnauthorized, describeDivision(env.signer) + " may send " + rule->name +
                                                    " only into its own subtree; " + describeDivision(env.target) +
                                                    " is outside it");
      }
      break;
    case Direction::kReply:
    case Direction::kStatement:
      break;
    case Direction::kFromRoot:
      if (env.signer != root_.division) {
        return Status(ErrorCode::kUnauthorized, rule->name + " may be published only by the city " +
                                                    root_.division.str() + ", not by " + describeDivision(env.signer));
      }
      break;
  }
  // A document the city publishes for everyone (the catalogue), and a statement any node may pass
  // on, are addressed to no one in particular.
  if (rule->direction != Direction::kFromRoot && rule->direction != Direction::kStatement &&
      env.target != receiver) {
    return Status(ErrorCode::kUnauthorized, rule->name + " from " + env.signer.str() + " is addressed to " +
                                                env.target.str() + ", not to this node " + receiver.str());
  }

  // 8. Replays and rollbacks; recording is the caller's, in the transaction of the effect.
  if (rule->durable && guard != nullptr) {
    auto verdict = guard->check(env.signer.str(), env.seq);
    if (!verdict) return verdict.status();
    if (*verdict == ReplayGuard::Verdict::kReplay) {
      return Status(ErrorCode::kReplay, rule->name + " seq " + std::to_string(env.seq) + " from " + env.signer.str() +
                                            " was already accepted");
    }
    if (*verdict == ReplayGuard::Verdict::kRollback) {
      return Status(ErrorCode::kRollback, rule->name + " seq " + std::to_string(env.seq) + " from " +
                                              env.signer.str() +
                                              " is older than the last accepted and was never seen: the sender "
                                              "may have lost state (restored from an old backup?)");
    }
  }

  return OpenedEnvelope{env.signer, env.kind,  env.seq,   env.timestamp_ms, env.target, std::move(env.payload),
                        env.nonce,  outer->signer_key, std::move(chain).value()};
}

void Verifier::revokeKey(const PublicKey& key, TimeMs revoked_at_ms) {
  auto [it, inserted] = revoked_.try_emplace(key, revoked_at_ms);
  if (!inserted) it->second = std::min(it->second, revoked_at_ms);  // the earliest claim wins
}

Status Verifier::addRevocation(const Bytes& signed_revocation) {
  TB_ASSIGN_OR_RETURN(KeyRevocationInfo info, checkRevocation(signed_revocation));
  revokeKey(info.key, info.revoked_at_ms);
  return Status::ok();
}

Result<KeyRevocationInfo> Verifier::checkRevocation(const Bytes& signed_revocation) const {
  if (signed_revocation.size() > limits_.max_bytes) {
    return Status(ErrorCode::kOversize, "key revocation is " + std::to_string(signed_revocation.size()) +
                                            " bytes; the limit is " + std::to_string(limits_.max_bytes));
  }
  const size_t max_chain = limits_.max_chain_length;
  auto outer = trust_internal::readFlat(
      signed_revocation.data(), signed_revocation.size(), DecodeLimits{limits_.traversal_words_factor, 4},
      "key revocation", [max_chain](capnp::MessageReader& reader) -> Result<RevocationOuter> {
        auto root = reader.getRoot<wire::SignedKeyRevocation>();
        RevocationOuter out;
        if (!copyFixed(root.getSignature(), out.signature)) {
          return Status(ErrorCode::kMalformed, "key revocation signature is not 64 bytes");
        }
        if (root.getChain().size() > max_chain) {
          return Status(ErrorCode::kMalformed, "key revocation carries " + std::to_string(root.getChain().size()) +
                                                   " certificates; the limit is " + std::to_string(max_chain));
        }
        out.body = trust_internal::bytesOf(root.getBody());
        out.chain = copyChain(root.getChain());
        return out;
      });
  if (!outer) return outer.status();

  // The revocation names no key of its own: the issuer signs with the key its chain certifies
  // (the root key when the chain is empty), which verifyChain then binds to the issuer.
  PublicKey signer_key = root_.public_key;
  if (!outer->chain.empty()) {
    auto leaf = trust_internal::decodeSignedCertificate(outer->chain[0].data(), outer->chain[0].size(),
                                                        trust_internal::kCertificateLimits);
    if (!leaf) return leaf.status().withContext("key revocation issuer's certificate");
    signer_key = leaf->info.public_key;
  }
  if (!verifySignature(signer_key, outer->body.data(), outer->body.size(), outer->signature)) {
    return Status(ErrorCode::kBadSignature, "key revocation signature does not verify with its issuer's key");
  }

  auto body = trust_internal::readCanonical(
      outer->body.data(), outer->body.size(), DecodeLimits{limits_.traversal_words_factor, limits_.nesting_limit},
      "key revocation body", [](capnp::MessageReader& reader) -> Result<RevocationParts> {
        auto rev = reader.getRoot<wire::KeyRevocation>();
        TB_ASSIGN_OR_RETURN(DivisionCode division, parseCode(rev.getDivision(), "revoked key holder"));
        TB_ASSIGN_OR_RETURN(DivisionCode issuer, parseCode(rev.getIssuer(), "revocation issuer"));
        PublicKey key{};
        if (!copyFixed(rev.getPublicKey(), key)) {
          return Status(ErrorCode::kMalformed, "revoked key of " + division.str() + " is not 32 bytes");
        }
        return RevocationParts{division, key, rev.getRevokedAtMs(), issuer};
      });
  if (!body) return body.status();

  // The issuer's chain must hold at the revocation time: a key revoked or expired by then
  // cannot revoke others.
  auto chain = verifyChain(outer->chain, body->issuer, signer_key, body->revoked_at_ms);
  if (!chain) return chain.status().withContext("key revocation by " + body->issuer.str());

  const bool city_self = body->issuer == body->division && body->issuer == root_.division;
  if (!body->issuer.isAncestorOf(body->division) && !city_self) {
    return Status(ErrorCode::kUnauthorized, describeDivision(body->issuer) + " may not revoke the key of " +
                                                describeDivision(body->division) + ": only its ancestors may");
  }
  return KeyRevocationInfo{body->division, body->key, body->revoked_at_ms, body->issuer};
}

Result<Bytes> signKeyRevocation(const Identity& issuer, const DivisionCode& holder, const PublicKey& key,
                                TimeMs revoked_at_ms, const std::string& reason) {
  const bool city_self = issuer.division == holder && holder.level() == Level::kCity;
  if (!issuer.division.isAncestorOf(holder) && !city_self) {
    return Status(ErrorCode::kInvalidArgument, describeDivision(issuer.division) + " cannot revoke the key of " +
                                                   describeDivision(holder) + ": it is not an ancestor");
  }
  try {
    capnp::MallocMessageBuilder inner;
    auto rev = inner.initRoot<wire::KeyRevocation>();
    rev.setDivision(holder.str());
    rev.setPublicKey(capnp::Data::Reader(key.data(), key.size()));
    rev.setRevokedAtMs(revoked_at_ms);
    rev.setReason(reason);
    rev.setIssuer(issuer.division.str());
    Bytes body = trust_internal::canonicalBytes(rev.asReader());
    Signature sig = sign(issuer.keys.secret_key, body.data(), body.size());

    capnp::MallocMessageBuilder outer;
    auto signed_rev = outer.initRoot<wire::SignedKeyRevocation>();
    signed_rev.setBody(trust_internal::dataOf(body));
    signed_rev.setSignature(capnp::Data::Reader(sig.data(), sig.size()));
    auto chain = signed_rev.initChain(static_cast<unsigned>(issuer.chain.size()));
    for (size_t i = 0; i < issuer.chain.size(); ++i) {
      chain.set(static_cast<unsigned>(i), trust_internal::dataOf(issuer.chain[i]));
    }
    return trust_internal::flatBytes(outer);
  } catch (const kj::Exception& e) {
    return Status(ErrorCode::kInternal, std::string("cannot encode key revocation: ") + e.getDescription().cStr());
  }
}

}  // namespace tongban
