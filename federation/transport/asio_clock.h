// The daemon's Clock: system wall time and Asio steady timers on the node's io_context.
// Only this adapter (and the NATS adapter) may touch the system clock.
#pragma once

#include <memory>

#include "federation/transport/clock.h"

namespace boost::asio { class io_context; }

namespace tongban {

class AsioClock : public Clock {
 public:
  // `offset_ms` shifts now() from the system's time: 0 in production. A rehearsal or training
  // network may run days ahead (ops/demo.sh does, to show deadlines passing); every node of a
  // network must then use the same offset, or envelopes look like they come from the future.
  explicit AsioClock(boost::asio::io_context& io, DurationMs offset_ms = 0);
  ~AsioClock() override;

  TimeMs now() const override;
  TimerId schedule(DurationMs delay, Task task) override;
  void cancel(TimerId id) override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tongban
