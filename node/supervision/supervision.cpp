// Figures of the node's own cases, the snapshot timer and the snapshot applier. Queries over
// the stored snapshots live in supervision_queries.cpp.
#include "node/supervision/supervision.h"

#include <algorithm>
#include <set>

#include "federation/util/capnp_io.h"
#include "node/supervision/supervision_internal.h"
#include "schema/node.capnp.h"

namespace tongban {

namespace {

// The CST civil date of a millisecond column, in SQL: the same as CivilDate::fromTimeMs.
#define TB_CST_DAY(col) "strftime('%Y-%m-%d', (" col " + 28800000) / 1000, 'unixepoch')"

const std::vector<Migration> kSupervisionMigrations = {
    {1,
     // Days whose own figures changed since they were last sent up. Triggers on the cases
     // component's tables mark them in the step's own transaction, so no change is ever missed.
     "CREATE TABLE supervision_dirty (day TEXT PRIMARY KEY);"
     // The latest snapshot held per (origin, day): this node's own (origin = self) and every
     // descendant's. Rows are the figures by (item, department).
     "CREATE TABLE supervision_snapshots (origin TEXT NOT NULL, day TEXT NOT NULL, version INTEGER NOT NULL,"
     "  name TEXT NOT NULL, received_ms INTEGER NOT NULL, PRIMARY KEY (origin, day));"
     "CREATE TABLE supervision_rows (origin TEXT NOT NULL, day TEXT NOT NULL, item_code TEXT NOT NULL,"
     "  department TEXT NOT NULL, accepted INTEGER NOT NULL, refused INTEGER NOT NULL, concluded INTEGER NOT NULL,"
     "  on_time INTEGER NOT NULL, early INTEGER NOT NULL, overdue INTEGER NOT NULL, immediate INTEGER NOT NULL,"
     "  forwarded_up INTEGER NOT NULL, supplements INTEGER NOT NULL, yellow INTEGER NOT NULL, red INTEGER NOT NULL,"
     "  satisfied INTEGER NOT NULL, basically_satisfied INTEGER NOT NULL, unsatisfied INTEGER NOT NULL,"
     "  complaints INTEGER NOT NULL, working_days_total INTEGER NOT NULL,"
     "  PRIMARY KEY (origin, day, item_code, department));"
     "CREATE INDEX supervision_rows_by_day ON supervision_rows (day);"
     "CREATE TABLE supervision_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
     // Recomputing a day reads that day's steps and complaints.
     "CREATE INDEX supervision_steps_by_time ON case_steps (at_ms);"
     "CREATE INDEX supervision_complaints_by_time ON complaints (at_ms);"
     // A step changes the figures of its own day; a conclusion also moves a case that went red
     // out of the red day's open-overdue count.
     "CREATE TRIGGER supervision_step_dirty AFTER INSERT ON case_steps BEGIN"
     "  INSERT OR IGNORE INTO supervision_dirty (day) VALUES (" TB_CST_DAY("NEW.at_ms") ");"
     "  INSERT OR IGNORE INTO supervision_dirty (day) SELECT " TB_CST_DAY("at_ms") " FROM case_steps"
     "    WHERE NEW.step = 'conclude' AND number = NEW.number AND step = 'red';"
     "END;"
     "CREATE TRIGGER supervision_complaint_dirty AFTER INSERT ON complaints BEGIN"
     "  INSERT OR IGNORE INTO supervision_dirty (day) VALUES (" TB_CST_DAY("NEW.at_ms") ");"
     "END;"
     // A node upgraded with cases already on file sends all of them once.
     "INSERT OR IGNORE INTO supervision_dirty (day) SELECT DISTINCT " TB_CST_DAY("at_ms") " FROM case_steps;"
     "INSERT OR IGNORE INTO supervision_dirty (day) SELECT DISTINCT " TB_CST_DAY("at_ms") " FROM complaints;"},
};

// One snapshot stays far below the 64 KiB case-event size and the envelope limit: a node has
// at most a few hundred (item, department) pairs.
constexpr size_t kMaxSnapshotBytes = 128 * 1024;
constexpr size_t kMaxSnapshotRows = 2048;

}  // namespace

// ---- Figures ------------------------------------------------------------------------------

Figures& Figures::operator+=(const Figures& o) {
  for (const auto& f : figureFields()) this->*f.member += o.*f.member;
  return *this;
}

namespace {
std::optional<double> ratio(uint64_t num, uint64_t den) {
  if (den == 0) return std::nullopt;
  return static_cast<double>(num) / static_cast<double>(den);
}
}  // namespace

std::optional<double> Figures::onTimeRate() const { return ratio(on_time, concluded); }
std::optional<double> Figures::earlyRate() const { return ratio(early, concluded); }
std::optional<double> Figures::onSiteRate() const { return ratio(immediate, accepted); }
std::optional<double> Figures::satisfactionRate() const {
  return ratio(satisfied + basically_satisfied, satisfied + basically_satisfied + unsatisfied);
}
std::optional<double> Figures::avgWorkingDays() const { return ratio(working_days_total, concluded); }

const std::vector<FigureField>& figureFields() {
  static const std::vector<FigureField> kFields = {
      {"accepted", &Figures::accepted},
      {"refused", &Figures::refused},
      {"concluded", &Figures::concluded},
      {"on_time", &Figures::on_time},
      {"early", &Figures::early},
      {"overdue", &Figures::overdue},
      {"immediate", &Figures::immediate},
      {"forwarded_up", &Figures::forwarded_up},
      {"supplements", &Figures::supplements},
      {"yellow", &Figures::yellow},
      {"red", &Figures::red},
      {"satisfied", &Figures::satisfied},
      {"basically_satisfied", &Figures::basically_satisfied},
      {"unsatisfied", &Figures::unsatisfied},
      {"complaints", &Figures::complaints},
      {"working_days_total", &Figures::working_days_total},
  };
  return kFields;
}

// ---- Wire format --------------------------------------------------------------------------

Bytes encodeSupervisionSnapshot(const SupervisionSnapshotInfo& s) {
  capnp::MallocMessageBuilder b;
  auto w = b.initRoot<wire::SupervisionSnapshot>();
  w.setOrigin(s.origin);
  w.setOriginName(s.origin_name);
  w.setDay(s.day);
  w.setVersion(s.version);
  auto rows = w.initRows(static_cast<unsigned>(s.rows.size()));
  for (size_t i = 0; i < s.rows.size(); ++i) {
    const Figures& f = s.rows[i].figures;
    auto r = rows[static_cast<unsigned>(i)];
    r.setItemCode(s.rows[i].item_code);
    r.setDepartment(s.rows[i].department);
    r.setAccepted(f.accepted);
    r.setRefused(f.refused);
    r.setConcluded(f.concluded);
    r.setOnTime(f.on_time);
    r.setEarly(f.early);
    r.setOverdue(f.overdue);
    r.setImmediate(f.immediate);
    r.setForwardedUp(f.forwarded_up);
    r.setSupplements(f.supplements);
    r.setYellow(f.yellow);
    r.setRed(f.red);
    r.setSatisfied(f.satisfied);
    r.setBasicallySatisfied(f.basically_satisfied);
    r.setUnsatisfied(f.unsatisfied);
    r.setComplaints(f.complaints);
    r.setWorkingDaysTotal(f.working_days_total);
  }
  return capnp_io::flatBytes(b);
}

Result<SupervisionSnapshotInfo> decodeSupervisionSnapshot(const Bytes& bytes) {
  return capnp_io::read<wire::SupervisionSnapshot>(
      bytes, "supervision snapshot", kMaxSnapshotBytes,
      [](wire::SupervisionSnapshot::Reader w) -> Result<SupervisionSnapshotInfo> {
        using capnp_io::text;
        SupervisionSnapshotInfo s;
        s.origin = text(w.getOrigin());
        s.origin_name = text(w.getOriginName());
        s.day = text(w.getDay());
        s.version = w.getVersion();
        if (!DivisionCode::parse(s.origin).isOk() || !CivilDate::parse(s.day).isOk() || s.version == 0) {
          return Status(ErrorCode::kMalformed, "supervision snapshot lacks a valid origin, day or version");
        }
        if (w.getRows().size() > kMaxSnapshotRows) {
          return Status(ErrorCode::kMalformed, "supervision snapshot has more than 2048 rows");
        }
        for (auto r : w.getRows()) {
          FigureRow row;
          row.item_code = text(r.getItemCode());
          row.department = text(r.getDepartment());
          Figures& f = row.figures;
          f.accepted = r.getAccepted();
          f.refused = r.getRefused();
          f.concluded = r.getConcluded();
          f.on_time = r.getOnTime();
          f.early = r.getEarly();
          f.overdue = r.getOverdue();
          f.immediate = r.getImmediate();
          f.forwarded_up = r.getForwardedUp();
          f.supplements = r.getSupplements();
          f.yellow = r.getYellow();
          f.red = r.getRed();
          f.satisfied = r.getSatisfied();
          f.basically_satisfied = r.getBasicallySatisfied();
          f.unsatisfied = r.getUnsatisfied();
          f.complaints = r.getComplaints();
          f.working_days_total = r.getWorkingDaysTotal();
          s.rows.push_back(std::move(row));
        }
        return s;
      });
}

// ---- Own figures --------------------------------------------------------------------------

// Every counter of the own cases whose causing step lies in [lo, hi), by (item, department).
Result<std::map<std::pair<std::string, std::string>, Figures>> SupervisionService::Impl::computeOwn(TimeMs lo,
                                                                                                    TimeMs hi) {
  std::map<std::pair<std::string, std::string>, Figures> out;
  TB_ASSIGN_OR_RETURN(auto steps, db->prepare(
      "SELECT s.step, s.detail, c.item_code, c.department, c.kind, c.decided_at, c.accepted_ms, c.deadline_ms,"
      " c.concluded_ms, c.state FROM case_steps s JOIN cases c ON c.number = s.number"
      " WHERE s.at_ms >= ?1 AND s.at_ms < ?2"));
  steps.bind(1, lo).bind(2, hi);
  while (true) {
    TB_ASSIGN_OR_RETURN(bool row, steps.step());
    if (!row) break;
    const std::string step = steps.columnText(0);
    Figures& f = out[{steps.columnText(2), steps.columnText(3)}];
    const std::string kind = steps.columnText(4);
    const TimeMs accepted_ms = steps.columnInt64(6);
    const TimeMs deadline_ms = steps.columnInt64(7);
    const TimeMs concluded_ms = steps.columnInt64(8);
    const std::string state = steps.columnText(9);
    if (step == "accept") {
      ++f.accepted;
      // Accepted at this window, decided by a higher level (a smaller level number).
      auto decide = parseLevel(steps.columnText(5));
      if (decide && static_cast<int>(*decide) < static_cast<int>(self.level())) ++f.forwarded_up;
    } else if (step == "refuse") {
      ++f.refused;
    } else if (step == "conclude") {
      ++f.concluded;
      // deadline_ms is the exclusive end of the last allowed day (calendar.h).
      if (concluded_ms < deadline_ms) {
        ++f.on_time;
        if (CivilDate::fromTimeMs(concluded_ms) < CivilDate::fromTimeMs(deadline_ms - 1)) ++f.early;
      } else {
        ++f.overdue;
      }
      if (kind == "immediate" && concluded_ms == accepted_ms) ++f.immediate;
      const int days = calendar->workingDaysBetween(CivilDate::fromTimeMs(accepted_ms), CivilDate::fromTimeMs(concluded_ms));
      f.working_days_total += static_cast<uint64_t>(std::max(days, 0));
    } else if (step == "supplement") {
      ++f.supplements;
    } else if (step == "yellow") {
      ++f.yellow;
    } else if (step == "red") {
      ++f.red;
      // Open and past its limit: counted on the day it went red until it concludes (then it
      // counts as overdue on its conclusion day instead).
      if (state != "concluded") ++f.overdue;
    } else if (step == "evaluate") {
      const std::string grade = steps.columnText(1);
      if (grade == "satisfied") ++f.satisfied;
      if (grade == "basically_satisfied") ++f.basically_satisfied;
      if (grade == "unsatisfied") ++f.unsatisfied;
    }
  }
  // Complaints come from their own table: it also holds those against a unit (no case).
  TB_ASSIGN_OR_RETURN(auto complaints, db->prepare(
      "SELECT COALESCE(c.item_code, ''), p.department FROM complaints p LEFT JOIN cases c"
      " ON p.number != '' AND c.number = p.number WHERE p.at_ms >= ?1 AND p.at_ms < ?2"));
  complaints.bind(1, lo).bind(2, hi);
  while (true) {
    TB_ASSIGN_OR_RETURN(bool row, complaints.step());
    if (!row) break;
    ++out[{complaints.columnText(0), complaints.columnText(1)}].complaints;
  }
  return out;
}

Result<std::vector<FigureRow>> SupervisionService::ownFigures(CivilDate day) {
  TB_ASSIGN_OR_RETURN(auto by_key, impl_->computeOwn(startOfDayMs(day), endOfDayMs(day)));
  std::vector<FigureRow> rows;
  for (auto& [key, f] : by_key) rows.push_back({key.first, key.second, f});
  return rows;
}

Result<Figures> SupervisionService::ownTotals(CivilDate from, CivilDate to) {
  TB_ASSIGN_OR_RETURN(auto by_key, impl_->computeOwn(startOfDayMs(from), endOfDayMs(to)));
  Figures total;
  for (auto& [key, f] : by_key) total += f;
  return total;
}

// ---- Snapshots ----------------------------------------------------------------------------

Result<uint64_t> SupervisionService::Impl::version(const std::string& origin, const std::string& day) {
  TB_ASSIGN_OR_RETURN(auto stmt, db->prepare("SELECT version FROM supervision_snapshots WHERE origin = ?1 AND day = ?2"));
  stmt.bind(1, origin).bind(2, day);
  TB_ASSIGN_OR_RETURN(bool row, stmt.step());
  return row ? static_cast<uint64_t>(stmt.columnInt64(0)) : 0;
}

Status SupervisionService::Impl::store(const SupervisionSnapshotInfo& s, TimeMs now) {
  TB_ASSIGN_OR_RETURN(auto head, db->prepare(
      "INSERT INTO supervision_snapshots (origin, day, version, name, received_ms) VALUES (?1, ?2, ?3, ?4, ?5)"
      " ON CONFLICT (origin, day) DO UPDATE SET version = excluded.version, name = excluded.name,"
      " received_ms = excluded.received_ms"));
  TB_RETURN_IF_ERROR(head.bind(1, s.origin).bind(2, s.day).bind(3, static_cast<int64_t>(s.version))
                         .bind(4, s.origin_name).bind(5, now).run());
  TB_ASSIGN_OR_RETURN(auto clear, db->prepare("DELETE FROM supervision_rows WHERE origin = ?1 AND day = ?2"));
  TB_RETURN_IF_ERROR(clear.bind(1, s.origin).bind(2, s.day).run());
  for (const auto& r : s.rows) {
    TB_ASSIGN_OR_RETURN(auto ins, db->prepare(
        "INSERT OR REPLACE INTO supervision_rows (origin, day, item_code, department, accepted, refused, concluded,"
        " on_time, early, overdue, immediate, forwarded_up, supplements, yellow, red, satisfied, basically_satisfied,"
        " unsatisfied, complaints, working_days_total)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20)"));
    ins.bind(1, s.origin).bind(2, s.day).bind(3, r.item_code).bind(4, r.department);
    int i = 5;
    for (const auto& f : figureFields()) ins.bind(i++, static_cast<int64_t>(r.figures.*f.member));
    TB_RETURN_IF_ERROR(ins.run());
  }
  return Status::ok();
}

Result<uint64_t> SupervisionService::dirtyDays() {
  TB_ASSIGN_OR_RETURN(auto stmt, impl_->db->prepare("SELECT COUNT(*) FROM supervision_dirty"));
  TB_ASSIGN_OR_RETURN(bool row, stmt.step());
  return row ? static_cast<uint64_t>(stmt.columnInt64(0)) : 0;
}

Result<uint64_t> SupervisionService::versionOf(const std::string& origin, const std::string& day) {
  return impl_->version(origin, day);
}

Result<int> SupervisionService::publish(TimeMs now) {
  Impl& m = *impl_;
  TB_ASSIGN_OR_RETURN(auto txn, m.db->begin());
  std::set<std::string> days;
  {
    TB_ASSIGN_OR_RETURN(auto stmt, m.db->prepare("SELECT day FROM supervision_dirty ORDER BY day LIMIT ?1"));
    stmt.bind(1, static_cast<int64_t>(m.settings.max_days_per_run));
    while (true) {
      TB_ASSIGN_OR_RETURN(bool row, stmt.step());
      if (!row) break;
      days.insert(stmt.columnText(0));
    }
  }
  TB_ASSIGN_OR_RETURN(auto last, m.db->prepare("SELECT value FROM supervision_meta WHERE key = 'last_published_ms'"));
  TB_ASSIGN_OR_RETURN(bool has_last, last.step());
  const TimeMs last_published = has_last ? last.columnInt64(0) : 0;
  if (m.enqueue_up && now - last_published >= m.settings.keepalive_ms) {
    uint64_t waiting = 0;
    if (m.outbox_depth) {
      TB_ASSIGN_OR_RETURN(waiting, m.outbox_depth());
    }
    if (waiting == 0) days.insert(CivilDate::fromTimeMs(now).toString());
  }
  if (days.empty()) return 0;  // the transaction rolls back: nothing was written

  for (const auto& day : days) {
    SupervisionSnapshotInfo s;
    s.origin = m.self.str();
    s.origin_name = m.self_name;
    s.day = day;
    TB_ASSIGN_OR_RETURN(s.version, m.version(s.origin, day));
    ++s.version;
    TB_ASSIGN_OR_RETURN(s.rows, ownFigures(CivilDate::parse(day).value()));
    TB_RETURN_IF_ERROR(m.store(s, now));
    if (m.enqueue_up) TB_RETURN_IF_ERROR(m.enqueue_up(kSupervisionSnapshotKind, encodeSupervisionSnapshot(s)).status());
    TB_ASSIGN_OR_RETURN(auto clear, m.db->prepare("DELETE FROM supervision_dirty WHERE day = ?1"));
    TB_RETURN_IF_ERROR(clear.bind(1, day).run());
  }
  TB_ASSIGN_OR_RETURN(auto mark, m.db->prepare(
      "INSERT OR REPLACE INTO supervision_meta (key, value) VALUES ('last_published_ms', ?1)"));
  TB_RETURN_IF_ERROR(mark.bind(1, now).run());
  TB_RETURN_IF_ERROR(txn.commit());
  return static_cast<int>(days.size());
}

Status SupervisionService::applySnapshot(const DivisionCode& signer, const Bytes& payload, TimeMs now) {
  Impl& m = *impl_;
  TB_ASSIGN_OR_RETURN(SupervisionSnapshotInfo s, decodeSupervisionSnapshot(payload));
  auto origin = DivisionCode::parse(s.origin);
  if (!origin || !signer.covers(*origin)) {
    return Status(ErrorCode::kInvalidArgument, "supervision snapshot of " + s.origin + " relayed by " + signer.str() +
                                                   ", which does not cover it");
  }
  TB_ASSIGN_OR_RETURN(uint64_t held, m.version(s.origin, s.day));
  // Older or equal: a re-send or an overtaken snapshot. Applied (acknowledged) but changes nothing.
  if (s.version <= held) return Status::ok();
  TB_RETURN_IF_ERROR(m.store(s, now));
  if (!m.enqueue_up) return Status::ok();
  return m.enqueue_up(kSupervisionSnapshotKind, payload).status();
}

// ---- Service ------------------------------------------------------------------------------

Result<SupervisionService> SupervisionService::open(Database& db, const DivisionCode& self, std::string self_name,
                                                    const WorkingCalendar& calendar, EnqueueUp enqueue_up,
                                                    ChildrenSource children, OutboxDepth outbox_depth,
                                                    SupervisionSettings settings) {
  TB_RETURN_IF_ERROR(db.migrate("supervision", kSupervisionMigrations));
  auto impl = std::make_shared<Impl>();
  impl->db = &db;
  impl->self = self;
  impl->self_name = std::move(self_name);
  impl->calendar = &calendar;
  impl->enqueue_up = std::move(enqueue_up);
  impl->children = std::move(children);
  impl->outbox_depth = std::move(outbox_depth);
  impl->settings = settings;
  return SupervisionService(std::move(impl));
}

const DivisionCode& SupervisionService::self() const { return impl_->self; }
const SupervisionSettings& SupervisionService::settings() const { return impl_->settings; }

}  // namespace tongban
