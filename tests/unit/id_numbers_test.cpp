#include "node/applicants/id_numbers.h"

#include <gtest/gtest.h>

#include <string>

namespace tongban {
namespace {

// Valid examples. 11010519491231002X and 91350100M000100Y43 are widely published samples; both
// validate. The others were computed with a separate script (Python, from the standards'
// formulas), not with the code under test, so a wrong weight here cannot hide a wrong weight
// there.
constexpr const char* kPublishedResidentId = "11010519491231002X";  // check digit X
constexpr const char* kLeapDayResidentId = "440604200002291232";    // born 2000-02-29
constexpr const char* kCheckZeroResidentId = "440605198506151010";  // check digit 0
constexpr const char* kPublishedCreditCode = "91350100M000100Y43";
constexpr const char* kLetterCheckCreditCode = "91440604MA4UE7L28L";  // check character L
constexpr const char* kZeroCheckCreditCode = "91440604MA4G000010";    // 31 - 0 = 31, written 0
constexpr const char* kSocialOrgCreditCode = "52440604MJL123456E";    // authority 5 (civil affairs)
// Passes both checksums: an 18-digit string that is a valid ID number and a valid credit code.
constexpr const char* kValidAsBoth = "440604199001010579";

std::string residentError(std::string_view text, std::optional<CivilDate> today = std::nullopt) {
  auto r = validateResidentId(text, today);
  if (r.isOk()) return "";
  EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument);
  return r.status().message();
}

std::string creditError(std::string_view text) {
  auto r = validateCreditCode(text);
  if (r.isOk()) return "";
  EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument);
  return r.status().message();
}

// ---- resident identity card numbers ----

TEST(ResidentId, PublishedAndComputedExamplesValidate) {
  for (const char* id : {kPublishedResidentId, kLeapDayResidentId, kCheckZeroResidentId, kValidAsBoth}) {
    auto r = validateResidentId(id);
    ASSERT_TRUE(r.isOk()) << id << ": " << r.status().message();
    EXPECT_EQ(*r, id);
  }
}

TEST(ResidentId, LowercaseXIsNormalisedToUppercase) {
  auto r = validateResidentId("11010519491231002x");
  ASSERT_TRUE(r.isOk()) << r.status().message();
  EXPECT_EQ(*r, "11010519491231002X");
}

TEST(ResidentId, WrongLengthSaysHowManyCharacters) {
  EXPECT_EQ(residentError("11010519491231002"), "resident ID number has 17 characters; expected 18");
  EXPECT_EQ(residentError("11010519491231002X1"), "resident ID number has 19 characters; expected 18");
  EXPECT_EQ(residentError(""), "resident ID number has 0 characters; expected 18");
  EXPECT_EQ(residentError("110105491231002"),
            "resident ID number has 15 characters; expected 18 (a 15-digit first-generation card number is no "
            "longer valid)");
}

TEST(ResidentId, WrongCheckDigitSaysWhatItShouldBe) {
  EXPECT_EQ(residentError("110105194912310023"), "resident ID number: check digit is 3 but should be X");
  EXPECT_EQ(residentError("44060420000229123X"), "resident ID number: check digit is X but should be 2");
  // One digit mistyped in the sequence number: the check digit catches it.
  EXPECT_EQ(residentError("110105194912310030"), "resident ID number: check digit is 0 but should be 8");
}

TEST(ResidentId, ImpossibleBirthDateIsNamed) {
  EXPECT_EQ(residentError("110105199013401234"), "resident ID number: birth date 19901340 is not a date");
  EXPECT_EQ(residentError("440604199002301234"), "resident ID number: birth date 19900230 is not a date");
  EXPECT_EQ(residentError("440604200102291234"), "resident ID number: birth date 20010229 is not a date");
  EXPECT_EQ(residentError("440604189912311234"), "resident ID number: birth date 18991231 is before 1900");
}

TEST(ResidentId, BirthDateAfterTodayIsRejectedOnlyWhenTodayIsGiven) {
  // 440604203001011239: born 2030-01-01, correct check digit.
  EXPECT_EQ(residentError("440604203001011239"), "");
  EXPECT_EQ(residentError("440604203001011239", CivilDate{2026, 10, 8}),
            "resident ID number: birth date 20300101 is in the future");
  EXPECT_EQ(residentError(kLeapDayResidentId, CivilDate{2000, 2, 29}), "");  // born today
}

TEST(ResidentId, NonDigitsAreNamedByPosition) {
  EXPECT_EQ(residentError("1101A519491231002X"),
            "resident ID number: character 5 is 'A'; the first 17 must be digits");
  EXPECT_EQ(residentError("11010519491231002Y"), "resident ID number: character 18 is 'Y'; expected a digit or X");
  // X is only allowed as the check digit.
  EXPECT_EQ(residentError("X10105194912310021"),
            "resident ID number: character 1 is 'X'; the first 17 must be digits");
}

TEST(ResidentId, FullWidthDigitsAreReportedAsSuch) {
  // "１１０１０５１９４９１２３１００２Ｘ": 18 full-width characters from a Chinese input method.
  const std::string full_width =
      "\xEF\xBC\x91\xEF\xBC\x91\xEF\xBC\x90\xEF\xBC\x91\xEF\xBC\x90\xEF\xBC\x95\xEF\xBC\x91\xEF\xBC\x99"
      "\xEF\xBC\x94\xEF\xBC\x99\xEF\xBC\x91\xEF\xBC\x92\xEF\xBC\x93\xEF\xBC\x91\xEF\xBC\x90\xEF\xBC\x90"
      "\xEF\xBC\x92\xEF\xBC\xB8";
  EXPECT_EQ(residentError(full_width),
            "resident ID number: character 1 is not an ASCII character (full-width input? switch the input "
            "method to half-width)");
  // One full-width digit in the middle, the rest ASCII: counted as one character, named by place.
  EXPECT_EQ(residentError("1101051949123\xEF\xBC\x91" "002X"),
            "resident ID number: character 14 is not an ASCII character (full-width input? switch the input "
            "method to half-width)");
}

// ---- unified social credit codes ----

TEST(CreditCode, PublishedAndComputedExamplesValidate) {
  for (const char* code : {kPublishedCreditCode, kLetterCheckCreditCode, kZeroCheckCreditCode, kSocialOrgCreditCode,
                           kValidAsBoth}) {
    auto r = validateCreditCode(code);
    ASSERT_TRUE(r.isOk()) << code << ": " << r.status().message();
    EXPECT_EQ(*r, code);
  }
}

TEST(CreditCode, LowercaseIsNormalisedToUppercase) {
  auto r = validateCreditCode("91350100m000100y43");
  ASSERT_TRUE(r.isOk()) << r.status().message();
  EXPECT_EQ(*r, kPublishedCreditCode);
}

TEST(CreditCode, WrongLengthSaysHowManyCharacters) {
  EXPECT_EQ(creditError("91350100M000100Y4"), "unified social credit code has 17 characters; expected 18");
  EXPECT_EQ(creditError("91350100M000100Y433"), "unified social credit code has 19 characters; expected 18");
}

TEST(CreditCode, WrongCheckCharacterSaysWhatItShouldBe) {
  EXPECT_EQ(creditError("91350100M000100Y44"), "unified social credit code: check character is 4 but should be 3");
  EXPECT_EQ(creditError("91440604MA4UE7L28M"), "unified social credit code: check character is M but should be L");
  // Two adjacent characters swapped (a common slip): caught by the position weights.
  EXPECT_EQ(creditError("91350100M001000Y43"), "unified social credit code: check character is 3 but should be X");
}

TEST(CreditCode, ForbiddenLettersAreNamed) {
  for (char c : {'I', 'O', 'S', 'V', 'Z'}) {
    std::string code = kPublishedCreditCode;
    code[8] = c;  // where the M was
    EXPECT_EQ(creditError(code), std::string("unified social credit code: character 9 is '") + c +
                                     "', which the code does not use (no I, O, S, V, Z)");
  }
  // Lower case is named as typed.
  EXPECT_EQ(creditError("91350100o000100Y43"),
            "unified social credit code: character 9 is 'o', which the code does not use (no I, O, S, V, Z)");
  EXPECT_EQ(creditError("91350100-000100Y43"),
            "unified social credit code: character 9 is '-'; expected a digit or a letter");
}

// ---- choosing between the two ----

TEST(ApplicantId, PersonNumberIsRecognisedAsAPerson) {
  auto r = parseApplicantId("11010519491231002x");
  ASSERT_TRUE(r.isOk()) << r.status().message();
  EXPECT_EQ(r->kind, ApplicantKind::kPerson);
  EXPECT_EQ(r->number, kPublishedResidentId);
}

TEST(ApplicantId, CreditCodeIsRecognisedAsAnOrganisation) {
  auto r = parseApplicantId("91350100m000100y43");
  ASSERT_TRUE(r.isOk()) << r.status().message();
  EXPECT_EQ(r->kind, ApplicantKind::kOrganisation);
  EXPECT_EQ(r->number, kPublishedCreditCode);
  EXPECT_STREQ(applicantKindName(r->kind), "organisation");
}

TEST(ApplicantId, ANumberValidAsBothIsTakenAsAPerson) {
  auto r = parseApplicantId(kValidAsBoth);
  ASSERT_TRUE(r.isOk()) << r.status().message();
  EXPECT_EQ(r->kind, ApplicantKind::kPerson);
}

TEST(ApplicantId, NeitherGivesBothReasons) {
  auto r = parseApplicantId("110105194912310023");
  ASSERT_FALSE(r.isOk());
  EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(r.status().message(),
            "neither a valid resident ID number nor a valid unified social credit code: "
            "resident ID number: check digit is 3 but should be X; "
            "unified social credit code: check character is 3 but should be B");
}

TEST(ApplicantId, BirthDateInTheFutureFallsThroughToTheCreditCodeCheck) {
  auto r = parseApplicantId("440604203001011239", CivilDate{2026, 10, 8});
  ASSERT_FALSE(r.isOk());
  EXPECT_NE(r.status().message().find("birth date 20300101 is in the future"), std::string::npos);
}

}  // namespace
}  // namespace tongban
