// Lookups on real nodes in the simulated world: city → two districts; under the first a town
// with two villages. Found locally, found by the city three hops up (with the route), not found
// authoritatively by the city, could-not-ask naming the cut link within the budget, coalescing,
// caching (hit, bounds, expiry), forged answers rejected, malformed requests refused while the
// node keeps serving, a store that cannot be read never answering "not found".
#include "node/lookup/lookup.h"

#include <cstdio>
#include <map>

#include <gtest/gtest.h>

#include "federation/store/database.h"
#include "federation/sync/wire.h"
#include "node/credentials/credentials.h"
#include "federation/util/capnp_io.h"
#include "schema/lookup.capnp.h"
#include "tests/support/sim_tree.h"

namespace tongban {
namespace {

using testing::kCity;
using testing::kDistrict;
using testing::kSibling;
using testing::kStart;
using testing::kTown;
using testing::kVillage;
constexpr const char* kOtherDistrict = "440605000000";
constexpr const char* kHolder = "11010519491231002X";

// A valid resident ID for holder number n (check character computed).
std::string residentId(unsigned n) {
  char body[18];
  std::snprintf(body, sizeof body, "44060519800101%03u", n % 1000);
  static const int kWeights[17] = {7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2};
  int sum = 0;
  for (int i = 0; i < 17; ++i) sum += (body[i] - '0') * kWeights[i];
  return std::string(body, 17) + "10X98765432"[sum % 11];
}

// Nobody stores anything for this one.
const std::string kOtherHolder = residentId(999);

LookupQuery holderQuery(const std::string& id) { return makeLookupQuery(LookupQuestion::kHolder, id).value(); }

// SimTree's chain with real names (answers and reasons name divisions by them) and a second
// district beside the first, so a record can be elsewhere than on the asker's own branch. Every
// node runs from the start.
class LookupTest : public testing::SimTree {
 protected:
  LookupTest()
      : SimTree({{{kCity, "佛山市"}, {kDistrict, "禅城区"}, {kTown, "石湾镇"}, {kVillage, "石湾第1村"},
                  {kSibling, "石湾第2村"}, {kOtherDistrict, "南海区"}}}) {}

  void SetUp() override {
    SimTree::SetUp();
    if (HasFatalFailure()) return;
    registerLookupKinds(kinds_);
    startEveryNode();
  }

  // Stores a material for `holder` at `where` and waits until its record reached the city.
  std::string store(const std::string& where, const std::string& holder, const std::string& kind = "id_card") {
    auto stored = at(where).materials().put(toBytes(kind + " of " + holder + " at " + where), kind, holder,
                                            "image/jpeg", "clerk1", world_.now());
    EXPECT_TRUE(stored.isOk()) << stored.status().toString();
    if (where != kCity) {
      EXPECT_TRUE(runUntil([&] { return holdsMaterialRecord(kCity, stored->hash); }, 60'000))
          << "the record did not reach the city";
    }
    return stored->hash;
  }

  Slot<LookupResult> startLookup(const std::string& where, const LookupQuery& q, DurationMs budget = 0) {
    return answerSlot<LookupResult>([&](auto done) { at(where).lookups().lookup(q, budget, std::move(done)); },
                                    "a lookup");
  }

  LookupResult await(const Slot<LookupResult>& slot, DurationMs bound_ms = 60'000) {
    EXPECT_TRUE(runUntil([&] { return slot->has_value(); }, bound_ms, 10)) << "the lookup never answered";
    return slot->has_value() ? **slot : LookupResult{};
  }

  LookupResult lookupAt(const std::string& where, const LookupQuery& q, DurationMs budget = 0) {
    return await(startLookup(where, q, budget));
  }

  static std::vector<std::string> routeOf(const LookupResult& r) {
    std::vector<std::string> out;
    for (const auto& hop : r.route) out.push_back(hop.division);
    return out;
  }

  // A hand-made request from a client endpoint at `from`'s bus to `to`'s lookup subject.
  Result<Bytes> sendRaw(const std::string& from, const std::string& to, const Bytes& bytes) {
    return rawRequest(clientEndpoint(from), lookupSubject(division(to)), bytes);
  }

  // The error text of a refusal (kind 122 with `error`) signed by `signer`.
  std::string refusalFrom(const std::string& signer, const Bytes& reply, const std::string& receiver) {
    auto opened = verifier().open(reply, division(receiver), world_.now(), nullptr);
    EXPECT_TRUE(opened.isOk()) << opened.status().toString();
    if (!opened) return {};
    EXPECT_EQ(opened->kind, kLookupReplyKind);
    EXPECT_EQ(opened->signer.str(), signer);
    return capnp_io::read<wire::LookupReply>(opened->payload, "reply", 1 << 20,
                                             [](wire::LookupReply::Reader r) -> Result<std::string> {
                                               return capnp_io::text(r.getError());
                                             })
        .value();
  }
};

TEST_F(LookupTest, HolderFoundLocallyWhereTheMaterialWasStoredWithItsSealChecked) {
  const std::string hash = store(kVillage, kHolder);
  auto r = lookupAt(kVillage, holderQuery(kHolder));
  ASSERT_EQ(r.outcome, LookupOutcome::kFound) << r.reason;
  EXPECT_EQ(r.answered_by, kVillage);
  EXPECT_EQ(routeOf(r), std::vector<std::string>{kVillage});
  ASSERT_EQ(r.records.size(), 1u);
  EXPECT_EQ(r.records[0].id, hash);
  EXPECT_EQ(r.records[0].issued_at, kVillage);
  EXPECT_TRUE(r.records[0].seal_verified);
  EXPECT_EQ(at(kVillage).lookups().stats().upstream_requests, 0u);
}

TEST_F(LookupTest, MaterialOfAVillageIsFoundByItsDistrictFromTheSubtreeRecords) {
  const std::string hash = store(kVillage, kHolder);
  auto r = lookupAt(kDistrict, makeLookupQuery(LookupQuestion::kMaterial, hash).value());
  ASSERT_EQ(r.outcome, LookupOutcome::kFound) << r.reason;
  EXPECT_EQ(r.answered_by, kDistrict);
  ASSERT_EQ(r.records.size(), 1u);
  EXPECT_EQ(r.records[0].issued_at, kVillage);
  EXPECT_FALSE(r.records[0].seal_verified);  // the village's key is not known at the district
}

TEST_F(LookupTest, RecordInAnotherDistrictIsFoundByTheCityThreeHopsUpWithTheRoute) {
  store(kOtherDistrict, kHolder, "business_licence");
  auto r = lookupAt(kVillage, holderQuery(kHolder));
  ASSERT_EQ(r.outcome, LookupOutcome::kFound) << r.reason;
  EXPECT_EQ(r.answered_by, kCity);
  EXPECT_EQ(r.answered_by_name, "佛山市");
  EXPECT_EQ(routeOf(r), (std::vector<std::string>{kVillage, kTown, kDistrict, kCity}));
  EXPECT_EQ(r.route[1].name, "石湾镇");
  ASSERT_EQ(r.records.size(), 1u);
  EXPECT_EQ(r.records[0].issued_at, kOtherDistrict);
  EXPECT_EQ(r.records[0].kind, "business_licence");
  EXPECT_TRUE(r.cached_at.empty());
}

TEST_F(LookupTest, UnknownHolderIsNotFoundAuthoritativelyByTheCity) {
  auto r = lookupAt(kVillage, holderQuery(kOtherHolder));
  EXPECT_EQ(r.outcome, LookupOutcome::kNotFound);
  EXPECT_EQ(r.answered_by, kCity);
  EXPECT_EQ(routeOf(r), (std::vector<std::string>{kVillage, kTown, kDistrict, kCity}));
}

TEST_F(LookupTest, ACredentialNoNodeHoldsIsNotFoundByTheCity) {
  auto r = lookupAt(kTown, makeLookupQuery(LookupQuestion::kCredential, "440604000000-L00000099").value());
  EXPECT_EQ(r.outcome, LookupOutcome::kNotFound);
  EXPECT_EQ(r.answered_by, kCity);
}

TEST_F(LookupTest, CutTownLinkGivesCouldNotAskNamingTheLinkWithinTheBudget) {
  runFor(3000);  // the uplinks have been up: "down since" is then the moment of the cut
  world_.setLinkUp(division(kTown), false);
  runFor(5000);  // the town's uplink notices
  const TimeMs asked = world_.now();
  auto r = lookupAt(kVillage, holderQuery(kOtherHolder), 1500);
  ASSERT_EQ(r.outcome, LookupOutcome::kCouldNotAsk);
  EXPECT_EQ(r.answered_by, kTown);  // the last node that could answer says so, signed
  EXPECT_EQ(r.failed_link, std::string(kTown) + " → " + kDistrict);
  EXPECT_NE(r.reason.find("石湾镇 → 禅城区"), std::string::npos) << r.reason;
  EXPECT_LE(world_.now() - asked, 1500);
  EXPECT_LE(r.took_ms, 1500);
  EXPECT_GT(r.link_down_since_ms, 0);
  EXPECT_LE(r.link_down_since_ms, asked);
}

TEST_F(LookupTest, SilentlyLostRepliesTimeOutIntoCouldNotAskWithinTheBudget) {
  world_.faults().drop = 1.0;  // every message lost: the village hears nothing at all
  const TimeMs asked = world_.now();
  auto r = lookupAt(kVillage, holderQuery(kOtherHolder), 1200);
  world_.faults().drop = 0.0;
  ASSERT_EQ(r.outcome, LookupOutcome::kCouldNotAsk);
  EXPECT_EQ(r.answered_by, kVillage);
  EXPECT_NE(r.reason.find("no answer within 1000 ms"), std::string::npos) << r.reason;
  EXPECT_LE(world_.now() - asked, 1200);
}

TEST_F(LookupTest, TooSmallABudgetIsRefusedAtOnceAsExhausted) {
  auto r = lookupAt(kVillage, holderQuery(kOtherHolder), 250);
  ASSERT_EQ(r.outcome, LookupOutcome::kCouldNotAsk);
  EXPECT_NE(r.reason.find("time budget exhausted at 石湾第1村"), std::string::npos) << r.reason;
  EXPECT_EQ(at(kVillage).lookups().stats().upstream_requests, 0u);
}

TEST_F(LookupTest, IdenticalConcurrentLookupsShareOneUpstreamRequest) {
  store(kOtherDistrict, kHolder);
  auto first = startLookup(kVillage, holderQuery(kHolder));
  auto second = startLookup(kVillage, holderQuery(kHolder));
  auto a = await(first), b = await(second);
  EXPECT_EQ(a.outcome, LookupOutcome::kFound);
  EXPECT_EQ(b.outcome, LookupOutcome::kFound);
  EXPECT_EQ(b.answered_by, kCity);
  EXPECT_EQ(at(kVillage).lookups().stats().upstream_requests, 1u);
  EXPECT_EQ(at(kVillage).lookups().stats().coalesced, 1u);
  EXPECT_EQ(at(kTown).lookups().stats().requests_served, 1u);
}

TEST_F(LookupTest, SecondLookupIsServedFromTheCacheHereAndAlongTheWay) {
  store(kOtherDistrict, kHolder);
  ASSERT_EQ(lookupAt(kVillage, holderQuery(kHolder)).outcome, LookupOutcome::kFound);
  auto again = lookupAt(kVillage, holderQuery(kHolder));
  EXPECT_EQ(again.outcome, LookupOutcome::kFound);
  EXPECT_EQ(again.answered_by, kCity);
  EXPECT_EQ(again.cached_at, kVillage);
  EXPECT_EQ(at(kVillage).lookups().stats().upstream_requests, 1u);
  // The sibling village's question stops at the town, which cached the city's answer.
  auto sibling = lookupAt(kSibling, holderQuery(kHolder));
  EXPECT_EQ(sibling.outcome, LookupOutcome::kFound);
  EXPECT_EQ(sibling.answered_by, kCity);
  EXPECT_EQ(sibling.cached_at, kTown);
  EXPECT_EQ(routeOf(sibling), (std::vector<std::string>{kSibling, kTown}));
  // Negative answers are never cached.
  ASSERT_EQ(lookupAt(kVillage, holderQuery(kOtherHolder)).outcome, LookupOutcome::kNotFound);
  ASSERT_EQ(lookupAt(kVillage, holderQuery(kOtherHolder)).outcome, LookupOutcome::kNotFound);
  EXPECT_EQ(at(kVillage).lookups().stats().upstream_requests, 3u);
}

TEST_F(LookupTest, CacheIsBoundedAndItsEntriesExpire) {
  LookupSettings small;
  small.cache_entries = 2;
  small.cache_ttl_ms = 20'000;
  crash(kVillage);
  restart(kVillage, [&](NodeOptions& o) { o.lookups = small; });
  std::vector<std::string> holders;
  for (unsigned i = 1; i <= 3; ++i) {
    holders.push_back(residentId(i));
    store(kOtherDistrict, holders.back());
  }
  for (const auto& h : holders) ASSERT_EQ(lookupAt(kVillage, holderQuery(h)).outcome, LookupOutcome::kFound);
  EXPECT_EQ(at(kVillage).lookups().cacheSize(), 2u);
  // The most recent one is cached; the first was evicted.
  EXPECT_EQ(lookupAt(kVillage, holderQuery(holders[2])).cached_at, kVillage);
  EXPECT_NE(lookupAt(kVillage, holderQuery(holders[0])).cached_at, kVillage);
  // After the lifetime, the answer is asked for again (the town's cache has expired too? no:
  // it keeps 5 minutes; the village's 20 s is what is tested here).
  runFor(25'000);
  auto expired = lookupAt(kVillage, holderQuery(holders[2]));
  EXPECT_EQ(expired.outcome, LookupOutcome::kFound);
  EXPECT_NE(expired.cached_at, kVillage);
  at(kVillage).lookups().clearCache();
  EXPECT_EQ(at(kVillage).lookups().cacheSize(), 0u);
}

// A rogue responder in the town's place (the town is down): each forged reply is rejected and
// the village says it could not ask, never "found" or "not found".
class ForgedAnswerTest : public LookupTest {
 protected:
  enum class Forgery {
    kNotFoundSignedByTheTown,
    kTamperedAnswer,
    kWrongNonce,
    kUnknownRoot,
    kRecordOutsideSubtree,
    kCredentialRecordCarryingAnotherKindOfDocument,
    kCredentialRecordCarryingAnotherHoldersCredential,
    kRouteEndingBelowTheAnswerer,
    kCachedAtItsOwnAnswerer,
  };

  Bytes answerBytes(const LookupQuery& q, uint8_t outcome, const std::string& issued_at, const std::string& type = "material",
                    const Bytes& payload = {}) {
    capnp::MallocMessageBuilder b;
    auto a = b.initRoot<wire::LookupAnswer>();
    a.setQuestion(static_cast<uint8_t>(q.question));
    a.setKey(q.key);
    a.setOutcome(outcome);
    if (!issued_at.empty()) {
      auto rec = a.initRecords(1)[0];
      rec.setType(type);
      rec.setId(type == "material" ? std::string(64, 'a') : "440604001000-L00000001");
      rec.setHolder(q.key);
      rec.setKind("id_card");
      rec.setIssuedAt(issued_at);
      rec.setPayload(capnp_io::dataOf(payload));
    }
    return capnp_io::flatBytes(b);
  }

  // A genuine credential document of the town's, for `holder`.
  Bytes townCredential(const std::string& holder) {
    CredentialInfo c;
    c.number = "440604001000-L00000001";
    c.kind = "id_card";
    c.holder_id = holder;
    c.issuer = kTown;
    c.item_code = "SI-0001";
    c.valid_from_ms = world_.now();
    c.issued_at_ms = world_.now();
    return signCredential(identities_[kTown], c);
  }

  void installRogue(Forgery forgery) {
    crash(kTown);
    rogue_ = world_.addEndpoint(division(kTown), "rogue");
    auto& t = world_.transport(rogue_);
    (void)t.subscribe(lookupSubject(division(kTown)), [this, forgery, &t](const InboundMessage& m) {
      auto request = verifier().open(m.data, division(kTown), world_.now(), nullptr);
      ASSERT_TRUE(request.isOk()) << request.status().toString();
      const LookupQuery q = holderQuery(kOtherHolder);
      const Identity& town = identities_[kTown];
      Bytes answer;
      uint64_t nonce = request->nonce;
      Identity signer = town;
      std::string cached_at;
      switch (forgery) {
        case Forgery::kNotFoundSignedByTheTown:
          answer = sealNow(town, kLookupAnswerKind, division(kTown), answerBytes(q, 2, ""), 0);
          break;
        case Forgery::kTamperedAnswer:
          answer = sealNow(identities_[kCity], kLookupAnswerKind, division(kCity), answerBytes(q, 2, ""), 0);
          answer[answer.size() / 2] ^= 0x01;
          break;
        case Forgery::kWrongNonce:
          answer = sealNow(identities_[kCity], kLookupAnswerKind, division(kCity), answerBytes(q, 2, ""), 0);
          nonce += 1;
          break;
        case Forgery::kUnknownRoot: {
          std::array<uint8_t, 32> seed{};
          seed.fill(99);
          signer = createRootIdentity(division(kCity), "假城市", KeyPair::fromSeed(seed), kStart - 1000, kStart + 10'000'000'000LL).value();
          answer = sealNow(signer, kLookupAnswerKind, division(kCity), answerBytes(q, 2, ""), 0);
          break;
        }
        case Forgery::kRecordOutsideSubtree:
          // The town says "found" for a record of another district: it cannot hold that.
          answer = sealNow(town, kLookupAnswerKind, division(kTown), answerBytes(q, 1, kOtherDistrict), 0);
          break;
        case Forgery::kCredentialRecordCarryingAnotherKindOfDocument: {
          // Signed by the town, which the record names as issuer — but it is no credential.
          Bytes not_a_credential = sealNow(town, kLookupAnswerKind, division(kTown), answerBytes(q, 2, ""), 0);
          answer = sealNow(town, kLookupAnswerKind, division(kTown),
                           answerBytes(q, 1, kTown, "credential", not_a_credential), 0);
          break;
        }
        case Forgery::kCredentialRecordCarryingAnotherHoldersCredential:
          // A real credential of the town's, but of someone else: presented as this holder's.
          answer = sealNow(town, kLookupAnswerKind, division(kTown),
                           answerBytes(q, 1, kTown, "credential", townCredential(kHolder)), 0);
          break;
        case Forgery::kRouteEndingBelowTheAnswerer:
          // The city's genuine "not found", but the route claims the town answered.
          answer = sealNow(identities_[kCity], kLookupAnswerKind, division(kCity), answerBytes(q, 2, ""), 0);
          break;
        case Forgery::kCachedAtItsOwnAnswerer:
          // A node never caches what it answered itself from its own store.
          answer = sealNow(town, kLookupAnswerKind, division(kTown), answerBytes(q, 1, kVillage), 0);
          cached_at = kTown;
          break;
      }
      capnp::MallocMessageBuilder b;
      auto reply = b.initRoot<wire::LookupReply>();
      reply.setAnswer(capnp_io::dataOf(answer));
      auto hop = reply.initRoute(1)[0];
      hop.setDivision(kTown);
      hop.setAtMs(world_.now());
      reply.setCachedAt(cached_at);
      (void)t.reply(m, sealNow(forgery == Forgery::kUnknownRoot ? signer : town, kLookupReplyKind, division(kVillage),
                               capnp_io::flatBytes(b), nonce));
    });
  }

  int rogue_ = -1;
};

TEST_F(ForgedAnswerTest, ForgedOrTamperedAnswersAreRejected) {
  for (auto forgery : {Forgery::kNotFoundSignedByTheTown, Forgery::kTamperedAnswer, Forgery::kWrongNonce,
                       Forgery::kUnknownRoot, Forgery::kRecordOutsideSubtree,
                       Forgery::kCredentialRecordCarryingAnotherKindOfDocument,
                       Forgery::kCredentialRecordCarryingAnotherHoldersCredential,
                       Forgery::kRouteEndingBelowTheAnswerer, Forgery::kCachedAtItsOwnAnswerer}) {
    SCOPED_TRACE(static_cast<int>(forgery));
    if (rogue_ >= 0) world_.crash(rogue_);
    installRogue(forgery);
    const uint64_t rejected = at(kVillage).lookups().stats().answers_rejected;
    auto r = lookupAt(kVillage, holderQuery(kOtherHolder));
    EXPECT_EQ(r.outcome, LookupOutcome::kCouldNotAsk);
    EXPECT_EQ(r.answered_by, kVillage);
    EXPECT_NE(r.reason.find("failed verification"), std::string::npos) << r.reason;
    // Each new forgery is caught by the check made for it, not by an earlier one by chance.
    const std::map<Forgery, std::string> why = {
        {Forgery::kCredentialRecordCarryingAnotherKindOfDocument, "not a credential (kind 130)"},
        {Forgery::kCredentialRecordCarryingAnotherHoldersCredential, "does not match its document"},
        {Forgery::kRouteEndingBelowTheAnswerer, "the route ends at " + std::string(kTown)},
        {Forgery::kCachedAtItsOwnAnswerer, "cannot have been cached at"}};
    if (auto it = why.find(forgery); it != why.end()) {
      EXPECT_NE(r.reason.find(it->second), std::string::npos) << r.reason;
    }
    EXPECT_EQ(at(kVillage).lookups().stats().answers_rejected, rejected + 1);
    EXPECT_EQ(at(kVillage).lookups().cacheSize(), 0u);
  }
}

// A source whose store cannot be read.
class BrokenSource : public LookupSource {
 public:
  bool answers(LookupQuestion) const override { return true; }
  Result<std::vector<LookupRecord>> find(const LookupQuery&, size_t) override {
    return Status(ErrorCode::kIo, "disk I/O error");
  }
};

TEST_F(LookupTest, ACityWhoseStoreCannotBeReadSaysCouldNotAskNeverNotFound) {
  at(kCity).lookups().addSource(std::make_unique<BrokenSource>());
  auto r = lookupAt(kVillage, holderQuery(kOtherHolder));
  ASSERT_EQ(r.outcome, LookupOutcome::kCouldNotAsk);
  EXPECT_EQ(r.answered_by, kCity);
  EXPECT_NE(r.reason.find("the records at 佛山市 could not be read"), std::string::npos) << r.reason;
  EXPECT_EQ(at(kCity).lookups().stats().source_failures, 1u);
}

TEST_F(LookupTest, ANodeWhoseStoreCannotBeReadDoesNotPassTheCitysNotFoundOn) {
  // The village's own record might be on its way up: the city's "not found" proves nothing here.
  at(kVillage).lookups().addSource(std::make_unique<BrokenSource>());
  auto r = lookupAt(kVillage, holderQuery(kOtherHolder));
  ASSERT_EQ(r.outcome, LookupOutcome::kCouldNotAsk);
  EXPECT_EQ(r.answered_by, kVillage);
  EXPECT_EQ(routeOf(r), std::vector<std::string>{kVillage});
  EXPECT_NE(r.reason.find("the records at 石湾第1村 could not be read"), std::string::npos) << r.reason;
  // A record found above is still found.
  store(kOtherDistrict, kHolder);
  EXPECT_EQ(lookupAt(kVillage, holderQuery(kHolder)).outcome, LookupOutcome::kFound);
}

TEST_F(LookupTest, AnUndecodableSubtreeRowIsSkippedAndCountedNotFatalToTheRest) {
  store(kOtherDistrict, kHolder);
  auto put = at(kCity).database().prepare(
      "INSERT INTO subtree_materials (hash, holder, kind, stored_at, payload, received_ms) VALUES (?1, ?2, ?3, ?4, ?5, 0)");
  ASSERT_TRUE(put.isOk());
  put->bind(1, std::string(64, '0')).bind(2, kHolder).bind(3, "id_card").bind(4, kOtherDistrict).bind(5, toBytes("garbage"));
  ASSERT_TRUE(put->run().isOk());
  auto r = lookupAt(kCity, holderQuery(kHolder));
  ASSERT_EQ(r.outcome, LookupOutcome::kFound) << r.reason;
  EXPECT_EQ(r.records.size(), 1u);
  EXPECT_EQ(at(kCity).lookups().skippedRecords(), 1u);
  // The damaged row was the only one for this hash: whether it exists is unknown, not "no".
  auto only = lookupAt(kCity, makeLookupQuery(LookupQuestion::kMaterial, std::string(64, '0')).value());
  EXPECT_EQ(only.outcome, LookupOutcome::kCouldNotAsk);
  EXPECT_NE(only.reason.find("could not be read"), std::string::npos) << only.reason;
}

TEST_F(LookupTest, AJoinerWithMoreTimeAsksAgainWhenTheSharedRequestRunsOutOfTime) {
  world_.faults().drop = 1.0;  // the first request is lost
  auto short_one = startLookup(kVillage, holderQuery(kOtherHolder), 1000);
  auto long_one = startLookup(kVillage, holderQuery(kOtherHolder), 5000);
  runFor(500);
  world_.faults().drop = 0.0;  // back before the shared request gives up at 800 ms
  auto a = await(short_one);
  EXPECT_EQ(a.outcome, LookupOutcome::kCouldNotAsk);
  EXPECT_NE(a.reason.find("no answer within 800 ms"), std::string::npos) << a.reason;
  auto b = await(long_one);
  EXPECT_EQ(b.outcome, LookupOutcome::kNotFound) << b.reason;
  EXPECT_EQ(b.answered_by, kCity);
  EXPECT_EQ(at(kVillage).lookups().stats().coalesced, 1u);
  EXPECT_EQ(at(kVillage).lookups().stats().reasked, 1u);
  EXPECT_EQ(at(kVillage).lookups().stats().upstream_requests, 2u);
}

TEST_F(LookupTest, CacheIsBoundedByBytesAtTheBound) {
  std::vector<std::string> holders;
  for (unsigned i = 1; i <= 2; ++i) {
    holders.push_back(residentId(i));
    store(kOtherDistrict, holders.back());
  }
  ASSERT_EQ(lookupAt(kVillage, holderQuery(holders[0])).outcome, LookupOutcome::kFound);
  const size_t one = at(kVillage).lookups().cacheBytes();
  ASSERT_GT(one, 0u);
  // Room for one answer and a half: the second pushes the first out.
  crash(kVillage);
  restart(kVillage, [&](NodeOptions& o) { o.lookups.cache_max_bytes = one + one / 2; });
  for (const auto& h : holders) ASSERT_EQ(lookupAt(kVillage, holderQuery(h)).outcome, LookupOutcome::kFound);
  EXPECT_EQ(at(kVillage).lookups().cacheSize(), 1u);
  EXPECT_LE(at(kVillage).lookups().cacheBytes(), one + one / 2);
  EXPECT_EQ(lookupAt(kVillage, holderQuery(holders[1])).cached_at, kVillage);
  // One byte short of a single answer: nothing is cached.
  crash(kVillage);
  restart(kVillage, [&](NodeOptions& o) { o.lookups.cache_max_bytes = one - 1; });
  ASSERT_EQ(lookupAt(kVillage, holderQuery(holders[0])).outcome, LookupOutcome::kFound);
  EXPECT_EQ(at(kVillage).lookups().cacheSize(), 0u);
  EXPECT_EQ(at(kVillage).lookups().cacheBytes(), 0u);
}

TEST_F(LookupTest, MalformedRequestsGetAClearSignedRefusalAndTheNodeKeepsServing) {
  auto garbage = sendRaw(kVillage, kTown, toBytes("not a sealed envelope at all"));
  ASSERT_TRUE(garbage.isOk()) << garbage.status().toString();
  // Nobody to address it to: the refusal names the town itself (a reply must name a receiver).
  EXPECT_NE(refusalFrom(kTown, *garbage, kTown).find("MALFORMED"), std::string::npos);

  // Well signed, but by a node that is not the town's child.
  capnp::MallocMessageBuilder b;
  auto req = b.initRoot<wire::LookupRequest>();
  req.setQuestion(1);
  req.setKey(kOtherHolder);
  req.setBudgetMs(1000);
  auto stranger = sendRaw(kVillage, kTown,
                          sealNow(identities_[kOtherDistrict], kLookupRequestKind, division(kTown), capnp_io::flatBytes(b), 5));
  ASSERT_TRUE(stranger.isOk());
  EXPECT_NE(refusalFrom(kTown, *stranger, kOtherDistrict).find("UNAUTHORIZED"), std::string::npos);

  // A child's request with a key that is not a valid ID.
  capnp::MallocMessageBuilder bad;
  auto bad_req = bad.initRoot<wire::LookupRequest>();
  bad_req.setQuestion(1);
  bad_req.setKey("123");
  bad_req.setBudgetMs(1000);
  auto bad_key = sendRaw(kVillage, kTown,
                         sealNow(identities_[kVillage], kLookupRequestKind, division(kTown), capnp_io::flatBytes(bad), 5));
  ASSERT_TRUE(bad_key.isOk());
  EXPECT_NE(refusalFrom(kTown, *bad_key, kVillage).find("MALFORMED"), std::string::npos);
  EXPECT_EQ(at(kTown).lookups().stats().requests_refused, 3u);

  auto r = lookupAt(kVillage, holderQuery(kOtherHolder));
  EXPECT_EQ(r.outcome, LookupOutcome::kNotFound);
}

TEST(LookupQueryTest, InputIsValidatedAndNormalised) {
  auto lower = makeLookupQuery(LookupQuestion::kHolder, "11010519491231002x");
  ASSERT_TRUE(lower.isOk());
  EXPECT_EQ(lower->key, "11010519491231002X");
  EXPECT_EQ(makeLookupQuery(LookupQuestion::kHolder, "12345").status().code(), ErrorCode::kInvalidArgument);
  auto hash = makeLookupQuery(LookupQuestion::kMaterial, std::string(64, 'A'));
  ASSERT_TRUE(hash.isOk());
  EXPECT_EQ(hash->key, std::string(64, 'a'));
  EXPECT_FALSE(makeLookupQuery(LookupQuestion::kMaterial, std::string(63, 'a')).isOk());
  EXPECT_FALSE(makeLookupQuery(LookupQuestion::kMaterial, std::string(64, 'g')).isOk());
  EXPECT_TRUE(makeLookupQuery(LookupQuestion::kCredential, "ZZ-2026_01").isOk());
  EXPECT_FALSE(makeLookupQuery(LookupQuestion::kCredential, "").isOk());
  EXPECT_FALSE(makeLookupQuery(LookupQuestion::kCredential, "a b").isOk());
  EXPECT_FALSE(makeLookupQuery(LookupQuestion::kCredential, std::string(65, 'a')).isOk());
}

}  // namespace
}  // namespace tongban
