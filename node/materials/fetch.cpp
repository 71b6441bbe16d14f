#include "node/materials/fetch.h"

#include <algorithm>

#include <spdlog/spdlog.h>

#include "federation/util/capnp_io.h"
#include "schema/material_fetch.capnp.h"

namespace tongban {

namespace {

using capnp_io::text;

// Requests are tiny; an answer is one chunk plus its framing.
constexpr size_t kMaxRequestPayloadBytes = 4 * 1024;
constexpr size_t kMaxChunkPayloadBytes = kMaterialChunkBytes + 8 * 1024;
// Room for the chain and framing around a chunk inside one sealed envelope (EnvelopeLimits).
constexpr DurationMs kRetryDelayMs = 250;

bool isHash(const std::string& s) {
  return s.size() == 64 && s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

// "3fa2c1d0e9ab…": enough to recognise a material in a message, short enough to read.
std::string shortHash(const std::string& hash) { return hash.size() > 12 ? hash.substr(0, 12) + "…" : hash; }

ErrorCode errorCodeFromName(const std::string& name) {
  for (int c = static_cast<int>(ErrorCode::kInvalidArgument); c <= static_cast<int>(ErrorCode::kPermissionDenied); ++c) {
    if (name == errorCodeName(static_cast<ErrorCode>(c))) return static_cast<ErrorCode>(c);
  }
  return ErrorCode::kInternal;
}

bool sealVerifies(const MaterialRecordInfo& record, const PublicKey& key) {
  if (record.seal.size() != sizeof(Signature)) return false;
  Signature sig;
  std::copy(record.seal.begin(), record.seal.end(), sig.begin());
  const std::string sealed = sealedText(record.hash, record.kind, record.holder);
  return verifySignature(key, reinterpret_cast<const uint8_t*>(sealed.data()), sealed.size(), sig);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Kinds, subject, wire codecs

void registerMaterialFetchKinds(KindRegistry& registry) {
  registry.add(kMaterialFetchKind, {"material-fetch", Direction::kDownToDescendant, /*durable=*/false});
  registry.add(kMaterialChunkKind, {"material-chunk", Direction::kReply, /*durable=*/false});
}

std::string materialSubject(const DivisionCode& node) { return "tb." + node.str() + ".material"; }

const char* fetchSourceName(FetchedMaterial::Source source) {
  switch (source) {
    case FetchedMaterial::Source::kStoredHere: return "stored_here";
    case FetchedMaterial::Source::kCached: return "cached";
    case FetchedMaterial::Source::kFetched: return "fetched";
  }
  return "unknown";
}

Bytes encodeMaterialFetchRequest(const MaterialFetchRequestMsg& m) {
  capnp::MallocMessageBuilder b;
  auto w = b.initRoot<wire::MaterialFetchRequest>();
  w.setHash(m.hash);
  w.setHolder(m.holder);
  w.setOffset(m.offset);
  return capnp_io::flatBytes(b);
}

Result<MaterialFetchRequestMsg> decodeMaterialFetchRequest(const Bytes& bytes) {
  return capnp_io::read<wire::MaterialFetchRequest>(
      bytes, "material fetch request", kMaxRequestPayloadBytes,
      [](wire::MaterialFetchRequest::Reader w) -> Result<MaterialFetchRequestMsg> {
        MaterialFetchRequestMsg m{text(w.getHash()), text(w.getHolder()), w.getOffset()};
        if (!isHash(m.hash)) return Status(ErrorCode::kMalformed, "material fetch request without a valid hash");
        if (m.holder.empty() || m.holder.size() > 64) {
          return Status(ErrorCode::kMalformed, "material fetch request without a holder");
        }
        return m;
      });
}

Bytes encodeMaterialChunk(const MaterialChunkMsg& m) {
  capnp::MallocMessageBuilder b;
  auto w = b.initRoot<wire::MaterialChunk>();
  w.setHash(m.hash);
  w.setTotalSize(m.total_size);
  w.setOffset(m.offset);
  w.setChunk(capnp_io::dataOf(m.chunk));
  w.setErrorCode(m.error_code);
  w.setErrorMessage(m.error_message);
  return capnp_io::flatBytes(b);
}

Result<MaterialChunkMsg> decodeMaterialChunk(const Bytes& bytes) {
  return capnp_io::read<wire::MaterialChunk>(bytes, "material chunk", kMaxChunkPayloadBytes,
                                             [](wire::MaterialChunk::Reader w) -> Result<MaterialChunkMsg> {
                                               MaterialChunkMsg m;
                                               m.hash = text(w.getHash());
                                               m.total_size = w.getTotalSize();
                                               m.offset = w.getOffset();
                                               m.chunk = capnp_io::bytesOf(w.getChunk());
                                               m.error_code = text(w.getErrorCode());
                                               m.error_message = text(w.getErrorMessage());
                                               if (m.error_message.size() > 2048) m.error_message.resize(2048);
                                               return m;
                                             });
}

// ---------------------------------------------------------------------------------------------
// Asking side

struct MaterialFetcher::SourceFailure {
  std::string node;
  ErrorCode code = ErrorCode::kInternal;
  std::string reason;  // follows the node's name: ", which did not answer …", "; 3 of 5 bytes arrived …"
  std::string advice;  // what a person can do about it; may be empty
};

struct MaterialFetcher::Stream {
  std::vector<MaterialRecordInfo> sources;  // one record per storing node, newest first
  size_t source = 0;                        // the one being asked
  std::vector<SourceFailure> failures;      // of the sources asked before it, in order
  MaterialRecordInfo record;   // sources[source]: its seal is checked against the answering key
  DivisionCode storing_node;
  struct Waiter {
    MaterialRecordInfo record;  // each caller's own record (holders may differ for one file)
    Done done;
  };
  std::vector<Waiter> waiters;
  Bytes content;
  bool answered = false;       // the first chunk arrived and the seal checked out
  PublicKey signer_key{};
  TimeMs started_ms = 0;
  TimeMs deadline_ms = 0;      // for the whole file, across every source asked
  int attempts = 0;            // for the chunk being asked for
  uint64_t nonce = 0;          // of the request in flight
  Clock::TimerId retry_timer = 0;
};

namespace {

// Whether this node may ask `record`'s storing node, for a size that can be right.
Status checkSource(const DivisionCode& self, const MaterialRecordInfo& record) {
  const std::string what = "material " + shortHash(record.hash);
  auto storing = DivisionCode::parse(record.stored_at);
  if (!storing || !self.isAncestorOf(*storing)) {
    return Status(ErrorCode::kFailedPrecondition, what + " is recorded as stored at '" + record.stored_at +
                                                      "', which is not below " + self.str() +
                                                      "; only its ancestors may fetch it");
  }
  if (record.size_bytes == 0 || record.size_bytes > kMaxMaterialBytes) {
    return Status(ErrorCode::kCorrupt, "the record of " + what + " gives a size of " +
                                           std::to_string(record.size_bytes) + " bytes, outside 1.." +
                                           std::to_string(kMaxMaterialBytes));
  }
  return Status::ok();
}

// Starts over with the source at `index`: nothing of an earlier source's answers carries over.
void useSource(MaterialFetcher::Stream& s, size_t index) {
  s.source = index;
  s.record = s.sources[index];
  s.storing_node = DivisionCode::parse(s.record.stored_at).value();  // checkSource passed
  s.content.clear();
  s.content.reserve(s.record.size_bytes);
  s.answered = false;
  s.signer_key = PublicKey{};
  s.attempts = 0;
}

bool retryMayCure(ErrorCode code) { return code == ErrorCode::kTimeout || code == ErrorCode::kNoResponders; }

// One error for a fetch no source served: each node asked, in order, with why it failed.
Status failedEverywhere(const std::string& hash, const std::vector<MaterialFetcher::SourceFailure>& failures,
                        const std::vector<std::string>& not_asked) {
  const std::string what = "material " + shortHash(hash);
  if (failures.size() == 1 && not_asked.empty()) {
    const auto& f = failures.front();
    return Status(f.code, what + " is stored at " + f.node + f.reason + (f.advice.empty() ? "" : "; " + f.advice));
  }
  std::string message = what + " could not be fetched; storing nodes asked, newest record first:";
  for (size_t i = 0; i < failures.size(); ++i) {
    message += " (" + std::to_string(i + 1) + ") " + failures[i].node + failures[i].reason + ";";
  }
  if (!not_asked.empty()) {
    message += " not asked before the deadline:";
    for (const auto& node : not_asked) message += " " + node;
    message += ";";
  }
  // The code a person acts on: a failure that a retry may cure first, else the newest record's.
  ErrorCode code = failures.front().code;
  std::string advice = failures.front().advice;
  for (const auto& f : failures) {
    if (retryMayCure(f.code)) {
      code = f.code;
      advice = "try again when their links are up";
      break;
    }
  }
  message.pop_back();
  return Status(code, message + (advice.empty() ? "" : "; " + advice));
}

}  // namespace

MaterialFetcher::MaterialFetcher(const Identity& identity, const Verifier& verifier, MaterialStore& store,
                                 Clock& clock, Transport& transport, Random& random,
                                 FindSubtreeRecords find_subtree_records, MaterialFetchSettings settings)
    : identity_(identity),
      verifier_(verifier),
      store_(store),
      clock_(clock),
      transport_(transport),
      random_(random),
      find_subtree_records_(std::move(find_subtree_records)),
      settings_(settings) {
  settings_.max_sources = std::max<size_t>(settings_.max_sources, 1);
  // The bound holds from the start: a lowered fetch_cache_max_bytes takes effect at once.
  if (auto evicted = store_.evictFetched(settings_.cache_max_bytes); evicted.isOk()) {
    counters_.cache_evictions += evicted->evicted_files;
    if (evicted->evicted_files > 0) {
      spdlog::info("[{}] fetched-file cache: {} file(s), {} bytes evicted at start to fit {} bytes",
                   identity_.division.str(), evicted->evicted_files, evicted->evicted_bytes, settings_.cache_max_bytes);
    }
  } else {
    spdlog::error("[{}] fetched-file cache: {}", identity_.division.str(), evicted.status().toString());
  }
  refreshCacheUsage();
}

MaterialFetcher::~MaterialFetcher() {
  *alive_ = false;
  for (auto& [hash, stream] : streams_) {
    if (stream->retry_timer) clock_.cancel(stream->retry_timer);
  }
}

void MaterialFetcher::later(Done done, Result<FetchedMaterial> result) {
  clock_.schedule(0, [alive = alive_, done = std::move(done), result = std::move(result)]() mutable {
    if (*alive) done(std::move(result));
  });
}

void MaterialFetcher::refreshCacheUsage() {
  auto usage = store_.fetchCacheUsage();
  if (!usage) {
    spdlog::warn("[{}] fetched-file cache: cannot read its size: {}", identity_.division.str(),
                 usage.status().toString());
    return;
  }
  counters_.cache_bytes = usage->bytes;
  counters_.cache_files = usage->files;
}

void MaterialFetcher::fetch(const std::string& hash, const std::string& holder, Done done) {
  if (!isHash(hash)) {
    return later(std::move(done), Status(ErrorCode::kInvalidArgument,
                                         "'" + hash + "' is not a material hash (64 lower-case hex digits)"));
  }
  if (holder.empty()) {
    return later(std::move(done),
                 Status(ErrorCode::kInvalidArgument, "name the holder (applicant ID) of material " + shortHash(hash)));
  }

  // Stored here: the file is ours.
  if (auto own = store_.get(hash, holder); own.isOk()) {
    auto content = store_.read(hash);
    if (!content) return later(std::move(done), content.status());
    return later(std::move(done), FetchedMaterial{*own, std::move(content).value(), FetchedMaterial::Source::kStoredHere});
  } else if (own.status().code() != ErrorCode::kNotFound) {
    return later(std::move(done), own.status());
  }

  auto found = find_subtree_records_(hash, holder, settings_.max_sources);
  if (!found) return later(std::move(done), found.status());
  if (found->empty()) {
    return later(std::move(done),
                 Status(ErrorCode::kNotFound, "no material " + shortHash(hash) + " of holder " + holder +
                                                  " is recorded at " + identity_.division.str() +
                                                  " or in its subtree; a file can be fetched only by an ancestor of "
                                                  "the node that stored it"));
  }
  if (found->size() > settings_.max_sources) found->resize(settings_.max_sources);
  const MaterialRecordInfo& record = found->front();

  // Fetched before: the cache holds it under the same content address.
  auto cached = store_.readIfPresent(hash);
  if (cached.isOk() && cached->has_value()) {
    ++counters_.cache_hits;
    // The youngest in LRU order now; failing to note it only makes the file go a little sooner.
    if (auto touched = store_.touchFetched(hash, clock_.now()); !touched.isOk()) {
      spdlog::warn("[{}] fetched-file cache: cannot note the use of {}: {}", identity_.division.str(),
                   shortHash(hash), touched.toString());
    }
    return later(std::move(done), FetchedMaterial{record, std::move(**cached), FetchedMaterial::Source::kCached});
  }
  if (!cached) {
    // A damaged cache file is fetched again (and overwritten); anything else is the caller's.
    if (cached.status().code() != ErrorCode::kCorrupt) return later(std::move(done), cached.status());
    spdlog::warn("[{}] cached material {} is damaged; fetching it again from {}", identity_.division.str(),
                 shortHash(hash), record.stored_at);
  }
  start(std::move(found).value(), std::move(done));
}

void MaterialFetcher::start(std::vector<MaterialRecordInfo> sources, Done done) {
  const std::string hash = sources.front().hash;
  if (auto it = streams_.find(hash); it != streams_.end()) {
    if (it->second->waiters.size() >= settings_.max_waiters_per_fetch) {
      return later(std::move(done), Status(ErrorCode::kResourceExhausted,
                                           std::to_string(settings_.max_waiters_per_fetch) +
                                               " requests already wait for material " + shortHash(hash) +
                                               "; try again in a moment"));
    }
    ++counters_.fetches_coalesced;
    it->second->waiters.push_back({sources.front(), std::move(done)});
    return;
  }
  if (streams_.size() >= settings_.max_fetches_in_flight) {
    return later(std::move(done), Status(ErrorCode::kResourceExhausted,
                                         std::to_string(streams_.size()) + " material files are being fetched " +
                                             "already (the limit); try again in a moment"));
  }
  // Only sources this node may ask, with a size that can be right; the newest record's problem
  // is the caller's answer if none is left.
  const MaterialRecordInfo caller_record = sources.front();
  std::vector<MaterialRecordInfo> usable;
  Status first_problem = Status::ok();
  for (auto& record : sources) {
    if (Status why = checkSource(identity_.division, record); !why.isOk()) {
      spdlog::warn("[{}] not asking {} for material {}: {}", identity_.division.str(), record.stored_at,
                   shortHash(hash), why.toString());
      if (first_problem.isOk()) first_problem = why;
      continue;
    }
    usable.push_back(std::move(record));
  }
  if (usable.empty()) return later(std::move(done), first_problem);

  auto stream = std::make_unique<Stream>();
  stream->sources = std::move(usable);
  useSource(*stream, 0);
  stream->started_ms = clock_.now();
  stream->deadline_ms = stream->started_ms + settings_.overall_deadline_ms;
  stream->waiters.push_back({caller_record, std::move(done)});
  spdlog::info("[{}] fetching material {} ({} bytes) from {} ({} storing node(s) known)", identity_.division.str(),
               shortHash(hash), stream->record.size_bytes, stream->record.stored_at, stream->sources.size());
  streams_.emplace(hash, std::move(stream));
  ++counters_.fetches_started;
  requestChunk(hash);
}

void MaterialFetcher::requestChunk(const std::string& hash) {
  auto it = streams_.find(hash);
  if (it == streams_.end()) return;
  Stream& s = *it->second;
  s.retry_timer = 0;
  const TimeMs now = clock_.now();
  const DurationMs left = s.deadline_ms - now;
  if (left <= 0) {
    return failSource(hash, {s.record.stored_at, ErrorCode::kTimeout,
                             "; " + std::to_string(s.content.size()) + " of " + std::to_string(s.record.size_bytes) +
                                 " bytes arrived within the " + std::to_string(settings_.overall_deadline_ms) +
                                 " ms allowed",
                             "try again when its link is better"});
  }
  ++s.attempts;
  s.nonce = random_.next();
  SealParams p;
  p.kind = kMaterialFetchKind;
  p.timestamp_ms = now;
  p.target = s.storing_node;
  p.payload = encodeMaterialFetchRequest({hash, s.record.holder, static_cast<uint64_t>(s.content.size())});
  p.nonce = s.nonce;
  ++counters_.chunk_requests_sent;
  transport_.request(materialSubject(s.storing_node), sealEnvelope(identity_, p),
                     std::min<DurationMs>(settings_.request_timeout_ms, left),
                     [this, alive = alive_, hash, nonce = s.nonce](Result<Bytes> reply) {
                       if (*alive) onAnswer(hash, nonce, std::move(reply));
                     });
}

void MaterialFetcher::onAnswer(const std::string& hash, uint64_t nonce, Result<Bytes> reply) {
  auto it = streams_.find(hash);
  if (it == streams_.end() || it->second->nonce != nonce) return;  // a stream (or source) that ended already
  Stream& s = *it->second;
  const std::string& node = s.record.stored_at;

  if (!reply) {
    // Could not ask: ask again while attempts and the deadline allow, then say which link failed.
    const ErrorCode code = reply.status().code();
    if (s.attempts < settings_.attempts_per_chunk && clock_.now() + kRetryDelayMs < s.deadline_ms) {
      s.retry_timer = clock_.schedule(kRetryDelayMs, [this, alive = alive_, hash] {
        if (*alive) requestChunk(hash);
      });
      return;
    }
    const std::string attempts = std::to_string(s.attempts) + " attempts";
    if (code == ErrorCode::kTimeout) {
      return failSource(hash, {node, code,
                               ", which did not answer within " + std::to_string(settings_.request_timeout_ms) +
                                   " ms (" + attempts + ")",
                               "try again when its link is up"});
    }
    if (code == ErrorCode::kNoResponders) {
      return failSource(hash, {node, code,
                               ", which nobody on the bus can reach now (its node is down or a link on the way is "
                               "cut; " + attempts + ")",
                               "try again when its link is up"});
    }
    if (code == ErrorCode::kUnavailable) {
      return failSource(hash, {node, code,
                               ", but this node " + identity_.division.str() + " is not connected to the message bus",
                               "try again when it is"});
    }
    return failSource(hash, {node, code, ", which could not be asked: " + reply.status().toString(), ""});
  }

  // Every byte is hostile until verified: the answer must be the storing node's, for this request.
  auto opened = verifier_.open(*reply, identity_.division, clock_.now(), nullptr);
  std::string why;
  if (!opened) {
    why = opened.status().toString();
  } else if (opened->kind != kMaterialChunkKind) {
    why = "kind " + std::to_string(opened->kind) + " is not a chunk";
  } else if (opened->signer != s.storing_node) {
    why = "signed by " + opened->signer.str() + ", not by the storing node";
  } else if (opened->nonce != nonce) {
    why = "it answers another request";
  }
  if (why.empty()) {
    auto chunk = decodeMaterialChunk(opened->payload);
    if (chunk) return onChunk(hash, *opened, *chunk);
    why = chunk.status().toString();
  }
  ++counters_.answers_rejected;
  spdlog::warn("[{}] rejected an answer for material {} from {}: {}", identity_.division.str(), shortHash(hash), node,
               why);
  failSource(hash, {node, ErrorCode::kCorrupt, ", whose answer was rejected (" + why + "); nothing was kept",
                    "try again; if it persists, tell the operator of " + node});
}

void MaterialFetcher::onChunk(const std::string& hash, const OpenedEnvelope& opened, const MaterialChunkMsg& chunk) {
  Stream& s = *streams_.at(hash);
  const std::string node = s.record.stored_at;
  auto rejected = [&](const std::string& why) {
    ++counters_.answers_rejected;
    spdlog::warn("[{}] rejected an answer for material {} from {}: {}", identity_.division.str(), shortHash(hash),
                 node, why);
    failSource(hash, {node, ErrorCode::kCorrupt, ", whose answer was rejected (" + why + "); nothing was kept",
                      "try again; if it persists, tell the operator of " + node});
  };
  if (!chunk.error_code.empty()) {
    ErrorCode code = errorCodeFromName(chunk.error_code);
    // The storing node judging us unauthorised is a refusal of this node, not a login problem.
    if (code == ErrorCode::kUnauthorized) code = ErrorCode::kPermissionDenied;
    return failSource(hash, {node, code, ", which refused: " + chunk.error_code + ": " + chunk.error_message, ""});
  }
  if (chunk.hash != hash) return rejected("it carries material " + shortHash(chunk.hash));
  if (chunk.offset != s.content.size()) {
    return rejected("it starts at byte " + std::to_string(chunk.offset) + ", not " + std::to_string(s.content.size()));
  }
  if (chunk.total_size != s.record.size_bytes) {
    return rejected("it gives a size of " + std::to_string(chunk.total_size) + " bytes, the record " +
                    std::to_string(s.record.size_bytes));
  }
  if (chunk.chunk.empty() || chunk.chunk.size() > kMaterialChunkBytes ||
      chunk.chunk.size() > s.record.size_bytes - s.content.size()) {
    return rejected("a chunk of " + std::to_string(chunk.chunk.size()) + " bytes at byte " +
                    std::to_string(chunk.offset));
  }
  if (!s.answered) {
    // The key that signs today's answer must be the key that sealed the record at upload.
    if (!sealVerifies(s.record, opened.signer_key)) return rejected("the record's seal does not verify with its key");
    s.answered = true;
    s.signer_key = opened.signer_key;
  } else if (opened.signer_key != s.signer_key) {
    return rejected("its key changed in the middle of the file");
  }

  s.content.insert(s.content.end(), chunk.chunk.begin(), chunk.chunk.end());
  if (s.content.size() < s.record.size_bytes) {
    s.attempts = 0;
    return requestChunk(hash);
  }
  if (materialHash(s.content) != hash) return rejected("the assembled file does not hash to " + shortHash(hash));
  keep(hash, s.content);
  spdlog::info("[{}] material {} ({} bytes) fetched from {} in {} ms", identity_.division.str(), shortHash(hash),
               s.content.size(), node, clock_.now() - s.started_ms);
  finish(hash, FetchedMaterial{s.record, s.content, FetchedMaterial::Source::kFetched});
}

void MaterialFetcher::failSource(const std::string& hash, SourceFailure failure) {
  auto it = streams_.find(hash);
  if (it == streams_.end()) return;
  Stream& s = *it->second;
  s.failures.push_back(std::move(failure));
  const SourceFailure& last = s.failures.back();
  const bool more = s.source + 1 < s.sources.size();
  // A bus this node is not connected to fails every source alike; past the deadline none is asked.
  if (more && last.code != ErrorCode::kUnavailable && clock_.now() < s.deadline_ms) {
    ++counters_.source_fallbacks;
    spdlog::warn("[{}] material {}: {}{} ({}); asking {}, which stores it too", identity_.division.str(),
                 shortHash(hash), last.node, last.reason, errorCodeName(last.code), s.sources[s.source + 1].stored_at);
    useSource(s, s.source + 1);
    return requestChunk(hash);
  }
  std::vector<std::string> not_asked;
  if (last.code != ErrorCode::kUnavailable) {
    for (size_t i = s.source + 1; i < s.sources.size(); ++i) not_asked.push_back(s.sources[i].stored_at);
  }
  finish(hash, failedEverywhere(hash, s.failures, not_asked));
}

void MaterialFetcher::keep(const std::string& hash, const Bytes& content) {
  const std::string self = identity_.division.str();
  if (auto cached = store_.cacheFetched(hash, content, clock_.now()); !cached.isOk()) {
    // The file is good; only keeping it failed. Serve it now; the next request fetches again.
    spdlog::error("[{}] could not keep fetched material {}: {}", self, shortHash(hash), cached.toString());
    return;
  }
  ++counters_.files_cached;
  auto evicted = store_.evictFetched(settings_.cache_max_bytes, hash);
  if (!evicted) {
    spdlog::error("[{}] fetched-file cache: {}", self, evicted.status().toString());
    return refreshCacheUsage();
  }
  counters_.cache_evictions += evicted->evicted_files;
  counters_.cache_bytes = evicted->usage.bytes;
  counters_.cache_files = evicted->usage.files;
  if (evicted->evicted_files > 0) {
    spdlog::info("[{}] fetched-file cache: {} least recently used file(s), {} bytes, evicted to fit {} bytes", self,
                 evicted->evicted_files, evicted->evicted_bytes, settings_.cache_max_bytes);
  }
  if (evicted->over_bound) {
    // Never the file just fetched: its caller is about to read it, and evicting it would only
    // make the next request fetch it again.
    spdlog::warn("[{}] fetched-file cache: material {} ({} bytes) alone exceeds the bound of {} bytes; kept because "
                 "it was just fetched, it goes at the next eviction (raise fetch_cache_max_bytes if this recurs)",
                 self, shortHash(hash), content.size(), settings_.cache_max_bytes);
  }
}

void MaterialFetcher::finish(const std::string& hash, Result<FetchedMaterial> result) {
  auto it = streams_.find(hash);
  if (it == streams_.end()) return;
  std::unique_ptr<Stream> stream = std::move(it->second);
  streams_.erase(it);
  if (stream->retry_timer) clock_.cancel(stream->retry_timer);
  for (auto& waiter : stream->waiters) {
    if (!result) {
      later(std::move(waiter.done), result.status());
      continue;
    }
    // A caller with the served record's holder and kind gets the served record (its seal was
    // checked), whichever storing node its own newest record named.
    const MaterialRecordInfo& served = result->record;
    if (waiter.record.holder == served.holder && waiter.record.kind == served.kind) {
      later(std::move(waiter.done), FetchedMaterial{served, result->content, result->source});
      continue;
    }
    // A caller that joined with another holder's record: that record's seal must hold too.
    if (!sealVerifies(waiter.record, stream->signer_key)) {
      later(std::move(waiter.done), Status(ErrorCode::kCorrupt, "the record of material " + shortHash(hash) +
                                                                    " for holder " + waiter.record.holder +
                                                                    " has a seal that does not verify with " +
                                                                    served.stored_at + "'s key"));
      continue;
    }
    later(std::move(waiter.done), FetchedMaterial{waiter.record, result->content, result->source});
  }
}

// ---------------------------------------------------------------------------------------------
// Answering side

MaterialResponder::MaterialResponder(const Identity& identity, const Verifier& verifier, MaterialStore& store,
                                     Clock& clock, Transport& transport, MaterialFetchSettings settings)
    : identity_(identity), verifier_(verifier), store_(store), clock_(clock), transport_(transport), settings_(settings) {
  settings_.chunk_bytes = std::clamp<size_t>(settings_.chunk_bytes, 1, kMaterialChunkBytes);
  refusal_kinds_.add(kMaterialFetchKind, {"material-fetch", Direction::kStatement, /*durable=*/false});
  auto refusal = Verifier::create(identity_.root_certificate, &refusal_kinds_);
  if (refusal) refusal_verifier_.emplace(std::move(refusal).value());
}

MaterialResponder::~MaterialResponder() { stop(); }

Status MaterialResponder::start() {
  if (subscription_) return Status::ok();
  auto sub = transport_.subscribe(materialSubject(identity_.division), [this](const InboundMessage& m) { answer(m); });
  if (!sub) return sub.status().withContext("subscribing to " + materialSubject(identity_.division));
  subscription_ = *sub;
  return Status::ok();
}

void MaterialResponder::stop() {
  if (subscription_) transport_.unsubscribe(subscription_);
  subscription_ = 0;
}

Result<OpenedEnvelope> MaterialResponder::openForRefusal(const Bytes& sealed) {
  if (!refusal_verifier_) return Status(ErrorCode::kInternal, "no verifier for refusals");
  return refusal_verifier_->open(sealed, identity_.division, clock_.now(), nullptr);
}

void MaterialResponder::send(const InboundMessage& request, const OpenedEnvelope& asked, const Bytes& payload) {
  SealParams p;
  p.kind = kMaterialChunkKind;
  p.timestamp_ms = clock_.now();
  p.target = asked.signer;
  p.payload = payload;
  p.nonce = asked.nonce;
  if (auto sent = transport_.reply(request, sealEnvelope(identity_, p)); !sent.isOk()) {
    spdlog::warn("[{}] could not answer a material request from {}: {}", identity_.division.str(), asked.signer.str(),
                 sent.toString());
  }
}

void MaterialResponder::refuse(const InboundMessage& request, const OpenedEnvelope& asked, const std::string& hash,
                               const Status& why) {
  ++counters_.refused;
  spdlog::info("[{}] refused a material request from {}: {}", identity_.division.str(), asked.signer.str(),
               why.toString());
  MaterialChunkMsg m;
  m.hash = hash;
  m.error_code = errorCodeName(why.code());
  m.error_message = why.message();
  send(request, asked, encodeMaterialChunk(m));
}

Status MaterialResponder::loadFile(const std::string& hash) {
  if (hash == last_hash_) return Status::ok();
  last_hash_.clear();
  TB_ASSIGN_OR_RETURN(last_content_, store_.read(hash));
  last_hash_ = hash;
  return Status::ok();
}

void MaterialResponder::answer(const InboundMessage& request) {
  const std::string self = identity_.division.str();
  if (request.reply_to.empty()) {
    ++counters_.dropped;
    spdlog::warn("[{}] dropped a material request without a reply subject", self);
    return;
  }
  auto opened = verifier_.open(request.data, identity_.division, clock_.now(), nullptr);
  if (!opened && opened.status().code() == ErrorCode::kUnauthorized) {
    // Verified signer, no authority (a sibling, a descendant, or addressed elsewhere): tell it so,
    // signed, so it sees a refusal and not a timeout. It gets no byte of the file.
    auto asker = openForRefusal(request.data);
    if (asker && asker->kind == kMaterialFetchKind) return refuse(request, *asker, "", opened.status());
  }
  if (!opened) {
    ++counters_.dropped;
    spdlog::warn("[{}] dropped a material request: {}", self, opened.status().toString());
    return;
  }
  if (opened->kind != kMaterialFetchKind) {
    ++counters_.dropped;
    spdlog::warn("[{}] dropped a message of kind {} from {} on {}", self, opened->kind, opened->signer.str(),
                 materialSubject(identity_.division));
    return;
  }
  if (opened->timestamp_ms + settings_.max_request_age_ms < clock_.now()) {
    return refuse(request, *opened, "",
                  Status(ErrorCode::kFailedPrecondition,
                         "the request was signed at " + std::to_string(opened->timestamp_ms) + ", more than " +
                             std::to_string(settings_.max_request_age_ms) + " ms ago; check the asking node's clock"));
  }
  auto asked = decodeMaterialFetchRequest(opened->payload);
  if (!asked) return refuse(request, *opened, "", asked.status());

  const std::string& hash = asked->hash;
  // Only files stored here, and only under the holder their record names: a hash alone does not
  // open another person's file.
  auto record = store_.get(hash, asked->holder);
  if (!record) {
    if (record.status().code() == ErrorCode::kNotFound) {
      return refuse(request, *opened, hash,
                    Status(ErrorCode::kNotFound, "no material " + shortHash(hash) + " of holder " + asked->holder +
                                                     " is stored at " + self + "; check the hash and the holder"));
    }
    return refuse(request, *opened, hash, record.status());
  }
  if (auto loaded = loadFile(hash); !loaded.isOk()) {
    spdlog::error("[{}] cannot serve material {}: {}", self, shortHash(hash), loaded.toString());
    return refuse(request, *opened, hash, loaded);
  }
  const Bytes& content = last_content_;
  if (asked->offset >= content.size()) {
    return refuse(request, *opened, hash,
                  Status(ErrorCode::kInvalidArgument, "offset " + std::to_string(asked->offset) +
                                                          " is past the end of material " + shortHash(hash) + " (" +
                                                          std::to_string(content.size()) + " bytes)"));
  }
  MaterialChunkMsg m;
  m.hash = hash;
  m.total_size = content.size();
  m.offset = asked->offset;
  const size_t length = std::min<uint64_t>(settings_.chunk_bytes, content.size() - asked->offset);
  m.chunk.assign(content.begin() + static_cast<std::ptrdiff_t>(asked->offset),
                 content.begin() + static_cast<std::ptrdiff_t>(asked->offset + length));
  ++counters_.chunks_sent;
  if (asked->offset + length == content.size()) {
    last_hash_.clear();
    last_content_ = Bytes();
  }
  send(request, *opened, encodeMaterialChunk(m));
}

}  // namespace tongban
