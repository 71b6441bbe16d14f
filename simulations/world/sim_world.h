// The simulated world: one virtual clock, one event queue, one network, driven by one seed.
//
// Everything the simulated nodes do happens as events on this queue, in (time, insertion)
// order, on the calling thread: a run is a pure function of its seed. Each node gets a
// SimClock (timers it arms are cancelled when it crashes) and a SimTransport attached to a
// network that can partition any tree link, delay, drop, duplicate and reorder messages.
//
// The network mirrors the deployment: every node is attached to its own division's bus, and the
// buses form the division tree. A message from A reaches B only if every tree link on the path
// between them is up and both are alive. Client endpoints (like the CLI) attach to a division's
// bus without being a node.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <queue>
#include <set>
#include <string>
#include <vector>

#include "federation/division/division.h"
#include "federation/transport/clock.h"
#include "federation/transport/random.h"
#include "federation/transport/transport.h"

namespace tongban::sim {

struct NetworkFaults {
  double drop = 0.0;           // probability a message is lost
  double duplicate = 0.0;      // probability a message is delivered twice
  DurationMs min_delay_ms = 1;
  DurationMs max_delay_ms = 20;  // uniform in [min, max]: different delays reorder messages
};

class SimWorld;

// One node's view of time: the world's virtual clock; its timers belong to the endpoint.
class SimClock : public Clock {
 public:
  TimeMs now() const override;
  TimerId schedule(DurationMs delay, Task task) override;
  void cancel(TimerId id) override;
 private:
  friend class SimWorld;
  SimClock(SimWorld* world, int endpoint) : world_(world), endpoint_(endpoint) {}
  SimWorld* world_;
  int endpoint_;
};

class SimTransport : public Transport {
 public:
  Result<SubscriptionId> subscribe(const std::string& subject, MessageHandler handler) override;
  void unsubscribe(SubscriptionId id) override;
  Status publish(const std::string& subject, const Bytes& data) override;
  Status reply(const InboundMessage& request, const Bytes& data) override;
  void request(const std::string& subject, const Bytes& data, DurationMs timeout, ReplyHandler handler) override;
  bool connected() const override;
  void onConnectionChange(ConnectionHandler handler) override;
 private:
  friend class SimWorld;
  SimTransport(SimWorld* world, int endpoint) : world_(world), endpoint_(endpoint) {}
  SimWorld* world_;
  int endpoint_;
};

class SimWorld {
 public:
  SimWorld(uint64_t seed, TimeMs start_ms);
  ~SimWorld();

  TimeMs now() const { return now_ms_; }
  Random& random() { return random_; }
  NetworkFaults& faults() { return faults_; }

  // An endpoint is a participant attached to the bus of `division` (a node, or a client such as
  // the status CLI). Endpoints are never removed; crash() detaches one until restart.
  int addEndpoint(const DivisionCode& division, const std::string& label);
  SimClock& clock(int endpoint);
  SimTransport& transport(int endpoint);

  // Crash: the endpoint's timers, subscriptions, pending requests and in-flight messages to it
  // are dropped, and nothing it had sent but not yet delivered arrives. Restart makes it
  // reachable again (the caller then builds a fresh node over the surviving files).
  void crash(int endpoint);
  void restart(int endpoint);
  bool alive(int endpoint) const;

  // The link between `child` and its parent division's bus.
  void setLinkUp(const DivisionCode& child, bool up);
  bool linkUp(const DivisionCode& child) const;
  void healAll();   // every link up (crashed endpoints stay crashed)

  // Schedules a world-level event (fault injection, checks), not owned by any endpoint.
  void at(TimeMs when, std::function<void()> task);

  // Runs events until the queue is empty or virtual time would pass `until_ms`; time ends at
  // until_ms. `max_events` bounds the run (a runaway timer loop is an error, not a hang).
  Status runUntil(TimeMs until_ms, uint64_t max_events = 50'000'000);

  // Adds a line to the trace; the trace hash identifies a run (same seed, same hash).
  void trace(const std::string& line);
  uint64_t traceHash() const { return trace_hash_; }
  uint64_t eventsRun() const { return events_run_; }
  uint64_t messagesDelivered() const { return delivered_; }
  // Sent to a receiver reachable at send time but never delivered: dropped by the drop fault, or
  // lost in flight (a crash of either side, a cut link, no matching subscription on arrival).
  uint64_t messagesDropped() const { return dropped_; }

  // Implementation detail shared with SimClock / SimTransport.
  struct EndpointState;
  struct Event {
    TimeMs when;
    uint64_t order;
    int owner;                    // endpoint that owns it (-1: the world)
    uint64_t timer_id;            // 0 if not a cancellable timer
    std::function<void()> task;
  };
  Clock::TimerId scheduleFor(int owner, DurationMs delay, std::function<void()> task);
  void cancelTimer(Clock::TimerId id);
  void send(int from, const std::string& subject, const std::string& reply_to, const Bytes& data);
  bool reachable(int a, int b) const;
  EndpointState& endpoint(int id) { return *endpoints_.at(id); }
  // Subscriptions indexed by subject, armed timers and request bookkeeping (defined in the .cpp).
  struct Network;
  Network& network() { return *network_; }

 private:
  struct Later {
    bool operator()(const Event& a, const Event& b) const {
      return a.when != b.when ? a.when > b.when : a.order > b.order;
    }
  };
  // Both epochs are the ones at send time: a crash of either side since then loses the message.
  void deliver(int from, int to, uint64_t from_epoch, uint64_t to_epoch, const std::string& subject,
               const std::string& reply_to, const Bytes& data);

  TimeMs now_ms_;
  Random random_;
  NetworkFaults faults_;
  std::priority_queue<Event, std::vector<Event>, Later> queue_;
  uint64_t next_order_ = 0;
  uint64_t next_timer_ = 1;
  std::set<Clock::TimerId> cancelled_;
  std::vector<std::unique_ptr<EndpointState>> endpoints_;
  std::set<std::string> down_links_;   // child division codes whose uplink is cut
  uint64_t trace_hash_ = 1469598103934665603ULL;
  uint64_t events_run_ = 0, delivered_ = 0, dropped_ = 0;
  std::unique_ptr<Network> network_;
};

}  // namespace tongban::sim
