// The trust module: keys, certificates, sealed envelopes and the verifier's eight checks.
#include <sys/stat.h>

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include "tests/support/temp_dir.h"
#include "tests/unit/trust_test_helpers.h"

namespace tongban {
namespace {

using namespace trust_test;  // NOLINT: the helpers are this file's vocabulary

class TrustTest : public ::testing::Test {
 protected:
  TrustTest() : verifier_(makeVerifier({})) {}

  Verifier makeVerifier(EnvelopeLimits limits) const {
    auto v = Verifier::create(t_.city.root_certificate, &kinds_, limits);
    EXPECT_TRUE(v.isOk()) << v.status().toString();
    return std::move(v).value();
  }

  static Bytes seal(const Identity& from, MessageKind kind, const DivisionCode& target, uint64_t seq = 1,
                    TimeMs at = kT0, Bytes payload = toBytes("hello")) {
    return sealEnvelope(from, SealParams{kind, seq, at, target, std::move(payload), 77});
  }

  Result<OpenedEnvelope> open(const Bytes& sealed, const DivisionCode& receiver, ReplayGuard* guard = nullptr,
                              TimeMs now = kT0) const {
    return verifier_.open(sealed, receiver, now, guard);
  }

  ErrorCode codeOf(const Bytes& sealed, const DivisionCode& receiver, ReplayGuard* guard = nullptr) const {
    return open(sealed, receiver, guard).status().code();
  }

  Bytes upFromV1(uint64_t seq = 1, TimeMs at = kT0) const { return seal(t_.v1, kEvents, t_.town.division, seq, at); }

  const Tree t_ = makeTree();
  const KindRegistry kinds_ = standardKinds();
  Verifier verifier_;
};

// ---- accepted messages ----

TEST_F(TrustTest, ValidUpMessageFromVillageToTownIsAcceptedWithAllFieldsDecoded) {
  Bytes sealed = seal(t_.v1, kEvents, t_.town.division, 42, kT0 - 1000, toBytes("case 17 concluded"));
  auto opened = open(sealed, t_.town.division);
  ASSERT_TRUE(opened.isOk()) << opened.status().toString();
  EXPECT_EQ(opened->signer, t_.v1.division);
  EXPECT_EQ(opened->kind, kEvents);
  EXPECT_EQ(opened->seq, 42u);
  EXPECT_EQ(opened->timestamp_ms, kT0 - 1000);
  EXPECT_EQ(opened->target, t_.town.division);
  EXPECT_EQ(toString(opened->payload), "case 17 concluded");
  EXPECT_EQ(opened->nonce, 77u);
  EXPECT_EQ(opened->signer_key, t_.v1.keys.public_key);
}

TEST_F(TrustTest, CitySigningWithTheRootKeyAndAnEmptyChainIsAccepted) {
  ASSERT_TRUE(t_.city.chain.empty());
  auto opened = open(seal(t_.city, kCatalogue, t_.district.division), t_.district.division);
  ASSERT_TRUE(opened.isOk()) << opened.status().toString();
  EXPECT_EQ(opened->signer, t_.city.division);
  // And deep down: the city is an ancestor of every village.
  EXPECT_TRUE(open(seal(t_.city, kCatalogue, t_.v2.division), t_.v2.division).isOk());
}

TEST_F(TrustTest, TownSendingDownToItsOwnVillageIsAccepted) {
  auto opened = open(seal(t_.town, kCatalogue, t_.v1.division), t_.v1.division);
  EXPECT_TRUE(opened.isOk()) << opened.status().toString();
}

TEST_F(TrustTest, ReplyFromAnyVerifiedNodeIsAccepted) {
  auto opened = open(seal(t_.v2, kAnswer, t_.district.division), t_.district.division);
  EXPECT_TRUE(opened.isOk()) << opened.status().toString();
}

TEST_F(TrustTest, VerifyingTheSameChainTwiceWorks) {
  for (uint64_t seq = 1; seq <= 3; ++seq) {
    auto opened = open(upFromV1(seq), t_.town.division);
    EXPECT_TRUE(opened.isOk()) << "seq " << seq << ": " << opened.status().toString();
  }
  // The sibling shares the town and district certificates, already cached.
  EXPECT_TRUE(open(seal(t_.v2, kEvents, t_.town.division), t_.town.division).isOk());
}

TEST_F(TrustTest, CachedCertificateIsNotTrustedUnderAReKeyedIssuer) {
  ASSERT_TRUE(open(upFromV1(), t_.town.division).isOk());  // v1's certificate is now cached
  // The town gets a new key; v1's old certificate, signed by the old town key, must not pass
  // under the new town certificate even though its bytes were verified before.
  Identity new_town = child(t_.district, "440604001000", 33);
  Identity forged = t_.v1;
  forged.chain = {t_.v1.certificate};
  forged.chain.insert(forged.chain.end(), new_town.chain.begin(), new_town.chain.end());
  auto opened = open(seal(forged, kEvents, t_.town.division), t_.town.division);
  EXPECT_EQ(opened.status().code(), ErrorCode::kUntrustedChain);
  EXPECT_NE(opened.status().message().find("certificate of 440604001001 is signed by a key that is not 440604001000's"),
            std::string::npos)
      << opened.status().message();
}

TEST_F(TrustTest, DeeplyNestedAndLargePayloadsInsideTheLimitsAreAccepted) {
  // Thirty envelopes nested in each other's payloads: the payload is opaque Data, so its own
  // structure never counts against the outer message's nesting or traversal limits.
  Bytes nested = toBytes("core");
  for (int i = 0; i < 30; ++i) nested = seal(t_.v1, kEvents, t_.town.division, i, kT0, nested);
  auto opened = open(seal(t_.v1, kEvents, t_.town.division, 100, kT0, nested), t_.town.division);
  ASSERT_TRUE(opened.isOk()) << opened.status().toString();
  EXPECT_EQ(opened->payload, nested);

  Bytes big(250 * 1024, 0xAB);
  Bytes sealed = seal(t_.v1, kEvents, t_.town.division, 101, kT0, big);
  ASSERT_LE(sealed.size(), EnvelopeLimits{}.max_bytes);
  opened = open(sealed, t_.town.division);
  ASSERT_TRUE(opened.isOk()) << opened.status().toString();
  EXPECT_EQ(opened->payload.size(), big.size());
}

// ---- 1. size ----

TEST_F(TrustTest, OversizeMessageIsRejectedAndOneAtTheLimitIsAccepted) {
  Bytes sealed = seal(t_.v1, kEvents, t_.town.division, 1, kT0, Bytes(2000, 1));
  EnvelopeLimits at_limit;
  at_limit.max_bytes = sealed.size();
  EXPECT_TRUE(makeVerifier(at_limit).open(sealed, t_.town.division, kT0, nullptr).isOk());
  EnvelopeLimits below;
  below.max_bytes = sealed.size() - 1;
  EXPECT_EQ(makeVerifier(below).open(sealed, t_.town.division, kT0, nullptr).status().code(), ErrorCode::kOversize);
  // The default cap, too, with bytes that would not even decode.
  EXPECT_EQ(codeOf(Bytes(EnvelopeLimits{}.max_bytes + 8, 0), t_.town.division), ErrorCode::kOversize);
}

// ---- 2. frame and signature ----

TEST_F(TrustTest, TruncatedBytesAreMalformed) {
  Bytes sealed = upFromV1();
  for (size_t size = 0; size < sealed.size(); size += 8) {
    Bytes cut(sealed.begin(), sealed.begin() + static_cast<std::ptrdiff_t>(size));
    EXPECT_EQ(codeOf(cut, t_.town.division), ErrorCode::kMalformed) << "cut at " << size;
  }
}

TEST_F(TrustTest, SizeThatIsNotAMultipleOfEightIsMalformed) {
  Bytes sealed = upFromV1();
  sealed.push_back(0);
  EXPECT_EQ(codeOf(sealed, t_.town.division), ErrorCode::kMalformed);
  sealed.resize(sealed.size() - 2);
  EXPECT_EQ(codeOf(sealed, t_.town.division), ErrorCode::kMalformed);
}

TEST_F(TrustTest, GarbageBytesAreMalformed) {
  std::mt19937 rng(20261123);
  for (int i = 0; i < 200; ++i) {
    Bytes junk(8 * (1 + rng() % 64));
    for (auto& b : junk) b = static_cast<uint8_t>(rng());
    EXPECT_EQ(codeOf(junk, t_.town.division), ErrorCode::kMalformed) << "garbage #" << i;
    // Behind a plausible one-segment frame header, so the pointers themselves are decoded.
    const uint32_t words = static_cast<uint32_t>(junk.size() / 8 - 1);
    std::memset(junk.data(), 0, 4);
    std::memcpy(junk.data() + 4, &words, 4);
    EXPECT_EQ(codeOf(junk, t_.town.division), ErrorCode::kMalformed) << "framed garbage #" << i;
  }
}

TEST_F(TrustTest, CorrectlySignedGarbageBodyIsMalformed) {
  std::mt19937 rng(7);
  for (int i = 0; i < 200; ++i) {
    Bytes body(8 * (1 + rng() % 64));
    for (auto& b : body) b = static_cast<uint8_t>(rng());
    SealedFields f{body, bytes(t_.v1.keys.public_key), signedBy(t_.v1.keys.secret_key, body)};
    EXPECT_EQ(codeOf(reseal(f), t_.town.division), ErrorCode::kMalformed) << "garbage body #" << i;
  }
}

TEST_F(TrustTest, TrailingBytesAfterTheFrameAreMalformed) {
  Bytes sealed = upFromV1();
  sealed.insert(sealed.end(), 8, 0);
  EXPECT_EQ(codeOf(sealed, t_.town.division), ErrorCode::kMalformed);
}

TEST_F(TrustTest, SignerKeyOfTheWrongLengthIsMalformed) {
  SealedFields f = unseal(upFromV1());
  f.signer_key.pop_back();
  EXPECT_EQ(codeOf(reseal(f), t_.town.division), ErrorCode::kMalformed);
}

TEST_F(TrustTest, TamperedPayloadIsRejectedAsBadSignature) {
  Bytes sealed = seal(t_.v1, kEvents, t_.town.division, 1, kT0, toBytes("approve case 17"));
  SealedFields f = unseal(sealed);
  Bytes needle = toBytes("approve");
  auto at = std::search(f.body.begin(), f.body.end(), needle.begin(), needle.end());
  ASSERT_NE(at, f.body.end());
  *at ^= 0x20;  // "Approve"
  EXPECT_EQ(codeOf(reseal(f), t_.town.division), ErrorCode::kBadSignature);

  // Flipping the same byte in place in the sealed bytes is caught the same way.
  auto in_sealed = std::search(sealed.begin(), sealed.end(), needle.begin(), needle.end());
  ASSERT_NE(in_sealed, sealed.end());
  *in_sealed ^= 0x20;
  EXPECT_EQ(codeOf(sealed, t_.town.division), ErrorCode::kBadSignature);
}

TEST_F(TrustTest, BodyReSignedWithAnotherKeyButClaimingTheSignerIsBadSignature) {
  SealedFields f = unseal(upFromV1());
  f.signature = signedBy(keysFor(99).secret_key, f.body);  // signer_key still names v1's key
  EXPECT_EQ(codeOf(reseal(f), t_.town.division), ErrorCode::kBadSignature);
}

// ---- 3. body ----

TEST_F(TrustTest, NonCanonicalBodyIsMalformedEvenWhenCorrectlySigned) {
  Bytes body = nonCanonicalBody(t_.v1, kEvents, t_.town.division);
  SealedFields f{body, bytes(t_.v1.keys.public_key), signedBy(t_.v1.keys.secret_key, body)};
  auto opened = open(reseal(f), t_.town.division);
  EXPECT_EQ(opened.status().code(), ErrorCode::kMalformed);
  EXPECT_NE(opened.status().message().find("canonical"), std::string::npos) << opened.status().message();

  // The same content in canonical form passes: only the encoding was at fault.
  Bytes canon = canonicalOf(body);
  ASSERT_NE(canon, body);
  SealedFields ok{canon, bytes(t_.v1.keys.public_key), signedBy(t_.v1.keys.secret_key, canon)};
  EXPECT_TRUE(open(reseal(ok), t_.town.division).isOk());

  // A canonical body with a padding word appended is not canonical either.
  Bytes padded = canon;
  padded.insert(padded.end(), 8, 0);
  SealedFields pad{padded, bytes(t_.v1.keys.public_key), signedBy(t_.v1.keys.secret_key, padded)};
  EXPECT_EQ(codeOf(reseal(pad), t_.town.division), ErrorCode::kMalformed);
}

TEST_F(TrustTest, ChainLongerThanTheLimitIsMalformed) {
  EnvelopeLimits limits;
  limits.max_chain_length = 2;
  EXPECT_EQ(makeVerifier(limits).open(upFromV1(), t_.town.division, kT0, nullptr).status().code(),
            ErrorCode::kMalformed);
}

// Its own code (still check 3): the receiver's clock may be the wrong one, so it is retried.
TEST_F(TrustTest, TimestampBeyondTheAllowedClockSkewIsFutureDated) {
  const DurationMs skew = EnvelopeLimits{}.max_future_skew_ms;
  EXPECT_TRUE(open(upFromV1(1, kT0 + skew), t_.town.division).isOk());
  EXPECT_EQ(open(upFromV1(2, kT0 + skew + 1), t_.town.division).status().code(), ErrorCode::kFutureDated);
  EXPECT_EQ(open(upFromV1(3, INT64_MAX), t_.town.division, nullptr, -kT0).status().code(), ErrorCode::kFutureDated);
}

// ---- 4. chain ----

TEST_F(TrustTest, AnotherKeyClaimingToBeTheSignerIsAnUntrustedChain) {
  SealedFields f = unseal(upFromV1());
  KeyPair attacker = keysFor(99);
  f.signer_key = bytes(attacker.public_key);
  f.signature = signedBy(attacker.secret_key, f.body);  // a valid signature, by the wrong key
  EXPECT_EQ(codeOf(reseal(f), t_.town.division), ErrorCode::kUntrustedChain);
}

TEST_F(TrustTest, VillageSpeakingAsItsTownIsAnUntrustedChain) {
  Identity impostor = t_.v1;
  impostor.division = t_.town.division;
  EXPECT_EQ(codeOf(seal(impostor, kEvents, t_.district.division), t_.district.division), ErrorCode::kUntrustedChain);
}

TEST_F(TrustTest, NodeWithoutAChainPosingAsTheCityIsAnUntrustedChain) {
  Identity impostor = t_.city;
  impostor.keys = keysFor(99);
  EXPECT_EQ(codeOf(seal(impostor, kCatalogue, t_.district.division), t_.district.division),
            ErrorCode::kUntrustedChain);
  Identity chainless = t_.town;
  chainless.chain.clear();
  EXPECT_EQ(codeOf(seal(chainless, kEvents, t_.district.division), t_.district.division),
            ErrorCode::kUntrustedChain);
}

TEST_F(TrustTest, ChainToAForeignRootIsUntrusted) {
  // Another city altogether.
  Identity foreign = createRootIdentity(code("440700000000"), "江门市", keysFor(50), kFrom, kUntil).value();
  Identity fd = child(foreign, "440703000000", 51);
  Identity ft = child(fd, "440703001000", 52);
  auto opened = open(seal(child(ft, "440703001001", 53), kEvents, ft.division), ft.division);
  EXPECT_EQ(opened.status().code(), ErrorCode::kUntrustedChain);
  EXPECT_NE(opened.status().message().find("not by this network's root 440600000000"), std::string::npos)
      << opened.status().message();

  // A rogue root using our city's code but its own key.
  Identity rogue = createRootIdentity(code("440600000000"), "佛山市", keysFor(60), kFrom, kUntil).value();
  Identity rd = child(rogue, "440604000000", 61);
  Identity rt = child(rd, "440604001000", 62);
  opened = open(seal(child(rt, "440604001001", 63), kEvents, t_.town.division), t_.town.division);
  EXPECT_EQ(opened.status().code(), ErrorCode::kUntrustedChain);
  EXPECT_NE(opened.status().message().find("certificate of 440604000000 is signed by a key that is not 440600000000's"),
            std::string::npos)
      << opened.status().message();
}

TEST_F(TrustTest, CertificateSignedByTheWrongAncestorIsUntrusted) {
  // The district signs a village certificate naming the town as issuer: levels skipped.
  KeyPair vk = keysFor(70);
  CertificateInfo info{9, code("440604001001"), vk.public_key, t_.town.division, kFrom, kUntil, "v"};
  Identity skipped = t_.v1;
  skipped.keys = vk;
  skipped.certificate = signCertificate(info, t_.district.keys.secret_key).value();
  skipped.chain = {skipped.certificate, t_.town.chain[0], t_.town.chain[1]};
  auto opened = open(seal(skipped, kEvents, t_.town.division), t_.town.division);
  EXPECT_EQ(opened.status().code(), ErrorCode::kUntrustedChain);
  EXPECT_NE(opened.status().message().find("certificate of 440604001001 is signed by a key that is not 440604001000's"),
            std::string::npos)
      << opened.status().message();

  // A district certifying a village directly (not its child) is refused as well.
  Identity direct = t_.v1;
  direct.keys = vk;
  CertificateInfo info2{10, code("440604001001"), vk.public_key, t_.district.division, kFrom, kUntil, "v"};
  direct.certificate = signCertificate(info2, t_.district.keys.secret_key).value();
  direct.chain = {direct.certificate, t_.district.chain[0]};
  EXPECT_EQ(codeOf(seal(direct, kEvents, t_.town.division), t_.town.division), ErrorCode::kUntrustedChain);
}

TEST_F(TrustTest, ChainInTheWrongOrderIsUntrusted) {
  Identity shuffled = t_.v1;
  std::swap(shuffled.chain[1], shuffled.chain[2]);
  EXPECT_EQ(codeOf(seal(shuffled, kEvents, t_.town.division), t_.town.division), ErrorCode::kUntrustedChain);
}

// ---- 5. validity period ----

TEST_F(TrustTest, MessageAfterTheCertificateExpiredIsRejected) {
  Identity old = child(t_.town, "440604001003", 80, kFrom, kT0);  // valid until kT0, exclusive
  EXPECT_TRUE(open(seal(old, kEvents, t_.town.division, 1, kT0 - 1), t_.town.division).isOk());
  EXPECT_EQ(codeOf(seal(old, kEvents, t_.town.division, 2, kT0), t_.town.division), ErrorCode::kCertificateExpired);
}

TEST_F(TrustTest, MessageBeforeTheCertificateIsValidIsRejected) {
  Identity early = child(t_.town, "440604001003", 81, kT0 + 1, kUntil);
  EXPECT_EQ(codeOf(seal(early, kEvents, t_.town.division, 1, kT0), t_.town.division), ErrorCode::kCertificateExpired);
}

TEST_F(TrustTest, ExpiredIssuerInTheChainExpiresTheMessage) {
  Identity short_town = child(t_.district, "440604002000", 82, kFrom, kT0 - kDay);
  Identity village = child(short_town, "440604002001", 83);
  EXPECT_EQ(codeOf(seal(village, kEvents, short_town.division), short_town.division), ErrorCode::kCertificateExpired);
}

// ---- 6. revocation ----

TEST_F(TrustTest, RevokedKeyRejectsMessagesFromTheRevocationTimeOn) {
  Verifier v = makeVerifier({});
  auto rev = signKeyRevocation(t_.town, t_.v1.division, t_.v1.keys.public_key, kT0, "laptop lost");
  ASSERT_TRUE(rev.isOk()) << rev.status().toString();
  ASSERT_TRUE(v.addRevocation(*rev).isOk()) << v.addRevocation(*rev).toString();
  EXPECT_TRUE(v.open(upFromV1(1, kT0 - 1), t_.town.division, kT0, nullptr).isOk());
  EXPECT_EQ(v.open(upFromV1(2, kT0), t_.town.division, kT0, nullptr).status().code(), ErrorCode::kRevoked);
  EXPECT_EQ(v.open(upFromV1(3, kT0 + 1), t_.town.division, kT0 + 1, nullptr).status().code(), ErrorCode::kRevoked);
  // The sibling is unaffected.
  EXPECT_TRUE(v.open(seal(t_.v2, kEvents, t_.town.division), t_.town.division, kT0, nullptr).isOk());
}

TEST_F(TrustTest, RevokedIssuerKeyRejectsItsWholeSubtree) {
  Verifier v = makeVerifier({});
  auto rev = signKeyRevocation(t_.city, t_.town.division, t_.town.keys.public_key, kT0 - kDay, "compromised");
  ASSERT_TRUE(rev.isOk());
  ASSERT_TRUE(v.addRevocation(*rev).isOk());
  EXPECT_EQ(v.open(upFromV1(), t_.town.division, kT0, nullptr).status().code(), ErrorCode::kRevoked);
  EXPECT_EQ(v.open(seal(t_.v2, kEvents, t_.town.division), t_.town.division, kT0, nullptr).status().code(),
            ErrorCode::kRevoked);
}

TEST_F(TrustTest, RevocationFromANonAncestorIsRefused) {
  EXPECT_EQ(signKeyRevocation(t_.v2, t_.v1.division, t_.v1.keys.public_key, kT0, "x").status().code(),
            ErrorCode::kInvalidArgument);
  Verifier v = makeVerifier({});
  Bytes forged = forgeRevocation(t_.v2, t_.v1.division, t_.v1.keys.public_key, kT0);
  EXPECT_EQ(v.addRevocation(forged).code(), ErrorCode::kUnauthorized);
  EXPECT_TRUE(v.open(upFromV1(), t_.town.division, kT0, nullptr).isOk());
  // Signed by one key but presented with someone else's chain.
  Identity liar = t_.v2;
  liar.chain = t_.town.chain;
  liar.division = t_.town.division;
  EXPECT_EQ(v.addRevocation(forgeRevocation(liar, t_.v1.division, t_.v1.keys.public_key, kT0)).code(),
            ErrorCode::kBadSignature);
}

// ---- 7. authority ----

TEST_F(TrustTest, VillageSigningAnUpMessageForASiblingIsUnauthorized) {
  auto opened = open(seal(t_.v1, kEvents, t_.v2.division), t_.v2.division);
  EXPECT_EQ(opened.status().code(), ErrorCode::kUnauthorized);
  EXPECT_NE(opened.status().message().find("440604001001"), std::string::npos);
}

TEST_F(TrustTest, VillageSendingUpToItsGrandparentDirectlyIsUnauthorized) {
  EXPECT_EQ(codeOf(seal(t_.v1, kEvents, t_.district.division), t_.district.division), ErrorCode::kUnauthorized);
}

TEST_F(TrustTest, TownSendingDownOutsideItsSubtreeIsUnauthorized) {
  // A village under another town of the same district.
  EXPECT_EQ(codeOf(seal(t_.town, kCatalogue, code("440604002001")), code("440604002001")),
            ErrorCode::kUnauthorized);
  // Nor may a village send "down" to itself or a sibling.
  EXPECT_EQ(codeOf(seal(t_.v1, kCatalogue, t_.v2.division), t_.v2.division), ErrorCode::kUnauthorized);
}

TEST_F(TrustTest, MessageForAnotherReceiverIsUnauthorized) {
  // A valid up message to the town, replayed at the district.
  EXPECT_EQ(codeOf(upFromV1(), t_.district.division), ErrorCode::kUnauthorized);
  EXPECT_EQ(codeOf(seal(t_.v1, kAnswer, t_.town.division), t_.district.division), ErrorCode::kUnauthorized);
}

TEST_F(TrustTest, UnknownKindIsUnauthorized) {
  EXPECT_EQ(codeOf(seal(t_.v1, kNobodyKnows, t_.town.division), t_.town.division), ErrorCode::kUnauthorized);
}

// ---- 8. replay ----

TEST_F(TrustTest, ReplayedAndRolledBackSequencesAreRejected) {
  MemoryReplayGuard guard;
  for (uint64_t seq : {5, 7}) {
    ASSERT_TRUE(open(upFromV1(seq), t_.town.division, &guard).isOk());
    guard.record(t_.v1.division.str(), seq);
  }
  EXPECT_EQ(codeOf(upFromV1(5), t_.town.division, &guard), ErrorCode::kReplay);
  EXPECT_EQ(codeOf(upFromV1(7), t_.town.division, &guard), ErrorCode::kReplay);
  EXPECT_EQ(codeOf(upFromV1(6), t_.town.division, &guard), ErrorCode::kRollback);
  EXPECT_TRUE(open(upFromV1(8), t_.town.division, &guard).isOk());
  // Another signer's sequences are its own.
  EXPECT_TRUE(open(seal(t_.v2, kEvents, t_.town.division, 5), t_.town.division, &guard).isOk());
  // Non-durable kinds are not sequence-checked.
  EXPECT_TRUE(open(seal(t_.v1, kHeartbeat, t_.town.division, 5), t_.town.division, &guard).isOk());
}

TEST(MemoryReplayGuard, VerdictsFollowTheRecordedSequences) {
  MemoryReplayGuard guard;
  EXPECT_EQ(*guard.check("a", 0), ReplayGuard::Verdict::kFresh);
  guard.record("a", 3);
  guard.record("a", 1);
  EXPECT_EQ(*guard.check("a", 1), ReplayGuard::Verdict::kReplay);
  EXPECT_EQ(*guard.check("a", 3), ReplayGuard::Verdict::kReplay);
  EXPECT_EQ(*guard.check("a", 2), ReplayGuard::Verdict::kRollback);
  EXPECT_EQ(*guard.check("a", 4), ReplayGuard::Verdict::kFresh);
  EXPECT_EQ(*guard.check("b", 1), ReplayGuard::Verdict::kFresh);
}

// ---- verifier set-up ----

TEST_F(TrustTest, VerifierRefusesARootThatIsNotASelfSignedCity) {
  EXPECT_EQ(Verifier::create(t_.district.certificate, &kinds_).status().code(), ErrorCode::kUntrustedChain);
  EXPECT_EQ(Verifier::create(toBytes("not a certificate"), &kinds_).status().code(), ErrorCode::kUntrustedChain);
  // Self-signed, but claiming to be issued by another city.
  KeyPair k = keysFor(90);
  CertificateInfo info{1, code("440600000000"), k.public_key, code("440700000000"), kFrom, kUntil, "x"};
  EXPECT_EQ(Verifier::create(signCertificate(info, k.secret_key).value(), &kinds_).status().code(),
            ErrorCode::kUntrustedChain);
  // A city certificate not signed by its own key.
  info.issuer = info.division;
  EXPECT_EQ(Verifier::create(signCertificate(info, keysFor(91).secret_key).value(), &kinds_).status().code(),
            ErrorCode::kUntrustedChain);
  EXPECT_EQ(verifier_.root().division, t_.city.division);
}

// ---- certificates ----

TEST(Certificate, RootIdentityIsRefusedForANonCityCode) {
  auto r = createRootIdentity(code("440604000000"), "district", keysFor(1), kFrom, kUntil);
  EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument);
}

TEST(Certificate, IssueChildIdentityRefusesAGrandchild) {
  Tree t = makeTree();
  auto r = issueChildIdentity(t.city, code("440604001000"), "town", keysFor(9), 9, kFrom, kUntil);
  EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument);
  Identity other = child(t.city, "440605000000", 10);
  r = issueChildIdentity(other, code("440604001001"), "v", keysFor(11), 11, kFrom, kUntil);
  EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(r.status().message(), "440604001001 is a village of town 440604001000, not a child of district 440605000000");
}

TEST(Certificate, ChildChainIsItsOwnCertificateThenItsParentsChain) {
  Tree t = makeTree();
  ASSERT_EQ(t.v1.chain.size(), 3u);
  EXPECT_EQ(t.v1.chain[0], t.v1.certificate);
  EXPECT_EQ(t.v1.chain[1], t.town.certificate);
  EXPECT_EQ(t.v1.chain[2], t.district.certificate);
  EXPECT_EQ(t.v1.root_certificate, t.city.certificate);
  EXPECT_EQ(t.city.certificate, t.city.root_certificate);
}

TEST(Certificate, DecodeChecksTheIssuerKeyAndPeekDoesNot) {
  Tree t = makeTree();
  auto info = decodeCertificate(t.v1.certificate, t.town.keys.public_key);
  ASSERT_TRUE(info.isOk()) << info.status().toString();
  EXPECT_EQ(info->division, t.v1.division);
  EXPECT_EQ(info->issuer, t.town.division);
  EXPECT_EQ(info->public_key, t.v1.keys.public_key);
  EXPECT_EQ(info->level(), Level::kVillage);
  EXPECT_EQ(info->valid_from_ms, kFrom);
  EXPECT_EQ(info->valid_until_ms, kUntil);
  EXPECT_EQ(decodeCertificate(t.v1.certificate, t.district.keys.public_key).status().code(), ErrorCode::kBadSignature);
  EXPECT_TRUE(peekCertificate(t.v1.certificate).isOk());
  Bytes cut(t.v1.certificate.begin(), t.v1.certificate.end() - 8);
  EXPECT_EQ(peekCertificate(cut).status().code(), ErrorCode::kMalformed);
}

TEST(Certificate, EmptyValidityPeriodIsRefused) {
  KeyPair k = keysFor(1);
  CertificateInfo info{1, code("440600000000"), k.public_key, code("440600000000"), kT0, kT0, "x"};
  EXPECT_EQ(signCertificate(info, k.secret_key).status().code(), ErrorCode::kInvalidArgument);
}

TEST(Keys, FromSeedIsDeterministicAndSignaturesVerify) {
  EXPECT_EQ(keysFor(7).public_key, keysFor(7).public_key);
  EXPECT_NE(keysFor(7).public_key, keysFor(8).public_key);
  KeyPair k = KeyPair::generate();
  Bytes msg = toBytes("hello");
  Signature sig = sign(k.secret_key, msg.data(), msg.size());
  EXPECT_TRUE(verifySignature(k.public_key, msg.data(), msg.size(), sig));
  msg[0] ^= 1;
  EXPECT_FALSE(verifySignature(k.public_key, msg.data(), msg.size(), sig));
}

// ---- key directories ----

TEST(KeyDir, SaveThenLoadRoundTripsAVillage) {
  Tree t = makeTree();
  testing::TempDir dir;
  const std::string kd = dir.file("v1");
  ASSERT_TRUE(saveIdentity(kd, t.v1).isOk());
  auto loaded = loadIdentity(kd);
  ASSERT_TRUE(loaded.isOk()) << loaded.status().toString();
  EXPECT_EQ(loaded->division, t.v1.division);
  EXPECT_EQ(loaded->name, t.v1.name);
  EXPECT_EQ(loaded->keys.public_key, t.v1.keys.public_key);
  EXPECT_EQ(loaded->keys.secret_key, t.v1.keys.secret_key);
  EXPECT_EQ(loaded->certificate, t.v1.certificate);
  EXPECT_EQ(loaded->chain, t.v1.chain);
  EXPECT_EQ(loaded->root_certificate, t.v1.root_certificate);

  struct stat st {};
  ASSERT_EQ(::stat((kd + "/node.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  // The layout: issuers parent first, up to and including the root.
  EXPECT_TRUE(std::filesystem::exists(kd + "/chain/00.cert"));
  EXPECT_TRUE(std::filesystem::exists(kd + "/chain/02.cert"));
  EXPECT_FALSE(std::filesystem::exists(kd + "/chain/03.cert"));
}

TEST(KeyDir, SaveThenLoadRoundTripsTheRoot) {
  Tree t = makeTree();
  testing::TempDir dir;
  ASSERT_TRUE(saveIdentity(dir.path(), t.city).isOk());
  auto loaded = loadIdentity(dir.path());
  ASSERT_TRUE(loaded.isOk()) << loaded.status().toString();
  EXPECT_TRUE(loaded->chain.empty());
  EXPECT_EQ(loaded->certificate, loaded->root_certificate);
  EXPECT_EQ(loaded->division, t.city.division);
}

TEST(KeyDir, SaveRefusesToOverwriteANodeKey) {
  Tree t = makeTree();
  testing::TempDir dir;
  ASSERT_TRUE(saveIdentity(dir.path(), t.v1).isOk());
  EXPECT_EQ(saveIdentity(dir.path(), t.v2).code(), ErrorCode::kAlreadyExists);
  EXPECT_EQ(loadIdentity(dir.path())->keys.public_key, t.v1.keys.public_key);
}

TEST(KeyDir, LoadNamesTheMissingFile) {
  Tree t = makeTree();
  testing::TempDir dir;
  ASSERT_TRUE(saveIdentity(dir.path(), t.v1).isOk());
  std::filesystem::remove(dir.file("node.cert"));
  auto loaded = loadIdentity(dir.path());
  EXPECT_EQ(loaded.status().code(), ErrorCode::kNotFound);
  EXPECT_NE(loaded.status().message().find("node.cert"), std::string::npos) << loaded.status().message();
  EXPECT_EQ(loadIdentity(dir.file("nowhere")).status().code(), ErrorCode::kNotFound);
}

TEST(KeyDir, LoadRejectsAPublicKeyThatDoesNotMatchTheSecretKey) {
  Tree t = makeTree();
  testing::TempDir dir;
  ASSERT_TRUE(saveIdentity(dir.path(), t.v1).isOk());
  {
    std::ofstream out(dir.file("node.pub"), std::ios::trunc);
    out << hexEncode(t.v2.keys.public_key.data(), 32) << "\n";
  }
  EXPECT_EQ(loadIdentity(dir.path()).status().code(), ErrorCode::kCorrupt);
}

}  // namespace
}  // namespace tongban
