// Division codes (GB/T 2260 style, 12 digits) and the tree they form.
//
// Layout: PPCCDD TTT VVV — 2 digits province, 2 city, 2 district, 3 town, 3 village. Trailing
// zero groups say how high a code sits, so a code names its whole chain of parents:
//   440600000000 city (佛山市) → 440604000000 district → 440604001000 town → 440604001001 village.
// The city is the root of a Tongban network; provinces are outside it.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "federation/util/status.h"

namespace tongban {

enum class Level { kCity = 1, kDistrict = 2, kTown = 3, kVillage = 4 };

const char* levelName(Level level);                 // "city", "district", "town", "village"
Result<Level> parseLevel(std::string_view name);

class DivisionCode {
 public:
  // Accepts exactly 12 ASCII digits whose zero groups form a city, district, town or village
  // code. The error names the offending character or group.
  static Result<DivisionCode> parse(std::string_view text);

  // An unset code (empty string), only so that structs holding a code can be declared before
  // they are filled in. Every code that came from outside went through parse().
  DivisionCode() = default;
  bool empty() const { return code_.empty(); }

  const std::string& str() const { return code_; }
  Level level() const { return level_; }

  // The code one level up; nullopt for a city.
  std::optional<DivisionCode> parent() const;
  // Every ancestor, nearest first (a village yields town, district, city).
  std::vector<DivisionCode> ancestors() const;

  bool isParentOf(const DivisionCode& other) const;
  // Strict: a code is not its own ancestor.
  bool isAncestorOf(const DivisionCode& other) const;
  // Same code or an ancestor: "is `other` inside my subtree".
  bool covers(const DivisionCode& other) const { return *this == other || isAncestorOf(other); }
  // My child on the way down to `descendant` (the descendant itself if it is my child);
  // nullopt if `descendant` is not below me.
  std::optional<DivisionCode> childToward(const DivisionCode& descendant) const;

  friend bool operator==(const DivisionCode& a, const DivisionCode& b) { return a.code_ == b.code_; }
  friend bool operator!=(const DivisionCode& a, const DivisionCode& b) { return a.code_ != b.code_; }
  friend bool operator<(const DivisionCode& a, const DivisionCode& b) { return a.code_ < b.code_; }

 private:
  DivisionCode(std::string code, Level level) : code_(std::move(code)), level_(level) {}
  std::string code_;
  Level level_ = Level::kCity;
};

// "district 440604000000": how error messages name a division.
std::string describeDivision(const DivisionCode& code);

// A named division in a topology file.
struct DivisionInfo {
  DivisionCode code;
  std::string name;
};

// A network's topology: the divisions that run a node, each with its parent present.
class Topology {
 public:
  // Reads the JSON format of data/foshan.json: {"nodes":[{"code","level","name","parent"}...]}.
  // Checks that each declared level and parent agree with the code and that the tree has one
  // city root and no orphan.
  static Result<Topology> loadFile(const std::string& path);
  static Result<Topology> fromJson(std::string_view json_text);
  static Result<Topology> fromDivisions(std::vector<DivisionInfo> divisions);

  const std::vector<DivisionInfo>& divisions() const { return divisions_; }  // parents first
  const DivisionInfo& root() const { return divisions_.front(); }
  const DivisionInfo* find(const DivisionCode& code) const;
  std::vector<DivisionInfo> childrenOf(const DivisionCode& code) const;

  // A sub-network for demos and simulations: the root, then the first `districts` districts,
  // in each the first `towns` towns, in each the first `villages` villages (file order).
  Topology sample(size_t districts, size_t towns, size_t villages) const;

 private:
  std::vector<DivisionInfo> divisions_;
};

}  // namespace tongban
