#include "node/app/config.h"

#include <gtest/gtest.h>

namespace tongban {
namespace {

const char* kValid = R"(
division = "440604001001"
name = "祖庙第1社区"
data_dir = "/var/lib/tongban/v1"
key_dir = "/etc/tongban/keys/v1"
nats_urls = ["nats://127.0.0.1:4222", "nats://127.0.0.1:4223"]
synchronous = "normal"
heartbeat_interval_ms = 2000
)";

Status parseError(const std::string& text) { return parseNodeConfig(text, "node.toml").status(); }

TEST(NodeConfig, AValidFileParsesWithDefaultsFilledIn) {
  auto c = parseNodeConfig(kValid, "node.toml");
  ASSERT_TRUE(c.isOk()) << c.status().toString();
  EXPECT_EQ(c->division.str(), "440604001001");
  EXPECT_EQ(c->name, "祖庙第1社区");
  EXPECT_EQ(c->root_cert, "/etc/tongban/keys/v1/root.cert");
  EXPECT_EQ(c->nats_urls.size(), 2u);
  EXPECT_EQ(c->synchronous, Synchronous::kNormal);
  EXPECT_EQ(c->limits.heartbeat_interval_ms, 2000);
  EXPECT_EQ(c->limits.retry_max_ms, SyncLimits{}.retry_max_ms);
  EXPECT_EQ(c->feed_poll_ms, 30 * 1000);
}

TEST(NodeConfig, FeedPollIntervalIsReadAndBounded) {
  auto c = parseNodeConfig(std::string(kValid) + "feed_poll_ms = 500\n", "node.toml");
  ASSERT_TRUE(c.isOk()) << c.status().toString();
  EXPECT_EQ(c->feed_poll_ms, 500);
  for (const char* bad : {"feed_poll_ms = 5\n", "feed_poll_ms = \"fast\"\n", "feed_poll_ms = 99999999\n"}) {
    auto st = parseError(std::string(kValid) + bad);
    EXPECT_EQ(st.code(), ErrorCode::kInvalidArgument) << bad;
    EXPECT_NE(st.message().find("'feed_poll_ms'"), std::string::npos) << st.message();
  }
}

TEST(NodeConfig, EachBadSettingIsNamedInTheError) {
  std::string base = kValid;
  auto with = [&](const std::string& from, const std::string& to) {
    std::string s = base;
    s.replace(s.find(from), from.size(), to);
    return s;
  };
  auto missing = parseError(with("division = \"440604001001\"\n", ""));
  EXPECT_EQ(missing.code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(missing.message().find("'division' is missing"), std::string::npos) << missing.message();

  auto bad_code = parseError(with("440604001001", "44060400100"));
  EXPECT_NE(bad_code.message().find("division"), std::string::npos) << bad_code.message();

  auto bad_sync = parseError(with("\"normal\"", "\"sometimes\""));
  EXPECT_NE(bad_sync.message().find("'synchronous'"), std::string::npos) << bad_sync.message();

  auto bad_url = parseError(with("nats://127.0.0.1:4223", "http://example"));
  EXPECT_NE(bad_url.message().find("'nats_urls'"), std::string::npos) << bad_url.message();

  auto tiny_heartbeat = parseError(with("2000", "5"));
  EXPECT_NE(tiny_heartbeat.message().find("'heartbeat_interval_ms'"), std::string::npos) << tiny_heartbeat.message();

  auto typo = parseError(base + "heartbeat_intervall_ms = 10\n");
  EXPECT_NE(typo.message().find("'heartbeat_intervall_ms' is not a known setting"), std::string::npos)
      << typo.message();

  auto backwards = parseError(base + "retry_initial_ms = 5000\nretry_max_ms = 1000\n");
  EXPECT_NE(backwards.message().find("'retry_max_ms'"), std::string::npos) << backwards.message();
}

TEST(NodeConfig, ExpectedChildrenAreDirectChildrenListedOnce) {
  auto c = parseNodeConfig(std::string(kValid).replace(std::string(kValid).find("440604001001"), 12, "440604001000") +
                               "expected_children = [\"440604001001\", \"440604001002\"]\n",
                           "node.toml");
  ASSERT_TRUE(c.isOk()) << c.status().toString();
  ASSERT_EQ(c->expected_children.size(), 2u);
  EXPECT_EQ(c->expected_children[1].str(), "440604001002");
  EXPECT_TRUE(parseNodeConfig(kValid, "node.toml")->expected_children.empty()) << "none unless listed";

  const std::string town = std::string(kValid).replace(std::string(kValid).find("440604001001"), 12, "440604001000");
  for (const auto& [line, says] : std::vector<std::pair<std::string, std::string>>{
           {"expected_children = [\"440604002001\"]", "440604002001 is not a direct child of 440604001000"},
           {"expected_children = [\"440604000000\"]", "is not a direct child"},
           {"expected_children = [\"4406\"]", "12-digit division codes"},
           {"expected_children = [\"440604001001\", \"440604001001\"]", "listed twice"},
           {"expected_children = \"440604001001\"", "must be an array"}}) {
    auto st = parseError(town + line + "\n");
    EXPECT_EQ(st.code(), ErrorCode::kInvalidArgument) << line;
    EXPECT_NE(st.message().find("'expected_children'"), std::string::npos) << st.message();
    EXPECT_NE(st.message().find(says), std::string::npos) << st.message();
  }
}

TEST(NodeConfig, SyntaxErrorsGiveTheLine) {
  auto st = parseError("division = \"440604001001\"\nname = \n");
  EXPECT_EQ(st.code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(st.message().find("node.toml:2"), std::string::npos) << st.message();
}

TEST(NodeConfig, AMissingFileIsAnIoError) {
  auto c = loadNodeConfig("/nonexistent/tongban.toml");
  ASSERT_FALSE(c.isOk());
  EXPECT_EQ(c.status().code(), ErrorCode::kIo);
  EXPECT_NE(c.status().message().find("/nonexistent/tongban.toml"), std::string::npos);
}

}  // namespace
}  // namespace tongban
