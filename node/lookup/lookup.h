// Lookups (查询核验): a clerk at any hall asks which materials and credentials a holder has, or
// whether a material or credential is genuine, and gets one of three clearly different answers:
//
//   FOUND          records, the node that answered (signed by it), the route the question took;
//   NOT_FOUND      only ever from the city, which holds every record that reached it: the answer
//                  says "complete as of W" (every record created in the tree before W has reached
//                  the city) and, when W lags, which child subtree holds it back;
//   COULD_NOT_ASK  which link failed ("石湾镇 → 禅城区: no answer within 1200 ms") and since when,
//                  from the last node that could answer (signed by it) — never a hang.
//
// How: a node answers from its own store (its records and its subtree's, see LookupSource). If it
// has nothing, it asks its parent on tb.<parent>.lookup (kind 120, signed by the asker), which
// does the same, up to the city. The node that answers signs a statement (kind 121); every hop
// on the way down passes those bytes on unchanged inside its own signed reply (kind 122, bound
// to the request's nonce) and adds itself to the route. Every hop verifies both: the reply comes
// from its parent for its request; the answer is signed by an ancestor-or-self (chain to the
// root, validity, revocation), is for this question, and the answerer covers every record it
// names. docs/protocol.md "Lookups" has the messages, limits and rules.
//
// Positive answers are cached at every node they pass (LRU, TTL, an entry and a byte bound;
// clearCache() on a key revocation, forgetCredential() when a credential's status changes).
// Identical concurrent lookups at a node share one upstream request; a joiner whose budget
// outlasts a request that failed for want of time or a link asks again with its own. Each request
// carries its remaining budget; each hop keeps a margin for the way back and refuses to ask
// upward when too little is left. A node whose own store failed never lets "not found" through:
// its answer is "could not ask", naming its store.
//
// Threading: everything runs on the node's executor through the injected Clock and Transport;
// nothing blocks. A lookup's callback always runs later, never inside lookup().
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "federation/transport/random.h"
#include "federation/transport/transport.h"
#include "federation/trust/envelope.h"
#include "federation/trust/keys.h"

namespace tongban {

class Database;
class MaterialStore;

inline constexpr MessageKind kLookupRequestKind = 120;  // up, not durable: child → parent
inline constexpr MessageKind kLookupAnswerKind = 121;   // statement: the answering node's answer
inline constexpr MessageKind kLookupReplyKind = 122;    // reply: parent → child, carries the answer

// Limits (documented in docs/protocol.md).
inline constexpr size_t kMaxLookupRecords = 64;                 // per answer; more → truncated
inline constexpr size_t kMaxLookupAnswerBytes = 96 * 1024;      // sealed answer
inline constexpr size_t kMaxLookupRequestBytes = 16 * 1024;     // sealed request
inline constexpr size_t kMaxLookupReplyBytes = 192 * 1024;      // sealed reply (answer + route)
inline constexpr size_t kMaxLookupRouteHops = 8;
inline constexpr size_t kMaxCredentialNumberLength = 64;

struct LookupSettings {
  size_t cache_entries = 4096;               // positive answers kept (least recently used goes)
  // Bytes the cache may hold: each entry counts its sealed answer plus its decoded records
  // (cacheEntryBytes). An answer larger than the whole budget is not cached.
  size_t cache_max_bytes = 64 * 1024 * 1024;
  DurationMs cache_ttl_ms = 5 * 60 * 1000;   // from the answer's signing time
  DurationMs default_budget_ms = 3000;       // when the caller names none
  DurationMs max_budget_ms = 30 * 1000;
  DurationMs hop_margin_ms = 200;            // kept at each hop for the answer's way back down
  DurationMs min_upstream_ms = 100;          // below this, a hop does not ask its parent
  size_t max_pending_questions = 1024;       // distinct questions waiting for the parent
  size_t max_waiters_per_question = 256;
  // A not-found or could-not-ask answer must be at least this recent (clock skew allowance):
  // only positive answers may be old (cached).
  DurationMs freshness_slack_ms = 60 * 1000;
};

enum class LookupQuestion : uint8_t { kHolder = 1, kMaterial = 2, kCredential = 3 };
const char* lookupQuestionName(LookupQuestion q);  // "holder", "material", "credential"

struct LookupQuery {
  LookupQuestion question = LookupQuestion::kHolder;
  std::string key;  // normalised
};

// Validates and normalises what a person typed: a holder is a resident ID or a unified social
// credit code (node/applicants/id_numbers.h); a material is 64 hex digits (SHA-256, any case); a
// credential number is 1-64 characters of A-Z a-z 0-9 '-' '_'. kInvalidArgument says what is wrong.
Result<LookupQuery> makeLookupQuery(LookupQuestion question, std::string_view key);

enum class LookupOutcome : uint8_t { kFound = 1, kNotFound = 2, kCouldNotAsk = 3 };
const char* lookupOutcomeName(LookupOutcome o);  // "found", "not_found", "could_not_ask"

struct LookupRecord {
  std::string type;       // "material" | "credential" | "identity"
  std::string id;         // material hash, credential number
  std::string holder;
  std::string kind;       // material kind, credential item
  std::string issued_at;  // division that stored / issued it
  TimeMs at_ms = 0;
  // The answering node verified the issuer's seal itself (it knows the issuer's key: today its
  // own records). Otherwise the record is vouched for by the answerer, which received it through
  // signed, checked hops from the issuer's subtree.
  bool seal_verified = false;
  Bytes payload;          // the record as held (MaterialRecord encoding for a material)
  // Credentials only: what the answering node knows of the credential's status when it answered
  // (CredentialService::verify): valid | revoked | suspended | superseded | expired |
  // not_yet_valid | unknown, the sentence behind it, the newest version it holds, and how fresh
  // its status data is (every status record issued before then had reached it).
  std::string status;
  std::string status_reason;
  uint32_t current_version = 0;
  TimeMs status_fresh_as_of_ms = 0;
};

struct LookupHop {
  std::string division;
  std::string name;
  TimeMs at_ms = 0;       // when the question reached this hop
};

struct LookupResult {
  LookupOutcome outcome = LookupOutcome::kCouldNotAsk;
  LookupQuery query;
  std::string answered_by;       // division that signed the answer
  std::string answered_by_name;
  TimeMs answered_at_ms = 0;     // when it signed (older than the question if cached)
  std::string cached_at;         // division whose cache served it; "" if answered now
  std::vector<LookupHop> route;  // this node first, up to the node that answered (or the cache)
  std::vector<LookupRecord> records;
  bool truncated = false;
  std::string note;              // e.g. why credentials are not found yet
  // Not found: the city's subtree completeness watermark when it answered (every durable record
  // created anywhere in the tree before this instant had reached the city), and, when it lags
  // behind the city's clock by more than its tolerance, the subtree holding it back (its code
  // and name; "since" is when that subtree's records stop being known to be complete).
  TimeMs complete_as_of_ms = 0;
  std::string held_back_by;
  std::string held_back_by_name;
  std::string failed_link;       // could not ask: "440604001000 → 440604000000"
  std::string reason;            // could not ask: what failed, for a person
  TimeMs link_down_since_ms = 0; // could not ask: the failed link's "down since", 0 if unknown
  DurationMs took_ms = 0;
};

// Where a node finds records it holds. The materials source reads the node's own materials and
// the records its subtree relayed up; credentials plug in another (node/credentials/credential_lookup.h).
class LookupSource {
 public:
  virtual ~LookupSource() = default;
  // Which questions this source answers (a holder question goes to every source).
  virtual bool answers(LookupQuestion question) const = 0;
  // Records held for the question, at most `limit`. An error means the store could not be read
  // (the service then never answers "not found"). A single held record that cannot be decoded is
  // skipped (logged and counted in skippedRecords()), not an error for the rest.
  virtual Result<std::vector<LookupRecord>> find(const LookupQuery& query, size_t limit) = 0;
  virtual uint64_t skippedRecords() const { return 0; }
};

// Materials: the `materials` table (own scans; seals verified with the node's own key) and
// `subtree_materials` (records relayed up by descendants). `db` and `identity` must outlive it.
std::unique_ptr<LookupSource> makeMaterialLookupSource(Database& db, const Identity& identity);

// The state of the link to the parent, for "could not ask … since when" (Node::uplinkState()).
struct UplinkView {
  std::string link;        // "up", "down", "unknown"
  TimeMs since_ms = 0;
};
using UplinkProbe = std::function<std::optional<UplinkView>()>;

// Checks a credential record in an answer from upstream beyond its envelope (which the service
// opens itself: signed by `issued_at`, chain to the root): that it is a credential document
// (kind 130) whose number, holder and issuer are the record's id, holder and issued_at. Set up
// by the node from node/credentials (this module does not depend on it). Without one, a
// credential record from upstream is refused.
using CredentialRecordCheck = std::function<Status(const LookupRecord& record, const OpenedEnvelope& document)>;

// The city's subtree completeness (the watermark, docs/protocol.md "Completeness watermark"):
// every durable record created in the tree before `as_of_ms` has been applied at the city. When
// it lags, `held_back_by` names the subtree holding it back.
struct Completeness {
  TimeMs as_of_ms = 0;
  std::string held_back_by;
  std::string held_back_by_name;
};
using CompletenessProbe = std::function<Completeness()>;

// Registers kinds 120-122 with their authority rules.
void registerLookupKinds(KindRegistry& registry);
std::string lookupSubject(const DivisionCode& node);  // tb.<node>.lookup

class LookupService {
 public:
  using Callback = std::function<void(LookupResult)>;

  struct Stats {
    uint64_t lookups = 0;            // asked here through lookup()
    uint64_t requests_served = 0;    // questions from children answered
    uint64_t requests_refused = 0;   // malformed or unverifiable requests from the bus
    uint64_t upstream_requests = 0;  // questions sent to the parent
    uint64_t coalesced = 0;          // questions that joined one already waiting for the parent
    uint64_t cache_hits = 0;
    uint64_t answers_rejected = 0;   // replies or answers from upstream that failed verification
    uint64_t source_failures = 0;    // a source could not read its store
    uint64_t reasked = 0;            // joiners that asked again after a shared request failed
  };

  // Subscribes to tb.<self>.lookup. All references must outlive the service.
  static Result<std::unique_ptr<LookupService>> start(const Identity& identity, const Verifier& verifier,
                                                      Clock& clock, Transport& transport, Random& random,
                                                      LookupSettings settings, UplinkProbe uplink);
  ~LookupService();
  LookupService(const LookupService&) = delete;
  LookupService& operator=(const LookupService&) = delete;

  void addSource(std::unique_ptr<LookupSource> source);
  void setCredentialCheck(CredentialRecordCheck check);
  // The city: what a "not found" says about completeness (without one: complete as of 0).
  void setCompleteness(CompletenessProbe probe);

  // Asks. `budget_ms` <= 0: the default; capped at max_budget_ms. `done` runs exactly once, later
  // (after stop(): with COULD_NOT_ASK "the node is stopping").
  void lookup(const LookupQuery& query, DurationMs budget_ms, Callback done);

  // Forgets every cached answer: call when a key revocation is added (a cached answer may be
  // signed by a key that is no longer trusted).
  void clearCache();
  // Forgets every cached answer naming credential `number` (its own question and holder
  // questions that listed it): call when its status or version changes here.
  void forgetCredential(const std::string& number);
  size_t cacheSize() const;
  size_t cacheBytes() const;
  // Undecodable records the sources skipped so far.
  uint64_t skippedRecords() const;
  const Stats& stats() const;

  // Unsubscribes; pending lookups answer COULD_NOT_ASK. Idempotent.
  void stop();

  struct Impl;
 private:
  explicit LookupService(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tongban
