// tongban-bench's credentials section (credential_bench.cpp, issue #6): how fast the city takes
// in a district's credentials (verify + authority + store), beside raw Ed25519 verify and raw
// SQLite commits (FULL) measured in the same run on the same machine.
#pragma once

#include <string>

namespace tongban::bench {

// A real city Node on a SQLite file under `dir` (synchronous FULL, the real catalogue and
// calendar) in a simulated world that is never run. About `seconds` per measurement, three
// interleaved rounds; prints medians. Removes its files before it returns; prints
// "skipped: <why>" instead of figures when it cannot set up.
void credentialIngest(double seconds, const std::string& dir);

}  // namespace tongban::bench
