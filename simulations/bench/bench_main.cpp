// tongban-bench: how fast the foundation is, as ratios against this machine's own limits
// measured in the same run (rule: performance is measured here, never asserted in tests).
//
//   raw Ed25519 verify          vs  opening a sealed envelope (signature + 3-certificate chain)
//   raw SQLite commit (FULL)    vs  applying an outbox message at a parent (verify + apply +
//                                   receipt in one transaction + a signed ack)
//   raw verify and raw commit   vs  the city ingesting a district's credentials (verify +
//                                   authority + store; credential_bench.cpp)
//   raw NATS request/reply      vs  the same through NatsTransport, and a signed exchange
//   raw NATS across leaf links  vs  a village → city lookup over four leaf-linked servers and
//                                   four real nodes (lookup_bench.cpp, starts its own servers)
//
//   tongban-bench [--nats nats://127.0.0.1:4222] [--seconds 1] [--lookup-rounds 300]
//                                                                   (ops/bench.sh starts a server)
#include <utility>  // Boost 1.74 Asio under C++20

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <CLI/CLI.hpp>
#include <nats/nats.h>
#include <sodium.h>
#include <spdlog/spdlog.h>

#include "federation/store/receipts.h"
#include "federation/sync/downlink.h"
#include "federation/sync/wire.h"
#include "federation/transport/asio_clock.h"
#include "federation/transport/nats/nats_transport.h"
#include "federation/trust/certificate.h"
#include "simulations/bench/credential_bench.h"
#include "simulations/bench/lookup_bench.h"
#include "simulations/world/sim_world.h"

namespace tongban::bench {
namespace {

using SteadyClock = std::chrono::steady_clock;
constexpr TimeMs kNow = 1795395600000LL;  // 2026-11-23 09:00 CST

double secondsSince(SteadyClock::time_point t0) {
  return std::chrono::duration<double>(SteadyClock::now() - t0).count();
}

// Runs `op` repeatedly for about `seconds` and returns operations per second.
double rate(double seconds, const std::function<void()>& op) {
  uint64_t n = 0;
  const auto t0 = SteadyClock::now();
  double elapsed = 0;
  do {
    for (int i = 0; i < 64; ++i) op();
    n += 64;
    elapsed = secondsSince(t0);
  } while (elapsed < seconds);
  return static_cast<double>(n) / elapsed;
}

void row(const char* what, double value, const char* unit, const std::string& versus = "") {
  std::printf("  %-52s %12.0f %-6s %s\n", what, value, unit, versus.c_str());
}

std::string ratio(double value, double base, const char* name) {
  char buf[96];
  std::snprintf(buf, sizeof buf, "%.2f x %s", base > 0 ? value / base : 0.0, name);
  return buf;
}

struct Tree {
  Identity city, district, town, village;
  KindRegistry kinds;
};

Tree makeTree() {
  Tree t;
  auto code = [](const char* c) { return DivisionCode::parse(c).value(); };
  auto keys = [](uint8_t b) {
    std::array<uint8_t, 32> seed{};
    seed.fill(b);
    return KeyPair::fromSeed(seed);
  };
  const TimeMs until = kNow + 365LL * 24 * 3600 * 1000;
  t.city = createRootIdentity(code("440600000000"), "佛山市", keys(1), 0, until).value();
  t.district = issueChildIdentity(t.city, code("440604000000"), "禅城区", keys(2), 2, 0, until).value();
  t.town = issueChildIdentity(t.district, code("440604001000"), "祖庙街道", keys(3), 3, 0, until).value();
  t.village = issueChildIdentity(t.town, code("440604001001"), "祖庙第1社区", keys(4), 4, 0, until).value();
  registerFederationKinds(t.kinds);
  return t;
}

Bytes payload300() { return Bytes(300, 0x5a); }

void cryptoAndEnvelopes(double seconds, double* raw_verify_out) {
  Tree t = makeTree();
  const Bytes msg = payload300();
  Signature sig = sign(t.village.keys.secret_key, msg.data(), msg.size());
  const double raw_verify = rate(seconds, [&] {
    if (!verifySignature(t.village.keys.public_key, msg.data(), msg.size(), sig)) std::abort();
  });
  const double raw_sign = rate(seconds, [&] { sig = sign(t.village.keys.secret_key, msg.data(), msg.size()); });
  *raw_verify_out = raw_verify;

  auto verifier = Verifier::create(t.city.root_certificate, &t.kinds).value();
  SealParams p;
  p.kind = kinds::kHeartbeat;
  p.seq = 1;
  p.timestamp_ms = kNow;
  p.target = t.town.division;
  p.payload = msg;
  const Bytes sealed = sealEnvelope(t.village, p);
  const double seal = rate(seconds, [&] { (void)sealEnvelope(t.village, p); });
  const double open = rate(seconds, [&] {
    if (!verifier.open(sealed, t.town.division, kNow, nullptr).isOk()) std::abort();
  });
  std::printf("signatures (one core, %zu-byte envelope)\n", sealed.size());
  row("raw Ed25519 sign, 300 B", raw_sign, "/s");
  row("raw Ed25519 verify, 300 B", raw_verify, "/s");
  row("seal an envelope (canonical encode + sign)", seal, "/s", ratio(seal, raw_sign, "raw sign"));
  row("open an envelope (all 8 checks, 3-cert chain cached)", open, "/s", ratio(open, raw_verify, "raw verify"));
}

void storage(double seconds, const std::string& dir) {
  std::printf("storage (SQLite WAL, synchronous=FULL, %s)\n", dir.c_str());
  auto db = Database::open({dir + "/raw.db", Synchronous::kFull}).value();
  (void)db->exec("CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB)");
  const Bytes blob = payload300();
  const double raw_commit = rate(seconds, [&] {
    auto txn = db->begin().value();
    auto stmt = db->prepare("INSERT INTO t (v) VALUES (?1)").value();
    if (!stmt.bind(1, blob).run().isOk() || !txn.commit().isOk()) std::abort();
  });
  row("raw commit, one 300 B row per transaction", raw_commit, "/s");

  // A parent applying its child's messages: verify, apply, record the receipt, commit, sign
  // the ack. The transport is never used by handleBatch.
  Tree t = makeTree();
  auto verifier = Verifier::create(t.city.root_certificate, &t.kinds).value();
  auto parent_db = Database::open({dir + "/parent.db", Synchronous::kFull}).value();
  auto receipts = Receipts::open(*parent_db).value();
  sim::SimWorld world(1, kNow);
  int ep = world.addEndpoint(t.town.division, "town");
  Downlink downlink(t.town, *parent_db, receipts, verifier, world.clock(ep), world.transport(ep), nullptr);
  if (!downlink.start().isOk()) std::abort();
  uint64_t seq = 0;
  auto batchOf = [&](size_t n) {
    OutboxBatchMsg batch{seq + 1, {}};
    for (size_t i = 0; i < n; ++i) {
      SealParams p;
      p.kind = kinds::kHeartbeat;
      p.seq = ++seq;
      p.timestamp_ms = kNow;
      p.target = t.town.division;
      HeartbeatMsg heartbeat;
      heartbeat.started_at_ms = kNow;
      p.payload = encode(heartbeat);
      batch.envelopes.push_back(sealEnvelope(t.village, p));
    }
    return encode(batch);
  };
  // Batches are sealed ahead of the clock so only the parent's work is timed.
  std::vector<Bytes> singles;
  for (int i = 0; i < 20000; ++i) singles.push_back(batchOf(1));
  size_t next = 0;
  const double apply1 = rate(seconds, [&] {
    if (downlink.handleBatch(singles[next++ % singles.size()]).empty()) std::abort();
  });
  row("apply one message per batch (verify+apply+receipt+ack)", apply1, "msg/s", ratio(apply1, raw_commit, "raw commit"));
  std::vector<Bytes> batches;
  for (int i = 0; i < 400; ++i) batches.push_back(batchOf(64));
  next = 0;
  const double apply64 = 64 * rate(seconds, [&] {
    if (downlink.handleBatch(batches[next++ % batches.size()]).empty()) std::abort();
  }) ;
  row("apply in batches of 64 (one transaction per message)", apply64, "msg/s", ratio(apply64, raw_commit, "raw commit"));
}

struct Latencies {
  double p50 = 0, p99 = 0;
};

Latencies summarise(std::vector<double> us) {
  std::sort(us.begin(), us.end());
  if (us.empty()) return {};
  return {us[us.size() / 2], us[std::min(us.size() - 1, us.size() * 99 / 100)]};
}

void onRawRequest(natsConnection* nc, natsSubscription*, natsMsg* msg, void*) {
  natsConnection_Publish(nc, natsMsg_GetReply(msg), natsMsg_GetData(msg), natsMsg_GetDataLength(msg));
  natsMsg_Destroy(msg);
}

void messaging(const std::string& url, int rounds) {
  std::printf("messaging (loopback nats-server %s, %d round trips each)\n", url.c_str(), rounds);
  // Raw nats.c: a responder with SendAsap and a blocking requester on their own connections.
  natsOptions* opts = nullptr;
  natsOptions_Create(&opts);
  natsOptions_SetURL(opts, url.c_str());
  natsOptions_SetSendAsap(opts, true);
  natsConnection *responder = nullptr, *requester = nullptr;
  if (natsConnection_Connect(&responder, opts) != NATS_OK || natsConnection_Connect(&requester, opts) != NATS_OK) {
    std::printf("  cannot connect to %s: skipped\n", url.c_str());
    return;
  }
  natsSubscription* sub = nullptr;
  natsConnection_Subscribe(&sub, responder, "bench.raw", onRawRequest, nullptr);
  natsConnection_Flush(responder);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const Bytes msg = payload300();
  std::vector<double> raw_us;
  for (int i = 0; i < rounds; ++i) {
    natsMsg* reply = nullptr;
    const auto t0 = SteadyClock::now();
    if (natsConnection_Request(&reply, requester, "bench.raw", msg.data(), static_cast<int>(msg.size()), 2000) != NATS_OK) {
      continue;
    }
    raw_us.push_back(secondsSince(t0) * 1e6);
    natsMsg_Destroy(reply);
  }
  const Latencies raw = summarise(raw_us);
  char line[160];
  std::snprintf(line, sizeof line, "p99 %.0f us", raw.p99);
  row("raw nats.c request/reply, 300 B (p50, us)", raw.p50, "us", line);

  // The same through our Transport on one io_context thread (posting, timers, inbox routing),
  // then with a sealed reply verified by the requester.
  boost::asio::io_context io;
  NatsOptions options;
  options.urls = {url};
  auto server = NatsTransport::create(io, options).value();
  auto client = NatsTransport::create(io, options).value();
  Tree t = makeTree();
  auto verifier = Verifier::create(t.city.root_certificate, &t.kinds).value();
  bool signed_mode = false;
  (void)server->subscribe("bench.transport", [&](const InboundMessage& m) {
    if (!signed_mode) {
      (void)server->reply(m, m.data);
      return;
    }
    SealParams p;
    p.kind = kinds::kStatusReply;
    p.timestamp_ms = kNow;
    p.target = t.town.division;
    p.payload = m.data;
    (void)server->reply(m, sealEnvelope(t.town, p));
  });
  for (int i = 0; i < 20 && !(server->connected() && client->connected()); ++i) {
    io.restart();
    io.run_for(std::chrono::milliseconds(50));
  }
  io.restart();
  io.run_for(std::chrono::milliseconds(100));  // interest propagation
  auto measure = [&](bool verify) {
    std::vector<double> us;
    for (int i = 0; i < rounds; ++i) {
      bool done = false;
      const auto t0 = SteadyClock::now();
      client->request("bench.transport", msg, 2000, [&](Result<Bytes> r) {
        if (r && (!verify || verifier.open(*r, t.town.division, kNow, nullptr).isOk())) {
          us.push_back(secondsSince(t0) * 1e6);
        }
        done = true;
      });
      // An io_context that ran out of work stays stopped until restart().
      while (!done) {
        if (io.stopped()) io.restart();
        io.run_one_for(std::chrono::milliseconds(100));
      }
    }
    return summarise(us);
  };
  const Latencies adapter = measure(false);
  std::snprintf(line, sizeof line, "p99 %.0f us; %.2f x raw p50", adapter.p99, raw.p50 > 0 ? adapter.p50 / raw.p50 : 0);
  row("NatsTransport request/reply on the node's executor", adapter.p50, "us", line);
  signed_mode = true;
  const Latencies sealed = measure(true);
  std::snprintf(line, sizeof line, "p99 %.0f us; %.2f x raw p50", sealed.p99, raw.p50 > 0 ? sealed.p50 / raw.p50 : 0);
  row("... with the reply sealed and verified (3-cert chain)", sealed.p50, "us", line);

  natsSubscription_Destroy(sub);
  natsConnection_Destroy(requester);
  natsConnection_Destroy(responder);
  natsOptions_Destroy(opts);
}

}  // namespace
}  // namespace tongban::bench

int main(int argc, char** argv) {
  CLI::App app{"tongban-bench: the foundation's speed as ratios against this machine's raw limits"};
  std::string url;
  double seconds = 1.0;
  int rounds = 2000;
  int lookup_rounds = 300;
  std::string dir = std::filesystem::temp_directory_path().string() + "/tongban-bench-" + std::to_string(::getpid());
  app.add_option("--nats", url, "A nats-server to measure messaging against (ops/bench.sh starts one)");
  app.add_option("--seconds", seconds, "Time per throughput measurement")->default_val(1.0);
  app.add_option("--rounds", rounds, "Round trips per latency measurement")->default_val(2000);
  app.add_option("--lookup-rounds", lookup_rounds,
                 "Measured village → city lookups (own leaf-linked nats-servers and nodes); 0 skips")
      ->default_val(300);
  app.add_option("--dir", dir, "Where the benchmark's SQLite files go (a real disk measures fsync)");
  CLI11_PARSE(app, argc, argv);
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // each result as soon as it is measured
  spdlog::set_level(spdlog::level::off);
  if (sodium_init() < 0) return 1;
  std::filesystem::create_directories(dir);
  double raw_verify = 0;
  tongban::bench::cryptoAndEnvelopes(seconds, &raw_verify);
  tongban::bench::storage(seconds, dir);
  tongban::bench::credentialIngest(seconds, dir);
  if (!url.empty()) tongban::bench::messaging(url, rounds);
  if (lookup_rounds > 0) tongban::bench::lookupsOverLevels(lookup_rounds, 30);
  std::filesystem::remove_all(dir);
  return 0;
}
