// Forwarded cases (上报件) end to end on real nodes in the simulated world: a case accepted at a
// village travels up to the level that decides it, is worked there, and every step comes back
// down to the village; cut links only delay it, and nothing arrives twice.
#include <gtest/gtest.h>

#include "node/catalogue/catalogue.h"
#include "node/forwarding/forwarding_wire.h"
#include "tests/support/sim_tree.h"

namespace tongban {
namespace {

using testing::kStart;

constexpr const char* kCity = "440600000000";
constexpr const char* kDistrict = "440604000000";
constexpr const char* kTown = "440604001000";
constexpr const char* kVillage = "440604001001";
constexpr const char* kSibling = "440604001002";
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

  // A CaseProgress on `number` sealed by `signer` (naming itself the decider), inside a relay whose
  // hops are `hops` (the last one is who hands it on).
  Bytes stepRelay(const char* signer, const std::string& number, const std::string& step, const std::string& state,
                  Level decide_level, const std::vector<std::string>& hops) {
    forwarding_wire::Progress p;
    p.number = number;
    p.decider = signer;
    p.decider_name = signer;
    p.step_index = 1;
    p.step = step;
    p.state = state;
    p.actor = "intruder";
    p.at_ms = world_.now();
    p.concluded_ms = state == "concluded" ? world_.now() : 0;
    p.decide_level = static_cast<uint8_t>(decide_level);
    const DivisionCode origin = division(number.substr(0, 12));
    forwarding_wire::Relay relay{sealNow(identities_[signer], kCaseProgressKind, origin, forwarding_wire::encodeProgress(p), 0), {}};
    for (const auto& h : hops) relay.hops.push_back({h, world_.now()});
    return forwarding_wire::encodeRelay(relay);
  }

  // Hands `payload` to `code`'s applier for `kind` as if `from` had sent it, and commits what
  // the applier did only if it accepted it (as the downlink does).
  Status deliver(const char* code, MessageKind kind, const char* from, const Bytes& payload) {
    OpenedEnvelope e{};
    e.signer = division(from);
    e.kind = kind;
    e.target = division(code);
    e.payload = payload;
    auto txn = at(code).database().begin();
    EXPECT_TRUE(txn.isOk());
    Status st = kind == kCaseRelayDownKind ? at(code).forwarding().applyRelayDown(e, world_.now())
                                           : at(code).forwarding().applyRelayUp(e, world_.now());
    if (st.isOk()) {
      EXPECT_TRUE(txn->commit().isOk());
    }
    return st;
  }

  // The village's relay of case `number` still waiting in its outbox (its uplink is cut).
  Bytes waitingRelay() {
    auto stmt = at(kVillage).database().prepare("SELECT payload FROM outbox WHERE kind = 105");
    EXPECT_TRUE(stmt.isOk());
    EXPECT_TRUE(stmt->step().value()) << "no case relay waits in the village's outbox";
    return stmt->columnBlob(0);
  }

  std::vector<std::string> actions(const char* code, const std::string& number) {
    std::vector<std::string> out;
    for (const auto& p : at(code).forwarding().passages(number).value()) out.push_back(p.action);
    return out;
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
  EXPECT_EQ(count(kTown, "SELECT COUNT(*) FROM case_passages"), 0u) << "a refusal leaves no trace but the log";

  // The genuine relay from the village itself is taken: the town passes it up to the district
  // (the transaction is rolled back afterwards, as the others were).
  {
    OpenedEnvelope e{};
    e.signer = division(kVillage);
    e.kind = kCaseRelayUpKind;
    e.target = division(kTown);
    e.payload = relay;
    auto txn = at(kTown).database().begin();
    ASSERT_TRUE(txn.isOk());
    ASSERT_TRUE(at(kTown).forwarding().applyRelayUp(e, world_.now()).isOk());
    EXPECT_EQ(actions(kTown, c.number), std::vector<std::string>{"passed up"});
    EXPECT_EQ(count(kTown, std::string("SELECT COUNT(*) FROM outbox WHERE kind = 105 AND target = '") + kDistrict + "'"), 1u)
        << "the relay waits for the district in the town's outbox";
  }
}

// A transfer may go no higher than its decide level: a node above it refuses to take it in.
TEST_F(ForwardingTest, ATransferPassedAboveItsDecideLevelIsRefused) {
  startChain();
  world_.setLinkUp(division(kVillage), false);
  CaseRecord c = applyAtVillage("HW-0012");  // decided by the district
  auto relay = forwarding_wire::decodeRelay(waitingRelay()).value();
  relay.hops.push_back({kTown, world_.now()});
  relay.hops.push_back({kDistrict, world_.now()});
  Status refused = deliver(kCity, kCaseRelayUpKind, kDistrict, forwarding_wire::encodeRelay(relay));
  EXPECT_EQ(refused.code(), ErrorCode::kInvalidArgument) << refused.toString();
  EXPECT_NE(refused.message().find("above it"), std::string::npos) << refused.message();
  EXPECT_EQ(at(kCity).cases().get(c.number).status().code(), ErrorCode::kNotFound) << "the city did not take it in";
}

// Only the origin's ancestor at the case's decide level decides it. A signed step from any other
// ancestor (the city on a district case, the district on a town case) is refused at the first hop
// that knows the case's level and at the origin, and the real decider's steps still arrive.
TEST_F(ForwardingTest, AStepSignedByANonDeciderAncestorIsRefusedAndTheDecidersStepsStillArrive) {
  startChain();
  CaseRecord c = applyAtVillage("HW-0012");  // decided by the district
  ASSERT_TRUE(runUntil([&] { return at(kDistrict).cases().get(c.number).isOk(); }, 30'000));
  ASSERT_TRUE(runUntil([&] { return !at(kVillage).cases().get(c.number)->decider.empty(); }, 30'000));

  // The city concludes it, claiming the city level decides it, and claiming the district level.
  for (Level claimed : {Level::kCity, Level::kDistrict}) {
    SCOPED_TRACE(levelName(claimed));
    Status at_district = deliver(kDistrict, kCaseRelayDownKind, kCity,
                                 stepRelay(kCity, c.number, "conclude", "concluded", claimed, {kCity}));
    EXPECT_EQ(at_district.code(), ErrorCode::kUnauthorized) << at_district.toString();
    // Straight to the village, as if it had come down the chain.
    Status at_village = deliver(kVillage, kCaseRelayDownKind, kTown,
                                stepRelay(kCity, c.number, "conclude", "concluded", claimed, {kCity, kDistrict, kTown}));
    EXPECT_EQ(at_village.code(), ErrorCode::kUnauthorized) << at_village.toString();
    EXPECT_NE(at_village.message().find("district"), std::string::npos) << at_village.message();
  }
  auto still = at(kVillage).cases().get(c.number).value();
  EXPECT_EQ(still.state, CaseState::kAccepted);
  EXPECT_EQ(still.decider, kDistrict);

  decideAt(kDistrict, c.number);
  ASSERT_TRUE(runUntil([&] { return at(kVillage).cases().get(c.number)->state == CaseState::kConcluded; }, 30'000))
      << "the district's own steps are taken after the forged ones were refused";
  auto done = at(kVillage).cases().get(c.number).value();
  EXPECT_EQ(done.decider, kDistrict);
  EXPECT_EQ(done.decider_steps.size(), at(kDistrict).cases().get(c.number)->steps.size());
}

TEST_F(ForwardingTest, ADistrictStepOnATownDecidedCaseIsRefused) {
  startChain();
  CaseRecord c = applyAtVillage("NR-0062");  // decided by the town
  ASSERT_TRUE(runUntil([&] { return at(kTown).cases().get(c.number).isOk(); }, 30'000));
  // The town took it in as a town case, so it refuses a district step claiming the district
  // level; the village refuses it too, whatever level it claims.
  Status at_town = deliver(kTown, kCaseRelayDownKind, kDistrict,
                           stepRelay(kDistrict, c.number, "deny", "denied", Level::kDistrict, {kDistrict}));
  EXPECT_EQ(at_town.code(), ErrorCode::kUnauthorized) << at_town.toString();
  EXPECT_NE(at_town.message().find("to be decided at the town level"), std::string::npos) << at_town.message();
  for (Level claimed : {Level::kDistrict, Level::kTown}) {
    Status at_village = deliver(kVillage, kCaseRelayDownKind, kTown,
                                stepRelay(kDistrict, c.number, "deny", "denied", claimed, {kDistrict, kTown}));
    EXPECT_EQ(at_village.code(), ErrorCode::kUnauthorized) << levelName(claimed) << ": " << at_village.toString();
  }
  EXPECT_NE(at(kVillage).cases().get(c.number)->state, CaseState::kDenied);
}

TEST_F(ForwardingTest, AStepOnACaseThatWasNeverForwardedIsRefused) {
  startChain();
  CaseRecord local = applyAtVillage("SI-0001");  // immediate, decided at the village itself
  ASSERT_FALSE(local.forwarded);
  Status not_forwarded = deliver(kVillage, kCaseRelayDownKind, kTown,
                                 stepRelay(kDistrict, local.number, "deny", "denied", Level::kDistrict,
                                           {kDistrict, kTown}));
  EXPECT_EQ(not_forwarded.code(), ErrorCode::kInvalidArgument) << not_forwarded.toString();
  EXPECT_NE(not_forwarded.message().find("was not forwarded from here"), std::string::npos) << not_forwarded.message();
  EXPECT_EQ(at(kVillage).cases().get(local.number)->state, CaseState::kConcluded);

  const std::string never = std::string(kVillage) + "-00009999";
  Status unknown = deliver(kVillage, kCaseRelayDownKind, kTown,
                           stepRelay(kDistrict, never, "deny", "denied", Level::kDistrict, {kDistrict, kTown}));
  EXPECT_EQ(unknown.code(), ErrorCode::kNotFound) << unknown.toString();
}

TEST_F(ForwardingTest, AStepThatReachesTheWrongNodeIsRefused) {
  start(kSibling);
  startChain();
  CaseRecord c = applyAtVillage("HW-0012");
  ASSERT_TRUE(runUntil([&] { return at(kDistrict).cases().get(c.number).isOk(); }, 30'000));
  // A genuine district step, but handed to the village's sibling: not on its way down.
  Status sibling = deliver(kSibling, kCaseRelayDownKind, kTown,
                           stepRelay(kDistrict, c.number, "undertake", "undertaken", Level::kDistrict, {kDistrict, kTown}));
  EXPECT_EQ(sibling.code(), ErrorCode::kInvalidArgument) << sibling.toString();
  EXPECT_NE(sibling.message().find("not on its way down"), std::string::npos) << sibling.message();
  // Handed to the village by the district, skipping the town: only a node's parent hands it steps.
  Status skipped = deliver(kVillage, kCaseRelayDownKind, kDistrict,
                           stepRelay(kDistrict, c.number, "undertake", "undertaken", Level::kDistrict, {kDistrict}));
  EXPECT_EQ(skipped.code(), ErrorCode::kUnauthorized) << skipped.toString();
  EXPECT_NE(skipped.message().find("not its parent"), std::string::npos) << skipped.message();
  EXPECT_EQ(count(kSibling, "SELECT COUNT(*) FROM case_passages"), 0u);
  const CaseRecord there = at(kVillage).cases().get(c.number).value();
  for (const auto& step : there.decider_steps) EXPECT_NE(step.step, "undertake");
  EXPECT_EQ(there.state, CaseState::kAccepted);
}

// One file stored under two kinds (a scan that shows both documents): each kind goes up once,
// as that kind, and the decider holds all of the case's materials.
TEST_F(ForwardingTest, OneFileUnderTwoKindsTravelsOnceForEachKind) {
  startChain();
  Node& village = at(kVillage);
  const CatalogueItem* item = village.catalogue().current()->find("HW-0012");
  ASSERT_NE(item, nullptr);
  IntakeRequest request{"HW-0012", kPerson, "张三", "13800000000", {}, "", {}};
  const Bytes both = toBytes("one scan: identity card and household register");
  for (const auto& kind : item->materials) {
    const bool shared = kind == "id_card" || kind == "household_register";
    auto record = village.materials().put(shared ? both : toBytes("scan of " + kind), kind, kPerson, "image/jpeg",
                                          "clerk", world_.now());
    ASSERT_TRUE(record.isOk()) << record.status().toString();
    request.materials.push_back({kind, record->hash});
    runFor(1000);  // the second record of the shared file is the newer one
  }
  auto c = village.cases().submit(request, clerk_, world_.now());
  ASSERT_TRUE(c.isOk()) << c.status().toString();
  ASSERT_EQ(c->state, CaseState::kAccepted) << c->refusal_notice;
  ASSERT_EQ(c->materials.size(), 4u);
  ASSERT_TRUE(runUntil([&] { return at(kDistrict).cases().get(c->number).isOk(); }, 30'000));
  auto held = at(kDistrict).cases().get(c->number).value();
  EXPECT_EQ(held.materials, c->materials);
}

TEST_F(ForwardingTest, ATransferListingOneMaterialKindTwiceIsRefusedWithAClearMessage) {
  startChain();
  world_.setLinkUp(division(kVillage), false);
  CaseRecord c = applyAtVillage("HW-0012");
  auto relay = forwarding_wire::decodeRelay(waitingRelay()).value();
  registerForwardingKinds(kinds_);
  auto statement = verifier().open(relay.statement, division(kTown), world_.now(), nullptr);
  ASSERT_TRUE(statement.isOk()) << statement.status().toString();
  auto transfer = forwarding_wire::decodeTransfer(statement->payload).value();
  transfer.materials.push_back(transfer.materials.front());  // the same kind again
  relay.statement = sealNow(identities_[kVillage], kCaseTransferKind, division(kTown),
                            forwarding_wire::encodeTransfer(transfer), 0);
  Status refused = deliver(kTown, kCaseRelayUpKind, kVillage, forwarding_wire::encodeRelay(relay));
  EXPECT_EQ(refused.code(), ErrorCode::kMalformed) << refused.toString();
  EXPECT_NE(refused.message().find("twice"), std::string::npos) << refused.message();
  EXPECT_TRUE(actions(kTown, c.number).empty());
}

// The decider works a held case by the decide level it was forwarded for, even after the city
// moves the item's decide level, and it records the catalogue version the origin accepted under.
TEST_F(ForwardingTest, AHeldCaseKeepsTheDecideLevelItWasForwardedFor) {
  startChain();
  CaseRecord c = applyAtVillage("HW-0012");
  ASSERT_TRUE(runUntil([&] { return at(kDistrict).cases().get(c.number).isOk(); }, 30'000));
  auto held = at(kDistrict).cases().get(c.number).value();
  EXPECT_GT(c.catalogue_version, 0u);
  EXPECT_EQ(held.catalogue_version, c.catalogue_version);

  Catalogue moved = *at(kCity).catalogue().current();
  for (auto& item : moved.items) {
    if (item.code == "HW-0012") item.decide_level = Level::kCity;
  }
  auto version = at(kCity).catalogue().publish(at(kCity).identity(), moved, world_.now());
  ASSERT_TRUE(version.isOk()) << version.status().toString();
  ASSERT_TRUE(runUntil([&] { return at(kDistrict).catalogue().version() == *version; }, 30'000));
  for (const char* step : {"undertake", "review", "approve", "conclude"}) {
    Status st = stepAt(kDistrict, c.number, step);
    EXPECT_TRUE(st.isOk()) << step << ": " << st.toString();
  }
  EXPECT_EQ(at(kDistrict).cases().get(c.number)->decided_at, "district");

  // Its credential is issued under the version the case was accepted under, so every node that
  // holds the newer catalogue still finds the district had the authority, and the hall where the
  // citizen applied gets it with the conclusion.
  const std::string number = at(kDistrict).cases().get(c.number)->credential;
  ASSERT_FALSE(number.empty()) << "the conclusion issued no credential";
  ASSERT_TRUE(runUntil([&] { return at(kVillage).cases().get(c.number)->state == CaseState::kConcluded; }, 30'000))
      << at(kVillage).cases().get(c.number)->location;
  EXPECT_EQ(at(kVillage).cases().get(c.number)->credential, number);
  auto sealed = at(kDistrict).credentials().sealed(number);
  ASSERT_TRUE(sealed.isOk() && sealed->has_value());
  for (const char* code : {kCity, kDistrict, kVillage}) {
    ASSERT_TRUE(runUntil([&] { return at(code).credentials().listByNumber(number).value().has_value(); }, 30'000))
        << code << " never took in " << number;
    Verification v = at(code).credentials().verify(**sealed, world_.now());
    EXPECT_EQ(v.verdict, "valid") << code << ": " << v.reason;
    ASSERT_TRUE(v.credential.has_value());
    EXPECT_EQ(v.credential->catalogue_version, c.catalogue_version);
  }
}

// A transfer sealed by a village whose clock runs ten minutes fast is dated beyond the skew the
// town accepts: that is a refusal time cures, so it waits in the village's outbox (retried, not
// set aside) and is taken in once the town's clock has caught up.
TEST_F(ForwardingTest, ATransferDatedAheadOfTheTownsClockWaitsAndIsTakenInOnceTheClockCatchesUp) {
  startChain();
  Node& village = at(kVillage);
  const CatalogueItem* item = village.catalogue().current()->find("HW-0012");
  ASSERT_NE(item, nullptr);
  const TimeMs fast = world_.now() + 10 * 60'000;
  IntakeRequest request{"HW-0012", kPerson, "张三", "13800000000", {}, "", {}};
  for (const auto& kind : item->materials) {
    auto record = village.materials().put(toBytes("scan of " + kind), kind, kPerson, "image/jpeg", "clerk", fast);
    ASSERT_TRUE(record.isOk());
    request.materials.push_back({kind, record->hash});
  }
  auto c = village.cases().submit(request, clerk_, fast);
  ASSERT_TRUE(c.isOk() && c->forwarded) << c.status().toString();

  runFor(2 * 60'000);
  EXPECT_EQ(at(kDistrict).cases().get(c->number).status().code(), ErrorCode::kNotFound) << "not acceptable yet";
  EXPECT_EQ(count(kVillage, "SELECT COUNT(*) FROM outbox_rejected"), 0u) << "set aside for good";
  EXPECT_EQ(count(kVillage, "SELECT COUNT(*) FROM outbox WHERE kind = 105"), 1u) << "no longer waiting to be sent";

  runFor(10 * 60'000);
  EXPECT_TRUE(at(kDistrict).cases().get(c->number).isOk()) << at(kVillage).cases().get(c->number)->location;
  EXPECT_EQ(count(kVillage, "SELECT COUNT(*) FROM outbox_rejected"), 0u);
}

// A genuine transfer the decider may not take in (here: a material seal the origin's key did not
// make, as after a key change) is returned: the origin hears who refused it and why.
TEST_F(ForwardingTest, ATransferTheDeciderMayNotTakeInIsReturnedToTheOriginWithTheReason) {
  startChain();
  Node& village = at(kVillage);
  const CatalogueItem* item = village.catalogue().current()->find("HW-0012");
  IntakeRequest request{"HW-0012", kPerson, "张三", "13800000000", {}, "", {}};
  for (const auto& kind : item->materials) {
    auto record = village.materials().put(toBytes("scan of " + kind), kind, kPerson, "image/jpeg", "clerk", world_.now());
    ASSERT_TRUE(record.isOk());
    request.materials.push_back({kind, record->hash});
  }
  auto stmt = village.database().prepare("UPDATE materials SET seal = zeroblob(64) WHERE kind = 'birth_certificate'");
  ASSERT_TRUE(stmt.isOk() && stmt->run().isOk());
  auto c = village.cases().submit(request, clerk_, world_.now());
  ASSERT_TRUE(c.isOk() && c->forwarded) << c.status().toString();

  ASSERT_TRUE(runUntil([&] { return !at(kVillage).cases().get(c->number)->returned_by.empty(); }, 30'000))
      << at(kVillage).cases().get(c->number)->location;
  auto returned = at(kVillage).cases().get(c->number).value();
  EXPECT_EQ(returned.returned_by, kDistrict);
  EXPECT_NE(returned.returned_reason.find("seal"), std::string::npos) << returned.returned_reason;
  EXPECT_NE(returned.location.find("returned (退回) by"), std::string::npos) << returned.location;
  EXPECT_NE(returned.location.find(kDistrict), std::string::npos) << returned.location;
  EXPECT_EQ(at(kDistrict).cases().get(c->number).status().code(), ErrorCode::kNotFound);
  EXPECT_EQ(actions(kDistrict, c->number), std::vector<std::string>{"returned"});
  EXPECT_EQ(actions(kTown, c->number), (std::vector<std::string>{"passed up", "passed down"}));
  EXPECT_EQ(actions(kVillage, c->number), (std::vector<std::string>{"sent up", "returned here"}));
  for (const char* code : {kVillage, kTown, kDistrict}) {
    EXPECT_EQ(count(code, "SELECT COUNT(*) FROM outbox_rejected"), 0u) << code << ": the refusal travelled as a message";
  }
}

// A transfer refused at the first hop is set aside in the origin's outbox_rejected: the origin
// says so instead of "not yet taken in".
TEST_F(ForwardingTest, TheOriginShowsWhyItsParentRefusedTheTransfer) {
  startChain();
  world_.setLinkUp(division(kVillage), false);
  CaseRecord c = applyAtVillage("HW-0012");
  // What the uplink does with a message its parent refused for good.
  auto moved = at(kVillage).database().prepare(
      "INSERT INTO outbox_rejected (seq, kind, target, payload, created_ms, outcome, message, rejected_ms)"
      " SELECT seq, kind, target, payload, created_ms, 'MALFORMED', 'case transfer lists material kind ''x'' twice', 0"
      " FROM outbox WHERE kind = 105");
  ASSERT_TRUE(moved.isOk() && moved->run().isOk());
  auto removed = at(kVillage).database().prepare("DELETE FROM outbox WHERE kind = 105");
  ASSERT_TRUE(removed.isOk() && removed->run().isOk());
  auto shown = at(kVillage).cases().get(c.number).value();
  EXPECT_FALSE(shown.waiting_for_uplink);
  EXPECT_NE(shown.location.find("refused on the way up"), std::string::npos) << shown.location;
  EXPECT_NE(shown.location.find(std::string(kTown) + " refused it (MALFORMED)"), std::string::npos) << shown.location;
}

}  // namespace
}  // namespace tongban
