// Prometheus metrics of a node: GET /metrics in the text exposition format 0.0.4.
//
// Three groups of families, every name prefixed tongban_:
//   - node health from Node::status() (bus, uplink state, outbox depth, children last heard,
//     catalogue version, start time);
//   - HTTP requests by route pattern, method and status class, with a latency histogram. The
//     HttpServer measures each request and hands it to HttpMetrics::observe() (RequestObserver);
//     routes are the router's patterns, never raw paths, so a scan of random URLs adds no series;
//   - this node's own cases (the `cases` table) by item and state, and open yellow/red cases by
//     item: division × ~15 items × 8 states is a sane cardinality.
//
// The route is public: it shows division codes, counts and timings, never a person's data
// (docs/operations.md says how to keep it off an untrusted network).
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <tuple>

#include "node/http/router.h"

namespace tongban {

class Node;

// Latency bucket upper bounds in seconds: a local SQLite read is ~1 ms, an intake with an fsync
// ~5-20 ms, a 16 MiB upload up to seconds.
inline constexpr std::array<double, 12> kHttpLatencyBuckets = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                              0.05,   0.1,   0.25,   0.5,   1.0,  5.0};

// Counts requests; lives as long as the server and the /metrics route. Used on the node's one
// thread only (the server's observer and the route's handler both run there): no locks.
class HttpMetrics {
 public:
  void observe(const std::string& method, const std::string& route, int status, double seconds);
  // Appends tongban_http_requests_total and tongban_http_request_duration_seconds.
  void render(std::string* out) const;

 private:
  struct Series {
    uint64_t count = 0;
    double sum = 0;
    std::array<uint64_t, kHttpLatencyBuckets.size()> buckets{};  // cumulative is computed in render()
  };
  std::map<std::tuple<std::string, std::string, std::string>, Series> series_;  // route, method, code class
};

// A label value escaped for the text format (backslash, double quote, newline).
std::string promLabelValue(const std::string& value);

// The whole exposition for `node` (node families, HTTP families, case families). Errors from
// the node (status, SQL) become a tongban_scrape_errors gauge rather than a failed scrape, so one
// bad query never hides the health figures.
std::string renderMetrics(Node& node, const HttpMetrics& http);

// GET /metrics, public. `node` and `http` must outlive the router.
void registerMetricsRoute(Router& router, Node& node, const HttpMetrics& http);

}  // namespace tongban
