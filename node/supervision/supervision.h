// Electronic supervision (电子监察): figures of the node's own cases per (CST day, item,
// department), rolled up the tree as versioned cumulative snapshots, and the subtree's
// summary, warnings and monthly scores. Definitions and rules: docs/supervision.md.
//
// Figures are a pure function of the node's own tables (cases, case_steps, complaints): every
// counter belongs to the day of the step that causes it, so a day's figures change only when a
// step of that day (or, for open overdue cases, the conclusion of a case that went red that
// day) is recorded. SQLite triggers mark such days dirty in the step's own transaction; a timer
// recomputes each dirty day and enqueues one snapshot per day with the next version, in one
// transaction with clearing the marks. Ancestors keep the highest version per (origin, day), so
// re-sends, reordering and partitions converge without double counting.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "federation/division/division.h"
#include "federation/store/database.h"
#include "federation/sync/wire.h"
#include "node/calendar/calendar.h"
#include "node/cases/cases.h"

namespace tongban {

// Message kind of a SupervisionSnapshot (durable, up, relayed to every ancestor).
inline constexpr MessageKind kSupervisionSnapshotKind = 103;

// The counters of one (origin, day, item, department), or any sum of them.
struct Figures {
  uint64_t accepted = 0, refused = 0, concluded = 0, on_time = 0, early = 0, overdue = 0, immediate = 0,
           forwarded_up = 0, supplements = 0, yellow = 0, red = 0, satisfied = 0, basically_satisfied = 0,
           unsatisfied = 0, complaints = 0, working_days_total = 0;

  Figures& operator+=(const Figures& o);
  friend bool operator==(const Figures&, const Figures&) = default;

  // Derived rates in 0..1; nullopt when the denominator is 0 (nothing to rate).
  std::optional<double> onTimeRate() const;        // on_time / concluded          (按时办结率)
  std::optional<double> earlyRate() const;         // early / concluded            (提前办结率)
  std::optional<double> onSiteRate() const;        // immediate / accepted         (现场办结率)
  std::optional<double> satisfactionRate() const;  // (satisfied + basically) / evaluations (满意率)
  std::optional<double> avgWorkingDays() const;    // working_days_total / concluded
};

// Every counter by name, in wire order: for JSON, comparisons and reports.
struct FigureField {
  const char* name;
  uint64_t Figures::*member;
};
const std::vector<FigureField>& figureFields();

struct FigureRow {
  std::string item_code;   // "" for a complaint against a unit
  std::string department;
  Figures figures;
};

struct SupervisionSnapshotInfo {
  std::string origin;
  std::string origin_name;
  std::string day;         // YYYY-MM-DD (CST)
  uint64_t version = 0;
  std::vector<FigureRow> rows;
};
Bytes encodeSupervisionSnapshot(const SupervisionSnapshotInfo& snapshot);
Result<SupervisionSnapshotInfo> decodeSupervisionSnapshot(const Bytes& bytes);

struct SupervisionSettings {
  // How often dirty days are recomputed and sent up.
  DurationMs snapshot_interval_ms = 30 * 1000;
  // A node with nothing new still sends today's snapshot this often (when its outbox is empty),
  // so ancestors can tell a quiet descendant from a silent one.
  DurationMs keepalive_ms = 10 * 60 * 1000;
  // A descendant not heard from for longer than this is reported stale.
  DurationMs stale_after_ms = 30 * 60 * 1000;
  // Bounds one timer run's work (a node back after months recomputes in several runs).
  size_t max_days_per_run = 31;
};

struct ChildFigures {
  std::string division, name, level;
  Figures totals;
  uint64_t open_yellow = 0, open_red = 0;
  bool stale = false;
  TimeMs last_heard_ms = 0;   // 0: never
};

struct DayFigures {
  std::string day;
  Figures figures;
};

struct StaleDivision {
  std::string division;
  TimeMs last_heard_ms = 0;
};

struct SupervisionSummary {
  std::string division, name, level, from, to;
  Figures totals;
  std::vector<ChildFigures> children;   // direct children of `division`, by code
  std::vector<FigureRow> by_item;       // by (item, department)
  std::vector<DayFigures> daily;        // days with any figure, ascending
  std::vector<StaleDivision> stale;     // descendants of `division` not heard from lately
};

struct SupervisionWarning {
  std::string case_number, origin, item_code, department, light;  // light: yellow | red
  TimeMs deadline_ms = 0;
  TimeMs since_ms = 0;        // when the light was recorded
};

struct UnitScore {
  std::string unit, kind, name;   // kind: division | department
  double score = 0;
  Figures figures;
};

struct MonthlyScores {
  std::string month;          // YYYY-MM
  std::string formula;
  std::vector<UnitScore> ranking;   // best first
};

// The documented score formula (docs/supervision.md), exposed for tests and the console.
extern const char* const kScoreFormula;
double scoreOf(const Figures& f);

class SupervisionService {
 public:
  using EnqueueUp = std::function<Result<uint64_t>(MessageKind kind, const Bytes& payload)>;
  // The node's direct children as the downlink knows them (name, last seen).
  using ChildrenSource = std::function<Result<std::vector<ChildStatusMsg>>()>;
  // How many messages wait in the node's outbox: the keepalive is sent only when none do (a
  // parent that is away hears from us when they arrive; piling keepalives up would also break
  // the coalescing of heartbeats).
  using OutboxDepth = std::function<Result<uint64_t>()>;

  // Creates the tables and the triggers on the cases component's tables (so CaseService must
  // have been opened on `db` first). `enqueue_up` is null for the city.
  static Result<SupervisionService> open(Database& db, const DivisionCode& self, std::string self_name,
                                         const WorkingCalendar& calendar, EnqueueUp enqueue_up,
                                         ChildrenSource children, OutboxDepth outbox_depth,
                                         SupervisionSettings settings = {});

  // This node's own figures computed now from its own tables, by (item, department) for one day,
  // or summed over [from, to].
  Result<std::vector<FigureRow>> ownFigures(CivilDate day);
  Result<Figures> ownTotals(CivilDate from, CivilDate to);

  // The timer's work: recompute the dirty days (and today's, when the keepalive is due), store
  // them as this node's own snapshot and enqueue them upward. Returns the snapshots made.
  Result<int> publish(TimeMs now);
  // Days marked dirty and not yet published.
  Result<uint64_t> dirtyDays();

  // Applies a snapshot relayed by `signer` (a direct child) inside the caller's transaction:
  // kept and relayed upward if newer than what we hold for (origin, day), ignored otherwise.
  Status applySnapshot(const DivisionCode& signer, const Bytes& payload, TimeMs now);
  // The version held for (origin, day); 0 if none.
  Result<uint64_t> versionOf(const std::string& origin, const std::string& day);

  // kNotFound for a division outside this node's subtree.
  Result<SupervisionSummary> summary(const DivisionCode& division, CivilDate from, CivilDate to, TimeMs now);
  Result<std::vector<SupervisionWarning>> warnings(const DivisionCode& division);
  Result<MonthlyScores> scores(const DivisionCode& division, int year, int month, TimeMs now);

  const DivisionCode& self() const;
  const SupervisionSettings& settings() const;

  struct Impl;
 private:
  explicit SupervisionService(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<Impl> impl_;
};

}  // namespace tongban
