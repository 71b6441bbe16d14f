// Receipts: which (origin, seq) a node has applied. The applier checks and records them in the
// same transaction as the message's effect, and acknowledges only after commit, so a message
// delivered twice is applied once (at-least-once delivery, exactly-once effect).
#pragma once

#include <optional>
#include <string>

#include "federation/store/database.h"
#include "federation/transport/clock.h"
#include "federation/trust/envelope.h"

namespace tongban {

class Receipts : public ReplayGuard {
 public:
  // Creates its tables (component "receipts") if needed.
  static Result<Receipts> open(Database& db);

  // kFresh: never applied and newer than the last applied from that origin.
  // kReplay: applied before. kRollback: older than the last applied, never seen.
  Result<Verdict> check(const std::string& origin, uint64_t seq) override;

  // Records an applied message; must be inside the applying transaction.
  Status record(const std::string& origin, uint64_t seq, TimeMs now_ms);

  Result<uint64_t> lastSeq(const std::string& origin);

  // A message that verified but that this node refused for good (its applier said no). Kept so
  // that a re-delivery — the sender never got the answer, its ack was lost — is answered with the
  // same refusal, instead of ROLLBACK ("older than the last accepted, never seen"), which would
  // wrongly tell the sender it lost state. Must be inside a transaction of its own (the applying
  // one rolled back). Nothing is recorded for what did not verify: its claims are not authentic.
  struct Refusal {
    std::string outcome;  // the error code's name, as the ack said it
    std::string message;
  };
  Status recordRefusal(const std::string& origin, uint64_t seq, const Refusal& refusal, TimeMs now_ms);
  Result<std::optional<Refusal>> refusal(const std::string& origin, uint64_t seq);

 private:
  explicit Receipts(Database& db) : db_(&db) {}
  Database* db_;
};

}  // namespace tongban
