// Materials (材料): applicants' documents, scanned once and reused (一次收取). Files are stored
// content-addressed under <data_dir>/materials/<2 hex>/<sha-256 hex>; their metadata lives in
// SQLite with the clerk who checked the scan against the original and the node's seal (its
// Ed25519 signature over "hash|kind|holder"). The metadata record, not the file, is sent
// upward so that ancestors know what exists in their subtree.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "federation/store/database.h"
#include "federation/trust/keys.h"
#include "federation/trust/envelope.h"

namespace tongban {

inline constexpr MessageKind kMaterialRecordKind = 102;  // durable, up, relayed
inline constexpr size_t kMaxMaterialBytes = 16 << 20;    // one scan; the HTTP body limit matches

// The bound on the files this node keeps after fetching them from their storing node (fetch.h;
// config key fetch_cache_max_bytes). The least recently used go first; files stored here never do.
inline constexpr uint64_t kDefaultFetchCacheMaxBytes = uint64_t{2} << 30;  // 2 GiB: ~2,000 typical scans
inline constexpr uint64_t kMinFetchCacheMaxBytes = kMaxMaterialBytes;       // the largest file always fits
inline constexpr uint64_t kMaxFetchCacheMaxBytes = uint64_t{1} << 40;       // 1 TiB

struct MaterialRecordInfo {
  std::string hash;           // SHA-256, hex
  std::string kind;
  std::string holder;         // applicant ID
  uint64_t size_bytes = 0;
  std::string content_type;
  std::string stored_at;      // division holding the file
  std::string verified_by;
  TimeMs verified_at_ms = 0;
  Bytes seal;
};

Bytes encodeMaterialRecord(const MaterialRecordInfo& record);
Result<MaterialRecordInfo> decodeMaterialRecord(const Bytes& bytes);
// The bytes a seal signs.
std::string sealedText(const std::string& hash, const std::string& kind, const std::string& holder);
// How files are addressed: the SHA-256 of the content, lower-case hex.
std::string materialHash(const Bytes& content);

// The records of files this node scanned itself (not those its subtree relayed up) whose
// holder, or whose hash, is `key`: at most `limit`, in a stable order (hash, kind, holder).
enum class MaterialKey { kHolder, kHash };
Result<std::vector<MaterialRecordInfo>> listOwnMaterials(Database& db, MaterialKey by, const std::string& key,
                                                         size_t limit);

class MaterialStore {
 public:
  using EnqueueUp = std::function<Result<uint64_t>(MessageKind kind, const Bytes& payload)>;

  // `directory`: where files go (created). `enqueue_up` may be null (the city).
  static Result<MaterialStore> open(Database& db, const std::string& directory, const Identity& identity,
                                    EnqueueUp enqueue_up);

  // Stores a file for a holder, verified by a clerk. The same content for the same holder and
  // kind is stored once (returns the existing record). The file is written (fsynced, renamed)
  // before the metadata commits, so a record never points at a missing file.
  Result<MaterialRecordInfo> put(const Bytes& content, const std::string& kind, const std::string& holder,
                                 const std::string& content_type, const std::string& verified_by, TimeMs now);

  // The record of file `hash` stored here ("" holder / kind: any; the newest if several). One file
  // may be stored for a holder under several kinds, each its own record and seal.
  Result<MaterialRecordInfo> get(const std::string& hash, const std::string& holder = "", const std::string& kind = "");
  // The file, checked against its hash (kCorrupt if the disk changed it).
  Result<Bytes> read(const std::string& hash);
  // The holder's newest material of `kind` stored here, if any (for reuse at intake).
  Result<std::optional<MaterialRecordInfo>> findReusable(const std::string& holder, const std::string& kind);
  Result<std::vector<MaterialRecordInfo>> listByHolder(const std::string& holder);

  // --- The fetched-file cache ---
  // Files fetched from the node that stores them (fetch.h) are kept under the same content
  // address as own files, so the next request is local. A cached file has no material record
  // (the record belongs to the storing node and already reached us; nothing is sent upward) but
  // a row in `fetch_cache` with its size and last use, which bounds the cache. A file with a
  // material record here is never cache, whatever else refers to it.
  //
  // Crash safety: the row is written before the file and the file removed before the row, so a
  // crash leaves at worst a row without a file, never an unaccounted file. open() reconciles
  // anyway (rows without a file are dropped; files with neither row nor record, e.g. cached
  // before this table existed or left by an interrupted put(), are adopted as least recently
  // used; "*.tmp" leftovers of an interrupted write are removed), so a start always sees the
  // cache as it is on disk.
  struct FetchCacheUsage {
    uint64_t bytes = 0;
    uint64_t files = 0;
  };
  struct FetchCacheEviction {
    FetchCacheUsage usage;        // after evicting
    uint64_t evicted_files = 0;
    uint64_t evicted_bytes = 0;
    bool over_bound = false;      // still over: only files that may not go are left
  };

  // Keeps a fetched file and marks it used at `now`. kCorrupt (nothing written) if the content
  // does not hash to `hash`. A file stored here is rewritten (a damaged copy is repaired) but not
  // made cache.
  Status cacheFetched(const std::string& hash, const Bytes& content, TimeMs now);
  // Evicts least recently used cached files until the cache holds at most `max_bytes`; never a
  // file stored here and never `keep` (the file just fetched, which may alone exceed the bound).
  Result<FetchCacheEviction> evictFetched(uint64_t max_bytes, const std::string& keep = "");
  // A cache hit: `hash` becomes the most recently used. Nothing happens for a file stored here.
  Status touchFetched(const std::string& hash, TimeMs now);
  Result<FetchCacheUsage> fetchCacheUsage();
  // The file for `hash` if this node has it (stored here or fetched before), checked against the
  // hash (kCorrupt if the disk changed it); nullopt if the node has no such file.
  Result<std::optional<Bytes>> readIfPresent(const std::string& hash);

 private:
  std::string filePath(const std::string& hash) const;
  Status reconcileFetchCache();
  Status adoptUnaccountedFiles();
  Result<bool> storedHere(const std::string& hash);

  MaterialStore() = default;
  Database* db_ = nullptr;
  std::string directory_;
  const Identity* identity_ = nullptr;
  EnqueueUp enqueue_up_;
};

}  // namespace tongban
