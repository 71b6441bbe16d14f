// A feed: an append-only log of opaque entries (each entry is itself a signed statement whose
// meaning the node layer checks) that every node pulls from its parent, so an entry appended
// anywhere reaches every node below that point; the node layer sends entries UP by other means
// (outbox) so that the city appends them and they reach every node.
//
// Pull, not push: each non-city node asks its parent on tb.<parent>.feed for the entries after
// its cursor (kind 7, sealed by the child), the parent answers with a batch (kind 8, sealed by
// the parent, bound by the request's nonce). One request is in flight at a time; a pull loops
// until it reached the parent's head, then waits for the next poll. Each batch is applied in one
// transaction: the applier's effect, the entries this node appends to its own log (so its
// children get them), the cursor and the freshness all commit together, so a crash either keeps
// the whole batch or none of it.
//
// Hints: polling alone costs up to one poll interval per level. So when a node's own log grows
// (append, by the node layer or when relaying a batch) it publishes, debounced by
// kFeedHintDelayMs so that it goes out after the appending transaction committed, a sealed
// "my head is now N" (kind 9) on tb.<self>.feed.head, which its children subscribe to. A child
// that verifies the hint (signed by exactly its parent, fresh, small) and whose cursor is below N
// pulls at once, at most once per kFeedHintPullGapMs (a later hint within the gap defers one
// pull to its end). A hint carries no entries: the pull stays the only way data moves, so a forged
// or replayed hint costs at most one authenticated pull. Polling stays the fallback for lost hints.
//
// Freshness: after a pull that reached the parent's head, fresh_as_of_ms becomes the parent's
// reported freshAsOfMs (the city reports its clock). It never moves backwards and survives a
// restart. While the link is down it stays at the time of the last successful pull.
//
// Anti-entropy: if the parent's head is below the cursor, or the parent's entry at the cursor is
// not the one consumed there (its database was restored from an old backup), the cursor goes
// back to 0 and everything is pulled again; appliers dedupe, so nothing is applied twice.
//
// Limits (docs/protocol.md "Feeds (pulled down)"): an entry is at most kMaxFeedEntryBytes; a
// batch carries at most kMaxFeedBatchEntries entries and kMaxFeedBatchBytes of payload (the
// settings can only lower these); a request envelope is at most kMaxFeedRequestBytes.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "federation/store/database.h"
#include "federation/transport/clock.h"
#include "federation/transport/random.h"
#include "federation/transport/transport.h"
#include "federation/trust/envelope.h"

namespace tongban {

inline constexpr size_t kMaxFeedEntryBytes = 64 * 1024;
inline constexpr size_t kMaxFeedBatchEntries = 1024;
// Payload bytes per batch: a full batch (with per-entry framing and the signer's chain) must fit
// in one sealed envelope (EnvelopeLimits::max_bytes, 256 KiB).
inline constexpr size_t kMaxFeedBatchBytes = 192 * 1024;
inline constexpr size_t kMaxFeedRequestBytes = 16 * 1024;
// After a failed pull the next attempt comes after a backoff from this value, doubling (with
// jitter) up to the poll interval.
inline constexpr DurationMs kFeedRetryInitialMs = 1000;
// Hints: published this long after the first append of a burst (one hint per burst), so the
// appending transaction has committed and a batch relayed to the children is announced once.
inline constexpr DurationMs kFeedHintDelayMs = 20;
// At most one pull started because of a hint per this interval: a flood of hints (replayed or
// from a parent gone wrong) cannot make a child spin.
inline constexpr DurationMs kFeedHintPullGapMs = 1000;
// A hint dated further back than this is refused (a replay of an old capture; or the parent's
// clock lags ours by that much, and then polling alone carries the feed).
inline constexpr DurationMs kFeedHintMaxAgeMs = 5 * 60 * 1000;
// A sealed hint is 256 B (the city's) to 768 B (a town's, two certificates); anything over this
// is refused before its signature is checked.
inline constexpr size_t kMaxFeedHintBytes = 4 * 1024;

struct FeedSettings {
  DurationMs poll_interval_ms = 30'000;
  DurationMs request_timeout_ms = 5'000;
  size_t batch_max_entries = 256;          // capped at kMaxFeedBatchEntries
  size_t batch_max_bytes = 256 * 1024;     // capped at kMaxFeedBatchBytes
};

struct FeedState {              // for status and "how fresh is my data"
  uint64_t head = 0;            // my own log's last index
  uint64_t parent_cursor = 0;   // the parent's index I have consumed up to
  TimeMs fresh_as_of_ms = 0;    // every entry appended anywhere above me before this time is in my log (city: now)
  TimeMs last_pull_ms = 0;      // last successful pull
  std::string link = "unknown"; // up | down | unknown | none (city)
  std::string last_error;       // the last failure or skipped entry (kept after the link recovers, as LinkState's)
  uint64_t skipped_total = 0;   // entries the applier refused for good (kept in feed_rejected)
  uint64_t restarts_total = 0;  // cursor resets because the parent's log went back (restore)
  uint64_t hints_total = 0;         // hints from the parent accepted
  uint64_t hints_refused_total = 0; // hints refused (not the parent's, stale, oversize, garbage)
  uint64_t hint_pulls_total = 0;    // pulls started because of a hint (rate-limited)
};

// Checks and stores one entry from the parent inside the open transaction. Returns true if it is
// new here (the feed then appends it to this node's own log, so children get it), false if it
// was known or is superseded (not appended). kInvalidArgument/kMalformed/kUnauthorized/kRevoked =
// never acceptable: the feed logs it, skips it (kept in table feed_rejected, not appended), and
// moves the cursor past it; any other error (kFutureDated, kUnavailable, kIo…) stops this pull
// (the whole batch is rolled back, retried after the backoff, cursor not moved). An applier
// that refuses an entry must not have written anything for it (there are no savepoints: what it
// wrote before refusing would commit with the batch).
using FeedApplier = std::function<Result<bool>(const Bytes& entry)>;

// tb.<node>.feed: where `node` serves its log to its children.
std::string feedSubject(const DivisionCode& node);
// tb.<node>.feed.head: where `node` announces its log's head to its children.
std::string feedHintSubject(const DivisionCode& node);

class Feed {
 public:
  Feed(const Identity& identity, Database& db, const Verifier& verifier, Clock& clock, Transport& transport,
       Random& random, FeedSettings settings, FeedApplier applier);
  ~Feed();
  Feed(const Feed&) = delete;
  Feed& operator=(const Feed&) = delete;

  // Tables (component "feed": feed_log, feed_state, feed_rejected); once at start, outside any
  // transaction.
  static Status migrate(Database& db);

  // Loads the persisted state, subscribes tb.<self>.feed and the parent's tb.<parent>.feed.head,
  // pulls from the parent at once and every poll interval (none for the city). After migrate().
  Status start();
  // Unsubscribes and cancels timers; a reply that arrives later is ignored.
  void stop();

  // Appends an entry to this node's own log, inside the caller's open transaction
  // (kFailedPrecondition otherwise; kInvalidArgument if empty or over kMaxFeedEntryBytes).
  // Returns its index. The feed does not call the applier for it: the caller stores its effect.
  // Schedules a hint to the children (not at a village: it has none).
  Result<uint64_t> append(const Bytes& entry);

  // Pull now (e.g. after the link came back); if a pull is in flight, another follows it.
  void pullNow();

  // The city only: what it states as its freshness instead of its clock — its subtree
  // completeness watermark, since an entry made below it reaches its log only when it arrives
  // (docs/protocol.md "Completeness watermark"). Ignored at other nodes.
  void setRootFreshness(std::function<TimeMs()> fresh_as_of);

  // Entries of this node's own log with index > `index`, oldest first, at most `max_entries`.
  Result<std::vector<std::pair<uint64_t, Bytes>>> entriesAfter(uint64_t index, size_t max_entries);

  // fresh_as_of_ms etc., also persisted so a restart keeps it. `head` is read from the database
  // (so it is right after the caller's append committed or rolled back); the city's
  // fresh_as_of_ms is its clock.
  const FeedState& state() const;

  // Handles one request and returns the sealed answer, or empty bytes for "no answer" (garbage,
  // not a child). Public for tests; the subscription calls it.
  Bytes handleRequest(const Bytes& request);

  // Handles one hint from tb.<parent>.feed.head: OK if it is the parent's (a pull follows if its
  // head is above our cursor, within the rate limit), else why it was refused (counted, logged
  // at most once a minute). Public for tests; the subscription calls it.
  Status handleHint(const Bytes& hint);

 private:
  struct Batch;
  void schedulePull(DurationMs delay);
  void pull();
  void onReply(uint64_t nonce, uint64_t after, Result<Bytes> reply);
  Status applyBatch(const Batch& batch, uint64_t after, bool* reached_head);
  Status resetCursor(const std::string& why);
  void onFailure(const std::string& why);
  Result<uint64_t> readHead() const;
  TimeMs rootFreshness() const;
  void scheduleHint();
  void publishHint();
  Result<uint64_t> verifyHint(const Bytes& hint) const;
  void onHintHead(uint64_t head);
  void startHintPull();
  void logRefusedHint(const Status& why);

  const Identity& identity_;
  Database& db_;
  const Verifier& verifier_;
  Clock& clock_;
  Transport& transport_;
  Random& random_;
  FeedSettings settings_;
  FeedApplier applier_;
  std::function<TimeMs()> root_freshness_;  // setRootFreshness; the clock when unset

  mutable FeedState state_;
  Bytes cursor_digest_;   // digest of the parent's entry at parent_cursor (empty at 0)
  bool started_ = false;
  bool in_flight_ = false;
  bool again_ = false;    // pullNow() while in flight
  uint64_t in_flight_nonce_ = 0;
  Clock::TimerId timer_ = 0;
  DurationMs backoff_ms_ = kFeedRetryInitialMs;
  Transport::SubscriptionId subscription_ = 0;
  // Publishing hints.
  Clock::TimerId hint_timer_ = 0;       // the debounce timer; at most one pending
  uint64_t hinted_head_ = 0;            // the head announced last (nothing is sent unless it grew)
  // Receiving hints.
  Transport::SubscriptionId hint_subscription_ = 0;
  Clock::TimerId hint_pull_timer_ = 0;  // the hint-triggered pull, deferred by the rate limit
  uint64_t hint_head_ = 0;              // the highest head hinted since the last hint-triggered pull
  std::optional<TimeMs> last_hint_pull_ms_;
  std::optional<TimeMs> last_hint_warning_ms_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

// Registers kinds 7 (feed-request), 8 (feed-batch) and 9 (feed-hint).
void registerFeedKinds(KindRegistry& registry);

}  // namespace tongban
