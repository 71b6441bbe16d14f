// tongban-bench, lookups across levels (issue #5): what a village → city lookup costs over real
// NATS, beside raw nats.c request/reply measured in the same run on the same servers.
//
// Setup: four nats-servers on free loopback ports, leaf-linked village → town → district → city
// as ops/lib/network.sh runs them (one bus per level); four real Nodes in this process, each on
// its own thread and io_context with AsioClock + NatsTransport on its level's bus (the daemon's
// wiring, node/cli/node_command.cpp), identities from the trust API. Materials are stored at the
// city only, one per measured lookup, so each lookup of a fresh hash misses at the village, town
// and district and is answered by the city: village → town → district → city and back, three
// signed request/replies, each hop checking the one below and its own store first.
//
// Every round, interleaved (the machine may be busy; interleaving spreads that evenly):
//   raw request/reply on one server (requester and responder on the village bus)
//   raw request/reply across one leaf link (village bus → town bus)
//   raw request/reply across the chain (village bus → city bus, three leaf links)
//   a lookup of a fresh material hash at the village            → answered by the city
//   the same again                                              → the village's own cache
//   again after clearing the village's cache                    → the town's cache (1 hop)
//   again after clearing the village's and town's caches        → the district's cache (2 hops)
// Lookups are timed on the village's executor, from lookup() to its callback. Nothing is asserted.
#include <utility>  // Boost 1.74 Asio under C++20

#include "simulations/bench/lookup_bench.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <nats/nats.h>

#include "federation/transport/asio_clock.h"
#include "federation/transport/nats/nats_transport.h"
#include "federation/trust/certificate.h"
#include "node/app/node.h"
#include "tests/support/nats_server.h"
#include "tests/support/temp_dir.h"

namespace tongban::bench {
namespace {

using Steady = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr milliseconds kCallTimeout{10000};   // any one setup/teardown step on a node's thread
constexpr milliseconds kLookupTimeout{5000};  // one lookup (its budget is 3000 ms)
constexpr int kRawTimeoutMs = 2000;
constexpr int kJoinSeconds = 30;
constexpr int kInterestSeconds = 15;
constexpr size_t kRawPayloadBytes = 300;

double usSince(Steady::time_point t0) { return std::chrono::duration<double, std::micro>(Steady::now() - t0).count(); }

struct Percentiles {
  double p50 = 0, p99 = 0;
  size_t n = 0;
};

Percentiles percentiles(std::vector<double> us) {
  if (us.empty()) return {};
  std::sort(us.begin(), us.end());
  return {us[us.size() / 2], us[std::min(us.size() - 1, us.size() * 99 / 100)], us.size()};
}

// The same layout as bench_main.cpp's rows.
void row(const char* what, double value, const char* unit, const std::string& versus = "") {
  std::printf("  %-52s %12.0f %-6s %s\n", what, value, unit, versus.c_str());
}

std::string fmt(const char* format, double a, double b = 0, const char* c = "") {
  char buf[160];
  std::snprintf(buf, sizeof buf, format, a, b, c);
  return buf;
}

// Posts `f` onto `io` (the thread that owns a node) and waits, bounded, for what it returns.
// The promise is shared, so a late run after a timeout is harmless.
template <typename F>
auto callOn(boost::asio::io_context& io, F f, milliseconds timeout) -> std::optional<decltype(f())> {
  using T = decltype(f());
  auto done = std::make_shared<std::promise<T>>();
  auto result = done->get_future();
  boost::asio::post(io, [done, f = std::move(f)]() mutable { done->set_value(f()); });
  if (result.wait_for(timeout) != std::future_status::ready) return std::nullopt;
  return result.get();
}

// One level: its bus, and a node on that bus owned by one thread.
struct Level {
  const char* label = "";
  DivisionCode code;
  Identity identity;
  std::unique_ptr<testing::NatsServer> bus;
  int leaf_port = 0;

  boost::asio::io_context io;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> guard;
  std::thread thread;
  std::unique_ptr<AsioClock> clock;  // these four live and die on `thread`
  std::unique_ptr<NatsTransport> transport;
  std::unique_ptr<Random> random;
  std::unique_ptr<Node> node;

  // Stops the node on its own thread, then the thread; bounded. Idempotent.
  void stopNode() {
    if (thread.joinable()) {
      (void)callOn(io, [this] {
        if (node) node->stop();
        node.reset();
        transport.reset();  // closes the connection and joins nats.c's threads
        clock.reset();
        return true;
      }, kCallTimeout);
      guard.reset();
      io.stop();
      thread.join();
    }
    node.reset();  // only if the thread did not get to it
    transport.reset();
    clock.reset();
  }
};

// The whole set-up; the destructor stops nodes, then servers, then removes the temp dir, so an
// early return anywhere cleans up.
struct Chain {
  testing::TempDir dir;  // first member: destroyed last
  std::array<std::unique_ptr<Level>, 4> levels;  // city, district, town, village

  Level& city() { return *levels[0]; }
  Level& district() { return *levels[1]; }
  Level& town() { return *levels[2]; }
  Level& village() { return *levels[3]; }

  ~Chain() {
    for (int i = 3; i >= 0; --i) {
      if (levels[i]) levels[i]->stopNode();
    }
    for (int i = 3; i >= 0; --i) {
      if (levels[i] && levels[i]->bus) levels[i]->bus->stop();
    }
  }
};

// A raw nats.c connection (SendAsap, as bench_main.cpp's raw figures and NatsTransport use).
struct RawConnection {
  natsOptions* opts = nullptr;
  natsConnection* nc = nullptr;
  natsSubscription* sub = nullptr;
  ~RawConnection() {
    if (sub) natsSubscription_Destroy(sub);
    if (nc) natsConnection_Destroy(nc);
    if (opts) natsOptions_Destroy(opts);
  }
  bool connect(const std::string& url) {
    return natsOptions_Create(&opts) == NATS_OK && natsOptions_SetURL(opts, url.c_str()) == NATS_OK &&
           natsOptions_SetSendAsap(opts, true) == NATS_OK && natsConnection_Connect(&nc, opts) == NATS_OK;
  }
};

void onRawRequest(natsConnection* nc, natsSubscription*, natsMsg* msg, void*) {
  natsConnection_Publish(nc, natsMsg_GetReply(msg), natsMsg_GetData(msg), natsMsg_GetDataLength(msg));
  natsMsg_Destroy(msg);
}

// One raw round trip in microseconds, or a negative number if it failed.
double rawRoundTrip(natsConnection* requester, const char* subject, const std::vector<uint8_t>& payload, int timeout_ms) {
  natsMsg* reply = nullptr;
  const auto t0 = Steady::now();
  if (natsConnection_Request(&reply, requester, subject, payload.data(), static_cast<int>(payload.size()), timeout_ms) !=
      NATS_OK) {
    return -1;
  }
  const double us = usSince(t0);
  natsMsg_Destroy(reply);
  return us;
}

std::string busConfig(const char* level, int leaf_port, int above_leaf_port) {
  std::string c = std::string("server_name: tongban-bench-") + level + "\n" +
                  "ping_interval: \"1s\"\nping_max: 3\n"
                  "leafnodes {\n  listen: 127.0.0.1:" + std::to_string(leaf_port) + "\n";
  if (above_leaf_port > 0) {
    c += "  remotes: [ { url: \"nats-leaf://127.0.0.1:" + std::to_string(above_leaf_port) + "\" } ]\n";
  }
  return c + "  reconnect: 1\n}\n";
}

struct Timed {
  LookupResult result;
  double us = 0;
};

// A lookup at `at`, timed on its executor from lookup() to the callback.
std::optional<Timed> timedLookup(Level& at, const LookupQuery& query) {
  auto done = std::make_shared<std::promise<Timed>>();
  auto result = done->get_future();
  boost::asio::post(at.io, [&at, done, query] {
    const auto t0 = Steady::now();
    at.node->lookups().lookup(query, 3000, [done, t0](LookupResult r) { done->set_value(Timed{std::move(r), usSince(t0)}); });
  });
  if (result.wait_for(kLookupTimeout) != std::future_status::ready) return std::nullopt;
  return result.get();
}

bool clearCache(Level& level) {
  return callOn(level.io, [&level] {
    level.node->lookups().clearCache();
    return true;
  }, kCallTimeout).value_or(false);
}

std::string routeText(const LookupResult& r) {
  std::string s;
  for (const auto& hop : r.route) s += (s.empty() ? "" : " → ") + hop.name;
  return s;
}

}  // namespace

void lookupsOverLevels(int rounds, int warmup) {
  rounds = std::max(rounds, 1);
  warmup = std::max(warmup, 1);
  std::printf("lookups across levels (4 nats-servers leaf-linked village -> town -> district -> city, 4 nodes in\n"
              "this process, one thread each; %d rounds after %d warm-up, interleaved)\n", rounds, warmup);
  auto skip = [](const std::string& why) { std::printf("  skipped: %s\n", why.c_str()); };

  Chain chain;
  const TimeMs now = std::chrono::duration_cast<milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  const TimeMs from = now - 3600LL * 1000, until = now + 7LL * 24 * 3600 * 1000;
  const char* codes[] = {"440600000000", "440604000000", "440604001000", "440604001001"};
  const char* names[] = {"佛山市", "禅城区", "祖庙街道", "祖庙第1社区"};
  const char* labels[] = {"city", "district", "town", "village"};

  // Identities: a root for the city, each level issued by the one above.
  for (int i = 0; i < 4; ++i) {
    auto& l = chain.levels[i];
    l = std::make_unique<Level>();
    l->label = labels[i];
    l->code = DivisionCode::parse(codes[i]).value();
    std::array<uint8_t, 32> seed{};
    seed.fill(static_cast<uint8_t>(0x40 + i));
    auto id = i == 0 ? createRootIdentity(l->code, names[i], KeyPair::fromSeed(seed), from, until)
                     : issueChildIdentity(chain.levels[i - 1]->identity, l->code, names[i], KeyPair::fromSeed(seed),
                                          static_cast<uint64_t>(i + 1), from, until);
    if (!id) return skip("identity for " + std::string(labels[i]) + ": " + id.status().toString());
    l->identity = std::move(id).value();
  }

  // Buses, city first: each lower one is a leaf of the one above (ops/lib/network.sh).
  int above = 0;
  for (int i = 0; i < 4; ++i) {
    Level& l = *chain.levels[i];
    auto leaf = testing::findFreeLoopbackPort();
    if (!leaf) return skip(leaf.status().toString());
    l.leaf_port = *leaf;
    const std::string conf = chain.dir.file(std::string("bus-") + l.label + ".conf");
    std::ofstream(conf) << busConfig(l.label, l.leaf_port, above);
    l.bus = std::make_unique<testing::NatsServer>(std::vector<std::string>{"-c", conf});
    if (auto st = l.bus->start(); !st.isOk()) return skip(std::string(l.label) + " bus: " + st.toString());
    above = l.leaf_port;
  }

  // Raw nats.c: one requester on the village bus; echo responders on the village, town and city
  // buses.
  RawConnection requester, on_village, on_town, on_city;
  struct Responder {
    RawConnection* conn;
    Level* level;
    const char* subject;
  };
  const Responder responders[] = {{&on_village, &chain.village(), "bench.raw.local"},
                                  {&on_town, &chain.town(), "bench.raw.leaf"},
                                  {&on_city, &chain.city(), "bench.raw.chain"}};
  if (!requester.connect(chain.village().bus->url())) return skip("cannot connect to the village bus");
  for (const auto& r : responders) {
    if (!r.conn->connect(r.level->bus->url()) ||
        natsConnection_Subscribe(&r.conn->sub, r.conn->nc, r.subject, onRawRequest, nullptr) != NATS_OK ||
        natsConnection_Flush(r.conn->nc) != NATS_OK) {
      return skip(std::string("raw responder on the ") + r.level->label + " bus");
    }
  }
  const std::vector<uint8_t> payload(kRawPayloadBytes, 0x5a);
  // Interest crosses each leaf link in 10-20 ms (BUILD-NOTES): ask until the city's responder
  // answers, bounded.
  {
    bool reached = false;
    const auto deadline = Steady::now() + std::chrono::seconds(kInterestSeconds);
    while (!reached && Steady::now() < deadline) {
      reached = rawRoundTrip(requester.nc, "bench.raw.chain", payload, 200) >= 0 &&
                rawRoundTrip(requester.nc, "bench.raw.leaf", payload, 200) >= 0;
      if (!reached) std::this_thread::sleep_for(milliseconds(100));
    }
    if (!reached) return skip("the leaf links did not carry a request village → city within 15 s");
  }

  // Nodes: each on its own thread, opened there (the daemon's wiring).
  for (auto& lp : chain.levels) {
    Level& l = *lp;
    l.guard.emplace(l.io.get_executor());
    l.thread = std::thread([&l] { l.io.run(); });
    NodeOptions options;
    options.identity = l.identity;
    options.data_dir = chain.dir.path() + "/" + l.code.str();
    NatsOptions nats;
    nats.urls = {l.bus->url()};
    nats.name = "tongban-bench-" + l.code.str();
    auto opened = callOn(l.io, [&l, options = std::move(options), nats]() mutable -> std::string {
      l.clock = std::make_unique<AsioClock>(l.io);
      auto transport = NatsTransport::create(l.io, nats);
      if (!transport) return transport.status().toString();
      l.transport = std::move(transport).value();
      l.random = std::make_unique<Random>(seedFromEntropy());
      auto node = Node::open(std::move(options), NodeEnvironment{l.clock.get(), l.transport.get(), l.random.get(), nullptr});
      if (!node) return node.status().toString();
      l.node = std::move(node).value();
      return "";
    }, kCallTimeout);
    if (!opened) return skip(std::string("opening the ") + l.label + " node timed out");
    if (!opened->empty()) return skip(std::string("opening the ") + l.label + " node: " + *opened);
  }

  // Until district, town and village have each joined their parent, bounded.
  const auto join_started = Steady::now();
  for (int i = 1; i < 4; ++i) {
    Level& l = *chain.levels[i];
    bool joined = false;
    while (!joined && Steady::now() < join_started + std::chrono::seconds(kJoinSeconds)) {
      joined = callOn(l.io, [&l] {
        auto j = l.node->joined();
        return j.isOk() && *j;
      }, kCallTimeout).value_or(false);
      if (!joined) std::this_thread::sleep_for(milliseconds(100));
    }
    if (!joined) return skip(std::string("the ") + l.label + " did not join its parent within 30 s");
  }
  const double join_s = usSince(join_started) / 1e6;

  // Materials at the city only: one per lookup, so every first lookup misses below the city.
  const size_t total = static_cast<size_t>(warmup + rounds);
  auto hashes = callOn(chain.city().io, [&chain, total]() -> std::vector<std::string> {
    Level& city = chain.city();
    std::vector<std::string> out;
    for (size_t i = 0; i < total; ++i) {
      std::string text = "tongban-bench business licence #" + std::to_string(i) + " ";
      Bytes content(text.begin(), text.end());
      content.resize(1024, static_cast<uint8_t>('.'));
      auto r = city.node->materials().put(content, "营业执照", "91440604MA4W000001", "application/pdf", "bench-clerk",
                                          city.clock->now());
      if (!r) return {};
      out.push_back(r->hash);
    }
    return out;
  }, milliseconds(60000));
  if (!hashes || hashes->size() != total) return skip("storing the materials at the city failed");
  std::vector<LookupQuery> queries;
  for (const auto& h : *hashes) {
    auto q = makeLookupQuery(LookupQuestion::kMaterial, h);
    if (!q) return skip("lookup query: " + q.status().toString());
    queries.push_back(*q);
  }

  // The lookup subjects' interest may still be crossing the leaf links: ask (a warm-up hash
  // nobody measures) until the city answers, bounded.
  {
    bool answered = false;
    const auto deadline = Steady::now() + std::chrono::seconds(kInterestSeconds);
    while (!answered && Steady::now() < deadline) {
      auto t = timedLookup(chain.village(), queries[0]);
      answered = t && t->result.outcome == LookupOutcome::kFound && t->result.answered_by == chain.city().code.str();
      if (!answered) std::this_thread::sleep_for(milliseconds(200));
    }
    if (!answered) return skip("no lookup at the village was answered by the city within 15 s");
  }

  std::vector<double> raw_local, raw_leaf, raw_chain, from_city, from_district, from_town, from_village;
  size_t failed_raw = 0, unexpected = 0;
  std::string route, unexpected_example;
  const std::string city_code = chain.city().code.str();
  auto expect = [&](const std::optional<Timed>& t, const std::string& answered_by, const std::string& cached_at,
                    std::vector<double>* into) {
    if (t && t->result.outcome == LookupOutcome::kFound && t->result.answered_by == answered_by &&
        t->result.cached_at == cached_at) {
      if (into) into->push_back(t->us);
      return;
    }
    ++unexpected;
    if (unexpected_example.empty()) {
      unexpected_example = !t ? "no callback within 5 s"
                              : std::string(lookupOutcomeName(t->result.outcome)) + " by " + t->result.answered_by +
                                    " cached at '" + t->result.cached_at + "' " + t->result.reason;
    }
  };
  auto raw = [&](const char* subject, std::vector<double>* into) {
    const double us = rawRoundTrip(requester.nc, subject, payload, kRawTimeoutMs);
    if (us < 0) {
      ++failed_raw;
    } else if (into) {
      into->push_back(us);
    }
  };

  for (size_t i = 1; i < total; ++i) {
    const bool record = i >= static_cast<size_t>(warmup);
    raw("bench.raw.local", record ? &raw_local : nullptr);
    raw("bench.raw.leaf", record ? &raw_leaf : nullptr);
    raw("bench.raw.chain", record ? &raw_chain : nullptr);
    auto first = timedLookup(chain.village(), queries[i]);
    if (first && route.empty()) route = routeText(first->result);
    expect(first, city_code, "", record ? &from_city : nullptr);
    expect(timedLookup(chain.village(), queries[i]), city_code, chain.village().code.str(), record ? &from_village : nullptr);
    if (!clearCache(chain.village())) return skip("clearing the village's cache timed out");
    expect(timedLookup(chain.village(), queries[i]), city_code, chain.town().code.str(), record ? &from_town : nullptr);
    if (!clearCache(chain.village()) || !clearCache(chain.town())) return skip("clearing a cache timed out");
    expect(timedLookup(chain.village(), queries[i]), city_code, chain.district().code.str(),
           record ? &from_district : nullptr);
  }
  // queries[0] was the interest probe above and counts as warm-up: total - warmup rounds are measured.

  const Percentiles local = percentiles(raw_local), leaf = percentiles(raw_leaf), whole = percentiles(raw_chain);
  const Percentiles lc = percentiles(from_city), ld = percentiles(from_district), lt = percentiles(from_town),
                    lv = percentiles(from_village);
  std::printf("  (nodes joined in %.1f s; a lookup's route: %s; raw payload %zu B)\n", join_s, route.c_str(),
              kRawPayloadBytes);
  row("raw nats.c request/reply, one server (p50, us)", local.p50, "us", fmt("p99 %.0f us", local.p99));
  row("raw nats.c request/reply across one leaf link", leaf.p50, "us",
      fmt("p99 %.0f us; %.2f x one server", leaf.p99, local.p50 > 0 ? leaf.p50 / local.p50 : 0));
  row("raw nats.c request/reply, village bus -> city bus", whole.p50, "us",
      fmt("p99 %.0f us; %.2f x one server", whole.p99, local.p50 > 0 ? whole.p50 / local.p50 : 0));
  row("lookup at the village answered by the city (3 hops)", lc.p50, "us",
      fmt("p99 %.0f us; %.2f x raw chain p50", lc.p99, whole.p50 > 0 ? lc.p50 / whole.p50 : 0));
  row("... from the district's cache (2 hops)", ld.p50, "us", fmt("p99 %.0f us", ld.p99));
  row("... from the town's cache (1 hop)", lt.p50, "us",
      fmt("p99 %.0f us; %.2f x raw one leaf link p50", lt.p99, leaf.p50 > 0 ? lt.p50 / leaf.p50 : 0));
  row("... from the village's own cache (no network)", lv.p50, "us", fmt("p99 %.0f us", lv.p99));
  const double per_hop = (lc.p50 - whole.p50) / 3;
  row("per-hop overhead: (lookup p50 - raw chain p50) / 3", per_hop, "us",
      fmt("%.2f x raw one-server p50", local.p50 > 0 ? per_hop / local.p50 : 0));
  row("per hop: lookup p50 / 3", lc.p50 / 3, "us",
      fmt("%.2f x raw one-leaf-link p50", leaf.p50 > 0 ? lc.p50 / 3 / leaf.p50 : 0));
  if (failed_raw > 0 || unexpected > 0) {
    std::printf("  (left out: %zu raw round trips that failed, %zu lookups not answered as expected%s%s)\n", failed_raw,
                unexpected, unexpected_example.empty() ? "" : ", e.g. ", unexpected_example.c_str());
  }
}

}  // namespace tongban::bench
