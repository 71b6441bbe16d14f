// The service catalogue (事项目录): every item a hall can handle, with who may accept it, who
// decides it, its time limits, fee, legal basis and required materials. Authored centrally:
// the city publishes it as one signed, versioned document and every node keeps the newest
// version it has verified (rules flow down). Identical everywhere by construction: the bytes
// are the city's.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "federation/division/division.h"
#include "federation/store/database.h"
#include "federation/trust/envelope.h"

namespace tongban {

enum class ItemKind { kImmediate, kCommitted, kJoint, kUpward };
const char* itemKindName(ItemKind kind);  // "immediate", "committed", "joint", "upward"
Result<ItemKind> parseItemKind(const std::string& name);  // the inverse; kInvalidArgument otherwise

struct CatalogueItem {
  std::string code;              // "CG-0101"
  std::string name;              // "户外广告(店招店牌)设置审批"
  std::string name_en;
  std::string department;
  ItemKind kind = ItemKind::kCommitted;
  Level decide_level = Level::kDistrict;   // the lowest level that may decide; higher ones may too
  std::vector<Level> accept_levels;
  int legal_days = 0;            // working days
  int committed_days = 0;        // working days; 0 for immediate items
  int64_t fee_fen = 0;           // 0.01 CNY
  std::string legal_basis;
  std::vector<std::string> materials;         // material kind codes
  std::vector<std::string> joint_departments; // joint items: one review each
  std::string issues;            // credential kind issued on approval
  std::string contact;
  // How long the credential it issues is valid: the given number of days after the issue day;
  // 0 = long-term (长期, no end date); unset = the catalogue does not say, and the issuer's
  // default applies (CredentialSettings, five years). Only items that issue something set it.
  std::optional<int> validity_days;

  bool acceptableAt(Level level) const;
};

// The longest validity an item may state: 100 years. Longer is a typo, not a licence (a
// licence without an end is "validity_days": 0).
inline constexpr int kMaxValidityDays = 36525;

// What one catalogue version said about who decides an item and what it issues. Every version
// carries the history of these (Catalogue::authority_history), so a reader can judge a credential
// issued under an older version than its own (docs/protocol.md, "Credentials").
struct ItemAuthority {
  std::string item_code;
  uint64_t since_version = 0;   // in force from this version until the item's next entry
  bool removed = false;         // the item left the catalogue in since_version
  Level decide_level = Level::kDistrict;
  std::string issues;
};

struct Catalogue {
  uint64_t version = 0;
  TimeMs published_at_ms = 0;
  std::map<std::string, std::string> material_kinds;  // code → display name
  std::vector<CatalogueItem> items;
  // Oldest first; built by CatalogueStore::publish (whatever the caller put here is replaced).
  // Empty in a catalogue sealed before the history existed.
  std::vector<ItemAuthority> authority_history;

  const CatalogueItem* find(const std::string& code) const;
  // The item's authority as catalogue version `version` (≤ this one) stated it; nothing if the
  // item was not in that version. Without a history (an old catalogue) the current items answer;
  // a version older than the history's first is judged by the first (the oldest state known).
  std::optional<ItemAuthority> authorityAt(const std::string& item_code, uint64_t version) const;
};

// Reads the authoring format (data/catalog.json). Every item is checked: unique code, known
// kind and levels, at least one accept level, committed days within legal days (0 exactly for
// immediate items), joint items list their departments, and an optional "validity_days" is a
// whole number from 0 (long-term) to kMaxValidityDays on an item that `issues` something
// (absent: the issuer's default). The decide level is the lowest level with authority: that
// level and every level above it may decide. Errors name the item and the field.
Result<Catalogue> parseCatalogueJson(const std::string& json_text, uint64_t version, TimeMs published_at_ms);

Bytes encodeCatalogue(const Catalogue& catalogue);
Result<Catalogue> decodeCatalogue(const Bytes& bytes);

// Message kind of a sealed catalogue (Direction::kFromRoot).
inline constexpr MessageKind kCatalogueKind = 101;
void registerCatalogueKind(KindRegistry& registry);

// The pull protocol: children ask their parent on tb.<parent>.catalogue.
std::string catalogueSubject(const DivisionCode& node);
Bytes encodeCatalogueRequest(uint64_t have_version);
Result<uint64_t> decodeCatalogueRequest(const Bytes& bytes);

// Where in "how to apply" terms an item can be handled, for a refusal message:
// "accepted at town or district halls (e.g. 祖庙街道 or 禅城区), decided at district".
std::string whereToApply(const CatalogueItem& item);

// The node's copy: the newest sealed catalogue it has verified, in SQLite.
class CatalogueStore {
 public:
  static Result<CatalogueStore> open(Database& db, const Verifier& verifier, const DivisionCode& self);

  // Verifies a sealed catalogue (signed by the city) and keeps it if it is newer than ours.
  // Returns true if it was newer. An older or equal version is not an error (false).
  Result<bool> offer(const Bytes& sealed, TimeMs now_ms);

  // The city only: seal `catalogue` as version current+1 and keep it. Refuses an unchanged
  // catalogue (same content as the current version) with kAlreadyExists.
  Result<uint64_t> publish(const Identity& city, Catalogue catalogue, TimeMs now_ms);

  uint64_t version() const { return current_ ? current_->version : 0; }
  const Catalogue* current() const { return current_ ? &*current_ : nullptr; }
  const Bytes& currentSealed() const { return sealed_; }

 private:
  CatalogueStore(Database& db, const Verifier& verifier, DivisionCode self)
      : db_(&db), verifier_(&verifier), self_(std::move(self)) {}
  Status load();
  Database* db_;
  const Verifier* verifier_;
  DivisionCode self_;
  std::optional<Catalogue> current_;
  Bytes sealed_;
};

}  // namespace tongban
