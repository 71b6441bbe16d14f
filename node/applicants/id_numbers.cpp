#include "node/applicants/id_numbers.h"

#include <array>

namespace tongban {
namespace {

constexpr size_t kLength = 18;

Status invalidId(std::string message) { return Status(ErrorCode::kInvalidArgument, std::move(message)); }

// Characters as a person counts them: UTF-8 continuation bytes do not start a character, so
// 17 full-width digits are reported as 17 characters, not 51.
size_t countCharacters(std::string_view text) {
  size_t n = 0;
  for (unsigned char c : text) {
    if ((c & 0xC0) != 0x80) ++n;
  }
  return n;
}

// The 1-based character position of the first non-ASCII character, or 0 if all are ASCII.
size_t firstNonAscii(std::string_view text) {
  size_t pos = 0;
  for (unsigned char c : text) {
    if ((c & 0xC0) != 0x80) ++pos;
    if (c >= 0x80) return pos;
  }
  return 0;
}

// Length and ASCII checks shared by both kinds; `what` names the kind in the message.
Status checkShape(std::string_view text, const std::string& what) {
  const size_t chars = countCharacters(text);
  if (chars != kLength) {
    std::string msg = what + " has " + std::to_string(chars) + " character" + (chars == 1 ? "" : "s") +
                      "; expected 18";
    // First-generation cards (15 digits, no check digit) stopped being valid in 2013.
    if (chars == 15 && what == "resident ID number") msg += " (a 15-digit first-generation card number is no longer valid)";
    return invalidId(msg);
  }
  if (size_t pos = firstNonAscii(text)) {
    return invalidId(what + ": character " + std::to_string(pos) +
                     " is not an ASCII character (full-width input? switch the input method to half-width)");
  }
  return Status::ok();
}

std::string quoted(char c) { return std::string("'") + c + "'"; }

char toUpper(char c) { return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c; }

// GB 11643-1999: weight of position i (0-based) is 2^(17-i) mod 11.
constexpr std::array<int, 17> kResidentWeights = {7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2};

// GB 32100-2015: the 31 characters in value order, and weight 3^i mod 31 for position i.
constexpr std::string_view kCreditAlphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY";
constexpr std::array<int, 17> kCreditWeights = {1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28};

int creditValue(char c) {
  auto pos = kCreditAlphabet.find(c);
  return pos == std::string_view::npos ? -1 : static_cast<int>(pos);
}

}  // namespace

Result<std::string> validateResidentId(std::string_view text, std::optional<CivilDate> today) {
  const std::string what = "resident ID number";
  TB_RETURN_IF_ERROR(checkShape(text, what));
  std::string id(text);
  for (size_t i = 0; i < 17; ++i) {
    if (id[i] < '0' || id[i] > '9') {
      return invalidId(what + ": character " + std::to_string(i + 1) + " is " + quoted(id[i]) +
                       "; the first 17 must be digits");
    }
  }
  id[17] = toUpper(id[17]);
  if ((id[17] < '0' || id[17] > '9') && id[17] != 'X') {
    return invalidId(what + ": character 18 is " + quoted(text[17]) + "; expected a digit or X");
  }

  // Birth date before the check digit: a slip in those eight digits is reported where it is.
  const std::string birth = id.substr(6, 8);
  auto date = CivilDate::parse(birth.substr(0, 4) + "-" + birth.substr(4, 2) + "-" + birth.substr(6, 2));
  if (!date) return invalidId(what + ": birth date " + birth + " is not a date");
  if (date->year < 1900) return invalidId(what + ": birth date " + birth + " is before 1900");
  if (today && *today < *date) return invalidId(what + ": birth date " + birth + " is in the future");

  int sum = 0;
  for (size_t i = 0; i < 17; ++i) sum += (id[i] - '0') * kResidentWeights[i];
  const int check = (12 - sum % 11) % 11;
  const char expected = check == 10 ? 'X' : static_cast<char>('0' + check);
  if (id[17] != expected) {
    return invalidId(what + ": check digit is " + std::string(1, id[17]) + " but should be " + expected);
  }
  return id;
}

Result<std::string> validateCreditCode(std::string_view text) {
  const std::string what = "unified social credit code";
  TB_RETURN_IF_ERROR(checkShape(text, what));
  std::string code(text);
  int sum = 0;
  for (size_t i = 0; i < kLength; ++i) {
    code[i] = toUpper(code[i]);
    const int v = creditValue(code[i]);
    if (v < 0) {
      const bool forbidden_letter = code[i] == 'I' || code[i] == 'O' || code[i] == 'S' || code[i] == 'V' || code[i] == 'Z';
      return invalidId(what + ": character " + std::to_string(i + 1) + " is " + quoted(text[i]) +
                       (forbidden_letter ? ", which the code does not use (no I, O, S, V, Z)"
                                         : "; expected a digit or a letter"));
    }
    if (i < 17) sum += v * kCreditWeights[i];
  }
  const int check = (31 - sum % 31) % 31;
  const char expected = kCreditAlphabet[check];
  if (code[17] != expected) {
    return invalidId(what + ": check character is " + std::string(1, code[17]) + " but should be " + expected);
  }
  return code;
}

const char* applicantKindName(ApplicantKind kind) {
  switch (kind) {
    case ApplicantKind::kPerson: return "person";
    case ApplicantKind::kOrganisation: return "organisation";
  }
  return "unknown";
}

Result<ApplicantId> parseApplicantId(std::string_view text, std::optional<CivilDate> today) {
  auto person = validateResidentId(text, today);
  if (person) return ApplicantId{ApplicantKind::kPerson, std::move(person).value()};
  auto organisation = validateCreditCode(text);
  if (organisation) return ApplicantId{ApplicantKind::kOrganisation, std::move(organisation).value()};
  return invalidId("neither a valid resident ID number nor a valid unified social credit code: " +
                   person.status().message() + "; " + organisation.status().message());
}

}  // namespace tongban
