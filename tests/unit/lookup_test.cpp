// Lookups on real nodes in the simulated world: city → two districts; under the first a town
// with two villages. Found locally, found by the city three hops up (with the route), not found
// authoritatively by the city, could-not-ask naming the cut link within the budget, coalescing,
// caching (hit, bound, expiry), forged answers rejected, malformed requests refused while the
// node keeps serving.
#include "node/lookup/lookup.h"

#include <map>

#include <gtest/gtest.h>

#include "federation/sync/wire.h"
#include "federation/trust/certificate.h"
#include "federation/util/capnp_io.h"
#include "node/app/node.h"
#include "schema/lookup.capnp.h"
#include "simulations/world/sim_world.h"
#include "tests/support/temp_dir.h"

namespace tongban {
namespace {

constexpr TimeMs kStart = 1795395600000LL;  // 2026-11-23 09:00 CST
constexpr const char* kCity = "440600000000";
constexpr const char* kDistrict = "440604000000";
constexpr const char* kTown = "440604001000";
constexpr const char* kVillage = "440604001001";
constexpr const char* kSibling = "440604001002";
constexpr const char* kOtherDistrict = "440605000000";
constexpr const char* kHolder = "11010519491231002X";

DivisionCode code(const char* text) { return DivisionCode::parse(text).value(); }

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

class LookupTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* codes[] = {kCity, kDistrict, kTown, kVillage, kSibling, kOtherDistrict};
    for (uint8_t i = 0; i < 6; ++i) {
      std::array<uint8_t, 32> seed{};
      seed.fill(static_cast<uint8_t>(i + 1));
      auto c = code(codes[i]);
      const TimeMs until = kStart + 1000LL * 3600 * 24 * 365;
      Result<Identity> id = i == 0 ? createRootIdentity(c, "佛山市", KeyPair::fromSeed(seed), kStart - 1000, until)
                                   : issueChildIdentity(identities_[c.parent()->str()], c, names_[codes[i]],
                                                        KeyPair::fromSeed(seed), i, kStart - 1000, until);
      ASSERT_TRUE(id.isOk()) << id.status().toString();
      identities_[codes[i]] = *id;
      endpoints_[codes[i]] = world_.addEndpoint(c, codes[i]);
      randoms_[codes[i]] = std::make_unique<Random>(i + 100);
    }
    registerFederationKinds(kinds_);
    registerLookupKinds(kinds_);
    verifier_.emplace(Verifier::create(identities_[kCity].root_certificate, &kinds_).value());
    for (const char* c : codes) start(c);
  }

  void start(const std::string& c, LookupSettings settings = {}) {
    NodeOptions o;
    o.identity = identities_[c];
    o.data_dir = dir_.path() + "/" + c;
    o.synchronous = Synchronous::kOff;
    o.limits.heartbeat_interval_ms = 5000;
    o.limits.request_timeout_ms = 1000;
    o.limits.retry_initial_ms = 200;
    o.limits.retry_max_ms = 10000;
    o.lookups = settings;
    int ep = endpoints_[c];
    auto node = Node::open(o, NodeEnvironment{&world_.clock(ep), &world_.transport(ep), randoms_[c].get(), nullptr});
    ASSERT_TRUE(node.isOk()) << node.status().toString();
    nodes_[c] = std::move(node).value();
  }

  void restartWith(const std::string& c, LookupSettings settings) {
    nodes_[c].reset();
    world_.crash(endpoints_[c]);
    world_.restart(endpoints_[c]);
    start(c, settings);
  }

  void runFor(DurationMs ms) { ASSERT_TRUE(world_.runUntil(world_.now() + ms).isOk()); }

  // Stores a material for `holder` at `at` and waits until its record reached the city.
  std::string store(const std::string& at, const std::string& holder, const std::string& kind = "id_card") {
    auto stored = nodes_[at]->materials().put(toBytes(kind + " of " + holder + " at " + at), kind, holder,
                                              "image/jpeg", "clerk1", world_.now());
    EXPECT_TRUE(stored.isOk()) << stored.status().toString();
    if (at != kCity) {
      for (int i = 0; i < 600 && !recordedAtCity(stored->hash); ++i) runFor(100);
      EXPECT_TRUE(recordedAtCity(stored->hash)) << "the record did not reach the city";
    }
    return stored->hash;
  }

  bool recordedAtCity(const std::string& hash) {
    auto stmt = nodes_[kCity]->database().prepare("SELECT COUNT(*) FROM subtree_materials WHERE hash = ?1").value();
    stmt.bind(1, hash);
    return stmt.step().value() && stmt.columnInt64(0) > 0;
  }

  using Slot = std::shared_ptr<std::optional<LookupResult>>;
  Slot startLookup(const std::string& at, const LookupQuery& q, DurationMs budget = 0) {
    auto slot = std::make_shared<std::optional<LookupResult>>();
    nodes_[at]->lookups().lookup(q, budget, [slot](LookupResult r) {
      EXPECT_FALSE(slot->has_value()) << "a lookup's callback ran twice";
      slot->emplace(std::move(r));
    });
    EXPECT_FALSE(slot->has_value()) << "the callback must not run inside lookup()";
    return slot;
  }

  LookupResult await(const Slot& slot, DurationMs bound_ms = 60'000) {
    for (DurationMs waited = 0; waited < bound_ms && !slot->has_value(); waited += 10) runFor(10);
    EXPECT_TRUE(slot->has_value()) << "the lookup never answered";
    return slot->has_value() ? **slot : LookupResult{};
  }

  LookupResult lookupAt(const std::string& at, const LookupQuery& q, DurationMs budget = 0) {
    return await(startLookup(at, q, budget));
  }

  static std::vector<std::string> routeOf(const LookupResult& r) {
    std::vector<std::string> out;
    for (const auto& hop : r.route) out.push_back(hop.division);
    return out;
  }

  // A hand-made request from a client endpoint at `from`'s bus to `to`'s lookup subject.
  Result<Bytes> sendRaw(const std::string& from, const std::string& to, const Bytes& bytes) {
    if (!clients_.count(from)) clients_[from] = world_.addEndpoint(code(from.c_str()), "client-" + from);
    auto slot = std::make_shared<std::optional<Result<Bytes>>>();
    world_.transport(clients_[from]).request(lookupSubject(code(to.c_str())), bytes, 2000,
                                             [slot](Result<Bytes> r) { slot->emplace(std::move(r)); });
    for (int i = 0; i < 100 && !slot->has_value(); ++i) runFor(50);
    if (!slot->has_value()) return Status(ErrorCode::kInternal, "the request never completed");
    return std::move(**slot);
  }

  // The error text of a refusal (kind 122 with `error`) signed by `signer`.
  std::string refusalFrom(const std::string& signer, const Bytes& reply, const std::string& receiver) {
    auto opened = verifier_->open(reply, code(receiver.c_str()), world_.now(), nullptr);
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

  std::map<std::string, std::string> names_{{kDistrict, "禅城区"}, {kTown, "石湾镇"}, {kVillage, "石湾第1村"},
                                            {kSibling, "石湾第2村"}, {kOtherDistrict, "南海区"}};
  testing::TempDir dir_;
  sim::SimWorld world_{7, kStart};
  std::map<std::string, Identity> identities_;
  std::map<std::string, int> endpoints_;
  std::map<std::string, int> clients_;
  std::map<std::string, std::unique_ptr<Random>> randoms_;
  std::map<std::string, std::unique_ptr<Node>> nodes_;
  KindRegistry kinds_;
  std::optional<Verifier> verifier_;
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
  EXPECT_EQ(nodes_[kVillage]->lookups().stats().upstream_requests, 0u);
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
  world_.setLinkUp(code(kTown), false);
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
  EXPECT_EQ(nodes_[kVillage]->lookups().stats().upstream_requests, 0u);
}

TEST_F(LookupTest, IdenticalConcurrentLookupsShareOneUpstreamRequest) {
  store(kOtherDistrict, kHolder);
  auto first = startLookup(kVillage, holderQuery(kHolder));
  auto second = startLookup(kVillage, holderQuery(kHolder));
  auto a = await(first), b = await(second);
  EXPECT_EQ(a.outcome, LookupOutcome::kFound);
  EXPECT_EQ(b.outcome, LookupOutcome::kFound);
  EXPECT_EQ(b.answered_by, kCity);
  EXPECT_EQ(nodes_[kVillage]->lookups().stats().upstream_requests, 1u);
  EXPECT_EQ(nodes_[kVillage]->lookups().stats().coalesced, 1u);
  EXPECT_EQ(nodes_[kTown]->lookups().stats().requests_served, 1u);
}

TEST_F(LookupTest, SecondLookupIsServedFromTheCacheHereAndAlongTheWay) {
  store(kOtherDistrict, kHolder);
  ASSERT_EQ(lookupAt(kVillage, holderQuery(kHolder)).outcome, LookupOutcome::kFound);
  auto again = lookupAt(kVillage, holderQuery(kHolder));
  EXPECT_EQ(again.outcome, LookupOutcome::kFound);
  EXPECT_EQ(again.answered_by, kCity);
  EXPECT_EQ(again.cached_at, kVillage);
  EXPECT_EQ(nodes_[kVillage]->lookups().stats().upstream_requests, 1u);
  // The sibling village's question stops at the town, which cached the city's answer.
  auto sibling = lookupAt(kSibling, holderQuery(kHolder));
  EXPECT_EQ(sibling.outcome, LookupOutcome::kFound);
  EXPECT_EQ(sibling.answered_by, kCity);
  EXPECT_EQ(sibling.cached_at, kTown);
  EXPECT_EQ(routeOf(sibling), (std::vector<std::string>{kSibling, kTown}));
  // Negative answers are never cached.
  ASSERT_EQ(lookupAt(kVillage, holderQuery(kOtherHolder)).outcome, LookupOutcome::kNotFound);
  ASSERT_EQ(lookupAt(kVillage, holderQuery(kOtherHolder)).outcome, LookupOutcome::kNotFound);
  EXPECT_EQ(nodes_[kVillage]->lookups().stats().upstream_requests, 3u);
}

TEST_F(LookupTest, CacheIsBoundedAndItsEntriesExpire) {
  LookupSettings small;
  small.cache_entries = 2;
  small.cache_ttl_ms = 20'000;
  restartWith(kVillage, small);
  std::vector<std::string> holders;
  for (unsigned i = 1; i <= 3; ++i) {
    holders.push_back(residentId(i));
    store(kOtherDistrict, holders.back());
  }
  for (const auto& h : holders) ASSERT_EQ(lookupAt(kVillage, holderQuery(h)).outcome, LookupOutcome::kFound);
  EXPECT_EQ(nodes_[kVillage]->lookups().cacheSize(), 2u);
  // The most recent one is cached; the first was evicted.
  EXPECT_EQ(lookupAt(kVillage, holderQuery(holders[2])).cached_at, kVillage);
  EXPECT_NE(lookupAt(kVillage, holderQuery(holders[0])).cached_at, kVillage);
  // After the lifetime, the answer is asked for again (the town's cache has expired too? no:
  // it keeps 5 minutes; the village's 20 s is what is tested here).
  runFor(25'000);
  auto expired = lookupAt(kVillage, holderQuery(holders[2]));
  EXPECT_EQ(expired.outcome, LookupOutcome::kFound);
  EXPECT_NE(expired.cached_at, kVillage);
  nodes_[kVillage]->lookups().clearCache();
  EXPECT_EQ(nodes_[kVillage]->lookups().cacheSize(), 0u);
}

// A rogue responder in the town's place (the town is down): each forged reply is rejected and
// the village says it could not ask, never "found" or "not found".
class ForgedAnswerTest : public LookupTest {
 protected:
  enum class Forgery { kNotFoundSignedByTheTown, kTamperedAnswer, kWrongNonce, kUnknownRoot, kRecordOutsideSubtree };

  Bytes answerBytes(const LookupQuery& q, uint8_t outcome, const std::string& issued_at) {
    capnp::MallocMessageBuilder b;
    auto a = b.initRoot<wire::LookupAnswer>();
    a.setQuestion(static_cast<uint8_t>(q.question));
    a.setKey(q.key);
    a.setOutcome(outcome);
    if (!issued_at.empty()) {
      auto rec = a.initRecords(1)[0];
      rec.setType("material");
      rec.setId(std::string(64, 'a'));
      rec.setHolder(q.key);
      rec.setKind("id_card");
      rec.setIssuedAt(issued_at);
    }
    return capnp_io::flatBytes(b);
  }

  Bytes seal(const Identity& by, MessageKind kind, const std::string& target, const Bytes& payload, uint64_t nonce) {
    SealParams p;
    p.kind = kind;
    p.timestamp_ms = world_.now();
    p.target = code(target.c_str());
    p.payload = payload;
    p.nonce = nonce;
    return sealEnvelope(by, p);
  }

  void installRogue(Forgery forgery) {
    nodes_[kTown].reset();
    world_.crash(endpoints_[kTown]);
    rogue_ = world_.addEndpoint(code(kTown), "rogue");
    auto& t = world_.transport(rogue_);
    (void)t.subscribe(lookupSubject(code(kTown)), [this, forgery, &t](const InboundMessage& m) {
      auto request = verifier_->open(m.data, code(kTown), world_.now(), nullptr);
      ASSERT_TRUE(request.isOk()) << request.status().toString();
      const LookupQuery q = holderQuery(kOtherHolder);
      const Identity& town = identities_[kTown];
      Bytes answer;
      uint64_t nonce = request->nonce;
      Identity signer = town;
      switch (forgery) {
        case Forgery::kNotFoundSignedByTheTown:
          answer = seal(town, kLookupAnswerKind, kTown, answerBytes(q, 2, ""), 0);
          break;
        case Forgery::kTamperedAnswer:
          answer = seal(identities_[kCity], kLookupAnswerKind, kCity, answerBytes(q, 2, ""), 0);
          answer[answer.size() / 2] ^= 0x01;
          break;
        case Forgery::kWrongNonce:
          answer = seal(identities_[kCity], kLookupAnswerKind, kCity, answerBytes(q, 2, ""), 0);
          nonce += 1;
          break;
        case Forgery::kUnknownRoot: {
          std::array<uint8_t, 32> seed{};
          seed.fill(99);
          signer = createRootIdentity(code(kCity), "假城市", KeyPair::fromSeed(seed), kStart - 1000, kStart + 10'000'000'000LL).value();
          answer = seal(signer, kLookupAnswerKind, kCity, answerBytes(q, 2, ""), 0);
          break;
        }
        case Forgery::kRecordOutsideSubtree:
          // The town says "found" for a record of another district: it cannot hold that.
          answer = seal(town, kLookupAnswerKind, kTown, answerBytes(q, 1, kOtherDistrict), 0);
          break;
      }
      capnp::MallocMessageBuilder b;
      auto reply = b.initRoot<wire::LookupReply>();
      reply.setAnswer(capnp_io::dataOf(answer));
      auto hop = reply.initRoute(1)[0];
      hop.setDivision(kTown);
      hop.setAtMs(world_.now());
      (void)t.reply(m, seal(forgery == Forgery::kUnknownRoot ? signer : town, kLookupReplyKind, kVillage,
                            capnp_io::flatBytes(b), nonce));
    });
  }

  int rogue_ = -1;
};

TEST_F(ForgedAnswerTest, ForgedOrTamperedAnswersAreRejected) {
  for (auto forgery : {Forgery::kNotFoundSignedByTheTown, Forgery::kTamperedAnswer, Forgery::kWrongNonce,
                       Forgery::kUnknownRoot, Forgery::kRecordOutsideSubtree}) {
    SCOPED_TRACE(static_cast<int>(forgery));
    if (rogue_ >= 0) world_.crash(rogue_);
    installRogue(forgery);
    const uint64_t rejected = nodes_[kVillage]->lookups().stats().answers_rejected;
    auto r = lookupAt(kVillage, holderQuery(kOtherHolder));
    EXPECT_EQ(r.outcome, LookupOutcome::kCouldNotAsk);
    EXPECT_EQ(r.answered_by, kVillage);
    EXPECT_NE(r.reason.find("failed verification"), std::string::npos) << r.reason;
    EXPECT_EQ(nodes_[kVillage]->lookups().stats().answers_rejected, rejected + 1);
    EXPECT_EQ(nodes_[kVillage]->lookups().cacheSize(), 0u);
  }
}

TEST_F(LookupTest, MalformedRequestsGetAClearSignedRefusalAndTheNodeKeepsServing) {
  auto garbage = sendRaw(kVillage, kTown, toBytes("not a sealed envelope at all"));
  ASSERT_TRUE(garbage.isOk()) << garbage.status().toString();
  // Nobody to address it to: the refusal names the town itself (a reply must name a receiver).
  EXPECT_NE(refusalFrom(kTown, *garbage, kTown).find("MALFORMED"), std::string::npos);

  // Well signed, but by a node that is not the town's child.
  SealParams p;
  p.kind = kLookupRequestKind;
  p.timestamp_ms = world_.now();
  p.target = code(kTown);
  p.nonce = 5;
  capnp::MallocMessageBuilder b;
  auto req = b.initRoot<wire::LookupRequest>();
  req.setQuestion(1);
  req.setKey(kOtherHolder);
  req.setBudgetMs(1000);
  p.payload = capnp_io::flatBytes(b);
  auto stranger = sendRaw(kVillage, kTown, sealEnvelope(identities_[kOtherDistrict], p));
  ASSERT_TRUE(stranger.isOk());
  EXPECT_NE(refusalFrom(kTown, *stranger, kOtherDistrict).find("UNAUTHORIZED"), std::string::npos);

  // A child's request with a key that is not a valid ID.
  capnp::MallocMessageBuilder bad;
  auto bad_req = bad.initRoot<wire::LookupRequest>();
  bad_req.setQuestion(1);
  bad_req.setKey("123");
  bad_req.setBudgetMs(1000);
  p.payload = capnp_io::flatBytes(bad);
  auto bad_key = sendRaw(kVillage, kTown, sealEnvelope(identities_[kVillage], p));
  ASSERT_TRUE(bad_key.isOk());
  EXPECT_NE(refusalFrom(kTown, *bad_key, kVillage).find("MALFORMED"), std::string::npos);
  EXPECT_EQ(nodes_[kTown]->lookups().stats().requests_refused, 3u);

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
