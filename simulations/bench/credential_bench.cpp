// tongban-bench, credential ingest at the city (issue #6): what taking in a district's
// credentials costs, beside this machine's raw limits measured in the same run.
//
// Setup: a real city Node (node.db at synchronous FULL as in production, data/catalog.json
// published at open, data/calendar-2026.json) on one endpoint of a SimWorld that is never run:
// ingest is local work, no message travels. A district identity issued by the city seals
// business licences (SC-0001, decided at district level, so the district has authority) with
// signCredential, numbered "<district>-L%08d" like issue() numbers them, each with its own
// holder. Sealing happens before the clock starts; only the city's work is timed.
//
// Three rounds; each figure is the median of its rounds, each ratio the median of the ratios
// within a round. Within a round each raw limit runs block by block in turn with what it is
// compared to, so both see the same machine load (the machine may be busy; fsync times
// especially wander):
//   raw Ed25519 verify (libsodium, one core) of a message the size of a sealed credential,
//     Verifier::open of a sealed credential (envelope checks; the issuer chain is cached after
//     the first open, so one signature per credential), the same with a cold chain cache, and
//     CredentialService::verify (open + decode + authority + the node's version/status reads)
//   raw verify, raw SQLite commit (FULL) of one row that size per transaction, and ingest:
//     acceptCredential (verify + authority + store) and commit, one transaction per credential
//     (the downlink applies one message per transaction)
//   raw verify, raw commit of 256 such rows per transaction, and ingest 256 credentials per
//     transaction
// Each ingest uses credentials the city has never seen, so every one is stored. Nothing is
// asserted; a measurement that goes wrong prints "skipped" with the reason.
#include "simulations/bench/credential_bench.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "federation/store/database.h"
#include "federation/sync/wire.h"
#include "federation/trust/certificate.h"
#include "federation/trust/envelope.h"
#include "federation/trust/keys.h"
#include "node/app/node.h"
#include "node/calendar/calendar.h"
#include "node/credentials/credentials.h"
#include "simulations/world/sim_world.h"

#ifndef TONGBAN_DATA_DIR
#define TONGBAN_DATA_DIR "data"
#endif

namespace tongban::bench {
namespace {

using Steady = std::chrono::steady_clock;
constexpr TimeMs kNow = 1795395600000LL;  // 2026-11-23 09:00 CST, as bench_main.cpp
constexpr DurationMs kDay = 24LL * 3600 * 1000;
constexpr int kRounds = 3;
constexpr size_t kSinglePool = 5000;       // fresh credentials per round, one per transaction
constexpr size_t kBatch = 256;
constexpr size_t kBatchPool = 64 * kBatch;  // fresh credentials per round, 256 per transaction
constexpr size_t kVerifyPool = 512;        // verified over and over, never stored

const char* kCity = "440600000000";
const char* kDistrict = "440604000000";
const char* kTowns[] = {"440604000000", "440604001000", "440604002000", "440604003000"};  // origins

double secondsSince(Steady::time_point t0) { return std::chrono::duration<double>(Steady::now() - t0).count(); }

// One measured operation: `block` does a few operations and returns how many (0: stop, the
// pool ran out or something went wrong). Only the time inside its blocks counts.
struct Op {
  std::function<size_t()> block;
  uint64_t done = 0;
  double seconds = 0;
  double rate() const { return seconds > 0 ? static_cast<double>(done) / seconds : 0; }
};

// Runs the ops' blocks in turn, so a raw limit and what is compared with it see the same
// machine load, for about `seconds` each; stops early when a block returns 0.
void interleave(double seconds, std::initializer_list<Op*> ops) {
  const auto t0 = Steady::now();
  while (secondsSince(t0) < seconds * static_cast<double>(ops.size())) {
    for (Op* op : ops) {
      const auto b0 = Steady::now();
      const size_t n = op->block();
      op->seconds += secondsSince(b0);
      if (n == 0) return;
      op->done += n;
    }
  }
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

// The same layout as bench_main.cpp's rows.
void row(const char* what, double value, const char* unit, const std::string& versus = "") {
  std::printf("  %-52s %12.0f %-6s %s\n", what, value, unit, versus.c_str());
}

std::string ratio(double value, double base, const char* name) {
  char buf[96];
  std::snprintf(buf, sizeof buf, "%.2f x %s", base > 0 ? value / base : 0.0, name);
  return buf;
}

struct Setup {
  Identity city, district;
  KindRegistry kinds;
  sim::SimWorld world{11, kNow};
  std::unique_ptr<Random> random;
  std::unique_ptr<Node> node;  // destroyed before the world (its clock and transport)
  std::unique_ptr<Database> raw;
  uint64_t next_number = 0;

  ~Setup() {
    if (node) node->stop();
    node.reset();
  }

  // A business licence the district issued for a case accepted in its subtree.
  Bytes licence() {
    const uint64_t n = ++next_number;
    char number[48], holder[32], address[64];
    std::snprintf(number, sizeof number, "%s-L%08llu", kDistrict, static_cast<unsigned long long>(n));
    std::snprintf(holder, sizeof holder, "91440604MA%08llu", static_cast<unsigned long long>(n));
    std::snprintf(address, sizeof address, "禅城区岭南大道%llu号", static_cast<unsigned long long>(n % 2000 + 1));
    const TimeMs issued = kNow - 3600 * 1000 + static_cast<TimeMs>(n % 3600) * 1000;
    CredentialInfo c;
    c.number = number;
    c.sequence = n;
    c.kind = "business_license";
    c.holder_id = holder;
    c.holder_name = "佛山示例有限公司";
    c.issuer = kDistrict;
    c.issuer_name = district.name;
    c.item_code = "SC-0001";
    c.item_name = "企业设立登记";
    c.case_number = std::string(kDistrict) + "-" + std::to_string(n);
    c.origin = kTowns[n % 4];
    c.valid_from_ms = issued;
    c.valid_until_ms = issued + 5 * 365 * kDay;
    c.facts = {{"address", address}, {"registered_capital", "1000000 CNY"}};
    c.issued_at_ms = issued;
    return signCredential(district, c);
  }

  std::vector<Bytes> licences(size_t n) {
    std::vector<Bytes> out;
    out.reserve(n);
    for (size_t i = 0; i < n; ++i) out.push_back(licence());
    return out;
  }
};

Status setUp(Setup& s, const std::string& dir) {
  auto code = [](const char* c) { return DivisionCode::parse(c).value(); };
  auto keys = [](uint8_t b) {
    std::array<uint8_t, 32> seed{};
    seed.fill(b);
    return KeyPair::fromSeed(seed);
  };
  const TimeMs from = kNow - 30 * kDay, until = kNow + 365 * kDay;
  TB_ASSIGN_OR_RETURN(s.city, createRootIdentity(code(kCity), "佛山市", keys(1), from, until));
  TB_ASSIGN_OR_RETURN(s.district, issueChildIdentity(s.city, code(kDistrict), "禅城区", keys(2), 2, from, until));
  registerFederationKinds(s.kinds);
  registerCredentialKinds(s.kinds);

  NodeOptions o;
  o.identity = s.city;
  o.data_dir = dir + "/city";
  o.synchronous = Synchronous::kFull;
  TB_ASSIGN_OR_RETURN(o.calendar, WorkingCalendar::loadFile(std::string(TONGBAN_DATA_DIR) + "/calendar-2026.json"));
  o.catalogue_file = std::string(TONGBAN_DATA_DIR) + "/catalog.json";
  const int ep = s.world.addEndpoint(s.city.division, "city");
  s.random = std::make_unique<Random>(11);
  TB_ASSIGN_OR_RETURN(s.node, Node::open(o, NodeEnvironment{&s.world.clock(ep), &s.world.transport(ep), s.random.get(), nullptr}));
  if (!s.node->catalogue().current()) return Status(ErrorCode::kInternal, "the city has no catalogue after open");

  TB_ASSIGN_OR_RETURN(s.raw, Database::open({dir + "/raw.db", Synchronous::kFull}));
  TB_RETURN_IF_ERROR(s.raw->exec("CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB)"));
  return Status::ok();
}

void measure(Setup& s, double seconds) {
  Node& city = *s.node;
  CredentialService& credentials = city.credentials();
  Database& db = city.database();
  const TimeMs now = kNow;  // the world is never run: the city's clock stays here

  const std::vector<Bytes> verify_pool = s.licences(kVerifyPool);
  const size_t size = verify_pool.front().size();
  // Raw verify over messages of the sealed credentials' size, signed by the district's key.
  std::vector<Signature> raw_sigs;
  for (const Bytes& m : verify_pool) raw_sigs.push_back(sign(s.district.keys.secret_key, m.data(), m.size()));
  const Bytes row_blob(size, 0x5a);
  auto verifier = Verifier::create(s.city.root_certificate, &s.kinds);
  if (!verifier) {
    std::printf("  skipped: %s\n", verifier.status().toString().c_str());
    return;
  }
  const Verification first = credentials.verify(verify_pool.front(), now);
  if (first.verdict != "valid") {
    std::printf("  skipped: the city does not find the district's licence valid: %s\n", first.reason.c_str());
    return;
  }

  std::vector<double> raw_verify, raw_commit, raw_commit256, open_warm, open_cold, verify, ingest1, ingest256;
  // Ratios within a round, against the limits measured in turn with it.
  std::vector<double> open_warm_x, open_cold_x, verify_x, ingest1_xv, ingest1_xc, ingest256_xv, ingest256_xc;
  std::string failure;
  for (int round = 0; round < kRounds && failure.empty(); ++round) {
    const std::vector<Bytes> singles = s.licences(kSinglePool);
    const std::vector<Bytes> batched = s.licences(kBatchPool);
    size_t i = 0;
    auto next = [&] { return i++ % verify_pool.size(); };
    constexpr size_t kBlock = 32;
    auto rawVerify = [&]() -> size_t {
      for (size_t b = 0; b < kBlock; ++b) {
        const size_t k = next();
        if (!verifySignature(s.district.keys.public_key, verify_pool[k].data(), verify_pool[k].size(), raw_sigs[k])) {
          failure = "raw verify failed";
          return 0;
        }
      }
      return kBlock;
    };
    // Signatures: raw verify, open (chain cached and cold), CredentialService::verify.
    Op rv{rawVerify};
    Op ow{[&]() -> size_t {
      for (size_t b = 0; b < kBlock; ++b) {
        if (auto e = verifier->open(verify_pool[next()], s.city.division, now, nullptr); !e) {
          failure = "open: " + e.status().toString();
          return 0;
        }
      }
      return kBlock;
    }};
    Op oc{[&]() -> size_t {
      for (size_t b = 0; b < kBlock / 4; ++b) {
        auto fresh = Verifier::create(s.city.root_certificate, &s.kinds);
        if (!fresh || !fresh->open(verify_pool[next()], s.city.division, now, nullptr).isOk()) {
          failure = "open with a new Verifier failed";
          return 0;
        }
      }
      return kBlock / 4;
    }};
    Op v{[&]() -> size_t {
      for (size_t b = 0; b < kBlock; ++b) {
        if (Verification r = credentials.verify(verify_pool[next()], now); r.verdict != "valid") {
          failure = "verify: " + r.verdict + ": " + r.reason;
          return 0;
        }
      }
      return kBlock;
    }};
    interleave(seconds, {&rv, &ow, &oc, &v});
    // One per transaction: a raw commit, then a credential accepted and committed, in turn.
    auto rawCommit = [&](size_t rows) -> size_t {
      auto txn = s.raw->begin();
      if (!txn) return 0;
      for (size_t k = 0; k < rows; ++k) {
        auto stmt = s.raw->prepare("INSERT INTO t (v) VALUES (?1)");
        if (!stmt || !stmt->bind(1, row_blob).run().isOk()) {
          failure = "raw insert failed";
          return 0;
        }
      }
      if (Status st = txn->commit(); !st.isOk()) {
        failure = "raw commit: " + st.toString();
        return 0;
      }
      return rows;
    };
    auto ingest = [&](const std::vector<Bytes>& pool, size_t& taken, size_t n) -> size_t {
      if (taken + n > pool.size()) return 0;  // the pool ran out: stop there
      auto txn = db.begin();
      if (!txn) return 0;
      for (size_t k = taken; k < taken + n; ++k) {
        auto fresh = credentials.acceptCredential(pool[k], now);
        if (!fresh || !*fresh) {
          failure = fresh ? "a fresh credential was not stored" : fresh.status().toString();
          return 0;
        }
      }
      if (Status st = txn->commit(); !st.isOk()) {
        failure = st.toString();
        return 0;
      }
      taken += n;
      return n;
    };
    // Each ingest runs in turn with both its limits: raw verify and the raw commit of its shape.
    size_t taken1 = 0, taken256 = 0;
    Op rv1{rawVerify}, rc{[&] { return rawCommit(1); }}, i1{[&] { return ingest(singles, taken1, 1); }};
    interleave(seconds, {&rv1, &rc, &i1});
    Op rv256{rawVerify}, rc256{[&] { return rawCommit(kBatch); }}, i256{[&] { return ingest(batched, taken256, kBatch); }};
    interleave(seconds, {&rv256, &rc256, &i256});
    auto per = [](const Op& a, const Op& b) { return b.rate() > 0 ? a.rate() / b.rate() : 0; };
    raw_verify.push_back(rv.rate());
    open_warm.push_back(ow.rate());
    open_cold.push_back(oc.rate());
    verify.push_back(v.rate());
    raw_commit.push_back(rc.rate());
    ingest1.push_back(i1.rate());
    raw_commit256.push_back(rc256.rate());
    ingest256.push_back(i256.rate());
    open_warm_x.push_back(per(ow, rv));
    open_cold_x.push_back(per(oc, rv));
    verify_x.push_back(per(v, rv));
    ingest1_xv.push_back(per(i1, rv1));
    ingest1_xc.push_back(per(i1, rc));
    ingest256_xv.push_back(per(i256, rv256));
    ingest256_xc.push_back(per(i256, rc256));
  }
  if (!failure.empty()) {
    std::printf("  skipped: %s\n", failure.c_str());
    return;
  }
  const double rv = median(raw_verify), rc = median(raw_commit), rc256 = median(raw_commit256);
  char what[96];
  std::snprintf(what, sizeof what, "raw Ed25519 verify, %zu B (one core)", size);
  row(what, rv, "/s");
  std::snprintf(what, sizeof what, "raw commit, one %zu B row per transaction", size);
  row(what, rc, "/s");
  row("raw commit, 256 such rows per transaction", rc256, "rows/s", ratio(rc256, rc, "one per txn"));
  auto x = [](const std::vector<double>& ratios, const char* name) {
    char buf[96];
    std::snprintf(buf, sizeof buf, "%.2f x %s", median(ratios), name);
    return std::string(buf);
  };
  row("open a credential (Verifier::open, chain cached)", median(open_warm), "/s", x(open_warm_x, "raw verify"));
  row("... cold chain cache (new Verifier, 3 signatures)", median(open_cold), "/s", x(open_cold_x, "raw verify"));
  row("verify a credential (CredentialService::verify)", median(verify), "/s", x(verify_x, "raw verify"));
  row("ingest, one per transaction (accept + commit)", median(ingest1), "cred/s",
      x(ingest1_xv, "raw verify") + "; " + x(ingest1_xc, "raw commit"));
  row("ingest, 256 per transaction", median(ingest256), "cred/s",
      x(ingest256_xv, "raw verify") + "; " + x(ingest256_xc, "raw 256-row commit"));
  auto stored = db.prepare("SELECT count(*) FROM credentials");
  auto has_row = stored ? stored->step() : Result<bool>(stored.status());
  if (has_row && *has_row) {
    std::printf("  (the city now holds %lld credentials; ingest rounds: one/txn", static_cast<long long>(stored->columnInt64(0)));
    for (double r : ingest1) std::printf(" %.0f", r);
    std::printf(", 256/txn");
    for (double r : ingest256) std::printf(" %.0f", r);
    std::printf(" cred/s;\n   x raw verify: one/txn");
    for (double r : ingest1_xv) std::printf(" %.2f", r);
    std::printf(", 256/txn");
    for (double r : ingest256_xv) std::printf(" %.2f", r);
    std::printf(")\n");
  }
}

}  // namespace

void credentialIngest(double seconds, const std::string& dir) {
  const std::string own = dir + "/credentials";
  std::printf("credentials (a district's licences taken in at the city, SQLite WAL FULL; median of %d rounds,\n"
              "             each limit interleaved with what it is compared to)\n", kRounds);
  std::error_code ec;
  std::filesystem::create_directories(own, ec);
  {
    Setup s;
    if (Status st = setUp(s, own); !st.isOk()) {
      std::printf("  skipped: %s\n", st.toString().c_str());
    } else {
      measure(s, seconds);
    }
  }
  std::filesystem::remove_all(own, ec);
}

}  // namespace tongban::bench
