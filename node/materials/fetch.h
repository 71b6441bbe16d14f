// Material files on demand. A material's record (hash, kind, holder, seal) travels up to every
// ancestor; the file stays at the node that stored it. When a node that holds the record needs
// the file (a forwarded case is decided here and its staff open the scan), the MaterialFetcher
// asks the storing node for it, chunk by chunk, on tb.<storing node>.material, and that node's
// MaterialResponder answers (docs/protocol.md "Material files on demand").
//
// Authority: the request (kind 110) is a "down" kind: only a strict ancestor of the storing node
// may ask, because the files hold personal data. A sibling or a stranger gets a signed refusal.
//
// Before anyone sees a byte, the fetcher checks: every answer verifies (chain to the root,
// revocation) and is signed by the storing node (signer == record.stored_at) for this request
// (nonce); the record's seal verifies with the key that signed the answer; the size is within
// kMaxMaterialBytes and equals the record's; the assembled file's SHA-256 equals the hash. Only
// then is the file kept here (MaterialStore::cacheFetched: content-addressed, no record, nothing
// sent up) so the next request is local. Concurrent fetches of one hash share one chunk stream.
//
// Sources: one file may be stored at several nodes (an ID card scanned at two villages). The
// fetcher asks the storing nodes this node holds records of, one after the other, newest record
// first, at most max_sources of them, all within the one overall deadline; the error of a fetch
// that found no source names every node asked and why each failed.
//
// The cache is bounded (cache_max_bytes): after each file kept, the least recently used cached
// files are evicted until the cache fits; a cache hit makes a file the most recently used. Files
// stored here are never evicted, nor the file just fetched (MaterialStore, "fetched-file cache").
//
// Threading: both classes run on the node's executor (Clock and Transport contract); nothing
// blocks and nothing locks. A fetch's callback always runs later, never inside fetch().
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "federation/transport/random.h"
#include "federation/transport/transport.h"
#include "federation/trust/envelope.h"
#include "node/materials/materials.h"

namespace tongban {

inline constexpr MessageKind kMaterialFetchKind = 110;  // request, down (ancestor → storing node)
inline constexpr MessageKind kMaterialChunkKind = 111;  // reply (storing node → asker)
// A chunk travels in one sealed envelope, whose cap is 256 KiB (EnvelopeLimits::max_bytes); this
// leaves room for the certificate chain and the framing.
inline constexpr size_t kMaterialChunkBytes = 192 * 1024;
// Storing nodes asked for one file, one after the other: enough for a file scanned at a few
// stations, few enough that a file nobody can serve fails within the deadline with a short error.
inline constexpr size_t kMaxFetchSources = 3;

void registerMaterialFetchKinds(KindRegistry& registry);
// tb.<node>.material: where a node answers requests for the files it stores.
std::string materialSubject(const DivisionCode& node);

// The two payloads (schema/material_fetch.capnp), for the codecs below and for tests.
struct MaterialFetchRequestMsg {
  std::string hash;
  std::string holder;
  uint64_t offset = 0;
};
struct MaterialChunkMsg {
  std::string hash;
  uint64_t total_size = 0;
  uint64_t offset = 0;
  Bytes chunk;
  std::string error_code;     // empty on success, else an ErrorCode name
  std::string error_message;
};
Bytes encodeMaterialFetchRequest(const MaterialFetchRequestMsg& message);
Result<MaterialFetchRequestMsg> decodeMaterialFetchRequest(const Bytes& bytes);  // ≤ 4 KiB
Bytes encodeMaterialChunk(const MaterialChunkMsg& message);
Result<MaterialChunkMsg> decodeMaterialChunk(const Bytes& bytes);  // ≤ one chunk + 8 KiB

struct MaterialFetchSettings {
  // Asking side.
  DurationMs request_timeout_ms = 5000;        // one chunk's round trip
  DurationMs overall_deadline_ms = 60 * 1000;  // the whole file, all chunks and retries
  int attempts_per_chunk = 2;                  // a lost chunk is asked again while the deadline allows
  size_t max_fetches_in_flight = 8;            // distinct files fetched at once (memory: ≤ 8 × 16 MiB)
  size_t max_waiters_per_fetch = 64;           // callers sharing one fetch
  size_t max_sources = kMaxFetchSources;       // storing nodes asked in turn (≥ 1)
  uint64_t cache_max_bytes = kDefaultFetchCacheMaxBytes;  // fetched files kept (config fetch_cache_max_bytes)
  // Answering side.
  size_t chunk_bytes = kMaterialChunkBytes;    // ≤ kMaterialChunkBytes
  DurationMs max_request_age_ms = 5 * 60 * 1000;  // older requests are refused (limits replays)
};

struct FetchedMaterial {
  enum class Source { kStoredHere, kCached, kFetched };
  MaterialRecordInfo record;  // this node's copy of the storing node's record
  Bytes content;              // verified against record.hash
  Source source = Source::kFetched;
};
const char* fetchSourceName(FetchedMaterial::Source source);  // "stored_here", "cached", "fetched"

class MaterialFetcher {
 public:
  using Done = std::function<void(Result<FetchedMaterial>)>;
  // The records of `hash` for `holder` that this node's subtree relayed up: one per storing
  // node, newest first, at most `limit`; empty if there is none.
  using FindSubtreeRecords = std::function<Result<std::vector<MaterialRecordInfo>>(
      const std::string& hash, const std::string& holder, size_t limit)>;

  struct Counters {
    uint64_t fetches_started = 0;     // chunk streams begun (coalesced callers share one)
    uint64_t fetches_coalesced = 0;   // callers that joined a stream already running
    uint64_t chunk_requests_sent = 0;
    uint64_t answers_rejected = 0;    // answers that failed a check (signature, signer, size, hash)
    uint64_t files_cached = 0;
    uint64_t source_fallbacks = 0;    // a storing node failed and the next one was asked
    uint64_t cache_hits = 0;          // served from the cache
    uint64_t cache_evictions = 0;     // cached files removed to keep the cache within its bound
    uint64_t cache_bytes = 0;         // what the cache holds now (files stored here not counted)
    uint64_t cache_files = 0;
  };

  // Every reference must outlive the fetcher.
  MaterialFetcher(const Identity& identity, const Verifier& verifier, MaterialStore& store, Clock& clock,
                  Transport& transport, Random& random, FindSubtreeRecords find_subtree_records,
                  MaterialFetchSettings settings = {});
  // Callbacks of fetches still running are dropped, never called (the node is going away).
  ~MaterialFetcher();
  MaterialFetcher(const MaterialFetcher&) = delete;
  MaterialFetcher& operator=(const MaterialFetcher&) = delete;

  // The file of `hash` for `holder`: from this node's own store, its cache, or the storing node.
  // `done` runs exactly once on the executor with the file or an error a person can act on:
  // INVALID_ARGUMENT (bad hash or holder), NOT_FOUND (no record here, or the storing node has no
  // such file), UNAUTHORIZED (the storing node refused), TIMEOUT / UNAVAILABLE / NO_RESPONDERS
  // (the storing node could not be reached: which node, for how long), CORRUPT (the answers did
  // not check out; nothing is kept), RESOURCE_EXHAUSTED (too many fetches at once). When several
  // storing nodes were asked, the message names each with its failure and the code is the first
  // one a retry may cure (TIMEOUT, NO_RESPONDERS), else the newest record's node's.
  void fetch(const std::string& hash, const std::string& holder, Done done);

  const Counters& counters() const { return counters_; }

  struct Stream;         // one running chunk stream (fetch.cpp)
  struct SourceFailure;  // why one storing node did not deliver (fetch.cpp)
 private:
  void start(std::vector<MaterialRecordInfo> sources, Done done);
  void requestChunk(const std::string& hash);
  void onAnswer(const std::string& hash, uint64_t nonce, Result<Bytes> reply);
  void onChunk(const std::string& hash, const OpenedEnvelope& opened, const MaterialChunkMsg& chunk);
  void failSource(const std::string& hash, SourceFailure failure);
  void keep(const std::string& hash, const Bytes& content);
  void refreshCacheUsage();
  void finish(const std::string& hash, Result<FetchedMaterial> result);
  void later(Done done, Result<FetchedMaterial> result);

  const Identity& identity_;
  const Verifier& verifier_;
  MaterialStore& store_;
  Clock& clock_;
  Transport& transport_;
  Random& random_;
  FindSubtreeRecords find_subtree_records_;
  MaterialFetchSettings settings_;
  std::map<std::string, std::unique_ptr<Stream>> streams_;  // by hash
  Counters counters_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

class MaterialResponder {
 public:
  struct Counters {
    uint64_t chunks_sent = 0;
    uint64_t refused = 0;   // signed error answers (unauthorized, unknown hash, wrong holder...)
    uint64_t dropped = 0;   // garbage: nothing verifiable to answer to
  };

  // Every reference must outlive the responder.
  MaterialResponder(const Identity& identity, const Verifier& verifier, MaterialStore& store, Clock& clock,
                    Transport& transport, MaterialFetchSettings settings = {});
  ~MaterialResponder();  // unsubscribes
  MaterialResponder(const MaterialResponder&) = delete;
  MaterialResponder& operator=(const MaterialResponder&) = delete;

  // Subscribes to materialSubject(own division).
  Status start();
  // Stops answering (unsubscribes); safe to call twice.
  void stop();
  // One request, as delivered on the subject (public for tests).
  void answer(const InboundMessage& request);

  const Counters& counters() const { return counters_; }

 private:
  void refuse(const InboundMessage& request, const OpenedEnvelope& asked, const std::string& hash, const Status& why);
  void send(const InboundMessage& request, const OpenedEnvelope& asked, const Bytes& payload);
  // Opens a request the node's verifier refused as UNAUTHORIZED, only to learn who signed it and
  // which nonce to answer, so the refusal reaches the asker signed and bound to its request.
  Result<OpenedEnvelope> openForRefusal(const Bytes& sealed);
  // Loads `hash` into last_content_ (checked against its hash) unless it is there already.
  Status loadFile(const std::string& hash);

  const Identity& identity_;
  const Verifier& verifier_;
  MaterialStore& store_;
  Clock& clock_;
  Transport& transport_;
  MaterialFetchSettings settings_;
  Transport::SubscriptionId subscription_ = 0;
  // The kinds as a statement (no authority rule), for openForRefusal only.
  KindRegistry refusal_kinds_;
  std::optional<Verifier> refusal_verifier_;
  // The last file served: a file goes out in many chunks, and re-reading and re-hashing up to
  // 16 MiB for each one would cost more than the network. One entry, ≤ kMaxMaterialBytes,
  // released when its last chunk goes out.
  std::string last_hash_;
  Bytes last_content_;
  Counters counters_;
};

}  // namespace tongban
