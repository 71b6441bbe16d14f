// A service hall on real SQLite files for tests: the city's sample catalogue (data/catalog.json)
// published and received, the 2026 calendar, a MaterialStore and a CaseService for a division
// (city, district 440604 or a town below it), and staff with each role. Shared by the cases and
// supervision suites.
#pragma once

#include <fstream>
#include <map>
#include <optional>
#include <sstream>

#include <gtest/gtest.h>

#include "federation/store/outbox.h"
#include "federation/trust/certificate.h"
#include "node/cases/cases.h"
#include "tests/support/temp_dir.h"

namespace tongban::hall_testing {

constexpr TimeMs kMonday0900 = 1795395600000LL;  // 2026-11-23 09:00 CST, a Monday
constexpr TimeMs kDay = 24LL * 3600 * 1000;
inline constexpr const char* kPersonId = "11010519491231002X";      // published GB 11643 sample

inline std::string readFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline Principal staff(const std::string& name, std::vector<Role> roles) { return Principal{name, name, std::move(roles)}; }

class HallFixture : public ::testing::Test {
 protected:
  void SetUp() override { open("440604000000"); }

  // A node of `code` with the sample catalogue published by the city and received here.
  void open(const std::string& code) {
    auto city_code = DivisionCode::parse("440600000000").value();
    std::array<uint8_t, 32> seed{};
    seed.fill(1);
    city_ = createRootIdentity(city_code, "佛山市", KeyPair::fromSeed(seed), 0, kMonday0900 + 400 * kDay).value();
    self_ = DivisionCode::parse(code).value();
    identity_ = city_;
    if (self_ != city_code) {
      seed.fill(2);
      auto district = issueChildIdentity(city_, DivisionCode::parse("440604000000").value(), "禅城区",
                                         KeyPair::fromSeed(seed), 2, 0, kMonday0900 + 400 * kDay).value();
      identity_ = district;
      if (self_.level() == Level::kTown) {
        seed.fill(3);
        identity_ = issueChildIdentity(district, self_, "祖庙街道", KeyPair::fromSeed(seed), 3, 0, kMonday0900 + 400 * kDay).value();
      }
    }
    registerCatalogueKind(kinds_);
    verifier_.emplace(Verifier::create(city_.root_certificate, &kinds_).value());
    db_ = Database::open({dir_.file(code + ".db"), Synchronous::kOff}).value();
    outbox_.emplace(Outbox::open(*db_).value());

    // The city publishes; this node receives the sealed document (as it would from its parent).
    city_db_ = Database::open({dir_.file("city-" + code + ".db"), Synchronous::kOff}).value();
    auto city_store = CatalogueStore::open(*city_db_, *verifier_, city_code).value();
    auto parsed = parseCatalogueJson(readFile(std::string(TONGBAN_SOURCE_DIR) + "/data/catalog.json"), 0, kMonday0900);
    ASSERT_TRUE(parsed.isOk()) << parsed.status().toString();
    ASSERT_EQ(city_store.publish(city_, *parsed, kMonday0900).value(), 1u);
    catalogue_.emplace(CatalogueStore::open(*db_, *verifier_, self_).value());
    ASSERT_TRUE(catalogue_->offer(city_store.currentSealed(), kMonday0900).value());

    calendar_ = WorkingCalendar::loadFile(std::string(TONGBAN_SOURCE_DIR) + "/data/calendar-2026.json").value();
    auto enqueue = [this](MessageKind kind, const Bytes& payload) -> Result<uint64_t> {
      auto seq = outbox_->enqueue(kind, "440600000000", payload, kMonday0900);
      if (seq && kind == kCaseEventKind) events_.push_back(decodeCaseEvent(payload).value());
      return seq;
    };
    materials_.emplace(MaterialStore::open(*db_, dir_.file("materials-" + code), identity_, enqueue).value());
    cases_.emplace(CaseService::open(*db_, self_, *catalogue_, calendar_, *materials_, enqueue).value());
  }

  std::string upload(const std::string& kind, const std::string& content, const std::string& holder = kPersonId) {
    auto r = materials_->put(toBytes(content), kind, holder, "image/jpeg", "clerk1", kMonday0900);
    EXPECT_TRUE(r.isOk()) << r.status().toString();
    return r.isOk() ? r->hash : "";
  }

  IntakeRequest request(const std::string& item, bool with_materials = true) {
    IntakeRequest r{item, kPersonId, "张三", "13800000000", {}, "", {}};
    if (with_materials) {
      for (const auto& kind : catalogue_->current()->find(item)->materials) {
        r.materials.push_back({kind, upload(kind, "scan of " + kind)});
      }
    }
    return r;
  }

  Result<CaseRecord> submit(const std::string& item, TimeMs at = kMonday0900) {
    return cases_->submit(request(item), clerk_, at);
  }

  Result<CaseRecord> step(const std::string& number, const std::string& name, const Principal& who, TimeMs at = kMonday0900,
                          const std::string& department = "", const std::string& decision = "") {
    return cases_->step(number, StepRequest{name, "", department, decision}, who, at);
  }

  // Drives a new CG-0101 (shop sign, decided at district) case into `state`.
  std::string caseIn(CaseState state) {
    auto made = state == CaseState::kRefused ? cases_->submit(request("CG-0101", false), clerk_, kMonday0900)
                                             : submit("CG-0101");
    EXPECT_TRUE(made.isOk()) << made.status().toString();
    if (!made) return "";
    std::string n = made->number;
    if (state == CaseState::kRefused) return n;
    auto go = [&](const char* s, const Principal& p) { EXPECT_TRUE(step(n, s, p).isOk()) << s; };
    switch (state) {
      case CaseState::kAccepted: break;
      case CaseState::kSupplement: go("supplement", clerk_); break;
      case CaseState::kUndertaken: go("undertake", undertaker_); break;
      case CaseState::kReviewed: go("undertake", undertaker_); go("review", reviewer_); break;
      case CaseState::kApproved: go("undertake", undertaker_); go("review", reviewer_); go("approve", approver_); break;
      case CaseState::kDenied: go("undertake", undertaker_); go("review", reviewer_); go("deny", approver_); break;
      case CaseState::kConcluded:
        go("undertake", undertaker_); go("review", reviewer_); go("approve", approver_); go("conclude", clerk_);
        break;
      default: break;
    }
    EXPECT_EQ(cases_->get(n)->state, state);
    return n;
  }

  tongban::testing::TempDir dir_;
  Identity city_, identity_;
  DivisionCode self_;
  KindRegistry kinds_;
  std::optional<Verifier> verifier_;
  std::unique_ptr<Database> db_, city_db_;
  std::optional<Outbox> outbox_;
  std::optional<CatalogueStore> catalogue_;
  WorkingCalendar calendar_;
  std::optional<MaterialStore> materials_;
  std::optional<CaseService> cases_;
  std::vector<CaseEventInfo> events_;
  Principal clerk_ = staff("clerk1", {Role::kClerk});
  Principal undertaker_ = staff("under1", {Role::kUndertaker});
  Principal reviewer_ = staff("review1", {Role::kReviewer});
  Principal approver_ = staff("approve1", {Role::kApprover});
};


}  // namespace tongban::hall_testing
