#include "node/materials/materials.h"

#include <filesystem>

#include <sodium.h>

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
};

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
  if (auto existing = get(hash, holder); existing && existing->kind == kind) return existing;

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
  if (enqueue_up_) {
    auto seq = enqueue_up_(kMaterialRecordKind, encodeMaterialRecord(r));
    if (!seq) return seq.status();
  }
  TB_RETURN_IF_ERROR(txn.commit());
  return r;
}

Result<MaterialRecordInfo> MaterialStore::get(const std::string& hash, const std::string& holder) {
  if (!isHash(hash)) return Status(ErrorCode::kInvalidArgument, "'" + hash + "' is not a SHA-256 hex digest");
  TB_ASSIGN_OR_RETURN(auto stmt, db_->prepare(std::string("SELECT ") + kColumns +
                                              " FROM materials WHERE hash = ?1 AND (?2 = '' OR holder = ?2)"
                                              " ORDER BY verified_at_ms DESC LIMIT 1"));
  stmt.bind(1, hash).bind(2, holder);
  TB_ASSIGN_OR_RETURN(bool row, stmt.step());
  if (!row) {
    return Status(ErrorCode::kNotFound, "no material " + hash.substr(0, 12) + "…" +
                                            (holder.empty() ? "" : " of holder " + holder) + " at this node");
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

Result<std::vector<MaterialRecordInfo>> MaterialStore::listByHolder(const std::string& holder) {
  TB_ASSIGN_OR_RETURN(auto stmt, db_->prepare(std::string("SELECT ") + kColumns +
                                              " FROM materials WHERE holder = ?1 ORDER BY verified_at_ms DESC"));
  stmt.bind(1, holder);
  std::vector<MaterialRecordInfo> out;
  while (true) {
    TB_ASSIGN_OR_RETURN(bool row, stmt.step());
    if (!row) break;
    out.push_back(fromRow(stmt));
  }
  return out;
}

std::string MaterialStore::filePath(const std::string& hash) const {
  return directory_ + "/" + hash.substr(0, 2) + "/" + hash;
}

Status MaterialStore::cacheFetched(const std::string& hash, const Bytes& content) {
  if (!isHash(hash)) return Status(ErrorCode::kInvalidArgument, "'" + hash + "' is not a SHA-256 hex digest");
  if (content.size() > kMaxMaterialBytes) {
    return Status(ErrorCode::kResourceExhausted, "a fetched material of " + std::to_string(content.size()) +
                                                     " bytes is over the limit of " + std::to_string(kMaxMaterialBytes));
  }
  if (sha256Hex(content) != hash) {
    return Status(ErrorCode::kCorrupt, "the fetched file does not hash to " + hash + "; it was not kept");
  }
  const std::string dir = directory_ + "/" + hash.substr(0, 2);
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status(ErrorCode::kIo, "cannot create " + dir + ": " + ec.message());
  // Rewritten even if present: a file that failed its hash check is replaced by good content.
  return writeFileAtomically(filePath(hash), content);
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
