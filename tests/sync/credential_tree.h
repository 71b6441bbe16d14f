// The fixture of the credential suites (credentials_test.cpp, credential_conflicts_test.cpp):
// the SimTree chain (city → district → town → two villages) with the real catalogue and
// calendar, and helpers that walk a case to its conclusion and make documents a node would
// refuse.
#pragma once

#include <gtest/gtest.h>

#include "federation/trust/certificate.h"
#include "node/calendar/calendar.h"
#include "node/credentials/credentials.h"
#include "tests/support/sim_tree.h"

namespace tongban::testing {

constexpr const char* kOtherVillage = kSibling;
constexpr const char* kCompany = "91440604MA4UH8XQ3D";  // unified social credit code
constexpr const char* kPerson = "11010519491231002X";
constexpr DurationMs kDay = 24LL * 3600 * 1000;

class CredentialTest : public testing::SimTree {
 protected:
  void configure(NodeOptions& o) override {
    o.calendar = WorkingCalendar::loadFile(std::string(TONGBAN_SOURCE_DIR) + "/data/calendar-2026.json").value();
    if (o.identity.division.level() == Level::kCity) o.catalogue_file = std::string(TONGBAN_SOURCE_DIR) + "/data/catalog.json";
    o.catalogue_poll_ms = 2000;
    o.feed.poll_interval_ms = 2000;
  }

  void startAll() {
    for (const char* code : {kCity, kDistrict, kTown, kVillage, kOtherVillage}) start(code);
    runFor(15'000);
    ASSERT_NE(at(kOtherVillage).catalogue().current(), nullptr);
  }

  Node& at(const char* code) { return *nodes_[code]; }

  // An application taken in at `hall`, with every material, walked to its conclusion where it
  // is decided (the hall itself or, forwarded, its ancestor `decider`). Returns the case number.
  std::string concludeCase(const char* hall, const char* decider, const std::string& item_code, const std::string& holder,
                           std::vector<std::pair<std::string, std::string>> facts = {}) {
    Node& node = at(hall);
    const CatalogueItem* item = node.catalogue().current()->find(item_code);
    EXPECT_NE(item, nullptr);
    IntakeRequest request{item_code, holder, "佛山示例有限公司", "13800000000", {}, "", std::move(facts)};
    for (const auto& kind : item->materials) {
      auto record = node.materials().put(toBytes("scan of " + kind), kind, holder, "image/jpeg", "clerk", world_.now());
      EXPECT_TRUE(record.isOk()) << record.status().toString();
      request.materials.push_back({kind, record->hash});
    }
    auto c = node.cases().submit(request, staff_, world_.now());
    EXPECT_TRUE(c.isOk()) << c.status().toString();
    runFor(10'000);
    if (c->state == CaseState::kConcluded) return c->number;  // an immediate item, concluded on the spot
    for (const char* step : {"undertake", "review", "approve", "conclude"}) {
      auto moved = at(decider).cases().step(c->number, StepRequest{step, "", "", ""}, staff_, world_.now());
      EXPECT_TRUE(moved.isOk()) << step << ": " << moved.status().toString();
    }
    runFor(10'000);
    return c->number;
  }

  Bytes sealedOf(const char* code, const std::string& number) {
    auto sealed = at(code).credentials().sealed(number);
    EXPECT_TRUE(sealed.isOk() && sealed->has_value()) << number << " not held at " << code;
    return sealed.isOk() && *sealed ? **sealed : Bytes{};
  }

  // A business licence issued at the district; its sealed form.
  std::pair<std::string, Bytes> businessLicence() {
    const std::string number = concludeCase(kDistrict, kDistrict, "SC-0001", kCompany, {{"address", "禅城区岭南大道1号"}});
    const std::string credential = at(kDistrict).cases().get(number)->credential;
    EXPECT_FALSE(credential.empty()) << "concluding an approved SC-0001 case issues a business licence";
    return {credential, sealedOf(kDistrict, credential)};
  }

  // A social-insurance certificate (SI-0001: immediate, decided at the village, valid 90 days in
  // data/catalog.json), issued on the spot at the other village.
  std::pair<std::string, Bytes> socialInsuranceCertificate() {
    const std::string number = concludeCase(kOtherVillage, kOtherVillage, "SI-0001", kPerson);
    const std::string credential = at(kOtherVillage).cases().get(number)->credential;
    EXPECT_FALSE(credential.empty()) << "concluding SI-0001 issues its certificate";
    return {credential, sealedOf(kOtherVillage, credential)};
  }

  CredentialInfo held(const char* code, const std::string& number) {
    auto c = at(code).credentials().listByNumber(number);
    EXPECT_TRUE(c.isOk() && c->has_value()) << number << " not held at " << code;
    return c.isOk() && *c ? **c : CredentialInfo{};
  }

  CredentialInfo draft(const std::string& issuer, const std::string& number, TimeMs issued_at) {
    CredentialInfo c;
    c.number = number;
    c.kind = "business_license";
    c.holder_id = kCompany;
    c.holder_name = "佛山示例有限公司";
    c.issuer = issuer;
    c.issuer_name = issuer;
    c.item_code = "SC-0001";
    c.item_name = "企业设立登记";
    c.case_number = issuer + "-00000001";
    c.origin = issuer;
    c.valid_from_ms = issued_at;
    c.valid_until_ms = issued_at + 365 * kDay;
    c.issued_at_ms = issued_at;
    return c;
  }

  Principal staff_{"staff", "every role", {Role::kClerk, Role::kUndertaker, Role::kReviewer, Role::kApprover}};
};

}  // namespace tongban::testing
