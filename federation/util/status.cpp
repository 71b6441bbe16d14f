#include "federation/util/status.h"

namespace tongban {

const char* errorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::kOk: return "OK";
    case ErrorCode::kInvalidArgument: return "INVALID_ARGUMENT";
    case ErrorCode::kNotFound: return "NOT_FOUND";
    case ErrorCode::kAlreadyExists: return "ALREADY_EXISTS";
    case ErrorCode::kFailedPrecondition: return "FAILED_PRECONDITION";
    case ErrorCode::kIo: return "IO";
    case ErrorCode::kCorrupt: return "CORRUPT";
    case ErrorCode::kUnavailable: return "UNAVAILABLE";
    case ErrorCode::kTimeout: return "TIMEOUT";
    case ErrorCode::kNoResponders: return "NO_RESPONDERS";
    case ErrorCode::kResourceExhausted: return "RESOURCE_EXHAUSTED";
    case ErrorCode::kInternal: return "INTERNAL";
    case ErrorCode::kOversize: return "OVERSIZE";
    case ErrorCode::kBadSignature: return "BAD_SIGNATURE";
    case ErrorCode::kMalformed: return "MALFORMED";
    case ErrorCode::kUntrustedChain: return "UNTRUSTED_CHAIN";
    case ErrorCode::kCertificateExpired: return "CERTIFICATE_EXPIRED";
    case ErrorCode::kUnauthorized: return "UNAUTHORIZED";
    case ErrorCode::kReplay: return "REPLAY";
    case ErrorCode::kRollback: return "ROLLBACK";
    case ErrorCode::kRevoked: return "REVOKED";
    case ErrorCode::kPermissionDenied: return "PERMISSION_DENIED";
    case ErrorCode::kFutureDated: return "FUTURE_DATED";
  }
  return "UNKNOWN";
}

std::string Status::toString() const {
  if (isOk()) return "OK";
  return std::string(errorCodeName(code_)) + ": " + message_;
}

Status Status::withContext(const std::string& context) const {
  if (isOk()) return *this;
  return Status(code_, context + ": " + message_);
}

}  // namespace tongban
