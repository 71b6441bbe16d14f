// tongban-bench's lookups section (lookup_bench.cpp): village → city lookups over four real,
// leaf-linked nats-servers and four real nodes, beside raw nats.c request/reply measured in the
// same run. Kept out of bench_main.cpp so Asio, nats.c and the node stay in one translation unit.
#pragma once

namespace tongban::bench {

// Starts its own servers and nodes (temp dirs, free loopback ports) and stops them before it
// returns, also on failure; prints "skipped: <why>" instead of figures when it cannot set up.
// `rounds` measured lookups (and raw round trips of each kind) after `warmup` of each.
void lookupsOverLevels(int rounds, int warmup);

}  // namespace tongban::bench
