// The daemon's Clock: system wall time and Asio steady timers on the node's io_context.
// Only this adapter (and the NATS adapter) may touch the system clock.
#pragma once

#include <memory>

#include "federation/transport/clock.h"

namespace boost::asio { class io_context; }

namespace tongban {

class AsioClock : public Clock {
 public:
  explicit AsioClock(boost::asio::io_context& io);
  ~AsioClock() override;

  TimeMs now() const override;
  TimerId schedule(DurationMs delay, Task task) override;
  void cancel(TimerId id) override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tongban
