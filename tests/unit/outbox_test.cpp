// The durable outbox and the receipts that make delivery exactly-once in effect, and the two
// together with a state change in one transaction (a crash before commit leaves none of them).
#include <gtest/gtest.h>

#include <filesystem>

#include "federation/store/outbox.h"
#include "federation/store/receipts.h"
#include "tests/support/store_helpers.h"

namespace tongban {
namespace {

using namespace store_testing;

// ---------------------------------------------------------------------------------------------
// Outbox

struct OutboxFixture : ::testing::Test {
  void SetUp() override {
    db = openDb(dir.file("node.db"));
    ASSERT_NE(db, nullptr);
    auto ob = Outbox::open(*db);
    ASSERT_TRUE(ob.isOk()) << ob.status().toString();
    outbox = std::make_unique<Outbox>(std::move(ob).value());
  }

  // Enqueues one message in its own committed transaction.
  uint64_t enqueueCommitted(uint16_t kind, const std::string& payload, TimeMs now = 1000) {
    auto tx = db->begin();
    EXPECT_TRUE(tx.isOk());
    auto seq = outbox->enqueue(kind, "440604", toBytes(payload), now);
    EXPECT_TRUE(seq.isOk()) << seq.status().toString();
    EXPECT_TRUE(tx->commit().isOk());
    return seq.isOk() ? *seq : 0;
  }

  uint64_t coalesceCommitted(uint16_t kind, const std::string& payload, TimeMs now = 2000) {
    auto tx = db->begin();
    EXPECT_TRUE(tx.isOk());
    auto seq = outbox->enqueueCoalescing(kind, "440604", toBytes(payload), now);
    EXPECT_TRUE(seq.isOk()) << seq.status().toString();
    EXPECT_TRUE(tx->commit().isOk());
    return seq.isOk() ? *seq : 0;
  }

  std::vector<OutboxMessage> peekAll() {
    auto batch = outbox->peek(1000, 1 << 30);
    EXPECT_TRUE(batch.isOk()) << batch.status().toString();
    return batch.isOk() ? *batch : std::vector<OutboxMessage>{};
  }

  uint64_t depth() {
    auto d = outbox->depth();
    EXPECT_TRUE(d.isOk());
    return d.isOk() ? *d : 0;
  }

  TempDir dir;
  std::unique_ptr<Database> db;
  std::unique_ptr<Outbox> outbox;
};

TEST_F(OutboxFixture, EnqueueOutsideATransactionIsRefused) {
  auto seq = outbox->enqueue(1, "440604", toBytes("x"), 1000);
  ASSERT_FALSE(seq.isOk());
  EXPECT_EQ(seq.status().code(), ErrorCode::kFailedPrecondition);
  auto coalesced = outbox->enqueueCoalescing(1, "440604", toBytes("x"), 1000);
  ASSERT_FALSE(coalesced.isOk());
  EXPECT_EQ(coalesced.status().code(), ErrorCode::kFailedPrecondition);
  EXPECT_EQ(depth(), 0u);
}

TEST_F(OutboxFixture, EnqueuedMessageKeepsEveryField) {
  auto tx = db->begin();
  ASSERT_TRUE(tx.isOk());
  Bytes payload = {0, 1, 2, 255};
  auto seq = outbox->enqueue(7, "440604001", payload, 123456);
  ASSERT_TRUE(seq.isOk());
  ASSERT_TRUE(tx->commit().isOk());
  auto all = peekAll();
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].seq, *seq);
  EXPECT_EQ(all[0].kind, 7);
  EXPECT_EQ(all[0].target, "440604001");
  EXPECT_EQ(all[0].payload, payload);
  EXPECT_EQ(all[0].created_ms, 123456);
  EXPECT_EQ(all[0].attempts, 0u);
}

TEST_F(OutboxFixture, SeqsAreStrictlyIncreasing) {
  uint64_t prev = 0;
  for (int i = 0; i < 10; ++i) {
    uint64_t seq = enqueueCommitted(1, "m" + std::to_string(i));
    EXPECT_GT(seq, prev);
    prev = seq;
  }
  auto all = peekAll();
  ASSERT_EQ(all.size(), 10u);
  for (size_t i = 1; i < all.size(); ++i) EXPECT_LT(all[i - 1].seq, all[i].seq);
}

TEST_F(OutboxFixture, SeqIsNeverReusedAfterDeletion) {
  uint64_t a = enqueueCommitted(1, "a");
  uint64_t b = enqueueCommitted(1, "b");
  ASSERT_TRUE(outbox->remove({a, b}).isOk());  // the newest row is gone too
  EXPECT_EQ(depth(), 0u);
  uint64_t c = enqueueCommitted(1, "c");
  EXPECT_GT(c, b);
  // Also across a restart of the node.
  ASSERT_TRUE(outbox->remove({c}).isOk());
  std::string path = db->path();
  outbox.reset();
  db.reset();
  db = openDb(path);
  ASSERT_NE(db, nullptr);
  auto ob = Outbox::open(*db);
  ASSERT_TRUE(ob.isOk());
  outbox = std::make_unique<Outbox>(std::move(ob).value());
  EXPECT_GT(enqueueCommitted(1, "d"), c);
}

TEST_F(OutboxFixture, RolledBackEnqueueLeavesNoRow) {
  {
    auto tx = db->begin();
    ASSERT_TRUE(tx.isOk());
    ASSERT_TRUE(outbox->enqueue(1, "440604", toBytes("lost"), 1000).isOk());
  }
  EXPECT_EQ(depth(), 0u);
}

TEST_F(OutboxFixture, PeekRespectsMaxCountInSeqOrder) {
  for (int i = 0; i < 5; ++i) enqueueCommitted(1, "m" + std::to_string(i));
  auto batch = outbox->peek(3, 1 << 20);
  ASSERT_TRUE(batch.isOk());
  ASSERT_EQ(batch->size(), 3u);
  EXPECT_EQ(toString((*batch)[0].payload), "m0");
  EXPECT_EQ(toString((*batch)[2].payload), "m2");
  EXPECT_EQ(depth(), 5u);  // peek does not consume
}

TEST_F(OutboxFixture, PeekRespectsMaxBytes) {
  for (int i = 0; i < 5; ++i) enqueueCommitted(1, std::string(100, 'a' + i));
  auto batch = outbox->peek(100, 250);
  ASSERT_TRUE(batch.isOk());
  EXPECT_EQ(batch->size(), 2u);  // 200 bytes fit, a third would make 300
  auto exact = outbox->peek(100, 300);
  ASSERT_TRUE(exact.isOk());
  EXPECT_EQ(exact->size(), 3u);  // the bound is inclusive
}

TEST_F(OutboxFixture, PeekReturnsOneOversizeMessageRatherThanNothing) {
  enqueueCommitted(1, std::string(1000, 'x'));
  enqueueCommitted(1, "small");
  auto batch = outbox->peek(10, 10);
  ASSERT_TRUE(batch.isOk());
  ASSERT_EQ(batch->size(), 1u);
  EXPECT_EQ((*batch)[0].payload.size(), 1000u);
}

TEST_F(OutboxFixture, PeekOnEmptyOutboxIsEmpty) {
  auto batch = outbox->peek(10, 10);
  ASSERT_TRUE(batch.isOk());
  EXPECT_TRUE(batch->empty());
  EXPECT_EQ(outbox->peek(0, 10).status().code(), ErrorCode::kInvalidArgument);
}

TEST_F(OutboxFixture, CoalescingReplacesAnUnsentNewestMessageOfTheSameKind) {
  uint64_t first = coalesceCommitted(9, "beat-1", 2000);
  uint64_t second = coalesceCommitted(9, "beat-2", 3000);
  EXPECT_EQ(second, first);
  auto all = peekAll();
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(toString(all[0].payload), "beat-2");
  EXPECT_EQ(all[0].created_ms, 3000);
}

TEST_F(OutboxFixture, CoalescingReplacesEvenAnAlreadySentNewestMessageAndKeepsItsSeq) {
  // A parent that stays away for hours must not make heartbeats pile up behind failed sends.
  uint64_t first = coalesceCommitted(9, "beat-1");
  ASSERT_TRUE(outbox->markAttempted(first).isOk());
  uint64_t second = coalesceCommitted(9, "beat-2");
  EXPECT_EQ(second, first);
  auto all = peekAll();
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(toString(all[0].payload), "beat-2");
}

TEST_F(OutboxFixture, CoalescingAddsAMessageWhenTheNewestIsAnotherKind) {
  uint64_t beat = coalesceCommitted(9, "beat-1");
  uint64_t event = enqueueCommitted(1, "case-event");
  uint64_t beat2 = coalesceCommitted(9, "beat-2");
  EXPECT_GT(event, beat);
  EXPECT_GT(beat2, event);
  auto all = peekAll();
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(toString(all[0].payload), "beat-1");  // not the newest: left alone
  EXPECT_EQ(toString(all[2].payload), "beat-2");
}

TEST_F(OutboxFixture, MarkAttemptedCountsOnlyUpToTheGivenSeq) {
  uint64_t a = enqueueCommitted(1, "a");
  uint64_t b = enqueueCommitted(1, "b");
  uint64_t c = enqueueCommitted(1, "c");
  ASSERT_TRUE(outbox->markAttempted(b).isOk());
  ASSERT_TRUE(outbox->markAttempted(a).isOk());
  auto all = peekAll();
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].attempts, 2u);
  EXPECT_EQ(all[1].attempts, 1u);
  EXPECT_EQ(all[2].attempts, 0u);
  EXPECT_EQ(all[2].seq, c);
}

TEST_F(OutboxFixture, RemoveDeletesExactlyTheGivenSeqs) {
  uint64_t a = enqueueCommitted(1, "a");
  uint64_t b = enqueueCommitted(1, "b");
  uint64_t c = enqueueCommitted(1, "c");
  EXPECT_EQ(depth(), 3u);
  ASSERT_TRUE(outbox->remove({a, c, 999999}).isOk());  // unknown seqs are ignored
  EXPECT_EQ(depth(), 1u);
  auto all = peekAll();
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].seq, b);
  ASSERT_TRUE(outbox->remove({}).isOk());
  EXPECT_EQ(depth(), 1u);
}

TEST_F(OutboxFixture, RemoveJoinsTheCallersTransaction) {
  uint64_t a = enqueueCommitted(1, "a");
  {
    auto tx = db->begin();
    ASSERT_TRUE(tx.isOk());
    ASSERT_TRUE(outbox->remove({a}).isOk());
    EXPECT_TRUE(db->inTransaction());
  }  // rolled back
  EXPECT_EQ(depth(), 1u);
}

TEST_F(OutboxFixture, OutboxAndStateSurviveReopen) {
  enqueueCommitted(3, "persisted", 4242);
  std::string path = db->path();
  outbox.reset();
  db.reset();
  db = openDb(path);
  ASSERT_NE(db, nullptr);
  auto ob = Outbox::open(*db);
  ASSERT_TRUE(ob.isOk());
  outbox = std::make_unique<Outbox>(std::move(ob).value());
  auto all = peekAll();
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(toString(all[0].payload), "persisted");
  EXPECT_EQ(all[0].created_ms, 4242);
  EXPECT_EQ(*db->schemaVersion("outbox"), 2);
}

// ---------------------------------------------------------------------------------------------
// Receipts

struct ReceiptsFixture : ::testing::Test {
  void SetUp() override {
    db = openDb(dir.file("node.db"));
    ASSERT_NE(db, nullptr);
    auto r = Receipts::open(*db);
    ASSERT_TRUE(r.isOk()) << r.status().toString();
    receipts = std::make_unique<Receipts>(std::move(r).value());
  }

  void recordCommitted(const std::string& origin, uint64_t seq) {
    auto tx = db->begin();
    ASSERT_TRUE(tx.isOk());
    ASSERT_TRUE(receipts->record(origin, seq, 5000).isOk());
    ASSERT_TRUE(tx->commit().isOk());
  }

  ReplayGuard::Verdict verdict(const std::string& origin, uint64_t seq) {
    auto v = receipts->check(origin, seq);
    EXPECT_TRUE(v.isOk()) << v.status().toString();
    return v.isOk() ? *v : ReplayGuard::Verdict::kReplay;
  }

  TempDir dir;
  std::unique_ptr<Database> db;
  std::unique_ptr<Receipts> receipts;
};

TEST_F(ReceiptsFixture, UnseenSequencesAreFresh) {
  EXPECT_EQ(verdict("440604001", 1), ReplayGuard::Verdict::kFresh);
  EXPECT_EQ(verdict("440604001", 100), ReplayGuard::Verdict::kFresh);
  auto last = receipts->lastSeq("440604001");
  ASSERT_TRUE(last.isOk());
  EXPECT_EQ(*last, 0u);
}

TEST_F(ReceiptsFixture, RecordedSequenceIsAReplay) {
  recordCommitted("440604001", 5);
  EXPECT_EQ(verdict("440604001", 5), ReplayGuard::Verdict::kReplay);
  EXPECT_EQ(verdict("440604001", 6), ReplayGuard::Verdict::kFresh);
  EXPECT_EQ(verdict("440604002", 5), ReplayGuard::Verdict::kFresh);  // per origin
}

TEST_F(ReceiptsFixture, OlderUnseenSequenceIsARollback) {
  recordCommitted("440604001", 5);
  EXPECT_EQ(verdict("440604001", 4), ReplayGuard::Verdict::kRollback);
  EXPECT_EQ(verdict("440604001", 1), ReplayGuard::Verdict::kRollback);
}

TEST_F(ReceiptsFixture, CursorOnlyMovesForward) {
  recordCommitted("440604001", 5);
  recordCommitted("440604001", 9);
  EXPECT_EQ(*receipts->lastSeq("440604001"), 9u);
  // Recording an older (but never recorded) seq, e.g. by an operator repair, keeps the cursor.
  recordCommitted("440604001", 7);
  EXPECT_EQ(*receipts->lastSeq("440604001"), 9u);
  EXPECT_EQ(verdict("440604001", 7), ReplayGuard::Verdict::kReplay);
  EXPECT_EQ(verdict("440604001", 8), ReplayGuard::Verdict::kRollback);
}

TEST_F(ReceiptsFixture, RecordOutsideATransactionIsRefused) {
  Status s = receipts->record("440604001", 1, 5000);
  EXPECT_EQ(s.code(), ErrorCode::kFailedPrecondition);
  EXPECT_EQ(verdict("440604001", 1), ReplayGuard::Verdict::kFresh);
}

TEST_F(ReceiptsFixture, RecordingTheSameSequenceTwiceFails) {
  recordCommitted("440604001", 3);
  auto tx = db->begin();
  ASSERT_TRUE(tx.isOk());
  EXPECT_EQ(receipts->record("440604001", 3, 6000).code(), ErrorCode::kAlreadyExists);
}

TEST_F(ReceiptsFixture, SequenceBeyondSignedRangeIsRejectedNotWrapped) {
  uint64_t huge = (uint64_t{1} << 63) + 5;
  auto v = receipts->check("440604001", huge);
  ASSERT_FALSE(v.isOk());
  EXPECT_EQ(v.status().code(), ErrorCode::kMalformed);
}

TEST_F(ReceiptsFixture, ReceiptsSurviveReopen) {
  recordCommitted("440604001", 5);
  std::string path = db->path();
  receipts.reset();
  db.reset();
  db = openDb(path);
  ASSERT_NE(db, nullptr);
  auto r = Receipts::open(*db);
  ASSERT_TRUE(r.isOk());
  receipts = std::make_unique<Receipts>(std::move(r).value());
  EXPECT_EQ(verdict("440604001", 5), ReplayGuard::Verdict::kReplay);
  EXPECT_EQ(verdict("440604001", 4), ReplayGuard::Verdict::kRollback);
}

TEST_F(ReceiptsFixture, WorksThroughTheReplayGuardInterface) {
  recordCommitted("440604001", 2);
  ReplayGuard& guard = *receipts;
  auto v = guard.check("440604001", 2);
  ASSERT_TRUE(v.isOk());
  EXPECT_EQ(*v, ReplayGuard::Verdict::kReplay);
}

// ---------------------------------------------------------------------------------------------
// The store together: a state change, its outgoing message and its receipt commit as one.

struct Node {
  explicit Node(const std::string& path) {
    db = openDb(path);
    if (!db) return;
    EXPECT_TRUE(db->migrate("cases", {{1, "CREATE TABLE cases(id TEXT PRIMARY KEY, state TEXT NOT NULL);"}}).isOk());
    auto ob = Outbox::open(*db);
    EXPECT_TRUE(ob.isOk());
    if (ob.isOk()) outbox = std::make_unique<Outbox>(std::move(ob).value());
    auto r = Receipts::open(*db);
    EXPECT_TRUE(r.isOk());
    if (r.isOk()) receipts = std::make_unique<Receipts>(std::move(r).value());
  }

  // Applies an inbound message: the case change, the receipt and the upward message, all in
  // one transaction; commits only if asked (false models a crash before commit).
  void apply(const std::string& origin, uint64_t seq, const std::string& case_id, bool commit) {
    auto tx = db->begin();
    ASSERT_TRUE(tx.isOk());
    auto stmt = db->prepare("INSERT INTO cases(id, state) VALUES(?1, 'accepted')");
    ASSERT_TRUE(stmt.isOk());
    stmt->bind(1, case_id);
    ASSERT_TRUE(stmt->run().isOk());
    ASSERT_TRUE(receipts->record(origin, seq, 1000).isOk());
    ASSERT_TRUE(outbox->enqueue(1, "440604", toBytes("accepted " + case_id), 1000).isOk());
    if (commit) {
      ASSERT_TRUE(tx->commit().isOk());
    }
    // else: the transaction dies here without commit, as in a crash.
  }

  int64_t caseCount() { return queryInt(*db, "SELECT COUNT(*) FROM cases"); }

  std::unique_ptr<Database> db;
  std::unique_ptr<Outbox> outbox;
  std::unique_ptr<Receipts> receipts;
};

TEST(Store, CrashBeforeCommitLeavesNeitherStateNorOutboxRowNorReceipt) {
  TempDir dir;
  std::string path = dir.file("node.db");
  {
    Node node(path);
    ASSERT_NE(node.db, nullptr);
    node.apply("440604001", 1, "case-1", /*commit=*/false);
    EXPECT_EQ(node.caseCount(), 0);
    EXPECT_EQ(*node.outbox->depth(), 0u);
    EXPECT_EQ(*node.receipts->check("440604001", 1), ReplayGuard::Verdict::kFresh);
  }
  // And nothing appears after a restart either.
  Node node(path);
  ASSERT_NE(node.db, nullptr);
  EXPECT_EQ(node.caseCount(), 0);
  EXPECT_EQ(*node.outbox->depth(), 0u);
  // The re-delivered message is then applied normally.
  node.apply("440604001", 1, "case-1", /*commit=*/true);
  EXPECT_EQ(node.caseCount(), 1);
  EXPECT_EQ(*node.outbox->depth(), 1u);
  EXPECT_EQ(*node.receipts->check("440604001", 1), ReplayGuard::Verdict::kReplay);
}

TEST(Store, CommittedChangeOutboxRowAndReceiptSurviveReopen) {
  TempDir dir;
  std::string path = dir.file("node.db");
  {
    Node node(path);
    ASSERT_NE(node.db, nullptr);
    node.apply("440604001", 1, "case-1", /*commit=*/true);
  }
  Node node(path);
  ASSERT_NE(node.db, nullptr);
  EXPECT_EQ(node.caseCount(), 1);
  auto batch = node.outbox->peek(10, 1 << 20);
  ASSERT_TRUE(batch.isOk());
  ASSERT_EQ(batch->size(), 1u);
  EXPECT_EQ(toString((*batch)[0].payload), "accepted case-1");
  EXPECT_EQ(*node.receipts->check("440604001", 1), ReplayGuard::Verdict::kReplay);
}

}  // namespace
}  // namespace tongban
