// The durable outbox end to end, on real nodes in the simulated world: messages wait while the
// parent is away, arrive once it returns, and are applied exactly once whatever the network
// does to them.
#include <map>

#include <gtest/gtest.h>

#include "federation/sync/downlink.h"
#include "node/credentials/credentials.h"
#include "tests/support/sim_tree.h"

namespace tongban {
namespace {

using testing::kStart;

class OutboxTest : public testing::SimTree {};

TEST_F(OutboxTest, JoinReachesTheParentAndIsDeletedAfterTheAck) {
  start("440604001000");
  start("440604001001");
  runFor(10'000);
  EXPECT_TRUE(nodes_["440604001001"]->joined().value());
  EXPECT_TRUE(runUntilDrained(1000, {"440604001001"}));
  auto children = nodes_["440604001000"]->status().value().children;
  ASSERT_EQ(children.size(), 1u);
  EXPECT_EQ(children[0].division, "440604001001");
  EXPECT_EQ(children[0].name, "440604001001");
  EXPECT_GT(children[0].last_seen_ms, kStart);
}

TEST_F(OutboxTest, MessagesWaitWhileTheParentIsDownAndArriveWhenItReturns) {
  start("440604001001");  // its town is not running
  runFor(5 * 60'000);
  auto status = nodes_["440604001001"]->status().value();
  EXPECT_EQ(status.parent_link, "down");
  EXPECT_FALSE(status.joined);
  EXPECT_GE(depth("440604001001"), 2u);  // the join and one (coalesced) heartbeat wait
  EXPECT_LE(depth("440604001001"), 2u) << "heartbeats must coalesce while the parent is away";

  start("440604001000");
  runFor(60'000);  // longer than the backoff cap
  EXPECT_TRUE(nodes_["440604001001"]->joined().value());
  EXPECT_TRUE(runUntilDrained(1000, {"440604001001"}));
  EXPECT_EQ(nodes_["440604001001"]->status().value().parent_link, "up");
  EXPECT_TRUE(observer_.allApplied("440604001001"));
  EXPECT_EQ(observer_.maxApplies(), 1);
}

TEST_F(OutboxTest, RetriesBackOffInsteadOfHammeringAnAbsentParent) {
  start("440604001001");
  runFor(10 * 60'000);
  // 200 ms doubling to a 10 s cap, jittered over its upper half: about 85 attempts in ten
  // minutes (at least 60, at most 120 plus the ramp), not thousands.
  auto state = nodes_["440604001001"]->uplinkState().value();
  EXPECT_EQ(state.link, "down");
  EXPECT_FALSE(state.last_error.empty());
  EXPECT_GE(state.batches_sent, 50u);
  EXPECT_LE(state.batches_sent, 130u);
}

TEST_F(OutboxTest, ParentRestartsNeverApplyAMessageTwice) {
  for (auto code : {"440600000000", "440604000000", "440604001000", "440604001001", "440604001002"}) start(code);
  // Crash the town over and over, at moments that fall between its commit and its ack.
  for (int i = 0; i < 30; ++i) {
    runFor(3000 + 137 * i);
    crash("440604001000");
    runFor(2000);
    restart("440604001000");
  }
  runFor(2 * 60'000);
  ASSERT_TRUE(runUntilDrained(5000, {"440604000000", "440604001000", "440604001001", "440604001002"}));
  EXPECT_TRUE(observer_.allApplied());
  EXPECT_EQ(observer_.maxApplies(), 1);
}

TEST_F(OutboxTest, DuplicatedDeliveriesAreAcknowledgedButAppliedOnce) {
  world_.faults().duplicate = 1.0;
  for (auto code : {"440604001000", "440604001001"}) start(code);
  runFor(60'000);
  ASSERT_TRUE(runUntilDrained(5000, {"440604001001"}));
  EXPECT_GT(observer_.duplicates, 0);
  EXPECT_EQ(observer_.maxApplies(), 1);
  EXPECT_TRUE(observer_.allApplied("440604001001"));
}

TEST_F(OutboxTest, LossyReorderingNetworkStillDeliversEverythingOnce) {
  world_.faults() = sim::NetworkFaults{0.3, 0.3, 1, 500};
  for (auto code : {"440600000000", "440604000000", "440604001000", "440604001001", "440604001002"}) start(code);
  runFor(10 * 60'000);
  world_.faults() = sim::NetworkFaults{};
  runFor(60'000);
  ASSERT_TRUE(runUntilDrained(5000, {"440604000000", "440604001000", "440604001001", "440604001002"}));
  EXPECT_TRUE(observer_.allApplied());
  EXPECT_EQ(observer_.maxApplies(), 1);
}

TEST_F(OutboxTest, GarbageOnTheUpSubjectIsIgnoredAndTheNodeKeepsServing) {
  start("440604001000");
  int client = world_.addEndpoint(DivisionCode::parse("440604001000").value(), "attacker");
  std::optional<Status> answer;
  world_.transport(client).request("tb.440604001000.up", toBytes("definitely not capnp"), 500,
                                   [&](Result<Bytes> r) { answer = r.status(); });
  runFor(1000);
  ASSERT_TRUE(answer.has_value());
  EXPECT_EQ(answer->code(), ErrorCode::kTimeout);  // no authority to answer garbage with
  start("440604001001");
  runFor(10'000);
  EXPECT_TRUE(nodes_["440604001001"]->joined().value());
}

TEST_F(OutboxTest, EnvelopeFromANodeThatIsNotAChildIsRefusedForGood) {
  start("440604001000");
  // The district seals an "up" message to the town: a parent may not speak up to its child.
  SealParams p;
  p.kind = kinds::kJoin;
  p.seq = 1;
  p.timestamp_ms = world_.now();
  p.target = DivisionCode::parse("440604001000").value();
  p.payload = encode(JoinMsg{"intruder", "x"});
  OutboxBatchMsg batch{42, {sealEnvelope(identities_["440604000000"], p)}};
  int client = world_.addEndpoint(DivisionCode::parse("440604001000").value(), "district-impostor");
  std::optional<Result<Bytes>> reply;
  world_.transport(client).request("tb.440604001000.up", encode(batch), 500,
                                   [&](Result<Bytes> r) { reply.emplace(std::move(r)); });
  runFor(1000);
  ASSERT_TRUE(reply.has_value());
  ASSERT_TRUE(reply->isOk()) << reply->status().toString();
  KindRegistry kinds;
  registerFederationKinds(kinds);
  auto verifier = Verifier::create(identities_["440600000000"].root_certificate, &kinds).value();
  auto opened = verifier.open(reply->value(), DivisionCode::parse("440604000000").value(), world_.now(), nullptr);
  ASSERT_TRUE(opened.isOk()) << opened.status().toString();
  auto ack = decodeOutboxAck(opened->payload).value();
  ASSERT_EQ(ack.results.size(), 1u);
  EXPECT_EQ(ack.results[0].seq, 1u);
  EXPECT_EQ(ack.results[0].outcome, "UNAUTHORIZED");
  EXPECT_TRUE(nodes_["440604001000"]->status().value().children.empty());
}

// The ack of a refusal can be lost like any other; the sender then sends the message again. It
// must hear the same refusal, not ROLLBACK ("older than the last accepted, never seen", which
// says the sender lost state), or it would set the message aside for a reason that is not true.
TEST_F(OutboxTest, AMessageRefusedForGoodIsRefusedTheSameWhenItComesAgain) {
  start("440604001000");
  const DivisionCode town = DivisionCode::parse("440604001000").value();
  const Identity& village = identities_["440604001001"];
  int client = world_.addEndpoint(DivisionCode::parse("440604001001").value(), "village-by-hand");
  KindRegistry kinds;
  registerFederationKinds(kinds);
  auto verifier = Verifier::create(identities_["440600000000"].root_certificate, &kinds).value();
  auto seal = [&](uint64_t seq, MessageKind kind, Bytes payload) {
    SealParams p;
    p.kind = kind;
    p.seq = seq;
    p.timestamp_ms = world_.now();
    p.target = town;
    p.payload = std::move(payload);
    return sealEnvelope(village, p);
  };
  auto send = [&](std::vector<Bytes> envelopes) {
    std::optional<Result<Bytes>> reply;
    world_.transport(client).request("tb.440604001000.up", encode(OutboxBatchMsg{7, std::move(envelopes)}), 500,
                                     [&](Result<Bytes> r) { reply.emplace(std::move(r)); });
    runFor(1000);
    EXPECT_TRUE(reply.has_value() && reply->isOk());
    if (!reply || !reply->isOk()) return std::vector<AckResultMsg>{};
    auto opened = verifier.open(reply->value(), village.division, world_.now(), nullptr);
    EXPECT_TRUE(opened.isOk()) << opened.status().toString();
    return opened ? decodeOutboxAck(opened->payload).value().results : std::vector<AckResultMsg>{};
  };

  // Seq 2 is never sent; seq 3 is a credential relay that does not decode.
  auto first = send({seal(1, kinds::kJoin, encode(JoinMsg{"祖庙第1社区", "test"})),
                     seal(3, kCredentialUpKind, toBytes("not a sealed credential")),
                     seal(4, kinds::kHeartbeat, encode(HeartbeatMsg{}))});
  ASSERT_EQ(first.size(), 3u);
  EXPECT_EQ(first[0].outcome, "applied");
  EXPECT_NE(first[1].outcome, "applied");
  EXPECT_NE(first[1].outcome, "ROLLBACK");
  EXPECT_EQ(first[2].outcome, "applied");

  auto again = send({seal(3, kCredentialUpKind, toBytes("not a sealed credential"))});
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].seq, 3u);
  EXPECT_EQ(again[0].outcome, first[1].outcome) << again[0].message;
  EXPECT_EQ(again[0].message, first[1].message);

  auto never_sent = send({seal(2, kinds::kHeartbeat, encode(HeartbeatMsg{}))});
  ASSERT_EQ(never_sent.size(), 1u);
  EXPECT_EQ(never_sent[0].outcome, "ROLLBACK") << "an older seq never seen is still a rollback";
}

TEST_F(OutboxTest, ARevokedVillageKeyIsRefusedAndItsMessagesAreSetAsideNotLost) {
  // The village's laptop was lost: its town revoked the key before the village came online.
  auto village = DivisionCode::parse("440604001001").value();
  auto revocation = signKeyRevocation(identities_["440604001000"], village,
                                      identities_["440604001001"].keys.public_key, kStart, "laptop lost");
  ASSERT_TRUE(revocation.isOk()) << revocation.status().toString();
  revocations_["440604001000"] = {*revocation};
  start("440604001000");
  start("440604001001");
  runFor(3000);

  EXPECT_FALSE(nodes_["440604001001"]->joined().value());
  EXPECT_TRUE(nodes_["440604001000"]->status().value().children.empty());
  auto state = nodes_["440604001001"]->uplinkState().value();
  EXPECT_GE(state.rejected_total, 1u);
  EXPECT_NE(state.last_error.find("REVOKED"), std::string::npos) << state.last_error;
  // The refused join is kept for the operator, not deleted.
  auto stmt = nodes_["440604001001"]->database().prepare("SELECT outcome FROM outbox_rejected ORDER BY seq LIMIT 1");
  ASSERT_TRUE(stmt.isOk());
  ASSERT_TRUE(stmt->step().value());
  EXPECT_EQ(stmt->columnText(0), "REVOKED");
}

TEST_F(OutboxTest, ARevocationFromAForeignRootStopsTheNodeFromStarting) {
  // Someone with a look-alike root of the same city code tries to revoke a village's key.
  std::array<uint8_t, 32> seed{};
  seed.fill(99);
  auto city = DivisionCode::parse("440600000000").value();
  auto impostor = createRootIdentity(city, "fake", KeyPair::fromSeed(seed), kStart - 1000, kStart + 100000000);
  ASSERT_TRUE(impostor.isOk());
  auto revocation = signKeyRevocation(*impostor, DivisionCode::parse("440604001001").value(),
                                      identities_["440604001001"].keys.public_key, kStart, "forged");
  ASSERT_TRUE(revocation.isOk()) << revocation.status().toString();
  NodeOptions o;
  o.identity = identities_["440604001000"];
  o.data_dir = dir_.path() + "/refuses";
  o.revocations = {*revocation};
  int ep = endpoints_["440604001000"];
  auto node =
      Node::open(o, NodeEnvironment{&world_.clock(ep), &world_.transport(ep), randoms_["440604001000"].get(), nullptr});
  ASSERT_FALSE(node.isOk());
  // The look-alike root signs as "the city" with an empty chain: checked against the real root
  // key, its signature fails.
  EXPECT_EQ(node.status().code(), ErrorCode::kBadSignature) << node.status().toString();
  EXPECT_NE(node.status().message().find("key revocation #1"), std::string::npos) << node.status().toString();
}

}  // namespace
}  // namespace tongban
