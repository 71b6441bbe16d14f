// The simulated world: virtual time, a network shaped like the division tree, faults, crashes.
#include "simulations/world/sim_world.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <functional>
#include <list>
#include <vector>

namespace tongban::sim {
namespace {

constexpr TimeMs kStart = 1'700'000'000'000;

DivisionCode code(const std::string& text) { return DivisionCode::parse(text).value(); }

const DivisionCode kCity = code("440600000000");
const DivisionCode kDistrict = code("440604000000");
const DivisionCode kTown = code("440604001000");
const DivisionCode kVillage = code("440604001001");
const DivisionCode kOtherVillage = code("440604001002");

// A four-level chain with one endpoint per division (and a sibling village).
struct Chain {
  explicit Chain(SimWorld& w)
      : city(w.addEndpoint(kCity, "city")),
        district(w.addEndpoint(kDistrict, "district")),
        town(w.addEndpoint(kTown, "town")),
        village(w.addEndpoint(kVillage, "village")),
        sibling(w.addEndpoint(kOtherVillage, "sibling")) {}
  int city, district, town, village, sibling;
};

// Records every message one endpoint receives on `subject`, with the arrival time.
struct Inbox {
  Inbox(SimWorld& w, int endpoint, const std::string& subject) {
    auto sub = w.transport(endpoint).subscribe(subject, [this, &w](const InboundMessage& m) {
      arrivals.push_back(w.now());
      messages.push_back(m);
    });
    EXPECT_TRUE(sub.isOk()) << sub.status().toString();
  }
  std::vector<TimeMs> arrivals;
  std::vector<InboundMessage> messages;
};

TEST(SimWorld, TimersFireInTimeOrderAndTiesInInsertionOrder) {
  SimWorld w(1, kStart);
  int e = w.addEndpoint(kCity, "city");
  std::vector<std::string> fired;
  w.clock(e).schedule(30, [&] { fired.push_back("c@" + std::to_string(w.now() - kStart)); });
  w.clock(e).schedule(10, [&] { fired.push_back("a@" + std::to_string(w.now() - kStart)); });
  w.clock(e).schedule(10, [&] { fired.push_back("b@" + std::to_string(w.now() - kStart)); });
  w.clock(e).schedule(-5, [&] { fired.push_back("now@" + std::to_string(w.now() - kStart)); });
  EXPECT_TRUE(fired.empty()) << "a zero delay must not run inside schedule()";
  ASSERT_TRUE(w.runUntil(kStart + 100).isOk());
  EXPECT_EQ(fired, (std::vector<std::string>{"now@0", "a@10", "b@10", "c@30"}));
  EXPECT_EQ(w.now(), kStart + 100);
  EXPECT_EQ(w.eventsRun(), 4u);
}

TEST(SimWorld, TimerIdsAreNeverZeroAndCancelledTimersDoNotFire) {
  SimWorld w(1, kStart);
  int e = w.addEndpoint(kCity, "city");
  int fired = 0;
  auto keep = w.clock(e).schedule(10, [&] { ++fired; });
  auto drop = w.clock(e).schedule(10, [&] { fired += 100; });
  EXPECT_NE(keep, 0u);
  EXPECT_NE(drop, 0u);
  EXPECT_NE(keep, drop);
  w.clock(e).cancel(drop);
  w.clock(e).cancel(drop);       // twice: no-op
  w.clock(e).cancel(987654321);  // unknown: no-op
  ASSERT_TRUE(w.runUntil(kStart + 50).isOk());
  EXPECT_EQ(fired, 1);
  w.clock(e).cancel(keep);  // already fired: no-op
}

TEST(SimWorld, CrashedEndpointsTimersDoNotFireButNewOnesAfterRestartDo) {
  SimWorld w(1, kStart);
  int a = w.addEndpoint(kCity, "a");
  int b = w.addEndpoint(kTown, "b");
  std::vector<std::string> fired;
  w.clock(a).schedule(20, [&] { fired.push_back("a-old"); });
  w.clock(b).schedule(20, [&] { fired.push_back("b"); });
  w.at(kStart + 10, [&] { w.crash(a); });
  w.at(kStart + 15, [&] {
    w.clock(a).schedule(1, [&] { fired.push_back("a-while-crashed"); });
    w.restart(a);
    w.clock(a).schedule(10, [&] { fired.push_back("a-new"); });
  });
  ASSERT_TRUE(w.runUntil(kStart + 100).isOk());
  EXPECT_EQ(fired, (std::vector<std::string>{"b", "a-new"}));
}

TEST(SimWorld, PublishReachesReachableSubscriberAfterDelayWithinBounds) {
  SimWorld w(7, kStart);
  w.faults().min_delay_ms = 5;
  w.faults().max_delay_ms = 9;
  Chain t(w);
  Inbox at_city(w, t.city, "cases.up");
  for (int i = 0; i < 50; ++i) {
    w.at(kStart + i * 100, [&] { ASSERT_TRUE(w.transport(t.village).publish("cases.up", toBytes("hello")).isOk()); });
  }
  ASSERT_TRUE(w.runUntil(kStart + 10'000).isOk());
  ASSERT_EQ(at_city.arrivals.size(), 50u);
  for (size_t i = 0; i < 50; ++i) {
    const DurationMs delay = at_city.arrivals[i] - (kStart + static_cast<TimeMs>(i) * 100);
    EXPECT_GE(delay, 5);
    EXPECT_LE(delay, 9);
    EXPECT_EQ(toString(at_city.messages[i].data), "hello");
    EXPECT_EQ(at_city.messages[i].subject, "cases.up");
    EXPECT_TRUE(at_city.messages[i].reply_to.empty());
  }
  EXPECT_EQ(w.messagesDelivered(), 50u);
  EXPECT_EQ(w.messagesDropped(), 0u);
}

TEST(SimWorld, CutVillageLinkBlocksVillageToTownAndCityButNotTownToCity) {
  SimWorld w(1, kStart);
  Chain t(w);
  int village_client = w.addEndpoint(kVillage, "village-cli");
  w.setLinkUp(kVillage, false);
  EXPECT_FALSE(w.linkUp(kVillage));

  EXPECT_FALSE(w.reachable(t.village, t.town));
  EXPECT_FALSE(w.reachable(t.town, t.village));
  EXPECT_FALSE(w.reachable(t.village, t.city));
  EXPECT_FALSE(w.reachable(t.village, t.sibling));
  EXPECT_TRUE(w.reachable(t.town, t.city));
  EXPECT_TRUE(w.reachable(t.sibling, t.city));
  EXPECT_TRUE(w.reachable(t.village, village_client)) << "the same bus is always reachable";
  EXPECT_FALSE(w.transport(t.village).connected());
  EXPECT_TRUE(w.transport(t.town).connected());
  EXPECT_TRUE(w.transport(t.city).connected());

  Inbox at_town(w, t.town, "x");
  Inbox at_city(w, t.city, "x");
  Inbox at_client(w, village_client, "x");
  ASSERT_TRUE(w.transport(t.village).publish("x", toBytes("v")).isOk());
  ASSERT_TRUE(w.transport(t.town).publish("x", toBytes("t")).isOk());
  ASSERT_TRUE(w.runUntil(kStart + 1000).isOk());
  ASSERT_EQ(at_city.messages.size(), 1u);
  EXPECT_EQ(toString(at_city.messages[0].data), "t");
  ASSERT_EQ(at_town.messages.size(), 1u) << "a publisher hears its own subject";
  EXPECT_EQ(toString(at_town.messages[0].data), "t");
  ASSERT_EQ(at_client.messages.size(), 1u);
  EXPECT_EQ(toString(at_client.messages[0].data), "v");

  w.healAll();
  EXPECT_TRUE(w.reachable(t.village, t.city));
  EXPECT_TRUE(w.transport(t.village).connected());
}

TEST(SimWorld, ConnectionHandlerHearsLinkChangesAndRestart) {
  SimWorld w(1, kStart);
  Chain t(w);
  std::vector<bool> village_seen, town_seen;
  w.transport(t.village).onConnectionChange([&](bool up) { village_seen.push_back(up); });
  w.transport(t.town).onConnectionChange([&](bool up) { town_seen.push_back(up); });
  w.setLinkUp(kVillage, false);
  EXPECT_TRUE(village_seen.empty()) << "handlers run as events, not inside setLinkUp";
  w.setLinkUp(kVillage, false);  // no change: no event
  ASSERT_TRUE(w.runUntil(kStart + 10).isOk());
  w.setLinkUp(kVillage, true);
  ASSERT_TRUE(w.runUntil(kStart + 20).isOk());
  EXPECT_EQ(village_seen, (std::vector<bool>{false, true}));
  EXPECT_TRUE(town_seen.empty());

  w.crash(t.village);
  EXPECT_FALSE(w.transport(t.village).connected());
  w.restart(t.village);
  std::vector<bool> after_restart;
  w.transport(t.village).onConnectionChange([&](bool up) { after_restart.push_back(up); });
  ASSERT_TRUE(w.runUntil(kStart + 30).isOk());
  EXPECT_EQ(after_restart, (std::vector<bool>{true}));
  EXPECT_EQ(village_seen.size(), 2u) << "the crashed node's handler is gone";
}

TEST(SimWorld, MessageInFlightWhenLinkIsCutIsLost) {
  SimWorld w(1, kStart);
  w.faults().min_delay_ms = 10;
  w.faults().max_delay_ms = 10;
  Chain t(w);
  Inbox at_city(w, t.city, "up");
  ASSERT_TRUE(w.transport(t.village).publish("up", toBytes("lost")).isOk());
  w.at(kStart + 5, [&] { w.setLinkUp(kTown, false); });
  ASSERT_TRUE(w.runUntil(kStart + 100).isOk());
  EXPECT_TRUE(at_city.messages.empty());
  EXPECT_EQ(w.messagesDropped(), 1u);
}

TEST(SimWorld, MessagesOfACrashedSenderOrToACrashedReceiverAreLost) {
  SimWorld w(1, kStart);
  w.faults().min_delay_ms = 10;
  w.faults().max_delay_ms = 10;
  Chain t(w);
  Inbox at_city(w, t.city, "up");
  Inbox at_town(w, t.town, "down");
  ASSERT_TRUE(w.transport(t.village).publish("up", toBytes("from-sender")).isOk());
  ASSERT_TRUE(w.transport(t.city).publish("down", toBytes("to-receiver")).isOk());
  w.at(kStart + 5, [&] {
    w.crash(t.village);
    w.restart(t.village);  // a quick restart does not bring old messages back
    w.crash(t.town);
  });
  ASSERT_TRUE(w.runUntil(kStart + 100).isOk());
  EXPECT_TRUE(at_city.messages.empty());
  EXPECT_TRUE(at_town.messages.empty());
  EXPECT_EQ(w.messagesDropped(), 2u);
  auto st = w.transport(t.town).publish("up", toBytes("x"));
  EXPECT_EQ(st.code(), ErrorCode::kUnavailable);
  EXPECT_EQ(w.transport(t.town).subscribe("y", [](const InboundMessage&) {}).status().code(),
            ErrorCode::kUnavailable);
}

TEST(SimWorld, DropProbabilityOneDropsEverything) {
  SimWorld w(3, kStart);
  w.faults().drop = 1.0;
  Chain t(w);
  Inbox at_city(w, t.city, "up");
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(w.transport(t.village).publish("up", toBytes("x")).isOk());
  ASSERT_TRUE(w.runUntil(kStart + 1000).isOk());
  EXPECT_TRUE(at_city.messages.empty());
  EXPECT_EQ(w.messagesDropped(), 20u);
  EXPECT_EQ(w.messagesDelivered(), 0u);
}

TEST(SimWorld, DuplicateProbabilityOneDeliversTwice) {
  SimWorld w(3, kStart);
  w.faults().duplicate = 1.0;
  Chain t(w);
  Inbox at_city(w, t.city, "up");
  ASSERT_TRUE(w.transport(t.village).publish("up", toBytes("twice")).isOk());
  ASSERT_TRUE(w.runUntil(kStart + 1000).isOk());
  ASSERT_EQ(at_city.messages.size(), 2u);
  EXPECT_EQ(toString(at_city.messages[0].data), "twice");
  EXPECT_EQ(toString(at_city.messages[1].data), "twice");
  EXPECT_EQ(w.messagesDelivered(), 2u);
}

TEST(SimWorld, RequestGetsTheReply) {
  SimWorld w(5, kStart);
  Chain t(w);
  ASSERT_TRUE(w.transport(t.city)
                  .subscribe("lookup", [&](const InboundMessage& m) {
                    EXPECT_EQ(m.reply_to.rfind("_INBOX.", 0), 0u);
                    ASSERT_TRUE(w.transport(t.city).reply(m, toBytes("answer:" + toString(m.data))).isOk());
                  })
                  .isOk());
  std::vector<std::string> answers;
  w.transport(t.village).request("lookup", toBytes("q"), 1000, [&](Result<Bytes> r) {
    answers.push_back(r.isOk() ? toString(*r) : r.status().toString());
  });
  ASSERT_TRUE(w.runUntil(kStart + 5000).isOk());
  EXPECT_EQ(answers, (std::vector<std::string>{"answer:q"}));
}

TEST(SimWorld, RequestToNobodyReturnsNoRespondersAsAnEvent) {
  SimWorld w(5, kStart);
  Chain t(w);
  std::vector<ErrorCode> codes;
  w.transport(t.village).request("nobody.home", toBytes("q"), 1000,
                                 [&](Result<Bytes> r) { codes.push_back(r.status().code()); });
  EXPECT_TRUE(codes.empty()) << "never called from inside request()";
  ASSERT_TRUE(w.runUntil(kStart + 5000).isOk());
  EXPECT_EQ(codes, (std::vector<ErrorCode>{ErrorCode::kNoResponders}));
}

TEST(SimWorld, RequestToASubscriberBehindACutLinkIsNoResponders) {
  // Like a NATS leaf node whose link is down: the local server knows no remote interest.
  SimWorld w(5, kStart);
  Chain t(w);
  ASSERT_TRUE(w.transport(t.city).subscribe("lookup", [](const InboundMessage&) {}).isOk());
  w.setLinkUp(kDistrict, false);
  std::vector<ErrorCode> codes;
  w.transport(t.village).request("lookup", toBytes("q"), 1000,
                                 [&](Result<Bytes> r) { codes.push_back(r.status().code()); });
  ASSERT_TRUE(w.runUntil(kStart + 5000).isOk());
  EXPECT_EQ(codes, (std::vector<ErrorCode>{ErrorCode::kNoResponders}));
}

TEST(SimWorld, RequestWhoseLinkIsCutInFlightTimesOutExactlyOnce) {
  SimWorld w(5, kStart);
  w.faults().min_delay_ms = 10;
  w.faults().max_delay_ms = 10;
  Chain t(w);
  int asked = 0;
  ASSERT_TRUE(w.transport(t.city)
                  .subscribe("lookup", [&](const InboundMessage& m) {
                    ++asked;
                    (void)w.transport(t.city).reply(m, toBytes("late"));
                  })
                  .isOk());
  std::vector<std::pair<TimeMs, ErrorCode>> calls;
  w.transport(t.village).request("lookup", toBytes("q"), 500, [&](Result<Bytes> r) {
    calls.push_back({w.now(), r.status().code()});
  });
  w.at(kStart + 5, [&] { w.setLinkUp(kVillage, false); });
  w.at(kStart + 200, [&] { w.setLinkUp(kVillage, true); });  // healing later brings nothing back
  ASSERT_TRUE(w.runUntil(kStart + 10'000).isOk());
  EXPECT_EQ(asked, 0);
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].first, kStart + 500);
  EXPECT_EQ(calls[0].second, ErrorCode::kTimeout);
}

TEST(SimWorld, ReplyHandlerIsCalledExactlyOnceEvenWithDuplicatedReplies) {
  SimWorld w(11, kStart);
  w.faults().duplicate = 1.0;  // the request arrives twice and each reply arrives twice
  Chain t(w);
  int asked = 0;
  ASSERT_TRUE(w.transport(t.city)
                  .subscribe("lookup", [&](const InboundMessage& m) {
                    ++asked;
                    (void)w.transport(t.city).reply(m, toBytes("r" + std::to_string(asked)));
                  })
                  .isOk());
  int calls = 0;
  w.transport(t.village).request("lookup", toBytes("q"), 1000, [&](Result<Bytes> r) {
    ++calls;
    EXPECT_TRUE(r.isOk());
  });
  ASSERT_TRUE(w.runUntil(kStart + 5000).isOk());
  EXPECT_EQ(asked, 2);
  EXPECT_EQ(calls, 1);
}

TEST(SimWorld, CrashedRequesterNeverHearsAnAnswer) {
  SimWorld w(5, kStart);
  Chain t(w);
  int calls = 0;
  w.transport(t.village).request("nobody", toBytes("q"), 100, [&](Result<Bytes>) { ++calls; });
  w.transport(t.town).request("nobody", toBytes("q"), 100, [&](Result<Bytes>) { ++calls; });
  w.crash(t.village);
  w.crash(t.town);
  w.restart(t.town);
  ASSERT_TRUE(w.runUntil(kStart + 5000).isOk());
  EXPECT_EQ(calls, 0);
}

TEST(SimWorld, WildcardSubscriptionsMatchSuffixesAndSingleTokens) {
  SimWorld w(1, kStart);
  Chain t(w);
  Inbox tail(w, t.city, "a.b.>");
  Inbox star(w, t.city, "a.*.c");
  Inbox exact(w, t.city, "a.b");
  for (const char* s : {"a.b", "a.b.c", "a.b.c.d", "a.x.c", "a.bb.c.d", "b.b.c"}) {
    ASSERT_TRUE(w.transport(t.town).publish(s, toBytes(s)).isOk());
  }
  ASSERT_TRUE(w.runUntil(kStart + 1000).isOk());
  auto subjects = [](const Inbox& in) {
    std::vector<std::string> out;
    for (const auto& m : in.messages) out.push_back(m.subject);
    std::sort(out.begin(), out.end());
    return out;
  };
  EXPECT_EQ(subjects(tail), (std::vector<std::string>{"a.b.c", "a.b.c.d"}));
  EXPECT_EQ(subjects(star), (std::vector<std::string>{"a.b.c", "a.x.c"}));
  EXPECT_EQ(subjects(exact), (std::vector<std::string>{"a.b"}));
  EXPECT_EQ(w.messagesDelivered(), 4u) << "a.b.c reaches the city once and runs both handlers";

  EXPECT_FALSE(w.transport(t.city).subscribe("a.>.b", [](const InboundMessage&) {}).isOk());
  EXPECT_FALSE(w.transport(t.city).subscribe("a..b", [](const InboundMessage&) {}).isOk());
  EXPECT_FALSE(w.transport(t.town).publish("a.>", toBytes("")).isOk());
}

TEST(SimWorld, UnsubscribedHandlerStopsReceiving) {
  SimWorld w(1, kStart);
  Chain t(w);
  int got = 0;
  auto id = w.transport(t.city).subscribe("x", [&](const InboundMessage&) { ++got; });
  ASSERT_TRUE(id.isOk());
  EXPECT_NE(*id, 0u);
  ASSERT_TRUE(w.transport(t.town).publish("x", {}).isOk());
  ASSERT_TRUE(w.runUntil(kStart + 100).isOk());
  w.transport(t.city).unsubscribe(*id);
  ASSERT_TRUE(w.transport(t.town).publish("x", {}).isOk());
  ASSERT_TRUE(w.runUntil(kStart + 200).isOk());
  EXPECT_EQ(got, 1);
}

TEST(SimWorld, OversizeMessageIsRefused) {
  SimWorld w(1, kStart);
  Chain t(w);
  Bytes big(kMaxMessageBytes + 1, 0);
  EXPECT_EQ(w.transport(t.town).publish("x", big).code(), ErrorCode::kResourceExhausted);
  Bytes max(kMaxMessageBytes, 0);
  EXPECT_TRUE(w.transport(t.town).publish("x", max).isOk());
}

// Every node pings random others on a timer and answers requests: enough traffic for the random
// delays to shape the trace.
uint64_t chatterTraceHash(uint64_t seed) {
  std::list<std::function<void()>> loops;  // self-rescheduling tasks; outlive the world's queue
  SimWorld w(seed, kStart);
  w.faults().drop = 0.05;
  w.faults().duplicate = 0.05;
  Chain t(w);
  const std::vector<int> all{t.city, t.district, t.town, t.village, t.sibling};
  for (int e : all) {
    (void)w.transport(e).subscribe("ping." + std::to_string(e), [&w, e](const InboundMessage& m) {
      (void)w.transport(e).reply(m, m.data);
    });
    auto* loop = &loops.emplace_back();
    *loop = [&w, e, &all, loop] {
      const int target = all[w.random().below(all.size())];
      w.transport(e).request("ping." + std::to_string(target), toBytes("hi"), 200, [&w, e](Result<Bytes> r) {
        w.trace(std::to_string(e) + " got " + (r.isOk() ? "reply" : errorCodeName(r.status().code())));
      });
      w.clock(e).schedule(static_cast<DurationMs>(50 + w.random().below(100)), *loop);
    };
    w.clock(e).schedule(0, *loop);
  }
  w.at(kStart + 3000, [&] { w.setLinkUp(kTown, false); });
  w.at(kStart + 6000, [&] { w.healAll(); });
  EXPECT_TRUE(w.runUntil(kStart + 10'000).isOk());
  EXPECT_GT(w.messagesDelivered(), 100u);
  return w.traceHash();
}

TEST(SimWorld, SameSeedGivesSameTraceHashAndDifferentSeedADifferentOne) {
  const uint64_t a = chatterTraceHash(42);
  EXPECT_EQ(a, chatterTraceHash(42));
  EXPECT_NE(a, chatterTraceHash(43));
}

TEST(SimWorld, RunUntilStopsARunawayTimerLoopAtMaxEvents) {
  std::function<void()> runaway;
  auto* loop = &runaway;
  SimWorld w(1, kStart);
  int e = w.addEndpoint(kCity, "city");
  *loop = [&w, e, loop] { w.clock(e).schedule(0, *loop); };
  w.clock(e).schedule(0, *loop);
  Status st = w.runUntil(kStart + 1000, 100);
  EXPECT_EQ(st.code(), ErrorCode::kResourceExhausted);
  EXPECT_EQ(w.eventsRun(), 100u);
  EXPECT_EQ(w.now(), kStart) << "time did not advance past the stuck instant";
}

TEST(SimWorld, RunUntilAdvancesTimeToTheEndEvenWhenIdle) {
  SimWorld w(1, kStart);
  ASSERT_TRUE(w.runUntil(kStart + 1234).isOk());
  EXPECT_EQ(w.now(), kStart + 1234);
  bool ran = false;
  w.at(kStart + 2000, [&] { ran = true; });
  ASSERT_TRUE(w.runUntil(kStart + 1999).isOk());
  EXPECT_FALSE(ran);
  EXPECT_EQ(w.now(), kStart + 1999);
  ASSERT_TRUE(w.runUntil(kStart + 2000).isOk());
  EXPECT_TRUE(ran);
}

// The size the simulator must handle: ~800 endpoints, every village reporting upward each minute
// and its town answering, for one virtual hour.
TEST(SimWorld, LargeTreeHourOfTrafficRunsQuickly) {
  std::list<std::function<void()>> loops;
  SimWorld w(9, kStart);
  std::vector<int> villages;
  std::vector<std::string> parent_subject;
  w.addEndpoint(kCity, "city");
  char buf[16];
  for (int d = 1; d <= 8; ++d) {
    std::snprintf(buf, sizeof buf, "4406%02d000000", d);
    w.addEndpoint(code(buf), buf);
    for (int tn = 1; tn <= 10; ++tn) {
      std::snprintf(buf, sizeof buf, "4406%02d%03d000", d, tn);
      const std::string town = buf;
      int te = w.addEndpoint(code(town), town);
      (void)w.transport(te).subscribe("report." + town, [&w, te](const InboundMessage& m) {
        (void)w.transport(te).reply(m, toBytes("ack"));
      });
      for (int v = 1; v <= 10; ++v) {
        std::snprintf(buf, sizeof buf, "4406%02d%03d%03d", d, tn, v);
        villages.push_back(w.addEndpoint(code(buf), buf));
        parent_subject.push_back("report." + town);
      }
    }
  }
  uint64_t acks = 0;
  for (size_t i = 0; i < villages.size(); ++i) {
    auto* loop = &loops.emplace_back();
    *loop = [&w, &acks, e = villages[i], subject = parent_subject[i], loop] {
      w.transport(e).request(subject, Bytes(200, 1), 5000, [&acks](Result<Bytes> r) { acks += r.isOk(); });
      w.clock(e).schedule(60'000, *loop);
    };
    w.clock(villages[i]).schedule(static_cast<DurationMs>(w.random().below(60'000)), *loop);
  }
  const auto started = std::chrono::steady_clock::now();
  ASSERT_TRUE(w.runUntil(kStart + 3'600'000).isOk());
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
  std::printf("%zu villages, %llu messages, %llu events in %lld ms\n", villages.size(),
              static_cast<unsigned long long>(w.messagesDelivered()),
              static_cast<unsigned long long>(w.eventsRun()), static_cast<long long>(ms.count()));
  EXPECT_EQ(acks, villages.size() * 60);
  EXPECT_LT(ms.count(), 60'000) << "far slower than a simulator can afford";
}

}  // namespace
}  // namespace tongban::sim
