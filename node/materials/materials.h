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

  Result<MaterialRecordInfo> get(const std::string& hash, const std::string& holder = "");
  // The file, checked against its hash (kCorrupt if the disk changed it).
  Result<Bytes> read(const std::string& hash);
  // The holder's newest material of `kind` stored here, if any (for reuse at intake).
  Result<std::optional<MaterialRecordInfo>> findReusable(const std::string& holder, const std::string& kind);
  Result<std::vector<MaterialRecordInfo>> listByHolder(const std::string& holder);

  // A file fetched from the node that stores it (fetch.h), kept under the same content address
  // as own files so the next request is local. Writes no record and sends nothing upward: the
  // record belongs to the storing node and already reached us. kCorrupt (nothing written) if the
  // content does not hash to `hash`.
  Status cacheFetched(const std::string& hash, const Bytes& content);
  // The file for `hash` if this node has it (stored here or fetched before), checked against the
  // hash (kCorrupt if the disk changed it); nullopt if the node has no such file.
  Result<std::optional<Bytes>> readIfPresent(const std::string& hash);

 private:
  std::string filePath(const std::string& hash) const;

  MaterialStore() = default;
  Database* db_ = nullptr;
  std::string directory_;
  const Identity* identity_ = nullptr;
  EnqueueUp enqueue_up_;
};

}  // namespace tongban
