#include "simulations/scenarios/tree_scenario.h"

#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <set>

#include "federation/trust/certificate.h"
#include "node/app/node.h"
#include "simulations/world/sim_world.h"

namespace tongban::sim {

namespace {

// 2026-11-23 09:00 China Standard Time: the simulated network opens for business.
constexpr TimeMs kSimulationStartMs = 1795395600000LL;
constexpr DurationMs kMinute = 60 * 1000;

// A valid resident ID number (GB 11643) for simulated applicant `n`: the check character is
// computed, so the service hall's validation passes.
std::string residentId(uint64_t n) {
  char body[18];
  std::snprintf(body, sizeof body, "44060419900101%03u", static_cast<unsigned>(n % 1000));
  static const int kWeights[17] = {7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2};
  int sum = 0;
  for (int i = 0; i < 17; ++i) sum += (body[i] - '0') * kWeights[i];
  static const char kCheck[] = "10X98765432";
  return std::string(body, 17) + kCheck[sum % 11];
}

std::array<uint8_t, 32> keySeed(Random& random) {
  std::array<uint8_t, 32> seed{};
  for (size_t i = 0; i < seed.size(); i += 8) {
    uint64_t v = random.next();
    for (size_t j = 0; j < 8; ++j) seed[i + j] = static_cast<uint8_t>(v >> (8 * j));
  }
  return seed;
}

struct SimNode {
  DivisionInfo info;
  Identity identity;
  int endpoint = -1;
  std::unique_ptr<Random> random;
  std::unique_ptr<Node> node;
  std::string data_dir;
  std::map<std::string, Figures> children_answer;  // roll-up check scratch: child → its figures here
};

// Records what nodes enqueue and apply, and checks safety as it happens.
class Checker : public SyncObserver {
 public:
  Checker(SimWorld& world, TreeScenarioResult& result) : world_(world), result_(result) {}

  void onEnqueued(const DivisionCode& origin, uint64_t seq, MessageKind kind) override {
    enqueued_.insert({origin.str(), seq});
    world_.trace("enqueue " + origin.str() + " " + std::to_string(seq) + " kind " + std::to_string(kind));
  }

  void onApplied(const DivisionCode& receiver, const DivisionCode& origin, uint64_t seq, MessageKind kind) override {
    world_.trace("apply " + receiver.str() + " <- " + origin.str() + " " + std::to_string(seq));
    // Everything goes to the parent, except the steps of forwarded cases and renewed credentials
    // on their way to the hall that accepted the case, which go down.
    const bool down = kind == kCaseRelayDownKind || kind == kCredentialDownKind;
    if (down ? !origin.isParentOf(receiver) : !receiver.isParentOf(origin)) {
      violation("message " + origin.str() + "#" + std::to_string(seq) + " (kind " + std::to_string(kind) +
                ") applied at " + receiver.str() + ", which is not its " + (down ? "child" : "parent"));
    }
    if (++applied_[{origin.str(), seq}] > 1) {
      violation("message " + origin.str() + "#" + std::to_string(seq) + " applied " +
                std::to_string(applied_[{origin.str(), seq}]) + " times at " + receiver.str());
    }
  }

  void onAcknowledged(const DivisionCode& origin, uint64_t seq, const std::string& outcome) override {
    if (outcome == "duplicate") ++result_.duplicates_acknowledged;
    // A relay of what a revoked key signed (the lost laptop's documents, which the relaying
    // node took before the revocation reached it) is refused for good by a parent that holds
    // the revocation: the one refusal the scenario expects. Any other refusal stays unapplied.
    if (outcome == "REVOKED" && refused_.insert({origin.str(), seq}).second) ++result_.relays_refused_revoked;
  }

  void violation(const std::string& what) {
    result_.violations.push_back("t=+" + std::to_string((world_.now() - kSimulationStartMs) / 1000) + "s: " + what);
  }

  // Liveness: every enqueued message applied exactly once.
  std::vector<std::string> unapplied() const {
    std::vector<std::string> missing;
    for (const auto& key : enqueued_) {
      auto it = applied_.find(key);
      if (it == applied_.end() && !refused_.count(key)) missing.push_back(key.first + "#" + std::to_string(key.second));
    }
    return missing;
  }

  uint64_t enqueuedCount() const { return enqueued_.size(); }
  uint64_t appliedCount() const { return applied_.size(); }

 private:
  SimWorld& world_;
  TreeScenarioResult& result_;
  std::set<std::pair<std::string, uint64_t>> enqueued_;
  std::map<std::pair<std::string, uint64_t>, int> applied_;
  std::set<std::pair<std::string, uint64_t>> refused_;  // acknowledged REVOKED (see onAcknowledged)
};

class Scenario {
 public:
  explicit Scenario(const TreeScenarioOptions& options)
      : options_(options), world_(options.seed, kSimulationStartMs), checker_(world_, result_) {}

  TreeScenarioResult run() {
    if (!options_.calendar_file.empty()) {
      auto calendar = WorkingCalendar::loadFile(options_.calendar_file);
      if (!calendar) {
        result_.violations.push_back("setting up: " + calendar.status().toString());
        return finish();
      }
      calendar_ = std::move(calendar).value();
    }
    if (auto st = buildNodes(); !st.isOk()) {
      result_.violations.push_back("setting up: " + st.toString());
      return finish();
    }
    const TimeMs heal_at = kSimulationStartMs + options_.fault_phase_ms;
    if (options_.inject_faults) {
      world_.faults() = NetworkFaults{0.05, 0.05, 1, 300};
      scheduleFaults(heal_at);
    }
    if (options_.workload_interval_ms > 0 && !options_.catalogue_file.empty()) scheduleWorkload(heal_at);
    const bool lookups = options_.workload_interval_ms > 0 && !options_.catalogue_file.empty();  // lookups
    if (lookups) {
      lookup_random_ = Random(options_.seed ^ 0x6c6f6f6b7570ULL);
      scheduleLookups(heal_at);
      credential_random_ = Random(options_.seed ^ 0x63726564ULL);
      scheduleCredentialActions(heal_at);
    }
    runTo(heal_at);
    heal();
    if (options_.workload_interval_ms > 0 && !options_.catalogue_file.empty()) {  // forwarded cases
      drain_random_ = Random(options_.seed ^ 0x647261696eULL);
      drainForwardedCases(heal_at + options_.heal_bound_ms);
    }
    awaitConvergence(heal_at);
    if (lookups) checkVerdicts();  // credentials: over the whole run
    if (lookups && result_.converged_after_heal_ms >= 0) checkLookupsAfterHeal();  // lookups
    return finish();
  }

 private:
  Status buildNodes() {
    Random keys(world_.random().fork());
    const auto& divisions = options_.topology.divisions();
    const TimeMs valid_from = kSimulationStartMs - 24 * 3600 * 1000;
    const TimeMs valid_until = kSimulationStartMs + 365LL * 24 * 3600 * 1000;
    std::map<std::string, const Identity*> by_code;
    for (const auto& d : divisions) {
      auto sim_node = std::make_unique<SimNode>();
      sim_node->info = d;
      KeyPair pair = KeyPair::fromSeed(keySeed(keys));
      Result<Identity> identity =
          d.code.level() == Level::kCity
              ? createRootIdentity(d.code, d.name, pair, valid_from, valid_until)
              : issueChildIdentity(*by_code.at(d.code.parent()->str()), d.code, d.name, pair, nodes_.size() + 1,
                                   valid_from, valid_until);
      if (!identity) return identity.status().withContext("identity of " + d.code.str());
      sim_node->identity = std::move(identity).value();
      sim_node->endpoint = world_.addEndpoint(d.code, d.code.str());
      sim_node->random = std::make_unique<Random>(world_.random().fork());
      sim_node->data_dir = options_.work_dir + "/" + d.code.str();
      std::filesystem::remove_all(sim_node->data_dir);
      nodes_.push_back(std::move(sim_node));
      by_code[d.code.str()] = &nodes_.back()->identity;
    }
    for (auto& n : nodes_) TB_RETURN_IF_ERROR(startNode(*n));
    return Status::ok();
  }

  Status startNode(SimNode& n) {
    NodeOptions options;
    options.identity = n.identity;
    options.data_dir = n.data_dir;
    // The simulated "crash" never loses the OS page cache, so fsync buys nothing here; the
    // durability of acknowledged writes is the daemon's FULL setting (docs/operations.md).
    options.synchronous = Synchronous::kOff;
    options.limits.heartbeat_interval_ms = 30 * 1000;
    options.limits.request_timeout_ms = 2000;
    options.limits.retry_initial_ms = 200;
    options.limits.retry_max_ms = 20 * 1000;
    options.calendar = calendar_;
    options.catalogue_poll_ms = 60 * 1000;
    // Snapshots of changed days every virtual minute (the daemon's default is 30 s).
    options.supervision.snapshot_interval_ms = 60 * 1000;
    options.feed.poll_interval_ms = 30 * 1000;
    if (n.info.code.level() == Level::kCity) options.catalogue_file = options_.catalogue_file;
    // Its children, so its completeness watermark waits for every one (lookups).
    for (const auto& m : nodes_) {
      if (n.info.code.isParentOf(m->info.code)) options.expected_children.push_back(m->info.code);
    }
    NodeEnvironment env{&world_.clock(n.endpoint), &world_.transport(n.endpoint), n.random.get(), &checker_};
    auto node = Node::open(options, env);
    if (!node) return node.status().withContext("starting node " + n.info.code.str());
    n.node = std::move(node).value();
    return Status::ok();
  }

  void crash(SimNode& n) {
    if (!n.node) return;
    ++result_.crashes;
    world_.crash(n.endpoint);
    n.node.reset();  // the process is gone; its files stay
  }

  void restart(SimNode& n) {
    if (n.node) return;
    world_.restart(n.endpoint);
    if (auto st = startNode(n); !st.isOk()) checker_.violation("restart failed: " + st.toString());
  }

  void scheduleFaults(TimeMs heal_at) {
    Random& r = world_.random();
    // Fault events at random times through the fault phase; each is undone by itself later,
    // and heal() undoes whatever is still in force.
    TimeMs t = kSimulationStartMs + r.between(kMinute / 2, 3 * kMinute);
    while (t < heal_at) {
      const size_t victim = 1 + r.below(nodes_.size() - 1);  // never the city's own uplink (it has none)
      const DurationMs length = r.between(10 * 1000, 12 * kMinute);
      if (r.chance(0.6)) {
        const DivisionCode link = nodes_[victim]->info.code;
        world_.at(t, [this, link] {
          ++result_.partitions;
          world_.setLinkUp(link, false);
        });
        world_.at(std::min(t + length, heal_at), [this, link] { world_.setLinkUp(link, true); });
      } else {
        const size_t crashed = r.below(nodes_.size());  // the city may crash too
        world_.at(t, [this, crashed] { crash(*nodes_[crashed]); });
        world_.at(std::min(t + length / 3, heal_at), [this, crashed] { restart(*nodes_[crashed]); });
      }
      t += r.between(20 * 1000, 4 * kMinute);
    }
  }

  // The hall's daily work, as world events: an application at a random hall, a step on a
  // random open case, and once, a new catalogue version from the city.
  void scheduleWorkload(TimeMs until) {
    Random& r = world_.random();
    for (TimeMs t = kSimulationStartMs + options_.workload_interval_ms; t < until; t += options_.workload_interval_ms) {
      const size_t at = r.below(nodes_.size());
      const uint64_t pick = r.next();
      world_.at(t, [this, at, pick] { submitCase(*nodes_[at], pick); });
      const size_t mover = r.below(nodes_.size());
      const uint64_t which = r.next();
      world_.at(t + options_.workload_interval_ms / 2, [this, mover, which] { advanceSomeCase(mover, which); });
    }
    world_.at(kSimulationStartMs + (until - kSimulationStartMs) / 2, [this] { publishNewCatalogue(); });
  }

  void submitCase(SimNode& n, uint64_t pick) {
    if (!n.node) return;  // crashed: the hall is closed
    const Catalogue* catalogue = n.node->catalogue().current();
    if (!catalogue) return;  // not received yet
    std::vector<const CatalogueItem*> acceptable;
    for (const auto& item : catalogue->items) {
      if (item.acceptableAt(n.info.code.level())) acceptable.push_back(&item);
    }
    if (acceptable.empty()) return;
    const CatalogueItem& item = *acceptable[pick % acceptable.size()];
    IntakeRequest request{item.code, residentId(pick >> 8), "申请人", "13800000000", {}, "", {}};
    const TimeMs now = world_.now();
    for (const auto& kind : item.materials) {
      // Now and then a material is missing: the application is refused with its notice.
      if ((pick >> 20) % 7 == 0) continue;
      auto record = n.node->materials().put(toBytes(kind + " of " + request.applicant_id), kind,
                                            request.applicant_id, "image/jpeg", "clerk", now);
      if (!record) {
        checker_.violation("material upload at " + n.info.code.str() + " failed: " + record.status().toString());
        return;
      }
      request.materials.push_back({kind, record->hash});
    }
    auto c = n.node->cases().submit(request, everyone_, now);
    if (!c) {
      checker_.violation("intake at " + n.info.code.str() + " failed: " + c.status().toString());
      return;
    }
    ++result_.cases_submitted;
    world_.trace("case " + c->number + " " + caseStateName(c->state));
  }

  // Staff work where there is work: from a random hall on, the first one holding a case it can
  // move (most villages only ever hold concluded immediate cases or cases waiting to go up).
  void advanceSomeCase(size_t start, uint64_t which) {
    for (size_t i = 0; i < nodes_.size(); ++i) {
      if (advanceCase(*nodes_[(start + i) % nodes_.size()], which)) return;
    }
  }

  // Returns false if the hall is closed or holds nothing it can move.
  bool advanceCase(SimNode& n, uint64_t which) {
    if (!n.node) return false;
    if ((which >> 24) % 4 == 0) {
      citizenFeedback(n, which);
      return true;
    }
    auto open = n.node->cases().list("", "", 50, world_.now());
    if (!open) return false;
    std::vector<const CaseRecord*> movable;
    for (const auto& c : *open) {
      if (c.state == CaseState::kRefused || c.state == CaseState::kConcluded) continue;
      if (c.forwarded) continue;  // worked where it is decided; this hall only mirrors it
      auto decide = parseLevel(c.decided_at);
      const bool decidable_here = decide && n.info.code.level() <= *decide;
      if (decidable_here || c.state == CaseState::kSupplement) movable.push_back(&c);
    }
    if (movable.empty()) return false;
    const CaseRecord& c = *movable[which % movable.size()];
    StepRequest step;
    switch (c.state) {
      case CaseState::kAccepted: step.step = (which >> 12) % 5 == 0 ? "supplement" : "undertake"; break;
      case CaseState::kSupplement: step.step = "resume"; break;
      case CaseState::kUndertaken: step.step = "review"; break;
      case CaseState::kReviewed: step.step = (which >> 12) % 6 == 0 ? "deny" : "approve"; break;
      default: step.step = "conclude"; break;
    }
    if (step.step == "review" && c.kind == ItemKind::kJoint) {
      const CatalogueItem* item = n.node->catalogue().current()->find(c.item_code);
      if (!item) return false;
      for (const auto& dep : item->joint_departments) {
        bool done = false;
        for (const auto& r : c.reviews) done = done || r.first == dep;
        if (!done) {
          step.department = dep;
          break;
        }
      }
      step.decision = "approve";
    }
    auto moved = n.node->cases().step(c.number, step, everyone_, world_.now());
    if (moved) {
      ++result_.case_steps_taken;
      world_.trace("step " + c.number + " " + step.step);
    } else if (moved.status().code() != ErrorCode::kFailedPrecondition) {
      // FailedPrecondition can still happen (a joint review by a department that already
      // reviewed); anything else is a bug.
      checker_.violation("step " + step.step + " on " + c.number + " failed: " + moved.status().toString());
    }
    return true;
  }

  // Citizens evaluate concluded cases and now and then complain (supervision counts both).
  void citizenFeedback(SimNode& n, uint64_t which) {
    auto concluded = n.node->cases().list("concluded", "", 50, world_.now());
    if (!concluded || concluded->empty()) return;
    const CaseRecord& c = (*concluded)[(which >> 32) % concluded->size()];
    if ((which >> 40) % 3 == 0) {
      auto st = n.node->cases().complain(c.number, "", "slow service", world_.now());
      if (!st.isOk()) checker_.violation("complaint at " + n.info.code.str() + " failed: " + st.toString());
      return;
    }
    if (!c.evaluation.empty()) return;
    static const char* kGrades[] = {"satisfied", "satisfied", "basically_satisfied", "unsatisfied"};
    auto done = n.node->cases().evaluate(c.number, kGrades[(which >> 44) % 4], world_.now());
    if (!done) checker_.violation("evaluation at " + n.info.code.str() + " failed: " + done.status().toString());
  }

  void publishNewCatalogue() {
    SimNode& city = *nodes_.front();
    if (!city.node || !city.node->catalogue().current()) return;
    Catalogue next = *city.node->catalogue().current();
    // The city shortens a committed time limit: 承诺时限 tightened by one working day.
    for (auto& item : next.items) {
      if (item.kind == ItemKind::kCommitted && item.committed_days > 1) {
        --item.committed_days;
        break;
      }
    }
    auto version = city.node->catalogue().publish(city.identity, next, world_.now());
    if (!version) checker_.violation("publishing a catalogue failed: " + version.status().toString());
    world_.trace("catalogue published");
  }

  Result<uint64_t> countRows(Node& node, const std::string& sql) {
    TB_ASSIGN_OR_RETURN(auto stmt, node.database().prepare(sql));
    TB_ASSIGN_OR_RETURN(bool row, stmt.step());
    return row ? static_cast<uint64_t>(stmt.columnInt64(0)) : 0;
  }

  // Every node holds exactly the case events its strict descendants recorded (drill-down
  // consistency), and every node holds the city's catalogue version.
  bool hallConverged(bool report) {
    if (options_.catalogue_file.empty()) return true;
    bool ok = true;
    const uint64_t latest = nodes_.front()->node->catalogue().version();
    std::map<std::string, uint64_t> own_steps;
    for (auto& n : nodes_) {
      if (n->node->catalogue().version() != latest) {
        ok = false;
        if (report) {
          checker_.violation(n->info.code.str() + " holds catalogue version " +
                             std::to_string(n->node->catalogue().version()) + ", the city " + std::to_string(latest));
        }
      }
      auto steps = countRows(*n->node, "SELECT COUNT(*) FROM case_steps");
      own_steps[n->info.code.str()] = steps ? *steps : 0;
    }
    for (auto& n : nodes_) {
      uint64_t expected = 0;
      for (const auto& [code, count] : own_steps) {
        if (n->info.code.isAncestorOf(DivisionCode::parse(code).value())) expected += count;
      }
      auto held = n->node->subtreeEventCount();
      if (!held || *held != expected) {
        ok = false;
        if (report) {
          checker_.violation(n->info.code.str() + " holds " + std::to_string(held ? *held : 0) +
                             " case events of its subtree; its descendants recorded " + std::to_string(expected));
        }
      }
    }
    if (ok) {
      result_.catalogue_version = latest;
      auto at_city = nodes_.front()->node->subtreeEventCount();
      result_.case_events_at_city = at_city ? *at_city : 0;
    }
    return ok;
  }

  // The roll-up invariants (tree_scenario.h). Quiet unless `report`.
  bool rollupConsistent(bool report) {
    const CivilDate from{2000, 1, 1}, to{2099, 12, 31};
    bool ok = true;
    auto fail = [&](const std::string& what) {
      ok = false;
      if (report) checker_.violation(what);
    };
    // Truth: each node's own figures from its own tables, and its own snapshot versions.
    std::map<std::string, Figures> own;
    std::map<std::string, std::map<std::string, uint64_t>> own_versions;  // origin → day → version
    for (auto& n : nodes_) {
      const std::string code = n->info.code.str();
      auto dirty = n->node->supervision().dirtyDays();
      if (!dirty || *dirty != 0) {
        fail(code + " has " + std::to_string(dirty ? *dirty : 0) + " supervision days not yet sent");
        if (!report) return false;
      }
      auto totals = n->node->supervision().ownTotals(from, to);
      if (!totals) return false;
      own[code] = *totals;
      auto stmt = n->node->database().prepare("SELECT day, version FROM supervision_snapshots WHERE origin = ?1");
      if (!stmt) return false;
      stmt->bind(1, code);
      while (true) {
        auto row = stmt->step();
        if (!row || !*row) break;
        own_versions[code][stmt->columnText(0)] = static_cast<uint64_t>(stmt->columnInt64(1));
      }
    }
    std::map<std::string, Figures> subtree_answer;
    for (auto& n : nodes_) {
      const DivisionCode& self = n->info.code;
      auto summary = n->node->supervision().summary(self, from, to, world_.now());
      if (!summary) {
        fail(self.str() + " cannot answer for its subtree: " + summary.status().toString());
        continue;
      }
      subtree_answer[self.str()] = summary->totals;
      Figures expected;
      for (const auto& [code, f] : own) {
        if (self.covers(DivisionCode::parse(code).value())) expected += f;
      }
      if (summary->totals != expected) {
        std::string diff;
        for (const auto& field : figureFields()) {
          if (summary->totals.*field.member != expected.*field.member) {
            diff += std::string(" ") + field.name + " " + std::to_string(summary->totals.*field.member) + " vs " +
                    std::to_string(expected.*field.member);
          }
        }
        fail(self.str() + "'s subtree totals differ from the sum of its nodes' own figures:" + diff);
        if (!report) return false;
      }
      // No (origin, day) held at another version than the origin's latest (none twice: the
      // table's key is (origin, day), and the totals above would show a stale or extra one).
      for (const auto& [origin, days] : own_versions) {
        if (!self.isAncestorOf(DivisionCode::parse(origin).value())) continue;
        for (const auto& [day, version] : days) {
          auto held = n->node->supervision().versionOf(origin, day);
          if (!held || *held != version) {
            fail(self.str() + " holds version " + std::to_string(held ? *held : 0) + " of " + origin + "/" + day +
                 ", the origin is at " + std::to_string(version));
            if (!report) return false;
          }
        }
      }
      n->children_answer.clear();
      for (const auto& c : summary->children) n->children_answer[c.division] = c.totals;
    }
    // Drill-down: every node's per-child figures are that child's own answer for its subtree.
    for (auto& n : nodes_) {
      for (const auto& [child, totals] : n->children_answer) {
        auto it = subtree_answer.find(child);
        if (it == subtree_answer.end() || it->second != totals) {
          fail(n->info.code.str() + "'s figures for child " + child + " differ from the child's own answer");
          if (!report) return false;
        }
      }
    }
    if (ok) {
      auto held = countRows(*nodes_.front()->node, "SELECT COUNT(*) FROM supervision_snapshots");
      result_.snapshots_at_city = held ? *held : 0;
    }
    return ok;
  }

  void runTo(TimeMs until) {
    const DurationMs step = 10 * kMinute;
    for (TimeMs t = std::min(until, world_.now() + step);; t = std::min(until, t + step)) {
      if (auto st = world_.runUntil(t); !st.isOk()) {
        checker_.violation("simulation stopped: " + st.toString());
        return;
      }
      if (options_.progress) {
        options_.progress("seed " + std::to_string(options_.seed) + ": t=+" +
                          std::to_string((t - kSimulationStartMs) / kMinute) + "min, " +
                          std::to_string(checker_.appliedCount()) + "/" + std::to_string(checker_.enqueuedCount()) +
                          " messages applied, " + std::to_string(result_.crashes) + " crashes, " +
                          std::to_string(result_.partitions) + " partitions");
      }
      if (t >= until) return;
    }
  }

  void heal() {
    world_.trace("heal");
    world_.faults() = NetworkFaults{0.0, 0.0, 1, 20};
    world_.healAll();
    for (auto& n : nodes_) restart(*n);
  }

  bool converged() {
    if (!checker_.unapplied().empty()) return false;
    for (auto& n : nodes_) {
      auto depth = n->node->outboxDepth();
      auto joined = n->node->joined();
      if (!depth || *depth != 0 || !joined || !*joined) return false;
    }
    return hallConverged(/*report=*/false) && rollupConsistent(/*report=*/false) &&
           forwardingConsistent(/*report=*/false) && credentialsConsistent(/*report=*/false);
  }

  // --- credentials (issue #6) ---
  // The workload, every workload interval at a random live node: it revokes, suspends or
  // reinstates a credential it covers, or (its issuer) renews one — a forwarded case's first when
  // there is one, so the renewal travels down to the accepting hall — or suspends one as an
  // ancestor while its issuer renews it at the same instant. Then a random live node verifies a
  // few credentials (any version any node holds) and the verdicts are recorded.
  // Once per run a village's spare laptop is lost: its parent revokes the laptop's certified key
  // from that moment, a thief uses the key (a forged credential and a forged suspension, handed
  // to the village's parent as its child would relay them) before the revocation is published at
  // a random node and once after, so some nodes store what the thief signed before the revocation
  // reaches them and others refuse it.
  // Safety (checkVerdicts): no node gave "valid" for a credential after it held a revocation of
  // it, from the scenario's own ledger of when each node stored each revocation.
  void scheduleCredentialActions(TimeMs until) {
    for (TimeMs t = kSimulationStartMs + options_.workload_interval_ms * 3 / 4; t < until;
         t += options_.workload_interval_ms) {
      world_.at(t, [this] { credentialAction(); });
    }
    const TimeMs lost_at = kSimulationStartMs + (until - kSimulationStartMs) * 2 / 5;
    world_.at(lost_at, [this] { loseSpareKey(); });
    world_.at(lost_at + 30 * 1000, [this] { thiefActs(); });
    world_.at(lost_at + 150 * 1000, [this] { thiefActs(); });  // after the publication: taken or not
    world_.at(lost_at + 2 * kMinute, [this] { publishSpareKeyRevocation(); });
  }

  std::vector<SimNode*> liveNodes() {
    std::vector<SimNode*> live;
    for (auto& n : nodes_) {
      if (n->node) live.push_back(n.get());
    }
    return live;
  }

  SimNode* nodeOf(const DivisionCode& code) {
    for (auto& n : nodes_) {
      if (n->info.code == code) return n.get();
    }
    return nullptr;
  }

  struct HeldCredential {
    std::string number, status, issuer, origin;
  };

  std::vector<HeldCredential> heldCredentials(SimNode& n) {
    std::vector<HeldCredential> held;
    auto stmt = n.node->database().prepare(
        "SELECT c.number, COALESCE(s.status, ''), c.issuer, c.origin FROM credentials c"
        " LEFT JOIN credential_status s ON s.number = c.number ORDER BY c.number");
    while (stmt) {
      auto row = stmt->step();
      if (!row || !*row) break;
      held.push_back({stmt->columnText(0), stmt->columnText(1), stmt->columnText(2), stmt->columnText(3)});
    }
    return held;
  }

  void credentialAction() {
    std::vector<SimNode*> live = liveNodes();
    if (live.empty()) return;
    SimNode& n = *live[credential_random_.below(live.size())];
    const uint64_t kind = credential_random_.below(8);
    if (kind < 2) {
      renewSome(n);
    } else if (kind == 2) {
      suspendWhileRenewing(n);
    } else {
      changeSomeStatus(n);
    }
    sampleVerdicts(*live[credential_random_.below(live.size())]);
  }

  void changeSomeStatus(SimNode& n) {
    std::vector<HeldCredential> held;
    for (auto& h : heldCredentials(n)) {
      auto issuer = DivisionCode::parse(h.issuer);
      if (issuer && n.info.code.covers(*issuer)) held.push_back(std::move(h));
    }
    if (held.empty()) return;
    const HeldCredential& h = held[credential_random_.below(held.size())];
    const uint64_t dice = credential_random_.below(6);
    const std::string next = h.status == "revoked"     ? ""
                             : h.status == "suspended" ? (dice < 3 ? "active" : "revoked")
                             : (dice < 2 ? "revoked" : dice < 4 ? "suspended" : "");
    if (!next.empty()) setCredentialStatus(n, h.number, next);
  }

  bool setCredentialStatus(SimNode& n, const std::string& number, const std::string& next) {
    auto changed = n.node->credentials().setStatus(number, next, "simulated " + next, world_.now());
    if (!changed) {
      checker_.violation("setting " + number + " " + next + " at " + n.info.code.str() + " failed: " +
                         changed.status().toString());
      return false;
    }
    ++result_.credential_status_changes;
    world_.trace("credential " + number + " " + next + " at " + n.info.code.str());
    return true;
  }

  // The issuer renews one of its credentials (not revoked): a forwarded case's when it has one,
  // half of the time.
  void renewSome(SimNode& n) {
    std::vector<HeldCredential> own, forwarded;
    for (auto& h : heldCredentials(n)) {
      if (h.issuer != n.info.code.str() || h.status == "revoked") continue;
      (h.origin != h.issuer ? forwarded : own).push_back(h);
    }
    const bool pick_forwarded = !forwarded.empty() && (own.empty() || credential_random_.below(2) == 0);
    const auto& pool = pick_forwarded ? forwarded : own;
    if (pool.empty()) return;
    renew(n, pool[credential_random_.below(pool.size())].number);
  }

  bool renew(SimNode& n, const std::string& number) {
    auto renewed = n.node->credentials().renew(number, std::nullopt, {}, world_.now());
    if (!renewed) {
      // The issuer may know of a revocation the node that picked the credential does not.
      if (renewed.status().code() != ErrorCode::kFailedPrecondition) {
        checker_.violation("renewing " + number + " at " + n.info.code.str() + " failed: " + renewed.status().toString());
      }
      world_.trace("credential " + number + " not renewed at " + n.info.code.str());
      return false;
    }
    ++result_.credential_renewals;
    world_.trace("credential " + number + " renewed at " + n.info.code.str());
    return true;
  }

  // `n` suspends a credential issued by a strict descendant of it that is running, and that
  // issuer renews it at the same instant: the two must converge to "suspended, new version".
  // Only credentials the issuer holds: what the thief signed with the lost key names the village
  // as its issuer, but the village never had it and cannot renew it.
  void suspendWhileRenewing(SimNode& n) {
    std::vector<std::pair<std::string, SimNode*>> candidates;
    for (const auto& h : heldCredentials(n)) {
      auto issuer = DivisionCode::parse(h.issuer);
      if (!issuer || !n.info.code.isAncestorOf(*issuer) || (!h.status.empty() && h.status != "active")) continue;
      SimNode* at_issuer = nodeOf(*issuer);
      if (!at_issuer || !at_issuer->node) continue;
      auto held = at_issuer->node->credentials().listByNumber(h.number);
      if (held && held->has_value()) candidates.emplace_back(h.number, at_issuer);
    }
    if (candidates.empty()) return;
    const auto& [number, issuer] = candidates[credential_random_.below(candidates.size())];
    if (!setCredentialStatus(n, number, "suspended")) return;
    if (renew(*issuer, number)) ++result_.concurrent_renewals;
  }

  // --- the verdict ledger ---
  struct Verdict {
    std::string node, number, verdict;
    uint32_t version = 0;
    TimeMs at_ms = 0;
    bool held_revocation_then = false;  // the node's records held a revocation at that moment
  };

  // A random live node verifies up to four documents (any version) held by a random live node.
  void sampleVerdicts(SimNode& verifier) {
    recordRevocationsHeld();
    std::vector<SimNode*> live = liveNodes();
    SimNode& holder = *live[credential_random_.below(live.size())];
    std::vector<Bytes> copies;
    auto stmt = holder.node->database().prepare("SELECT sealed FROM credential_versions ORDER BY number, version");
    while (stmt) {
      auto row = stmt->step();
      if (!row || !*row) break;
      copies.push_back(stmt->columnBlob(0));
    }
    for (int i = 0; i < 4 && !copies.empty(); ++i) {
      const Bytes& sealed = copies[credential_random_.below(copies.size())];
      Verification v = verifier.node->credentials().verify(sealed, world_.now());
      if (!v.credential) continue;
      ++result_.revoked_checks;
      verdicts_.push_back({verifier.info.code.str(), v.credential->number, v.verdict, v.credential->version,
                           world_.now(), holdsRevocation(verifier, v.credential->number)});
    }
  }

  bool holdsRevocation(SimNode& n, const std::string& number) {
    auto stmt = n.node->database().prepare(
        "SELECT COUNT(*) FROM credential_status_records WHERE number = ?1 AND status = 'revoked'");
    if (!stmt) return false;
    stmt->bind(1, number);
    auto row = stmt->step();
    return row && *row && stmt->columnInt64(0) > 0;
  }

  // When each live node first stored a revocation of each number (its own record of it, which
  // survives crashes), kept by the scenario even if the node later drops the record.
  void recordRevocationsHeld() {
    for (SimNode* n : liveNodes()) {
      auto stmt = n->node->database().prepare(
          "SELECT number, MIN(received_ms) FROM credential_status_records WHERE status = 'revoked' GROUP BY number");
      while (stmt) {
        auto row = stmt->step();
        if (!row || !*row) break;
        auto [it, added] = revocation_held_since_[n->info.code.str()].try_emplace(stmt->columnText(0), stmt->columnInt64(1));
        if (!added) it->second = std::min<TimeMs>(it->second, stmt->columnInt64(1));
      }
    }
  }

  // The safety invariant: no node gave "valid" for a credential once it held a revocation of it
  // — checked against the ledger (a verdict given before the ledger learnt of a revocation the
  // node had already stored is caught too), and at the moment of the verdict.
  void checkVerdicts() {
    recordRevocationsHeld();
    for (const auto& v : verdicts_) {
      if (v.verdict != "valid") continue;
      auto node = revocation_held_since_.find(v.node);
      const bool held_before = node != revocation_held_since_.end() && node->second.count(v.number) &&
                               node->second.at(v.number) < v.at_ms;
      if (held_before || v.held_revocation_then) {
        checker_.violation(v.node + " reported version " + std::to_string(v.version) + " of " + v.number +
                           " valid at t=+" + std::to_string((v.at_ms - kSimulationStartMs) / 1000) +
                           "s although it held a revocation of it since t=+" +
                           std::to_string(held_before ? (node->second.at(v.number) - kSimulationStartMs) / 1000 : 0) + "s");
      }
    }
  }

  // --- the lost laptop ---
  // A village's second certified key (a spare laptop the hall had), lost now: revoked from now on
  // by the village's parent. The key is made from the scenario's credential randomness.
  void loseSpareKey() {
    std::vector<SimNode*> villages;
    for (auto& n : nodes_) {
      if (n->info.code.level() == Level::kVillage) villages.push_back(n.get());
    }
    if (villages.empty()) return;
    SimNode& village = *villages[credential_random_.below(villages.size())];
    SimNode* parent = nodeOf(*village.info.code.parent());
    if (!parent) return;
    auto spare = issueChildIdentity(parent->identity, village.info.code, village.info.name + " (spare laptop)",
                                    KeyPair::fromSeed(keySeed(credential_random_)), 9000, kSimulationStartMs - 1000,
                                    kSimulationStartMs + 365LL * 24 * 3600 * 1000);
    if (!spare) {
      checker_.violation("issuing the spare laptop's identity: " + spare.status().toString());
      return;
    }
    auto revocation = signKeyRevocation(parent->identity, village.info.code, spare->keys.public_key, world_.now(),
                                        "spare laptop lost");
    if (!revocation) {
      checker_.violation("signing the key revocation: " + revocation.status().toString());
      return;
    }
    spare_ = std::move(spare).value();
    spare_revocation_ = std::move(revocation).value();
    world_.trace("spare key of " + village.info.code.str() + " lost");
  }

  // The thief signs with the lost key and hands the documents to the village's parent as the
  // village would relay them up (what a stolen laptop on the hall's network does). A parent that
  // already holds the revocation refuses them.
  void thiefActs() {
    if (!spare_) return;
    const DivisionCode& village = spare_->division;
    SimNode* parent = nodeOf(*village.parent());
    if (!parent || !parent->node || !parent->node->catalogue().current()) return;
    const Catalogue& cat = *parent->node->catalogue().current();
    const CatalogueItem* item = nullptr;
    for (const auto& i : cat.items) {
      if (!i.issues.empty() && i.decide_level == Level::kVillage) item = item ? item : &i;
    }
    const TimeMs now = world_.now();
    if (item) {
      CredentialInfo forged;
      forged.number = village.str() + "-L" + std::to_string(90000000 + thief_documents_.size());
      forged.kind = item->issues;
      forged.holder_id = residentId(credential_random_.below(1000));
      forged.holder_name = "冒名";
      forged.issuer = village.str();
      forged.issuer_name = spare_->name;
      forged.item_code = item->code;
      forged.item_name = item->name;
      forged.case_number = village.str() + "-99999999";
      forged.origin = village.str();
      forged.valid_from_ms = now;
      forged.valid_until_ms = now + 90LL * 24 * 3600 * 1000;
      forged.issued_at_ms = now;
      forged.catalogue_version = cat.version;
      injectAsRelayedBy(*parent, kCredentialUpKind, signCredential(*spare_, forged));
    }
    // A forged suspension of a credential the village issued, when the parent holds one.
    for (const auto& h : heldCredentials(*parent)) {
      if (h.issuer != village.str()) continue;
      CredentialStatusInfo s{h.number, "suspended", 999, now, village.str(), spare_->name, "forged by the thief"};
      injectAsRelayedBy(*parent, kCredentialStatusUpKind, signCredentialStatus(*spare_, s, 1));
      break;
    }
  }

  void injectAsRelayedBy(SimNode& parent, MessageKind up_kind, Bytes document) {
    thief_documents_.push_back(document);
    OpenedEnvelope relayed{spare_->division, up_kind, 0, world_.now(), parent.info.code, document, 0,
                           spare_->keys.public_key, {}};
    auto txn = parent.node->database().begin();
    if (!txn) return;
    Status st = parent.node->credentials().applyFromChild(relayed, world_.now());
    if (st.isOk()) st = txn->commit();
    world_.trace("thief's document at " + parent.info.code.str() + ": " + (st.isOk() ? "taken" : errorCodeName(st.code())));
    if (st.isOk()) ++result_.forged_documents_taken;
  }

  void publishSpareKeyRevocation() {
    if (!spare_) return;
    std::vector<SimNode*> live = liveNodes();
    if (live.empty()) return;
    SimNode& at = *live[credential_random_.below(live.size())];
    Status st = at.node->credentials().publishKeyRevocation(spare_revocation_, world_.now());
    if (!st.isOk()) {
      checker_.violation("publishing the key revocation at " + at.info.code.str() + " failed: " + st.toString());
      return;
    }
    key_revocations_published_ = 1;
    world_.trace("key revocation published at " + at.info.code.str());
  }

  // After healing: every credential is held, at its newest version and only that one as current,
  // by its issuer, every ancestor of the issuer and the hall that accepted its case; every node
  // knows that newest version (current_version, learnt from renewal notices where the
  // credential itself is not held); every node holds the same winning status record of every
  // credential that has one, and every key revocation; nothing the lost key signed after its
  // revocation is held anywhere. Quiet unless `report`.
  bool credentialsConsistent(bool report) {
    bool ok = true;
    auto fail = [&](const std::string& what) {
      ok = false;
      if (report) checker_.violation(what);
    };
    struct Held {
      uint32_t version = 0;
      std::string issuer, origin;
    };
    std::map<std::string, Held> newest;                             // number → newest version seen anywhere
    std::map<std::string, std::map<std::string, uint32_t>> held_at;  // node → number → version
    std::map<std::string, std::map<std::string, uint32_t>> current_at;  // node → number → current version known
    std::map<std::string, std::map<std::string, std::string>> status_at;  // node → number → "status/version/by"
    std::set<std::string> thief;  // the lost key's documents, as byte strings
    for (const auto& d : thief_documents_) thief.emplace(d.begin(), d.end());
    for (auto& n : nodes_) {
      const std::string code = n->info.code.str();
      auto creds = n->node->database().prepare("SELECT number, version, issuer, origin, sealed FROM credentials");
      while (creds) {
        auto row = creds->step();
        if (!row || !*row) break;
        const auto version = static_cast<uint32_t>(creds->columnInt64(1));
        held_at[code][creds->columnText(0)] = version;
        Held& h = newest[creds->columnText(0)];
        if (version > h.version) h = {version, creds->columnText(2), creds->columnText(3)};
      }
      auto current = n->node->database().prepare(
          "SELECT number, MAX(v) FROM (SELECT number, version AS v FROM credential_versions"
          " UNION ALL SELECT number, current_version AS v FROM credential_status_records) GROUP BY number");
      while (current) {
        auto row = current->step();
        if (!row || !*row) break;
        current_at[code][current->columnText(0)] = static_cast<uint32_t>(current->columnInt64(1));
      }
      auto statuses = n->node->database().prepare("SELECT number, status, version, by_division FROM credential_status");
      while (statuses) {
        auto row = statuses->step();
        if (!row || !*row) break;
        status_at[code][statuses->columnText(0)] =
            statuses->columnText(1) + "/" + std::to_string(statuses->columnInt64(2)) + "/" + statuses->columnText(3);
      }
      auto kept = n->node->database().prepare(
          "SELECT sealed FROM credential_versions UNION ALL SELECT sealed FROM credential_status_records");
      while (kept && !thief.empty()) {
        auto row = kept->step();
        if (!row || !*row) break;
        const Bytes held = kept->columnBlob(0);
        if (thief.count(std::string(held.begin(), held.end()))) fail(code + " still holds a document signed with the revoked spare key");
      }
      auto revocations = countRows(*n->node, "SELECT COUNT(*) FROM key_revocations");
      if (!revocations || *revocations != key_revocations_published_) {
        fail(code + " holds " + std::to_string(revocations ? *revocations : 0) + " key revocations; " +
             std::to_string(key_revocations_published_) + " were published");
      }
    }
    for (const auto& [number, h] : newest) {
      auto issuer = DivisionCode::parse(h.issuer);
      auto origin = DivisionCode::parse(h.origin);
      if (!issuer || !origin) {
        fail("credential " + number + " names issuer " + h.issuer + " and origin " + h.origin);
        continue;
      }
      std::vector<DivisionCode> must_hold = issuer->ancestors();
      must_hold.push_back(*issuer);
      must_hold.push_back(*origin);
      for (const auto& code : must_hold) {
        auto it = held_at[code.str()].find(number);
        if (it == held_at[code.str()].end() || it->second != h.version) {
          fail(code.str() + " holds " + (it == held_at[code.str()].end() ? "no copy" : "version " + std::to_string(it->second)) +
               " of credential " + number + "; the newest is version " + std::to_string(h.version));
        }
      }
      // Exactly one current version: every node that knows the number knows the same newest one.
      for (auto& n : nodes_) {
        const std::string code = n->info.code.str();
        auto it = current_at[code].find(number);
        const bool must_know = h.version > 1 || held_at[code].count(number);
        if (it == current_at[code].end() ? must_know : it->second != h.version) {
          fail(code + " knows version " + (it == current_at[code].end() ? "none" : std::to_string(it->second)) +
               " of credential " + number + " as current; the newest is version " + std::to_string(h.version));
        }
      }
    }
    std::map<std::string, std::string> any_status;
    for (const auto& [code, by_number] : status_at) {
      for (const auto& [number, s] : by_number) any_status[number] = s;
    }
    for (auto& n : nodes_) {
      const std::string code = n->info.code.str();
      for (const auto& [number, s] : any_status) {
        auto it = status_at[code].find(number);
        if (it == status_at[code].end()) {
          fail(code + " has not received the status of credential " + number + " (" + s + ")");
        } else if (it->second != s) {
          // Every node must agree on the winner; report both sides.
          for (const auto& [other, by_number] : status_at) {
            auto o = by_number.find(number);
            if (o != by_number.end() && o->second != it->second) {
              fail(code + " holds status " + it->second + " of " + number + ", " + other + " holds " + o->second);
              break;
            }
          }
        }
      }
    }
    if (ok) {
      result_.credentials_issued = newest.size();
      result_.credential_statuses = any_status.size();
    }
    return ok;
  }

  std::optional<Identity> spare_;  // the lost laptop's identity (once lost)
  Bytes spare_revocation_;
  uint64_t key_revocations_published_ = 0;
  std::vector<Bytes> thief_documents_;
  std::vector<Verdict> verdicts_;
  std::map<std::string, std::map<std::string, TimeMs>> revocation_held_since_;  // node → number → first stored
  // --- end credentials ---

  // --- forwarded cases: drain and invariant (issue #5) ---
  // The drain phase, after healing: staff at each decider work every forwarded case they hold to
  // its conclusion through CaseService, as the workload does (resume a supplement, undertake,
  // review, approve or deny, conclude); a case still on its way up is worked once it arrives.
  // Ends when every case an origin forwarded is held and concluded at its decider, or at
  // `deadline` (the convergence check then reports what is missing).
  static constexpr DurationMs kDrainRoundMs = 5000;
  static constexpr int kMaxStepsPerCase = 12;  // undertake, a review per department, decide, conclude

  void drainForwardedCases(TimeMs deadline) {
    world_.trace("drain forwarded cases");
    while (world_.now() < deadline) {
      uint64_t forwarded = 0, held = 0, open = 0;
      for (auto& n : nodes_) {
        auto f = countRows(*n->node, "SELECT COUNT(*) FROM cases WHERE forwarded = 1");
        auto h = countRows(*n->node, "SELECT COUNT(*) FROM cases WHERE held_for != ''");
        if (!f || !h) {
          checker_.violation("drain: cannot count the cases at " + n->info.code.str() + ": " +
                             (f ? h.status() : f.status()).toString());
          return;
        }
        forwarded += *f;
        held += *h;
        open += workHeldCases(*n);
      }
      if (open == 0 && held == forwarded) return;
      if (auto st = world_.runUntil(world_.now() + kDrainRoundMs); !st.isOk()) {
        checker_.violation("simulation stopped: " + st.toString());
        return;
      }
    }
  }

  // Works each open case `n` holds for an origin to its conclusion; returns how many stay open.
  uint64_t workHeldCases(SimNode& n) {
    auto stmt = n.node->database().prepare(
        "SELECT number FROM cases WHERE held_for != '' AND state NOT IN ('concluded', 'refused') ORDER BY number");
    if (!stmt) {
      checker_.violation("drain: cannot list the held cases at " + n.info.code.str() + ": " + stmt.status().toString());
      return 1;
    }
    std::vector<std::string> numbers;
    while (true) {
      auto row = stmt->step();
      if (!row) {
        checker_.violation("drain: cannot list the held cases at " + n.info.code.str() + ": " + row.status().toString());
        return 1;
      }
      if (!*row) break;
      numbers.push_back(stmt->columnText(0));
    }
    uint64_t open = 0;
    for (const auto& number : numbers) {
      for (int i = 0; i < kMaxStepsPerCase; ++i) {
        auto c = n.node->cases().get(number);
        if (!c) {
          checker_.violation("drain: case " + number + " at " + n.info.code.str() + ": " + c.status().toString());
          break;
        }
        if (c->state == CaseState::kConcluded) break;
        StepRequest step;
        switch (c->state) {
          case CaseState::kSupplement: step.step = "resume"; break;
          case CaseState::kAccepted: step.step = "undertake"; break;
          case CaseState::kUndertaken: step.step = "review"; break;
          case CaseState::kReviewed: step.step = drain_random_.below(6) == 0 ? "deny" : "approve"; break;
          default: step.step = "conclude"; break;
        }
        if (step.step == "review" && c->kind == ItemKind::kJoint) {
          const CatalogueItem* item = n.node->catalogue().current()->find(c->item_code);
          for (const auto& dep : item ? item->joint_departments : std::vector<std::string>{}) {
            bool done = false;
            for (const auto& r : c->reviews) done = done || r.first == dep;
            if (!done) {
              step.department = dep;
              break;
            }
          }
          step.decision = "approve";
        }
        auto moved = n.node->cases().step(number, step, everyone_, world_.now());
        if (!moved) {
          checker_.violation("drain: " + step.step + " on " + number + " at " + n.info.code.str() + " failed: " +
                             moved.status().toString());
          break;
        }
        ++result_.case_steps_taken;
        world_.trace("drain " + number + " " + step.step);
      }
      auto after = n.node->cases().get(number);
      if (!after || after->state != CaseState::kConcluded) ++open;
    }
    return open;
  }

  // The invariant (tree_scenario.h), after the drain: every case an origin forwarded is held by
  // exactly one node, its ancestor at the case's decide level; it is concluded there, decided
  // exactly once (one conclude step, at most one approve or deny); the origin shows the same
  // state, deadline and conclusion time and the decider's full step list (index, step, time,
  // actor); no node holds a case no origin forwarded, and none was returned. A run whose tree
  // has villages and a workload must have forwarded some. Quiet unless `report`.
  bool forwardingConsistent(bool report) {
    struct StepRow {
      int64_t idx = 0;
      std::string step;
      TimeMs at_ms = 0;
      std::string actor;
      bool operator==(const StepRow&) const = default;
      std::string text() const { return "#" + std::to_string(idx) + " " + step + " at " + std::to_string(at_ms) + " by " + actor; }
    };
    struct Mirror {
      std::string holder, state, decided_at, returned_by;
      TimeMs deadline_ms = 0, concluded_ms = 0;
      std::vector<StepRow> steps;
    };
    bool ok = true;
    auto fail = [&](const std::string& what) {
      ok = false;
      if (report) checker_.violation(what);
    };
    // A query that cannot run is a failed check, never an empty answer.
    auto query = [&](SimNode& n, const std::string& sql, const std::function<void(Statement&)>& row) {
      auto stmt = n.node->database().prepare(sql);
      if (!stmt) return fail("forwarding check at " + n.info.code.str() + ": " + stmt.status().toString());
      while (true) {
        auto more = stmt->step();
        if (!more) return fail("forwarding check at " + n.info.code.str() + ": " + more.status().toString());
        if (!*more) return;
        row(*stmt);
      }
    };
    auto stepRow = [](Statement& st) {
      return StepRow{st.columnInt64(1), st.columnText(2), st.columnInt64(3), st.columnText(4)};
    };
    std::map<std::string, std::vector<Mirror>> held;  // case number → every node holding it for an origin
    std::map<std::string, std::pair<std::string, Mirror>> forwarded;  // case number → origin, its mirror
    bool has_villages = false;
    for (auto& n : nodes_) {
      const std::string code = n->info.code.str();
      has_villages = has_villages || n->info.code.level() == Level::kVillage;
      std::map<std::string, Mirror> here, mirrored;
      query(*n, "SELECT number, state, deadline_ms, concluded_ms, held_for, forwarded, decided_at, returned_by"
                " FROM cases WHERE held_for != '' OR forwarded = 1", [&](Statement& st) {
        Mirror m{code, st.columnText(1), st.columnText(6), st.columnText(7), st.columnInt64(2), st.columnInt64(3), {}};
        (st.columnInt64(5) != 0 ? mirrored : here)[st.columnText(0)] = m;
      });
      query(*n, "SELECT s.number, s.idx, s.step, s.at_ms, s.actor FROM case_steps s JOIN cases c ON c.number = s.number"
                " WHERE c.held_for != '' ORDER BY s.number, s.idx",
            [&](Statement& st) { here[st.columnText(0)].steps.push_back(stepRow(st)); });
      query(*n, "SELECT number, idx, step, at_ms, actor FROM case_decider_steps ORDER BY number, idx",
            [&](Statement& st) { mirrored[st.columnText(0)].steps.push_back(stepRow(st)); });
      for (auto& [number, m] : here) held[number].push_back(std::move(m));
      for (auto& [number, m] : mirrored) forwarded[number] = {code, std::move(m)};
    }
    uint64_t concluded = 0;
    for (const auto& [number, entry] : forwarded) {
      const auto& [origin_code, origin] = entry;
      const auto origin_div = DivisionCode::parse(origin_code).value();
      if (!origin.returned_by.empty()) {
        fail("forwarded case " + number + " of " + origin_code + " was returned by " + origin.returned_by);
      }
      auto it = held.find(number);
      if (it == held.end() || it->second.size() != 1) {
        fail("forwarded case " + number + " of " + origin_code + " is held by " +
             std::to_string(it == held.end() ? 0 : it->second.size()) + " nodes, not exactly one");
        continue;
      }
      const Mirror& decider = it->second.front();
      const auto holder = DivisionCode::parse(decider.holder).value();
      if (!holder.isAncestorOf(origin_div) || origin.decided_at != levelName(holder.level()) ||
          decider.decided_at != origin.decided_at) {
        fail("forwarded case " + number + " of " + origin_code + " (" + origin.decided_at + " level) is held by " +
             decider.holder + " (" + decider.decided_at + "), not by its " + origin.decided_at + "-level ancestor");
      }
      if (decider.state != "concluded") {
        fail("forwarded case " + number + " is " + decider.state + " at its decider " + decider.holder +
             " after the drain, not concluded");
      }
      int conclusions = 0, decisions = 0;
      for (const auto& step : decider.steps) {
        conclusions += step.step == "conclude";
        decisions += step.step == "approve" || step.step == "deny";
      }
      if (conclusions != 1 || decisions > 1) {
        fail("forwarded case " + number + " at " + decider.holder + " has " + std::to_string(conclusions) +
             " conclude and " + std::to_string(decisions) + " approve/deny steps; it is decided exactly once");
      }
      if (origin.state != decider.state || origin.deadline_ms != decider.deadline_ms ||
          origin.concluded_ms != decider.concluded_ms || origin.steps != decider.steps) {
        size_t first = 0;
        while (first < origin.steps.size() && first < decider.steps.size() && origin.steps[first] == decider.steps[first]) ++first;
        fail("forwarded case " + number + ": " + origin_code + " shows " + origin.state + ", deadline " +
             std::to_string(origin.deadline_ms) + ", concluded " + std::to_string(origin.concluded_ms) + ", " +
             std::to_string(origin.steps.size()) + " steps; " + decider.holder + " has " + decider.state + ", " +
             std::to_string(decider.deadline_ms) + ", " + std::to_string(decider.concluded_ms) + ", " +
             std::to_string(decider.steps.size()) + " steps (first difference at step " + std::to_string(first) + ": '" +
             (first < origin.steps.size() ? origin.steps[first].text() : "") + "' vs '" +
             (first < decider.steps.size() ? decider.steps[first].text() : "") + "')");
      }
      if (decider.state == "concluded") ++concluded;
    }
    for (const auto& [number, holders] : held) {
      if (!forwarded.count(number)) {
        fail(holders.front().holder + " holds case " + number + " for an origin that did not forward it");
      }
    }
    if (has_villages && options_.workload_interval_ms > 0 && !options_.catalogue_file.empty() && forwarded.empty() &&
        result_.cases_submitted > 0) {
      fail("no case was forwarded in a tree with villages (" + std::to_string(result_.cases_submitted) +
           " submitted): the forwarding invariant checked nothing");
    }
    if (ok) {
      result_.forwarded_cases = forwarded.size();
      result_.forwarded_concluded = concluded;
    }
    return ok;
  }
  // --- end forwarded cases ---

  void awaitConvergence(TimeMs heal_at) {
    const TimeMs deadline = heal_at + options_.heal_bound_ms;
    while (world_.now() < deadline) {
      if (result_.rollup_converged_after_heal_ms < 0 && (world_.now() - heal_at) % 5000 == 0 &&
          rollupConsistent(/*report=*/false)) {
        result_.rollup_converged_after_heal_ms = world_.now() - heal_at;
      }
      if (converged()) {
        if (result_.rollup_converged_after_heal_ms < 0) result_.rollup_converged_after_heal_ms = world_.now() - heal_at;
        result_.converged_after_heal_ms = world_.now() - heal_at;
        return;
      }
      if (auto st = world_.runUntil(world_.now() + 1000); !st.isOk()) {
        checker_.violation("simulation stopped: " + st.toString());
        return;
      }
    }
    if (converged()) {
      result_.converged_after_heal_ms = world_.now() - heal_at;
      return;
    }
    hallConverged(/*report=*/true);
    rollupConsistent(/*report=*/true);
    forwardingConsistent(/*report=*/true);
    credentialsConsistent(/*report=*/true);
    auto missing = checker_.unapplied();
    std::string list;
    for (size_t i = 0; i < missing.size() && i < 10; ++i) list += (i ? ", " : "") + missing[i];
    checker_.violation("not converged " + std::to_string(options_.heal_bound_ms / 1000) + "s after healing: " +
                       std::to_string(missing.size()) + " messages never applied (" + list + ")");
    for (auto& n : nodes_) {
      auto depth = n->node->outboxDepth();
      if (depth && *depth) {
        auto st = n->node->status();
        checker_.violation(n->info.code.str() + " still holds " + std::to_string(*depth) + " outbox messages" +
                           (st ? " (uplink " + st->parent_link + ": " + st->last_error + ")" : ""));
      }
    }
  }

  TreeScenarioResult finish() {
    result_.messages_enqueued = checker_.enqueuedCount();
    result_.messages_applied = checker_.appliedCount();
    result_.network_deliveries = world_.messagesDelivered();
    result_.network_drops = world_.messagesDropped();
    result_.events = world_.eventsRun();
    result_.trace_hash = world_.traceHash();
    result_.passed = result_.violations.empty();
    for (auto& n : nodes_) n->node.reset();
    if (result_.passed) {
      std::error_code ignored;
      for (auto& n : nodes_) std::filesystem::remove_all(n->data_dir, ignored);
    }
    return result_;
  }

  // --- lookups: invariants (issue #5) ---
  // Through the fault phase a clerk at a random hall asks about a record that exists somewhere:
  // a holder whose material is stored, a material by its hash, or a credential by its number;
  // after healing, ten more. Every lookup must complete (found / not found / could not ask) within
  // its budget unless its node crashed. "Not found" is a violation if a matching record was
  // created anywhere before the completeness watermark the city states in it (or if the city
  // held one when it answered); every record in a "found" answer must really exist as described
  // at the node that stored or issued it; a node that holds the record itself must answer
  // "found"; after healing everything is reachable, so every answer must be "found".
  static constexpr DurationMs kLookupBudgetMs = 3000;

  struct LookupProbe {
    LookupQuery query;
    std::string stored_at, asked_at;
    TimeMs asked_ms = 0;
    bool held_by_asker = false;
    std::optional<LookupResult> result;
  };

  void scheduleLookups(TimeMs until) {
    for (TimeMs t = kSimulationStartMs + 3 * kMinute + 17'000; t < until; t += 3 * kMinute) {
      world_.at(t, [this] { askSomeLookup(/*after_heal=*/false); });
    }
  }

  // One existing record's key at `node`, chosen at random: a holder or a hash of its own
  // materials, or the number of a credential it holds. Empty if it has none.
  std::string someKey(Node& node, LookupQuestion question) {
    const char* table = question == LookupQuestion::kCredential ? "credentials" : "materials";
    const char* column = question == LookupQuestion::kCredential ? "number"
                         : question == LookupQuestion::kMaterial ? "hash"
                                                                 : "holder";
    auto count = countRows(node, std::string("SELECT COUNT(*) FROM ") + table);
    if (!count || *count == 0) return {};
    auto stmt = node.database().prepare(std::string("SELECT ") + column + " FROM " + table + " ORDER BY " + column +
                                        " LIMIT 1 OFFSET ?1");
    if (!stmt) return {};
    stmt->bind(1, static_cast<int64_t>(lookup_random_.below(*count)));
    auto row = stmt->step();
    return row && *row ? stmt->columnText(0) : std::string();
  }

  void askSomeLookup(bool after_heal) {
    std::vector<SimNode*> live;
    for (auto& n : nodes_) if (n->node) live.push_back(n.get());
    if (live.empty()) return;
    SimNode& holder_node = *live[lookup_random_.below(live.size())];
    const auto question = static_cast<LookupQuestion>(1 + lookup_random_.below(3));
    std::string key = someKey(*holder_node.node, question);
    if (key.empty()) return;
    SimNode& asker = *live[lookup_random_.below(live.size())];
    auto query = makeLookupQuery(question, key);
    if (!query) {
      checker_.violation("lookup of a stored record is refused: " + query.status().toString());
      return;
    }
    auto probe = std::make_shared<LookupProbe>();
    probe->query = *query;
    probe->stored_at = holder_node.info.code.str();
    probe->asked_at = asker.info.code.str();
    probe->asked_ms = world_.now();
    probe->held_by_asker = matchingRecords(*asker.node, *query, "held", world_.now() + 1) > 0;
    lookup_probes_.push_back(probe);
    world_.trace("lookup at " + probe->asked_at + " for a " + lookupQuestionName(question) + " of " + probe->stored_at);
    asker.node->lookups().lookup(*query, kLookupBudgetMs, [this, probe, after_heal](LookupResult r) {
      world_.trace("lookup at " + probe->asked_at + ": " + lookupOutcomeName(r.outcome) + " by " + r.answered_by);
      checkLookup(*probe, r, after_heal);
      probe->result = std::move(r);
    });
    // None hangs: unless its node crashed, the answer is in by the end of the budget.
    Node* asked_node = asker.node.get();
    SimNode* asker_ptr = &asker;
    world_.at(world_.now() + kLookupBudgetMs + 1, [this, probe, asked_node, asker_ptr] {
      if (!probe->result && asker_ptr->node.get() == asked_node) {
        checker_.violation("lookup at " + probe->asked_at + " for a " + lookupQuestionName(probe->query.question) +
                           " of " + probe->stored_at + " had no answer " + std::to_string(kLookupBudgetMs) +
                           " ms after it was asked");
      }
    });
  }

  // How many records matching `q` `node` has: "created" there before `before` (by the record's
  // own time: a material's verification, a credential's issue, an identity's registration), or
  // "held" (received or created there) before `before`.
  uint64_t matchingRecords(Node& node, const LookupQuery& q, const std::string& how, TimeMs before) {
    const bool created = how == "created";
    std::vector<std::string> sql;
    if (q.question != LookupQuestion::kCredential) {
      const std::string column = q.question == LookupQuestion::kHolder ? "holder" : "hash";
      sql.push_back("SELECT COUNT(*) FROM materials WHERE " + column + " = ?1 AND verified_at_ms < ?2");
      if (!created) sql.push_back("SELECT COUNT(*) FROM subtree_materials WHERE " + column + " = ?1 AND received_ms < ?2");
    }
    if (q.question != LookupQuestion::kMaterial) {
      const std::string column = q.question == LookupQuestion::kHolder ? "holder_id" : "number";
      sql.push_back("SELECT COUNT(*) FROM credentials WHERE " + column + " = ?1 AND " +
                    (created ? "issued_at_ms" : "received_ms") + " < ?2");
    }
    if (q.question == LookupQuestion::kHolder) {
      sql.push_back(std::string("SELECT COUNT(*) FROM identity_records WHERE id_number = ?1 AND ") +
                    (created ? "registered_at_ms" : "received_ms") + " < ?2");
    }
    uint64_t n = 0;
    for (const auto& text : sql) {
      auto stmt = node.database().prepare(text);
      if (!stmt) continue;
      stmt->bind(1, q.key).bind(2, before);
      auto row = stmt->step();
      if (row && *row) n += static_cast<uint64_t>(stmt->columnInt64(0));
    }
    return n;
  }

  // Is `r` (from a "found" answer) a record that exists as described at the node that stored or
  // issued it? Unknown (true) while that node is down. A document the thief signed with the lost
  // key exists only where the thief handed it in: until a node holds the key's revocation it is
  // as genuine to it as any other (the invariant that it goes once the revocation arrives is
  // checked after healing), so finding it is a true answer.
  bool recordIsTrue(const LookupRecord& r, std::string* why) {
    if (r.type == "credential") {
      for (const auto& d : thief_documents_) {
        if (d == r.payload) return true;
      }
    }
    SimNode* origin = nullptr;
    for (auto& n : nodes_) if (n->info.code.str() == r.issued_at) origin = n.get();
    if (!origin) {
      *why = "it names " + r.issued_at + ", which runs no node";
      return false;
    }
    if (!origin->node) return true;
    std::string sql;
    if (r.type == "material") {
      sql = "SELECT COUNT(*) FROM materials WHERE hash = ?1 AND holder = ?2 AND kind = ?3";
    } else if (r.type == "credential") {
      sql = "SELECT COUNT(*) FROM credentials WHERE number = ?1 AND holder_id = ?2 AND kind = ?3";
    } else {
      sql = "SELECT COUNT(*) FROM identity_records WHERE id_number = ?1 AND id_number = ?2 AND kind = ?3";
    }
    auto stmt = origin->node->database().prepare(sql);
    if (!stmt) return true;
    stmt->bind(1, r.id).bind(2, r.holder).bind(3, r.kind);
    auto row = stmt->step();
    if (row && *row && stmt->columnInt64(0) > 0) return true;
    *why = r.issued_at + " has no " + r.type + " " + r.id + " of " + r.holder + " (" + r.kind + ")";
    return false;
  }

  void checkLookup(const LookupProbe& p, const LookupResult& r, bool after_heal) {
    const std::string what = "lookup at " + p.asked_at + " for " + lookupQuestionName(p.query.question) + " " +
                             p.query.key + " (stored at " + p.stored_at + "): ";
    if (world_.now() - p.asked_ms > kLookupBudgetMs) {
      checker_.violation(what + "answered after " + std::to_string(world_.now() - p.asked_ms) + " ms, over its budget");
    }
    if (r.outcome == LookupOutcome::kNotFound) {
      SimNode& city = *nodes_.front();
      if (city.node && matchingRecords(*city.node, p.query, "held", r.answered_at_ms) > 0) {
        checker_.violation(what + "\"not found\" from " + r.answered_by + ", which held the record");
      }
      // Exact: the answer says every record created before W had reached the city.
      for (auto& n : nodes_) {
        if (!n->node || matchingRecords(*n->node, p.query, "created", r.complete_as_of_ms) == 0) continue;
        checker_.violation(what + "\"not found\", complete as of " + std::to_string(r.complete_as_of_ms) +
                           ", but " + n->info.code.str() + " created a matching record before then");
      }
    }
    if (r.outcome == LookupOutcome::kFound) {
      for (const auto& rec : r.records) {
        std::string why;
        const bool matches = p.query.question == LookupQuestion::kHolder ? rec.holder == p.query.key : rec.id == p.query.key;
        if (!matches) why = "a record for another question: " + rec.type + " " + rec.id + " of " + rec.holder;
        if (!matches || !recordIsTrue(rec, &why)) checker_.violation(what + "\"found\" answer is false: " + why);
      }
    }
    if (p.held_by_asker && r.outcome != LookupOutcome::kFound) {
      checker_.violation(what + lookupOutcomeName(r.outcome) + " although the asking node holds the record (" +
                         r.reason + ")");
    }
    if (after_heal && r.outcome != LookupOutcome::kFound) {
      checker_.violation(what + lookupOutcomeName(r.outcome) + " after healing (" + r.reason + r.note + ")");
    }
  }

  // After convergence every record is at the city and every link is up.
  void checkLookupsAfterHeal() {
    const size_t before = lookup_probes_.size();
    for (int i = 0; i < 10; ++i) askSomeLookup(/*after_heal=*/true);
    if (auto st = world_.runUntil(world_.now() + kLookupBudgetMs + 1000); !st.isOk()) {
      checker_.violation("simulation stopped: " + st.toString());
    }
    for (size_t i = before; i < lookup_probes_.size(); ++i) {
      if (!lookup_probes_[i]->result) {
        checker_.violation("lookup at " + lookup_probes_[i]->asked_at + " after healing never answered");
      }
    }
  }

  Random lookup_random_{0x6c6f6f6b7570ULL};  // reseeded from the run's seed in run()
  Random credential_random_{0x63726564ULL};  // reseeded from the run's seed in run()
  Random drain_random_{0x647261696eULL};     // forwarded cases: reseeded from the run's seed in run()
  std::vector<std::shared_ptr<LookupProbe>> lookup_probes_;
  // --- end lookups ---

  TreeScenarioOptions options_;
  SimWorld world_;
  TreeScenarioResult result_;
  Checker checker_;
  std::vector<std::unique_ptr<SimNode>> nodes_;
  WorkingCalendar calendar_;
  // The simulated staff: one person holding every role, so only the rules decide.
  Principal everyone_{"staff", "simulated staff", {Role::kClerk, Role::kUndertaker, Role::kReviewer, Role::kApprover}};
};

}  // namespace

TreeScenarioResult runTreeScenario(const TreeScenarioOptions& options) { return Scenario(options).run(); }

}  // namespace tongban::sim
