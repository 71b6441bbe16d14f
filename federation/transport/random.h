// The Random seam: every non-cryptographic random choice (retry jitter, request ids, the
// simulator's faults) comes from one seeded generator per run, so a seed replays a run.
// Key generation is not here: keys come from libsodium (or, in the simulator, from seeds
// derived from this generator).
#pragma once

#include <cstdint>

namespace tongban {

class Random {
 public:
  // xoshiro256** seeded through splitmix64: fast, good enough for jitter and simulation.
  explicit Random(uint64_t seed);

  uint64_t next();
  // Uniform in [0, bound); bound 0 returns 0.
  uint64_t below(uint64_t bound);
  // Uniform in [lo, hi] (inclusive).
  int64_t between(int64_t lo, int64_t hi);
  // True with probability p (0..1).
  bool chance(double p);
  // A fresh seed drawn from this generator (for a child generator).
  uint64_t fork() { return next(); }

 private:
  uint64_t s_[4];
};

// A seed from the operating system's entropy (libsodium); for the daemon only.
uint64_t seedFromEntropy();

}  // namespace tongban
