#include "federation/transport/random.h"

#include <sodium.h>

namespace tongban {
namespace {
uint64_t splitmix64(uint64_t& x) {
  uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}
uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
}  // namespace

Random::Random(uint64_t seed) {
  for (auto& s : s_) s = splitmix64(seed);
}

uint64_t Random::next() {
  const uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

uint64_t Random::below(uint64_t bound) {
  if (bound == 0) return 0;
  // Rejection sampling keeps the distribution exact.
  const uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
  uint64_t r;
  do { r = next(); } while (r >= limit);
  return r % bound;
}

int64_t Random::between(int64_t lo, int64_t hi) {
  if (hi <= lo) return lo;
  return lo + static_cast<int64_t>(below(static_cast<uint64_t>(hi - lo) + 1));
}

bool Random::chance(double p) {
  if (p <= 0) return false;
  if (p >= 1) return true;
  return static_cast<double>(next() >> 11) * (1.0 / 9007199254740992.0) < p;
}

uint64_t seedFromEntropy() {
  uint64_t seed = 0;
  if (sodium_init() < 0) return 0x5eed;
  randombytes_buf(&seed, sizeof seed);
  return seed;
}

}  // namespace tongban
