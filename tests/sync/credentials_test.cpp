// Credentials end to end on real nodes in the simulated world: issued when an approved case
// concludes at its decide level, held by every ancestor of the issuer and by the hall that
// accepted the case, verifiable offline anywhere, and revocable, suspendable and renewable with
// the news reaching every node through the feed.
#include <gtest/gtest.h>

#include "node/lookup/lookup.h"
#include "tests/sync/credential_tree.h"

namespace tongban {
namespace {

using namespace testing;

TEST_F(CredentialTest, ConcludingAnApprovedCaseIssuesACredentialHeldByEveryAncestorAndValidEverywhere) {
  startAll();
  auto [number, sealed] = businessLicence();
  EXPECT_EQ(number.rfind(std::string(kDistrict) + "-L", 0), 0u) << number;
  EXPECT_TRUE(at(kCity).credentials().sealed(number)->has_value()) << "every ancestor of the issuer holds it";
  EXPECT_FALSE(at(kTown).credentials().sealed(number)->has_value()) << "a descendant holds only what it accepted";

  Verification v = at(kOtherVillage).credentials().verifyText(credentialToText(sealed), world_.now());
  EXPECT_EQ(v.verdict, "valid") << v.reason;
  ASSERT_TRUE(v.credential.has_value());
  EXPECT_EQ(v.credential->holder_id, kCompany);
  EXPECT_EQ(v.credential->facts.front().second, "禅城区岭南大道1号");
  ASSERT_FALSE(v.chain.empty());
  EXPECT_EQ(v.chain.front().division.str(), kDistrict);
  EXPECT_GT(v.status_fresh_as_of_ms, kStart) << "the village says how fresh its status data is";
}

TEST_F(CredentialTest, AForwardedCasesCredentialIsHandedOverWhereTheCitizenApplied) {
  startAll();
  const std::string number = concludeCase(kVillage, kDistrict, "HW-0012", kPerson);
  auto at_village = at(kVillage).cases().get(number).value();
  ASSERT_EQ(at_village.state, CaseState::kConcluded);
  ASSERT_FALSE(at_village.credential.empty());
  EXPECT_TRUE(at(kVillage).credentials().sealed(at_village.credential)->has_value());
  EXPECT_TRUE(at(kCity).credentials().sealed(at_village.credential)->has_value());
  EXPECT_EQ(at(kVillage).credentials().verify(sealedOf(kVillage, at_village.credential), world_.now()).verdict, "valid");
}

TEST_F(CredentialTest, ATamperedOrTruncatedCredentialIsInvalidAndSaysWhy) {
  startAll();
  auto [number, sealed] = businessLicence();
  Bytes tampered = sealed;
  tampered[tampered.size() / 3] ^= 0x20;
  Verification t = at(kVillage).credentials().verify(tampered, world_.now());
  EXPECT_EQ(t.verdict, "invalid");
  EXPECT_FALSE(t.reason.empty());

  Bytes cut(sealed.begin(), sealed.begin() + static_cast<long>(sealed.size() / 2));
  Verification c = at(kVillage).credentials().verify(cut, world_.now());
  EXPECT_EQ(c.verdict, "invalid");
  EXPECT_NE(c.reason.find("cut short"), std::string::npos) << c.reason;

  std::string text = credentialToText(sealed);
  Verification s = at(kVillage).credentials().verifyText(text.substr(0, text.size() - 40), world_.now());
  EXPECT_EQ(s.verdict, "invalid") << s.reason;
  EXPECT_EQ(at(kVillage).credentials().verifyText("hello", world_.now()).verdict, "invalid");
}

TEST_F(CredentialTest, ACredentialSignedByANodeWithoutAuthorityForTheItemIsInvalid) {
  startAll();
  // A town signs a business licence; SC-0001 is decided at district level.
  Bytes forged = signCredential(identities_[kTown], draft(kTown, std::string(kTown) + "-L00000001", world_.now()));
  Verification v = at(kVillage).credentials().verify(forged, world_.now());
  EXPECT_EQ(v.verdict, "invalid");
  EXPECT_NE(v.reason.find("without authority"), std::string::npos) << v.reason;
  EXPECT_NE(v.reason.find("decided at district level"), std::string::npos) << v.reason;
  // And it is refused when relayed.
  auto txn = at(kCity).database().begin();
  EXPECT_EQ(at(kCity).credentials().acceptCredential(forged, world_.now()).status().code(), ErrorCode::kUnauthorized);
}

TEST_F(CredentialTest, ACredentialUnderAnotherRootIsInvalid) {
  startAll();
  std::array<uint8_t, 32> seed{};
  seed.fill(99);
  auto city = DivisionCode::parse(kCity).value();
  Identity foreign = createRootIdentity(city, "假佛山", KeyPair::fromSeed(seed), kStart - 1000, kStart + 400 * kDay).value();
  Identity foreign_district = issueChildIdentity(foreign, DivisionCode::parse(kDistrict).value(), "假禅城",
                                                 KeyPair::fromSeed(std::array<uint8_t, 32>{7}), 9, kStart - 1000,
                                                 kStart + 400 * kDay).value();
  Bytes forged = signCredential(foreign_district, draft(kDistrict, std::string(kDistrict) + "-L00000042", world_.now()));
  Verification v = at(kVillage).credentials().verify(forged, world_.now());
  EXPECT_EQ(v.verdict, "invalid");
  EXPECT_NE(v.reason.find("not issued under this city's root"), std::string::npos) << v.reason;
}

TEST_F(CredentialTest, ACredentialPastItsValidityIsExpired) {
  startAll();
  CredentialInfo short_lived = draft(kDistrict, std::string(kDistrict) + "-L00000077", world_.now());
  short_lived.valid_until_ms = world_.now() + kDay;
  Bytes sealed = signCredential(identities_[kDistrict], short_lived);
  EXPECT_EQ(at(kVillage).credentials().verify(sealed, world_.now()).verdict, "valid");
  Verification later = at(kVillage).credentials().verify(sealed, world_.now() + 2 * kDay);
  EXPECT_EQ(later.verdict, "expired") << later.reason;
}

// Validity comes from the catalogue: a business licence (SC-0001) is long-term (长期).
TEST_F(CredentialTest, ALongTermItemsCredentialHasNoEndAndIsStillValidDecadesLater) {
  startAll();
  auto [number, sealed] = businessLicence();
  Verification v = at(kOtherVillage).credentials().verify(sealed, world_.now() + 50 * 365 * kDay);
  EXPECT_EQ(v.verdict, "valid") << v.reason;
  ASSERT_TRUE(v.credential.has_value());
  EXPECT_EQ(v.credential->valid_until_ms, 0) << "0 is the document's 'no end'";
  EXPECT_NE(v.reason.find("no end date"), std::string::npos) << v.reason;
}

// SI-0001 is valid 90 days after its issue day: through the end of day 90, expired on day 91.
TEST_F(CredentialTest, ANinetyDayItemsCredentialIsValidOnItsLastDayAndExpiredTheDayAfter) {
  startAll();
  auto [number, sealed] = socialInsuranceCertificate();
  const TimeMs issued = held(kOtherVillage, number).issued_at_ms;
  const CivilDate last_day = CivilDate::fromTimeMs(issued + 90 * kDay);
  EXPECT_EQ(held(kOtherVillage, number).valid_until_ms, endOfDayMs(last_day));
  EXPECT_EQ(at(kVillage).credentials().verify(sealed, issued + 90 * kDay).verdict, "valid");
  Verification later = at(kVillage).credentials().verify(sealed, issued + 91 * kDay);
  EXPECT_EQ(later.verdict, "expired") << later.reason;
  EXPECT_NE(later.reason.find(last_day.toString()), std::string::npos) << later.reason;
}

// Renewed 60 days on (the renewal's own time, injected), at the issuer. Nothing runs afterwards,
// so no other node is handed a record dated ahead of its clock.
TEST_F(CredentialTest, ARenewalRestartsTheItemsPeriodFromTheRenewalDay) {
  startAll();
  auto [number, first] = socialInsuranceCertificate();
  const TimeMs renewed_at = world_.now() + 60 * kDay;
  auto renewed = at(kOtherVillage).credentials().renew(number, std::nullopt, {}, renewed_at);
  ASSERT_TRUE(renewed.isOk()) << renewed.status().toString();
  const CredentialInfo now_held = held(kOtherVillage, number);
  EXPECT_EQ(now_held.version, 2u);
  EXPECT_EQ(now_held.valid_from_ms, renewed_at);
  EXPECT_EQ(now_held.valid_until_ms, endOfDayMs(CivilDate::fromTimeMs(renewed_at + 90 * kDay)));
  CredentialService& village = at(kOtherVillage).credentials();
  EXPECT_EQ(village.verify(*renewed, world_.now() + 91 * kDay).verdict, "valid") << "the first period no longer ends it";
  EXPECT_EQ(village.verify(*renewed, renewed_at + 91 * kDay).verdict, "expired");
}

TEST_F(CredentialTest, ARenewalMayShortenTheItemsPeriodButNotExceedIt) {
  startAll();
  auto [number, sealed] = socialInsuranceCertificate();
  CredentialService& village = at(kOtherVillage).credentials();
  auto too_long = village.renew(number, world_.now() + 200 * kDay, {}, world_.now());
  EXPECT_EQ(too_long.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(too_long.status().message().find("at most 90 days"), std::string::npos) << too_long.status().message();
  EXPECT_EQ(village.renew(number, TimeMs{0}, {}, world_.now()).status().code(), ErrorCode::kInvalidArgument)
      << "no end is longer than 90 days";
  const TimeMs shorter = endOfDayMs(CivilDate::fromTimeMs(world_.now() + 30 * kDay));
  ASSERT_TRUE(village.renew(number, shorter, {}, world_.now()).isOk());
  EXPECT_EQ(held(kOtherVillage, number).valid_until_ms, shorter);
}

TEST_F(CredentialTest, RenewingALongTermCredentialKeepsItWithoutAnEnd) {
  startAll();
  auto [number, sealed] = businessLicence();
  auto renewed = at(kDistrict).credentials().renew(number, std::nullopt, {}, world_.now());
  ASSERT_TRUE(renewed.isOk()) << renewed.status().toString();
  EXPECT_EQ(held(kDistrict, number).version, 2u);
  EXPECT_EQ(held(kDistrict, number).valid_until_ms, 0);
}

// A lost village laptop: the village's key is revoked. What it issued before stays valid; what
// its key signs afterwards is refused everywhere (the village itself is cut off by it, too).
TEST_F(CredentialTest, AKeyRevokedAfterIssuanceLeavesEarlierCredentialsValidAndLaterOnesInvalidEverywhere) {
  startAll();
  // An immediate item decided at the village: its certificate is issued on the spot.
  const std::string number = concludeCase(kOtherVillage, kOtherVillage, "SI-0001", kPerson);
  const std::string credential = at(kOtherVillage).cases().get(number)->credential;
  ASSERT_FALSE(credential.empty());
  const Bytes before = sealedOf(kOtherVillage, credential);
  const TimeMs revoked_at = world_.now() + 1000;
  auto revocation = signKeyRevocation(identities_[kTown], DivisionCode::parse(kOtherVillage).value(),
                                      identities_[kOtherVillage].keys.public_key, revoked_at, "village laptop lost");
  ASSERT_TRUE(revocation.isOk());
  runFor(2000);
  ASSERT_TRUE(at(kTown).credentials().publishKeyRevocation(*revocation, world_.now()).isOk());
  runFor(20'000);  // down the feeds to every node, and up to the city
  CredentialInfo later = draft(kOtherVillage, std::string(kOtherVillage) + "-L00000500", world_.now());
  later.kind = "si_enrolment_certificate";
  later.item_code = "SI-0001";
  later.holder_id = kPerson;
  Bytes after = signCredential(identities_[kOtherVillage], later);
  for (const char* code : {kCity, kDistrict, kTown, kVillage}) {
    EXPECT_EQ(at(code).credentials().verify(before, world_.now()).verdict, "valid") << code;
    Verification v = at(code).credentials().verify(after, world_.now());
    EXPECT_EQ(v.verdict, "invalid") << code;
    EXPECT_NE(v.reason.find("revoked before the issue time"), std::string::npos) << v.reason;
  }
  // A restart keeps enforcing it.
  crash(kVillage);
  restart(kVillage);
  EXPECT_EQ(at(kVillage).credentials().verify(after, world_.now()).verdict, "invalid");
  EXPECT_EQ(at(kVillage).credentials().verify(before, world_.now()).verdict, "valid");
}

TEST_F(CredentialTest, ARevocationAtTheDistrictReachesEveryNodeAndIsFinal) {
  startAll();
  auto [number, sealed] = businessLicence();
  world_.setLinkUp(DivisionCode::parse(kVillage).value(), false);
  ASSERT_TRUE(at(kDistrict).credentials().setStatus(number, "revoked", "obtained by fraud", world_.now()).isOk());
  runFor(20'000);
  for (const char* code : {kCity, kDistrict, kTown, kOtherVillage}) {
    Verification v = at(code).credentials().verify(sealed, world_.now());
    EXPECT_EQ(v.verdict, "revoked") << code << ": " << v.reason;
    EXPECT_NE(v.reason.find("obtained by fraud"), std::string::npos);
  }
  // The cut-off village still answers offline, from what it knows, and says how old that is.
  Verification stale = at(kVillage).credentials().verify(sealed, world_.now());
  EXPECT_EQ(stale.verdict, "valid");
  EXPECT_LT(stale.status_fresh_as_of_ms, world_.now() - 15'000);
  world_.setLinkUp(DivisionCode::parse(kVillage).value(), true);
  runFor(20'000);
  EXPECT_EQ(at(kVillage).credentials().verify(sealed, world_.now()).verdict, "revoked");
  EXPECT_EQ(at(kDistrict).credentials().setStatus(number, "active", "appeal", world_.now()).status().code(),
            ErrorCode::kFailedPrecondition);
}

TEST_F(CredentialTest, ASuspensionCanBeLiftedAndOnlyTheIssuerOrAnAncestorMayDoEither) {
  startAll();
  auto [number, sealed] = businessLicence();
  EXPECT_EQ(at(kTown).credentials().setStatus(number, "suspended", "not mine", world_.now()).status().code(),
            ErrorCode::kPermissionDenied);
  ASSERT_TRUE(at(kCity).credentials().setStatus(number, "suspended", "under investigation", world_.now()).isOk());
  runFor(20'000);
  EXPECT_EQ(at(kVillage).credentials().verify(sealed, world_.now()).verdict, "suspended");
  ASSERT_TRUE(at(kDistrict).credentials().setStatus(number, "active", "cleared", world_.now()).isOk());
  runFor(20'000);
  EXPECT_EQ(at(kVillage).credentials().verify(sealed, world_.now()).verdict, "valid");
}

TEST_F(CredentialTest, ARenewedCredentialSupersedesTheOldCopyEverywhere) {
  startAll();
  auto [number, old_copy] = businessLicence();
  auto renewed = at(kDistrict).credentials().renew(number, world_.now() + 800 * kDay, {{"address", "南海区桂城1号"}}, world_.now());
  ASSERT_TRUE(renewed.isOk()) << renewed.status().toString();
  runFor(20'000);
  Verification old_v = at(kVillage).credentials().verify(old_copy, world_.now());
  EXPECT_EQ(old_v.verdict, "superseded") << old_v.reason;
  EXPECT_EQ(old_v.current_version, 2u);
  EXPECT_EQ(at(kVillage).credentials().verify(*renewed, world_.now()).verdict, "valid");
  auto at_city = at(kCity).credentials().listByNumber(number).value();
  ASSERT_TRUE(at_city.has_value());
  EXPECT_EQ(at_city->version, 2u) << "exactly one current version at every ancestor";
}

TEST_F(CredentialTest, AStatusRecordSignedByANodeWithoutAuthorityIsRefused) {
  startAll();
  auto [number, sealed] = businessLicence();
  // A village seals a revocation of the district's licence and slips it into a feed.
  SealParams p;
  p.kind = kCredentialStatusKind;
  p.timestamp_ms = world_.now();
  p.target = DivisionCode::parse(kVillage).value();
  auto forged_status = at(kVillage).credentials().status(number);
  ASSERT_TRUE(forged_status.isOk());
  // Build the payload by having the district make a real one, then re-seal its payload as the village.
  ASSERT_TRUE(at(kDistrict).credentials().setStatus(number, "suspended", "check", world_.now()).isOk());
  auto stmt = at(kDistrict).database().prepare("SELECT sealed FROM credential_status WHERE number = ?1");
  ASSERT_TRUE(stmt.isOk());
  stmt->bind(1, number);
  ASSERT_TRUE(stmt->step().value());
  auto genuine = stmt->columnBlob(0);
  KindRegistry kinds;
  registerCredentialKinds(kinds);
  auto verifier = Verifier::create(identities_[kCity].root_certificate, &kinds).value();
  p.payload = verifier.open(genuine, DivisionCode::parse(kVillage).value(), world_.now(), nullptr)->payload;
  Bytes forged = sealEnvelope(identities_[kVillage], p);
  auto txn = at(kOtherVillage).database().begin();
  auto applied = at(kOtherVillage).credentials().applyFeedEntry(forged, world_.now());
  EXPECT_EQ(applied.status().code(), ErrorCode::kUnauthorized) << applied.status().toString();
}

TEST_F(CredentialTest, AnIdentityRegisteredOnceIsKnownToEveryAncestor) {
  startAll();
  auto r = at(kVillage).credentials().registerIdentity(kPerson, "张三", {{"phone", "13800000000"}}, world_.now());
  ASSERT_TRUE(r.isOk()) << r.status().toString();
  runFor(10'000);
  for (const char* code : {kTown, kDistrict, kCity}) {
    auto held = at(code).credentials().identity(kPerson);
    ASSERT_TRUE(held.isOk() && held->has_value()) << code;
    EXPECT_EQ((*held)->name, "张三");
    EXPECT_EQ((*held)->registered_by, kVillage);
  }
  EXPECT_EQ(at(kVillage).credentials().registerIdentity("123", "x", {}, world_.now()).status().code(),
            ErrorCode::kInvalidArgument);
  // Another hall asks instead of asking the citizen again: its town answers with the record.
  std::optional<LookupResult> answer;
  at(kOtherVillage).lookups().lookup(makeLookupQuery(LookupQuestion::kHolder, kPerson).value(), 3000,
                                     [&](LookupResult r) { answer = std::move(r); });
  runFor(3000);
  ASSERT_TRUE(answer.has_value());
  ASSERT_EQ(answer->outcome, LookupOutcome::kFound) << answer->reason;
  bool identity_found = false;
  for (const auto& r : answer->records) {
    if (r.type != "identity") continue;
    identity_found = true;
    auto who = at(kOtherVillage).credentials().openIdentity(r.payload, world_.now());
    ASSERT_TRUE(who.isOk()) << who.status().toString();
    EXPECT_EQ(who->name, "张三");
  }
  EXPECT_TRUE(identity_found);
}

// Lookups carry what the answering node knows of a credential's status, and a status change
// erases the cached answers that named it, so "is credential N genuine" never says "valid" for
// a revoked one from a cache.
TEST_F(CredentialTest, ALookupAfterARevocationShowsItRevokedNotTheCachedAnswer) {
  startAll();
  auto [number, sealed] = businessLicence();
  runFor(10'000);
  const LookupQuery q = makeLookupQuery(LookupQuestion::kCredential, number).value();
  auto ask = [&] {
    std::optional<LookupResult> answer;
    at(kVillage).lookups().lookup(q, 3000, [&](LookupResult r) { answer = std::move(r); });
    runFor(3000);
    EXPECT_TRUE(answer.has_value());
    return answer.value_or(LookupResult{});
  };
  auto first = ask();
  ASSERT_EQ(first.outcome, LookupOutcome::kFound) << first.reason;
  ASSERT_EQ(first.records.size(), 1u);
  EXPECT_EQ(first.records[0].status, "valid") << first.records[0].status_reason;
  EXPECT_EQ(first.records[0].current_version, 1u);
  EXPECT_GT(first.records[0].status_fresh_as_of_ms, 0);
  auto cached = ask();
  ASSERT_EQ(cached.cached_at, kVillage) << "the answer is cached at the village";

  ASSERT_TRUE(at(kDistrict).credentials().setStatus(number, "revoked", "obtained by fraud", world_.now()).isOk());
  runFor(10'000);  // the feed brings the revocation down to the village
  ASSERT_EQ(at(kVillage).credentials().status(number)->value_or(CredentialStatusInfo{}).status, "revoked");
  auto after = ask();
  ASSERT_EQ(after.outcome, LookupOutcome::kFound) << after.reason;
  EXPECT_NE(after.cached_at, kVillage) << "the revocation erased the village's cached answer";
  ASSERT_EQ(after.records.size(), 1u);
  EXPECT_EQ(after.records[0].status, "revoked") << after.records[0].status_reason;
  EXPECT_NE(after.records[0].status_reason.find("obtained by fraud"), std::string::npos);
}

}  // namespace
}  // namespace tongban
