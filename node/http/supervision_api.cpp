// The supervision endpoints (docs/api.md "Supervision"): summary with drill-down, warnings and
// monthly scores of any division in this node's subtree. Staff with role supervisor or admin.
#include <cstdio>

#include "node/http/api.h"

namespace tongban {

namespace {

using json = nlohmann::json;

json rate(std::optional<double> r) { return r ? json(*r) : json(nullptr); }

json totalsJson(const Figures& f) {
  json j = json::object();
  for (const auto& field : figureFields()) j[field.name] = f.*field.member;
  j["on_time_rate"] = rate(f.onTimeRate());
  j["early_rate"] = rate(f.earlyRate());
  j["on_site_rate"] = rate(f.onSiteRate());
  j["satisfaction_rate"] = rate(f.satisfactionRate());
  j["avg_working_days"] = rate(f.avgWorkingDays());
  return j;
}

Status requireSupervisor(const Principal& who) {
  if (who.has(Role::kSupervisor) || who.has(Role::kAdmin)) return Status::ok();
  return Status(ErrorCode::kPermissionDenied,
                who.username + " may not see supervision figures: that needs the supervisor or admin role");
}

// ?division= (default: this node), parsed.
Result<DivisionCode> divisionParam(const HttpRequest& req, Node& node) {
  auto it = req.query.find("division");
  if (it == req.query.end() || it->second.empty()) return node.identity().division;
  auto code = DivisionCode::parse(it->second);
  if (!code) return code.status().withContext("division");
  return *code;
}

Result<CivilDate> dateParam(const HttpRequest& req, const char* key, CivilDate fallback) {
  auto it = req.query.find(key);
  if (it == req.query.end() || it->second.empty()) return fallback;
  auto d = CivilDate::parse(it->second);
  if (!d) return d.status().withContext(key);
  return *d;
}

HttpResponse summaryHandler(Node& n, const HttpRequest& req, const Principal& who) {
  if (auto st = requireSupervisor(who); !st.isOk()) return errorResponse(st);
  auto division = divisionParam(req, n);
  if (!division) return errorResponse(division.status());
  const TimeMs now = n.clock().now();
  const CivilDate today = CivilDate::fromTimeMs(now);
  CivilDate month_start{today.year, today.month, 1};
  CivilDate month_end = month_start;
  while (month_end.next().month == today.month) month_end = month_end.next();
  auto from = dateParam(req, "from", month_start);
  if (!from) return errorResponse(from.status());
  auto to = dateParam(req, "to", month_end);
  if (!to) return errorResponse(to.status());
  auto s = n.supervision().summary(*division, *from, *to, now);
  if (!s) return errorResponse(s.status());
  json children = json::array();
  for (const auto& c : s->children) {
    children.push_back({{"division", c.division}, {"name", c.name}, {"level", c.level}, {"totals", totalsJson(c.totals)},
                        {"open_yellow", c.open_yellow}, {"open_red", c.open_red}, {"stale", c.stale},
                        {"last_heard_ms", c.last_heard_ms}});
  }
  json by_item = json::array();
  for (const auto& r : s->by_item) {
    by_item.push_back({{"item_code", r.item_code}, {"department", r.department}, {"totals", totalsJson(r.figures)}});
  }
  json daily = json::array();
  for (const auto& d : s->daily) {
    daily.push_back({{"day", d.day}, {"accepted", d.figures.accepted}, {"concluded", d.figures.concluded},
                     {"overdue", d.figures.overdue}});
  }
  json stale = json::array();
  for (const auto& d : s->stale) stale.push_back({{"division", d.division}, {"last_heard_ms", d.last_heard_ms}});
  return jsonResponse(200, {{"division", s->division}, {"name", s->name}, {"level", s->level}, {"from", s->from},
                            {"to", s->to}, {"totals", totalsJson(s->totals)}, {"children", children},
                            {"by_item", by_item}, {"daily", daily}, {"stale", stale}});
}

HttpResponse warningsHandler(Node& n, const HttpRequest& req, const Principal& who) {
  if (auto st = requireSupervisor(who); !st.isOk()) return errorResponse(st);
  auto division = divisionParam(req, n);
  if (!division) return errorResponse(division.status());
  auto lit = n.supervision().warnings(*division);
  if (!lit) return errorResponse(lit.status());
  json out = json::array();
  for (const auto& w : *lit) {
    out.push_back({{"case_number", w.case_number}, {"origin", w.origin}, {"item_code", w.item_code},
                   {"department", w.department}, {"light", w.light}, {"deadline_ms", w.deadline_ms},
                   {"since_ms", w.since_ms}});
  }
  return jsonResponse(200, {{"warnings", out}});
}

HttpResponse scoresHandler(Node& n, const HttpRequest& req, const Principal& who) {
  if (auto st = requireSupervisor(who); !st.isOk()) return errorResponse(st);
  auto division = divisionParam(req, n);
  if (!division) return errorResponse(division.status());
  const TimeMs now = n.clock().now();
  const CivilDate today = CivilDate::fromTimeMs(now);
  int year = today.year, month = today.month;
  if (auto it = req.query.find("month"); it != req.query.end() && !it->second.empty()) {
    auto d = CivilDate::parse(it->second + "-01");
    if (!d || it->second.size() != 7) {
      return errorResponse(Status(ErrorCode::kInvalidArgument, "month must look like 2026-11, not '" + it->second + "'"));
    }
    year = d->year;
    month = d->month;
  }
  auto s = n.supervision().scores(*division, year, month, now);
  if (!s) return errorResponse(s.status());
  json ranking = json::array();
  for (const auto& u : s->ranking) {
    ranking.push_back({{"unit", u.unit}, {"kind", u.kind}, {"name", u.name}, {"score", u.score},
                       {"on_time_rate", rate(u.figures.onTimeRate())}, {"early_rate", rate(u.figures.earlyRate())},
                       {"satisfaction_rate", rate(u.figures.satisfactionRate())},
                       {"complaints", u.figures.complaints}, {"red", u.figures.red}});
  }
  return jsonResponse(200, {{"month", s->month}, {"formula", s->formula}, {"ranking", ranking}});
}

}  // namespace

void registerSupervisionApi(Router& router, Node& node) {
  Node* n = &node;
  router.add("GET", "/api/supervision/summary", Access::kAuthenticated,
             [n](const HttpRequest& req, const Principal* who) { return summaryHandler(*n, req, *who); });
  router.add("GET", "/api/supervision/warnings", Access::kAuthenticated,
             [n](const HttpRequest& req, const Principal* who) { return warningsHandler(*n, req, *who); });
  router.add("GET", "/api/supervision/scores", Access::kAuthenticated,
             [n](const HttpRequest& req, const Principal* who) { return scoresHandler(*n, req, *who); });
}

}  // namespace tongban
