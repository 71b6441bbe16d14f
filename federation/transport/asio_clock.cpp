#include "federation/transport/asio_clock.h"

#include <utility>  // before Asio: Boost 1.74's awaitable.hpp misses it under C++20

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <algorithm>
#include <chrono>
#include <map>
#include <mutex>

namespace tongban {

namespace {

// The state timers refer to. Timer completions hold only a weak_ptr to it, so a completion that
// runs after the clock was destroyed (Asio delivers operation_aborted later) finds it gone and
// does nothing, instead of touching freed memory.
struct ClockState {
  explicit ClockState(boost::asio::io_context& io) : io(io) {}

  struct Entry {
    std::unique_ptr<boost::asio::steady_timer> timer;
    Clock::Task task;
  };

  boost::asio::io_context& io;
  // The one-thread rule says callers are on the io_context's thread, but a daemon's start-up
  // code may schedule before that thread runs; the lock makes that harmless and costs nothing
  // measurable next to arming a timer.
  std::mutex mu;
  std::map<Clock::TimerId, Entry> timers;
  Clock::TimerId next_id = 1;  // 0 means "no timer"
};

}  // namespace

struct AsioClock::Impl {
  std::shared_ptr<ClockState> state;
  DurationMs offset_ms = 0;
};

AsioClock::AsioClock(boost::asio::io_context& io, DurationMs offset_ms) : impl_(std::make_unique<Impl>()) {
  impl_->state = std::make_shared<ClockState>(io);
  impl_->offset_ms = offset_ms;
}

AsioClock::~AsioClock() {
  std::map<TimerId, ClockState::Entry> timers;
  {
    std::lock_guard<std::mutex> lock(impl_->state->mu);
    timers.swap(impl_->state->timers);
  }
  for (auto& [id, entry] : timers) entry.timer->cancel();
  // `timers` dies here with its tasks; pending completions see the state expire and return.
}

TimeMs AsioClock::now() const {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count() + impl_->offset_ms;
}

Clock::TimerId AsioClock::schedule(DurationMs delay, Task task) {
  auto& state = impl_->state;
  std::lock_guard<std::mutex> lock(state->mu);
  TimerId id = state->next_id++;
  auto timer = std::make_unique<boost::asio::steady_timer>(state->io);
  // delay <= 0 still goes through the timer: the task runs from the io_context later, never
  // from inside schedule() (the Clock contract).
  timer->expires_after(std::chrono::milliseconds(std::max<DurationMs>(0, delay)));
  std::weak_ptr<ClockState> weak = state;
  timer->async_wait([weak, id](const boost::system::error_code& ec) {
    if (ec == boost::asio::error::operation_aborted) return;
    auto locked = weak.lock();
    if (!locked) return;
    Task run;
    {
      std::lock_guard<std::mutex> lock(locked->mu);
      auto it = locked->timers.find(id);
      if (it == locked->timers.end()) return;  // cancelled after it had already expired
      run = std::move(it->second.task);
      locked->timers.erase(it);
    }
    // Outside the lock: the task may schedule or cancel timers itself.
    if (run) run();
  });
  state->timers.emplace(id, ClockState::Entry{std::move(timer), std::move(task)});
  return id;
}

void AsioClock::cancel(TimerId id) {
  std::unique_ptr<boost::asio::steady_timer> timer;
  {
    std::lock_guard<std::mutex> lock(impl_->state->mu);
    auto it = impl_->state->timers.find(id);
    if (it == impl_->state->timers.end()) return;
    timer = std::move(it->second.timer);
    impl_->state->timers.erase(it);
  }
  // Erasing the entry is what guarantees the task never runs (even if the timer already
  // expired and its completion is queued); cancelling just frees the wait early.
  timer->cancel();
}

}  // namespace tongban
