#include "federation/division/division.h"

#include <gtest/gtest.h>

namespace tongban {
namespace {

DivisionCode code(const char* s) { return DivisionCode::parse(s).value(); }

TEST(DivisionCode, LevelFollowsTheZeroGroups) {
  EXPECT_EQ(code("440600000000").level(), Level::kCity);
  EXPECT_EQ(code("440604000000").level(), Level::kDistrict);
  EXPECT_EQ(code("440604001000").level(), Level::kTown);
  EXPECT_EQ(code("440604001001").level(), Level::kVillage);
}

TEST(DivisionCode, ParentChainLeadsToTheCity) {
  auto village = code("440604001001");
  auto ancestors = village.ancestors();
  ASSERT_EQ(ancestors.size(), 3u);
  EXPECT_EQ(ancestors[0].str(), "440604001000");
  EXPECT_EQ(ancestors[1].str(), "440604000000");
  EXPECT_EQ(ancestors[2].str(), "440600000000");
  EXPECT_FALSE(code("440600000000").parent().has_value());
}

TEST(DivisionCode, AncestryIsStrictAndSubtreeBound) {
  auto town = code("440604001000");
  EXPECT_TRUE(town.isParentOf(code("440604001001")));
  EXPECT_TRUE(code("440600000000").isAncestorOf(code("440604001001")));
  EXPECT_FALSE(town.isAncestorOf(town));
  EXPECT_TRUE(town.covers(town));
  EXPECT_FALSE(town.isAncestorOf(code("440604002001")));           // a village of another town
  EXPECT_FALSE(code("440604001001").isAncestorOf(code("440604001002")));  // siblings
}

TEST(DivisionCode, TheWayDownNamesTheChildOnThePath) {
  auto city = code("440600000000");
  EXPECT_EQ(city.childToward(code("440604001001"))->str(), "440604000000");
  EXPECT_EQ(code("440604001000").childToward(code("440604001001"))->str(), "440604001001");
  EXPECT_FALSE(code("440604001000").childToward(code("440604002001")).has_value());  // not below it
  EXPECT_FALSE(city.childToward(city).has_value());
}

TEST(DivisionCode, MalformedCodesAreRejectedWithTheReason) {
  auto short_code = DivisionCode::parse("4406040010");
  ASSERT_FALSE(short_code.isOk());
  EXPECT_EQ(short_code.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(short_code.status().message().find("12 digits"), std::string::npos);

  auto letter = DivisionCode::parse("44060400100a");
  ASSERT_FALSE(letter.isOk());
  EXPECT_NE(letter.status().message().find("position 12"), std::string::npos);

  EXPECT_FALSE(DivisionCode::parse("440600000001").isOk());  // village under a zero district
  EXPECT_FALSE(DivisionCode::parse("440604000001").isOk());  // village under a zero town
  EXPECT_FALSE(DivisionCode::parse("000000000000").isOk());  // no province or city
}

TEST(Topology, LoadsTheFoshanNetwork) {
  auto topo = Topology::loadFile(std::string(TONGBAN_SOURCE_DIR) + "/data/foshan.json");
  ASSERT_TRUE(topo.isOk()) << topo.status().toString();
  EXPECT_EQ(topo->divisions().size(), 1u + 5 + 32 + 748);
  EXPECT_EQ(topo->root().code.str(), "440600000000");
  EXPECT_EQ(topo->childrenOf(topo->root().code).size(), 5u);
}

TEST(Topology, SampleTakesTheFirstChildrenAtEachLevel) {
  auto topo = Topology::loadFile(std::string(TONGBAN_SOURCE_DIR) + "/data/foshan.json").value();
  auto small = topo.sample(1, 1, 2);
  ASSERT_EQ(small.divisions().size(), 5u);
  EXPECT_EQ(small.divisions()[1].code.str(), "440604000000");
  EXPECT_EQ(small.divisions()[2].code.str(), "440604001000");
  EXPECT_EQ(small.divisions()[3].code.str(), "440604001001");
}

TEST(Topology, RejectsAnOrphanAndADisagreeingLevel) {
  auto orphan = Topology::fromJson(R"({"nodes":[{"code":"440600000000","name":"c"},
                                                {"code":"440604001001","name":"v"}]})");
  ASSERT_FALSE(orphan.isOk());
  EXPECT_NE(orphan.status().message().find("no parent 440604001000"), std::string::npos);

  auto level = Topology::fromJson(R"({"nodes":[{"code":"440600000000","name":"c","level":"town"}]})");
  ASSERT_FALSE(level.isOk());
  EXPECT_NE(level.status().message().find("disagrees"), std::string::npos);

  EXPECT_FALSE(Topology::fromJson("{not json").isOk());
}

}  // namespace
}  // namespace tongban
