// The SQLite store: Database (migrations, transactions, statement cache), the durable outbox and
// the receipts that make delivery exactly-once in effect. Real files in a temp dir, because WAL
// and re-opening are part of what is tested.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "federation/store/database.h"
#include "federation/store/outbox.h"
#include "federation/store/receipts.h"
#include "tests/support/temp_dir.h"

namespace tongban {
namespace {

using testing::TempDir;

std::unique_ptr<Database> openDb(const std::string& path, Synchronous sync = Synchronous::kFull) {
  DatabaseOptions options;
  options.path = path;
  options.synchronous = sync;
  auto db = Database::open(options);
  EXPECT_TRUE(db.isOk()) << db.status().toString();
  return db.isOk() ? std::move(db).value() : nullptr;
}

// Reads one integer from a single-row query, failing the test on any error.
int64_t queryInt(Database& db, const std::string& sql) {
  auto stmt = db.prepare(sql);
  EXPECT_TRUE(stmt.isOk()) << stmt.status().toString();
  if (!stmt.isOk()) return -1;
  auto row = stmt->step();
  EXPECT_TRUE(row.isOk()) << row.status().toString();
  EXPECT_TRUE(row.isOk() && *row) << "no row for " << sql;
  if (!row.isOk() || !*row) return -1;
  return stmt->columnInt64(0);
}

std::string queryText(Database& db, const std::string& sql) {
  auto stmt = db.prepare(sql);
  EXPECT_TRUE(stmt.isOk()) << stmt.status().toString();
  if (!stmt.isOk()) return {};
  auto row = stmt->step();
  EXPECT_TRUE(row.isOk() && *row) << "no row for " << sql;
  if (!row.isOk() || !*row) return {};
  return stmt->columnText(0);
}

const std::vector<Migration> kWidgetMigrations = {
    {1, "CREATE TABLE widgets(id INTEGER PRIMARY KEY, name TEXT NOT NULL);"},
    {2, "ALTER TABLE widgets ADD COLUMN colour TEXT; CREATE INDEX widgets_by_name ON widgets(name);"},
};

// ---------------------------------------------------------------------------------------------
// Database

TEST(Database, OpensInWalModeWithForeignKeysAndChosenSynchronous) {
  TempDir dir;
  auto db = openDb(dir.file("node.db"), Synchronous::kNormal);
  ASSERT_NE(db, nullptr);
  EXPECT_EQ(queryText(*db, "PRAGMA journal_mode"), "wal");
  EXPECT_EQ(queryInt(*db, "PRAGMA foreign_keys"), 1);
  EXPECT_EQ(queryInt(*db, "PRAGMA synchronous"), 1);  // NORMAL
  auto full = openDb(dir.file("full.db"), Synchronous::kFull);
  ASSERT_NE(full, nullptr);
  EXPECT_EQ(queryInt(*full, "PRAGMA synchronous"), 2);  // FULL
}

TEST(Database, OpenFailureNamesThePathAndSqliteReason) {
  TempDir dir;
  DatabaseOptions options;
  options.path = dir.file("no-such-dir/node.db");
  auto db = Database::open(options);
  ASSERT_FALSE(db.isOk());
  EXPECT_EQ(db.status().code(), ErrorCode::kIo);
  EXPECT_EQ(db.status().message(), "opening database " + options.path + ": unable to open database file");
}

TEST(Database, OpeningAFileThatIsNotADatabaseIsReportedAsCorrupt) {
  TempDir dir;
  std::string path = dir.file("garbage.db");
  {
    std::ofstream out(path, std::ios::binary);
    out << std::string(4096, 'x');
  }
  DatabaseOptions options;
  options.path = path;
  auto db = Database::open(options);
  ASSERT_FALSE(db.isOk());
  EXPECT_EQ(db.status().code(), ErrorCode::kCorrupt) << db.status().toString();
  EXPECT_NE(db.status().message().find(path), std::string::npos) << db.status().toString();
  EXPECT_NE(db.status().message().find("not a database"), std::string::npos) << db.status().toString();
}

TEST(Database, MigrationsApplyOnceInOrderAndSurviveReopen) {
  TempDir dir;
  std::string path = dir.file("node.db");
  {
    auto db = openDb(path);
    ASSERT_NE(db, nullptr);
    auto v0 = db->schemaVersion("widgets");
    ASSERT_TRUE(v0.isOk());
    EXPECT_EQ(*v0, 0);
    // Only version 1 known to this "older build".
    ASSERT_TRUE(db->migrate("widgets", {kWidgetMigrations[0]}).isOk());
    EXPECT_EQ(*db->schemaVersion("widgets"), 1);
    ASSERT_TRUE(db->exec("INSERT INTO widgets(id, name) VALUES(1, 'lamp')").isOk());
    // The newer build applies only version 2 (version 1 would fail: the table exists).
    ASSERT_TRUE(db->migrate("widgets", kWidgetMigrations).isOk());
    EXPECT_EQ(*db->schemaVersion("widgets"), 2);
    // Applying again is a no-op.
    ASSERT_TRUE(db->migrate("widgets", kWidgetMigrations).isOk());
    EXPECT_EQ(queryInt(*db, "SELECT COUNT(*) FROM schema_migrations WHERE component = 'widgets'"), 2);
    EXPECT_EQ(queryInt(*db, "SELECT MIN(version) FROM schema_migrations WHERE component = 'widgets'"), 1);
    EXPECT_GT(queryInt(*db, "SELECT MIN(applied_ms) FROM schema_migrations"), 0);
  }
  auto db = openDb(path);
  ASSERT_NE(db, nullptr);
  EXPECT_EQ(*db->schemaVersion("widgets"), 2);
  ASSERT_TRUE(db->migrate("widgets", kWidgetMigrations).isOk());
  EXPECT_EQ(queryText(*db, "SELECT name FROM widgets WHERE id = 1"), "lamp");
  EXPECT_TRUE(db->exec("UPDATE widgets SET colour = 'red' WHERE id = 1").isOk());
  // Components are versioned independently.
  EXPECT_EQ(*db->schemaVersion("other"), 0);
}

TEST(Database, FailedMigrationLeavesThePreviousVersionAndNoPartialSchema) {
  TempDir dir;
  auto db = openDb(dir.file("node.db"));
  ASSERT_NE(db, nullptr);
  std::vector<Migration> migrations = {
      {1, "CREATE TABLE a(x INTEGER);"},
      {2, "CREATE TABLE b(y INTEGER); THIS IS NOT SQL;"},
  };
  Status s = db->migrate("broken", migrations);
  ASSERT_FALSE(s.isOk());
  EXPECT_NE(s.message().find("migrating broken"), std::string::npos) << s.toString();
  EXPECT_NE(s.message().find("version 2"), std::string::npos) << s.toString();
  EXPECT_EQ(*db->schemaVersion("broken"), 1);
  EXPECT_EQ(queryInt(*db, "SELECT COUNT(*) FROM sqlite_master WHERE name = 'b'"), 0);
  EXPECT_FALSE(db->inTransaction());
}

TEST(Database, MigrationVersionsMustCountFromOne) {
  TempDir dir;
  auto db = openDb(dir.file("node.db"));
  ASSERT_NE(db, nullptr);
  Status s = db->migrate("gappy", {{1, "CREATE TABLE a(x);"}, {3, "CREATE TABLE c(x);"}});
  EXPECT_EQ(s.code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(*db->schemaVersion("gappy"), 0);
}

TEST(Database, DatabaseNewerThanTheBuildIsRefused) {
  TempDir dir;
  auto db = openDb(dir.file("node.db"));
  ASSERT_NE(db, nullptr);
  ASSERT_TRUE(db->migrate("widgets", kWidgetMigrations).isOk());
  Status s = db->migrate("widgets", {kWidgetMigrations[0]});
  EXPECT_EQ(s.code(), ErrorCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("newer"), std::string::npos) << s.toString();
}

TEST(Database, TransactionRollsBackWhenDestroyedWithoutCommit) {
  TempDir dir;
  auto db = openDb(dir.file("node.db"));
  ASSERT_NE(db, nullptr);
  ASSERT_TRUE(db->migrate("widgets", kWidgetMigrations).isOk());
  {
    auto tx = db->begin();
    ASSERT_TRUE(tx.isOk()) << tx.status().toString();
    EXPECT_TRUE(db->inTransaction());
    ASSERT_TRUE(db->exec("INSERT INTO widgets(id, name) VALUES(1, 'lamp')").isOk());
    EXPECT_EQ(queryInt(*db, "SELECT COUNT(*) FROM widgets"), 1);
  }
  EXPECT_FALSE(db->inTransaction());
  EXPECT_EQ(queryInt(*db, "SELECT COUNT(*) FROM widgets"), 0);
  {
    auto tx = db->begin();
    ASSERT_TRUE(tx.isOk());
    ASSERT_TRUE(db->exec("INSERT INTO widgets(id, name) VALUES(2, 'desk')").isOk());
    ASSERT_TRUE(tx->commit().isOk());
    EXPECT_FALSE(db->inTransaction());
    EXPECT_EQ(tx->commit().code(), ErrorCode::kFailedPrecondition);  // already ended
  }
  EXPECT_EQ(queryInt(*db, "SELECT COUNT(*) FROM widgets"), 1);
}

TEST(Database, TransactionsDoNotNest) {
  TempDir dir;
  auto db = openDb(dir.file("node.db"));
  ASSERT_NE(db, nullptr);
  auto outer = db->begin();
  ASSERT_TRUE(outer.isOk());
  auto inner = db->begin();
  ASSERT_FALSE(inner.isOk());
  EXPECT_EQ(inner.status().code(), ErrorCode::kFailedPrecondition);
  EXPECT_TRUE(db->inTransaction());  // the outer one is still open
  EXPECT_TRUE(outer->commit().isOk());
}

TEST(Database, MovedTransactionRollsBackOnlyOnce) {
  TempDir dir;
  auto db = openDb(dir.file("node.db"));
  ASSERT_NE(db, nullptr);
  ASSERT_TRUE(db->migrate("widgets", kWidgetMigrations).isOk());
  {
    auto tx = db->begin();
    ASSERT_TRUE(tx.isOk());
    Transaction moved(std::move(tx).value());
    ASSERT_TRUE(db->exec("INSERT INTO widgets(id, name) VALUES(1, 'lamp')").isOk());
    ASSERT_TRUE(moved.commit().isOk());
  }  // the moved-from transaction must not roll anything back
  EXPECT_EQ(queryInt(*db, "SELECT COUNT(*) FROM widgets"), 1);
}

TEST(Database, StatementCacheReusesTheSameStatementForTheSameSql) {
  TempDir dir;
  auto db = openDb(dir.file("node.db"));
  ASSERT_NE(db, nullptr);
  const std::string sql = "SELECT ?1 + 1";
  {
    auto a = db->prepare(sql);
    ASSERT_TRUE(a.isOk());
    a->bind(1, int64_t{41});
    ASSERT_TRUE(*a->step());
    EXPECT_EQ(a->columnInt64(0), 42);
  }
  // The same SQL comes back reset and unbound: ?1 is NULL, so NULL + 1 is NULL.
  auto again = db->prepare(sql);
  ASSERT_TRUE(again.isOk());
  ASSERT_TRUE(*again->step());
  EXPECT_TRUE(again->columnIsNull(0));
  // While one handle is out, preparing the same SQL gives an independent statement.
  auto nested = db->prepare(sql);
  ASSERT_TRUE(nested.isOk());
  nested->bind(1, int64_t{1});
  ASSERT_TRUE(*nested->step());
  EXPECT_EQ(nested->columnInt64(0), 2);
  EXPECT_TRUE(again->columnIsNull(0));  // the first handle's row is untouched
}

TEST(Database, StatementCacheCompilesSequentiallyReusedSqlOnce) {
  TempDir dir;
  auto db = openDb(dir.file("node.db"));
  ASSERT_NE(db, nullptr);
  // SQLite's sqlite_stmt table lists the connection's prepared statements and how often each
  // ran (Debian builds it in); skip rather than fail where a build lacks it.
  if (!db->prepare("SELECT COUNT(*) FROM sqlite_stmt").isOk()) GTEST_SKIP() << "SQLite built without STMTVTAB";
  for (int i = 0; i < 100; ++i) {
    auto s = db->prepare("SELECT 7");
    ASSERT_TRUE(s.isOk());
    ASSERT_TRUE(s->run().isOk());
  }
  EXPECT_EQ(queryInt(*db, "SELECT COUNT(*) FROM sqlite_stmt WHERE sql = 'SELECT 7'"), 1);
  EXPECT_EQ(queryInt(*db, "SELECT run FROM sqlite_stmt WHERE sql = 'SELECT 7'"), 100);
  // A cached statement still works after a schema change (SQLite re-prepares it).
  ASSERT_TRUE(db->exec("CREATE TABLE t(x)").isOk());
  EXPECT_EQ(queryInt(*db, "SELECT 7"), 7);
}

TEST(Database, PrepareRefusesTextWithSeveralStatements) {
  TempDir dir;
  auto db = openDb(dir.file("node.db"));
  ASSERT_NE(db, nullptr);
  auto s = db->prepare("SELECT 1; SELECT 2");
  ASSERT_FALSE(s.isOk());
  EXPECT_EQ(s.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_TRUE(db->prepare("SELECT 1;").isOk());  // a trailing semicolon is fine
}

TEST(Database, SqlErrorsCarrySqliteMessageAndTheStatement) {
  TempDir dir;
  auto db = openDb(dir.file("node.db"));
  ASSERT_NE(db, nullptr);
  auto s = db->prepare("SELECT * FROM no_such_table");
  ASSERT_FALSE(s.isOk());
  EXPECT_NE(s.status().message().find("no such table: no_such_table"), std::string::npos) << s.status().toString();
  EXPECT_NE(s.status().message().find("SELECT * FROM no_such_table"), std::string::npos);
}

TEST(Database, BindErrorIsReportedByStepInsteadOfBindingNull) {
  TempDir dir;
  auto db = openDb(dir.file("node.db"));
  ASSERT_NE(db, nullptr);
  auto s = db->prepare("SELECT ?1");
  ASSERT_TRUE(s.isOk());
  s->bind(2, int64_t{5});  // no parameter 2
  auto row = s->step();
  ASSERT_FALSE(row.isOk());
  EXPECT_EQ(row.status().code(), ErrorCode::kInternal);
  EXPECT_NE(row.status().message().find("parameter 2"), std::string::npos) << row.status().toString();
}

TEST(Database, UniqueViolationIsAlreadyExists) {
  TempDir dir;
  auto db = openDb(dir.file("node.db"));
  ASSERT_NE(db, nullptr);
  ASSERT_TRUE(db->migrate("widgets", kWidgetMigrations).isOk());
  ASSERT_TRUE(db->exec("INSERT INTO widgets(id, name) VALUES(1, 'lamp')").isOk());
  auto s = db->prepare("INSERT INTO widgets(id, name) VALUES(?1, ?2)");
  ASSERT_TRUE(s.isOk());
  s->bind(1, int64_t{1}).bind(2, "again");
  EXPECT_EQ(s->run().code(), ErrorCode::kAlreadyExists);
}

TEST(Database, EmptyBlobAndTextAreStoredAsEmptyNotNull) {
  TempDir dir;
  auto db = openDb(dir.file("node.db"));
  ASSERT_NE(db, nullptr);
  ASSERT_TRUE(db->exec("CREATE TABLE t(b BLOB NOT NULL, s TEXT NOT NULL)").isOk());
  auto insert = db->prepare("INSERT INTO t(b, s) VALUES(?1, ?2)");
  ASSERT_TRUE(insert.isOk());
  insert->bind(1, Bytes{}).bind(2, std::string_view{});
  ASSERT_TRUE(insert->run().isOk()) << "empty values must not turn into NULL";
  auto read = db->prepare("SELECT b, s FROM t");
  ASSERT_TRUE(read.isOk());
  ASSERT_TRUE(*read->step());
  EXPECT_TRUE(read->columnBlob(0).empty());
  EXPECT_EQ(read->columnText(1), "");
}

TEST(Database, DataSurvivesCloseAndReopen) {
  TempDir dir;
  std::string path = dir.file("node.db");
  {
    auto db = openDb(path);
    ASSERT_NE(db, nullptr);
    ASSERT_TRUE(db->migrate("widgets", kWidgetMigrations).isOk());
    auto tx = db->begin();
    ASSERT_TRUE(tx.isOk());
    auto s = db->prepare("INSERT INTO widgets(id, name) VALUES(?1, ?2)");
    ASSERT_TRUE(s.isOk());
    s->bind(1, int64_t{7}).bind(2, "stamp");
    ASSERT_TRUE(s->run().isOk());
    ASSERT_TRUE(tx->commit().isOk());
  }
  auto db = openDb(path);
  ASSERT_NE(db, nullptr);
  EXPECT_EQ(queryText(*db, "SELECT name FROM widgets WHERE id = 7"), "stamp");
}

TEST(Database, StatementMayOutliveItsDatabase) {
  TempDir dir;
  auto db = openDb(dir.file("node.db"));
  ASSERT_NE(db, nullptr);
  auto s = db->prepare("SELECT 1");
  ASSERT_TRUE(s.isOk());
  Statement held = std::move(s).value();
  db.reset();  // must not crash now, nor when `held` dies after it
  SUCCEED();
}

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
  EXPECT_EQ(*db->schemaVersion("outbox"), 1);
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
