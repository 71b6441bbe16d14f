// Errors as values. Every fallible call across a module boundary returns a Status or a
// Result<T>. The message is written for the person who has to act on it (an operator or a
// clerk), not for the programmer: say what was wrong and, where possible, what to do.
#pragma once

#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace tongban {

// Stable codes: tests and the wire (error replies) depend on these names. Append only.
enum class ErrorCode {
  kOk = 0,
  kInvalidArgument,   // input from a person or config is malformed
  kNotFound,
  kAlreadyExists,
  kFailedPrecondition,  // the request is well formed but not allowed in the current state
  kIo,                // file system or database error
  kCorrupt,           // stored data does not decode
  kUnavailable,       // a link or server is down; retry later
  kTimeout,           // no answer within the time budget
  kNoResponders,      // the subject has no subscriber right now
  kResourceExhausted, // a configured limit was hit (queue depth, batch size)
  kInternal,
  // Envelope / certificate verification, in the order the checks run.
  kOversize,          // message larger than the configured cap (checked before anything else)
  kBadSignature,      // signature over the raw bytes does not verify
  kMalformed,         // does not decode within the traversal/nesting limits, or fields invalid
  kUntrustedChain,    // certificate chain does not lead to the configured root
  kCertificateExpired,// a certificate in the chain is not valid at the message time
  kUnauthorized,      // signer's level/subtree does not authorise this kind or target
  kReplay,            // (signer, seq) already accepted
  kRollback,          // seq older than the last accepted from that signer, never seen
  kRevoked,           // a key in the chain was revoked before the message time
  kPermissionDenied,  // the caller is known but lacks the role for this action
  // Dated further ahead of the receiver's clock than the allowed skew (verification check 3).
  // Not a property of the message but of two clocks: retry once the receiver's clock has caught
  // up (transient for the outbox and the feed), never a refusal for good.
  kFutureDated,
};

const char* errorCodeName(ErrorCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(ErrorCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status ok() { return Status(); }

  bool isOk() const { return code_ == ErrorCode::kOk; }
  ErrorCode code() const { return code_; }
  const std::string& message() const { return message_; }

  // "UNAUTHORIZED: village 440604001001 may not sign for 440604001002"
  std::string toString() const;

  // Returns a copy with context prepended: "loading key dir /x: " + message.
  Status withContext(const std::string& context) const;

 private:
  ErrorCode code_ = ErrorCode::kOk;
  std::string message_;
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}            // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {      // NOLINT: implicit by design
    assert(!std::get<Status>(v_).isOk() && "Result built from an OK status has no value");
  }

  bool isOk() const { return std::holds_alternative<T>(v_); }
  explicit operator bool() const { return isOk(); }

  // On a temporary Result the value is moved out, not referenced: `for (auto& x : f().value())`
  // and `const auto& v = *f();` would otherwise point into a Result destroyed at the semicolon.
  const T& value() const& { assert(isOk()); return std::get<T>(v_); }
  T& value() & { assert(isOk()); return std::get<T>(v_); }
  T value() && { assert(isOk()); return std::get<T>(std::move(v_)); }
  const T& operator*() const& { return value(); }
  T& operator*() & { return value(); }
  T operator*() && { return std::move(*this).value(); }
  const T* operator->() const { return &value(); }
  T* operator->() { return &value(); }

  // OK status when a value is held. On a named Result this is a reference into it (so
  // `const std::string& m = r.status().message();` stays valid as long as `r` does); on a
  // temporary it is a copy, so nothing can be left pointing into a Result that is gone.
  const Status& status() const& {
    static const Status kOkStatus;
    return isOk() ? kOkStatus : std::get<Status>(v_);
  }
  Status status() && { return isOk() ? Status::ok() : std::get<Status>(std::move(v_)); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace tongban

// Early return helpers, for the common "propagate the error" case.
#define TB_RETURN_IF_ERROR(expr)                  \
  do {                                            \
    ::tongban::Status tb_status_ = (expr);        \
    if (!tb_status_.isOk()) return tb_status_;    \
  } while (0)

#define TB_CONCAT_INNER(a, b) a##b
#define TB_CONCAT(a, b) TB_CONCAT_INNER(a, b)
#define TB_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                             \
  if (!tmp.isOk()) return tmp.status();          \
  lhs = std::move(tmp).value()
#define TB_ASSIGN_OR_RETURN(lhs, expr) \
  TB_ASSIGN_OR_RETURN_IMPL(TB_CONCAT(tb_result_, __LINE__), lhs, expr)
