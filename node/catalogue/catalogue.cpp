#include "node/catalogue/catalogue.h"

#include <algorithm>
#include <map>
#include <set>

#include <nlohmann/json.hpp>
#include <sodium.h>

#include "federation/util/capnp_io.h"
#include "schema/node.capnp.h"

namespace tongban {

const char* itemKindName(ItemKind kind) {
  switch (kind) {
    case ItemKind::kImmediate: return "immediate";
    case ItemKind::kCommitted: return "committed";
    case ItemKind::kJoint: return "joint";
    case ItemKind::kUpward: return "upward";
  }
  return "unknown";
}

Result<ItemKind> parseItemKind(const std::string& s) {
  if (s == "immediate") return ItemKind::kImmediate;
  if (s == "committed") return ItemKind::kCommitted;
  if (s == "joint") return ItemKind::kJoint;
  if (s == "upward") return ItemKind::kUpward;
  return Status(ErrorCode::kInvalidArgument, "kind '" + s + "' is not immediate, committed, joint or upward");
}

namespace {

using capnp_io::text;

// Catalogue documents are small (hundreds of items); the cap keeps a hostile one small too.
constexpr size_t kMaxCatalogueBytes = 4 << 20;

// validityDays on the wire when the catalogue states none (the schema's default, so catalogues
// sealed before the field existed read the same way).
constexpr int32_t kValidityNotStated = -1;

Result<std::optional<int>> decodeValidityDays(int32_t days, const std::string& code) {
  if (days == kValidityNotStated) return std::optional<int>();
  if (days < 0 || days > kMaxValidityDays) {
    return Status(ErrorCode::kMalformed, "catalogue item " + code + " has validity of " + std::to_string(days) + " days");
  }
  return std::optional<int>(days);
}

const std::vector<Migration> kCatalogueMigrations = {
    {1,
     "CREATE TABLE catalogue_versions ("
     "  version INTEGER PRIMARY KEY, sealed BLOB NOT NULL, content_hash TEXT NOT NULL, received_ms INTEGER NOT NULL);"},
};

std::string contentHash(const Bytes& encoded_without_version) {
  uint8_t out[crypto_generichash_BYTES];
  crypto_generichash(out, sizeof out, encoded_without_version.data(), encoded_without_version.size(), nullptr, 0);
  return hexEncode(out, sizeof out);
}

// The hash of what a catalogue says, independent of its version and publication time, so that
// publishing an unchanged file is recognised.
std::string contentHashOf(Catalogue c) {
  c.version = 0;
  c.published_at_ms = 0;
  c.authority_history.clear();  // derived from the versions, not part of what the file says
  return contentHash(encodeCatalogue(c));
}

// The authority history of version `next` published after `previous` (null: the first): the
// previous history (seeded from the previous items when it had none: an old catalogue), plus an
// entry for every item that is new, changed its decide level or credential kind, or left.
std::vector<ItemAuthority> nextAuthorityHistory(const Catalogue* previous, const Catalogue& next) {
  std::vector<ItemAuthority> history;
  if (previous) {
    history = previous->authority_history;
    if (history.empty()) {
      for (const auto& item : previous->items) {
        history.push_back({item.code, previous->version, false, item.decide_level, item.issues});
      }
    }
  }
  std::map<std::string, const ItemAuthority*> latest;
  for (const auto& entry : history) latest[entry.item_code] = &entry;
  std::vector<ItemAuthority> added;
  std::set<std::string> present;
  for (const auto& item : next.items) {
    present.insert(item.code);
    auto it = latest.find(item.code);
    if (it == latest.end() || it->second->removed || it->second->decide_level != item.decide_level ||
        it->second->issues != item.issues) {
      added.push_back({item.code, next.version, false, item.decide_level, item.issues});
    }
  }
  for (const auto& [code, entry] : latest) {
    if (!entry->removed && !present.count(code)) added.push_back({code, next.version, true, Level::kCity, ""});
  }
  history.insert(history.end(), added.begin(), added.end());
  return history;
}

// "validity_days": a whole number of days, 0 meaning long-term (长期). Only an item that issues a
// credential has a validity to state; on any other item the field is a mistake worth naming.
Result<std::optional<int>> parseValidityDays(const nlohmann::json& item, const std::string& where, bool issues) {
  if (!item.contains("validity_days")) return std::optional<int>();
  const nlohmann::json& v = item["validity_days"];
  if (!issues) {
    return Status(ErrorCode::kInvalidArgument, where + ": \"validity_days\" is set but the item issues no credential "
                                                       "(add \"issues\" or remove \"validity_days\")");
  }
  const bool in_range = v.is_number_unsigned() ? v.get<uint64_t>() <= static_cast<uint64_t>(kMaxValidityDays)
                                               : v.is_number_integer() && v.get<int64_t>() >= 0 && v.get<int64_t>() <= kMaxValidityDays;
  if (!in_range) {
    return Status(ErrorCode::kInvalidArgument, where + ": \"validity_days\" must be a whole number of days from 0 "
                                                       "(long-term, no end date) to " + std::to_string(kMaxValidityDays) +
                                                       " (100 years), not " + v.dump());
  }
  return std::optional<int>(static_cast<int>(v.get<int64_t>()));
}
}  // namespace

bool CatalogueItem::acceptableAt(Level level) const {
  for (Level l : accept_levels) {
    if (l == level) return true;
  }
  return false;
}

const CatalogueItem* Catalogue::find(const std::string& code) const {
  for (const auto& item : items) {
    if (item.code == code) return &item;
  }
  return nullptr;
}

std::optional<ItemAuthority> Catalogue::authorityAt(const std::string& item_code, uint64_t at_version) const {
  if (authority_history.empty()) {
    const CatalogueItem* item = find(item_code);
    if (!item) return std::nullopt;
    return ItemAuthority{item->code, version, false, item->decide_level, item->issues};
  }
  at_version = std::max(at_version, authority_history.front().since_version);
  const ItemAuthority* found = nullptr;
  for (const auto& entry : authority_history) {
    if (entry.item_code == item_code && entry.since_version <= at_version) found = &entry;
  }
  if (!found || found->removed) return std::nullopt;
  return *found;
}

Result<Catalogue> parseCatalogueJson(const std::string& json_text, uint64_t version, TimeMs published_at_ms) {
  nlohmann::json doc = nlohmann::json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) return Status(ErrorCode::kInvalidArgument, "catalogue is not a JSON object");
  Catalogue c;
  c.version = version;
  c.published_at_ms = published_at_ms;
  if (!doc.contains("material_kinds") || !doc["material_kinds"].is_object()) {
    return Status(ErrorCode::kInvalidArgument, "catalogue needs a \"material_kinds\" object");
  }
  for (const auto& [code, name] : doc["material_kinds"].items()) {
    if (!name.is_string()) return Status(ErrorCode::kInvalidArgument, "material kind '" + code + "' needs a name");
    c.material_kinds[code] = name.get<std::string>();
  }
  if (!doc.contains("items") || !doc["items"].is_array() || doc["items"].empty()) {
    return Status(ErrorCode::kInvalidArgument, "catalogue needs a non-empty \"items\" array");
  }
  std::set<std::string> codes;
  size_t index = 0;
  for (const auto& j : doc["items"]) {
    std::string where = "items[" + std::to_string(index++) + "]";
    auto str = [&](const char* key, bool required) -> Result<std::string> {
      if (!j.contains(key)) {
        if (required) return Status(ErrorCode::kInvalidArgument, where + ": \"" + key + "\" is missing");
        return std::string();
      }
      if (!j[key].is_string()) return Status(ErrorCode::kInvalidArgument, where + ": \"" + key + "\" must be a string");
      return j[key].get<std::string>();
    };
    auto integer = [&](const char* key) -> Result<int64_t> {
      if (!j.contains(key)) return int64_t{0};
      if (!j[key].is_number() || j[key].get<double>() < 0) {
        return Status(ErrorCode::kInvalidArgument, where + ": \"" + key + "\" must be a number ≥ 0");
      }
      return static_cast<int64_t>(j[key].get<double>() * (std::string(key) == "fee_cny" ? 100 : 1) + 0.5);
    };
    auto strings = [&](const char* key) -> Result<std::vector<std::string>> {
      std::vector<std::string> out;
      if (!j.contains(key)) return out;
      if (!j[key].is_array()) return Status(ErrorCode::kInvalidArgument, where + ": \"" + key + "\" must be an array");
      for (const auto& v : j[key]) {
        if (!v.is_string()) return Status(ErrorCode::kInvalidArgument, where + ": \"" + key + "\" must hold strings");
        out.push_back(v.get<std::string>());
      }
      return out;
    };
    CatalogueItem item;
    TB_ASSIGN_OR_RETURN(item.code, str("code", true));
    where += " (" + item.code + ")";
    if (!codes.insert(item.code).second) return Status(ErrorCode::kInvalidArgument, where + ": code appears twice");
    TB_ASSIGN_OR_RETURN(item.name, str("name", true));
    TB_ASSIGN_OR_RETURN(item.name_en, str("name_en", false));
    TB_ASSIGN_OR_RETURN(item.department, str("department", true));
    TB_ASSIGN_OR_RETURN(std::string kind, str("kind", true));
    auto parsed_kind = parseItemKind(kind);
    if (!parsed_kind) return parsed_kind.status().withContext(where);
    item.kind = *parsed_kind;
    TB_ASSIGN_OR_RETURN(std::string decide, str("decide_level", true));
    auto decide_level = parseLevel(decide);
    if (!decide_level) return decide_level.status().withContext(where + ": decide_level");
    item.decide_level = *decide_level;
    TB_ASSIGN_OR_RETURN(auto accept, strings("accept_levels"));
    if (accept.empty()) return Status(ErrorCode::kInvalidArgument, where + ": \"accept_levels\" must name at least one level");
    for (const auto& a : accept) {
      auto level = parseLevel(a);
      if (!level) return level.status().withContext(where + ": accept_levels");
      item.accept_levels.push_back(*level);
    }
    TB_ASSIGN_OR_RETURN(int64_t legal, integer("legal_days"));
    TB_ASSIGN_OR_RETURN(int64_t committed, integer("committed_days"));
    TB_ASSIGN_OR_RETURN(item.fee_fen, integer("fee_cny"));
    item.legal_days = static_cast<int>(legal);
    item.committed_days = static_cast<int>(committed);
    if (item.committed_days > item.legal_days) {
      return Status(ErrorCode::kInvalidArgument, where + ": committed_days " + std::to_string(committed) +
                                                     " exceeds legal_days " + std::to_string(legal));
    }
    if (item.kind == ItemKind::kImmediate && item.committed_days != 0) {
      return Status(ErrorCode::kInvalidArgument, where + ": an immediate item has committed_days 0");
    }
    if (item.kind != ItemKind::kImmediate && item.committed_days == 0) {
      return Status(ErrorCode::kInvalidArgument, where + ": a " + kind + " item needs committed_days > 0");
    }
    TB_ASSIGN_OR_RETURN(item.legal_basis, str("legal_basis", false));
    TB_ASSIGN_OR_RETURN(item.materials, strings("materials"));
    for (const auto& m : item.materials) {
      if (!c.material_kinds.count(m)) {
        // The sample catalogue names a few kinds it does not define; define them by code so the
        // window can still ask for them, rather than refusing the whole catalogue.
        c.material_kinds[m] = m;
      }
    }
    TB_ASSIGN_OR_RETURN(item.joint_departments, strings("joint_departments"));
    if (item.kind == ItemKind::kJoint && item.joint_departments.size() < 2) {
      return Status(ErrorCode::kInvalidArgument, where + ": a joint item lists at least two joint_departments");
    }
    TB_ASSIGN_OR_RETURN(item.issues, str("issues", false));
    TB_ASSIGN_OR_RETURN(item.validity_days, parseValidityDays(j, where, !item.issues.empty()));
    TB_ASSIGN_OR_RETURN(item.contact, str("contact", false));
    c.items.push_back(std::move(item));
  }
  return c;
}

Bytes encodeCatalogue(const Catalogue& c) {
  capnp::MallocMessageBuilder b;
  auto root = b.initRoot<wire::Catalogue>();
  root.setVersion(c.version);
  root.setPublishedAtMs(c.published_at_ms);
  auto kinds = root.initMaterialKinds(static_cast<unsigned>(c.material_kinds.size()));
  unsigned k = 0;
  for (const auto& [code, name] : c.material_kinds) {
    kinds[k].setCode(code);
    kinds[k].setName(name);
    ++k;
  }
  auto items = root.initItems(static_cast<unsigned>(c.items.size()));
  for (unsigned i = 0; i < c.items.size(); ++i) {
    const auto& it = c.items[i];
    auto w = items[i];
    w.setCode(it.code);
    w.setName(it.name);
    w.setNameEn(it.name_en);
    w.setDepartment(it.department);
    w.setKind(itemKindName(it.kind));
    w.setDecideLevel(static_cast<uint8_t>(it.decide_level));
    auto levels = w.initAcceptLevels(static_cast<unsigned>(it.accept_levels.size()));
    for (unsigned l = 0; l < it.accept_levels.size(); ++l) levels.set(l, static_cast<uint8_t>(it.accept_levels[l]));
    w.setLegalDays(it.legal_days);
    w.setCommittedDays(it.committed_days);
    w.setFeeFen(it.fee_fen);
    w.setLegalBasis(it.legal_basis);
    auto mats = w.initMaterials(static_cast<unsigned>(it.materials.size()));
    for (unsigned m = 0; m < it.materials.size(); ++m) mats.set(m, it.materials[m]);
    auto deps = w.initJointDepartments(static_cast<unsigned>(it.joint_departments.size()));
    for (unsigned d = 0; d < it.joint_departments.size(); ++d) deps.set(d, it.joint_departments[d]);
    w.setIssues(it.issues);
    w.setContact(it.contact);
    w.setValidityDays(it.validity_days.value_or(kValidityNotStated));
  }
  auto history = root.initAuthorityHistory(static_cast<unsigned>(c.authority_history.size()));
  for (unsigned i = 0; i < c.authority_history.size(); ++i) {
    const auto& a = c.authority_history[i];
    history[i].setItemCode(a.item_code);
    history[i].setSinceVersion(a.since_version);
    history[i].setRemoved(a.removed);
    history[i].setDecideLevel(a.removed ? 0 : static_cast<uint8_t>(a.decide_level));
    history[i].setIssues(a.issues);
  }
  return capnp_io::flatBytes(b);
}

Result<Catalogue> decodeCatalogue(const Bytes& bytes) {
  return capnp_io::read<wire::Catalogue>(bytes, "catalogue", kMaxCatalogueBytes, [](wire::Catalogue::Reader r) -> Result<Catalogue> {
    Catalogue c;
    c.version = r.getVersion();
    c.published_at_ms = r.getPublishedAtMs();
    for (auto k : r.getMaterialKinds()) c.material_kinds[text(k.getCode())] = text(k.getName());
    for (auto w : r.getItems()) {
      CatalogueItem it;
      it.code = text(w.getCode());
      it.name = text(w.getName());
      it.name_en = text(w.getNameEn());
      it.department = text(w.getDepartment());
      auto kind = parseItemKind(text(w.getKind()));
      if (!kind) return Status(ErrorCode::kMalformed, "catalogue item " + it.code + ": " + kind.status().message());
      it.kind = *kind;
      if (w.getDecideLevel() < 1 || w.getDecideLevel() > 4) {
        return Status(ErrorCode::kMalformed, "catalogue item " + it.code + " has decide level " +
                                                 std::to_string(w.getDecideLevel()));
      }
      it.decide_level = static_cast<Level>(w.getDecideLevel());
      for (auto l : w.getAcceptLevels()) {
        if (l < 1 || l > 4) return Status(ErrorCode::kMalformed, "catalogue item " + it.code + " has a bad accept level");
        it.accept_levels.push_back(static_cast<Level>(l));
      }
      it.legal_days = w.getLegalDays();
      it.committed_days = w.getCommittedDays();
      it.fee_fen = w.getFeeFen();
      it.legal_basis = text(w.getLegalBasis());
      for (auto m : w.getMaterials()) it.materials.push_back(text(m));
      for (auto d : w.getJointDepartments()) it.joint_departments.push_back(text(d));
      it.issues = text(w.getIssues());
      it.contact = text(w.getContact());
      TB_ASSIGN_OR_RETURN(it.validity_days, decodeValidityDays(w.getValidityDays(), it.code));
      c.items.push_back(std::move(it));
    }
    uint64_t previous_since = 0;
    for (auto h : r.getAuthorityHistory()) {
      ItemAuthority a;
      a.item_code = text(h.getItemCode());
      a.since_version = h.getSinceVersion();
      a.removed = h.getRemoved();
      a.issues = text(h.getIssues());
      if (a.since_version < previous_since || a.since_version > c.version || a.since_version == 0) {
        return Status(ErrorCode::kMalformed, "catalogue authority history entry of " + a.item_code +
                                                 " is out of order (since version " + std::to_string(a.since_version) + ")");
      }
      previous_since = a.since_version;
      if (!a.removed) {
        if (h.getDecideLevel() < 1 || h.getDecideLevel() > 4) {
          return Status(ErrorCode::kMalformed, "catalogue authority history of " + a.item_code + " has decide level " +
                                                   std::to_string(h.getDecideLevel()));
        }
        a.decide_level = static_cast<Level>(h.getDecideLevel());
      }
      c.authority_history.push_back(std::move(a));
    }
    return c;
  });
}

void registerCatalogueKind(KindRegistry& registry) {
  registry.add(kCatalogueKind, {"catalogue", Direction::kFromRoot, /*durable=*/false});
}

std::string catalogueSubject(const DivisionCode& node) { return "tb." + node.str() + ".catalogue"; }

Bytes encodeCatalogueRequest(uint64_t have_version) {
  capnp::MallocMessageBuilder b;
  b.initRoot<wire::CatalogueRequest>().setHaveVersion(have_version);
  return capnp_io::flatBytes(b);
}

Result<uint64_t> decodeCatalogueRequest(const Bytes& bytes) {
  return capnp_io::read<wire::CatalogueRequest>(bytes, "catalogue request", 256,
                                                [](wire::CatalogueRequest::Reader r) -> Result<uint64_t> {
                                                  return r.getHaveVersion();
                                                });
}

std::string whereToApply(const CatalogueItem& item) {
  std::string levels;
  for (size_t i = 0; i < item.accept_levels.size(); ++i) {
    levels += (i == 0 ? "" : i + 1 == item.accept_levels.size() ? " or " : ", ");
    levels += levelName(item.accept_levels[i]);
  }
  return "'" + item.name + "' (" + item.code + ") is accepted at " + levels + " halls and decided at " +
         levelName(item.decide_level) + " level";
}

Result<CatalogueStore> CatalogueStore::open(Database& db, const Verifier& verifier, const DivisionCode& self) {
  TB_RETURN_IF_ERROR(db.migrate("catalogue", kCatalogueMigrations));
  CatalogueStore store(db, verifier, self);
  TB_RETURN_IF_ERROR(store.load());
  return store;
}

Status CatalogueStore::load() {
  TB_ASSIGN_OR_RETURN(auto stmt, db_->prepare("SELECT sealed FROM catalogue_versions ORDER BY version DESC LIMIT 1"));
  TB_ASSIGN_OR_RETURN(bool row, stmt.step());
  if (!row) return Status::ok();
  Bytes sealed = stmt.columnBlob(0);
  // What we stored we verified; re-verify anyway so a tampered file is noticed at start. There
  // is no clock here, and a stored document cannot be "from the future": pass a far-future now.
  constexpr TimeMs kNoFutureCheck = INT64_MAX / 2;
  auto opened = verifier_->open(sealed, self_, kNoFutureCheck, nullptr);
  if (!opened) return opened.status().withContext("stored catalogue no longer verifies");
  TB_ASSIGN_OR_RETURN(current_, decodeCatalogue(opened->payload));
  sealed_ = std::move(sealed);
  return Status::ok();
}

Result<bool> CatalogueStore::offer(const Bytes& sealed, TimeMs now_ms) {
  TB_ASSIGN_OR_RETURN(OpenedEnvelope opened, verifier_->open(sealed, self_, now_ms, nullptr));
  if (opened.kind != kCatalogueKind) {
    return Status(ErrorCode::kUnauthorized, "offered document is kind " + std::to_string(opened.kind) + ", not a catalogue");
  }
  TB_ASSIGN_OR_RETURN(Catalogue catalogue, decodeCatalogue(opened.payload));
  if (catalogue.version != opened.seq) {
    return Status(ErrorCode::kMalformed, "catalogue version " + std::to_string(catalogue.version) +
                                             " disagrees with its envelope's sequence " + std::to_string(opened.seq));
  }
  if (catalogue.version <= version()) return false;
  TB_ASSIGN_OR_RETURN(auto stmt, db_->prepare(
      "INSERT OR IGNORE INTO catalogue_versions (version, sealed, content_hash, received_ms) VALUES (?1, ?2, ?3, ?4)"));
  stmt.bind(1, static_cast<int64_t>(catalogue.version)).bind(2, sealed).bind(3, contentHashOf(catalogue)).bind(4, now_ms);
  TB_RETURN_IF_ERROR(stmt.run());
  current_ = std::move(catalogue);
  sealed_ = sealed;
  return true;
}

Result<uint64_t> CatalogueStore::publish(const Identity& city, Catalogue catalogue, TimeMs now_ms) {
  if (city.division.level() != Level::kCity || city.division != self_) {
    return Status(ErrorCode::kFailedPrecondition, "only the city publishes the catalogue");
  }
  if (current_ && contentHashOf(catalogue) == contentHashOf(*current_)) {
    return Status(ErrorCode::kAlreadyExists, "the catalogue is unchanged (version " + std::to_string(version()) + ")");
  }
  catalogue.version = version() + 1;
  catalogue.published_at_ms = now_ms;
  catalogue.authority_history = nextAuthorityHistory(current_ ? &*current_ : nullptr, catalogue);
  SealParams p;
  p.kind = kCatalogueKind;
  p.seq = catalogue.version;
  p.timestamp_ms = now_ms;
  p.target = city.division;
  p.payload = encodeCatalogue(catalogue);
  TB_ASSIGN_OR_RETURN(bool newer, offer(sealEnvelope(city, p), now_ms));
  if (!newer) return Status(ErrorCode::kInternal, "published catalogue was not newer than the current one");
  return catalogue.version;
}

}  // namespace tongban
