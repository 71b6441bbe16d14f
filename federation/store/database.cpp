#include "federation/store/database.h"

#include <sqlite3.h>

#include <algorithm>
#include <limits>
#include <unordered_map>

namespace tongban {

namespace {

// Idle prepared statements kept per connection. The SQL a node runs is a fixed set of string
// literals (a few dozen); the cap only matters if someone builds SQL text at run time, which
// would otherwise grow the cache without bound.
constexpr size_t kMaxIdleStatements = 256;

// Maps SQLite's result codes onto ours, so callers can tell "retry later" from "the file is
// damaged" from "you broke a constraint" without parsing messages.
ErrorCode codeFor(int rc) {
  switch (rc & 0xff) {  // primary code of an extended result code
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return ErrorCode::kUnavailable;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return ErrorCode::kCorrupt;
    case SQLITE_CONSTRAINT:
      if (rc == SQLITE_CONSTRAINT_PRIMARYKEY || rc == SQLITE_CONSTRAINT_UNIQUE) return ErrorCode::kAlreadyExists;
      return ErrorCode::kFailedPrecondition;
    case SQLITE_FULL:
      return ErrorCode::kResourceExhausted;
    case SQLITE_MISUSE:
    case SQLITE_RANGE:
      return ErrorCode::kInternal;
    default:
      return ErrorCode::kIo;
  }
}

std::string errorText(sqlite3* db, int rc) {
  if (db != nullptr) return sqlite3_errmsg(db);
  return sqlite3_errstr(rc);
}

Status sqliteError(sqlite3* db, int rc, const std::string& doing) {
  return Status(codeFor(rc), doing + ": " + errorText(db, rc));
}

std::string shortSql(std::string_view sql) {
  // Enough of the statement to recognise it in a log line, without dumping a whole migration.
  constexpr size_t kMaxShown = 120;
  std::string s(sql.substr(0, kMaxShown));
  std::replace(s.begin(), s.end(), '\n', ' ');
  if (sql.size() > kMaxShown) s += "...";
  return s;
}

const char* synchronousName(Synchronous s) {
  switch (s) {
    case Synchronous::kOff: return "OFF";
    case Synchronous::kNormal: return "NORMAL";
    case Synchronous::kFull: return "FULL";
  }
  return "FULL";
}

}  // namespace

// Idle statements by SQL text, plus the text of every statement handed out so it can be filed
// back. Shared with the Statement handles through a weak_ptr: a handle that outlives its
// Database finds the cache gone and finalizes its statement itself.
struct StatementCache {
  std::unordered_map<std::string, std::vector<sqlite3_stmt*>> idle;
  std::unordered_map<sqlite3_stmt*, std::string> sql_of;
  size_t idle_count = 0;
};

// ---------------------------------------------------------------------------------------------
// Statement

Statement::Statement(Statement&& other) noexcept
    : db_(other.db_), stmt_(other.stmt_), cache_(std::move(other.cache_)), bind_error_(std::move(other.bind_error_)) {
  other.db_ = nullptr;
  other.stmt_ = nullptr;
}

Statement& Statement::operator=(Statement&& other) noexcept {
  if (this != &other) {
    release();
    db_ = other.db_;
    stmt_ = other.stmt_;
    cache_ = std::move(other.cache_);
    bind_error_ = std::move(other.bind_error_);
    other.db_ = nullptr;
    other.stmt_ = nullptr;
  }
  return *this;
}

Statement::~Statement() { release(); }

void Statement::release() {
  if (stmt_ == nullptr) return;
  // Reset ends any read the statement still holds open (a SELECT stepped only once keeps its
  // read snapshot until reset), so an idle cached statement never pins the WAL.
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
  auto cache = cache_.lock();
  bool kept = false;
  if (cache) {
    auto it = cache->sql_of.find(stmt_);
    if (it != cache->sql_of.end()) {
      if (cache->idle_count < kMaxIdleStatements) {
        cache->idle[it->second].push_back(stmt_);
        ++cache->idle_count;
        kept = true;
      } else {
        cache->sql_of.erase(it);
      }
    }
  }
  if (!kept) sqlite3_finalize(stmt_);
  stmt_ = nullptr;
  db_ = nullptr;
  cache_.reset();
}

namespace {
void noteBindError(std::string& bind_error, sqlite3* db, sqlite3_stmt* stmt, int rc, int index) {
  if (rc == SQLITE_OK || !bind_error.empty()) return;
  bind_error = "binding parameter " + std::to_string(index) + " of \"" + shortSql(sqlite3_sql(stmt)) +
               "\": " + errorText(db, rc);
}
}  // namespace

Statement& Statement::bind(int index, int64_t value) {
  noteBindError(bind_error_, db_, stmt_, sqlite3_bind_int64(stmt_, index, value), index);
  return *this;
}

Statement& Statement::bind(int index, std::string_view text) {
  // An empty view may have a null data(); SQLite would bind NULL for a null pointer.
  static const char kEmpty[] = "";
  const char* data = text.data() != nullptr ? text.data() : kEmpty;
  noteBindError(bind_error_, db_, stmt_,
                sqlite3_bind_text64(stmt_, index, data, text.size(), SQLITE_TRANSIENT, SQLITE_UTF8), index);
  return *this;
}

Statement& Statement::bind(int index, const Bytes& blob) {
  // Same as above: an empty vector has a null data(), which SQLite would store as NULL, not as
  // an empty blob (and NOT NULL columns would then refuse it).
  static const uint8_t kEmpty[1] = {0};
  const void* data = blob.empty() ? static_cast<const void*>(kEmpty) : blob.data();
  noteBindError(bind_error_, db_, stmt_, sqlite3_bind_blob64(stmt_, index, data, blob.size(), SQLITE_TRANSIENT),
                index);
  return *this;
}

Statement& Statement::bindNull(int index) {
  noteBindError(bind_error_, db_, stmt_, sqlite3_bind_null(stmt_, index), index);
  return *this;
}

Result<bool> Statement::step() {
  if (stmt_ == nullptr) return Status(ErrorCode::kInternal, "stepping a statement that was moved from");
  if (!bind_error_.empty()) return Status(ErrorCode::kInternal, bind_error_);
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  Status error = sqliteError(db_, rc, "running \"" + shortSql(sqlite3_sql(stmt_)) + "\"");
  sqlite3_reset(stmt_);  // leaves the statement usable again after the error
  return error;
}

Status Statement::run() {
  while (true) {
    auto row = step();
    if (!row.isOk()) return row.status();
    if (!*row) return Status::ok();
  }
}

void Statement::reset() {
  if (stmt_ == nullptr) return;
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
  bind_error_.clear();
}

int64_t Statement::columnInt64(int index) const { return sqlite3_column_int64(stmt_, index); }

std::string Statement::columnText(int index) const {
  const unsigned char* text = sqlite3_column_text(stmt_, index);
  int size = sqlite3_column_bytes(stmt_, index);  // after column_text, as SQLite documents
  if (text == nullptr) return {};
  return std::string(reinterpret_cast<const char*>(text), static_cast<size_t>(size));
}

Bytes Statement::columnBlob(int index) const {
  const void* data = sqlite3_column_blob(stmt_, index);
  int size = sqlite3_column_bytes(stmt_, index);
  if (data == nullptr || size <= 0) return {};
  const auto* p = static_cast<const uint8_t*>(data);
  return Bytes(p, p + size);
}

bool Statement::columnIsNull(int index) const { return sqlite3_column_type(stmt_, index) == SQLITE_NULL; }

// ---------------------------------------------------------------------------------------------
// Transaction

Transaction::Transaction(Transaction&& other) noexcept : db_(other.db_) { other.db_ = nullptr; }

Transaction::~Transaction() {
  if (db_ == nullptr) return;
  // Not committed: a crash-equivalent. Undo everything, including outbox rows written inside.
  if (sqlite3_get_autocommit(db_->db_) == 0) sqlite3_exec(db_->db_, "ROLLBACK", nullptr, nullptr, nullptr);
  db_->in_transaction_ = false;
}

Status Transaction::commit() {
  if (db_ == nullptr) return Status(ErrorCode::kFailedPrecondition, "committing a transaction that already ended");
  Database* db = db_;
  db_ = nullptr;
  db->in_transaction_ = false;
  if (sqlite3_get_autocommit(db->db_) != 0) {
    // SQLite rolls a transaction back by itself after some errors (disk full, I/O error).
    return Status(ErrorCode::kIo, "committing transaction on " + db->path_ +
                                      ": SQLite already rolled it back after an earlier error; nothing was saved");
  }
  int rc = sqlite3_exec(db->db_, "COMMIT", nullptr, nullptr, nullptr);
  if (rc == SQLITE_OK) return Status::ok();
  Status error = sqliteError(db->db_, rc, "committing transaction on " + db->path_);
  // A failed commit must not leave a half-open transaction behind for the next caller: the
  // contract is that nothing is saved unless commit() returns OK.
  if (sqlite3_get_autocommit(db->db_) == 0) sqlite3_exec(db->db_, "ROLLBACK", nullptr, nullptr, nullptr);
  return error;
}

// ---------------------------------------------------------------------------------------------
// Database

Result<std::unique_ptr<Database>> Database::open(const DatabaseOptions& options) {
  const std::string doing = "opening database " + options.path;
  if (options.path.empty()) return Status(ErrorCode::kInvalidArgument, doing + ": no path given");

  std::unique_ptr<Database> db(new Database());
  db->path_ = options.path;
  db->cache_ = std::make_shared<StatementCache>();
  // NOMUTEX: one connection per node, used from the node's one thread (see the header).
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
  int rc = sqlite3_open_v2(options.path.c_str(), &db->db_, flags, nullptr);
  if (rc != SQLITE_OK) {
    Status error = sqliteError(db->db_, rc, doing);
    // ~Database closes the handle SQLite allocated even on failure.
    return error;
  }
  sqlite3_extended_result_codes(db->db_, 1);
  sqlite3_busy_timeout(db->db_, std::max(0, options.busy_timeout_ms));

  // journal_mode answers with the mode now in force; a file that is not a database fails here.
  {
    auto stmt = db->prepare("PRAGMA journal_mode=WAL");
    if (!stmt.isOk()) return stmt.status().withContext(doing);
    auto row = stmt->step();
    if (!row.isOk()) return row.status().withContext(doing);
    std::string mode = *row ? stmt->columnText(0) : std::string();
    // An in-memory database cannot use WAL and answers "memory"; that is expected.
    if (mode != "wal" && !(options.path == ":memory:" && mode == "memory")) {
      return Status(ErrorCode::kIo, doing + ": could not switch to WAL mode (journal_mode is '" + mode +
                                        "'); is the directory on a file system that supports shared memory?");
    }
  }
  TB_RETURN_IF_ERROR(
      db->execChecked(std::string("PRAGMA synchronous=") + synchronousName(options.synchronous), doing));
  TB_RETURN_IF_ERROR(db->execChecked("PRAGMA foreign_keys=ON", doing));
  TB_RETURN_IF_ERROR(db->execChecked(
      "CREATE TABLE IF NOT EXISTS schema_migrations("
      "  component TEXT NOT NULL,"
      "  version INTEGER NOT NULL,"
      "  applied_ms INTEGER NOT NULL,"
      "  PRIMARY KEY(component, version))",
      doing));
  return db;
}

Database::~Database() {
  if (cache_) {
    for (auto& [sql, stmts] : cache_->idle) {
      for (sqlite3_stmt* stmt : stmts) sqlite3_finalize(stmt);
    }
    cache_->idle.clear();
    cache_->sql_of.clear();
    cache_.reset();  // handles still out finalize themselves when they die
  }
  if (db_ != nullptr) {
    if (in_transaction_ && sqlite3_get_autocommit(db_) == 0) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    // close_v2: if a Statement handle is still alive, the connection is freed when it is
    // finalized instead of failing with SQLITE_BUSY and leaking.
    sqlite3_close_v2(db_);
  }
}

Status Database::execChecked(std::string_view sql, const std::string& doing) {
  char* message = nullptr;
  std::string text(sql);
  int rc = sqlite3_exec(db_, text.c_str(), nullptr, nullptr, &message);
  if (rc == SQLITE_OK) return Status::ok();
  std::string detail = message != nullptr ? message : errorText(db_, rc);
  sqlite3_free(message);
  return Status(codeFor(sqlite3_extended_errcode(db_)), doing + ": " + detail);
}

Status Database::exec(std::string_view sql) {
  return execChecked(sql, "executing \"" + shortSql(sql) + "\" on " + path_);
}

Result<Statement> Database::prepare(std::string_view sql) {
  std::string key(sql);
  auto it = cache_->idle.find(key);
  if (it != cache_->idle.end() && !it->second.empty()) {
    sqlite3_stmt* stmt = it->second.back();
    it->second.pop_back();
    --cache_->idle_count;
    return Statement(db_, stmt, cache_);
  }
  sqlite3_stmt* stmt = nullptr;
  const char* tail = nullptr;
  int rc = sqlite3_prepare_v3(db_, key.c_str(), static_cast<int>(key.size() + 1), SQLITE_PREPARE_PERSISTENT, &stmt,
                              &tail);
  if (rc != SQLITE_OK) {
    return sqliteError(db_, rc, "preparing \"" + shortSql(sql) + "\" on " + path_);
  }
  if (stmt == nullptr) {
    return Status(ErrorCode::kInvalidArgument, "preparing \"" + shortSql(sql) + "\": no SQL statement in the text");
  }
  // Only the first statement would run: refuse rather than silently ignore the rest.
  for (const char* p = tail; p != nullptr && *p != '\0'; ++p) {
    if (*p != ' ' && *p != '\n' && *p != '\t' && *p != '\r' && *p != ';') {
      sqlite3_finalize(stmt);
      return Status(ErrorCode::kInvalidArgument,
                    "preparing \"" + shortSql(sql) + "\": more than one statement; use exec() for scripts");
    }
  }
  cache_->sql_of.emplace(stmt, std::move(key));
  return Statement(db_, stmt, cache_);
}

Result<Transaction> Database::begin() {
  if (in_transaction_) {
    return Status(ErrorCode::kFailedPrecondition,
                  "beginning a transaction on " + path_ + ": one is already open (transactions do not nest)");
  }
  // IMMEDIATE takes the write lock now, so a busy database fails here (after busy_timeout)
  // rather than half-way through the caller's writes.
  TB_RETURN_IF_ERROR(execChecked("BEGIN IMMEDIATE", "beginning a transaction on " + path_));
  in_transaction_ = true;
  return Transaction(this);
}

Result<int> Database::schemaVersion(const std::string& component) {
  auto stmt = prepare("SELECT COALESCE(MAX(version), 0) FROM schema_migrations WHERE component = ?1");
  if (!stmt.isOk()) return stmt.status();
  stmt->bind(1, component);
  auto row = stmt->step();
  if (!row.isOk()) return row.status().withContext("reading schema version of " + component);
  if (!*row) return 0;
  return static_cast<int>(stmt->columnInt64(0));
}

Status Database::migrate(const std::string& component, const std::vector<Migration>& migrations) {
  const std::string doing = "migrating " + component + " in " + path_;
  if (component.empty()) return Status(ErrorCode::kInvalidArgument, doing + ": component name is empty");
  if (in_transaction_) {
    return Status(ErrorCode::kFailedPrecondition, doing + ": a transaction is open; migrate before using the database");
  }
  for (size_t i = 0; i < migrations.size(); ++i) {
    if (migrations[i].version != static_cast<int>(i + 1)) {
      return Status(ErrorCode::kInvalidArgument, doing + ": migration #" + std::to_string(i + 1) + " has version " +
                                                     std::to_string(migrations[i].version) +
                                                     "; versions must be 1, 2, 3... in order");
    }
  }
  TB_ASSIGN_OR_RETURN(int current, schemaVersion(component));
  if (current > static_cast<int>(migrations.size())) {
    return Status(ErrorCode::kFailedPrecondition,
                  doing + ": the database is at schema version " + std::to_string(current) +
                      ", newer than this build knows (" + std::to_string(migrations.size()) +
                      "); run a newer tongban or restore a backup made by this version");
  }
  for (size_t i = static_cast<size_t>(current); i < migrations.size(); ++i) {
    const Migration& m = migrations[i];
    const std::string step = doing + " to version " + std::to_string(m.version);
    auto tx = begin();
    if (!tx.isOk()) return tx.status().withContext(step);
    TB_RETURN_IF_ERROR(execChecked(m.sql, step));
    {
      auto stmt = prepare(
          "INSERT INTO schema_migrations(component, version, applied_ms) "
          "VALUES(?1, ?2, CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER))");
      if (!stmt.isOk()) return stmt.status().withContext(step);
      // applied_ms is for the operator's eyes only (SQLite's clock, never read by node logic,
      // so the simulator's determinism does not depend on it).
      stmt->bind(1, component).bind(2, static_cast<int64_t>(m.version));
      TB_RETURN_IF_ERROR(stmt->run().withContext(step));
    }
    TB_RETURN_IF_ERROR(tx->commit().withContext(step));
  }
  return Status::ok();
}

int64_t Database::lastInsertRowId() const { return sqlite3_last_insert_rowid(db_); }

int Database::changes() const { return sqlite3_changes(db_); }

}  // namespace tongban
