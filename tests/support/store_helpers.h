// Helpers shared by the store's test files: real SQLite files, single-value queries.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "federation/store/database.h"
#include "tests/support/temp_dir.h"

namespace tongban::store_testing {

using tongban::testing::TempDir;

inline std::unique_ptr<Database> openDb(const std::string& path, Synchronous sync = Synchronous::kFull) {
  DatabaseOptions options;
  options.path = path;
  options.synchronous = sync;
  auto db = Database::open(options);
  EXPECT_TRUE(db.isOk()) << db.status().toString();
  return db.isOk() ? std::move(db).value() : nullptr;
}

// Reads one integer from a single-row query, failing the test on any error.
inline int64_t queryInt(Database& db, const std::string& sql) {
  auto stmt = db.prepare(sql);
  EXPECT_TRUE(stmt.isOk()) << stmt.status().toString();
  if (!stmt.isOk()) return -1;
  auto row = stmt->step();
  EXPECT_TRUE(row.isOk()) << row.status().toString();
  EXPECT_TRUE(row.isOk() && *row) << "no row for " << sql;
  if (!row.isOk() || !*row) return -1;
  return stmt->columnInt64(0);
}

inline std::string queryText(Database& db, const std::string& sql) {
  auto stmt = db.prepare(sql);
  EXPECT_TRUE(stmt.isOk()) << stmt.status().toString();
  if (!stmt.isOk()) return {};
  auto row = stmt->step();
  EXPECT_TRUE(row.isOk() && *row) << "no row for " << sql;
  if (!row.isOk() || !*row) return {};
  return stmt->columnText(0);
}

inline const std::vector<Migration> kWidgetMigrations = {
    {1, "CREATE TABLE widgets(id INTEGER PRIMARY KEY, name TEXT NOT NULL);"},
    {2, "ALTER TABLE widgets ADD COLUMN colour TEXT; CREATE INDEX widgets_by_name ON widgets(name);"},
};

}  // namespace tongban::store_testing
