// The subtree completeness watermark on real nodes in the simulated world (city → district →
// town → two villages): every node knows an instant W before which everything its subtree
// created has reached it; the city's "not found" states its W and names the subtree that holds
// it back; the city's status-data freshness is its W, and every node below takes its parent's.
#include <gtest/gtest.h>

#include "node/lookup/lookup.h"
#include "tests/support/sim_tree.h"

namespace tongban {
namespace {

using testing::kCity;
using testing::kDistrict;
using testing::kSibling;
using testing::kTown;
using testing::kVillage;
constexpr const char* kHolder = "11010519491231002X";
constexpr DurationMs kHeartbeatMs = 1000;

class CompletenessTest : public testing::SimTree {
 protected:
  // Fast heartbeats, and each node knows its children from the shape (as the topology would tell).
  void configure(NodeOptions& o) override {
    o.limits.heartbeat_interval_ms = kHeartbeatMs;
    o.feed.poll_interval_ms = 2000;
    for (const auto& d : shape_.divisions) {
      const DivisionCode code = division(d.code);
      if (o.identity.division.isParentOf(code)) o.expected_children.push_back(code);
    }
  }

  void SetUp() override {
    SimTree::SetUp();
    if (HasFatalFailure()) return;
    registerLookupKinds(kinds_);
  }

  Downlink::Completeness completenessAt(const std::string& code) {
    auto c = at(code).completeness();
    EXPECT_TRUE(c.isOk()) << c.status().toString();
    return c.isOk() ? *c : Downlink::Completeness{};
  }

  LookupResult lookupAt(const std::string& where, const LookupQuery& q) {
    auto slot = answerSlot<LookupResult>([&](auto done) { at(where).lookups().lookup(q, 3000, std::move(done)); },
                                         "a lookup");
    EXPECT_TRUE(runUntil([&] { return slot->has_value(); }, 10'000, 10)) << "the lookup never answered";
    return slot->has_value() ? **slot : LookupResult{};
  }
};

TEST_F(CompletenessTest, AnExpectedChildNeverHeardFromHoldsTheWatermarkAtZero) {
  for (const char* code : {kCity, kDistrict, kTown, kVillage}) start(code);  // the sibling never runs
  runFor(20'000);
  EXPECT_GT(completenessAt(kVillage).as_of_ms, world_.now() - 1);  // a village: its clock
  auto town = completenessAt(kTown);
  EXPECT_EQ(town.as_of_ms, 0);
  EXPECT_EQ(town.held_back_by, kSibling);
  auto city = completenessAt(kCity);
  EXPECT_EQ(city.as_of_ms, 0);
  EXPECT_EQ(city.held_back_by, kSibling) << "the heartbeats name the deepest division holding it back";
  // Once it runs, the watermark follows the clock a few heartbeats behind.
  start(kSibling);
  runFor(20'000);
  EXPECT_GT(completenessAt(kCity).as_of_ms, world_.now() - 10 * kHeartbeatMs);
}

TEST_F(CompletenessTest, ARecordInACutVillagesOutboxIsNotFoundAsOfAWatermarkBeforeItAndTheCutSubtreeIsNamed) {
  startEveryNode();
  runFor(20'000);
  const TimeMs before_cut = completenessAt(kCity).as_of_ms;
  EXPECT_GT(before_cut, world_.now() - 10 * kHeartbeatMs);
  world_.setLinkUp(division(kVillage), false);
  runFor(3000);
  const TimeMs created = world_.now();
  auto stored = at(kVillage).materials().put(toBytes("scan"), "id_card", kHolder, "image/jpeg", "clerk", created);
  ASSERT_TRUE(stored.isOk()) << stored.status().toString();
  runFor(10 * kHeartbeatMs);  // longer than the city's tolerance (6 heartbeats)

  const LookupQuery q = makeLookupQuery(LookupQuestion::kMaterial, stored->hash).value();
  auto r = lookupAt(kCity, q);
  ASSERT_EQ(r.outcome, LookupOutcome::kNotFound) << r.reason;
  EXPECT_LE(r.complete_as_of_ms, created) << "the answer does not claim to cover the record's creation";
  EXPECT_GE(r.complete_as_of_ms, before_cut);
  EXPECT_EQ(r.held_back_by, kVillage);
  // The same, asked from the sibling village (the answer travels down unchanged).
  auto below = lookupAt(kSibling, q);
  ASSERT_EQ(below.outcome, LookupOutcome::kNotFound) << below.reason;
  EXPECT_LE(below.complete_as_of_ms, created);
  EXPECT_EQ(below.held_back_by, kVillage);
  // Status data is no fresher than the watermark: a revocation made in the cut village is not
  // in the city's feed, so no node may say it has every status issued after the cut.
  EXPECT_LE(at(kCity).feedState().fresh_as_of_ms, created);
  EXPECT_LE(at(kSibling).feedState().fresh_as_of_ms, created);

  world_.setLinkUp(division(kVillage), true);
  ASSERT_TRUE(runUntil([&] { return completenessAt(kCity).as_of_ms > created; }, 60'000));
  auto healed = lookupAt(kSibling, q);
  EXPECT_EQ(healed.outcome, LookupOutcome::kFound) << healed.reason;
  ASSERT_TRUE(runUntil([&] { return at(kSibling).feedState().fresh_as_of_ms > created; }, 60'000))
      << "freshness passes the cut once the village's records are in";
  auto later = lookupAt(kCity, makeLookupQuery(LookupQuestion::kMaterial, std::string(64, 'b')).value());
  EXPECT_EQ(later.outcome, LookupOutcome::kNotFound);
  EXPECT_GT(later.complete_as_of_ms, created);
  EXPECT_TRUE(later.held_back_by.empty()) << later.held_back_by;
}

TEST_F(CompletenessTest, ARestartedNodeClaimsNoMoreThanItHadApplied) {
  startEveryNode();
  runFor(20'000);
  world_.setLinkUp(division(kVillage), false);
  runFor(3000);
  const TimeMs cut = completenessAt(kTown).as_of_ms;
  crash(kTown);
  restart(kTown);
  EXPECT_EQ(completenessAt(kTown).as_of_ms, cut) << "each child's watermark is stored with its heartbeat";
  runFor(5000);
  EXPECT_EQ(completenessAt(kTown).as_of_ms, cut);
  EXPECT_LE(completenessAt(kCity).as_of_ms, cut);
}

}  // namespace
}  // namespace tongban
