#include "federation/store/receipts.h"

#include <limits>

namespace tongban {

namespace {

// receipts: every (origin, seq) applied, so a re-delivered message is recognised as a replay.
// cursors: the highest seq applied per origin, so a never-seen older seq is recognised as a
// rollback without keeping an ever-growing scan.
const std::vector<Migration> kReceiptsMigrations = {
    {1,
     "CREATE TABLE receipts("
     "  origin TEXT NOT NULL,"
     "  seq INTEGER NOT NULL,"
     "  applied_ms INTEGER NOT NULL,"
     "  PRIMARY KEY(origin, seq));"
     "CREATE TABLE cursors("
     "  origin TEXT PRIMARY KEY,"
     "  last_seq INTEGER NOT NULL);"},
    // refusals: every (origin, seq) that verified and was refused for good, with the answer given,
    // so a re-delivery gets the same answer. Only refused messages land here: a handful.
    {2,
     "CREATE TABLE refusals("
     "  origin TEXT NOT NULL,"
     "  seq INTEGER NOT NULL,"
     "  outcome TEXT NOT NULL,"
     "  message TEXT NOT NULL,"
     "  refused_ms INTEGER NOT NULL,"
     "  PRIMARY KEY(origin, seq));"},
};

// SQLite integers are signed 64-bit. A sequence above that range (only a hostile or broken
// sender produces one: real seqs count up from 1) would wrap negative and corrupt the cursor
// comparison, so it is refused instead of stored.
Status checkStorable(const std::string& origin, uint64_t seq) {
  if (seq <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return Status::ok();
  return Status(ErrorCode::kMalformed, "sequence number " + std::to_string(seq) + " from " + origin +
                                           " is out of range (largest accepted is 2^63-1)");
}

}  // namespace

Result<Receipts> Receipts::open(Database& db) {
  TB_RETURN_IF_ERROR(db.migrate("receipts", kReceiptsMigrations));
  return Receipts(db);
}

Result<ReplayGuard::Verdict> Receipts::check(const std::string& origin, uint64_t seq) {
  TB_RETURN_IF_ERROR(checkStorable(origin, seq));
  {
    TB_ASSIGN_OR_RETURN(Statement seen, db_->prepare("SELECT 1 FROM receipts WHERE origin = ?1 AND seq = ?2"));
    seen.bind(1, origin).bind(2, static_cast<int64_t>(seq));
    TB_ASSIGN_OR_RETURN(bool recorded, seen.step());
    if (recorded) return Verdict::kReplay;
  }
  TB_ASSIGN_OR_RETURN(Statement cursor, db_->prepare("SELECT last_seq FROM cursors WHERE origin = ?1"));
  cursor.bind(1, origin);
  TB_ASSIGN_OR_RETURN(bool has_cursor, cursor.step());
  if (has_cursor && static_cast<int64_t>(seq) <= cursor.columnInt64(0)) return Verdict::kRollback;
  return Verdict::kFresh;
}

Status Receipts::record(const std::string& origin, uint64_t seq, TimeMs now_ms) {
  if (!db_->inTransaction()) {
    return Status(ErrorCode::kFailedPrecondition,
                  "recording receipt " + origin + "#" + std::to_string(seq) +
                      " outside a transaction: it must commit together with the message's effect");
  }
  TB_RETURN_IF_ERROR(checkStorable(origin, seq));
  {
    TB_ASSIGN_OR_RETURN(Statement insert,
                        db_->prepare("INSERT INTO receipts(origin, seq, applied_ms) VALUES(?1, ?2, ?3)"));
    insert.bind(1, origin).bind(2, static_cast<int64_t>(seq)).bind(3, now_ms);
    TB_RETURN_IF_ERROR(insert.run().withContext("recording receipt " + origin + "#" + std::to_string(seq)));
  }
  TB_ASSIGN_OR_RETURN(Statement cursor, db_->prepare("INSERT INTO cursors(origin, last_seq) VALUES(?1, ?2) "
                                                     "ON CONFLICT(origin) DO UPDATE SET "
                                                     "last_seq = MAX(last_seq, excluded.last_seq)"));
  cursor.bind(1, origin).bind(2, static_cast<int64_t>(seq));
  return cursor.run().withContext("advancing the cursor of " + origin);
}

Status Receipts::recordRefusal(const std::string& origin, uint64_t seq, const Refusal& refusal, TimeMs now_ms) {
  if (!db_->inTransaction()) {
    return Status(ErrorCode::kFailedPrecondition, "recording the refusal of " + origin + "#" + std::to_string(seq) +
                                                      " outside a transaction");
  }
  TB_RETURN_IF_ERROR(checkStorable(origin, seq));
  TB_ASSIGN_OR_RETURN(Statement insert, db_->prepare(
      "INSERT OR IGNORE INTO refusals(origin, seq, outcome, message, refused_ms) VALUES(?1, ?2, ?3, ?4, ?5)"));
  insert.bind(1, origin).bind(2, static_cast<int64_t>(seq)).bind(3, refusal.outcome).bind(4, refusal.message);
  insert.bind(5, now_ms);
  return insert.run().withContext("recording the refusal of " + origin + "#" + std::to_string(seq));
}

Result<std::optional<Receipts::Refusal>> Receipts::refusal(const std::string& origin, uint64_t seq) {
  TB_RETURN_IF_ERROR(checkStorable(origin, seq));
  TB_ASSIGN_OR_RETURN(Statement stmt,
                      db_->prepare("SELECT outcome, message FROM refusals WHERE origin = ?1 AND seq = ?2"));
  stmt.bind(1, origin).bind(2, static_cast<int64_t>(seq));
  TB_ASSIGN_OR_RETURN(bool row, stmt.step());
  if (!row) return std::optional<Refusal>();
  return std::make_optional(Refusal{stmt.columnText(0), stmt.columnText(1)});
}

Result<uint64_t> Receipts::lastSeq(const std::string& origin) {
  TB_ASSIGN_OR_RETURN(Statement stmt, db_->prepare("SELECT last_seq FROM cursors WHERE origin = ?1"));
  stmt.bind(1, origin);
  TB_ASSIGN_OR_RETURN(bool has_row, stmt.step());
  if (!has_row) return uint64_t{0};
  return static_cast<uint64_t>(stmt.columnInt64(0));
}

}  // namespace tongban
