// Forwarded cases (上报件) end to end on real nodes in the simulated world: a case accepted at a
// village travels up to the level that decides it, is worked there, and every step comes back
// down to the village; cut links only delay it, and nothing arrives twice.
#include <gtest/gtest.h>

#include "node/catalogue/catalogue.h"
#include "tests/support/sim_tree.h"

namespace tongban {
namespace {

using testing::kStart;

constexpr const char* kCity = "440600000000";
constexpr const char* kDistrict = "440604000000";
constexpr const char* kTown = "440604001000";
constexpr const char* kVillage = "440604001001";
constexpr const char* kPerson = "11010519491231002X";

class ForwardingTest : public testing::SimTree {
 protected:
  void configure(NodeOptions& o) override {
    o.calendar = WorkingCalendar::loadFile(std::string(TONGBAN_SOURCE_DIR) + "/data/calendar-2026.json").value();
    if (o.identity.division.level() == Level::kCity) o.catalogue_file = std::string(TONGBAN_SOURCE_DIR) + "/data/catalog.json";
    o.catalogue_poll_ms = 2000;
  }

  void startChain() {
    for (const char* code : {kCity, kDistrict, kTown, kVillage}) start(code);
    runFor(15'000);
    ASSERT_NE(nodes_[kVillage]->catalogue().current(), nullptr) << "the catalogue did not reach the village";
  }

  Node& at(const char* code) { return *nodes_[code]; }

  // Takes in an application for `item` at the village with every material it needs.
  CaseRecord applyAtVillage(const std::string& item_code) {
    Node& village = at(kVillage);
    const CatalogueItem* item = village.catalogue().current()->find(item_code);
    EXPECT_NE(item, nullptr);
    IntakeRequest request{item_code, kPerson, "张三", "13800000000", {}, "applied at the village", {}};
    for (const auto& kind : item->materials) {
      auto record = village.materials().put(toBytes("scan of " + kind), kind, kPerson, "image/jpeg", "clerk", world_.now());
      EXPECT_TRUE(record.isOk()) << record.status().toString();
      request.materials.push_back({kind, record->hash});
    }
    auto c = village.cases().submit(request, clerk_, world_.now());
    EXPECT_TRUE(c.isOk()) << c.status().toString();
    return *c;
  }

  Status stepAt(const char* code, const std::string& number, const std::string& step) {
    return at(code).cases().step(number, StepRequest{step, "", "", ""}, staff_, world_.now()).status();
  }

  void decideAt(const char* code, const std::string& number) {
    for (const char* step : {"undertake", "review", "approve", "conclude"}) {
      ASSERT_TRUE(stepAt(code, number, step).isOk()) << step << " at " << code;
    }
  }

  uint64_t count(const char* code, const std::string& sql) {
    auto stmt = at(code).database().prepare(sql);
    EXPECT_TRUE(stmt.isOk());
    auto row = stmt->step();
    return row.isOk() && *row ? static_cast<uint64_t>(stmt->columnInt64(0)) : 0;
  }

  Principal clerk_{"clerk", "window clerk", {Role::kClerk}};
  Principal staff_{"staff", "every role", {Role::kClerk, Role::kUndertaker, Role::kReviewer, Role::kApprover}};
};

TEST_F(ForwardingTest, AVillageCaseIsDecidedAtTheDistrictAndConcludedBackAtTheVillage) {
  startChain();
  CaseRecord c = applyAtVillage("HW-0012");  // birth approval: accepted at a village, decided by the district
  EXPECT_TRUE(c.forwarded);
  EXPECT_EQ(c.state, CaseState::kAccepted);
  runFor(10'000);

  auto held = at(kDistrict).cases().get(c.number);
  ASSERT_TRUE(held.isOk()) << held.status().toString();
  EXPECT_EQ(held->held_for, kVillage);
  EXPECT_EQ(held->accepted_ms, c.accepted_ms) << "the deadline clock starts at the origin";
  EXPECT_EQ(held->deadline_ms, c.deadline_ms);
  EXPECT_EQ(held->material_hashes, c.material_hashes);
  EXPECT_EQ(held->steps.front().step, "receive");
  EXPECT_EQ(held->steps.front().detail, std::string(kVillage) + " → " + kTown + " → " + kDistrict);
  EXPECT_FALSE(at(kTown).cases().get(c.number).isOk()) << "the town passes it on without holding it";
  EXPECT_EQ(at(kTown).forwarding().passages(c.number).value().front().action, "passed up");

  auto waiting = at(kVillage).cases().get(c.number).value();
  EXPECT_EQ(waiting.decider, kDistrict);
  EXPECT_NE(waiting.location.find("at 440604000000"), std::string::npos) << waiting.location;
  EXPECT_NE(waiting.location.find("accepted since"), std::string::npos) << waiting.location;

  decideAt(kDistrict, c.number);
  runFor(10'000);
  auto done = at(kVillage).cases().get(c.number).value();
  auto decided = at(kDistrict).cases().get(c.number).value();
  EXPECT_EQ(done.state, CaseState::kConcluded);
  EXPECT_EQ(decided.state, CaseState::kConcluded);
  EXPECT_EQ(done.concluded_ms, decided.concluded_ms);
  ASSERT_EQ(done.decider_steps.size(), decided.steps.size());
  for (size_t i = 0; i < done.decider_steps.size(); ++i) EXPECT_EQ(done.decider_steps[i].step, decided.steps[i].step);
  EXPECT_NE(done.location.find("concluded"), std::string::npos) << done.location;
  EXPECT_EQ(at(kCity).cases().get(c.number).status().code(), ErrorCode::kNotFound) << "the city never sees it as a case";
}

TEST_F(ForwardingTest, AHomesteadIsDecidedAtTheTownAndTheDistrictNeverHoldsIt) {
  startChain();
  CaseRecord c = applyAtVillage("NR-0062");
  runFor(10'000);
  auto held = at(kTown).cases().get(c.number);
  ASSERT_TRUE(held.isOk()) << held.status().toString();
  EXPECT_EQ(held->held_for, kVillage);
  EXPECT_FALSE(at(kDistrict).cases().get(c.number).isOk());
  decideAt(kTown, c.number);
  runFor(10'000);
  EXPECT_EQ(at(kVillage).cases().get(c.number)->state, CaseState::kConcluded);
}

TEST_F(ForwardingTest, TheOriginShowsTheCaseWaitingForTheUplinkAndMayNotWorkIt) {
  startChain();
  world_.setLinkUp(DivisionCode::parse(kVillage).value(), false);
  CaseRecord c = applyAtVillage("HW-0012");
  runFor(30'000);
  auto waiting = at(kVillage).cases().get(c.number).value();
  EXPECT_TRUE(waiting.waiting_for_uplink);
  EXPECT_NE(waiting.location.find("waiting for the uplink since"), std::string::npos) << waiting.location;
  Status refused = stepAt(kVillage, c.number, "undertake");
  EXPECT_EQ(refused.code(), ErrorCode::kFailedPrecondition);
  EXPECT_NE(refused.message().find("decided at the district level"), std::string::npos) << refused.message();

  world_.setLinkUp(DivisionCode::parse(kVillage).value(), true);
  runFor(60'000);
  EXPECT_FALSE(at(kVillage).cases().get(c.number)->waiting_for_uplink);
  EXPECT_TRUE(at(kDistrict).cases().get(c.number).isOk());
}

TEST_F(ForwardingTest, WithTheTownCutOffTheCaseWaitsAndCompletesExactlyOnceWhenTheLinkReturns) {
  startChain();
  const DivisionCode town = DivisionCode::parse(kTown).value();
  world_.setLinkUp(town, false);  // town ↔ district
  CaseRecord c = applyAtVillage("HW-0012");
  runFor(60'000);
  EXPECT_FALSE(at(kDistrict).cases().get(c.number).isOk()) << "nothing crosses a cut link";
  auto in_transit = at(kVillage).cases().get(c.number).value();
  EXPECT_FALSE(in_transit.waiting_for_uplink) << "it left the village: the town holds it";
  EXPECT_NE(in_transit.location.find("sent up towards the district level"), std::string::npos) << in_transit.location;

  world_.setLinkUp(town, true);
  runFor(60'000);
  ASSERT_TRUE(at(kDistrict).cases().get(c.number).isOk());

  // The decision is taken while the town is cut off again: it waits at the district.
  world_.setLinkUp(town, false);
  decideAt(kDistrict, c.number);
  runFor(60'000);
  EXPECT_EQ(at(kVillage).cases().get(c.number)->state, CaseState::kAccepted);

  world_.setLinkUp(town, true);
  runFor(60'000);
  auto done = at(kVillage).cases().get(c.number).value();
  EXPECT_EQ(done.state, CaseState::kConcluded);
  EXPECT_EQ(done.decider_steps.size(), 5u);  // receive, undertake, review, approve, conclude: each once
  EXPECT_EQ(count(kDistrict, "SELECT COUNT(*) FROM cases WHERE held_for != ''"), 1u);
  EXPECT_EQ(count(kTown, "SELECT COUNT(*) FROM case_passages WHERE action = 'passed up'"), 1u);
  EXPECT_EQ(count(kTown, "SELECT COUNT(*) FROM case_passages WHERE action = 'passed down'"), 5u);
  EXPECT_EQ(observer_.maxApplies(), 1);
}

TEST_F(ForwardingTest, AVillagesCaseSurvivesItsRestartAndTheDecidersRestart) {
  startChain();
  CaseRecord c = applyAtVillage("HW-0012");
  crash(kVillage);
  runFor(10'000);  // it left before the crash or waits in the village's outbox
  restart(kVillage);
  runFor(30'000);
  ASSERT_TRUE(at(kDistrict).cases().get(c.number).isOk());
  ASSERT_TRUE(stepAt(kDistrict, c.number, "undertake").isOk());
  crash(kDistrict);
  restart(kDistrict);
  runFor(30'000);
  EXPECT_EQ(at(kVillage).cases().get(c.number)->state, CaseState::kUndertaken);
}

// What a hop refuses for good: a case relayed by a node outside the origin's subtree, and a
// transfer altered on the way.
TEST_F(ForwardingTest, ARelayFromOutsideTheOriginsSubtreeOrAlteredOnTheWayIsRefused) {
  start("440604001002");
  startChain();
  world_.setLinkUp(DivisionCode::parse(kVillage).value(), false);
  CaseRecord c = applyAtVillage("HW-0012");
  // The genuine relay, still waiting in the village's outbox.
  auto stmt = at(kVillage).database().prepare("SELECT payload FROM outbox WHERE kind = 105");
  ASSERT_TRUE(stmt.isOk());
  ASSERT_TRUE(stmt->step().value());
  const Bytes relay = stmt->columnBlob(0);

  auto applyAtTown = [&](const char* sender, const Bytes& payload) {
    OpenedEnvelope e{};
    e.signer = DivisionCode::parse(sender).value();
    e.kind = kCaseRelayUpKind;
    e.target = DivisionCode::parse(kTown).value();
    e.payload = payload;
    auto txn = at(kTown).database().begin();  // rolled back: a refusal changes nothing
    EXPECT_TRUE(txn.isOk());
    return at(kTown).forwarding().applyRelayUp(e, world_.now());
  };
  Status sibling = applyAtTown("440604001002", relay);
  EXPECT_EQ(sibling.code(), ErrorCode::kUnauthorized) << sibling.toString();
  EXPECT_NE(sibling.message().find("outside its subtree"), std::string::npos) << sibling.message();

  Bytes altered = relay;
  altered[altered.size() / 2] ^= 0x01;  // inside the sealed transfer
  Status tampered = applyAtTown(kVillage, altered);
  EXPECT_FALSE(tampered.isOk());
  EXPECT_TRUE(tampered.code() == ErrorCode::kUnauthorized || tampered.code() == ErrorCode::kMalformed) << tampered.toString();

  EXPECT_EQ(applyAtTown(kVillage, toBytes("not a relay")).code(), ErrorCode::kMalformed);
  EXPECT_TRUE(applyAtTown(kVillage, relay).isOk()) << "the genuine relay from the village itself is taken";
  EXPECT_FALSE(at(kTown).cases().get(c.number).isOk());
}

}  // namespace
}  // namespace tongban
