// The SQLite wrapper: migrations, transactions, the statement cache, errors. Real files in a
// temp dir, because WAL and re-opening are part of what is tested.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "tests/support/store_helpers.h"

namespace tongban {
namespace {

using namespace store_testing;

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

}  // namespace
}  // namespace tongban
