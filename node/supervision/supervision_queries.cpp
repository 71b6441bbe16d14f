// Answers for a division of the node's subtree, from the snapshots it holds (its own included):
// summary with per-child breakdown and staleness, warnings, monthly scores.
#include <algorithm>
#include <cmath>
#include <set>

#include "node/supervision/supervision_internal.h"

namespace tongban {

const char* const kScoreFormula =
    "score = 40 x on_time_rate + 30 x early_rate + 30 x satisfaction_rate - 2 x complaints - 5 x red, "
    "clamped to 0..100; a rate with nothing to rate counts in full";

double scoreOf(const Figures& f) {
  const double raw = 40.0 * f.onTimeRate().value_or(1.0) + 30.0 * f.earlyRate().value_or(1.0) +
                     30.0 * f.satisfactionRate().value_or(1.0) - 2.0 * static_cast<double>(f.complaints) -
                     5.0 * static_cast<double>(f.red);
  // One decimal: the published ranking shows tenths, and ties compare equal.
  return std::round(std::clamp(raw, 0.0, 100.0) * 10.0) / 10.0;
}

namespace {

// The direct child of `division` on the path to its strict descendant `origin`.
DivisionCode childToward(const DivisionCode& division, const DivisionCode& origin) {
  if (division.isParentOf(origin)) return origin;
  for (const auto& a : origin.ancestors()) {
    if (division.isParentOf(a)) return a;
  }
  return origin;  // not reached for a strict descendant
}

struct Origin {
  std::string name;
  TimeMs last_received_ms = 0;
};

bool isOpenLit(const std::string& state) {
  // Refused and concluded cases are closed; a case waiting for a supplement has its clock
  // paused (its light is green, cases.h), so it is no warning either.
  return state != "refused" && state != "concluded" && state != "supplement";
}

}  // namespace

namespace {

// What the node holds about the origins in a division's subtree.
struct Holdings {
  std::map<std::string, Origin> origins;                // origin code → name, last snapshot received
  std::map<std::string, ChildStatusMsg> direct;         // this node's children table
};

Result<Holdings> loadHoldings(SupervisionService::Impl& m) {
  Holdings h;
  TB_ASSIGN_OR_RETURN(auto stmt, m.db->prepare(
      "SELECT origin, MAX(name), MAX(received_ms) FROM supervision_snapshots GROUP BY origin ORDER BY origin"));
  while (true) {
    TB_ASSIGN_OR_RETURN(bool row, stmt.step());
    if (!row) break;
    h.origins[stmt.columnText(0)] = Origin{stmt.columnText(1), stmt.columnInt64(2)};
  }
  if (m.children) {
    TB_ASSIGN_OR_RETURN(auto kids, m.children());
    for (auto& k : kids) h.direct[k.division] = k;
  }
  return h;
}

// Last heard of a descendant: a direct child by its last batch or its snapshots, a deeper one
// by its own snapshots (kept fresh by the keepalive). 0: never.
TimeMs lastHeard(const Holdings& h, const std::string& code) {
  TimeMs t = 0;
  if (auto it = h.origins.find(code); it != h.origins.end()) t = it->second.last_received_ms;
  if (auto it = h.direct.find(code); it != h.direct.end()) t = std::max(t, it->second.last_seen_ms);
  return t;
}

std::string nameOf(SupervisionService::Impl& m, const Holdings& h, const DivisionCode& code) {
  if (code == m.self) return m.self_name;
  if (auto it = h.direct.find(code.str()); it != h.direct.end() && !it->second.name.empty()) return it->second.name;
  if (auto it = h.origins.find(code.str()); it != h.origins.end() && !it->second.name.empty()) return it->second.name;
  return code.str();
}

// The held rows of origins inside `division`, days in [from, to].
struct HeldRow {
  DivisionCode origin;
  std::string day;
  FigureRow row;
};

Result<std::vector<HeldRow>> loadRows(SupervisionService::Impl& m, const DivisionCode& division,
                                      const std::string& from, const std::string& to) {
  std::vector<HeldRow> out;
  TB_ASSIGN_OR_RETURN(auto stmt, m.db->prepare(
      "SELECT origin, day, item_code, department, accepted, refused, concluded, on_time, early, overdue, immediate,"
      " forwarded_up, supplements, yellow, red, satisfied, basically_satisfied, unsatisfied, complaints,"
      " working_days_total FROM supervision_rows WHERE day >= ?1 AND day <= ?2"
      " ORDER BY origin, day, item_code, department"));
  stmt.bind(1, from).bind(2, to);
  std::string last_origin;
  bool last_inside = false;
  while (true) {
    TB_ASSIGN_OR_RETURN(bool row, stmt.step());
    if (!row) break;
    const std::string origin_text = stmt.columnText(0);
    if (origin_text != last_origin) {
      last_origin = origin_text;
      auto parsed = DivisionCode::parse(origin_text);
      last_inside = parsed && division.covers(*parsed);
    }
    if (!last_inside) continue;
    HeldRow r{DivisionCode::parse(origin_text).value(), stmt.columnText(1), {stmt.columnText(2), stmt.columnText(3), {}}};
    int i = 4;
    for (const auto& f : figureFields()) r.row.figures.*f.member = static_cast<uint64_t>(stmt.columnInt64(i++));
    out.push_back(std::move(r));
  }
  return out;
}

Status checkInside(const SupervisionService::Impl& m, const DivisionCode& division) {
  if (!m.self.covers(division)) {
    return Status(ErrorCode::kNotFound, "division " + division.str() + " is not in the subtree of " + m.self.str() +
                                            "; ask a node above it");
  }
  return Status::ok();
}

// The direct children of `division` this node knows of: from the children table (if it is
// this node) and from every origin held below it.
std::set<std::string> knownChildren(const SupervisionService::Impl& m, const Holdings& h, const DivisionCode& division) {
  std::set<std::string> out;
  if (division == m.self) {
    for (const auto& [code, _] : h.direct) out.insert(code);
  }
  for (const auto& [code, _] : h.origins) {
    auto c = DivisionCode::parse(code);
    if (c && division.isAncestorOf(*c)) out.insert(childToward(division, *c).str());
  }
  return out;
}

}  // namespace

Result<SupervisionSummary> SupervisionService::summary(const DivisionCode& division, CivilDate from, CivilDate to,
                                                       TimeMs now) {
  Impl& m = *impl_;
  TB_RETURN_IF_ERROR(checkInside(m, division));
  if (to < from) return Status(ErrorCode::kInvalidArgument, "'to' " + to.toString() + " is before 'from' " + from.toString());
  TB_ASSIGN_OR_RETURN(Holdings h, loadHoldings(m));
  SupervisionSummary s;
  s.division = division.str();
  s.name = nameOf(m, h, division);
  s.level = levelName(division.level());
  s.from = from.toString();
  s.to = to.toString();

  std::map<std::string, ChildFigures> children;
  auto child = [&](const std::string& code) -> ChildFigures& {
    auto [it, added] = children.try_emplace(code);
    if (added) {
      ChildFigures& c = it->second;
      auto parsed = DivisionCode::parse(code).value();
      c.division = code;
      c.name = nameOf(m, h, parsed);
      c.level = levelName(parsed.level());
      c.last_heard_ms = lastHeard(h, code);
      c.stale = c.last_heard_ms == 0 || now - c.last_heard_ms > m.settings.stale_after_ms;
    }
    return it->second;
  };
  for (const auto& code : knownChildren(m, h, division)) child(code);
  std::map<std::pair<std::string, std::string>, Figures> by_item;
  std::map<std::string, Figures> daily;
  TB_ASSIGN_OR_RETURN(auto rows, loadRows(m, division, s.from, s.to));
  for (const auto& r : rows) {
    s.totals += r.row.figures;
    by_item[{r.row.item_code, r.row.department}] += r.row.figures;
    daily[r.day] += r.row.figures;
    if (r.origin != division) child(childToward(division, r.origin).str()).totals += r.row.figures;
  }
  TB_ASSIGN_OR_RETURN(auto lit, warnings(division));
  for (const auto& w : lit) {
    auto origin = DivisionCode::parse(w.origin);
    if (!origin || *origin == division) continue;
    auto& c = child(childToward(division, *origin).str());
    ++(w.light == "red" ? c.open_red : c.open_yellow);
  }
  for (auto& [code, c] : children) s.children.push_back(std::move(c));
  for (auto& [key, f] : by_item) s.by_item.push_back({key.first, key.second, f});
  for (auto& [day, f] : daily) s.daily.push_back({day, f});
  // Every descendant held, plus this node's direct children (known even before any snapshot).
  std::set<std::string> descendants;
  for (const auto& [code, _] : h.origins) descendants.insert(code);
  for (const auto& [code, _] : h.direct) descendants.insert(code);
  for (const auto& code : descendants) {
    auto parsed = DivisionCode::parse(code);
    if (!parsed || !division.isAncestorOf(*parsed)) continue;
    const TimeMs heard = lastHeard(h, code);
    if (heard == 0 || now - heard > m.settings.stale_after_ms) s.stale.push_back({code, heard});
  }
  return s;
}

Result<std::vector<SupervisionWarning>> SupervisionService::warnings(const DivisionCode& division) {
  Impl& m = *impl_;
  TB_RETURN_IF_ERROR(checkInside(m, division));
  std::vector<SupervisionWarning> out;
  // Own cases: the light transitions the scan recorded, for cases still open.
  if (division == m.self) {
    TB_ASSIGN_OR_RETURN(auto own, m.db->prepare(
        "SELECT c.number, c.item_code, c.department, c.deadline_ms, c.state, l.light, l.at_ms"
        " FROM cases c JOIN case_lights l ON l.number = c.number ORDER BY c.number, l.light"));
    std::map<std::string, SupervisionWarning> by_case;
    while (true) {
      TB_ASSIGN_OR_RETURN(bool row, own.step());
      if (!row) break;
      if (!isOpenLit(own.columnText(4))) continue;
      auto& w = by_case[own.columnText(0)];
      const std::string light = own.columnText(5);
      if (w.light == "red" && light != "red") continue;
      w = {own.columnText(0), m.self.str(), own.columnText(1), own.columnText(2), light, own.columnInt64(3),
           own.columnInt64(6)};
    }
    for (auto& [_, w] : by_case) out.push_back(std::move(w));
  }
  // The subtree's cases, from the events relayed up: the latest event says whether the case is
  // still open, the light events say which light and since when.
  TB_ASSIGN_OR_RETURN(auto exists, m.db->prepare(
      "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'subtree_case_events'"));
  TB_ASSIGN_OR_RETURN(bool has_row, exists.step());
  if (has_row && exists.columnInt64(0) > 0) {
    TB_ASSIGN_OR_RETURN(auto ev, m.db->prepare(
        "SELECT e.origin, e.case_number, e.item_code, e.department, e.deadline_ms, e.state, e.step, e.at_ms"
        " FROM subtree_case_events e JOIN (SELECT DISTINCT origin, case_number FROM subtree_case_events"
        "   WHERE step IN ('yellow', 'red')) lit ON lit.origin = e.origin AND lit.case_number = e.case_number"
        " ORDER BY e.origin, e.case_number, e.step_index, e.step"));
    std::string key;
    SupervisionWarning w;
    std::string latest_state;
    auto flush = [&] {
      if (!key.empty() && isOpenLit(latest_state) && !w.light.empty()) out.push_back(w);
    };
    while (true) {
      TB_ASSIGN_OR_RETURN(bool row, ev.step());
      if (!row) break;
      const std::string origin = ev.columnText(0);
      const std::string number = ev.columnText(1);
      if (origin + "/" + number != key) {
        flush();
        key = origin + "/" + number;
        w = SupervisionWarning{number, origin, ev.columnText(2), ev.columnText(3), "", 0, 0};
        auto parsed = DivisionCode::parse(origin);
        if (!parsed || !division.covers(*parsed)) key = "-";  // outside the drill-down: skip its events
      }
      if (key == "-") continue;
      latest_state = ev.columnText(5);
      w.deadline_ms = ev.columnInt64(4);
      const std::string step = ev.columnText(6);
      if (step == "red" || (step == "yellow" && w.light != "red")) {
        w.light = step;
        w.since_ms = ev.columnInt64(7);
      }
    }
    if (key != "-") flush();
  }
  std::sort(out.begin(), out.end(), [](const SupervisionWarning& a, const SupervisionWarning& b) {
    if (a.light != b.light) return a.light == "red";
    if (a.deadline_ms != b.deadline_ms) return a.deadline_ms < b.deadline_ms;
    return std::tie(a.origin, a.case_number) < std::tie(b.origin, b.case_number);
  });
  return out;
}

Result<MonthlyScores> SupervisionService::scores(const DivisionCode& division, int year, int month, TimeMs now) {
  Impl& m = *impl_;
  TB_RETURN_IF_ERROR(checkInside(m, division));
  CivilDate first{year, month, 1};
  if (!first.isValid()) return Status(ErrorCode::kInvalidArgument, "month must be YYYY-MM");
  CivilDate last = first;
  while (last.next().month == month) last = last.next();
  TB_ASSIGN_OR_RETURN(Holdings h, loadHoldings(m));
  TB_ASSIGN_OR_RETURN(auto rows, loadRows(m, division, first.toString(), last.toString()));
  std::map<std::string, Figures> by_child, by_department;
  for (const auto& r : rows) {
    if (r.origin != division) by_child[childToward(division, r.origin).str()] += r.row.figures;
    by_department[r.row.department] += r.row.figures;
  }
  MonthlyScores out;
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04d-%02d", year, month);
  out.month = buf;
  out.formula = kScoreFormula;
  // Only units with activity in the month are ranked: a unit with nothing to rate has no score.
  auto active = [](const Figures& f) { return f != Figures{}; };
  for (const auto& [code, f] : by_child) {
    if (!active(f)) continue;
    out.ranking.push_back({code, "division", nameOf(m, h, DivisionCode::parse(code).value()), scoreOf(f), f});
  }
  for (const auto& [dep, f] : by_department) {
    if (!active(f) || dep.empty()) continue;
    out.ranking.push_back({dep, "department", dep, scoreOf(f), f});
  }
  std::stable_sort(out.ranking.begin(), out.ranking.end(), [](const UnitScore& a, const UnitScore& b) {
    if (a.score != b.score) return a.score > b.score;
    return std::tie(a.kind, a.unit) < std::tie(b.kind, b.unit);
  });
  (void)now;
  return out;
}

}  // namespace tongban
