// Applicant identifiers: the resident identity card number of a person and the unified social
// credit code of an organisation, checked at the window before anything is stored under them.
//
// Both are 18 characters with a check character, so a typing slip is caught here rather than
// creating a second applicant record ("一表登记、信息共享" depends on one applicant, one number).
// Messages say what is wrong without repeating the number: ID numbers are personal data and
// error messages end up in logs.
//
// Only ASCII input is accepted. A full-width digit typed with a Chinese input method is
// reported as such ("switch the input method to half-width"), not converted: what the clerk
// sees and what is stored must be the same characters.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "federation/util/status.h"
#include "node/calendar/calendar.h"

namespace tongban {

// Resident identity card number, GB 11643-1999 (公民身份号码):
//   6 digits address code, 8 digits birth date YYYYMMDD, 3 digits sequence, 1 check character.
// Check: sum of digit[i] * (2^(17-i) mod 11) over the first 17 digits, i.e. weights
// 7 9 10 5 8 4 2 1 6 3 7 9 10 5 8 4 2; check = (12 - sum mod 11) mod 11, 10 written 'X'.
//
// Returns the number with a lowercase 'x' made 'X', or kInvalidArgument saying what is wrong:
//   "resident ID number has 17 characters; expected 18"
//   "resident ID number: character 5 is 'A'; the first 17 must be digits"
//   "resident ID number: birth date 19901340 is not a date"
//   "resident ID number: check digit is 3 but should be X"
// The birth date must be a real date in 1900 or later and, if `today` is given, not after it.
// The address code is not checked against the division table (codes are retired and reissued;
// an old card keeps its old code).
Result<std::string> validateResidentId(std::string_view text, std::optional<CivilDate> today = std::nullopt);

// Unified social credit code, GB 32100-2015 (统一社会信用代码):
//   1 registration authority, 1 organisation type, 6 address code, 9 organisation code,
//   1 check character, all from the 31-character alphabet 0-9 A-H J-N P-R T U W-Y (no I, O, S,
//   V, Z). Check: sum of value[i] * (3^i mod 31), weights 1 3 9 27 19 26 16 17 20 29 25 13 8 24
//   10 30 28; check = 31 - sum mod 31, 31 written '0'.
//
// Returns the code in upper case, or kInvalidArgument:
//   "unified social credit code has 17 characters; expected 18"
//   "unified social credit code: character 3 is 'I', which the code does not use (no I, O, S, V, Z)"
//   "unified social credit code: check character is 3 but should be 4"
// The authority and type characters are not checked against a list: the standard's list has
// grown since 2015 (e.g. 3 justice, 8 trade unions, N agriculture besides 1, 5, 9, Y), and
// refusing a real organisation at the window is worse than accepting an unknown authority.
Result<std::string> validateCreditCode(std::string_view text);

enum class ApplicantKind { kPerson, kOrganisation };

const char* applicantKindName(ApplicantKind kind);  // "person", "organisation"

struct ApplicantId {
  ApplicantKind kind = ApplicantKind::kPerson;
  std::string number;  // normalised (upper case)
};

// A resident ID number if it validates as one, else a credit code if it validates as one, else
// kInvalidArgument with both reasons. The order matters: an all-digit string can pass both
// checksums (440604199001010579 does), and is then taken as a person's number. A caller that
// knows the applicant is an organisation should call validateCreditCode() directly.
Result<ApplicantId> parseApplicantId(std::string_view text, std::optional<CivilDate> today = std::nullopt);

}  // namespace tongban
