#include "node/materials/materials.h"

#include <filesystem>

#include <sodium.h>
#include <spdlog/spdlog.h>

#include "federation/util/capnp_io.h"
#include "federation/util/files.h"
#include "schema/node.capnp.h"

namespace tongban {

namespace {
const std::vector<Migration> kMaterialMigrations = {
    {1,
     "CREATE TABLE materials ("
     "  hash TEXT NOT NULL, holder TEXT NOT NULL, kind TEXT NOT NULL, size_bytes INTEGER NOT NULL,"
     "  content_type TEXT NOT NULL, stored_at TEXT NOT NULL, verified_by TEXT NOT NULL,"
     "  verified_at_ms INTEGER NOT NULL, seal BLOB NOT NULL, PRIMARY KEY (hash, holder, kind));"
     "CREATE INDEX materials_by_holder ON materials (holder, kind, verified_at_ms);"},
    {2,
     // The fetched-file cache (materials.h). LRU order is a counter, not the clock: a clock set
     // back would otherwise make fresh files look old. last_used_ms is for people reading it.
     "CREATE TABLE fetch_cache ("
     "  hash TEXT PRIMARY KEY, size_bytes INTEGER NOT NULL, last_used_ms INTEGER NOT NULL,"
     "  use_seq INTEGER NOT NULL);"
     "CREATE INDEX fetch_cache_by_use ON fetch_cache (use_seq, hash);"},
};

// Cached files evicted per query and transaction: one commit per batch, not per file.
constexpr int64_t kEvictionBatch = 64;
// The next use_seq: every use moves a file to the young end of the LRU order.
constexpr const char* kNextUseSeq = "(SELECT COALESCE(MAX(use_seq), 0) + 1 FROM fetch_cache)";

using capnp_io::text;

std::string sha256Hex(const Bytes& content) {
  uint8_t digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(digest, content.data(), content.size());
  return hexEncode(digest, sizeof digest);
}

bool isHash(const std::string& s) {
  return s.size() == 64 && s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

MaterialRecordInfo fromRow(Statement& s) {
  MaterialRecordInfo r;
  r.hash = s.columnText(0);
  r.holder = s.columnText(1);
  r.kind = s.columnText(2);
  r.size_bytes = static_cast<uint64_t>(s.columnInt64(3));
  r.content_type = s.columnText(4);
  r.stored_at = s.columnText(5);
  r.verified_by = s.columnText(6);
  r.verified_at_ms = s.columnInt64(7);
  r.seal = s.columnBlob(8);
  return r;
}

Result<std::vector<MaterialRecordInfo>> allRows(Statement& stmt) {
  std::vector<MaterialRecordInfo> out;
  while (true) {
    TB_ASSIGN_OR_RETURN(bool row, stmt.step());
    if (!row) break;
    out.push_back(fromRow(stmt));
  }
  return out;
}

constexpr const char* kColumns =
    "hash, holder, kind, size_bytes, content_type, stored_at, verified_by, verified_at_ms, seal";
}  // namespace

std::string sealedText(const std::string& hash, const std::string& kind, const std::string& holder) {
  return hash + "|" + kind + "|" + holder;
}

std::string materialHash(const Bytes& content) { return sha256Hex(content); }

Bytes encodeMaterialRecord(const MaterialRecordInfo& r) {
  capnp::MallocMessageBuilder b;
  auto w = b.initRoot<wire::MaterialRecord>();
  w.setHash(r.hash);
  w.setKind(r.kind);
  w.setHolder(r.holder);
  w.setSizeBytes(r.size_bytes);
  w.setContentType(r.content_type);
  w.setStoredAt(r.stored_at);
  w.setVerifiedBy(r.verified_by);
  w.setVerifiedAtMs(r.verified_at_ms);
  w.setSeal(capnp_io::dataOf(r.seal));
  return capnp_io::flatBytes(b);
}

Result<MaterialRecordInfo> decodeMaterialRecord(const Bytes& bytes) {
  return capnp_io::read<wire::MaterialRecord>(bytes, "material record", 64 * 1024,
                                              [](wire::MaterialRecord::Reader w) -> Result<MaterialRecordInfo> {
                                                MaterialRecordInfo r;
                                                r.hash = text(w.getHash());
                                                r.kind = text(w.getKind());
                                                r.holder = text(w.getHolder());
                                                r.size_bytes = w.getSizeBytes();
                                                r.content_type = text(w.getContentType());
                                                r.stored_at = text(w.getStoredAt());
                                                r.verified_by = text(w.getVerifiedBy());
                                                r.verified_at_ms = w.getVerifiedAtMs();
                                                r.seal = capnp_io::bytesOf(w.getSeal());
                                                if (!isHash(r.hash) || r.kind.empty() || r.holder.empty() ||
                                                    r.seal.size() != 64) {
                                                  return Status(ErrorCode::kMalformed,
                                                                "material record lacks a hash, kind, holder or seal");
                                                }
                                                return r;
                                              });
}

Result<MaterialStore> MaterialStore::open(Database& db, const std::string& directory, const Identity& identity,
                                          EnqueueUp enqueue_up) {
  TB_RETURN_IF_ERROR(db.migrate("materials", kMaterialMigrations));
  std::error_code ec;
  std::filesystem::create_directories(directory, ec);
  if (ec) return Status(ErrorCode::kIo, "cannot create materials directory " + directory + ": " + ec.message());
  MaterialStore store;
  store.db_ = &db;
  store.directory_ = directory;
  store.identity_ = &identity;
  store.enqueue_up_ = std::move(enqueue_up);
  TB_RETURN_IF_ERROR(store.reconcileFetchCache());
  return store;
}

Result<MaterialRecordInfo> MaterialStore::put(const Bytes& content, const std::string& kind, const std::string& holder,
                                              const std::string& content_type, const std::string& verified_by,
                                              TimeMs now) {
  if (content.empty()) return Status(ErrorCode::kInvalidArgument, "the material file is empty");
  if (content.size() > kMaxMaterialBytes) {
    return Status(ErrorCode::kResourceExhausted, "the material file is " + std::to_string(content.size()) +
                                                     " bytes; the limit is " + std::to_string(kMaxMaterialBytes));
  }
  if (kind.empty() || kind.size() > 64) return Status(ErrorCode::kInvalidArgument, "a material needs a kind (≤ 64 characters)");
  if (holder.empty() || holder.size() > 64) return Status(ErrorCode::kInvalidArgument, "a material needs its holder's ID");
  const std::string hash = sha256Hex(content);
  // Looked up as this kind: the same file may also be stored for the holder as another kind.
  if (auto existing = get(hash, holder, kind)) return existing;

  const std::string dir = directory_ + "/" + hash.substr(0, 2);
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status(ErrorCode::kIo, "cannot create " + dir + ": " + ec.message());
  const std::string path = dir + "/" + hash;
  if (!std::filesystem::exists(path)) TB_RETURN_IF_ERROR(writeFileAtomically(path, content));

  MaterialRecordInfo r;
  r.hash = hash;
  r.kind = kind;
  r.holder = holder;
  r.size_bytes = content.size();
  r.content_type = content_type.empty() ? "application/octet-stream" : content_type;
  r.stored_at = identity_->division.str();
  r.verified_by = verified_by;
  r.verified_at_ms = now;
  const std::string sealed = sealedText(hash, kind, holder);
  Signature sig = sign(identity_->keys.secret_key, reinterpret_cast<const uint8_t*>(sealed.data()), sealed.size());
  r.seal.assign(sig.begin(), sig.end());

  TB_ASSIGN_OR_RETURN(auto txn, db_->begin());
  TB_ASSIGN_OR_RETURN(auto stmt, db_->prepare(std::string("INSERT OR IGNORE INTO materials (") + kColumns +
                                              ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"));
  stmt.bind(1, r.hash).bind(2, r.holder).bind(3, r.kind).bind(4, static_cast<int64_t>(r.size_bytes));
  stmt.bind(5, r.content_type).bind(6, r.stored_at).bind(7, r.verified_by).bind(8, r.verified_at_ms).bind(9, r.seal);
  TB_RETURN_IF_ERROR(stmt.run());
  // Fetched before and now stored here: the file is this node's truth from now on, never cache.
  TB_ASSIGN_OR_RETURN(auto uncache, db_->prepare("DELETE FROM fetch_cache WHERE hash = ?1"));
  uncache.bind(1, r.hash);
  TB_RETURN_IF_ERROR(uncache.run());
  if (enqueue_up_) {
    auto seq = enqueue_up_(kMaterialRecordKind, encodeMaterialRecord(r));
    if (!seq) return seq.status();
  }
  TB_RETURN_IF_ERROR(txn.commit());
  return r;
}

Result<MaterialRecordInfo> MaterialStore::get(const std::string& hash, const std::string& holder,
                                              const std::string& kind) {
  if (!isHash(hash)) return Status(ErrorCode::kInvalidArgument, "'" + hash + "' is not a SHA-256 hex digest");
  TB_ASSIGN_OR_RETURN(auto stmt, db_->prepare(std::string("SELECT ") + kColumns +
                                              " FROM materials WHERE hash = ?1 AND (?2 = '' OR holder = ?2)"
                                              " AND (?3 = '' OR kind = ?3) ORDER BY verified_at_ms DESC LIMIT 1"));
  stmt.bind(1, hash).bind(2, holder).bind(3, kind);
  TB_ASSIGN_OR_RETURN(bool row, stmt.step());
  if (!row) {
    return Status(ErrorCode::kNotFound, "no material " + hash.substr(0, 12) + "…" +
                                            (holder.empty() ? "" : " of holder " + holder) +
                                            (kind.empty() ? "" : " as a '" + kind + "'") + " at this node");
  }
  return fromRow(stmt);
}

Result<Bytes> MaterialStore::read(const std::string& hash) {
  TB_ASSIGN_OR_RETURN(MaterialRecordInfo r, get(hash));
  TB_ASSIGN_OR_RETURN(Bytes content, readFileBytes(directory_ + "/" + hash.substr(0, 2) + "/" + hash));
  if (sha256Hex(content) != r.hash) {
    return Status(ErrorCode::kCorrupt, "material file " + hash + " no longer matches its hash; restore it from backup");
  }
  return content;
}

Result<std::optional<MaterialRecordInfo>> MaterialStore::findReusable(const std::string& holder,
                                                                      const std::string& kind) {
  TB_ASSIGN_OR_RETURN(auto stmt, db_->prepare(std::string("SELECT ") + kColumns +
                                              " FROM materials WHERE holder = ?1 AND kind = ?2"
                                              " ORDER BY verified_at_ms DESC LIMIT 1"));
  stmt.bind(1, holder).bind(2, kind);
  TB_ASSIGN_OR_RETURN(bool row, stmt.step());
  if (!row) return std::optional<MaterialRecordInfo>();
  return std::optional<MaterialRecordInfo>(fromRow(stmt));
}

Result<std::vector<MaterialRecordInfo>> listOwnMaterials(Database& db, MaterialKey by, const std::string& key,
                                                         size_t limit) {
  const char* column = by == MaterialKey::kHolder ? "holder" : "hash";
  TB_ASSIGN_OR_RETURN(auto stmt, db.prepare(std::string("SELECT ") + kColumns + " FROM materials WHERE " + column +
                                            " = ?1 ORDER BY hash, kind, holder LIMIT ?2"));
  stmt.bind(1, key).bind(2, static_cast<int64_t>(limit));
  return allRows(stmt);
}

Result<std::vector<MaterialRecordInfo>> MaterialStore::listByHolder(const std::string& holder) {
  TB_ASSIGN_OR_RETURN(auto stmt, db_->prepare(std::string("SELECT ") + kColumns +
                                              " FROM materials WHERE holder = ?1 ORDER BY verified_at_ms DESC"));
  stmt.bind(1, holder);
  return allRows(stmt);
}

std::string MaterialStore::filePath(const std::string& hash) const {
  return directory_ + "/" + hash.substr(0, 2) + "/" + hash;
}

Result<bool> MaterialStore::storedHere(const std::string& hash) {
  TB_ASSIGN_OR_RETURN(auto stmt, db_->prepare("SELECT 1 FROM materials WHERE hash = ?1 LIMIT 1"));
  stmt.bind(1, hash);
  return stmt.step();
}

Status MaterialStore::cacheFetched(const std::string& hash, const Bytes& content, TimeMs now) {
  if (!isHash(hash)) return Status(ErrorCode::kInvalidArgument, "'" + hash + "' is not a SHA-256 hex digest");
  if (content.size() > kMaxMaterialBytes) {
    return Status(ErrorCode::kResourceExhausted, "a fetched material of " + std::to_string(content.size()) +
                                                     " bytes is over the limit of " + std::to_string(kMaxMaterialBytes));
  }
  if (sha256Hex(content) != hash) {
    return Status(ErrorCode::kCorrupt, "the fetched file does not hash to " + hash + "; it was not kept");
  }
  TB_ASSIGN_OR_RETURN(bool own, storedHere(hash));
  const std::string dir = directory_ + "/" + hash.substr(0, 2);
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status(ErrorCode::kIo, "cannot create " + dir + ": " + ec.message());
  if (!own) {
    // The row before the file: a crash in between leaves a row without a file (dropped at the
    // next start), never a file the bound does not count.
    TB_ASSIGN_OR_RETURN(auto row, db_->prepare(std::string("INSERT OR REPLACE INTO fetch_cache"
                                                           " (hash, size_bytes, last_used_ms, use_seq)"
                                                           " VALUES (?1, ?2, ?3, ") + kNextUseSeq + ")"));
    row.bind(1, hash).bind(2, static_cast<int64_t>(content.size())).bind(3, now);
    TB_RETURN_IF_ERROR(row.run());
  }
  // Rewritten even if present: a file that failed its hash check is replaced by good content.
  Status written = writeFileAtomically(filePath(hash), content);
  if (!written.isOk() && !own && !std::filesystem::exists(filePath(hash))) {
    // Nothing landed: take the row back so the bound does not count a file that is not there.
    if (auto row = db_->prepare("DELETE FROM fetch_cache WHERE hash = ?1"); row.isOk()) {
      (void)row->bind(1, hash).run();
    }
  }
  return written;
}

Result<MaterialStore::FetchCacheUsage> MaterialStore::fetchCacheUsage() {
  TB_ASSIGN_OR_RETURN(auto stmt, db_->prepare("SELECT COUNT(*), COALESCE(SUM(size_bytes), 0) FROM fetch_cache c"
                                              " WHERE NOT EXISTS (SELECT 1 FROM materials m WHERE m.hash = c.hash)"));
  TB_ASSIGN_OR_RETURN(bool row, stmt.step());
  FetchCacheUsage usage;
  if (row) {
    usage.files = static_cast<uint64_t>(stmt.columnInt64(0));
    usage.bytes = static_cast<uint64_t>(stmt.columnInt64(1));
  }
  return usage;
}

Result<MaterialStore::FetchCacheEviction> MaterialStore::evictFetched(uint64_t max_bytes, const std::string& keep) {
  FetchCacheEviction out;
  TB_ASSIGN_OR_RETURN(out.usage, fetchCacheUsage());
  while (out.usage.bytes > max_bytes) {
    // Oldest use first; a file with a material record here is the truth, not cache, and never goes.
    TB_ASSIGN_OR_RETURN(auto pick, db_->prepare("SELECT hash, size_bytes FROM fetch_cache c WHERE hash != ?1"
                                                " AND NOT EXISTS (SELECT 1 FROM materials m WHERE m.hash = c.hash)"
                                                " ORDER BY use_seq, hash LIMIT ?2"));
    pick.bind(1, keep).bind(2, kEvictionBatch);
    std::vector<std::pair<std::string, uint64_t>> victims;
    while (true) {
      TB_ASSIGN_OR_RETURN(bool row, pick.step());
      if (!row) break;
      victims.emplace_back(pick.columnText(0), static_cast<uint64_t>(pick.columnInt64(1)));
    }
    if (victims.empty()) break;
    // The file before the row: a crash in between leaves a row without a file (dropped at the
    // next start), never a file nothing accounts for.
    std::vector<std::string> gone;
    Status removed = Status::ok();
    for (const auto& [hash, size] : victims) {
      if (out.usage.bytes <= max_bytes) break;
      std::error_code ec;
      std::filesystem::remove(filePath(hash), ec);
      if (ec) {
        removed = Status(ErrorCode::kIo, "cannot remove cached material file " + filePath(hash) + ": " + ec.message() +
                                             "; the fetched-file cache stays over its bound until it can");
        break;
      }
      gone.push_back(hash);
      out.usage.bytes -= std::min(out.usage.bytes, size);
      out.usage.files -= std::min<uint64_t>(out.usage.files, 1);
      out.evicted_bytes += size;
      ++out.evicted_files;
    }
    if (gone.empty() && !removed.isOk()) return removed;
    TB_ASSIGN_OR_RETURN(auto txn, db_->begin());
    TB_ASSIGN_OR_RETURN(auto drop, db_->prepare("DELETE FROM fetch_cache WHERE hash = ?1"));
    for (const auto& hash : gone) {
      drop.reset();
      drop.bind(1, hash);
      TB_RETURN_IF_ERROR(drop.run());
    }
    TB_RETURN_IF_ERROR(txn.commit());
    TB_RETURN_IF_ERROR(removed);
  }
  out.over_bound = out.usage.bytes > max_bytes;
  return out;
}

Status MaterialStore::touchFetched(const std::string& hash, TimeMs now) {
  TB_ASSIGN_OR_RETURN(auto stmt, db_->prepare(std::string("UPDATE fetch_cache SET last_used_ms = ?2, use_seq = ") +
                                              kNextUseSeq + " WHERE hash = ?1"));
  stmt.bind(1, hash).bind(2, now);
  return stmt.run();
}

Status MaterialStore::reconcileFetchCache() {
  // A file stored here is the truth, not cache (put() drops the row; this covers older data).
  TB_RETURN_IF_ERROR(db_->exec("DELETE FROM fetch_cache WHERE hash IN (SELECT hash FROM materials)"));
  // Rows whose file is gone (a crash between the row and the file, or between removing the file
  // and the row): the file is fetched again when next needed.
  std::vector<std::string> missing;
  {
    TB_ASSIGN_OR_RETURN(auto rows, db_->prepare("SELECT hash FROM fetch_cache"));
    while (true) {
      TB_ASSIGN_OR_RETURN(bool row, rows.step());
      if (!row) break;
      std::string hash = rows.columnText(0);
      std::error_code ec;
      if (!std::filesystem::is_regular_file(filePath(hash), ec)) missing.push_back(std::move(hash));
    }
  }
  if (!missing.empty()) {
    TB_ASSIGN_OR_RETURN(auto txn, db_->begin());
    TB_ASSIGN_OR_RETURN(auto drop, db_->prepare("DELETE FROM fetch_cache WHERE hash = ?1"));
    for (const auto& hash : missing) {
      drop.reset();
      drop.bind(1, hash);
      TB_RETURN_IF_ERROR(drop.run());
    }
    TB_RETURN_IF_ERROR(txn.commit());
    spdlog::info("[{}] fetched-file cache: {} row(s) without a file dropped (an interrupted write or eviction)",
                 identity_->division.str(), missing.size());
  }
  return adoptUnaccountedFiles();
}

Status MaterialStore::adoptUnaccountedFiles() {
  // Files with neither a record nor a row (cached before the fetch_cache table existed, or
  // written by a put() whose record never committed) join the cache as its least recently used,
  // so the bound counts them and evicts them first. Their content is checked when read.
  TB_ASSIGN_OR_RETURN(auto known, db_->prepare("SELECT 1 FROM materials WHERE hash = ?1"
                                               " UNION ALL SELECT 1 FROM fetch_cache WHERE hash = ?1 LIMIT 1"));
  std::vector<std::pair<std::string, uint64_t>> adopt;
  size_t temporaries = 0;
  // Error-code overloads throughout: a file system error is a Status here, never an exception.
  namespace fs = std::filesystem;
  std::error_code ec;
  for (fs::directory_iterator sub(directory_, ec), end; !ec && sub != end; sub.increment(ec)) {
    const std::string prefix = sub->path().filename().string();
    std::error_code kind;
    if (prefix.size() != 2 || !sub->is_directory(kind)) continue;
    for (fs::directory_iterator entry(sub->path(), ec); !ec && entry != end; entry.increment(ec)) {
      const std::string name = entry->path().filename().string();
      if (name.size() > 4 && name.compare(name.size() - 4, 4, ".tmp") == 0) {
        // Left by a write the process did not finish (writeFileAtomically): never renamed, never used.
        std::error_code rm;
        if (fs::remove(entry->path(), rm)) ++temporaries;
        continue;
      }
      if (!isHash(name) || name.compare(0, 2, prefix) != 0 || !entry->is_regular_file(kind)) continue;
      known.reset();
      known.bind(1, name);
      TB_ASSIGN_OR_RETURN(bool is_known, known.step());
      if (is_known) continue;
      const uintmax_t size = entry->file_size(kind);
      if (!kind) adopt.emplace_back(name, static_cast<uint64_t>(size));
    }
    if (ec) break;
  }
  if (ec) return Status(ErrorCode::kIo, "cannot list the materials directory " + directory_ + ": " + ec.message());
  if (temporaries > 0) {
    spdlog::info("[{}] materials: {} unfinished temporary file(s) removed", identity_->division.str(), temporaries);
  }
  if (adopt.empty()) return Status::ok();
  TB_ASSIGN_OR_RETURN(auto txn, db_->begin());
  TB_ASSIGN_OR_RETURN(auto add, db_->prepare("INSERT OR IGNORE INTO fetch_cache (hash, size_bytes, last_used_ms, use_seq)"
                                             " VALUES (?1, ?2, 0, 0)"));
  for (const auto& [hash, size] : adopt) {
    add.reset();
    add.bind(1, hash).bind(2, static_cast<int64_t>(size));
    TB_RETURN_IF_ERROR(add.run());
  }
  TB_RETURN_IF_ERROR(txn.commit());
  spdlog::info("[{}] fetched-file cache: {} file(s) without a record or row adopted as least recently used",
               identity_->division.str(), adopt.size());
  return Status::ok();
}

Result<std::optional<Bytes>> MaterialStore::readIfPresent(const std::string& hash) {
  if (!isHash(hash)) return Status(ErrorCode::kInvalidArgument, "'" + hash + "' is not a SHA-256 hex digest");
  auto content = readFileBytes(filePath(hash));
  if (!content && content.status().code() == ErrorCode::kNotFound) return std::optional<Bytes>();
  if (!content) return content.status();
  if (sha256Hex(*content) != hash) {
    return Status(ErrorCode::kCorrupt, "material file " + hash + " no longer matches its hash");
  }
  return std::optional<Bytes>(std::move(content).value());
}

}  // namespace tongban
