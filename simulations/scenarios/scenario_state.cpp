#include "simulations/scenarios/scenario_state.h"

#include <cstdio>

namespace tongban::sim::scenario_internal {

ScenarioState::ScenarioState(const TreeScenarioOptions& options)
    : options(options), world(options.seed, kSimulationStartMs), checker(world, result) {}

std::vector<SimNode*> ScenarioState::liveNodes() {
  std::vector<SimNode*> live;
  for (auto& n : nodes) {
    if (n->node) live.push_back(n.get());
  }
  return live;
}

SimNode* ScenarioState::nodeOf(const DivisionCode& code) {
  for (auto& n : nodes) {
    if (n->info.code == code) return n.get();
  }
  return nullptr;
}

std::string residentId(uint64_t n) {
  char body[18];
  std::snprintf(body, sizeof body, "44060419900101%03u", static_cast<unsigned>(n % 1000));
  static const int kWeights[17] = {7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2};
  int sum = 0;
  for (int i = 0; i < 17; ++i) sum += (body[i] - '0') * kWeights[i];
  static const char kCheck[] = "10X98765432";
  return std::string(body, 17) + kCheck[sum % 11];
}

std::array<uint8_t, 32> keySeed(Random& random) {
  std::array<uint8_t, 32> seed{};
  for (size_t i = 0; i < seed.size(); i += 8) {
    uint64_t v = random.next();
    for (size_t j = 0; j < 8; ++j) seed[i + j] = static_cast<uint8_t>(v >> (8 * j));
  }
  return seed;
}

Result<uint64_t> countRows(Node& node, const std::string& sql) {
  TB_ASSIGN_OR_RETURN(auto stmt, node.database().prepare(sql));
  TB_ASSIGN_OR_RETURN(bool row, stmt.step());
  return row ? static_cast<uint64_t>(stmt.columnInt64(0)) : 0;
}

}  // namespace tongban::sim::scenario_internal
