#include "federation/division/division.h"

#include <algorithm>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

namespace tongban {

const char* levelName(Level level) {
  switch (level) {
    case Level::kCity: return "city";
    case Level::kDistrict: return "district";
    case Level::kTown: return "town";
    case Level::kVillage: return "village";
  }
  return "unknown";
}

std::string describeDivision(const DivisionCode& code) { return std::string(levelName(code.level())) + " " + code.str(); }

Result<Level> parseLevel(std::string_view name) {
  if (name == "city") return Level::kCity;
  if (name == "district") return Level::kDistrict;
  if (name == "town") return Level::kTown;
  if (name == "village") return Level::kVillage;
  return Status(ErrorCode::kInvalidArgument,
                "unknown level '" + std::string(name) + "' (expected city, district, town or village)");
}

namespace {
bool allZero(std::string_view s) { return s.find_first_not_of('0') == std::string_view::npos; }

// Group boundaries: [0,4) province+city, [4,6) district, [6,9) town, [9,12) village.
constexpr size_t kDistrictAt = 4, kTownAt = 6, kVillageAt = 9, kLength = 12;
}  // namespace

Result<DivisionCode> DivisionCode::parse(std::string_view text) {
  if (text.size() != kLength) {
    return Status(ErrorCode::kInvalidArgument, "division code '" + std::string(text) + "' has " +
                                                   std::to_string(text.size()) + " characters; expected 12 digits");
  }
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] < '0' || text[i] > '9') {
      return Status(ErrorCode::kInvalidArgument, "division code '" + std::string(text) +
                                                     "' has a non-digit at position " + std::to_string(i + 1));
    }
  }
  std::string_view province = text.substr(0, 2), city = text.substr(2, 2);
  std::string_view district = text.substr(kDistrictAt, 2), town = text.substr(kTownAt, 3),
                   village = text.substr(kVillageAt, 3);
  if (allZero(province) || allZero(city)) {
    return Status(ErrorCode::kInvalidArgument, "division code '" + std::string(text) +
                                                   "' names no city (digits 1-4 must be a province and city)");
  }
  Level level;
  if (allZero(district)) {
    if (!allZero(town) || !allZero(village)) {
      return Status(ErrorCode::kInvalidArgument, "division code '" + std::string(text) +
                                                     "' has a town or village part under a zero district part");
    }
    level = Level::kCity;
  } else if (allZero(town)) {
    if (!allZero(village)) {
      return Status(ErrorCode::kInvalidArgument,
                    "division code '" + std::string(text) + "' has a village part under a zero town part");
    }
    level = Level::kDistrict;
  } else if (allZero(village)) {
    level = Level::kTown;
  } else {
    level = Level::kVillage;
  }
  return DivisionCode(std::string(text), level);
}

std::optional<DivisionCode> DivisionCode::parent() const {
  if (code_.empty()) return std::nullopt;
  std::string p = code_;
  switch (level_) {
    case Level::kCity: return std::nullopt;
    case Level::kDistrict: p.replace(kDistrictAt, 8, 8, '0'); return DivisionCode(p, Level::kCity);
    case Level::kTown: p.replace(kTownAt, 6, 6, '0'); return DivisionCode(p, Level::kDistrict);
    case Level::kVillage: p.replace(kVillageAt, 3, 3, '0'); return DivisionCode(p, Level::kTown);
  }
  return std::nullopt;
}

std::vector<DivisionCode> DivisionCode::ancestors() const {
  std::vector<DivisionCode> out;
  for (auto p = parent(); p; p = p->parent()) out.push_back(*p);
  return out;
}

bool DivisionCode::isParentOf(const DivisionCode& other) const {
  auto p = other.parent();
  return p && *p == *this;
}

bool DivisionCode::isAncestorOf(const DivisionCode& other) const {
  for (auto p = other.parent(); p; p = p->parent()) {
    if (*p == *this) return true;
  }
  return false;
}

std::optional<DivisionCode> DivisionCode::childToward(const DivisionCode& descendant) const {
  for (std::optional<DivisionCode> step = descendant; step; step = step->parent()) {
    if (isParentOf(*step)) return step;
  }
  return std::nullopt;
}

Result<Topology> Topology::loadFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status(ErrorCode::kIo, "cannot open topology file " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  auto topo = fromJson(ss.str());
  if (!topo) return topo.status().withContext("topology file " + path);
  return topo;
}

Result<Topology> Topology::fromJson(std::string_view json_text) {
  nlohmann::json doc = nlohmann::json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return Status(ErrorCode::kInvalidArgument, "not valid JSON");
  if (!doc.is_object() || !doc.contains("nodes") || !doc["nodes"].is_array()) {
    return Status(ErrorCode::kInvalidArgument, "expected an object with a \"nodes\" array");
  }
  std::vector<DivisionInfo> divisions;
  size_t index = 0;
  for (const auto& n : doc["nodes"]) {
    const std::string where = "nodes[" + std::to_string(index++) + "]";
    if (!n.is_object() || !n.contains("code") || !n["code"].is_string() || !n.contains("name") ||
        !n["name"].is_string()) {
      return Status(ErrorCode::kInvalidArgument, where + " needs string fields \"code\" and \"name\"");
    }
    auto code = DivisionCode::parse(n["code"].get<std::string>());
    if (!code) return code.status().withContext(where);
    if (n.contains("level") && n["level"].is_string()) {
      auto level = parseLevel(n["level"].get<std::string>());
      if (!level) return level.status().withContext(where);
      if (*level != code->level()) {
        return Status(ErrorCode::kInvalidArgument, where + ": level \"" + n["level"].get<std::string>() +
                                                       "\" disagrees with code " + code->str() + " (a " +
                                                       levelName(code->level()) + " code)");
      }
    }
    if (n.contains("parent") && n["parent"].is_string()) {
      auto declared = n["parent"].get<std::string>();
      auto derived = code->parent();
      if (!derived || derived->str() != declared) {
        return Status(ErrorCode::kInvalidArgument,
                      where + ": parent " + declared + " is not the parent encoded in code " + code->str());
      }
    }
    divisions.push_back({*code, n["name"].get<std::string>()});
  }
  return fromDivisions(std::move(divisions));
}

Result<Topology> Topology::fromDivisions(std::vector<DivisionInfo> divisions) {
  std::set<std::string> seen;
  std::vector<DivisionInfo> ordered;
  // Parents first: sort by level, stable so file order is kept within a level.
  std::stable_sort(divisions.begin(), divisions.end(),
                   [](const DivisionInfo& a, const DivisionInfo& b) { return a.code.level() < b.code.level(); });
  for (auto& d : divisions) {
    if (!seen.insert(d.code.str()).second) {
      return Status(ErrorCode::kInvalidArgument, "division " + d.code.str() + " appears twice");
    }
    if (d.code.level() == Level::kCity) {
      if (!ordered.empty()) {
        return Status(ErrorCode::kInvalidArgument, "more than one city root: " + ordered.front().code.str() +
                                                       " and " + d.code.str());
      }
    } else if (!seen.count(d.code.parent()->str())) {
      return Status(ErrorCode::kInvalidArgument,
                    "division " + d.code.str() + " has no parent " + d.code.parent()->str() + " in the topology");
    }
    ordered.push_back(std::move(d));
  }
  if (ordered.empty() || ordered.front().code.level() != Level::kCity) {
    return Status(ErrorCode::kInvalidArgument, "topology has no city root");
  }
  Topology t;
  t.divisions_ = std::move(ordered);
  return t;
}

const DivisionInfo* Topology::find(const DivisionCode& code) const {
  for (const auto& d : divisions_) {
    if (d.code == code) return &d;
  }
  return nullptr;
}

std::vector<DivisionInfo> Topology::childrenOf(const DivisionCode& code) const {
  std::vector<DivisionInfo> out;
  for (const auto& d : divisions_) {
    if (code.isParentOf(d.code)) out.push_back(d);
  }
  return out;
}

Topology Topology::sample(size_t districts, size_t towns, size_t villages) const {
  std::vector<DivisionInfo> picked{root()};
  auto take = [&](const DivisionCode& parent, size_t n, auto&& recurse) -> void {
    size_t count = 0;
    for (const auto& child : childrenOf(parent)) {
      if (count++ >= n) break;
      picked.push_back(child);
      recurse(child.code);
    }
  };
  take(root().code, districts, [&](const DivisionCode& district) {
    take(district, towns, [&](const DivisionCode& town) { take(town, villages, [](const DivisionCode&) {}); });
  });
  Topology t;
  t.divisions_ = std::move(picked);
  return t;
}

}  // namespace tongban
