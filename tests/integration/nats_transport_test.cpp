// NatsTransport against a real nats-server on loopback.
//
// The io_context runs on the test thread in bounded slices (IoLoop::runUntil), so every handler
// the transport calls must arrive through it: a handler called from a nats.c thread shows up as
// a different thread id. Every wait has a bound; on timeout the test fails with what it was
// waiting for instead of hanging.
#include <gtest/gtest.h>

#include <utility>  // before Asio: Boost 1.74's awaitable.hpp misses it under C++20

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "federation/transport/asio_clock.h"
#include "federation/transport/nats/nats_transport.h"
#include "tests/support/nats_server.h"

namespace tongban {
namespace {

using namespace std::chrono_literals;
using testing::NatsServer;

// Generous bounds: they only decide when a broken test gives up, never whether a working one
// passes, so a slow shared machine does not make them flaky.
constexpr auto kWait = 10s;
constexpr auto kSlack = 5s;

class IoLoop {
 public:
  IoLoop() : guard_(boost::asio::make_work_guard(io_)) {}
  boost::asio::io_context& io() { return io_; }

  // Runs the io_context on this thread until `done()` or `budget` has passed.
  bool runUntil(const std::function<bool()>& done, std::chrono::milliseconds budget) {
    auto deadline = std::chrono::steady_clock::now() + budget;
    while (!done()) {
      if (std::chrono::steady_clock::now() >= deadline) return false;
      io_.run_for(10ms);
    }
    return true;
  }

  // Lets already-queued work run (not a wait for anything in particular).
  void drain(std::chrono::milliseconds budget) { io_.run_for(budget); }

 private:
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard_;
};

NatsOptions optionsFor(const NatsServer& server, const std::string& name) {
  NatsOptions o;
  o.urls = {server.url()};
  o.name = name;
  // Short waits so a restarted server is found quickly; ping fast enough to matter in tests.
  o.reconnect_wait_ms = 50;
  o.reconnect_wait_max_ms = 250;
  o.ping_interval_ms = 1000;
  o.max_pings_out = 3;
  o.connect_timeout_ms = 1000;
  return o;
}

std::unique_ptr<NatsTransport> makeTransport(IoLoop& loop, const NatsServer& server, const std::string& name) {
  auto t = NatsTransport::create(loop.io(), optionsFor(server, name));
  EXPECT_TRUE(t.isOk()) << t.status().toString();
  return t.isOk() ? std::move(t).value() : nullptr;
}

struct ServerFixture : ::testing::Test {
  void SetUp() override {
    Status s = server.start();
    ASSERT_TRUE(s.isOk()) << s.toString();
  }
  IoLoop loop;
  NatsServer server;
};

// An echo responder on `subject`: replies with the request bytes followed by "!".
void serveEcho(NatsTransport& t, const std::string& subject) {
  auto sub = t.subscribe(subject, [&t](const InboundMessage& m) {
    Bytes out = m.data;
    out.push_back('!');
    EXPECT_TRUE(t.reply(m, out).isOk());
  });
  ASSERT_TRUE(sub.isOk()) << sub.status().toString();
  // Flush waits for the server's PONG, so it has processed the SUB: requests from other
  // connections will find the interest.
  Status f = t.flush(5000);
  ASSERT_TRUE(f.isOk()) << f.toString();
}

TEST_F(ServerFixture, PublishedMessageReachesSubscriberOnAnotherConnection) {
  auto a = makeTransport(loop, server, "440604001");
  auto b = makeTransport(loop, server, "440604");
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(a->connected());
  std::vector<InboundMessage> got;
  auto sub = a->subscribe("tongban.test.hello", [&](const InboundMessage& m) { got.push_back(m); });
  ASSERT_TRUE(sub.isOk()) << sub.status().toString();
  ASSERT_TRUE(a->flush(5000).isOk());

  ASSERT_TRUE(b->publish("tongban.test.hello", toBytes("你好")).isOk());
  ASSERT_TRUE(loop.runUntil([&] { return !got.empty(); }, kWait)) << "message never arrived";
  EXPECT_EQ(got[0].subject, "tongban.test.hello");
  EXPECT_EQ(toString(got[0].data), "你好");
  EXPECT_TRUE(got[0].reply_to.empty());
}

TEST_F(ServerFixture, WildcardSubscriptionMatchesSuffixes) {
  auto a = makeTransport(loop, server, "a");
  ASSERT_TRUE(a);
  std::vector<std::string> subjects;
  ASSERT_TRUE(a->subscribe("tongban.up.>", [&](const InboundMessage& m) { subjects.push_back(m.subject); }).isOk());
  ASSERT_TRUE(a->flush(5000).isOk());
  ASSERT_TRUE(a->publish("tongban.up.440604.events", toBytes("x")).isOk());
  ASSERT_TRUE(loop.runUntil([&] { return !subjects.empty(); }, kWait));
  EXPECT_EQ(subjects[0], "tongban.up.440604.events");
}

TEST_F(ServerFixture, RequestGetsTheReply) {
  auto responder = makeTransport(loop, server, "440604");
  auto requester = makeTransport(loop, server, "440604001");
  ASSERT_TRUE(responder && requester);
  serveEcho(*responder, "tongban.test.echo");

  std::optional<Result<Bytes>> answer;
  requester->request("tongban.test.echo", toBytes("ping"), 5000, [&](Result<Bytes> r) { answer = std::move(r); });
  EXPECT_FALSE(answer.has_value()) << "the reply handler must not run inside request()";
  ASSERT_TRUE(loop.runUntil([&] { return answer.has_value(); }, kWait));
  ASSERT_TRUE(answer->isOk()) << answer->status().toString();
  EXPECT_EQ(toString(answer->value()), "ping!");
}

TEST_F(ServerFixture, ManyConcurrentRequestsEachGetTheirOwnReply) {
  auto responder = makeTransport(loop, server, "440604");
  auto requester = makeTransport(loop, server, "440604001");
  ASSERT_TRUE(responder && requester);
  serveEcho(*responder, "tongban.test.echo");
  constexpr int kRequests = 50;
  std::vector<std::optional<Result<Bytes>>> answers(kRequests);
  int calls = 0;
  for (int i = 0; i < kRequests; ++i) {
    requester->request("tongban.test.echo", toBytes(std::to_string(i)), 5000, [&, i](Result<Bytes> r) {
      ++calls;
      answers[i] = std::move(r);
    });
  }
  ASSERT_TRUE(loop.runUntil([&] { return calls == kRequests; }, kWait));
  for (int i = 0; i < kRequests; ++i) {
    ASSERT_TRUE(answers[i]->isOk()) << i << ": " << answers[i]->status().toString();
    EXPECT_EQ(toString(answers[i]->value()), std::to_string(i) + "!");
  }
  loop.drain(50ms);
  EXPECT_EQ(calls, kRequests);  // exactly once each
}

TEST_F(ServerFixture, RequestWithNoSubscriberEndsWithNoRespondersOrTimeoutWithinBudget) {
  auto requester = makeTransport(loop, server, "440604001");
  ASSERT_TRUE(requester);
  constexpr DurationMs kBudgetMs = 1000;
  std::optional<Result<Bytes>> answer;
  int calls = 0;
  auto start = std::chrono::steady_clock::now();
  requester->request("tongban.test.nobody", toBytes("anyone?"), kBudgetMs, [&](Result<Bytes> r) {
    ++calls;
    answer = std::move(r);
  });
  ASSERT_TRUE(loop.runUntil([&] { return answer.has_value(); }, std::chrono::milliseconds(kBudgetMs) + kSlack))
      << "the handler was not called within the budget plus slack";
  auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(answer->isOk());
  ErrorCode code = answer->status().code();
  EXPECT_TRUE(code == ErrorCode::kNoResponders || code == ErrorCode::kTimeout)
      << "expected NO_RESPONDERS (server 2.2+ with headers) or TIMEOUT, got " << answer->status().toString();
  // nats-server 2.9 with nats.c 3.4 answers with a 503 status message: record which one we saw.
  RecordProperty("no_subscriber_result", errorCodeName(code));
  EXPECT_LT(elapsed, std::chrono::milliseconds(kBudgetMs) + kSlack);
  loop.drain(50ms);
  EXPECT_EQ(calls, 1);
}

TEST_F(ServerFixture, RequestTimesOutWhenTheResponderStaysSilent) {
  auto silent = makeTransport(loop, server, "440604");
  auto requester = makeTransport(loop, server, "440604001");
  ASSERT_TRUE(silent && requester);
  ASSERT_TRUE(silent->subscribe("tongban.test.silent", [](const InboundMessage&) {}).isOk());
  ASSERT_TRUE(silent->flush(5000).isOk());
  std::optional<Result<Bytes>> answer;
  requester->request("tongban.test.silent", toBytes("hello?"), 200, [&](Result<Bytes> r) { answer = std::move(r); });
  ASSERT_TRUE(loop.runUntil([&] { return answer.has_value(); }, 200ms + kSlack));
  ASSERT_FALSE(answer->isOk());
  EXPECT_EQ(answer->status().code(), ErrorCode::kTimeout) << answer->status().toString();
}

TEST_F(ServerFixture, HandlersRunOnTheIoContextThread) {
  const auto io_thread = std::this_thread::get_id();  // IoLoop runs the io_context right here
  auto responder = makeTransport(loop, server, "440604");
  auto requester = makeTransport(loop, server, "440604001");
  ASSERT_TRUE(responder && requester);
  std::vector<std::thread::id> seen;
  ASSERT_TRUE(responder
                  ->subscribe("tongban.test.thread",
                              [&](const InboundMessage& m) {
                                seen.push_back(std::this_thread::get_id());
                                EXPECT_TRUE(responder->reply(m, toBytes("ok")).isOk());
                              })
                  .isOk());
  ASSERT_TRUE(responder->flush(5000).isOk());
  bool replied = false;
  requester->request("tongban.test.thread", toBytes("x"), 5000, [&](Result<Bytes> r) {
    EXPECT_TRUE(r.isOk()) << r.status().toString();
    seen.push_back(std::this_thread::get_id());
    replied = true;
  });
  ASSERT_TRUE(loop.runUntil([&] { return replied; }, kWait));
  AsioClock clock(loop.io());
  bool fired = false;
  clock.schedule(0, [&] {
    seen.push_back(std::this_thread::get_id());
    fired = true;
  });
  ASSERT_TRUE(loop.runUntil([&] { return fired; }, kWait));
  ASSERT_EQ(seen.size(), 3u);
  for (auto id : seen) EXPECT_EQ(id, io_thread);
}

TEST_F(ServerFixture, OversizePublishIsRefusedAndTheLimitItselfIsAccepted) {
  auto a = makeTransport(loop, server, "a");
  ASSERT_TRUE(a);
  Status too_big = a->publish("tongban.test.big", Bytes(kMaxMessageBytes + 1, 'x'));
  EXPECT_EQ(too_big.code(), ErrorCode::kResourceExhausted);
  EXPECT_NE(too_big.message().find(std::to_string(kMaxMessageBytes)), std::string::npos) << too_big.toString();

  std::optional<size_t> got;
  ASSERT_TRUE(a->subscribe("tongban.test.big", [&](const InboundMessage& m) { got = m.data.size(); }).isOk());
  ASSERT_TRUE(a->flush(5000).isOk());
  Status at_limit = a->publish("tongban.test.big", Bytes(kMaxMessageBytes, 'x'));
  ASSERT_TRUE(at_limit.isOk()) << at_limit.toString();
  ASSERT_TRUE(loop.runUntil([&] { return got.has_value(); }, kWait));
  EXPECT_EQ(*got, kMaxMessageBytes);

  std::optional<Result<Bytes>> answer;
  a->request("tongban.test.big", Bytes(kMaxMessageBytes + 1, 'x'), 1000, [&](Result<Bytes> r) { answer = std::move(r); });
  EXPECT_FALSE(answer.has_value()) << "even an immediate failure is reported from the io_context";
  ASSERT_TRUE(loop.runUntil([&] { return answer.has_value(); }, kWait));
  EXPECT_EQ(answer->status().code(), ErrorCode::kResourceExhausted);
}

TEST_F(ServerFixture, InvalidSubjectsAreRefused) {
  auto a = makeTransport(loop, server, "a");
  ASSERT_TRUE(a);
  for (std::string bad : {"", "has space", "tab\there", "a..b", ".a", "a.", "new\nline"}) {
    EXPECT_EQ(a->publish(bad, toBytes("x")).code(), ErrorCode::kInvalidArgument) << "publish to '" << bad << "'";
    EXPECT_EQ(a->subscribe(bad, [](const InboundMessage&) {}).status().code(), ErrorCode::kInvalidArgument)
        << "subscribe to '" << bad << "'";
  }
  // Wildcards are for subscriptions only, and '>' only at the end.
  EXPECT_EQ(a->publish("a.*", toBytes("x")).code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(a->publish("a.>", toBytes("x")).code(), ErrorCode::kInvalidArgument);
  EXPECT_TRUE(a->subscribe("a.*.c", [](const InboundMessage&) {}).isOk());
  EXPECT_EQ(a->subscribe("a.>.c", [](const InboundMessage&) {}).status().code(), ErrorCode::kInvalidArgument);
  std::optional<Result<Bytes>> answer;
  a->request("bad subject", toBytes("x"), 1000, [&](Result<Bytes> r) { answer = std::move(r); });
  ASSERT_TRUE(loop.runUntil([&] { return answer.has_value(); }, kWait));
  EXPECT_EQ(answer->status().code(), ErrorCode::kInvalidArgument);
}

TEST_F(ServerFixture, UnsubscribedHandlerIsNotCalledAgain) {
  auto a = makeTransport(loop, server, "a");
  auto b = makeTransport(loop, server, "b");
  ASSERT_TRUE(a && b);
  int gone_calls = 0, sentinel_calls = 0;
  auto gone = a->subscribe("tongban.test.gone", [&](const InboundMessage&) { ++gone_calls; });
  ASSERT_TRUE(gone.isOk());
  ASSERT_TRUE(a->subscribe("tongban.test.sentinel", [&](const InboundMessage&) { ++sentinel_calls; }).isOk());
  ASSERT_TRUE(a->flush(5000).isOk());
  ASSERT_TRUE(b->publish("tongban.test.gone", toBytes("1")).isOk());
  ASSERT_TRUE(loop.runUntil([&] { return gone_calls == 1; }, kWait));

  a->unsubscribe(*gone);
  ASSERT_TRUE(a->flush(5000).isOk());  // the server has dropped the interest
  ASSERT_TRUE(b->publish("tongban.test.gone", toBytes("2")).isOk());
  ASSERT_TRUE(b->publish("tongban.test.sentinel", toBytes("3")).isOk());
  ASSERT_TRUE(loop.runUntil([&] { return sentinel_calls == 1; }, kWait));
  loop.drain(50ms);
  EXPECT_EQ(gone_calls, 1);
  a->unsubscribe(*gone);  // twice is harmless
}

TEST(NatsTransport, ReconnectsAfterTheServerRestartsOnTheSamePort) {
  IoLoop loop;
  NatsServer server;
  ASSERT_TRUE(server.start().isOk());
  auto t = makeTransport(loop, server, "440604001");
  ASSERT_TRUE(t);
  std::vector<bool> events;
  t->onConnectionChange([&](bool up) { events.push_back(up); });
  serveEcho(*t, "tongban.test.echo");

  server.stop();
  ASSERT_TRUE(loop.runUntil([&] { return !events.empty() && !events.back(); }, kWait))
      << "the connection handler never saw the link go down";
  EXPECT_FALSE(t->connected());
  EXPECT_EQ(t->publish("tongban.test.echo", toBytes("x")).code(), ErrorCode::kUnavailable);
  std::optional<Result<Bytes>> while_down;
  t->request("tongban.test.echo", toBytes("x"), 5000, [&](Result<Bytes> r) { while_down = std::move(r); });
  ASSERT_TRUE(loop.runUntil([&] { return while_down.has_value(); }, kWait));
  EXPECT_EQ(while_down->status().code(), ErrorCode::kUnavailable) << "a request while down fails at once";

  ASSERT_TRUE(server.start().isOk());
  ASSERT_TRUE(loop.runUntil([&] { return !events.empty() && events.back(); }, kWait))
      << "the connection handler never saw the link come back";
  EXPECT_TRUE(t->connected());
  ASSERT_EQ(events, (std::vector<bool>{false, true}));

  // The subscription was restored with the connection: a request to it now succeeds.
  std::optional<Result<Bytes>> answer;
  t->request("tongban.test.echo", toBytes("again"), 5000, [&](Result<Bytes> r) { answer = std::move(r); });
  ASSERT_TRUE(loop.runUntil([&] { return answer.has_value(); }, kWait));
  ASSERT_TRUE(answer->isOk()) << answer->status().toString();
  EXPECT_EQ(toString(answer->value()), "again!");
}

TEST(NatsTransport, RequestInFlightFailsAsUnavailableWhenTheConnectionDrops) {
  IoLoop loop;
  NatsServer server;
  ASSERT_TRUE(server.start().isOk());
  auto t = makeTransport(loop, server, "440604001");
  ASSERT_TRUE(t);
  ASSERT_TRUE(t->subscribe("tongban.test.silent", [](const InboundMessage&) {}).isOk());
  ASSERT_TRUE(t->flush(5000).isOk());
  std::optional<Result<Bytes>> answer;
  constexpr DurationMs kLongTimeoutMs = 60000;  // far longer than the test's wait below
  t->request("tongban.test.silent", toBytes("x"), kLongTimeoutMs, [&](Result<Bytes> r) { answer = std::move(r); });
  server.stop();
  ASSERT_TRUE(loop.runUntil([&] { return answer.has_value(); }, kWait))
      << "the caller was left waiting for a reply that cannot come";
  EXPECT_EQ(answer->status().code(), ErrorCode::kUnavailable) << answer->status().toString();
}

TEST(NatsTransport, CreateSucceedsWhileTheServerIsDownAndConnectsWhenItComesUp) {
  IoLoop loop;
  NatsServer server;  // port chosen, not started
  auto t = makeTransport(loop, server, "440604001");
  ASSERT_TRUE(t) << "create() must succeed with the server down";
  EXPECT_FALSE(t->connected());
  EXPECT_EQ(t->publish("tongban.test.x", toBytes("x")).code(), ErrorCode::kUnavailable);
  bool up = false;
  t->onConnectionChange([&](bool connected) { up = connected; });
  // Interest registered before the first connection is sent once it exists.
  auto sub = t->subscribe("tongban.test.echo", [&](const InboundMessage& m) {
    EXPECT_TRUE(t->reply(m, toBytes("late!")).isOk());
  });
  ASSERT_TRUE(sub.isOk()) << sub.status().toString();

  ASSERT_TRUE(server.start().isOk());
  ASSERT_TRUE(loop.runUntil([&] { return up; }, kWait)) << "never connected after the server came up";
  EXPECT_TRUE(t->connected());

  auto other = makeTransport(loop, server, "440604");
  ASSERT_TRUE(other);
  ASSERT_TRUE(t->flush(5000).isOk());  // the SUB sent on connect has been processed
  std::optional<Result<Bytes>> answer;
  other->request("tongban.test.echo", toBytes("x"), 5000, [&](Result<Bytes> r) { answer = std::move(r); });
  ASSERT_TRUE(loop.runUntil([&] { return answer.has_value(); }, kWait));
  ASSERT_TRUE(answer->isOk()) << answer->status().toString();
  EXPECT_EQ(toString(answer->value()), "late!");
}

TEST(NatsTransport, DestroyingTheTransportWithWorkInFlightIsSafe) {
  IoLoop loop;
  NatsServer server;
  ASSERT_TRUE(server.start().isOk());
  auto a = makeTransport(loop, server, "a");
  auto b = makeTransport(loop, server, "b");
  ASSERT_TRUE(a && b);
  int calls = 0;
  ASSERT_TRUE(a->subscribe("tongban.test.flood", [&](const InboundMessage&) { ++calls; }).isOk());
  ASSERT_TRUE(a->subscribe("tongban.test.silent", [](const InboundMessage&) {}).isOk());
  ASSERT_TRUE(a->flush(5000).isOk());
  bool reply_called = false;
  a->request("tongban.test.silent", toBytes("x"), 100, [&](Result<Bytes>) { reply_called = true; });
  for (int i = 0; i < 200; ++i) ASSERT_TRUE(b->publish("tongban.test.flood", toBytes("m")).isOk());
  ASSERT_TRUE(b->flush(5000).isOk());
  a.reset();  // messages may be queued in nats.c and in the io_context right now
  loop.drain(300ms);  // longer than the request's timeout: its timer must not fire into freed memory
  EXPECT_FALSE(reply_called) << "handlers of a destroyed transport are dropped, not called";
  int after = calls;
  loop.drain(50ms);
  EXPECT_EQ(calls, after);
}

TEST(AsioClock, TasksRunInDelayOrderAndCancelledOnesNever) {
  IoLoop loop;
  AsioClock clock(loop.io());
  std::vector<int> order;
  clock.schedule(60, [&] { order.push_back(3); });
  auto cancelled = clock.schedule(20, [&] { order.push_back(99); });
  clock.schedule(30, [&] { order.push_back(2); });
  clock.schedule(0, [&] { order.push_back(1); });
  EXPECT_TRUE(order.empty()) << "schedule() must never run the task itself";
  EXPECT_NE(cancelled, Clock::TimerId{0});
  clock.cancel(cancelled);
  clock.cancel(cancelled);  // twice, and unknown ids, are no-ops
  clock.cancel(12345);
  ASSERT_TRUE(loop.runUntil([&] { return order.size() == 3; }, kWait));
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
}

TEST(AsioClock, NowIsUnixMilliseconds) {
  IoLoop loop;
  AsioClock clock(loop.io());
  TimeMs now = clock.now();
  EXPECT_GT(now, TimeMs{1'600'000'000'000});  // after 2020
  EXPECT_LT(now, TimeMs{4'000'000'000'000});  // and in milliseconds, not micro
}

TEST(AsioClock, DestroyedClockNeverRunsItsTasks) {
  IoLoop loop;
  bool ran = false;
  {
    AsioClock clock(loop.io());
    clock.schedule(0, [&] { ran = true; });
  }
  loop.drain(50ms);
  EXPECT_FALSE(ran);
}

}  // namespace
}  // namespace tongban
