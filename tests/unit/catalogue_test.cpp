// The catalogue's authoring format and its sealed encoding, for the validity period an item
// gives the credential it issues ("validity_days"): read, checked with errors that name the
// item, carried through the Cap'n Proto encoding, and absent in older catalogues. And the
// authority history every published version carries: who decided an item in which version.
#include "node/catalogue/catalogue.h"

#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "federation/trust/certificate.h"
#include "federation/util/capnp_io.h"
#include "schema/node.capnp.h"
#include "tests/support/store_helpers.h"

namespace tongban {
namespace {

// A one-item catalogue; `extra` is spliced into the item ("" for none).
std::string catalogueWith(const std::string& extra, const std::string& issues = R"("issues": "shop_sign_permit",)") {
  return R"({"material_kinds": {"id_card": "居民身份证"}, "items": [
    {"code": "CG-0101", "name": "户外广告(店招店牌)设置审批", "department": "城管", "kind": "committed",
     "decide_level": "district", "accept_levels": ["town", "district"], "legal_days": 20, "committed_days": 5, )" +
         issues + extra + R"( "materials": ["id_card"]}]})";
}

Result<Catalogue> parse(const std::string& json) { return parseCatalogueJson(json, 1, 0); }

// The error parsing `extra` gives; the test fails if it parses.
Status refusal(const std::string& extra, const std::string& issues = R"("issues": "shop_sign_permit",)") {
  auto parsed = parse(catalogueWith(extra, issues));
  EXPECT_FALSE(parsed.isOk()) << extra << " was accepted";
  return parsed.isOk() ? Status::ok() : parsed.status();
}

void expectNamesItemAndField(const Status& s) {
  EXPECT_EQ(s.code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(s.message().find("CG-0101"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("validity_days"), std::string::npos) << s.message();
}

TEST(CatalogueValidityTest, ValidityDaysIsReadAsDaysAndZeroMeansLongTerm) {
  auto ninety = parse(catalogueWith(R"("validity_days": 90,)"));
  ASSERT_TRUE(ninety.isOk()) << ninety.status().toString();
  EXPECT_EQ(ninety->items[0].validity_days, std::optional<int>(90));
  auto long_term = parse(catalogueWith(R"("validity_days": 0,)"));
  ASSERT_TRUE(long_term.isOk()) << long_term.status().toString();
  EXPECT_EQ(long_term->items[0].validity_days, std::optional<int>(0));
  auto century = parse(catalogueWith(R"("validity_days": 36525,)"));
  EXPECT_TRUE(century.isOk()) << "100 years is the bound, and allowed";
}

TEST(CatalogueValidityTest, AnItemWithoutValidityDaysLeavesItToTheIssuersDefault) {
  auto parsed = parse(catalogueWith(""));
  ASSERT_TRUE(parsed.isOk()) << parsed.status().toString();
  EXPECT_FALSE(parsed->items[0].validity_days.has_value());
}

TEST(CatalogueValidityTest, NegativeValidityDaysIsRefusedNamingTheItem) {
  Status s = refusal(R"("validity_days": -1,)");
  expectNamesItemAndField(s);
  EXPECT_NE(s.message().find("-1"), std::string::npos) << "says what it got: " << s.message();
}

TEST(CatalogueValidityTest, ValidityDaysBeyondAHundredYearsIsRefusedNamingTheItem) {
  expectNamesItemAndField(refusal(R"("validity_days": 36526,)"));
  expectNamesItemAndField(refusal(R"("validity_days": 18446744073709551615,)"));
}

TEST(CatalogueValidityTest, ValidityDaysThatIsNotAWholeNumberIsRefusedNamingTheItem) {
  for (const char* extra : {R"("validity_days": "90",)", R"("validity_days": 90.5,)", R"("validity_days": true,)",
                            R"("validity_days": null,)", R"("validity_days": [90],)"}) {
    expectNamesItemAndField(refusal(extra));
  }
}

TEST(CatalogueValidityTest, ValidityDaysOnAnItemThatIssuesNothingIsRefusedNamingTheItem) {
  Status s = refusal(R"("validity_days": 90,)", /*issues=*/"");
  expectNamesItemAndField(s);
  EXPECT_NE(s.message().find("issues no credential"), std::string::npos) << s.message();
}

TEST(CatalogueValidityTest, ValidityDaysSurvivesTheSealedEncoding) {
  for (std::optional<int> days : {std::optional<int>(), std::optional<int>(0), std::optional<int>(90)}) {
    Catalogue c = parse(catalogueWith("")).value();
    c.items[0].validity_days = days;
    auto decoded = decodeCatalogue(encodeCatalogue(c));
    ASSERT_TRUE(decoded.isOk()) << decoded.status().toString();
    EXPECT_EQ(decoded->items[0].validity_days, days);
  }
}

// One business-licence item encoded directly, as another (older or hostile) encoder would;
// `validity` unset leaves the field out, as a catalogue sealed before it existed does.
Bytes encodedItem(std::optional<int32_t> validity) {
  capnp::MallocMessageBuilder b;
  auto root = b.initRoot<wire::Catalogue>();
  root.setVersion(3);
  auto item = root.initItems(1)[0];
  item.setCode("SC-0001");
  item.setKind("committed");
  item.setDecideLevel(2);
  item.initAcceptLevels(1).set(0, 2);
  item.setIssues("business_license");
  if (validity) item.setValidityDays(*validity);
  return capnp_io::flatBytes(b);
}

// A node may hold a catalogue the city sealed before the field existed; its items state no period.
TEST(CatalogueValidityTest, ACatalogueEncodedWithoutTheFieldDecodesAsNotStated) {
  auto decoded = decodeCatalogue(encodedItem(std::nullopt));
  ASSERT_TRUE(decoded.isOk()) << decoded.status().toString();
  EXPECT_FALSE(decoded->items[0].validity_days.has_value());
}

TEST(CatalogueValidityTest, AnEncodedValidityOutOfRangeIsMalformedNamingTheItem) {
  for (int32_t days : {-2, kMaxValidityDays + 1}) {
    auto decoded = decodeCatalogue(encodedItem(days));
    ASSERT_FALSE(decoded.isOk()) << days;
    EXPECT_EQ(decoded.status().code(), ErrorCode::kMalformed);
    EXPECT_NE(decoded.status().message().find("SC-0001"), std::string::npos) << decoded.status().message();
  }
}

TEST(CatalogueValidityTest, TheSampleCatalogueStatesAValidityForEveryItemThatIssues) {
  std::ifstream in(std::string(TONGBAN_SOURCE_DIR) + "/data/catalog.json");
  std::stringstream text;
  text << in.rdbuf();
  auto parsed = parse(text.str());
  ASSERT_TRUE(parsed.isOk()) << parsed.status().toString();
  for (const auto& item : parsed->items) {
    if (!item.issues.empty()) {
      EXPECT_TRUE(item.validity_days.has_value()) << item.code;
    }
  }
  EXPECT_EQ(parsed->find("SC-0001")->validity_days, std::optional<int>(0)) << "a business licence is long-term (长期)";
  EXPECT_EQ(parsed->find("SC-0035")->validity_days, std::optional<int>(1826)) << "a food business licence: five years";
}

// The city publishes three versions: SC-0001 moves from district to city level in version 2,
// CG-0101 leaves in version 3. Every version answers for the ones before it.
TEST(CatalogueAuthorityTest, EveryPublishedVersionSaysWhoDecidedEachItemInEveryEarlierVersion) {
  store_testing::TempDir dir;
  auto db = store_testing::openDb(dir.file("c.db"), Synchronous::kOff);
  const DivisionCode city = DivisionCode::parse("440600000000").value();
  std::array<uint8_t, 32> seed{};
  seed.fill(1);
  Identity root = createRootIdentity(city, "city", KeyPair::fromSeed(seed), 0, INT64_MAX / 4).value();
  KindRegistry kinds;
  registerCatalogueKind(kinds);
  Verifier verifier = Verifier::create(root.root_certificate, &kinds).value();
  CatalogueStore store = CatalogueStore::open(*db, verifier, city).value();
  Catalogue c = parse(catalogueWith("")).value();
  CatalogueItem licence = c.items[0];
  licence.code = "SC-0001";
  licence.issues = "business_license";
  c.items.push_back(licence);
  ASSERT_EQ(store.publish(root, c, 1000).value(), 1u);
  c.items[1].decide_level = Level::kCity;
  ASSERT_EQ(store.publish(root, c, 2000).value(), 2u);
  c.items.erase(c.items.begin());
  ASSERT_EQ(store.publish(root, c, 3000).value(), 3u);
  EXPECT_EQ(store.publish(root, c, 4000).status().code(), ErrorCode::kAlreadyExists) << "the history is not content";

  // What a node receives: the sealed document, decoded.
  const Catalogue v3 = decodeCatalogue(encodeCatalogue(*store.current())).value();
  ASSERT_EQ(v3.version, 3u);
  EXPECT_EQ(v3.authorityAt("SC-0001", 1)->decide_level, Level::kDistrict);
  EXPECT_EQ(v3.authorityAt("SC-0001", 2)->decide_level, Level::kCity);
  EXPECT_EQ(v3.authorityAt("SC-0001", 3)->decide_level, Level::kCity);
  EXPECT_EQ(v3.authorityAt("SC-0001", 3)->issues, "business_license");
  EXPECT_EQ(v3.authorityAt("CG-0101", 2)->decide_level, Level::kDistrict);
  EXPECT_FALSE(v3.authorityAt("CG-0101", 3).has_value()) << "removed in version 3";
  EXPECT_FALSE(v3.authorityAt("XX-0000", 1).has_value());
}

// A catalogue sealed before the history existed answers from its own items.
TEST(CatalogueAuthorityTest, ACatalogueWithoutAHistoryAnswersFromItsItems) {
  auto decoded = decodeCatalogue(encodedItem(std::nullopt));
  ASSERT_TRUE(decoded.isOk());
  EXPECT_EQ(decoded->authorityAt("SC-0001", 3)->decide_level, Level::kDistrict);
}

}  // namespace
}  // namespace tongban
