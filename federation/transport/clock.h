// The Clock seam: wall time and timers for one node.
//
// A node never reads the system clock or arms an OS timer itself; it asks its Clock. The daemon
// passes an Asio-backed clock (asio_clock.h), the simulator a virtual one, which is what makes a
// simulated run replayable from its seed.
//
// Contract: every task handed to schedule() runs on the node's one executor (the same thread
// that runs all of the node's other callbacks), never concurrently with them, and never from
// inside schedule() itself, even with a zero delay.
#pragma once

#include <cstdint>
#include <functional>

namespace tongban {

using TimeMs = int64_t;      // milliseconds since the Unix epoch (UTC)
using DurationMs = int64_t;  // milliseconds

class Clock {
 public:
  using TimerId = uint64_t;  // never 0; 0 means "no timer"
  using Task = std::function<void()>;

  virtual ~Clock() = default;

  // Wall-clock time now. Monotonic within one run of the simulator; the daemon's may step if
  // the operator corrects the system time (deadlines are recomputed from stored timestamps).
  virtual TimeMs now() const = 0;

  // Runs `task` on the node's executor after at least `delay` ms (delay <= 0: as soon as
  // possible, after the caller returns).
  virtual TimerId schedule(DurationMs delay, Task task) = 0;

  // Cancels a timer that has not fired yet; a no-op for fired, cancelled or unknown ids.
  virtual void cancel(TimerId id) = 0;
};

}  // namespace tongban
