#include "node/http/metrics.h"

#include <cstdio>
#include <set>
#include <vector>

#include <spdlog/spdlog.h>

#include "node/app/node.h"
#include "node/cases/cases.h"

namespace tongban {

namespace {

// Methods the API uses; anything else a client invents is folded into "other" so that it
// cannot create series.
std::string methodLabel(const std::string& method) {
  static const std::set<std::string> kKnown = {"GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH"};
  return kKnown.count(method) ? method : "other";
}

std::string statusClass(int status) {
  if (status < 100 || status > 599) return "other";
  return std::to_string(status / 100) + "xx";
}

// Shortest text that reads back as the same double ("0.005", "1e-06", "12").
std::string number(double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  // %.17g prints 0.005 as 0.0050000000000000001: try shorter precisions first.
  for (int precision = 1; precision <= 17; ++precision) {
    char shorter[40];
    std::snprintf(shorter, sizeof shorter, "%.*g", precision, v);
    double back = 0;
    if (std::sscanf(shorter, "%lf", &back) == 1 && back == v) return shorter;
  }
  return buf;
}

std::string number(uint64_t v) { return std::to_string(v); }
std::string number(int64_t v) { return std::to_string(v); }

void family(std::string* out, const char* name, const char* type, const char* help) {
  *out += "# HELP ";
  *out += name;
  *out += ' ';
  *out += help;
  *out += "\n# TYPE ";
  *out += name;
  *out += ' ';
  *out += type;
  *out += '\n';
}

using Labels = std::vector<std::pair<std::string, std::string>>;

void sample(std::string* out, const std::string& name, const Labels& labels, const std::string& value) {
  *out += name;
  if (!labels.empty()) {
    *out += '{';
    for (size_t i = 0; i < labels.size(); ++i) {
      if (i) *out += ',';
      *out += labels[i].first + "=\"" + promLabelValue(labels[i].second) + '"';
    }
    *out += '}';
  }
  *out += ' ' + value + '\n';
}

void renderNode(Node& node, const NodeStatusMsg& s, std::string* out) {
  const TimeMs now = node.clock().now();
  family(out, "tongban_up", "gauge", "1 while the node process answers.");
  sample(out, "tongban_up", {}, "1");
  family(out, "tongban_node_info", "gauge", "The node's identity (always 1).");
  sample(out, "tongban_node_info", {{"division", s.division}, {"name", s.name}, {"level", s.level}, {"parent", s.parent}},
         "1");
  family(out, "tongban_start_time_seconds", "gauge", "When the node started, Unix time in seconds.");
  sample(out, "tongban_start_time_seconds", {}, number(static_cast<double>(s.started_at_ms) / 1000.0));
  family(out, "tongban_bus_connected", "gauge", "1 if the node is connected to its NATS bus.");
  sample(out, "tongban_bus_connected", {}, s.bus_connected ? "1" : "0");
  family(out, "tongban_uplink_state", "gauge", "The link to the parent: 1 for the current state, 0 for the others.");
  for (const char* state : {"up", "down", "unknown", "none"}) {
    sample(out, "tongban_uplink_state", {{"state", state}}, s.parent_link == state ? "1" : "0");
  }
  family(out, "tongban_joined", "gauge", "1 once the parent has accepted this node's join.");
  sample(out, "tongban_joined", {}, s.joined ? "1" : "0");
  family(out, "tongban_outbox_depth", "gauge", "Messages waiting to be acknowledged by the parent.");
  sample(out, "tongban_outbox_depth", {}, number(s.outbox_depth));
  family(out, "tongban_last_ack_time_seconds", "gauge", "When the parent last acknowledged a batch, Unix seconds (0: never).");
  sample(out, "tongban_last_ack_time_seconds", {}, number(static_cast<double>(s.last_ack_ms) / 1000.0));
  family(out, "tongban_catalogue_version", "gauge", "Version of the newest verified catalogue (0: none yet).");
  sample(out, "tongban_catalogue_version", {}, number(node.catalogue().version()));
  family(out, "tongban_children", "gauge", "Children that have joined this node.");
  sample(out, "tongban_children", {}, number(static_cast<uint64_t>(s.children.size())));
  family(out, "tongban_child_last_heard_seconds", "gauge", "Seconds since each child was last heard from.");
  for (const auto& c : s.children) {
    const double age = c.last_seen_ms > 0 && now > c.last_seen_ms ? static_cast<double>(now - c.last_seen_ms) / 1000.0 : 0.0;
    sample(out, "tongban_child_last_heard_seconds", {{"child", c.division}, {"name", c.name}}, number(age));
  }
  family(out, "tongban_child_outbox_depth", "gauge", "Outbox depth each child last reported in its heartbeat.");
  for (const auto& c : s.children) {
    sample(out, "tongban_child_outbox_depth", {{"child", c.division}, {"name", c.name}}, number(c.reported_outbox_depth));
  }
}

void renderCases(Node& node, const std::string& division, std::string* out, std::vector<std::string>* errors) {
  // Every state of every item that has cases, zeros included: a series that vanishes when its
  // last case moves on would read as "no data" rather than 0 in Prometheus.
  std::map<std::string, std::map<std::string, int64_t>> by_item;
  auto stmt = node.database().prepare("SELECT item_code, state, COUNT(*) FROM cases GROUP BY item_code, state");
  if (!stmt) {
    errors->push_back("cases: " + stmt.status().toString());
    return;
  }
  while (true) {
    auto row = stmt->step();
    if (!row) {
      errors->push_back("cases: " + row.status().toString());
      return;
    }
    if (!*row) break;
    by_item[stmt->columnText(0)][stmt->columnText(1)] = stmt->columnInt64(2);
  }
  family(out, "tongban_cases", "gauge", "This node's own cases by item and current state.");
  for (const auto& [item, states] : by_item) {
    for (int st = static_cast<int>(CaseState::kRefused); st <= static_cast<int>(CaseState::kSupplement); ++st) {
      const std::string name = caseStateName(static_cast<CaseState>(st));
      auto it = states.find(name);
      sample(out, "tongban_cases", {{"division", division}, {"item", item}, {"state", name}},
             number(it == states.end() ? int64_t{0} : it->second));
    }
  }
  // Cases are never deleted, so the number ever taken in (refusals included) only grows.
  family(out, "tongban_cases_received_total", "counter", "Applications this node has taken in (accepted or refused).");
  for (const auto& [item, states] : by_item) {
    int64_t total = 0;
    for (const auto& [state, n] : states) total += n;
    sample(out, "tongban_cases_received_total", {{"division", division}, {"item", item}}, number(total));
  }
  auto warnings = node.cases().warnings(node.clock().now());
  if (!warnings) {
    errors->push_back("warnings: " + warnings.status().toString());
    return;
  }
  std::map<std::string, std::pair<int64_t, int64_t>> lights;  // item → (yellow, red)
  for (const auto& [item, states] : by_item) lights[item] = {0, 0};
  for (const auto& c : *warnings) {
    auto& [yellow, red] = lights[c.item_code];
    if (c.light == Light::kYellow) ++yellow;
    if (c.light == Light::kRed) ++red;
  }
  family(out, "tongban_cases_open_light", "gauge", "This node's open cases showing a yellow or red light, by item.");
  for (const auto& [item, counts] : lights) {
    sample(out, "tongban_cases_open_light", {{"division", division}, {"item", item}, {"light", "yellow"}},
           number(counts.first));
    sample(out, "tongban_cases_open_light", {{"division", division}, {"item", item}, {"light", "red"}},
           number(counts.second));
  }
}

}  // namespace

std::string promLabelValue(const std::string& value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

void HttpMetrics::observe(const std::string& method, const std::string& route, int status, double seconds) {
  // An unknown path is labelled "unmatched", never with the path itself: label values must come
  // from a fixed set, whatever clients send.
  Series& s = series_[{route.empty() ? "unmatched" : route, methodLabel(method), statusClass(status)}];
  ++s.count;
  s.sum += seconds;
  for (size_t i = 0; i < kHttpLatencyBuckets.size(); ++i) {
    if (seconds <= kHttpLatencyBuckets[i]) {
      ++s.buckets[i];
      break;
    }
  }
}

void HttpMetrics::render(std::string* out) const {
  family(out, "tongban_http_requests_total", "counter", "HTTP requests answered, by route pattern, method and status class.");
  for (const auto& [key, s] : series_) {
    const auto& [route, method, code] = key;
    sample(out, "tongban_http_requests_total", {{"route", route}, {"method", method}, {"code", code}}, number(s.count));
  }
  family(out, "tongban_http_request_duration_seconds", "histogram",
         "Time from a complete request to a ready response, by route pattern, method and status class.");
  for (const auto& [key, s] : series_) {
    const auto& [route, method, code] = key;
    uint64_t cumulative = 0;
    for (size_t i = 0; i < kHttpLatencyBuckets.size(); ++i) {
      cumulative += s.buckets[i];
      sample(out, "tongban_http_request_duration_seconds_bucket",
             {{"route", route}, {"method", method}, {"code", code}, {"le", number(kHttpLatencyBuckets[i])}},
             number(cumulative));
    }
    sample(out, "tongban_http_request_duration_seconds_bucket",
           {{"route", route}, {"method", method}, {"code", code}, {"le", "+Inf"}}, number(s.count));
    sample(out, "tongban_http_request_duration_seconds_sum", {{"route", route}, {"method", method}, {"code", code}},
           number(s.sum));
    sample(out, "tongban_http_request_duration_seconds_count", {{"route", route}, {"method", method}, {"code", code}},
           number(s.count));
  }
}

std::string renderMetrics(Node& node, const HttpMetrics& http) {
  std::string out;
  std::vector<std::string> errors;
  std::string division;
  if (auto status = node.status()) {
    division = status->division;
    renderNode(node, *status, &out);
  } else {
    errors.push_back("status: " + status.status().toString());
  }
  http.render(&out);
  renderCases(node, division, &out, &errors);
  for (const auto& e : errors) spdlog::warn("metrics: {}", e);
  family(&out, "tongban_scrape_errors", "gauge", "Parts of this scrape that failed (the node log has why).");
  sample(&out, "tongban_scrape_errors", {}, number(static_cast<uint64_t>(errors.size())));
  return out;
}

void registerMetricsRoute(Router& router, Node& node, const HttpMetrics& http) {
  Node* n = &node;
  const HttpMetrics* h = &http;
  router.add("GET", "/metrics", Access::kPublic, [n, h](const HttpRequest&, const Principal*) {
    HttpResponse res;
    res.content_type = "text/plain; version=0.0.4; charset=utf-8";
    res.body = renderMetrics(*n, *h);
    return res;
  });
}

}  // namespace tongban
