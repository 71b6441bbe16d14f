// Feeds over the simulated world: city → district → town → village, plus a sibling district,
// each endpoint with its own SQLite file, Verifier and Feed (no Node: the feed alone), whose
// applier stores entries in a test table and says "known" for entries it holds. Entries travel
// down level by level, stop at cut links and arrive exactly once after healing; freshness stays
// at the last successful pull below a cut; a crash resumes from the persisted cursor; a parent
// restored from an old backup makes its children pull again; non-children and garbage get no
// answer; an entry the applier refuses for good is skipped and the rest arrive. Hints: an entry
// reaches the village in well under a second with a 10-minute poll; hints not signed by the parent
// are refused and start no pull; a flood of hints starts at most one pull per kFeedHintPullGapMs;
// a lost hint is made up for by the next poll.
#include "federation/sync/feed.h"

#include <map>
#include <optional>

#include <gtest/gtest.h>

#include "federation/sync/wire.h"
#include "federation/trust/certificate.h"
#include "federation/util/capnp_io.h"
#include "schema/feed.capnp.h"
#include "simulations/world/sim_world.h"
#include "tests/support/store_helpers.h"
#include "tests/support/temp_dir.h"

namespace tongban {
namespace {

constexpr TimeMs kStart = 1795395600000LL;  // 2026-11-23 09:00 CST
constexpr const char* kCity = "440600000000";
constexpr const char* kDistrict = "440604000000";
constexpr const char* kTown = "440604001000";
constexpr const char* kVillage = "440604001001";
constexpr const char* kOtherDistrict = "440605000000";
constexpr DurationMs kPollMs = 2000;
constexpr DurationMs kLongPollMs = 10 * 60 * 1000;  // hints must carry entries, not polls

DivisionCode code(const char* text) { return DivisionCode::parse(text).value(); }

struct FeedNode {
  Identity identity;
  int endpoint = -1;
  std::unique_ptr<Random> random;
  KindRegistry kinds;
  std::optional<Verifier> verifier;
  std::unique_ptr<Database> db;
  std::unique_ptr<Feed> feed;
  Clock* clock = nullptr;
  // Applier observations since the last start.
  int calls = 0;
  int known = 0;
  int transient_failures = 0;  // entries starting with "flaky" fail this many times (kIo)
  TimeMs future_until = 0;     // entries starting with "future" are kFutureDated before this time
};

class FeedTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* codes[] = {kCity, kDistrict, kTown, kVillage, kOtherDistrict};
    for (uint8_t i = 0; i < 5; ++i) {
      std::array<uint8_t, 32> seed{};
      seed.fill(static_cast<uint8_t>(i + 1));
      auto c = code(codes[i]);
      const TimeMs until = kStart + 1000LL * 3600 * 24 * 365;
      Result<Identity> id = i == 0 ? createRootIdentity(c, codes[i], KeyPair::fromSeed(seed), kStart - 1000, until)
                                   : issueChildIdentity(nodes_[c.parent()->str()].identity, c, codes[i],
                                                        KeyPair::fromSeed(seed), i, kStart - 1000, until);
      ASSERT_TRUE(id.isOk()) << id.status().toString();
      FeedNode& n = nodes_[codes[i]];
      n.identity = *id;
      n.endpoint = world_.addEndpoint(c, codes[i]);
      n.random = std::make_unique<Random>(i + 100);
      registerFederationKinds(n.kinds);
      registerFeedKinds(n.kinds);
    }
    for (auto& [c, n] : nodes_) n.verifier.emplace(Verifier::create(n.identity.root_certificate, &n.kinds).value());
  }

  void start(const std::string& c, DurationMs poll_ms = kPollMs) {
    FeedNode& n = nodes_[c];
    n.db = store_testing::openDb(dir_.file(c + ".db"), Synchronous::kOff);
    ASSERT_TRUE(n.db);
    ASSERT_TRUE(Feed::migrate(*n.db).isOk());
    ASSERT_TRUE(n.db->exec("CREATE TABLE IF NOT EXISTS seen (payload BLOB PRIMARY KEY)").isOk());
    n.calls = n.known = 0;
    FeedSettings s;
    s.poll_interval_ms = poll_ms;
    s.request_timeout_ms = 500;
    FeedNode* np = &n;
    n.clock = &world_.clock(n.endpoint);
    auto applier = [np](const Bytes& entry) -> Result<bool> {
      ++np->calls;
      const std::string text = toString(entry);
      if (text.rfind("refuse", 0) == 0) return Status(ErrorCode::kInvalidArgument, "the test refuses " + text);
      // As the node layer's applier answers a record signed by a key it knows to be revoked.
      if (text.rfind("revoked", 0) == 0) return Status(ErrorCode::kRevoked, "the test's key of " + text + " is revoked");
      if (text.rfind("future", 0) == 0 && np->clock->now() < np->future_until) {
        return Status(ErrorCode::kFutureDated, text + " is dated ahead of this node's clock");
      }
      if (text.rfind("flaky", 0) == 0 && np->transient_failures > 0) {
        --np->transient_failures;
        return Status(ErrorCode::kIo, "disk hiccup");
      }
      TB_ASSIGN_OR_RETURN(auto stmt, np->db->prepare("INSERT OR IGNORE INTO seen (payload) VALUES (?1)"));
      TB_RETURN_IF_ERROR(stmt.bind(1, entry).run());
      if (np->db->changes() == 0) {
        ++np->known;
        return false;
      }
      return true;
    };
    n.feed = std::make_unique<Feed>(n.identity, *n.db, *n.verifier, world_.clock(n.endpoint),
                                    world_.transport(n.endpoint), *n.random, s, applier);
    auto st = n.feed->start();
    ASSERT_TRUE(st.isOk()) << st.toString();
  }

  void startAll(DurationMs poll_ms = kPollMs) {
    for (auto c : {kCity, kDistrict, kTown, kVillage, kOtherDistrict}) start(c, poll_ms);
  }

  void crash(const std::string& c) {
    world_.crash(nodes_[c].endpoint);
    nodes_[c].feed.reset();
    nodes_[c].db.reset();
  }

  void restart(const std::string& c) {
    world_.restart(nodes_[c].endpoint);
    start(c);
  }

  // What the node layer does for an entry made here: store its effect and append it, in one
  // transaction.
  void appendAt(const std::string& c, const std::vector<std::string>& entries) {
    FeedNode& n = nodes_[c];
    auto txn = n.db->begin();
    ASSERT_TRUE(txn.isOk());
    for (const auto& e : entries) {
      auto stmt = n.db->prepare("INSERT OR IGNORE INTO seen (payload) VALUES (?1)");
      ASSERT_TRUE(stmt.isOk());
      ASSERT_TRUE(stmt->bind(1, toBytes(e)).run().isOk());
      auto index = n.feed->append(toBytes(e));
      ASSERT_TRUE(index.isOk()) << index.status().toString();
    }
    ASSERT_TRUE(txn->commit().isOk());
  }

  std::vector<std::string> seen(const std::string& c) {
    std::vector<std::string> out;
    auto stmt = nodes_[c].db->prepare("SELECT payload FROM seen ORDER BY rowid");
    EXPECT_TRUE(stmt.isOk());
    while (stmt->step().value()) out.push_back(toString(stmt->columnBlob(0)));
    return out;
  }

  std::vector<std::string> log(const std::string& c) {
    std::vector<std::string> out;
    auto entries = nodes_[c].feed->entriesAfter(0, 100'000);
    EXPECT_TRUE(entries.isOk());
    uint64_t expect = 1;
    for (const auto& [index, payload] : *entries) {
      EXPECT_EQ(index, expect++) << "the log has no gaps";
      out.push_back(toString(payload));
    }
    return out;
  }

  const FeedState& state(const std::string& c) { return nodes_[c].feed->state(); }

  void runFor(DurationMs ms) { ASSERT_TRUE(world_.runUntil(world_.now() + ms).isOk()); }

  // A request sealed by `signer` for `target`'s feed, sent from a client on `target`'s bus.
  std::optional<Result<Bytes>> ask(const Bytes& data, const std::string& target) {
    int client = world_.addEndpoint(code(target.c_str()), "client");
    std::optional<Result<Bytes>> reply;
    world_.transport(client).request(feedSubject(code(target.c_str())), data, 500,
                                     [&](Result<Bytes> r) { reply.emplace(std::move(r)); });
    runFor(1000);
    return reply;
  }

  // A feed request as a child seals it: FeedRequest{after, maxEntries} (schema/feed.capnp).
  Bytes sealedRequest(const std::string& signer, const std::string& target, uint64_t nonce, uint64_t after = 0) {
    capnp::MallocMessageBuilder b;
    auto r = b.initRoot<wire::FeedRequest>();
    r.setAfter(after);
    r.setMaxEntries(16);
    SealParams p;
    p.kind = kinds::kFeedRequest;
    p.timestamp_ms = world_.now();
    p.target = code(target.c_str());
    p.payload = capnp_io::flatBytes(b);
    p.nonce = nonce;
    return sealEnvelope(nodes_[signer].identity, p);
  }

  // A hint as `signer` seals it (a node about its own log: target = signer).
  Bytes sealedHint(const std::string& signer, uint64_t head, std::optional<std::string> target = std::nullopt,
                   std::optional<TimeMs> at = std::nullopt, MessageKind kind = kinds::kFeedHint) {
    capnp::MallocMessageBuilder b;
    b.initRoot<wire::FeedHint>().setHead(head);
    SealParams p;
    p.kind = kind;
    p.timestamp_ms = at.value_or(world_.now());
    p.target = code(target.value_or(signer).c_str());
    p.payload = capnp_io::flatBytes(b);
    return sealEnvelope(nodes_[signer].identity, p);
  }

  // A client endpoint on `division`'s bus (one per bus).
  int clientOn(const std::string& division) {
    auto [it, added] = clients_.try_emplace(division, -1);
    if (added) it->second = world_.addEndpoint(code(division.c_str()), "client");
    return it->second;
  }

  // Publishes `data` on `parent`'s hint subject from its bus, as anyone there could.
  void publishHint(const std::string& parent, const Bytes& data) {
    ASSERT_TRUE(world_.transport(clientOn(parent)).publish(feedHintSubject(code(parent.c_str())), data).isOk());
  }

  // Every hint published on `node`'s hint subject, as a listener on its bus receives it.
  std::shared_ptr<std::vector<Bytes>> listenToHints(const std::string& node) {
    auto got = std::make_shared<std::vector<Bytes>>();
    auto sub = world_.transport(clientOn(node)).subscribe(feedHintSubject(code(node.c_str())),
                                                          [got](const InboundMessage& m) { got->push_back(m.data); });
    EXPECT_TRUE(sub.isOk());
    return got;
  }

  // Stands in for `parent` (not running): answers every feed request with an empty batch signed by
  // `parent` that says "you have all I hold", so the child's cursor never reaches a hinted head.
  // Returns the number of requests seen.
  std::shared_ptr<int> serveEmptyFeedAs(const std::string& parent) {
    auto requests = std::make_shared<int>(0);
    const int endpoint = clientOn(parent);
    auto sub = world_.transport(endpoint).subscribe(feedSubject(code(parent.c_str())), [=, this](const InboundMessage& m) {
      ++*requests;
      auto opened = nodes_[parent].verifier->open(m.data, code(parent.c_str()), world_.now(), nullptr);
      ASSERT_TRUE(opened.isOk()) << opened.status().toString();
      capnp::MallocMessageBuilder b;
      auto batch = b.initRoot<wire::FeedBatch>();
      batch.setHead(0);
      batch.setFreshAsOfMs(world_.now());
      SealParams p;
      p.kind = kinds::kFeedBatch;
      p.timestamp_ms = world_.now();
      p.target = opened->signer;
      p.payload = capnp_io::flatBytes(b);
      p.nonce = opened->nonce;
      (void)world_.transport(endpoint).reply(m, sealEnvelope(nodes_[parent].identity, p));
    });
    EXPECT_TRUE(sub.isOk());
    return requests;
  }

  int count(const std::vector<std::string>& v, const std::string& x) {
    return static_cast<int>(std::count(v.begin(), v.end(), x));
  }

  testing::TempDir dir_;
  sim::SimWorld world_{11, kStart};
  std::map<std::string, FeedNode> nodes_;
  std::map<std::string, int> clients_;
};

TEST_F(FeedTest, AnEntryAppendedAtTheCityReachesTheVillageThroughTownAndDistrict) {
  startAll();
  runFor(1000);
  const TimeMs appended_at = world_.now();
  appendAt(kCity, {"revoke A-1"});
  runFor(4 * kPollMs);
  for (auto c : {kDistrict, kTown, kVillage, kOtherDistrict}) {
    EXPECT_EQ(seen(c), std::vector<std::string>{"revoke A-1"}) << c;
    EXPECT_EQ(log(c), std::vector<std::string>{"revoke A-1"}) << c;
    const FeedState& s = state(c);
    EXPECT_EQ(s.parent_cursor, 1u) << c;
    EXPECT_EQ(s.head, 1u) << c;
    EXPECT_EQ(s.link, "up") << c;
    EXPECT_TRUE(s.last_error.empty()) << c << ": " << s.last_error;
    EXPECT_GE(s.fresh_as_of_ms, appended_at) << c << ": fresh as of a time after the entry was appended";
    EXPECT_LE(s.fresh_as_of_ms, world_.now()) << c;
    EXPECT_GT(s.last_pull_ms, appended_at) << c;
  }
  EXPECT_EQ(state(kCity).link, "none");
  EXPECT_EQ(state(kCity).fresh_as_of_ms, world_.now());
  EXPECT_EQ(state(kCity).head, 1u);
}

TEST_F(FeedTest, AnEntryAppendedAtADistrictReachesItsDescendantsButNotTheCityOrASiblingDistrict) {
  startAll();
  runFor(1000);
  appendAt(kDistrict, {"suspend B-7"});
  runFor(5 * kPollMs);
  EXPECT_EQ(seen(kTown), std::vector<std::string>{"suspend B-7"});
  EXPECT_EQ(seen(kVillage), std::vector<std::string>{"suspend B-7"});
  EXPECT_TRUE(seen(kCity).empty());
  EXPECT_TRUE(log(kCity).empty());
  EXPECT_TRUE(seen(kOtherDistrict).empty());
  EXPECT_TRUE(log(kOtherDistrict).empty());
  // The district's own log has it once (appended by the caller; the applier is not called for it).
  EXPECT_EQ(log(kDistrict), std::vector<std::string>{"suspend B-7"});
  EXPECT_EQ(nodes_[kDistrict].calls, 0);
}

TEST_F(FeedTest, ACutLinkDelaysEntriesFreezesFreshnessBelowItAndAfterHealingEverythingArrivesOnce) {
  startAll();
  runFor(5000);
  world_.setLinkUp(code(kTown), false);
  runFor(1000);  // whatever was in flight is over
  const TimeMs town_fresh = state(kTown).fresh_as_of_ms;
  const TimeMs village_fresh = state(kVillage).fresh_as_of_ms;
  const TimeMs town_last_pull = state(kTown).last_pull_ms;
  ASSERT_GT(town_fresh, kStart);

  appendAt(kDistrict, {"revoke C-3"});
  runFor(60'000);
  EXPECT_EQ(log(kDistrict), std::vector<std::string>{"revoke C-3"});
  EXPECT_TRUE(seen(kTown).empty());
  EXPECT_TRUE(seen(kVillage).empty());
  EXPECT_EQ(state(kTown).link, "down");
  // The simulated bus says "no responders" for a cut link, as nats-server does for a subject
  // with no subscriber in reach; a lost reply would read "no answer within 500 ms".
  EXPECT_EQ(state(kTown).last_error,
            "feed from 440604000000: nobody answers on tb.440604000000.feed (link cut or node not running)");
  EXPECT_EQ(state(kTown).fresh_as_of_ms, town_fresh) << "below the cut, freshness stays at the last pull";
  EXPECT_EQ(state(kTown).last_pull_ms, town_last_pull);
  EXPECT_EQ(state(kVillage).fresh_as_of_ms, village_fresh);
  EXPECT_EQ(state(kVillage).link, "up") << "the village still reaches its town";
  // Above the cut time moves on.
  EXPECT_EQ(state(kCity).fresh_as_of_ms, world_.now());
  EXPECT_GE(state(kDistrict).fresh_as_of_ms, world_.now() - 2 * kPollMs);

  // The district's entry went up by other means and the city appended it: the district's applier
  // sees it again, says "known", and does not append it a second time.
  appendAt(kCity, {"revoke C-3", "revoke C-4"});
  runFor(3 * kPollMs);
  EXPECT_GE(nodes_[kDistrict].known, 1);
  EXPECT_EQ(log(kDistrict), (std::vector<std::string>{"revoke C-3", "revoke C-4"}));
  EXPECT_EQ(log(kOtherDistrict), (std::vector<std::string>{"revoke C-3", "revoke C-4"}));

  world_.setLinkUp(code(kTown), true);
  runFor(6 * kPollMs);
  for (auto c : {kTown, kVillage}) {
    EXPECT_EQ(seen(c), (std::vector<std::string>{"revoke C-3", "revoke C-4"})) << c;
    EXPECT_EQ(log(c), (std::vector<std::string>{"revoke C-3", "revoke C-4"})) << c;
    EXPECT_EQ(nodes_[c].calls, 2) << c << ": each entry offered exactly once";
    EXPECT_GT(state(c).fresh_as_of_ms, town_fresh) << c;
    EXPECT_EQ(state(c).link, "up") << c;
  }
}

TEST_F(FeedTest, ACrashedNodeResumesFromItsPersistedCursor) {
  start(kCity);
  start(kDistrict);
  appendAt(kCity, {"e1", "e2", "e3", "e4", "e5"});
  runFor(3 * kPollMs);
  ASSERT_EQ(state(kDistrict).parent_cursor, 5u);
  const FeedState before = state(kDistrict);
  crash(kDistrict);
  appendAt(kCity, {"e6", "e7"});
  runFor(1000);
  restart(kDistrict);
  // Before it pulled again: the state came back from its database.
  EXPECT_EQ(state(kDistrict).parent_cursor, 5u);
  EXPECT_EQ(state(kDistrict).head, 5u);
  EXPECT_EQ(state(kDistrict).fresh_as_of_ms, before.fresh_as_of_ms);
  EXPECT_EQ(state(kDistrict).last_pull_ms, before.last_pull_ms);
  runFor(2 * kPollMs);
  EXPECT_EQ(nodes_[kDistrict].calls, 2) << "only the two new entries are offered";
  EXPECT_EQ(log(kDistrict), (std::vector<std::string>{"e1", "e2", "e3", "e4", "e5", "e6", "e7"}));
  EXPECT_EQ(state(kDistrict).parent_cursor, 7u);
}

TEST_F(FeedTest, ATransientApplierErrorRollsBackTheWholeBatchAndItIsRetried) {
  start(kCity);
  nodes_[kDistrict].transient_failures = 0;
  start(kDistrict);
  nodes_[kDistrict].transient_failures = 2;
  appendAt(kCity, {"a", "flaky", "b"});
  runFor(500);
  EXPECT_EQ(state(kDistrict).parent_cursor, 0u) << "cursor not moved";
  EXPECT_EQ(state(kDistrict).link, "down");
  EXPECT_NE(state(kDistrict).last_error.find("disk hiccup"), std::string::npos) << state(kDistrict).last_error;
  EXPECT_TRUE(log(kDistrict).empty()) << "nothing of the batch committed";
  runFor(4 * kPollMs);
  EXPECT_EQ(seen(kDistrict), (std::vector<std::string>{"a", "flaky", "b"}));
  EXPECT_EQ(log(kDistrict), (std::vector<std::string>{"a", "flaky", "b"}));
  EXPECT_EQ(nodes_[kDistrict].known, 0) << "the rolled-back entries were not half-stored";
  EXPECT_EQ(state(kDistrict).link, "up");
}

TEST_F(FeedTest, AParentRestoredFromAnOldBackupMakesItsChildPullAgain) {
  start(kCity);
  start(kDistrict);
  start(kTown);
  appendAt(kCity, {"r1", "r2", "r3", "r4", "r5"});
  runFor(4 * kPollMs);
  ASSERT_EQ(state(kTown).parent_cursor, 5u);

  // The district's disk dies; it comes back from a backup that held only two entries, and while
  // it cannot reach the city its head (2) is below the town's cursor (5).
  crash(kDistrict);
  {
    auto db = store_testing::openDb(dir_.file(std::string(kDistrict) + ".db"), Synchronous::kOff);
    ASSERT_TRUE(db->exec("DELETE FROM feed_log WHERE idx > 2; DELETE FROM seen WHERE payload NOT IN (x'7231', x'7232');"
                         "UPDATE feed_state SET parent_cursor = 2").isOk());
  }
  world_.setLinkUp(code(kDistrict), false);
  restart(kDistrict);
  runFor(2 * kPollMs);
  EXPECT_EQ(state(kTown).restarts_total, 1u);
  EXPECT_EQ(state(kTown).parent_cursor, 2u) << "pulled again from 0 up to the district's head";
  EXPECT_EQ(nodes_[kTown].known, 2) << "r1 and r2 came again and were recognised";
  EXPECT_EQ(log(kTown), (std::vector<std::string>{"r1", "r2", "r3", "r4", "r5"})) << "nothing appended twice";

  appendAt(kDistrict, {"x"});
  runFor(2 * kPollMs);
  EXPECT_EQ(log(kTown), (std::vector<std::string>{"r1", "r2", "r3", "r4", "r5", "x"}));
  EXPECT_EQ(state(kTown).parent_cursor, 3u);

  world_.setLinkUp(code(kDistrict), true);
  runFor(4 * kPollMs);
  EXPECT_EQ(log(kDistrict), (std::vector<std::string>{"r1", "r2", "x", "r3", "r4", "r5"}));
  EXPECT_EQ(log(kTown), (std::vector<std::string>{"r1", "r2", "r3", "r4", "r5", "x"}));
  EXPECT_EQ(state(kTown).parent_cursor, 6u);
}

TEST_F(FeedTest, AParentRestoredAndThenAppendedPastTheCursorIsNoticedByItsEntryDigest) {
  start(kCity);
  start(kDistrict);
  start(kTown);
  appendAt(kCity, {"r1", "r2", "r3", "r4", "r5"});
  runFor(4 * kPollMs);
  ASSERT_EQ(state(kTown).parent_cursor, 5u);

  crash(kDistrict);
  {
    auto db = store_testing::openDb(dir_.file(std::string(kDistrict) + ".db"), Synchronous::kOff);
    ASSERT_TRUE(db->exec("DELETE FROM feed_log WHERE idx > 2; DELETE FROM seen WHERE payload NOT IN (x'7231', x'7232');"
                         "UPDATE feed_state SET parent_cursor = 2").isOk());
  }
  world_.setLinkUp(code(kDistrict), false);
  restart(kDistrict);
  // Four new entries before the town asks again: the district's head (6) is past the town's
  // cursor (5), but its entry 5 is "y3", not the "r5" the town consumed there.
  appendAt(kDistrict, {"y1", "y2", "y3", "y4"});
  runFor(2 * kPollMs);
  EXPECT_EQ(state(kTown).restarts_total, 1u);
  EXPECT_EQ(log(kTown), (std::vector<std::string>{"r1", "r2", "r3", "r4", "r5", "y1", "y2", "y3", "y4"}));

  world_.setLinkUp(code(kDistrict), true);
  runFor(4 * kPollMs);
  EXPECT_EQ(log(kTown), (std::vector<std::string>{"r1", "r2", "r3", "r4", "r5", "y1", "y2", "y3", "y4"}));
  EXPECT_EQ(seen(kTown).size(), 9u);
  EXPECT_EQ(state(kTown).parent_cursor, state(kDistrict).head);
}

TEST_F(FeedTest, ARequestFromANonChildGetsNoAnswer) {
  start(kDistrict);
  appendAt(kDistrict, {"secret-ish"});
  // A village two levels down, a sibling district, the city (a parent): none is a child.
  for (auto signer : {kVillage, kOtherDistrict, kCity}) {
    Bytes request = sealedRequest(signer, kDistrict, 77);
    EXPECT_TRUE(nodes_[kDistrict].feed->handleRequest(request).empty()) << signer;
    auto reply = ask(request, kDistrict);
    ASSERT_TRUE(reply.has_value()) << signer;
    EXPECT_EQ(reply->status().code(), ErrorCode::kTimeout) << signer;
  }
  // A real child asking the same way is answered, signed by the district, bound to its nonce.
  auto reply = ask(sealedRequest(kTown, kDistrict, 78), kDistrict);
  ASSERT_TRUE(reply.has_value());
  ASSERT_TRUE(reply->isOk()) << reply->status().toString();
  auto opened = nodes_[kTown].verifier->open(reply->value(), code(kTown), world_.now(), nullptr);
  ASSERT_TRUE(opened.isOk()) << opened.status().toString();
  EXPECT_EQ(opened->kind, kinds::kFeedBatch);
  EXPECT_EQ(opened->signer, code(kDistrict));
  EXPECT_EQ(opened->nonce, 78u);
}

TEST_F(FeedTest, GarbageOnTheFeedSubjectIsIgnoredAndTheFeedKeepsServing) {
  start(kCity);
  start(kDistrict);
  appendAt(kDistrict, {"d1"});
  Bytes good = sealedRequest(kTown, kDistrict, 5);
  Bytes truncated(good.begin(), good.begin() + good.size() / 2);
  Bytes flipped = good;
  flipped[flipped.size() / 2] ^= 0x40;
  for (const Bytes& bad : {toBytes("definitely not capnp"), Bytes(20 * 1024, 0xff), truncated, flipped, Bytes{}}) {
    EXPECT_TRUE(nodes_[kDistrict].feed->handleRequest(bad).empty());
    auto reply = ask(bad, kDistrict);
    ASSERT_TRUE(reply.has_value());
    EXPECT_EQ(reply->status().code(), ErrorCode::kTimeout);
  }
  start(kTown);
  runFor(2 * kPollMs);
  EXPECT_EQ(log(kTown), std::vector<std::string>{"d1"});
}

// A parent that answers wrongly: a batch signed by another node, and a batch that claims more
// entries than it sends. The town applies nothing, says why, and backs off instead of spinning.
TEST_F(FeedTest, ABatchNotSignedByTheParentOrClaimingEntriesItDoesNotSendIsRefused) {
  start(kTown);  // its district is not running: an impostor answers on the district's subject
  int impostor = world_.addEndpoint(code(kDistrict), "impostor");
  std::string signer = kOtherDistrict;
  uint64_t claimed_head = 1;
  int requests = 0;
  auto sub = world_.transport(impostor).subscribe(feedSubject(code(kDistrict)), [&](const InboundMessage& m) {
    ++requests;
    auto opened = nodes_[kDistrict].verifier->open(m.data, code(kDistrict), world_.now(), nullptr);
    ASSERT_TRUE(opened.isOk()) << opened.status().toString();
    capnp::MallocMessageBuilder b;
    auto batch = b.initRoot<wire::FeedBatch>();
    if (claimed_head == 1) {
      auto entries = batch.initEntries(1);
      entries[0].setIndex(1);
      entries[0].setPayload(capnp_io::dataOf(toBytes("forged revocation")));
    }
    batch.setHead(claimed_head);
    batch.setFreshAsOfMs(world_.now());
    SealParams p;
    p.kind = kinds::kFeedBatch;
    p.timestamp_ms = world_.now();
    p.target = code(kTown);
    p.payload = capnp_io::flatBytes(b);
    p.nonce = opened->nonce;
    (void)world_.transport(impostor).reply(m, sealEnvelope(nodes_[signer].identity, p));
  });
  ASSERT_TRUE(sub.isOk());
  runFor(1000);
  EXPECT_TRUE(seen(kTown).empty());
  EXPECT_EQ(state(kTown).link, "down");
  EXPECT_NE(state(kTown).last_error.find("is not 440604000000's feed batch"), std::string::npos)
      << state(kTown).last_error;
  EXPECT_EQ(state(kTown).fresh_as_of_ms, 0);

  // Now signed by the district's own key, but "head 100" with no entries.
  signer = kDistrict;
  claimed_head = 100;
  requests = 0;
  runFor(20'000);
  EXPECT_TRUE(seen(kTown).empty());
  EXPECT_EQ(state(kTown).parent_cursor, 0u);
  EXPECT_EQ(state(kTown).fresh_as_of_ms, 0) << "a pull that did not reach the head does not make the town fresh";
  EXPECT_NE(state(kTown).last_error.find("reports head 100 but sent no entries after 0"), std::string::npos)
      << state(kTown).last_error;
  EXPECT_LE(requests, 20) << "backed off, not spinning";
}

TEST_F(FeedTest, AnEntryTheApplierRefusesForGoodIsSkippedAndTheRestArrive) {
  start(kCity);
  start(kDistrict);
  start(kTown);
  appendAt(kCity, {"a", "refuse me", "b"});
  runFor(4 * kPollMs);
  EXPECT_EQ(seen(kDistrict), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(log(kDistrict), (std::vector<std::string>{"a", "b"})) << "a refused entry is not passed on";
  EXPECT_EQ(state(kDistrict).parent_cursor, 3u) << "the cursor moved past it";
  EXPECT_EQ(state(kDistrict).skipped_total, 1u);
  EXPECT_NE(state(kDistrict).last_error.find("refuses refuse me"), std::string::npos) << state(kDistrict).last_error;
  EXPECT_EQ(store_testing::queryText(*nodes_[kDistrict].db, "SELECT outcome FROM feed_rejected"), "INVALID_ARGUMENT");
  EXPECT_EQ(log(kTown), (std::vector<std::string>{"a", "b"}));
  // Not offered again on later pulls.
  const int calls = nodes_[kDistrict].calls;
  runFor(3 * kPollMs);
  EXPECT_EQ(nodes_[kDistrict].calls, calls);
}

// A record signed by a key this node knows to be revoked can never become acceptable here: it
// is skipped for good (and not passed on) rather than rolling every later pull back.
TEST_F(FeedTest, AnEntrySignedByARevokedKeyIsSkippedForGoodAndDoesNotStallTheFeed) {
  start(kCity);
  start(kDistrict);
  start(kTown);
  appendAt(kCity, {"a", "revoked record", "b"});
  runFor(4 * kPollMs);
  EXPECT_EQ(seen(kDistrict), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(log(kDistrict), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(state(kDistrict).parent_cursor, 3u);
  EXPECT_EQ(state(kDistrict).link, "up");
  EXPECT_EQ(store_testing::queryText(*nodes_[kDistrict].db, "SELECT outcome FROM feed_rejected"), "REVOKED");
  EXPECT_EQ(log(kTown), (std::vector<std::string>{"a", "b"}));
}

// An entry dated ahead of this node's clock (beyond the allowed skew) becomes acceptable once the
// clock catches up: the batch is retried, never skipped, and nothing after it is lost.
TEST_F(FeedTest, AnEntryDatedAheadOfTheClockIsRetriedUntilTheClockCatchesUpAndThenArrivesWithTheRest) {
  start(kCity);
  start(kDistrict);
  start(kTown);
  nodes_[kDistrict].future_until = world_.now() + 10 * kPollMs;
  appendAt(kCity, {"a", "future revocation", "b"});
  runFor(5 * kPollMs);
  EXPECT_TRUE(log(kDistrict).empty()) << "the batch is rolled back, not skipped past";
  EXPECT_EQ(state(kDistrict).parent_cursor, 0u);
  EXPECT_EQ(state(kDistrict).skipped_total, 0u);
  EXPECT_NE(state(kDistrict).last_error.find("FUTURE_DATED"), std::string::npos) << state(kDistrict).last_error;
  runFor(8 * kPollMs);
  EXPECT_EQ(log(kDistrict), (std::vector<std::string>{"a", "future revocation", "b"}));
  EXPECT_EQ(log(kTown), (std::vector<std::string>{"a", "future revocation", "b"})) << "and its subtree gets it";
  EXPECT_EQ(state(kDistrict).skipped_total, 0u);
}

TEST_F(FeedTest, ALongLogArrivesInBatchesWithinOnePull) {
  start(kCity);
  std::vector<std::string> many;
  for (int i = 0; i < 600; ++i) many.push_back("entry " + std::to_string(i));
  // Entries at the size limit: three fit the batch byte limit.
  for (int i = 0; i < 7; ++i) many.push_back(std::string(kMaxFeedEntryBytes - 1, static_cast<char>('a' + i)) + "!");
  appendAt(kCity, many);
  start(kDistrict);
  runFor(kPollMs - 500);  // the first pull loops to the head before the next poll is due
  EXPECT_EQ(state(kDistrict).parent_cursor, many.size());
  EXPECT_EQ(log(kDistrict), many);
}

TEST_F(FeedTest, AppendChecksItsTransactionAndTheEntrySize) {
  start(kCity);
  FeedNode& n = nodes_[kCity];
  EXPECT_EQ(n.feed->append(toBytes("x")).status().code(), ErrorCode::kFailedPrecondition);
  auto txn = n.db->begin();
  ASSERT_TRUE(txn.isOk());
  EXPECT_EQ(n.feed->append(Bytes(kMaxFeedEntryBytes + 1, 1)).status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(n.feed->append(Bytes{}).status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(n.feed->append(Bytes(kMaxFeedEntryBytes, 1)).value(), 1u);
  EXPECT_EQ(n.feed->append(toBytes("y")).value(), 2u);
  // Rolled back: the head is what the database says.
  { auto dropped = std::move(txn).value(); }
  EXPECT_EQ(n.feed->state().head, 0u);
  auto again = n.db->begin();
  ASSERT_TRUE(again.isOk());
  EXPECT_EQ(n.feed->append(toBytes("z")).value(), 1u);
  ASSERT_TRUE(again->commit().isOk());
  EXPECT_EQ(n.feed->state().head, 1u);
}

// ---- hints ----

TEST_F(FeedTest, AnEntryAppendedAtTheCityReachesTheVillageInUnderASecondThroughHintsDespiteATenMinutePoll) {
  startAll(kLongPollMs);
  runFor(2000);  // the pulls at start are over; the next polls are ten minutes away
  const TimeMs appended_at = world_.now();
  appendAt(kCity, {"revoke A-1"});
  TimeMs arrived_at = 0;
  while (arrived_at == 0 && world_.now() < appended_at + 10'000) {
    runFor(10);
    if (!seen(kVillage).empty()) arrived_at = world_.now();
  }
  ASSERT_NE(arrived_at, 0) << "not at the village 10 s after it was appended at the city";
  RecordProperty("city_to_village_virtual_ms", std::to_string(arrived_at - appended_at));
  EXPECT_LE(arrived_at - appended_at, 1000) << "three levels, each a hint and one pull";
  runFor(1000);
  for (auto c : {kDistrict, kTown, kVillage, kOtherDistrict}) {
    EXPECT_EQ(seen(c), std::vector<std::string>{"revoke A-1"}) << c;
    EXPECT_EQ(log(c), std::vector<std::string>{"revoke A-1"}) << c;
    EXPECT_EQ(state(c).parent_cursor, 1u) << c;
    EXPECT_EQ(state(c).hints_total, 1u) << c << ": one hint from its parent";
    EXPECT_EQ(state(c).hint_pulls_total, 1u) << c;
    EXPECT_EQ(state(c).hints_refused_total, 0u) << c;
    EXPECT_GE(state(c).fresh_as_of_ms, appended_at) << c;
  }
}

TEST_F(FeedTest, ANodePublishesOneHintPerBurstOfAppendsAndNoneForARolledBackAppendOrAtAVillage) {
  startAll();
  runFor(3000);
  auto city_hints = listenToHints(kCity);
  auto village_hints = listenToHints(kVillage);
  appendAt(kCity, {"a"});  // three transactions in one handler: one hint, after they committed
  appendAt(kCity, {"b"});
  appendAt(kCity, {"c"});
  runFor(kFeedHintDelayMs + 50);
  ASSERT_EQ(city_hints->size(), 1u);
  auto opened = nodes_[kDistrict].verifier->open(city_hints->front(), code(kDistrict), world_.now(), nullptr);
  ASSERT_TRUE(opened.isOk()) << opened.status().toString();
  EXPECT_EQ(opened->kind, kinds::kFeedHint);
  EXPECT_EQ(opened->signer, code(kCity));
  EXPECT_EQ(opened->target, code(kCity));
  auto head = capnp_io::read<wire::FeedHint>(opened->payload, "hint", 64,
                                             [](wire::FeedHint::Reader r) -> Result<uint64_t> { return r.getHead(); });
  ASSERT_TRUE(head.isOk()) << head.status().toString();
  EXPECT_EQ(*head, 3u);
  EXPECT_LE(city_hints->front().size(), kMaxFeedHintBytes);

  {
    auto txn = nodes_[kCity].db->begin();
    ASSERT_TRUE(txn.isOk());
    ASSERT_TRUE(nodes_[kCity].feed->append(toBytes("rolled back")).isOk());
  }  // dropped: rolled back, the head did not grow
  runFor(3 * kPollMs);
  EXPECT_EQ(city_hints->size(), 1u);
  EXPECT_EQ(log(kVillage), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_TRUE(village_hints->empty()) << "a village has no children to tell";
}

TEST_F(FeedTest, AHintNotSignedByTheParentOrNotAFreshHintIsRefusedAndStartsNoPull) {
  start(kTown, kLongPollMs);  // its district does not run: a stand-in serves its feed and counts
  auto requests = serveEmptyFeedAs(kDistrict);
  runFor(7 * 60 * 1000);  // late enough that a hint dated six minutes back is still under valid certificates
  ASSERT_EQ(*requests, 1) << "the pull at start; the next poll is ten minutes after it";

  Bytes good = sealedHint(kDistrict, 5);
  Bytes flipped = good;
  flipped[flipped.size() / 2] ^= 0x40;
  const std::vector<std::pair<Bytes, ErrorCode>> refused = {
      {sealedHint(kOtherDistrict, 5), ErrorCode::kUnauthorized},             // a sibling of the parent
      {sealedHint(kOtherDistrict, 5, kDistrict), ErrorCode::kUnauthorized},  // ... about the parent's log
      {sealedHint(kCity, 5), ErrorCode::kUnauthorized},                      // the grandparent
      {sealedHint(kCity, 5, kDistrict), ErrorCode::kUnauthorized},
      {sealedHint(kVillage, 5, kDistrict), ErrorCode::kUnauthorized},        // a child of the town
      {sealedHint(kTown, 5, kDistrict), ErrorCode::kUnauthorized},           // itself
      {sealedHint(kDistrict, 5, kTown), ErrorCode::kUnauthorized},           // the parent, about another log
      {sealedHint(kDistrict, 5, kTown, std::nullopt, kinds::kFeedBatch), ErrorCode::kUnauthorized},  // other kind
      {sealedHint(kDistrict, 5, std::nullopt, world_.now() - kFeedHintMaxAgeMs - 60'000), ErrorCode::kReplay},
      {Bytes(kMaxFeedHintBytes + 1, 0), ErrorCode::kOversize},
      {toBytes("definitely not capnp"), ErrorCode::kMalformed},
      {flipped, ErrorCode::kBadSignature},
  };
  Feed& town = *nodes_[kTown].feed;
  for (size_t i = 0; i < refused.size(); ++i) {
    EXPECT_EQ(town.handleHint(refused[i].first).code(), refused[i].second) << "case " << i;
    publishHint(kDistrict, refused[i].first);
  }
  runFor(5000);
  EXPECT_EQ(*requests, 1) << "no refused hint started a pull";
  EXPECT_EQ(state(kTown).hints_refused_total, 2 * refused.size());
  EXPECT_EQ(state(kTown).hints_total, 0u);
  EXPECT_EQ(state(kTown).hint_pulls_total, 0u);
  EXPECT_EQ(state(kTown).link, "up") << "refused hints are not link failures";

  // The parent's own hint, published the same way, does start one.
  publishHint(kDistrict, good);
  runFor(200);
  EXPECT_EQ(*requests, 2);
  EXPECT_EQ(state(kTown).hints_total, 1u);
  EXPECT_EQ(state(kTown).hint_pulls_total, 1u);
}

TEST_F(FeedTest, AFloodOfReplayedHintsStartsAtMostOnePullPerGap) {
  start(kTown, kLongPollMs);
  auto requests = serveEmptyFeedAs(kDistrict);
  runFor(1000);
  ASSERT_EQ(*requests, 1);
  // One real hint of the district's, captured and replayed every 10 ms for 10 s: its head (1000)
  // stays above the town's cursor, so each copy alone would ask for a pull.
  const Bytes captured = sealedHint(kDistrict, 1000);
  const TimeMs from = world_.now();
  constexpr int kCopies = 1000;
  constexpr DurationMs kFloodMs = 10 * kCopies;
  for (int i = 0; i < kCopies; ++i) world_.at(from + 10 * i, [this, &captured] { publishHint(kDistrict, captured); });
  runFor(kFloodMs + 2000);
  const int allowed = static_cast<int>(kFloodMs / kFeedHintPullGapMs) + 1;
  EXPECT_EQ(state(kTown).hints_total, static_cast<uint64_t>(kCopies));
  EXPECT_LE(state(kTown).hint_pulls_total, static_cast<uint64_t>(allowed));
  EXPECT_LE(*requests - 1, allowed) << "at most one pull per " << kFeedHintPullGapMs << " ms";
  EXPECT_GE(*requests - 1, allowed - 2) << "but a hint above the cursor does bring one pull per gap";
}

TEST_F(FeedTest, WhenAHintIsLostTheNextPollStillDeliversTheEntry) {
  startAll();
  runFor(5000);
  auto district_hints = listenToHints(kDistrict);
  const uint64_t town_hints = state(kTown).hints_total;
  world_.setLinkUp(code(kTown), false);
  appendAt(kDistrict, {"revoke D-9"});
  runFor(200);  // the district's hint goes out while the town's link is cut
  world_.setLinkUp(code(kTown), true);
  ASSERT_EQ(district_hints->size(), 1u) << "the hint was published";
  EXPECT_EQ(state(kTown).hints_total, town_hints) << "and lost on the way to the town";
  EXPECT_TRUE(seen(kTown).empty());
  runFor(kPollMs + 1000);  // the next poll (or a backoff retry, shorter, if one failed at the cut)
  EXPECT_EQ(seen(kTown), std::vector<std::string>{"revoke D-9"});
  EXPECT_EQ(seen(kVillage), std::vector<std::string>{"revoke D-9"}) << "the town's own hint went through";
}

}  // namespace
}  // namespace tongban
