// Staff accounts: passwords, roles, sessions, lockout. Time is injected (plain numbers), so
// expiry and lockout are tested at their exact bounds without sleeping.
#include <gtest/gtest.h>

#include <sodium.h>

#include <memory>
#include <string>

#include "federation/store/database.h"
#include "node/staff/staff.h"
#include "tests/support/temp_dir.h"

namespace tongban {
namespace {

using testing::TempDir;

constexpr TimeMs kT0 = 1'700'000'000'000;
const char* const kPassword = "correct horse";

class StaffTest : public ::testing::Test {
 protected:
  void SetUp() override {
    DatabaseOptions options;
    options.path = dir_.file("node.db");
    auto db = Database::open(options);
    ASSERT_TRUE(db.isOk()) << db.status().toString();
    db_ = std::move(db).value();
    auto staff = StaffDirectory::open(*db_, fastOptions());
    ASSERT_TRUE(staff.isOk()) << staff.status().toString();
    staff_ = std::make_unique<StaffDirectory>(std::move(staff).value());
  }

  static StaffOptions fastOptions() {
    StaffOptions options;
    options.pwhash_opslimit = crypto_pwhash_OPSLIMIT_MIN;
    options.pwhash_memlimit = crypto_pwhash_MEMLIMIT_MIN;
    return options;
  }

  void addClerk(const std::string& username = "zhangsan") {
    ASSERT_TRUE(staff_->addUser(username, "张三", kPassword, {Role::kClerk, Role::kReviewer}, kT0).isOk());
  }

  TempDir dir_;
  std::unique_ptr<Database> db_;
  std::unique_ptr<StaffDirectory> staff_;
};

TEST_F(StaffTest, AddedUserLogsInAndTheTokenIdentifiesThem) {
  addClerk();
  auto session = staff_->login("zhangsan", kPassword, kT0);
  ASSERT_TRUE(session.isOk()) << session.status().toString();
  EXPECT_EQ(session->token.size(), 64u);
  EXPECT_EQ(session->expires_ms, kT0 + kDefaultSessionLifetimeMs);

  auto who = staff_->authenticate(session->token, kT0 + 1000);
  ASSERT_TRUE(who.isOk()) << who.status().toString();
  EXPECT_EQ(who->username, "zhangsan");
  EXPECT_EQ(who->display_name, "张三");
  EXPECT_TRUE(who->has(Role::kClerk));
  EXPECT_TRUE(who->has(Role::kReviewer));
  EXPECT_FALSE(who->has(Role::kApprover));
}

TEST_F(StaffTest, WrongPasswordIsRefused) {
  addClerk();
  auto session = staff_->login("zhangsan", "not the password", kT0);
  ASSERT_FALSE(session.isOk());
  EXPECT_EQ(session.status().code(), ErrorCode::kUnauthorized);
}

TEST_F(StaffTest, UnknownUserGetsExactlyTheWrongPasswordAnswer) {
  addClerk();
  auto wrong_password = staff_->login("zhangsan", "not the password", kT0);
  auto unknown_user = staff_->login("lisi", "not the password", kT0);
  ASSERT_FALSE(wrong_password.isOk());
  ASSERT_FALSE(unknown_user.isOk());
  EXPECT_EQ(unknown_user.status().code(), wrong_password.status().code());
  EXPECT_EQ(unknown_user.status().message(), wrong_password.status().message());
}

TEST_F(StaffTest, SessionIsValidUntilItsLifetimeEndsThenExpires) {
  addClerk();
  auto session = staff_->login("zhangsan", kPassword, kT0);
  ASSERT_TRUE(session.isOk());
  EXPECT_TRUE(staff_->authenticate(session->token, kT0 + kDefaultSessionLifetimeMs - 1).isOk());
  auto late = staff_->authenticate(session->token, kT0 + kDefaultSessionLifetimeMs);
  ASSERT_FALSE(late.isOk());
  EXPECT_EQ(late.status().code(), ErrorCode::kUnauthorized);
  EXPECT_EQ(late.status().message(), "session expired, log in again");
}

TEST_F(StaffTest, SessionLifetimeIsConfigurable) {
  StaffOptions options = fastOptions();
  options.session_lifetime_ms = 60'000;
  auto short_lived = StaffDirectory::open(*db_, options);
  ASSERT_TRUE(short_lived.isOk());
  addClerk();
  auto session = short_lived->login("zhangsan", kPassword, kT0);
  ASSERT_TRUE(session.isOk());
  EXPECT_EQ(session->expires_ms, kT0 + 60'000);
  EXPECT_FALSE(short_lived->authenticate(session->token, kT0 + 60'000).isOk());
}

TEST_F(StaffTest, UnknownOrMalformedTokenIsUnauthorized) {
  auto unknown = staff_->authenticate(std::string(64, 'a'), kT0);
  ASSERT_FALSE(unknown.isOk());
  EXPECT_EQ(unknown.status().code(), ErrorCode::kUnauthorized);
  EXPECT_EQ(unknown.status().message(), "unknown token, log in again");
  EXPECT_EQ(staff_->authenticate("", kT0).status().code(), ErrorCode::kUnauthorized);
  EXPECT_EQ(staff_->authenticate("'; DROP TABLE staff_users; --", kT0).status().code(), ErrorCode::kUnauthorized);
}

TEST_F(StaffTest, LogoutEndsTheSessionAndIsIdempotent) {
  addClerk();
  auto session = staff_->login("zhangsan", kPassword, kT0);
  ASSERT_TRUE(session.isOk());
  EXPECT_TRUE(staff_->logout(session->token).isOk());
  EXPECT_EQ(staff_->authenticate(session->token, kT0).status().code(), ErrorCode::kUnauthorized);
  EXPECT_TRUE(staff_->logout(session->token).isOk());
}

TEST_F(StaffTest, DisabledUserCannotLogInAndTheirSessionsEnd) {
  addClerk();
  auto session = staff_->login("zhangsan", kPassword, kT0);
  ASSERT_TRUE(session.isOk());
  ASSERT_TRUE(staff_->disable("zhangsan").isOk());
  EXPECT_EQ(staff_->authenticate(session->token, kT0 + 1).status().code(), ErrorCode::kUnauthorized);
  auto again = staff_->login("zhangsan", kPassword, kT0 + 2);
  ASSERT_FALSE(again.isOk());
  EXPECT_EQ(again.status().code(), ErrorCode::kUnauthorized);
  EXPECT_NE(again.status().message().find("disabled"), std::string::npos);
  EXPECT_EQ(staff_->disable("nobody").code(), ErrorCode::kNotFound);
}

TEST_F(StaffTest, FiveFailuresLockTheAccountUntilTheLockoutPasses) {
  addClerk();
  for (int i = 0; i < kDefaultMaxFailedLogins; ++i) {
    EXPECT_EQ(staff_->login("zhangsan", "wrong password", kT0 + i).status().code(), ErrorCode::kUnauthorized);
  }
  const TimeMs locked_at = kT0 + kDefaultMaxFailedLogins - 1;
  // Locked: even the right password is refused, with a message that says to wait.
  auto locked = staff_->login("zhangsan", kPassword, locked_at + 1);
  ASSERT_FALSE(locked.isOk());
  EXPECT_EQ(locked.status().code(), ErrorCode::kResourceExhausted);
  EXPECT_NE(locked.status().message().find("try again in 5 min"), std::string::npos) << locked.status().message();
  EXPECT_FALSE(staff_->login("zhangsan", kPassword, locked_at + kDefaultLockoutMs - 1).isOk());
  // The lock has passed.
  EXPECT_TRUE(staff_->login("zhangsan", kPassword, locked_at + kDefaultLockoutMs).isOk());
}

TEST_F(StaffTest, FourFailuresThenSuccessStartsTheCountAgain) {
  addClerk();
  for (int i = 0; i < kDefaultMaxFailedLogins - 1; ++i) {
    ASSERT_FALSE(staff_->login("zhangsan", "wrong password", kT0).isOk());
  }
  ASSERT_TRUE(staff_->login("zhangsan", kPassword, kT0).isOk());
  for (int i = 0; i < kDefaultMaxFailedLogins - 1; ++i) {
    ASSERT_FALSE(staff_->login("zhangsan", "wrong password", kT0).isOk());
  }
  EXPECT_TRUE(staff_->login("zhangsan", kPassword, kT0).isOk());
}

TEST_F(StaffTest, UnknownUsernamesLockLikeRealOnesSoLockoutRevealsNothing) {
  for (int i = 0; i < kDefaultMaxFailedLogins; ++i) ASSERT_FALSE(staff_->login("ghost", "wrong password", kT0).isOk());
  EXPECT_EQ(staff_->login("ghost", "wrong password", kT0 + 1).status().code(), ErrorCode::kResourceExhausted);
}

TEST_F(StaffTest, SetPasswordReplacesTheOldOneAndEndsSessions) {
  addClerk();
  auto session = staff_->login("zhangsan", kPassword, kT0);
  ASSERT_TRUE(session.isOk());
  ASSERT_TRUE(staff_->setPassword("zhangsan", "a new password").isOk());
  EXPECT_FALSE(staff_->authenticate(session->token, kT0 + 1).isOk());
  EXPECT_FALSE(staff_->login("zhangsan", kPassword, kT0 + 2).isOk());
  EXPECT_TRUE(staff_->login("zhangsan", "a new password", kT0 + 3).isOk());
  EXPECT_EQ(staff_->setPassword("nobody", "a new password").code(), ErrorCode::kNotFound);
  EXPECT_EQ(staff_->setPassword("zhangsan", "short").code(), ErrorCode::kInvalidArgument);
}

TEST_F(StaffTest, AddUserValidatesItsInput) {
  EXPECT_EQ(staff_->addUser("A", "x", kPassword, {Role::kClerk}, kT0).code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(staff_->addUser("Zhang", "x", kPassword, {Role::kClerk}, kT0).code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(staff_->addUser("zhang san", "x", kPassword, {Role::kClerk}, kT0).code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(staff_->addUser(std::string(33, 'a'), "x", kPassword, {Role::kClerk}, kT0).code(),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(staff_->addUser("zhang", "x", "1234567", {Role::kClerk}, kT0).code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(staff_->addUser("zhang", "x", kPassword, {}, kT0).code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(staff_->addUser("zhang", "", kPassword, {Role::kClerk}, kT0).code(), ErrorCode::kInvalidArgument);
  EXPECT_TRUE(staff_->addUser("zhang.san-01_x", "张三", "12345678", {Role::kClerk}, kT0).isOk());
  EXPECT_EQ(staff_->addUser("zhang.san-01_x", "张三", kPassword, {Role::kAdmin}, kT0).code(),
            ErrorCode::kAlreadyExists);
}

TEST(RolesTest, ParsedFromACommaListAndNamedBack) {
  auto roles = parseRoles("clerk, reviewer,clerk,admin");
  ASSERT_TRUE(roles.isOk()) << roles.status().toString();
  EXPECT_EQ(*roles, (std::vector<Role>{Role::kClerk, Role::kReviewer, Role::kAdmin}));
  EXPECT_EQ(joinRoles(*roles), "clerk,reviewer,admin");
  for (const char* name : {"clerk", "undertaker", "reviewer", "approver", "supervisor", "admin"}) {
    auto role = parseRole(name);
    ASSERT_TRUE(role.isOk()) << name;
    EXPECT_STREQ(roleName(*role), name);
  }
  EXPECT_EQ(parseRoles("clerk,boss").status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(parseRoles("").status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(parseRoles(" , ").status().code(), ErrorCode::kInvalidArgument);
}

TEST_F(StaffTest, ListUsersShowsRolesAndState) {
  addClerk("zhangsan");
  ASSERT_TRUE(staff_->addUser("lisi", "李四", kPassword, {Role::kApprover}, kT0 + 5).isOk());
  ASSERT_TRUE(staff_->disable("lisi").isOk());
  auto users = staff_->listUsers();
  ASSERT_TRUE(users.isOk());
  ASSERT_EQ(users->size(), 2u);
  EXPECT_EQ((*users)[0].username, "lisi");
  EXPECT_TRUE((*users)[0].disabled);
  EXPECT_EQ((*users)[0].roles, std::vector<Role>{Role::kApprover});
  EXPECT_EQ((*users)[0].created_ms, kT0 + 5);
  EXPECT_EQ((*users)[1].username, "zhangsan");
  EXPECT_FALSE((*users)[1].disabled);
}

TEST_F(StaffTest, OnlyAHashOfTheTokenAndAnArgon2idHashOfThePasswordAreStored) {
  addClerk();
  auto session = staff_->login("zhangsan", kPassword, kT0);
  ASSERT_TRUE(session.isOk());

  auto sessions = db_->prepare("SELECT token_hash, hex(token_hash) FROM staff_sessions");
  ASSERT_TRUE(sessions.isOk());
  auto row = sessions->step();
  ASSERT_TRUE(row.isOk() && *row);
  EXPECT_EQ(sessions->columnBlob(0).size(), 32u);
  std::string stored_hex = sessions->columnText(1);
  for (char& c : stored_hex) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  EXPECT_NE(stored_hex, session->token);
  auto more = sessions->step();
  ASSERT_TRUE(more.isOk());
  EXPECT_FALSE(*more) << "exactly one session row";

  // Nowhere in the staff tables does the token or the password appear as text.
  auto leaked = db_->prepare(
      "SELECT count(*) FROM staff_sessions s JOIN staff_users u ON u.username = s.username "
      "WHERE instr(lower(hex(s.token_hash)), ?1) > 0 OR instr(u.password_hash, ?2) > 0");
  ASSERT_TRUE(leaked.isOk());
  leaked->bind(1, session->token).bind(2, std::string(kPassword));
  ASSERT_TRUE(leaked->step().isOk());
  EXPECT_EQ(leaked->columnInt64(0), 0);

  auto users = db_->prepare("SELECT password_hash FROM staff_users WHERE username = 'zhangsan'");
  ASSERT_TRUE(users.isOk());
  ASSERT_TRUE(users->step().isOk());
  EXPECT_EQ(users->columnText(0).rfind("$argon2id$", 0), 0u) << users->columnText(0);
}

}  // namespace
}  // namespace tongban
