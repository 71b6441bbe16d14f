// SQLite, the record of truth of every node. One Database per node, used only from the node's
// executor (no locking here: the one-thread rule makes it unnecessary).
//
// WAL mode always. `synchronous` is chosen per deployment (see docs/operations.md): FULL by
// default, because everything a node acknowledges to another node must survive a power cut;
// the simulator uses OFF on tmpfs because its "crashes" never lose the page cache.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "federation/util/bytes.h"
#include "federation/util/status.h"

struct sqlite3;
struct sqlite3_stmt;

namespace tongban {

enum class Synchronous { kOff, kNormal, kFull };

struct DatabaseOptions {
  std::string path;                 // file path; ":memory:" for a private in-memory database
  Synchronous synchronous = Synchronous::kFull;
  int busy_timeout_ms = 5000;
};

// One schema step of one component. Versions per component start at 1 and are applied in order
// inside one transaction each; the applied version is kept in table schema_migrations.
struct Migration {
  int version;
  std::string sql;                  // may contain several statements
};

struct StatementCache;  // defined in database.cpp

// A prepared statement borrowed from its Database's cache. While a handle lives, nobody else
// gets the same sqlite3_stmt (preparing the same SQL again gives a second one), so nested use
// is safe; destroying the handle resets it and returns it to the cache. A handle may outlive
// its Database (it then finalizes itself), but must not be used after it.
class Statement {
 public:
  Statement(Statement&&) noexcept;
  Statement& operator=(Statement&&) noexcept;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement();

  // Parameters are 1-based, as in SQLite.
  Statement& bind(int index, int64_t value);
  Statement& bind(int index, std::string_view text);
  Statement& bind(int index, const Bytes& blob);
  Statement& bindNull(int index);

  // kOk with true: a row is ready; true → false: done. Errors carry SQLite's message.
  Result<bool> step();
  // Steps to completion, for statements that return no rows.
  Status run();
  void reset();  // clears bindings too

  int64_t columnInt64(int index) const;  // 0-based, as in SQLite
  std::string columnText(int index) const;
  Bytes columnBlob(int index) const;
  bool columnIsNull(int index) const;

 private:
  friend class Database;
  Statement(sqlite3* db, sqlite3_stmt* stmt, std::weak_ptr<StatementCache> cache)
      : db_(db), stmt_(stmt), cache_(std::move(cache)) {}
  void release();
  sqlite3* db_ = nullptr;
  sqlite3_stmt* stmt_ = nullptr;
  std::weak_ptr<StatementCache> cache_;
  // bind() chains, so it cannot return an error; the first one is kept and step() reports it
  // instead of running the statement with a parameter silently left NULL.
  std::string bind_error_;
};

class Database;

// RAII transaction: rolls back unless commit() succeeded. Not nestable (SQLite savepoints are
// not used: one node, one thread, one transaction at a time).
class Transaction {
 public:
  Transaction(Transaction&&) noexcept;
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  ~Transaction();
  Status commit();
 private:
  friend class Database;
  explicit Transaction(Database* db) : db_(db) {}
  Database* db_;
};

class Database {
 public:
  static Result<std::unique_ptr<Database>> open(const DatabaseOptions& options);
  ~Database();

  // Applies the component's pending migrations in order.
  Status migrate(const std::string& component, const std::vector<Migration>& migrations);
  Result<int> schemaVersion(const std::string& component);

  Status exec(std::string_view sql);
  // Statements are cached by SQL text; the returned handle is reset and unbound.
  Result<Statement> prepare(std::string_view sql);

  // BEGIN IMMEDIATE. Fails if a transaction is already open.
  Result<Transaction> begin();
  bool inTransaction() const { return in_transaction_; }

  int64_t lastInsertRowId() const;
  int changes() const;
  const std::string& path() const { return path_; }

 private:
  friend class Transaction;
  Database() = default;
  Status execChecked(std::string_view sql, const std::string& doing);
  sqlite3* db_ = nullptr;
  std::shared_ptr<StatementCache> cache_;
  std::string path_;
  bool in_transaction_ = false;
};

}  // namespace tongban
