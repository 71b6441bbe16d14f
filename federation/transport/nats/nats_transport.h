// Transport over a real nats-server, using the NATS C client (libnats).
//
// nats.c delivers on its own threads; this adapter posts every callback onto the node's
// io_context, so node code stays single-threaded. It reconnects forever with backoff,
// sends replies immediately (SendAsap, see BUILD-NOTES), and implements request() with one
// wildcard inbox subscription and a timer per request, so a request never blocks the node.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "federation/transport/transport.h"

namespace boost::asio { class io_context; }

namespace tongban {

struct NatsOptions {
  std::vector<std::string> urls;          // e.g. nats://127.0.0.1:4222
  std::string name;                       // connection name shown by the server (division code)
  DurationMs reconnect_wait_ms = 250;     // first reconnect delay; doubles up to the max
  DurationMs reconnect_wait_max_ms = 5000;
  DurationMs ping_interval_ms = 2000;     // a silent partition is noticed after interval * max_pings_out
  int max_pings_out = 3;
  DurationMs connect_timeout_ms = 2000;
};

class NatsTransport : public Transport {
 public:
  // Connects (retrying in the background if the server is not up yet: a node starts even when
  // its bus is down, and its outbox waits).
  static Result<std::unique_ptr<NatsTransport>> create(boost::asio::io_context& io, const NatsOptions& options);
  ~NatsTransport() override;

  Result<SubscriptionId> subscribe(const std::string& subject, MessageHandler handler) override;
  void unsubscribe(SubscriptionId id) override;
  Status publish(const std::string& subject, const Bytes& data) override;
  Status reply(const InboundMessage& request, const Bytes& data) override;
  void request(const std::string& subject, const Bytes& data, DurationMs timeout, ReplyHandler handler) override;
  bool connected() const override;
  void onConnectionChange(ConnectionHandler handler) override;

  // Blocks the calling thread (not the io_context's) until flushed; for tests and the CLI.
  Status flush(DurationMs timeout);

  struct Impl;
 private:
  NatsTransport() = default;
  std::shared_ptr<Impl> impl_;
};

}  // namespace tongban
