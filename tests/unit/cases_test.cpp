// The service hall's case rules on a real SQLite file: intake and its one-time notice, every
// legal and illegal step, supplement pauses, joint reviews, lights and evaluations.
#include "node/cases/cases.h"

#include <fstream>
#include <map>
#include <sstream>

#include <gtest/gtest.h>

#include "federation/store/outbox.h"
#include "federation/trust/certificate.h"
#include "tests/support/hall_fixture.h"

namespace tongban {
namespace {

using namespace hall_testing;

class CaseTest : public HallFixture {};

TEST_F(CaseTest, ImmediateItemIsAcceptedAndConcludedOnTheSpot) {
  auto c = submit("SI-0001");
  ASSERT_TRUE(c.isOk()) << c.status().toString();
  EXPECT_EQ(c->state, CaseState::kConcluded);
  ASSERT_EQ(c->steps.size(), 2u);
  EXPECT_EQ(c->steps[0].step, "accept");
  EXPECT_EQ(c->steps[1].step, "conclude");
  EXPECT_EQ(c->steps[1].actor, "clerk1");
  EXPECT_EQ(c->number.rfind("440604000000-", 0), 0u);
  EXPECT_EQ(events_.size(), 2u);
  EXPECT_EQ(events_.back().state, "concluded");
}

TEST_F(CaseTest, MissingMaterialsAreAllListedInOneNotice) {
  auto r = request("CG-0101", false);
  r.materials.push_back({"sign_design", upload("sign_design", "design")});
  r.materials.push_back({"site_photo", std::string(64, 'a')});  // never uploaded
  auto c = cases_->submit(r, clerk_, kMonday0900);
  ASSERT_TRUE(c.isOk()) << c.status().toString();
  EXPECT_EQ(c->state, CaseState::kRefused);
  EXPECT_NE(c->refusal_notice.find("business_license"), std::string::npos) << c->refusal_notice;
  EXPECT_NE(c->refusal_notice.find("lease_contract"), std::string::npos) << c->refusal_notice;
  EXPECT_NE(c->refusal_notice.find("never uploaded"), std::string::npos) << c->refusal_notice;
  EXPECT_EQ(c->refusal_notice.find("sign_design"), std::string::npos) << "the valid material is not listed";
  EXPECT_EQ(events_.back().step, "refuse");
}

TEST_F(CaseTest, AnItemThisLevelMayNotAcceptSaysWhereToApply) {
  open("440604001000");  // a town
  auto c = submit("CG-0133");  // road excavation: district only
  ASSERT_FALSE(c.isOk());
  EXPECT_EQ(c.status().code(), ErrorCode::kFailedPrecondition);
  EXPECT_NE(c.status().message().find("accepted at district"), std::string::npos) << c.status().message();
}

TEST_F(CaseTest, MalformedApplicationsAreRefusedWithoutRecordingACase) {
  auto bad_id = request("SI-0001");
  bad_id.applicant_id = "110105194912310021";
  EXPECT_EQ(cases_->submit(bad_id, clerk_, kMonday0900).status().code(), ErrorCode::kInvalidArgument);
  auto no_contact = request("SI-0001");
  no_contact.contact = "";
  EXPECT_EQ(cases_->submit(no_contact, clerk_, kMonday0900).status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(cases_->submit(request("XX-9999", false), clerk_, kMonday0900).status().code(), ErrorCode::kNotFound);
  EXPECT_EQ(cases_->submit(request("SI-0001"), approver_, kMonday0900).status().code(), ErrorCode::kPermissionDenied);
  EXPECT_TRUE(cases_->list("", "", 100, kMonday0900)->empty());
}

TEST_F(CaseTest, CommittedCaseWalksEveryStepWithItsResponsiblePerson) {
  auto c = submit("CG-0101");
  ASSERT_TRUE(c.isOk());
  EXPECT_EQ(c->state, CaseState::kAccepted);
  // 5 working days from Monday 2026-11-23: due at the end of Monday 2026-11-30.
  EXPECT_EQ(CivilDate::fromTimeMs(c->deadline_ms - 1).toString(), "2026-11-30");
  ASSERT_TRUE(step(c->number, "undertake", undertaker_).isOk());
  ASSERT_TRUE(step(c->number, "review", reviewer_).isOk());
  ASSERT_TRUE(step(c->number, "approve", approver_).isOk());
  auto done = step(c->number, "conclude", clerk_, kMonday0900 + 2 * kDay);
  ASSERT_TRUE(done.isOk()) << done.status().toString();
  EXPECT_EQ(done->state, CaseState::kConcluded);
  std::vector<std::pair<std::string, std::string>> who;
  for (const auto& s : done->steps) who.emplace_back(s.step, s.actor);
  EXPECT_EQ(who, (std::vector<std::pair<std::string, std::string>>{
                     {"accept", "clerk1"}, {"undertake", "under1"}, {"review", "review1"}, {"approve", "approve1"},
                     {"conclude", "clerk1"}}));
  EXPECT_EQ(done->material_hashes.size(), 4u);
  EXPECT_EQ(events_.size(), 5u);
}

TEST_F(CaseTest, EveryStepIsLegalOnlyFromItsStates) {
  const std::map<std::string, std::set<CaseState>> legal = {
      {"undertake", {CaseState::kAccepted}},
      {"review", {CaseState::kUndertaken}},
      {"approve", {CaseState::kReviewed}},
      {"deny", {CaseState::kReviewed}},
      {"conclude", {CaseState::kApproved, CaseState::kDenied}},
      {"supplement", {CaseState::kAccepted, CaseState::kUndertaken}},
      {"resume", {CaseState::kSupplement}},
  };
  // Someone holding every role, so only the state decides.
  Principal all = staff("all", {Role::kClerk, Role::kUndertaker, Role::kReviewer, Role::kApprover});
  for (CaseState from : {CaseState::kRefused, CaseState::kAccepted, CaseState::kUndertaken, CaseState::kReviewed,
                         CaseState::kApproved, CaseState::kDenied, CaseState::kConcluded, CaseState::kSupplement}) {
    for (const auto& [name, states] : legal) {
      std::string n = caseIn(from);
      auto r = step(n, name, all);
      if (states.count(from)) {
        EXPECT_TRUE(r.isOk()) << name << " from " << caseStateName(from) << ": " << r.status().toString();
      } else {
        ASSERT_FALSE(r.isOk()) << name << " from " << caseStateName(from) << " was allowed";
        EXPECT_EQ(r.status().code(), ErrorCode::kFailedPrecondition);
        EXPECT_NE(r.status().message().find(std::string("is ") + caseStateName(from)), std::string::npos)
            << r.status().message();
        EXPECT_EQ(cases_->get(n)->state, from) << "a refused step changed nothing";
      }
    }
  }
  EXPECT_EQ(step(caseIn(CaseState::kAccepted), "teleport", all).status().code(), ErrorCode::kInvalidArgument);
}

TEST_F(CaseTest, AClerkCannotApproveAndTheResponsiblePersonComesFromTheSession) {
  std::string n = caseIn(CaseState::kReviewed);
  auto r = step(n, "approve", clerk_);
  ASSERT_FALSE(r.isOk());
  EXPECT_EQ(r.status().code(), ErrorCode::kPermissionDenied);
  EXPECT_NE(r.status().message().find("approver"), std::string::npos) << r.status().message();
  EXPECT_EQ(cases_->get(n)->steps.back().actor, "review1");
}

TEST_F(CaseTest, SupplementPausesTheClockAndResumeMovesTheDeadlineByThePausedWorkingDays) {
  auto c = submit("CG-0101");  // due 2026-11-30
  ASSERT_TRUE(step(c->number, "supplement", clerk_, kMonday0900 + 1 * kDay).isOk());        // Tue 11-24
  EXPECT_EQ(cases_->lightOf(*cases_->get(c->number), kMonday0900 + 30 * kDay), Light::kGreen) << "paused, never red";
  auto resumed = step(c->number, "resume", clerk_, kMonday0900 + 3 * kDay);                 // Thu 11-26
  ASSERT_TRUE(resumed.isOk()) << resumed.status().toString();
  EXPECT_EQ(resumed->state, CaseState::kAccepted);
  EXPECT_EQ(CivilDate::fromTimeMs(resumed->deadline_ms - 1).toString(), "2026-12-02");  // +2 working days
  EXPECT_EQ(resumed->steps.back().detail, "paused 2 working days");
}

TEST_F(CaseTest, JointItemNeedsEveryDepartmentAndOneDenialDenies) {
  auto c = submit("WH-0007");  // culture, health, fire
  ASSERT_TRUE(c.isOk());
  ASSERT_TRUE(step(c->number, "undertake", undertaker_).isOk());
  const auto& deps = catalogue_->current()->find("WH-0007")->joint_departments;
  ASSERT_EQ(deps.size(), 3u);
  EXPECT_EQ(step(c->number, "review", reviewer_, kMonday0900, deps[0], "approve")->state, CaseState::kUndertaken);
  EXPECT_EQ(step(c->number, "review", reviewer_, kMonday0900, deps[0], "approve").status().code(),
            ErrorCode::kFailedPrecondition) << "one review per department";
  EXPECT_EQ(step(c->number, "review", reviewer_, kMonday0900, "税务 tax", "approve").status().code(),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(step(c->number, "review", reviewer_, kMonday0900, deps[1], "approve")->state, CaseState::kUndertaken);
  EXPECT_EQ(step(c->number, "review", reviewer_, kMonday0900, deps[2], "approve")->state, CaseState::kReviewed);
  EXPECT_EQ(cases_->get(c->number)->reviews.size(), 3u);

  auto d = submit("WH-0007");
  ASSERT_TRUE(step(d->number, "undertake", undertaker_).isOk());
  EXPECT_EQ(step(d->number, "review", reviewer_, kMonday0900, deps[2], "deny")->state, CaseState::kDenied);
}

TEST_F(CaseTest, YellowAndRedAreEachRecordedOnceAndSentUpward) {
  auto c = submit("CG-0101");  // due end of Mon 2026-11-30
  EXPECT_EQ(cases_->scanLights(kMonday0900 + 1 * kDay).value(), 0);  // Tue: 4 working days left
  const TimeMs friday = kMonday0900 + 4 * kDay;                        // 1 working day left
  EXPECT_EQ(cases_->lightOf(*cases_->get(c->number), friday), Light::kYellow);
  EXPECT_EQ(cases_->scanLights(friday).value(), 1);
  EXPECT_EQ(cases_->scanLights(friday + 3600 * 1000).value(), 0) << "recorded once";
  const TimeMs overdue = kMonday0900 + 8 * kDay;                       // Tue 12-01
  EXPECT_EQ(cases_->warnings(overdue)->size(), 1u);
  EXPECT_EQ(cases_->scanLights(overdue).value(), 1);
  EXPECT_EQ(cases_->scanLights(overdue + kDay).value(), 0);
  std::vector<std::string> lights;
  for (const auto& e : events_) {
    if (e.step == "yellow" || e.step == "red") lights.push_back(e.step);
  }
  EXPECT_EQ(lights, (std::vector<std::string>{"yellow", "red"}));
  EXPECT_EQ(cases_->list("", "red", 10, overdue)->size(), 1u);
}

TEST_F(CaseTest, ACaseFirstSeenOverdueRecordsYellowThenRed) {
  auto c = submit("CG-0101");
  EXPECT_EQ(cases_->scanLights(kMonday0900 + 20 * kDay).value(), 2);
  auto steps = cases_->get(c->number)->steps;
  ASSERT_GE(steps.size(), 3u);
  EXPECT_EQ(steps[steps.size() - 2].step, "yellow");
  EXPECT_EQ(steps.back().step, "red");
}

TEST_F(CaseTest, EvaluationOnlyOnceAndOnlyForConcludedCases) {
  std::string open_case = caseIn(CaseState::kAccepted);
  EXPECT_EQ(cases_->evaluate(open_case, "satisfied", kMonday0900).status().code(), ErrorCode::kFailedPrecondition);
  std::string done = caseIn(CaseState::kConcluded);
  EXPECT_EQ(cases_->evaluate(done, "delighted", kMonday0900).status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(cases_->evaluate(done, "basically_satisfied", kMonday0900)->evaluation, "basically_satisfied");
  EXPECT_EQ(cases_->evaluate(done, "unsatisfied", kMonday0900).status().code(), ErrorCode::kAlreadyExists);
  EXPECT_EQ(events_.back().step, "evaluate");
  EXPECT_TRUE(cases_->complain(done, "", "the window was closed at 15:00", kMonday0900).isOk());
  EXPECT_EQ(events_.back().step, "complain");
}

TEST_F(CaseTest, AHoldersMaterialsAreReusedWithoutUploadingAgain) {
  upload("id_card", "front and back of the ID card");
  IntakeRequest bare{"SI-0001", kPersonId, "张三", "13800000000", {}, "", {}};
  auto first = cases_->submit(bare, clerk_, kMonday0900);
  auto second = cases_->submit(bare, clerk_, kMonday0900 + 1000);
  ASSERT_TRUE(first.isOk());
  ASSERT_TRUE(second.isOk());
  EXPECT_EQ(first->state, CaseState::kConcluded);
  EXPECT_EQ(second->state, CaseState::kConcluded);
  EXPECT_EQ(first->material_hashes, second->material_hashes);
  EXPECT_NE(first->number, second->number);
  IntakeRequest stranger = bare;
  stranger.applicant_id = "440604199001010579";
  EXPECT_EQ(cases_->submit(stranger, clerk_, kMonday0900)->state, CaseState::kRefused) << "no reuse across holders";
}

// One scan may show two documents: stored once per kind, each kind its own record, offered and
// kept as each kind (the newer record of the file is not mistaken for the other kind).
TEST_F(CaseTest, OneFileMayBeOfferedAsEachKindItIsStoredAs) {
  const Bytes both = toBytes("one scan: business licence and lease contract");
  auto as_licence = materials_->put(both, "business_license", kPersonId, "image/jpeg", "clerk1", kMonday0900);
  auto as_lease = materials_->put(both, "lease_contract", kPersonId, "image/jpeg", "clerk1", kMonday0900 + 1000);
  ASSERT_TRUE(as_licence.isOk() && as_lease.isOk());
  auto again = materials_->put(both, "business_license", kPersonId, "image/jpeg", "clerk1", kMonday0900 + 2000);
  ASSERT_TRUE(again.isOk());
  EXPECT_EQ(again->verified_at_ms, as_licence->verified_at_ms) << "stored as that kind before: the same record";
  EXPECT_EQ(again->seal, as_licence->seal);

  IntakeRequest r = request("CG-0101");  // business_license, sign_design, site_photo, lease_contract
  for (auto& offer : r.materials) {
    if (offer.kind == "business_license" || offer.kind == "lease_contract") offer.hash = as_licence->hash;
  }
  auto c = cases_->submit(r, clerk_, kMonday0900 + 3000);
  ASSERT_TRUE(c.isOk()) << c.status().toString();
  EXPECT_EQ(c->state, CaseState::kAccepted) << c->refusal_notice;
  ASSERT_EQ(c->materials.size(), 4u);
  EXPECT_EQ(c->materials.front(), std::make_pair(std::string("business_license"), as_licence->hash));
  EXPECT_EQ(c->materials.back().first, "site_photo");
  EXPECT_EQ(cases_->get(c->number)->materials, c->materials) << "as stored: by kind";
}

TEST_F(CaseTest, ATownDoesNotDecideADistrictItem) {
  open("440604001000");
  auto c = submit("CG-0101");
  ASSERT_TRUE(c.isOk()) << c.status().toString();
  auto r = step(c->number, "undertake", undertaker_);
  EXPECT_EQ(r.status().code(), ErrorCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("decided at district"), std::string::npos) << r.status().message();
}

}  // namespace
}  // namespace tongban
