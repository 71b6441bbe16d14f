#include "federation/store/outbox.h"

#include <limits>

namespace tongban {

namespace {

// AUTOINCREMENT (not a plain rowid) because a seq must never be reused even after the newest
// rows are deleted: the parent's receipts would take a reused seq for a replay and drop it.
const std::vector<Migration> kOutboxMigrations = {
    {1,
     "CREATE TABLE outbox("
     "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
     "  kind INTEGER NOT NULL,"
     "  target TEXT NOT NULL,"
     "  payload BLOB NOT NULL,"
     "  created_ms INTEGER NOT NULL,"
     "  attempts INTEGER NOT NULL DEFAULT 0)"},
    // One shipper per neighbour reads only its own target's rows.
    {2, "CREATE INDEX outbox_by_target ON outbox (target, seq)"},
};

Status requireTransaction(const Database& db, const char* what) {
  if (db.inTransaction()) return Status::ok();
  return Status(ErrorCode::kFailedPrecondition,
                std::string(what) +
                    " outside a transaction: the message must commit together with the change that causes it; "
                    "call it between Database::begin() and commit()");
}

int64_t clampToInt64(uint64_t v) {
  return v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ? std::numeric_limits<int64_t>::max()
                                                                         : static_cast<int64_t>(v);
}

}  // namespace

Result<Outbox> Outbox::open(Database& db) {
  TB_RETURN_IF_ERROR(db.migrate("outbox", kOutboxMigrations));
  return Outbox(db);
}

Result<uint64_t> Outbox::enqueue(uint16_t kind, const std::string& target, const Bytes& payload, TimeMs now_ms) {
  TB_RETURN_IF_ERROR(requireTransaction(*db_, "outbox enqueue"));
  TB_ASSIGN_OR_RETURN(Statement stmt, db_->prepare("INSERT INTO outbox(kind, target, payload, created_ms, attempts) "
                                                   "VALUES(?1, ?2, ?3, ?4, 0)"));
  stmt.bind(1, static_cast<int64_t>(kind)).bind(2, target).bind(3, payload).bind(4, now_ms);
  TB_RETURN_IF_ERROR(stmt.run().withContext("adding a message for " + target + " to the outbox"));
  return static_cast<uint64_t>(db_->lastInsertRowId());
}

Result<uint64_t> Outbox::enqueueCoalescing(uint16_t kind, const std::string& target, const Bytes& payload,
                                           TimeMs now_ms) {
  TB_RETURN_IF_ERROR(requireTransaction(*db_, "outbox enqueue"));
  {
    TB_ASSIGN_OR_RETURN(Statement newest,
                        db_->prepare("SELECT seq, kind, attempts FROM outbox WHERE target = ?1 "
                                     "ORDER BY seq DESC LIMIT 1"));
    newest.bind(1, target);
    TB_ASSIGN_OR_RETURN(bool has_row, newest.step());
    // The newest message of the same kind is replaced even if a batch carrying it already went
    // out: the parent may then have applied the older payload under this seq and will drop the
    // newer one as a duplicate. That is the point of a coalescing kind (heartbeats): a later
    // message supersedes an earlier one, so at most one waits however long the parent is away.
    if (has_row && newest.columnInt64(1) == kind) {
      int64_t seq = newest.columnInt64(0);
      TB_ASSIGN_OR_RETURN(Statement update,
                          db_->prepare("UPDATE outbox SET payload = ?1, created_ms = ?2 WHERE seq = ?3"));
      update.bind(1, payload).bind(2, now_ms).bind(3, seq);
      TB_RETURN_IF_ERROR(update.run().withContext("replacing outbox message " + std::to_string(seq)));
      return static_cast<uint64_t>(seq);
    }
  }
  return enqueue(kind, target, payload, now_ms);
}

Result<std::vector<OutboxMessage>> Outbox::peek(size_t max_count, size_t max_bytes, const std::string& target) {
  if (max_count == 0) return Status(ErrorCode::kInvalidArgument, "outbox peek with max_count 0 can return nothing");
  TB_ASSIGN_OR_RETURN(Statement stmt,
                      db_->prepare("SELECT seq, kind, target, payload, created_ms, attempts FROM outbox "
                                   "WHERE ?2 = '' OR target = ?2 ORDER BY seq LIMIT ?1"));
  stmt.bind(1, clampToInt64(max_count)).bind(2, target);
  std::vector<OutboxMessage> out;
  size_t bytes = 0;
  while (true) {
    TB_ASSIGN_OR_RETURN(bool has_row, stmt.step());
    if (!has_row) break;
    OutboxMessage m;
    m.seq = static_cast<uint64_t>(stmt.columnInt64(0));
    m.kind = static_cast<uint16_t>(stmt.columnInt64(1));
    m.target = stmt.columnText(2);
    m.payload = stmt.columnBlob(3);
    m.created_ms = stmt.columnInt64(4);
    m.attempts = static_cast<uint32_t>(stmt.columnInt64(5));
    // The first message always goes, whatever its size, or one large message would block the
    // queue forever; after that, stop before the byte budget is exceeded.
    if (!out.empty() && bytes + m.payload.size() > max_bytes) break;
    bytes += m.payload.size();
    out.push_back(std::move(m));
  }
  return out;
}

Status Outbox::markAttempted(uint64_t up_to_seq, const std::string& target) {
  TB_ASSIGN_OR_RETURN(Statement stmt, db_->prepare("UPDATE outbox SET attempts = attempts + 1 "
                                                   "WHERE seq <= ?1 AND (?2 = '' OR target = ?2)"));
  stmt.bind(1, clampToInt64(up_to_seq)).bind(2, target);
  return stmt.run().withContext("counting a send attempt for outbox messages up to " + std::to_string(up_to_seq));
}

Status Outbox::remove(const std::vector<uint64_t>& seqs) {
  if (seqs.empty()) return Status::ok();
  // One transaction for the whole batch (all or nothing, and one sync instead of one per row),
  // unless the caller already has one open.
  std::optional<Transaction> own;
  if (!db_->inTransaction()) {
    auto tx = db_->begin();
    if (!tx.isOk()) return tx.status().withContext("removing acknowledged outbox messages");
    own.emplace(std::move(tx).value());
  }
  {
    TB_ASSIGN_OR_RETURN(Statement stmt, db_->prepare("DELETE FROM outbox WHERE seq = ?1"));
    for (uint64_t seq : seqs) {
      stmt.reset();
      stmt.bind(1, clampToInt64(seq));
      TB_RETURN_IF_ERROR(stmt.run().withContext("removing outbox message " + std::to_string(seq)));
    }
  }
  if (own) return own->commit().withContext("removing acknowledged outbox messages");
  return Status::ok();
}

Result<std::vector<std::string>> Outbox::pendingTargets() {
  TB_ASSIGN_OR_RETURN(Statement stmt, db_->prepare("SELECT DISTINCT target FROM outbox ORDER BY target"));
  std::vector<std::string> out;
  while (true) {
    TB_ASSIGN_OR_RETURN(bool has_row, stmt.step());
    if (!has_row) break;
    out.push_back(stmt.columnText(0));
  }
  return out;
}

Result<bool> Outbox::pending(uint64_t seq) {
  TB_ASSIGN_OR_RETURN(Statement stmt, db_->prepare("SELECT 1 FROM outbox WHERE seq = ?1"));
  stmt.bind(1, clampToInt64(seq));
  return stmt.step();
}

Result<uint64_t> Outbox::depth() {
  TB_ASSIGN_OR_RETURN(Statement stmt, db_->prepare("SELECT COUNT(*) FROM outbox"));
  TB_ASSIGN_OR_RETURN(bool has_row, stmt.step());
  if (!has_row) return uint64_t{0};
  return static_cast<uint64_t>(stmt.columnInt64(0));
}

}  // namespace tongban
