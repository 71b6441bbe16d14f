// The Transport seam: subject-based publish/subscribe and request/reply between nodes.
//
// The daemon uses the NATS implementation (nats/nats_transport.h); the simulator a simulated
// network that partitions, delays, drops, duplicates and reorders. Node and protocol code see
// only this interface.
//
// Contract:
// - Every handler and reply callback runs on the node's executor (see clock.h), never on a
//   library thread and never re-entrantly from inside publish/request/subscribe.
// - Delivery is at most once and unordered across subjects. Durability is the outbox's job.
// - Bytes that arrive are hostile: handlers verify before they trust (trust/envelope.h).
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "federation/transport/clock.h"
#include "federation/util/bytes.h"
#include "federation/util/status.h"

namespace tongban {

struct InboundMessage {
  std::string subject;
  std::string reply_to;  // empty unless the sender expects a reply (request)
  Bytes data;
};

// Limits that every Transport enforces (named so they can be documented and tested).
inline constexpr size_t kMaxMessageBytes = 1 << 20;  // 1 MiB, also nats-server's default max_payload

class Transport {
 public:
  using SubscriptionId = uint64_t;
  using MessageHandler = std::function<void(const InboundMessage&)>;
  // Called exactly once: with the reply bytes, or with kTimeout / kNoResponders / kUnavailable.
  using ReplyHandler = std::function<void(Result<Bytes>)>;
  // Called on the executor whenever the connection to the message bus goes up or down.
  using ConnectionHandler = std::function<void(bool connected)>;

  virtual ~Transport() = default;

  // Subjects are dot-separated tokens; a subscription may end in ">" to match any suffix.
  virtual Result<SubscriptionId> subscribe(const std::string& subject, MessageHandler handler) = 0;
  virtual void unsubscribe(SubscriptionId id) = 0;

  // Fire and forget. Fails fast (kUnavailable) only when the transport knows it is
  // disconnected; otherwise success says nothing about delivery.
  virtual Status publish(const std::string& subject, const Bytes& data) = 0;

  // Answers a request: publishes to message.reply_to (a no-op if it is empty).
  virtual Status reply(const InboundMessage& request, const Bytes& data) = 0;

  // Request/reply with a time budget. The handler runs exactly once.
  virtual void request(const std::string& subject, const Bytes& data, DurationMs timeout,
                       ReplyHandler handler) = 0;

  virtual bool connected() const = 0;
  virtual void onConnectionChange(ConnectionHandler handler) = 0;
};

}  // namespace tongban
