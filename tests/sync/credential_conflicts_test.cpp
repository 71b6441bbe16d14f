// Credentials when things arrive late, twice, out of order or from a bad clock, on real nodes in
// the simulated world (virtual clock): a status record dated ahead of a node's clock waits and
// then arrives everywhere; a key revocation takes out what the key signed afterwards whichever
// arrived first, and a notice signed by the revoked key stalls nothing; a suspension and a
// concurrent renewal converge on "suspended, new version"; a renewal reaches the hall that
// accepted a forwarded case; authority is judged by the catalogue version a credential was issued
// under; two documents for one version leave one winner; versions and times are bounded.
#include <gtest/gtest.h>

#include "node/credentials/credential_wire.h"
#include "tests/sync/credential_tree.h"

namespace tongban {
namespace {

using namespace testing;

const char* const kEveryNode[] = {kCity, kDistrict, kTown, kVillage, kOtherVillage};

class CredentialConflictTest : public CredentialTest {
 protected:
  // A status record as `signer` seals it (the service makes these; tests make odd ones).
  Bytes sealedStatus(const char* signer, const CredentialStatusInfo& s, uint32_t current, TimeMs signed_at) {
    SealParams p;
    p.kind = kCredentialStatusKind;
    p.timestamp_ms = signed_at;
    p.target = DivisionCode::parse(signer).value();
    p.payload = encodeStatus(s, current);
    return sealEnvelope(identities_[signer], p);
  }

  Result<bool> applyFeedEntryAt(const char* code, const Bytes& entry) {
    auto txn = at(code).database().begin();
    EXPECT_TRUE(txn.isOk());
    auto applied = at(code).credentials().applyFeedEntry(entry, world_.now());
    if (applied.isOk()) {
      EXPECT_TRUE(txn->commit().isOk());
    }
    return applied;
  }

  int64_t count(const char* code, const std::string& sql) {
    auto stmt = at(code).database().prepare(sql);
    EXPECT_TRUE(stmt.isOk());
    EXPECT_TRUE(stmt->step().value());
    return stmt->columnInt64(0);
  }

  // The city publishes a catalogue in which `item` is decided at `level`; returns its version.
  uint64_t moveItem(const std::string& item, Level level) {
    Catalogue next = *at(kCity).catalogue().current();
    for (auto& i : next.items) {
      if (i.code == item) i.decide_level = level;
    }
    auto version = at(kCity).catalogue().publish(identities_[kCity], next, world_.now());
    EXPECT_TRUE(version.isOk()) << version.status().toString();
    return version.isOk() ? *version : 0;
  }
};

// A district whose clock runs 10 minutes ahead revokes a licence: every other node's clock says
// the record is from the future. It is not refused for good (the subtree would never learn of the
// revocation): it waits in the outbox and the feeds until the clocks get there, then arrives.
TEST_F(CredentialConflictTest, AStatusRecordDatedAheadOfOtherClocksWaitsAndThenReachesEveryNode) {
  startAll();
  auto [number, sealed] = businessLicence();
  const TimeMs ahead = world_.now() + 10 * 60'000;
  ASSERT_TRUE(at(kDistrict).credentials().setStatus(number, "revoked", "obtained by fraud", ahead).isOk());
  runFor(60'000);
  EXPECT_EQ(at(kVillage).credentials().verify(sealed, world_.now()).verdict, "valid") << "not yet acceptable here";
  EXPECT_EQ(at(kTown).feedState().skipped_total, 0u) << "not skipped for good";
  runFor(10 * 60'000);
  for (const char* code : kEveryNode) {
    EXPECT_EQ(at(code).credentials().verify(sealed, world_.now()).verdict, "revoked") << code;
    EXPECT_EQ(at(code).feedState().skipped_total, 0u) << code;
  }
}

// The revoked village's key wraps the (already published) revocation of itself in a notice: a
// node that holds the revocation recognises it before opening the notice, instead of failing
// on the notice's own signature forever.
TEST_F(CredentialConflictTest, AKeyRevocationNoticeSignedByTheRevokedKeyIsRecognisedWhereTheRevocationIsHeld) {
  startAll();
  const TimeMs revoked_at = world_.now() + 1000;
  auto revocation = signKeyRevocation(identities_[kTown], DivisionCode::parse(kOtherVillage).value(),
                                      identities_[kOtherVillage].keys.public_key, revoked_at, "village laptop lost");
  ASSERT_TRUE(revocation.isOk());
  runFor(2000);
  ASSERT_TRUE(at(kTown).credentials().publishKeyRevocation(*revocation, world_.now()).isOk());
  runFor(20'000);
  SealParams p;
  p.kind = kKeyRevocationNoticeKind;
  p.timestamp_ms = world_.now();
  p.target = DivisionCode::parse(kOtherVillage).value();
  p.payload = *revocation;
  const Bytes by_the_thief = sealEnvelope(identities_[kOtherVillage], p);
  auto applied = applyFeedEntryAt(kVillage, by_the_thief);
  ASSERT_TRUE(applied.isOk()) << applied.status().toString();
  EXPECT_FALSE(*applied) << "known: not passed on again";
  // A revocation the node does not hold yet, in a notice whose own signer's key is revoked, still
  // counts: the revocation carries its own authority (the town's), not the notice's.
  auto other = signKeyRevocation(identities_[kTown], DivisionCode::parse(kVillage).value(),
                                 identities_[kVillage].keys.public_key, world_.now() + 3'600'000, "retired laptop");
  ASSERT_TRUE(other.isOk());
  p.payload = *other;
  auto taken = applyFeedEntryAt(kCity, sealEnvelope(identities_[kOtherVillage], p));
  ASSERT_TRUE(taken.isOk()) << taken.status().toString();
  EXPECT_TRUE(*taken);
}

// The city suspends a district's licence while the district, cut off from it, renews the
// licence: every node sees the two in one order or the other (the city its own suspension
// first, the town below the district the renewal first). The renewal takes no part in the
// status order, so it cannot erase the suspension; the new version is known everywhere.
TEST_F(CredentialConflictTest, AConcurrentSuspensionAndRenewalConvergeToSuspendedAndTheNewVersionEverywhere) {
  startAll();
  auto [number, old_copy] = businessLicence();
  world_.setLinkUp(DivisionCode::parse(kDistrict).value(), false);
  ASSERT_TRUE(at(kCity).credentials().setStatus(number, "suspended", "under investigation", world_.now()).isOk());
  runFor(1000);
  auto renewed = at(kDistrict).credentials().renew(number, std::nullopt, {}, world_.now());
  ASSERT_TRUE(renewed.isOk()) << renewed.status().toString();
  runFor(10'000);
  EXPECT_EQ(at(kTown).credentials().verify(*renewed, world_.now()).verdict, "valid") << "the suspension is not here yet";
  world_.setLinkUp(DivisionCode::parse(kDistrict).value(), true);
  runFor(30'000);
  for (const char* code : kEveryNode) {
    Verification old_v = at(code).credentials().verify(old_copy, world_.now());
    EXPECT_EQ(old_v.verdict, "superseded") << code << ": " << old_v.reason;
    EXPECT_EQ(old_v.current_version, 2u) << code;
    Verification new_v = at(code).credentials().verify(*renewed, world_.now());
    EXPECT_EQ(new_v.verdict, "suspended") << code << ": " << new_v.reason;
    ASSERT_TRUE(new_v.status.has_value()) << code;
    EXPECT_EQ(new_v.status->by, kCity) << code;
  }
}

// A status record that loses the status order still tells every node of the newer version.
TEST_F(CredentialConflictTest, TheNewestVersionIsLearntFromAStatusRecordThatLosesTheStatusOrder) {
  startAll();
  auto [number, old_copy] = businessLicence();
  ASSERT_TRUE(at(kDistrict).credentials().setStatus(number, "revoked", "fraud", world_.now()).isOk());
  runFor(20'000);
  // An older suspension (version 1 too, earlier) that announces version 3: it loses to the
  // revocation, and its announcement counts anyway.
  const Bytes loser = sealedStatus(kCity, {number, "suspended", 1, world_.now() - 5000, kCity, "city", "late"}, 3,
                                   world_.now() - 5000);
  auto applied = applyFeedEntryAt(kVillage, loser);
  ASSERT_TRUE(applied.isOk()) << applied.status().toString();
  EXPECT_TRUE(*applied) << "new here: passed on";
  Verification v = at(kVillage).credentials().verify(old_copy, world_.now());
  EXPECT_EQ(v.verdict, "revoked");
  EXPECT_EQ(v.current_version, 3u);
}

// A credential of a forwarded case lives at the hall that accepted the case too: its renewal
// goes down to it, so the citizen collects the new text where they applied.
TEST_F(CredentialConflictTest, ARenewedForwardedCaseCredentialReachesTheHallThatAcceptedTheCase) {
  startAll();
  const std::string case_number = concludeCase(kVillage, kDistrict, "HW-0012", kPerson);
  const std::string number = at(kVillage).cases().get(case_number)->credential;
  ASSERT_FALSE(number.empty());
  const Bytes first = sealedOf(kVillage, number);
  auto renewed = at(kDistrict).credentials().renew(number, std::nullopt, {}, world_.now());
  ASSERT_TRUE(renewed.isOk()) << renewed.status().toString();
  runFor(20'000);
  EXPECT_EQ(held(kVillage, number).version, 2u) << "the accepting hall holds the new version";
  EXPECT_EQ(sealedOf(kVillage, number), *renewed);
  EXPECT_FALSE(at(kTown).credentials().sealed(number)->has_value()) << "the hop on the way keeps nothing";
  EXPECT_EQ(at(kVillage).credentials().verify(first, world_.now()).verdict, "superseded");
}

// Authority is judged by the catalogue a credential was issued under: moving an item to another
// level changes who issues it from then on, not what was issued before.
TEST_F(CredentialConflictTest, ACredentialIssuedBeforeItsItemMovedToAnotherLevelStaysValid) {
  startAll();
  auto [number, sealed] = businessLicence();
  const uint64_t moved = moveItem("SC-0001", Level::kCity);
  runFor(20'000);
  ASSERT_EQ(at(kOtherVillage).catalogue().version(), moved);
  for (const char* code : kEveryNode) {
    Verification v = at(code).credentials().verify(sealed, world_.now());
    EXPECT_EQ(v.verdict, "valid") << code << ": " << v.reason;
  }
  CredentialInfo late = draft(kDistrict, std::string(kDistrict) + "-L00000300", world_.now());
  late.catalogue_version = moved;
  Verification v = at(kVillage).credentials().verify(signCredential(identities_[kDistrict], late), world_.now());
  EXPECT_EQ(v.verdict, "invalid");
  EXPECT_NE(v.reason.find("decided at city level"), std::string::npos) << v.reason;
}

// During a rollout the district still holds the old catalogue and issues under it; the city,
// already on the new one, takes the credential (its history says the district had authority then).
TEST_F(CredentialConflictTest, ACredentialIssuedUnderTheCatalogueTheIssuerHeldIsAcceptedByAParentWithANewerOne) {
  startAll();
  world_.setLinkUp(DivisionCode::parse(kDistrict).value(), false);
  moveItem("SC-0001", Level::kCity);
  auto [number, sealed] = businessLicence();
  world_.setLinkUp(DivisionCode::parse(kDistrict).value(), true);
  runFor(30'000);
  EXPECT_TRUE(at(kCity).credentials().sealed(number)->has_value()) << "not refused for good";
  EXPECT_EQ(at(kCity).credentials().verify(sealed, world_.now()).verdict, "valid");
}

// A reader without the catalogue version a credential names cannot judge it yet: unknown (and
// kUnavailable, a retry, for a relayed one), never "invalid" for good.
TEST_F(CredentialConflictTest, ACredentialNamingACatalogueVersionNotHeldHereIsUnknownAndRetried) {
  startAll();
  CredentialInfo ahead = draft(kDistrict, std::string(kDistrict) + "-L00000301", world_.now());
  ahead.catalogue_version = at(kVillage).catalogue().version() + 1;
  const Bytes sealed = signCredential(identities_[kDistrict], ahead);
  Verification v = at(kVillage).credentials().verify(sealed, world_.now());
  EXPECT_EQ(v.verdict, "unknown") << v.reason;
  EXPECT_NE(v.reason.find("newer catalogue"), std::string::npos) << v.reason;
  auto txn = at(kCity).database().begin();
  EXPECT_EQ(at(kCity).credentials().acceptCredential(sealed, world_.now()).status().code(), ErrorCode::kUnavailable);
}

// A lost village laptop: after the revocation time its key suspends a genuine certificate and
// issues another. Most nodes store both before the revocation reaches them; the village that
// publishes the revocation, cut off meanwhile, gets them after. Everywhere the result is the
// same: neither is in force, the genuine certificate is valid, and listing the holder works.
TEST_F(CredentialConflictTest, AKeyRevocationTakesOutWhatTheKeySignedAfterItsTimeWhicheverArrivedFirst) {
  startAll();
  auto [early, early_sealed] = socialInsuranceCertificate();
  const TimeMs revoked_at = world_.now() + 1000;
  auto revocation = signKeyRevocation(identities_[kTown], DivisionCode::parse(kOtherVillage).value(),
                                      identities_[kOtherVillage].keys.public_key, revoked_at, "village laptop lost");
  ASSERT_TRUE(revocation.isOk());
  runFor(2000);
  world_.setLinkUp(DivisionCode::parse(kVillage).value(), false);
  ASSERT_TRUE(at(kOtherVillage).credentials().setStatus(early, "suspended", "by the thief", world_.now()).isOk());
  const std::string late_case = concludeCase(kOtherVillage, kOtherVillage, "SI-0001", kPerson);
  const std::string late = at(kOtherVillage).cases().get(late_case)->credential;
  ASSERT_FALSE(late.empty());
  runFor(20'000);
  ASSERT_TRUE(at(kCity).credentials().sealed(late)->has_value()) << "stored before the revocation came";
  ASSERT_EQ(at(kCity).credentials().verify(early_sealed, world_.now()).verdict, "suspended");
  ASSERT_TRUE(at(kVillage).credentials().publishKeyRevocation(*revocation, world_.now()).isOk());
  world_.setLinkUp(DivisionCode::parse(kVillage).value(), true);
  runFor(30'000);
  // (The village whose key it is has been cut off by it: its own requests no longer verify.)
  for (const char* code : {kCity, kDistrict, kTown, kVillage}) {
    EXPECT_FALSE(at(code).credentials().sealed(late)->has_value()) << code;
    EXPECT_FALSE(at(code).credentials().status(early)->has_value()) << code << ": the thief's suspension is out";
    EXPECT_EQ(at(code).credentials().verify(early_sealed, world_.now()).verdict, "valid") << code;
    auto listed = at(code).credentials().listByHolder(kPerson);
    ASSERT_TRUE(listed.isOk()) << code << ": " << listed.status().toString();
    for (const auto& c : *listed) EXPECT_NE(c.number, late) << code;
  }
  EXPECT_EQ(at(kVillage).feedState().skipped_total, 1u) << "the suspension came after the revocation: skipped";
  EXPECT_EQ(count(kVillage, "SELECT COUNT(*) FROM feed_rejected WHERE outcome = 'REVOKED'"), 1);
}

// Two different documents claim version 1 of one number (an issuer restored from an old backup
// issued it again): in either arrival order the same one is kept, and the conflict is recorded.
TEST_F(CredentialConflictTest, TwoDocumentsForOneVersionLeaveTheSameWinnerInEitherOrderAndAreRecorded) {
  startAll();
  CredentialInfo a = draft(kDistrict, std::string(kDistrict) + "-L00000400", world_.now());
  a.facts = {{"address", "岭南大道1号"}};
  CredentialInfo b = draft(kDistrict, a.number, world_.now() + 1000);
  b.facts = {{"address", "岭南大道2号"}};
  const Bytes sealed_a = signCredential(identities_[kDistrict], a), sealed_b = signCredential(identities_[kDistrict], b);
  runFor(2000);
  for (const auto& [code, first, second] : {std::tuple{kCity, &sealed_a, &sealed_b}, std::tuple{kTown, &sealed_b, &sealed_a}}) {
    auto txn = at(code).database().begin();
    ASSERT_TRUE(at(code).credentials().acceptCredential(*first, world_.now()).isOk());
    auto again = at(code).credentials().acceptCredential(*second, world_.now());
    ASSERT_TRUE(again.isOk()) << again.status().toString();
    ASSERT_TRUE(txn->commit().isOk());
    EXPECT_EQ(sealedOf(code, a.number), sealed_b) << code << ": the later issue time wins";
    EXPECT_EQ(count(code, "SELECT COUNT(*) FROM credential_conflicts"), 1) << code;
  }
  auto txn = at(kCity).database().begin();
  EXPECT_FALSE(at(kCity).credentials().acceptCredential(sealed_b, world_.now()).value()) << "the same bytes: a re-delivery";
}

TEST_F(CredentialConflictTest, AStatusOrIdentityRecordDatedOtherwiseThanItsSignatureIsRefused) {
  startAll();
  auto [number, sealed] = businessLicence();
  const Bytes backdated = sealedStatus(kDistrict, {number, "revoked", 7, world_.now() - kDay, kDistrict, "d", "x"}, 1,
                                       world_.now());
  EXPECT_EQ(applyFeedEntryAt(kVillage, backdated).status().code(), ErrorCode::kMalformed);
  SealParams p;
  p.kind = kIdentityRecordKind;
  p.timestamp_ms = world_.now();
  p.target = DivisionCode::parse(kVillage).value();
  p.payload = encodeIdentity({kPerson, "张三", "person", {}, 1, world_.now() + kDay, kVillage});
  const Bytes postdated = sealEnvelope(identities_[kVillage], p);
  EXPECT_EQ(at(kTown).credentials().openIdentity(postdated, world_.now()).status().code(), ErrorCode::kMalformed);
  OpenedEnvelope relayed{DivisionCode::parse(kVillage).value(), kIdentityRecordUpKind, 1, world_.now(),
                         DivisionCode::parse(kTown).value(), postdated, 0, identities_[kVillage].keys.public_key, {}};
  auto txn = at(kTown).database().begin();
  EXPECT_EQ(at(kTown).credentials().applyFromChild(relayed, world_.now()).code(), ErrorCode::kMalformed);
}

// A signer cannot choose a version that makes the next one wrap: versions end at
// kMaxRecordVersion, and at the end setStatus says so instead of wrapping to 0.
TEST_F(CredentialConflictTest, StatusVersionsEndAtTheLimitAndSetStatusRefusesToGoPastIt) {
  startAll();
  auto [number, sealed] = businessLicence();
  const Bytes past = sealedStatus(kDistrict, {number, "suspended", kMaxRecordVersion + 1, world_.now(), kDistrict, "d", "x"},
                                  1, world_.now());
  EXPECT_EQ(applyFeedEntryAt(kDistrict, past).status().code(), ErrorCode::kMalformed);
  const Bytes last = sealedStatus(kDistrict, {number, "suspended", kMaxRecordVersion, world_.now(), kDistrict, "d", "x"},
                                  1, world_.now());
  ASSERT_TRUE(applyFeedEntryAt(kDistrict, last).isOk());
  auto lifted = at(kDistrict).credentials().setStatus(number, "active", "cleared", world_.now());
  EXPECT_EQ(lifted.status().code(), ErrorCode::kFailedPrecondition) << lifted.status().toString();
  EXPECT_EQ(at(kDistrict).credentials().status(number)->value().version, kMaxRecordVersion);
}

}  // namespace
}  // namespace tongban
