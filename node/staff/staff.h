// Staff accounts of one service hall: who may log in, with which roles, and their sessions.
//
// Passwords are stored as Argon2id strings (libsodium crypto_pwhash_str); session tokens are
// 32 random bytes shown to the client once, as hex, and stored only as a BLAKE2b-256 hash, so a
// copy of node.db does not let anyone act as a logged-in clerk.
//
// Brute force: after kDefaultMaxFailedLogins wrong passwords in a row for one username, that
// username is locked for StaffOptions::lockout_ms (even the right password is refused until
// then, with ErrorCode::kResourceExhausted). Failures are counted per username whether or not
// the account exists, so neither the "wrong password" message nor the lockout reveals which
// usernames exist. A successful login clears the count.
//
// Time is always passed in (`now`), from the node's Clock, so expiry and lockout are testable
// and replayable. Used only from the node's thread, like its Database.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "federation/store/database.h"
#include "federation/transport/clock.h"
#include "federation/util/status.h"

namespace tongban {

// Roles in a service hall. Names are stable (stored in SQLite and shown in the API).
enum class Role {
  kClerk,       // clerk: window clerk (窗口受理), accepts and hands back cases
  kUndertaker,  // undertaker: handles a case (承办)
  kReviewer,    // reviewer: reviews the handling (审核)
  kApprover,    // approver: decides (审批)
  kSupervisor,  // supervisor: sees figures and warnings (监督)
  kAdmin,       // admin: manages accounts and configuration
};

const char* roleName(Role role);
Result<Role> parseRole(std::string_view name);
// "clerk,reviewer" → {kClerk, kReviewer}; at least one role, no unknown names, duplicates merged.
Result<std::vector<Role>> parseRoles(std::string_view comma_list);
std::string joinRoles(const std::vector<Role>& roles);  // "clerk,reviewer"

// Who is making a request, as established by a valid session token.
struct Principal {
  std::string username;
  std::string display_name;
  std::vector<Role> roles;
  bool has(Role role) const;
};

struct Session {
  std::string token;  // 64 hex characters; give it to the client, it is not stored
  std::string username;
  TimeMs expires_ms = 0;
};

struct UserInfo {
  std::string username;
  std::string display_name;
  std::vector<Role> roles;
  bool disabled = false;
  TimeMs created_ms = 0;
};

// Limits of the account rules, named so the tests and docs can refer to them.
inline constexpr DurationMs kDefaultSessionLifetimeMs = 8LL * 3600 * 1000;  // one working day
inline constexpr int kDefaultMaxFailedLogins = 5;
inline constexpr DurationMs kDefaultLockoutMs = 5LL * 60 * 1000;
inline constexpr size_t kMinPasswordBytes = 8;
// Far above any real password; stops a client from making the node hash megabytes.
inline constexpr size_t kMaxPasswordBytes = 1024;
inline constexpr size_t kMaxDisplayNameBytes = 128;

struct StaffOptions {
  // Argon2id cost. The defaults are libsodium's INTERACTIVE limits (about 64 MiB, tens of ms);
  // tests pass crypto_pwhash_OPSLIMIT_MIN / crypto_pwhash_MEMLIMIT_MIN to stay fast. Hashes
  // carry their own parameters, so changing these only affects passwords set afterwards.
  unsigned long long pwhash_opslimit = 2;          // crypto_pwhash_OPSLIMIT_INTERACTIVE
  size_t pwhash_memlimit = 67108864;               // crypto_pwhash_MEMLIMIT_INTERACTIVE
  DurationMs session_lifetime_ms = kDefaultSessionLifetimeMs;
  int max_failed_logins = kDefaultMaxFailedLogins;
  DurationMs lockout_ms = kDefaultLockoutMs;
};

class StaffDirectory {
 public:
  // Creates or upgrades the staff tables (component "staff") in `db`, which must outlive this.
  static Result<StaffDirectory> open(Database& db, StaffOptions options = {});

  // Username: [a-z0-9_.-]{2,32}. Password: kMinPasswordBytes..kMaxPasswordBytes bytes. At least
  // one role. kAlreadyExists if the username is taken (also by a disabled account).
  Status addUser(const std::string& username, const std::string& display_name, const std::string& password,
                 const std::vector<Role>& roles, TimeMs now);
  // Replaces the password, ends every session of the user and clears a lockout.
  Status setPassword(const std::string& username, const std::string& password);
  // The account can no longer log in; its sessions end at once. kNotFound if unknown.
  Status disable(const std::string& username);
  Result<std::vector<UserInfo>> listUsers();

  // kUnauthorized "wrong username or password" for both an unknown user and a wrong password;
  // kResourceExhausted while locked out; kUnauthorized for a disabled account (only said to a
  // caller who gave the right password).
  Result<Session> login(const std::string& username, const std::string& password, TimeMs now);
  // kUnauthorized "session expired, log in again" or "unknown token, log in again".
  Result<Principal> authenticate(const std::string& token, TimeMs now);
  // Ends the session; unknown tokens are not an error (logging out twice is fine).
  Status logout(const std::string& token);

 private:
  StaffDirectory(Database& db, StaffOptions options) : db_(&db), options_(options) {}
  Result<std::string> hashPassword(const std::string& password);
  Status recordFailure(const std::string& username, TimeMs now);
  Status clearFailures(const std::string& username);
  Status endSessionsOf(const std::string& username);
  const std::string& dummyHash();

  Database* db_;
  StaffOptions options_;
  // Verified against when the username is unknown, so that case costs as much as a wrong
  // password and timing does not reveal which usernames exist.
  std::string dummy_hash_;
};

}  // namespace tongban
