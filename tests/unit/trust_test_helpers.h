// Helpers for trust_test.cpp: a small deterministic division tree, and wire surgery to build
// what an attacker or a broken peer would send. Header-only so the test target needs no change.
#pragma once

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "federation/trust/envelope.h"
#include "schema/trust.capnp.h"

namespace tongban::trust_test {

inline constexpr DurationMs kDay = 24LL * 3600 * 1000;
inline constexpr TimeMs kT0 = 1'790'000'000'000;  // the messages' time and the receivers' clock
inline constexpr TimeMs kFrom = kT0 - 30 * kDay;
inline constexpr TimeMs kUntil = kT0 + 365 * kDay;

enum : MessageKind { kHeartbeat = 1, kEvents = 2, kCatalogue = 3, kAnswer = 4, kNobodyKnows = 999 };

inline DivisionCode code(std::string_view s) { return DivisionCode::parse(s).value(); }

inline KeyPair keysFor(uint8_t n) {
  std::array<uint8_t, 32> seed{};
  seed.fill(n);
  return KeyPair::fromSeed(seed);
}

inline Identity child(const Identity& parent, std::string_view c, uint8_t seed, TimeMs from = kFrom, TimeMs until = kUntil) {
  auto r = issueChildIdentity(parent, code(c), "node " + std::string(c), keysFor(seed), seed, from, until);
  EXPECT_TRUE(r.isOk()) << r.status().toString();
  return std::move(r).value();
}

struct Tree {
  Identity city, district, town, v1, v2;
};

inline Tree makeTree() {
  Identity city = createRootIdentity(code("440600000000"), "佛山市", keysFor(1), kFrom, kUntil).value();
  Identity district = child(city, "440604000000", 2);
  Identity town = child(district, "440604001000", 3);
  Identity v1 = child(town, "440604001001", 4);
  Identity v2 = child(town, "440604001002", 5);
  return Tree{city, district, town, v1, v2};
}

// ---- wire surgery, to build what an attacker or a broken peer would send ----

struct SealedFields {
  Bytes body, signer_key, signature;
};

inline SealedFields unseal(const Bytes& sealed) {
  kj::Array<capnp::word> words = kj::heapArray<capnp::word>(sealed.size() / 8);
  std::memcpy(words.begin(), sealed.data(), sealed.size());
  capnp::FlatArrayMessageReader reader(words);
  auto s = reader.getRoot<wire::SealedEnvelope>();
  auto b = [](capnp::Data::Reader d) { return Bytes(d.begin(), d.end()); };
  return {b(s.getBody()), b(s.getSignerKey()), b(s.getSignature())};
}

inline Bytes flat(capnp::MessageBuilder& builder) {
  auto words = capnp::messageToFlatArray(builder);
  auto bytes = words.asBytes();
  return Bytes(bytes.begin(), bytes.end());
}

inline capnp::Data::Reader asData(const Bytes& b) { return capnp::Data::Reader(b.data(), b.size()); }
template <size_t N>
inline Bytes bytes(const std::array<uint8_t, N>& a) { return Bytes(a.begin(), a.end()); }

inline Bytes reseal(const SealedFields& f) {
  capnp::MallocMessageBuilder builder;
  auto s = builder.initRoot<wire::SealedEnvelope>();
  s.setBody(asData(f.body));
  s.setSignerKey(asData(f.signer_key));
  s.setSignature(asData(f.signature));
  return flat(builder);
}

inline Bytes signedBy(const SecretKey& key, const Bytes& body) { return bytes(sign(key, body.data(), body.size())); }

// An envelope body laid out in allocation order rather than canonical order (payload first).
inline Bytes nonCanonicalBody(const Identity& signer, MessageKind kind, const DivisionCode& target) {
  capnp::MallocMessageBuilder builder;
  auto env = builder.initRoot<wire::Envelope>();
  env.setPayload(asData(toBytes("hello")));
  env.setTarget(target.str());
  env.setSigner(signer.division.str());
  env.setKind(kind);
  env.setSeq(1);
  env.setTimestampMs(kT0);
  auto chain = env.initChain(static_cast<unsigned>(signer.chain.size()));
  for (size_t i = 0; i < signer.chain.size(); ++i) chain.set(static_cast<unsigned>(i), asData(signer.chain[i]));
  auto segments = builder.getSegmentsForOutput();
  EXPECT_EQ(segments.size(), 1u);
  auto b = segments[0].asBytes();
  return Bytes(b.begin(), b.end());
}

inline Bytes canonicalOf(const Bytes& body) {
  kj::Array<capnp::word> words = kj::heapArray<capnp::word>(body.size() / 8);
  std::memcpy(words.begin(), body.data(), body.size());
  kj::ArrayPtr<const capnp::word> segs[1] = {words};
  capnp::SegmentArrayMessageReader reader(kj::arrayPtr(segs, 1));
  auto canon = capnp::canonicalize(reader.getRoot<wire::Envelope>());
  auto b = canon.asBytes();
  return Bytes(b.begin(), b.end());
}

// A key revocation without signKeyRevocation's own authority check.
inline Bytes forgeRevocation(const Identity& issuer, const DivisionCode& holder, const PublicKey& key, TimeMs at) {
  capnp::MallocMessageBuilder inner;
  auto rev = inner.initRoot<wire::KeyRevocation>();
  rev.setDivision(holder.str());
  rev.setPublicKey(asData(bytes(key)));
  rev.setRevokedAtMs(at);
  rev.setReason("forged");
  rev.setIssuer(issuer.division.str());
  auto canon = capnp::canonicalize(rev.asReader());
  Bytes body(canon.asBytes().begin(), canon.asBytes().end());
  capnp::MallocMessageBuilder outer;
  auto s = outer.initRoot<wire::SignedKeyRevocation>();
  s.setBody(asData(body));
  s.setSignature(asData(signedBy(issuer.keys.secret_key, body)));
  auto chain = s.initChain(static_cast<unsigned>(issuer.chain.size()));
  for (size_t i = 0; i < issuer.chain.size(); ++i) chain.set(static_cast<unsigned>(i), asData(issuer.chain[i]));
  return flat(outer);
}

inline KindRegistry standardKinds() {
  KindRegistry kinds;
  kinds.add(kHeartbeat, {"heartbeat", Direction::kUpToParent, false});
  kinds.add(kEvents, {"case events", Direction::kUpToParent, true});
  kinds.add(kCatalogue, {"catalogue", Direction::kDownToDescendant, true});
  kinds.add(kAnswer, {"lookup answer", Direction::kReply, false});
  return kinds;
}

}  // namespace tongban::trust_test
