// The materials lookup source: a node's own scans and the records its subtree relayed up.
#include "node/lookup/lookup.h"

#include <spdlog/spdlog.h>

#include "federation/store/database.h"
#include "node/materials/materials.h"

namespace tongban {

namespace {

class MaterialLookupSource : public LookupSource {
 public:
  MaterialLookupSource(Database& db, const Identity& identity) : db_(db), identity_(identity) {}

  bool answers(LookupQuestion question) const override {
    return question == LookupQuestion::kHolder || question == LookupQuestion::kMaterial;
  }

  Result<std::vector<LookupRecord>> find(const LookupQuery& query, size_t limit) override {
    std::vector<LookupRecord> out;
    if (!answers(query.question)) return out;
    const bool by_holder = query.question == LookupQuestion::kHolder;
    const char* column = by_holder ? "holder" : "hash";
    // Own scans first: their seals are ours, so they are checked here.
    TB_ASSIGN_OR_RETURN(auto own, listOwnMaterials(db_, by_holder ? MaterialKey::kHolder : MaterialKey::kHash,
                                                   query.key, limit));
    for (const MaterialRecordInfo& m : own) out.push_back(toRecord(m));
    // What the subtree relayed up: the issuer's key is not known here (see LookupRecord).
    if (out.size() < limit) {
      TB_ASSIGN_OR_RETURN(auto sub, db_.prepare(std::string("SELECT payload FROM subtree_materials WHERE ") + column +
                                                " = ?1 ORDER BY hash, kind, stored_at, holder LIMIT ?2"));
      sub.bind(1, query.key).bind(2, static_cast<int64_t>(limit - out.size()));
      while (true) {
        TB_ASSIGN_OR_RETURN(bool row, sub.step());
        if (!row) break;
        auto m = decodeMaterialRecord(sub.columnBlob(0));
        if (!m) {
          // One damaged row must not hide the others (nor turn the answer into "not found":
          // the row is counted, and the rest is answered).
          ++skipped_;
          spdlog::error("[{}] skipped an undecodable subtree_materials row for {} {}: {}", identity_.division.str(),
                        lookupQuestionName(query.question), query.key, m.status().toString());
          continue;
        }
        out.push_back(toRecord(*m));
      }
    }
    return out;
  }

  uint64_t skippedRecords() const override { return skipped_; }

 private:
  LookupRecord toRecord(const MaterialRecordInfo& m) const {
    LookupRecord r;
    r.type = "material";
    r.id = m.hash;
    r.holder = m.holder;
    r.kind = m.kind;
    r.issued_at = m.stored_at;
    r.at_ms = m.verified_at_ms;
    if (m.stored_at == identity_.division.str() && m.seal.size() == 64) {
      const std::string text = sealedText(m.hash, m.kind, m.holder);
      Signature sig{};
      std::copy(m.seal.begin(), m.seal.end(), sig.begin());
      r.seal_verified = verifySignature(identity_.keys.public_key, reinterpret_cast<const uint8_t*>(text.data()),
                                        text.size(), sig);
    }
    r.payload = encodeMaterialRecord(m);
    return r;
  }

  Database& db_;
  const Identity& identity_;
  uint64_t skipped_ = 0;
};

}  // namespace

std::unique_ptr<LookupSource> makeMaterialLookupSource(Database& db, const Identity& identity) {
  return std::make_unique<MaterialLookupSource>(db, identity);
}

}  // namespace tongban
