#include "node/staff/staff.h"

#include <sodium.h>

#include <algorithm>
#include <array>

#include "federation/util/bytes.h"

namespace tongban {

namespace {

static_assert(crypto_pwhash_OPSLIMIT_INTERACTIVE == 2, "StaffOptions default must match libsodium");
static_assert(crypto_pwhash_MEMLIMIT_INTERACTIVE == 67108864, "StaffOptions default must match libsodium");

constexpr size_t kTokenBytes = 32;
constexpr size_t kTokenHexChars = 2 * kTokenBytes;
constexpr size_t kMinUsernameChars = 2;
constexpr size_t kMaxUsernameChars = 32;
// A username's failure count is forgotten a day after its last failure, so the table of failed
// attempts (kept for unknown usernames too, see staff.h) stays bounded by one day of attempts.
constexpr DurationMs kFailureMemoryMs = 24LL * 3600 * 1000;

const char* const kWrongCredentials = "wrong username or password";

// staff_users: one row per account; roles as a comma list of role names.
// staff_sessions: only the BLAKE2b-256 hash of each token, so the file never holds a usable token.
// staff_login_failures: consecutive failed logins per username (existing or not) and the lock.
const std::vector<Migration> kStaffMigrations = {
    {1,
     "CREATE TABLE staff_users("
     "  username TEXT PRIMARY KEY,"
     "  display_name TEXT NOT NULL,"
     "  password_hash TEXT NOT NULL,"
     "  roles TEXT NOT NULL,"
     "  disabled INTEGER NOT NULL DEFAULT 0,"
     "  created_ms INTEGER NOT NULL);"
     "CREATE TABLE staff_sessions("
     "  token_hash BLOB PRIMARY KEY,"
     "  username TEXT NOT NULL REFERENCES staff_users(username),"
     "  created_ms INTEGER NOT NULL,"
     "  expires_ms INTEGER NOT NULL);"
     "CREATE INDEX staff_sessions_by_user ON staff_sessions(username);"
     "CREATE INDEX staff_sessions_by_expiry ON staff_sessions(expires_ms);"
     "CREATE TABLE staff_login_failures("
     "  username TEXT PRIMARY KEY,"
     "  failures INTEGER NOT NULL,"
     "  last_failure_ms INTEGER NOT NULL,"
     "  locked_until_ms INTEGER NOT NULL);"
     "CREATE INDEX staff_login_failures_by_time ON staff_login_failures(last_failure_ms);"},
};

struct RoleEntry {
  Role role;
  const char* name;
};
constexpr std::array<RoleEntry, 6> kRoles = {{
    {Role::kClerk, "clerk"},
    {Role::kUndertaker, "undertaker"},
    {Role::kReviewer, "reviewer"},
    {Role::kApprover, "approver"},
    {Role::kSupervisor, "supervisor"},
    {Role::kAdmin, "admin"},
}};

Status checkUsername(const std::string& username) {
  const bool length_ok = username.size() >= kMinUsernameChars && username.size() <= kMaxUsernameChars;
  const bool chars_ok = std::all_of(username.begin(), username.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
  });
  if (length_ok && chars_ok) return Status::ok();
  return Status(ErrorCode::kInvalidArgument, "username '" + username + "' must be 2 to 32 characters of a-z, 0-9, " +
                                                 "'_', '.' or '-' (lower case)");
}

Status checkPassword(const std::string& password) {
  if (password.size() < kMinPasswordBytes) {
    return Status(ErrorCode::kInvalidArgument,
                  "password too short: at least " + std::to_string(kMinPasswordBytes) + " characters");
  }
  if (password.size() > kMaxPasswordBytes) {
    return Status(ErrorCode::kInvalidArgument,
                  "password too long: at most " + std::to_string(kMaxPasswordBytes) + " bytes");
  }
  return Status::ok();
}

Bytes tokenHash(const std::string& token) {
  Bytes out(crypto_generichash_BYTES);
  crypto_generichash(out.data(), out.size(), reinterpret_cast<const unsigned char*>(token.data()), token.size(),
                     nullptr, 0);
  return out;
}

bool looksLikeToken(const std::string& token) {
  return token.size() == kTokenHexChars && std::all_of(token.begin(), token.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

Status unauthorized(const std::string& message) { return Status(ErrorCode::kUnauthorized, message); }

}  // namespace

// ---------------------------------------------------------------------------------------------
// Roles

const char* roleName(Role role) {
  for (const auto& entry : kRoles) {
    if (entry.role == role) return entry.name;
  }
  return "unknown";
}

Result<Role> parseRole(std::string_view name) {
  for (const auto& entry : kRoles) {
    if (name == entry.name) return entry.role;
  }
  std::string known;
  for (const auto& entry : kRoles) known += (known.empty() ? "" : ", ") + std::string(entry.name);
  return Status(ErrorCode::kInvalidArgument, "unknown role '" + std::string(name) + "' (known: " + known + ")");
}

Result<std::vector<Role>> parseRoles(std::string_view comma_list) {
  std::vector<Role> roles;
  size_t start = 0;
  while (start <= comma_list.size()) {
    size_t end = comma_list.find(',', start);
    if (end == std::string_view::npos) end = comma_list.size();
    std::string_view name = comma_list.substr(start, end - start);
    while (!name.empty() && name.front() == ' ') name.remove_prefix(1);
    while (!name.empty() && name.back() == ' ') name.remove_suffix(1);
    if (!name.empty()) {
      TB_ASSIGN_OR_RETURN(Role role, parseRole(name));
      if (std::find(roles.begin(), roles.end(), role) == roles.end()) roles.push_back(role);
    }
    start = end + 1;
  }
  if (roles.empty()) return Status(ErrorCode::kInvalidArgument, "at least one role is needed, e.g. 'clerk'");
  return roles;
}

std::string joinRoles(const std::vector<Role>& roles) {
  std::string out;
  for (Role role : roles) out += (out.empty() ? "" : ",") + std::string(roleName(role));
  return out;
}

bool Principal::has(Role role) const { return std::find(roles.begin(), roles.end(), role) != roles.end(); }

// ---------------------------------------------------------------------------------------------
// Accounts

Result<StaffDirectory> StaffDirectory::open(Database& db, StaffOptions options) {
  if (sodium_init() < 0) return Status(ErrorCode::kInternal, "libsodium failed to initialise");
  if (options.pwhash_opslimit < crypto_pwhash_OPSLIMIT_MIN || options.pwhash_memlimit < crypto_pwhash_MEMLIMIT_MIN) {
    return Status(ErrorCode::kInvalidArgument, "password hashing limits below libsodium's minimum");
  }
  if (options.session_lifetime_ms <= 0 || options.max_failed_logins < 1 || options.lockout_ms < 0) {
    return Status(ErrorCode::kInvalidArgument,
                  "session lifetime must be positive, failed-login limit at least 1, lockout not negative");
  }
  TB_RETURN_IF_ERROR(db.migrate("staff", kStaffMigrations));
  return StaffDirectory(db, options);
}

Result<std::string> StaffDirectory::hashPassword(const std::string& password) {
  char out[crypto_pwhash_STRBYTES];
  if (crypto_pwhash_str(out, password.data(), password.size(), options_.pwhash_opslimit,
                        static_cast<size_t>(options_.pwhash_memlimit)) != 0) {
    return Status(ErrorCode::kResourceExhausted, "not enough memory to hash the password; try again");
  }
  return std::string(out);
}

const std::string& StaffDirectory::dummyHash() {
  if (dummy_hash_.empty()) {
    auto hash = hashPassword("not a password of anyone");
    if (hash.isOk()) dummy_hash_ = std::move(hash).value();
  }
  return dummy_hash_;
}

Status StaffDirectory::addUser(const std::string& username, const std::string& display_name,
                               const std::string& password, const std::vector<Role>& roles, TimeMs now) {
  TB_RETURN_IF_ERROR(checkUsername(username));
  if (display_name.empty() || display_name.size() > kMaxDisplayNameBytes) {
    return Status(ErrorCode::kInvalidArgument,
                  "display name must be 1 to " + std::to_string(kMaxDisplayNameBytes) + " bytes");
  }
  TB_RETURN_IF_ERROR(checkPassword(password));
  if (roles.empty()) return Status(ErrorCode::kInvalidArgument, "at least one role is needed, e.g. 'clerk'");
  {
    TB_ASSIGN_OR_RETURN(Statement exists, db_->prepare("SELECT 1 FROM staff_users WHERE username = ?1"));
    exists.bind(1, username);
    TB_ASSIGN_OR_RETURN(bool taken, exists.step());
    if (taken) return Status(ErrorCode::kAlreadyExists, "user '" + username + "' already exists");
  }
  TB_ASSIGN_OR_RETURN(std::string hash, hashPassword(password));
  TB_ASSIGN_OR_RETURN(Statement insert,
                      db_->prepare("INSERT INTO staff_users(username, display_name, password_hash, roles, created_ms) "
                                   "VALUES(?1, ?2, ?3, ?4, ?5)"));
  insert.bind(1, username).bind(2, display_name).bind(3, hash).bind(4, joinRoles(roles)).bind(5, now);
  return insert.run().withContext("adding user " + username);
}

Status StaffDirectory::setPassword(const std::string& username, const std::string& password) {
  TB_RETURN_IF_ERROR(checkPassword(password));
  TB_ASSIGN_OR_RETURN(std::string hash, hashPassword(password));
  TB_ASSIGN_OR_RETURN(Transaction tx, db_->begin());
  {
    TB_ASSIGN_OR_RETURN(Statement update,
                        db_->prepare("UPDATE staff_users SET password_hash = ?2 WHERE username = ?1"));
    update.bind(1, username).bind(2, hash);
    TB_RETURN_IF_ERROR(update.run().withContext("setting the password of " + username));
    if (db_->changes() == 0) return Status(ErrorCode::kNotFound, "no user '" + username + "'");
  }
  TB_RETURN_IF_ERROR(endSessionsOf(username));
  TB_RETURN_IF_ERROR(clearFailures(username));
  return tx.commit();
}

Status StaffDirectory::disable(const std::string& username) {
  TB_ASSIGN_OR_RETURN(Transaction tx, db_->begin());
  {
    TB_ASSIGN_OR_RETURN(Statement update, db_->prepare("UPDATE staff_users SET disabled = 1 WHERE username = ?1"));
    update.bind(1, username);
    TB_RETURN_IF_ERROR(update.run().withContext("disabling " + username));
    if (db_->changes() == 0) return Status(ErrorCode::kNotFound, "no user '" + username + "'");
  }
  TB_RETURN_IF_ERROR(endSessionsOf(username));
  return tx.commit();
}

Result<std::vector<UserInfo>> StaffDirectory::listUsers() {
  TB_ASSIGN_OR_RETURN(Statement select, db_->prepare("SELECT username, display_name, roles, disabled, created_ms "
                                                     "FROM staff_users ORDER BY username"));
  std::vector<UserInfo> users;
  while (true) {
    TB_ASSIGN_OR_RETURN(bool row, select.step());
    if (!row) break;
    UserInfo info;
    info.username = select.columnText(0);
    info.display_name = select.columnText(1);
    auto roles = parseRoles(select.columnText(2));
    if (!roles) return Status(ErrorCode::kCorrupt, "stored roles of " + info.username + ": " + roles.status().message());
    info.roles = std::move(roles).value();
    info.disabled = select.columnInt64(3) != 0;
    info.created_ms = select.columnInt64(4);
    users.push_back(std::move(info));
  }
  return users;
}

Status StaffDirectory::endSessionsOf(const std::string& username) {
  TB_ASSIGN_OR_RETURN(Statement del, db_->prepare("DELETE FROM staff_sessions WHERE username = ?1"));
  del.bind(1, username);
  return del.run().withContext("ending the sessions of " + username);
}

// ---------------------------------------------------------------------------------------------
// Login and sessions

Status StaffDirectory::recordFailure(const std::string& username, TimeMs now) {
  {
    TB_ASSIGN_OR_RETURN(Statement purge, db_->prepare("DELETE FROM staff_login_failures "
                                                      "WHERE last_failure_ms < ?1 AND locked_until_ms <= ?2"));
    purge.bind(1, now - kFailureMemoryMs).bind(2, now);
    TB_RETURN_IF_ERROR(purge.run());
  }
  int failures = 0;
  {
    TB_ASSIGN_OR_RETURN(Statement select,
                        db_->prepare("SELECT failures FROM staff_login_failures WHERE username = ?1"));
    select.bind(1, username);
    TB_ASSIGN_OR_RETURN(bool row, select.step());
    if (row) failures = static_cast<int>(select.columnInt64(0));
  }
  ++failures;
  TimeMs locked_until = 0;
  if (failures >= options_.max_failed_logins) {
    // Locked: the count starts again from zero once the lock has passed.
    locked_until = now + options_.lockout_ms;
    failures = 0;
  }
  TB_ASSIGN_OR_RETURN(Statement upsert,
                      db_->prepare("INSERT INTO staff_login_failures(username, failures, last_failure_ms, "
                                   "locked_until_ms) VALUES(?1, ?2, ?3, ?4) ON CONFLICT(username) DO UPDATE SET "
                                   "failures = excluded.failures, last_failure_ms = excluded.last_failure_ms, "
                                   "locked_until_ms = excluded.locked_until_ms"));
  upsert.bind(1, username).bind(2, static_cast<int64_t>(failures)).bind(3, now).bind(4, locked_until);
  return upsert.run().withContext("counting a failed login");
}

Status StaffDirectory::clearFailures(const std::string& username) {
  TB_ASSIGN_OR_RETURN(Statement del, db_->prepare("DELETE FROM staff_login_failures WHERE username = ?1"));
  del.bind(1, username);
  return del.run();
}

Result<Session> StaffDirectory::login(const std::string& username, const std::string& password, TimeMs now) {
  // A malformed username cannot exist; saying "wrong" reveals nothing and stores nothing.
  if (!checkUsername(username).isOk()) return unauthorized(kWrongCredentials);
  {
    TB_ASSIGN_OR_RETURN(Statement lock,
                        db_->prepare("SELECT locked_until_ms FROM staff_login_failures WHERE username = ?1"));
    lock.bind(1, username);
    TB_ASSIGN_OR_RETURN(bool row, lock.step());
    if (row && lock.columnInt64(0) > now) {
      const int64_t minutes = (lock.columnInt64(0) - now + 59'999) / 60'000;
      return Status(ErrorCode::kResourceExhausted, "too many failed logins for '" + username + "'; try again in " +
                                                       std::to_string(minutes) + " min or ask an administrator");
    }
  }
  std::string hash;
  bool exists = false, disabled = false;
  {
    TB_ASSIGN_OR_RETURN(Statement user, db_->prepare("SELECT password_hash, disabled FROM staff_users "
                                                     "WHERE username = ?1"));
    user.bind(1, username);
    TB_ASSIGN_OR_RETURN(exists, user.step());
    if (exists) {
      hash = user.columnText(0);
      disabled = user.columnInt64(1) != 0;
    }
  }
  bool password_ok = false;
  if (password.size() <= kMaxPasswordBytes) {
    const std::string& against = exists ? hash : dummyHash();
    password_ok = crypto_pwhash_str_verify(against.c_str(), password.data(), password.size()) == 0;
  }
  if (!exists || !password_ok) {
    TB_RETURN_IF_ERROR(recordFailure(username, now));
    return unauthorized(kWrongCredentials);
  }
  TB_RETURN_IF_ERROR(clearFailures(username));
  if (disabled) return unauthorized("the account '" + username + "' is disabled; ask an administrator");

  std::array<unsigned char, kTokenBytes> raw{};
  randombytes_buf(raw.data(), raw.size());
  Session session;
  session.token = hexEncode(raw.data(), raw.size());
  session.username = username;
  session.expires_ms = now + options_.session_lifetime_ms;
  {
    // Expired sessions are swept here, on the path that adds rows, so the table stays small.
    TB_ASSIGN_OR_RETURN(Statement sweep, db_->prepare("DELETE FROM staff_sessions WHERE expires_ms <= ?1"));
    sweep.bind(1, now);
    TB_RETURN_IF_ERROR(sweep.run());
  }
  TB_ASSIGN_OR_RETURN(Statement insert, db_->prepare("INSERT INTO staff_sessions(token_hash, username, created_ms, "
                                                     "expires_ms) VALUES(?1, ?2, ?3, ?4)"));
  insert.bind(1, tokenHash(session.token)).bind(2, username).bind(3, now).bind(4, session.expires_ms);
  TB_RETURN_IF_ERROR(insert.run().withContext("starting a session for " + username));
  return session;
}

Result<Principal> StaffDirectory::authenticate(const std::string& token, TimeMs now) {
  if (!looksLikeToken(token)) return unauthorized("unknown token, log in again");
  const Bytes hash = tokenHash(token);
  TB_ASSIGN_OR_RETURN(Statement select,
                      db_->prepare("SELECT s.expires_ms, u.username, u.display_name, u.roles, u.disabled "
                                   "FROM staff_sessions s JOIN staff_users u ON u.username = s.username "
                                   "WHERE s.token_hash = ?1"));
  select.bind(1, hash);
  TB_ASSIGN_OR_RETURN(bool row, select.step());
  if (!row) return unauthorized("unknown token, log in again");
  if (select.columnInt64(0) <= now) {
    select.reset();
    TB_ASSIGN_OR_RETURN(Statement del, db_->prepare("DELETE FROM staff_sessions WHERE token_hash = ?1"));
    del.bind(1, hash);
    TB_RETURN_IF_ERROR(del.run());
    return unauthorized("session expired, log in again");
  }
  // disable() ends sessions in the same transaction; this only guards against a hand-edited file.
  if (select.columnInt64(4) != 0) return unauthorized("the account is disabled; ask an administrator");
  Principal principal;
  principal.username = select.columnText(1);
  principal.display_name = select.columnText(2);
  auto roles = parseRoles(select.columnText(3));
  if (!roles) return Status(ErrorCode::kCorrupt, "stored roles of " + principal.username + ": " + roles.status().message());
  principal.roles = std::move(roles).value();
  return principal;
}

Status StaffDirectory::logout(const std::string& token) {
  if (!looksLikeToken(token)) return Status::ok();
  TB_ASSIGN_OR_RETURN(Statement del, db_->prepare("DELETE FROM staff_sessions WHERE token_hash = ?1"));
  del.bind(1, tokenHash(token));
  return del.run().withContext("logging out");
}

}  // namespace tongban
