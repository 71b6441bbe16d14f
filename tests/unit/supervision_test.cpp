// Supervision on real SQLite files: every counter's definition, the rates, snapshot versions
// (older and equal ignored, newer replaces), re-delivery, drill-down sums, staleness, warnings
// and the score formula.
#include "node/supervision/supervision.h"

#include <gtest/gtest.h>

#include "tests/support/hall_fixture.h"

namespace tongban {
namespace {

using namespace hall_testing;

const char* kDistrict = "440604000000";
const char* kTownA = "440604001000";
const char* kVillageA1 = "440604001001";
const char* kTownB = "440604002000";
constexpr TimeMs kMinute = 60 * 1000;

class SupervisionTest : public HallFixture {
 protected:
  void SetUp() override {
    HallFixture::SetUp();  // the district 440604 (禅城区)
    openSupervision();
  }

  void openSupervision() {
    auto enqueue = [this](MessageKind kind, const Bytes& payload) -> Result<uint64_t> {
      if (kind == kSupervisionSnapshotKind) sent_.push_back(decodeSupervisionSnapshot(payload).value());
      return outbox_->enqueue(kind, "440600000000", payload, kMonday0900);
    };
    auto children = [this]() -> Result<std::vector<ChildStatusMsg>> { return children_; };
    auto depth = [this]() -> Result<uint64_t> { return outbox_waiting_; };
    auto s = SupervisionService::open(*db_, self_, "禅城区", calendar_, enqueue, children, depth, settings_);
    ASSERT_TRUE(s.isOk()) << s.status().toString();
    sup_.emplace(std::move(s).value());
  }

  Figures today() { return sup_->ownTotals(CivilDate::fromTimeMs(kMonday0900), CivilDate::fromTimeMs(kMonday0900)).value(); }

  // A snapshot of `origin` for the first day with `accepted` cases of one item.
  static SupervisionSnapshotInfo snapshot(const std::string& origin, uint64_t version, uint64_t accepted,
                                          const std::string& day = "2026-11-23") {
    SupervisionSnapshotInfo s{origin, "name of " + origin, day, version, {}};
    FigureRow row{"CG-0101", "城管 city management", {}};
    row.figures.accepted = accepted;
    row.figures.concluded = accepted;
    row.figures.on_time = accepted;
    s.rows.push_back(row);
    return s;
  }

  // As the downlink does: inside a transaction that commits only if the apply succeeded.
  Status apply(const std::string& signer, const SupervisionSnapshotInfo& s, TimeMs at = kMonday0900) {
    auto txn = db_->begin();
    if (!txn.isOk()) return txn.status();
    TB_RETURN_IF_ERROR(sup_->applySnapshot(DivisionCode::parse(signer).value(), encodeSupervisionSnapshot(s), at));
    return txn->commit();
  }

  Figures summaryOf(const std::string& division, TimeMs now = kMonday0900) {
    auto s = sup_->summary(DivisionCode::parse(division).value(), CivilDate{2026, 11, 1}, CivilDate{2026, 11, 30}, now);
    EXPECT_TRUE(s.isOk()) << s.status().toString();
    return s.isOk() ? s->totals : Figures{};
  }

  // Walks a CG-0101 case (5 working days) to its conclusion at `concluded_at`.
  std::string concludeAt(TimeMs accepted_at, TimeMs concluded_at) {
    std::string n = submit("CG-0101", accepted_at)->number;
    EXPECT_TRUE(step(n, "undertake", undertaker_, accepted_at).isOk());
    EXPECT_TRUE(step(n, "review", reviewer_, accepted_at).isOk());
    EXPECT_TRUE(step(n, "approve", approver_, accepted_at).isOk());
    EXPECT_TRUE(step(n, "conclude", clerk_, concluded_at).isOk());
    return n;
  }

  SupervisionSettings settings_;
  std::optional<SupervisionService> sup_;
  std::vector<SupervisionSnapshotInfo> sent_;
  std::vector<ChildStatusMsg> children_;
  uint64_t outbox_waiting_ = 0;
};

TEST_F(SupervisionTest, IntakeCountersFollowTheirDefinitions) {
  ASSERT_TRUE(submit("SI-0001").isOk());                                             // immediate, on the spot
  ASSERT_TRUE(cases_->submit(request("CG-0101", false), clerk_, kMonday0900).isOk());  // refused
  ASSERT_TRUE(submit("ZJ-0301").isOk());                                             // decided by the city
  std::string n = submit("CG-0101")->number;
  ASSERT_TRUE(step(n, "supplement", clerk_).isOk());

  Figures f = today();
  EXPECT_EQ(f.accepted, 3u);
  EXPECT_EQ(f.refused, 1u);
  EXPECT_EQ(f.immediate, 1u);
  EXPECT_EQ(f.concluded, 1u);
  EXPECT_EQ(f.on_time, 1u);
  EXPECT_EQ(f.early, 0u) << "an immediate case concludes on its deadline's own day";
  EXPECT_EQ(f.forwarded_up, 1u);
  EXPECT_EQ(f.supplements, 1u);
  EXPECT_EQ(f.working_days_total, 0u);
  EXPECT_DOUBLE_EQ(f.onSiteRate().value(), 1.0 / 3.0);
  EXPECT_FALSE(f.satisfactionRate().has_value()) << "no evaluations: nothing to rate";
}

TEST_F(SupervisionTest, EarlyOnTimeAndWorkingDaysCountOnTheConclusionDay) {
  const TimeMs wednesday = kMonday0900 + 2 * kDay;
  concludeAt(kMonday0900, wednesday);   // deadline: end of Monday 11-30, concluded two working days in
  const CivilDate wed = CivilDate::fromTimeMs(wednesday);
  Figures on_wed = sup_->ownTotals(wed, wed).value();
  EXPECT_EQ(on_wed.concluded, 1u);
  EXPECT_EQ(on_wed.on_time, 1u);
  EXPECT_EQ(on_wed.early, 1u);
  EXPECT_EQ(on_wed.working_days_total, 2u);
  EXPECT_DOUBLE_EQ(on_wed.avgWorkingDays().value(), 2.0);
  EXPECT_EQ(today().concluded, 0u) << "the acceptance day keeps only the acceptance";
  EXPECT_EQ(today().accepted, 1u);
}

TEST_F(SupervisionTest, ConcludingOnTheDeadlinesLastDayIsOnTimeButNotEarly) {
  const TimeMs last_day = kMonday0900 + 7 * kDay;  // Monday 11-30, the 5th working day
  concludeAt(kMonday0900, last_day);
  const CivilDate d = CivilDate::fromTimeMs(last_day);
  Figures f = sup_->ownTotals(d, d).value();
  EXPECT_EQ(f.on_time, 1u);
  EXPECT_EQ(f.early, 0u);
  EXPECT_EQ(f.overdue, 0u);
  EXPECT_DOUBLE_EQ(f.onTimeRate().value(), 1.0);
  EXPECT_DOUBLE_EQ(f.earlyRate().value(), 0.0);
}

TEST_F(SupervisionTest, AnOpenRedCaseIsOverdueOnItsRedDayUntilItConcludesLate) {
  std::string n = submit("CG-0101")->number;
  const TimeMs red_at = kMonday0900 + 8 * kDay;   // Tuesday 12-01: past the deadline
  ASSERT_EQ(cases_->scanLights(red_at).value(), 2);  // yellow then red
  const CivilDate red_day = CivilDate::fromTimeMs(red_at);
  Figures at_red = sup_->ownTotals(red_day, red_day).value();
  EXPECT_EQ(at_red.yellow, 1u);
  EXPECT_EQ(at_red.red, 1u);
  EXPECT_EQ(at_red.overdue, 1u) << "open and past its limit";

  ASSERT_TRUE(sup_->publish(red_at).isOk());
  ASSERT_EQ(sup_->dirtyDays().value(), 0u);
  const TimeMs late = red_at + 2 * kDay;
  for (const char* s : {"undertake", "review", "approve"}) ASSERT_TRUE(step(n, s, s[0] == 'u' ? undertaker_ : s[0] == 'r' ? reviewer_ : approver_, late).isOk());
  ASSERT_TRUE(step(n, "conclude", clerk_, late).isOk());
  EXPECT_EQ(sup_->dirtyDays().value(), 2u) << "the conclusion day and the red day";
  EXPECT_EQ(sup_->ownTotals(red_day, red_day)->overdue, 0u);
  const CivilDate late_day = CivilDate::fromTimeMs(late);
  Figures at_end = sup_->ownTotals(late_day, late_day).value();
  EXPECT_EQ(at_end.overdue, 1u);
  EXPECT_EQ(at_end.on_time, 0u);
  EXPECT_EQ(sup_->ownTotals(CivilDate{2026, 11, 1}, CivilDate{2026, 12, 31})->overdue, 1u) << "counted once";
}

TEST_F(SupervisionTest, EvaluationsAndComplaintsAreCounted) {
  for (const char* grade : {"satisfied", "satisfied", "basically_satisfied", "unsatisfied"}) {
    std::string n = submit("SI-0001")->number;
    ASSERT_TRUE(cases_->evaluate(n, grade, kMonday0900).isOk());
  }
  std::string n = submit("SI-0001")->number;
  ASSERT_TRUE(cases_->complain(n, "", "rude", kMonday0900).isOk());
  ASSERT_TRUE(cases_->complain("", "税务 taxation", "queue too long", kMonday0900).isOk());
  Figures f = today();
  EXPECT_EQ(f.satisfied, 2u);
  EXPECT_EQ(f.basically_satisfied, 1u);
  EXPECT_EQ(f.unsatisfied, 1u);
  EXPECT_EQ(f.complaints, 2u);
  EXPECT_DOUBLE_EQ(f.satisfactionRate().value(), 0.75);
  auto rows = sup_->ownFigures(CivilDate::fromTimeMs(kMonday0900)).value();
  bool unit_row = false;
  for (const auto& r : rows) unit_row = unit_row || (r.item_code.empty() && r.department == "税务 taxation" && r.figures.complaints == 1);
  EXPECT_TRUE(unit_row) << "a complaint against a unit has its own row without an item";
}

TEST_F(SupervisionTest, PublishSendsEachDirtyDayOnceWithTheNextVersion) {
  ASSERT_TRUE(submit("SI-0001").isOk());
  EXPECT_EQ(sup_->publish(kMonday0900).value(), 1);
  ASSERT_EQ(sent_.size(), 1u);
  EXPECT_EQ(sent_[0].version, 1u);
  EXPECT_EQ(sent_[0].day, "2026-11-23");
  EXPECT_EQ(sent_[0].origin, kDistrict);
  EXPECT_EQ(sup_->publish(kMonday0900 + kMinute).value(), 0) << "nothing changed, keepalive not due";

  ASSERT_TRUE(submit("SI-0001", kMonday0900 + 2 * kMinute).isOk());
  EXPECT_EQ(sup_->publish(kMonday0900 + 3 * kMinute).value(), 1);
  ASSERT_EQ(sent_.size(), 2u);
  EXPECT_EQ(sent_[1].version, 2u);
  EXPECT_EQ(sent_[1].rows.at(0).figures.accepted, 2u) << "cumulative, not a delta";

  // Quiet for the keepalive period: today's snapshot again, one version up.
  EXPECT_EQ(sup_->publish(kMonday0900 + 3 * kMinute + settings_.keepalive_ms).value(), 1);
  EXPECT_EQ(sent_.back().version, 3u);
  outbox_waiting_ = 1;  // the parent is away: no keepalive piles up behind what waits already
  EXPECT_EQ(sup_->publish(kMonday0900 + 3 * kMinute + 3 * settings_.keepalive_ms).value(), 0);
  EXPECT_EQ(summaryOf(kDistrict).accepted, 2u) << "own figures come from the own snapshot";
}

TEST_F(SupervisionTest, OnlyANewerVersionReplacesAndIsRelayed) {
  ASSERT_TRUE(apply(kTownA, snapshot(kTownA, 2, 5)).isOk());
  EXPECT_EQ(summaryOf(kDistrict).accepted, 5u);
  ASSERT_TRUE(apply(kTownA, snapshot(kTownA, 1, 3)).isOk()) << "an older version is applied as a no-op";
  ASSERT_TRUE(apply(kTownA, snapshot(kTownA, 2, 5)).isOk()) << "re-delivery";
  EXPECT_EQ(summaryOf(kDistrict).accepted, 5u) << "neither older nor equal versions count again";
  EXPECT_EQ(sup_->versionOf(kTownA, "2026-11-23").value(), 2u);
  ASSERT_TRUE(apply(kTownA, snapshot(kTownA, 3, 7)).isOk());
  EXPECT_EQ(summaryOf(kDistrict).accepted, 7u);
  ASSERT_EQ(sent_.size(), 2u) << "only the two newer versions go on to the city";
  EXPECT_EQ(sent_[0].version, 2u);
  EXPECT_EQ(sent_[1].version, 3u);
}

TEST_F(SupervisionTest, ASnapshotFromOutsideTheRelayingChildIsRefusedForGood) {
  Status st = apply(kTownB, snapshot(kVillageA1, 1, 1));
  EXPECT_EQ(st.code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(summaryOf(kDistrict).accepted, 0u);
}

TEST_F(SupervisionTest, DrillDownSumsEachChildsSubtreeDownToAVillage) {
  ASSERT_TRUE(submit("SI-0001").isOk());
  ASSERT_TRUE(sup_->publish(kMonday0900).isOk());
  ASSERT_TRUE(apply(kTownA, snapshot(kTownA, 1, 2)).isOk());
  ASSERT_TRUE(apply(kTownA, snapshot(kVillageA1, 1, 4)).isOk());
  ASSERT_TRUE(apply(kTownB, snapshot(kTownB, 1, 8)).isOk());
  ASSERT_TRUE(apply(kTownB, snapshot(kTownB, 1, 16, "2026-10-01")).isOk());  // outside the month asked

  auto s = sup_->summary(DivisionCode::parse(kDistrict).value(), CivilDate{2026, 11, 1}, CivilDate{2026, 11, 30},
                         kMonday0900).value();
  EXPECT_EQ(s.totals.accepted, 1u + 2 + 4 + 8);
  ASSERT_EQ(s.children.size(), 2u);
  EXPECT_EQ(s.children[0].division, kTownA);
  EXPECT_EQ(s.children[0].totals.accepted, 6u);
  EXPECT_EQ(s.children[0].name, "name of 440604001000");
  EXPECT_EQ(s.children[1].totals.accepted, 8u);
  EXPECT_EQ(summaryOf(kTownA).accepted, 6u);
  EXPECT_EQ(summaryOf(kVillageA1).accepted, 4u);
  ASSERT_EQ(s.daily.size(), 1u);
  EXPECT_EQ(s.daily[0].figures.accepted, 15u);
  EXPECT_EQ(s.by_item.size(), 2u);  // SI-0001 and CG-0101
  auto outside = sup_->summary(DivisionCode::parse("440605000000").value(), CivilDate{2026, 11, 1},
                               CivilDate{2026, 11, 30}, kMonday0900);
  EXPECT_EQ(outside.status().code(), ErrorCode::kNotFound);
}

TEST_F(SupervisionTest, DescendantsNotHeardFromLatelyAreStale) {
  children_ = {ChildStatusMsg{kTownA, "祖庙街道", 0, kMonday0900, 0, 0},
               ChildStatusMsg{kTownB, "石湾镇街道", 0, kMonday0900 - 2 * settings_.stale_after_ms, 0, 0}};
  ASSERT_TRUE(apply(kTownA, snapshot(kVillageA1, 1, 1), kMonday0900 - 2 * settings_.stale_after_ms).isOk());
  auto s = sup_->summary(DivisionCode::parse(kDistrict).value(), CivilDate{2026, 11, 1}, CivilDate{2026, 11, 30},
                         kMonday0900 + kMinute).value();
  ASSERT_EQ(s.children.size(), 2u);
  EXPECT_FALSE(s.children[0].stale);
  EXPECT_EQ(s.children[0].name, "祖庙街道");
  EXPECT_TRUE(s.children[1].stale) << "town B's last batch is an hour old";
  ASSERT_EQ(s.stale.size(), 2u);
  EXPECT_EQ(s.stale[0].division, kVillageA1) << "a village is judged by its own snapshots, not its town's";
  EXPECT_EQ(s.stale[1].division, kTownB);
}

TEST_F(SupervisionTest, WarningsListOpenLitCasesOwnAndOfTheSubtree) {
  std::string open_case = submit("CG-0101")->number;
  std::string closed = concludeAt(kMonday0900, kMonday0900);
  ASSERT_EQ(cases_->scanLights(kMonday0900 + 8 * kDay).value(), 2);  // only the open case lights up
  // The node's table of relayed events (node.cpp), with the columns warnings read.
  ASSERT_TRUE(db_->exec("CREATE TABLE subtree_case_events (origin TEXT, case_number TEXT, step_index INTEGER,"
                        " step TEXT, item_code TEXT, department TEXT, state TEXT, at_ms INTEGER, deadline_ms INTEGER)").isOk());
  ASSERT_TRUE(db_->exec("INSERT INTO subtree_case_events VALUES"
                        " ('440604001001', 'V-1', 0, 'accept', 'SC-0001', 'dep', 'accepted', 1, 99),"
                        " ('440604001001', 'V-1', 1, 'yellow', 'SC-0001', 'dep', 'accepted', 2, 99),"
                        " ('440604002000', 'T-1', 0, 'accept', 'SC-0001', 'dep', 'accepted', 1, 50),"
                        " ('440604002000', 'T-1', 1, 'red', 'SC-0001', 'dep', 'accepted', 3, 50),"
                        " ('440604002000', 'T-1', 2, 'conclude', 'SC-0001', 'dep', 'concluded', 4, 50)").isOk());
  auto all = sup_->warnings(DivisionCode::parse(kDistrict).value()).value();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].case_number, open_case);
  EXPECT_EQ(all[0].light, "red");
  EXPECT_EQ(all[1].case_number, "V-1");
  EXPECT_EQ(all[1].light, "yellow");
  EXPECT_EQ(all[1].since_ms, 2);
  auto town_a = sup_->warnings(DivisionCode::parse(kTownA).value()).value();
  ASSERT_EQ(town_a.size(), 1u);
  EXPECT_EQ(town_a[0].origin, kVillageA1);
  auto s = sup_->summary(DivisionCode::parse(kDistrict).value(), CivilDate{2026, 11, 1}, CivilDate{2026, 12, 31},
                         kMonday0900).value();
  ASSERT_EQ(s.children.size(), 1u);
  EXPECT_EQ(s.children[0].open_yellow, 1u);
  (void)closed;
}

TEST_F(SupervisionTest, ScoreFormulaWeighsRatesAndPenalisesComplaintsAndRedLights) {
  Figures f;
  f.concluded = 10;
  f.on_time = 10;
  f.early = 5;
  f.satisfied = 3;
  f.unsatisfied = 1;
  EXPECT_DOUBLE_EQ(scoreOf(f), 40.0 + 15.0 + 22.5);
  f.complaints = 2;
  f.red = 1;
  EXPECT_DOUBLE_EQ(scoreOf(f), 77.5 - 4 - 5);
  f.red = 30;
  EXPECT_DOUBLE_EQ(scoreOf(f), 0.0) << "clamped";
  EXPECT_DOUBLE_EQ(scoreOf(Figures{}), 100.0) << "nothing to rate counts in full";
}

TEST_F(SupervisionTest, MonthlyRankingCoversChildDivisionsAndDepartments) {
  SupervisionSnapshotInfo good = snapshot(kTownA, 1, 4);
  SupervisionSnapshotInfo bad = snapshot(kTownB, 1, 4);
  bad.rows[0].figures.on_time = 2;
  bad.rows[0].figures.overdue = 2;
  bad.rows[0].figures.red = 2;
  bad.rows[0].department = "市场监管 market regulation";
  ASSERT_TRUE(apply(kTownA, good).isOk());
  ASSERT_TRUE(apply(kTownB, bad).isOk());
  auto scores = sup_->scores(DivisionCode::parse(kDistrict).value(), 2026, 11, kMonday0900).value();
  EXPECT_EQ(scores.month, "2026-11");
  EXPECT_EQ(scores.formula, kScoreFormula);
  ASSERT_EQ(scores.ranking.size(), 4u);
  // 70 each for town A and its department, 40 for town B and its: ties list departments first.
  EXPECT_EQ(scores.ranking[0].unit, "城管 city management");
  EXPECT_DOUBLE_EQ(scores.ranking[0].score, 70.0);
  EXPECT_EQ(scores.ranking[1].unit, kTownA);
  EXPECT_EQ(scores.ranking[1].name, "name of 440604001000");
  EXPECT_EQ(scores.ranking[3].unit, kTownB);
  EXPECT_DOUBLE_EQ(scores.ranking[3].score, 40.0);
  EXPECT_EQ(sup_->scores(DivisionCode::parse(kDistrict).value(), 2026, 10, kMonday0900)->ranking.size(), 0u);
}

}  // namespace
}  // namespace tongban
