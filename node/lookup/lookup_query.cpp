// What a lookup asks and what it can answer: names, validating what a person typed, the subject
// and message kinds. The service that answers is lookup.cpp.
#include "node/lookup/lookup.h"

#include "node/applicants/id_numbers.h"

namespace tongban {

const char* lookupQuestionName(LookupQuestion q) {
  switch (q) {
    case LookupQuestion::kHolder: return "holder";
    case LookupQuestion::kMaterial: return "material";
    case LookupQuestion::kCredential: return "credential";
  }
  return "unknown";
}

const char* lookupOutcomeName(LookupOutcome o) {
  switch (o) {
    case LookupOutcome::kFound: return "found";
    case LookupOutcome::kNotFound: return "not_found";
    case LookupOutcome::kCouldNotAsk: return "could_not_ask";
  }
  return "unknown";
}

Result<LookupQuery> makeLookupQuery(LookupQuestion question, std::string_view key) {
  LookupQuery q;
  q.question = question;
  switch (question) {
    case LookupQuestion::kHolder: {
      auto id = parseApplicantId(key);
      if (!id) return id.status().withContext("holder");
      q.key = id->number;
      return q;
    }
    case LookupQuestion::kMaterial: {
      if (key.size() != 64) {
        return Status(ErrorCode::kInvalidArgument, "a material is named by its SHA-256: 64 hex digits, not " +
                                                       std::to_string(key.size()) + " characters");
      }
      std::string hash(key);
      for (char& c : hash) {
        if (c >= 'A' && c <= 'F') c = static_cast<char>(c - 'A' + 'a');
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
          return Status(ErrorCode::kInvalidArgument, "a material hash has only hex digits 0-9 a-f");
        }
      }
      q.key = std::move(hash);
      return q;
    }
    case LookupQuestion::kCredential: {
      if (key.empty() || key.size() > kMaxCredentialNumberLength) {
        return Status(ErrorCode::kInvalidArgument, "a credential number has 1 to " +
                                                       std::to_string(kMaxCredentialNumberLength) + " characters");
      }
      for (char c : key) {
        const bool ok = (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '-' ||
                        c == '_';
        if (!ok) return Status(ErrorCode::kInvalidArgument, "a credential number has only A-Z a-z 0-9 - _");
      }
      q.key = std::string(key);
      return q;
    }
  }
  return Status(ErrorCode::kInvalidArgument, "unknown lookup question");
}

std::string lookupSubject(const DivisionCode& node) { return "tb." + node.str() + ".lookup"; }

void registerLookupKinds(KindRegistry& registry) {
  registry.add(kLookupRequestKind, {"lookup-request", Direction::kUpToParent, /*durable=*/false});
  registry.add(kLookupAnswerKind, {"lookup-answer", Direction::kStatement, /*durable=*/false});
  registry.add(kLookupReplyKind, {"lookup-reply", Direction::kReply, /*durable=*/false});
}

}  // namespace tongban
