#include "node/calendar/calendar.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>

namespace tongban {
namespace {

CivilDate date(const char* s) { return CivilDate::parse(s).value(); }

const WorkingCalendar& calendar2026() {
  static const WorkingCalendar cal =
      WorkingCalendar::loadFile(std::string(TONGBAN_SOURCE_DIR) + "/data/calendar-2026.json").value();
  return cal;
}

// Instants below are written out as epoch milliseconds (computed independently of this code,
// from the UTC time in the comment) so that the CST conversion is checked, not restated.
constexpr TimeMs k20261007T1600Z = 1791388800000;  // = 2026-10-08 00:00 CST
constexpr TimeMs k20261008T0200Z = 1791424800000;  // = 2026-10-08 10:00 CST
constexpr TimeMs k20261008T1600Z = 1791475200000;  // = 2026-10-09 00:00 CST
constexpr TimeMs k20261008T2330Z = 1791502200000;  // = 2026-10-09 07:30 CST
constexpr TimeMs k20261010T1600Z = 1791648000000;  // = 2026-10-11 00:00 CST
constexpr TimeMs k20260930T0200Z = 1790733600000;  // = 2026-09-30 10:00 CST
constexpr TimeMs k20261013T1600Z = 1791907200000;  // = 2026-10-14 00:00 CST

// ---- CivilDate ----

TEST(CivilDate, ParsesAndPrintsTheIsoForm) {
  CivilDate d = date("2026-10-08");
  EXPECT_EQ(d.year, 2026);
  EXPECT_EQ(d.month, 10);
  EXPECT_EQ(d.day, 8);
  EXPECT_EQ(d.toString(), "2026-10-08");
  EXPECT_EQ((CivilDate{987, 1, 5}).toString(), "0987-01-05");
  EXPECT_TRUE(date("2024-02-29").isValid());  // leap year
}

TEST(CivilDate, RejectsLayoutErrorsAndImpossibleDatesNamingTheText) {
  for (const char* bad : {"2026/10/08", "26-10-08", "2026-10-8", "2026-1O-08", "", "2026-10-08 "}) {
    auto r = CivilDate::parse(bad);
    ASSERT_FALSE(r.isOk()) << bad;
    EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find("YYYY-MM-DD"), std::string::npos) << r.status().message();
  }
  auto feb = CivilDate::parse("2026-02-29");
  ASSERT_FALSE(feb.isOk());
  EXPECT_EQ(feb.status().message(), "2026-02-29 is not a date: February 2026 has 28 days");
  auto month = CivilDate::parse("2026-13-01");
  ASSERT_FALSE(month.isOk());
  EXPECT_EQ(month.status().message(), "2026-13-01 is not a date: month 13 does not exist");
  EXPECT_FALSE(CivilDate::parse("2026-04-31").isOk());
  EXPECT_FALSE(CivilDate::parse("1900-02-29").isOk());  // century, not leap
  EXPECT_TRUE(CivilDate::parse("2000-02-29").isOk());   // 400-year, leap
  EXPECT_FALSE(CivilDate::parse("0000-01-01").isOk());
}

TEST(CivilDate, NextAndPrevCrossMonthsYearsAndLeapDays) {
  EXPECT_EQ(date("2024-02-28").next(), date("2024-02-29"));
  EXPECT_EQ(date("2024-02-29").next(), date("2024-03-01"));
  EXPECT_EQ(date("2026-02-28").next(), date("2026-03-01"));
  EXPECT_EQ(date("2026-12-31").next(), date("2027-01-01"));
  EXPECT_EQ(date("2027-01-01").prev(), date("2026-12-31"));
  EXPECT_EQ(date("2026-03-01").prev(), date("2026-02-28"));
}

TEST(CivilDate, ComparesChronologically) {
  EXPECT_LT(date("2026-09-30"), date("2026-10-01"));
  EXPECT_LT(date("2025-12-31"), date("2026-01-01"));
  EXPECT_GT(date("2026-10-10"), date("2026-10-09"));
  EXPECT_EQ(date("2026-10-10"), (CivilDate{2026, 10, 10}));
}

TEST(CivilDate, WeekdayIsIso) {
  EXPECT_EQ(date("1970-01-01").weekday(), 4);  // Thursday
  EXPECT_EQ(date("2000-01-01").weekday(), 6);  // Saturday
  EXPECT_EQ(date("2026-10-01").weekday(), 4);  // Thursday
  EXPECT_EQ(date("2026-10-10").weekday(), 6);  // Saturday
  EXPECT_EQ(date("2026-01-04").weekday(), 7);  // Sunday
  EXPECT_EQ(date("2026-10-12").weekday(), 1);  // Monday
  EXPECT_EQ(date("1969-12-28").weekday(), 7);  // before the epoch: Sunday
}

// std::chrono's calendar (C++20) is an independent implementation of the same arithmetic.
TEST(CivilDate, DayNumbersAgreeWithStdChronoFrom1900To2100) {
  using namespace std::chrono;
  CivilDate d{1900, 1, 1};
  for (sys_days sd = sys_days{year{1900} / January / 1}; sd < sys_days{year{2101} / January / 1}; sd += days{1}) {
    year_month_day ymd{sd};
    ASSERT_EQ(d, (CivilDate{int(ymd.year()), int(unsigned(ymd.month())), int(unsigned(ymd.day()))}));
    ASSERT_EQ(d.daysSinceEpoch(), sd.time_since_epoch().count());
    ASSERT_EQ(CivilDate::fromDaysSinceEpoch(d.daysSinceEpoch()), d);
    ASSERT_EQ(d.weekday(), int(weekday{sd}.iso_encoding())) << d.toString();
    ASSERT_TRUE(d.isValid());
    d = d.next();
  }
}

TEST(CivilDate, FromTimeMsUsesChinaStandardTime) {
  EXPECT_EQ(CivilDate::fromTimeMs(k20261008T0200Z), date("2026-10-08"));
  // 23:30 UTC is 07:30 the next morning in Beijing.
  EXPECT_EQ(CivilDate::fromTimeMs(k20261008T2330Z), date("2026-10-09"));
  // The CST day boundary is 16:00 UTC.
  EXPECT_EQ(CivilDate::fromTimeMs(k20261008T1600Z - 1), date("2026-10-08"));
  EXPECT_EQ(CivilDate::fromTimeMs(k20261008T1600Z), date("2026-10-09"));
  // Before the epoch the day is floored, not truncated towards zero.
  EXPECT_EQ(CivilDate::fromTimeMs(0), date("1970-01-01"));
  EXPECT_EQ(CivilDate::fromTimeMs(-kCstOffsetMs), date("1970-01-01"));
  EXPECT_EQ(CivilDate::fromTimeMs(-kCstOffsetMs - 1), date("1969-12-31"));
}

TEST(CivilDate, StartAndEndOfDayAreCstMidnights) {
  EXPECT_EQ(startOfDayMs(date("2026-10-08")), k20261007T1600Z);
  EXPECT_EQ(endOfDayMs(date("2026-10-08")), k20261008T1600Z);
  EXPECT_EQ(CivilDate::fromTimeMs(startOfDayMs(date("2026-10-08"))), date("2026-10-08"));
  EXPECT_EQ(CivilDate::fromTimeMs(endOfDayMs(date("2026-10-08")) - 1), date("2026-10-08"));
  EXPECT_EQ(CivilDate::fromTimeMs(endOfDayMs(date("2026-10-08"))), date("2026-10-09"));
}

// ---- WorkingCalendar: the 2026 file ----

TEST(WorkingCalendar, The2026FileLoadsAndCoversOnly2026) {
  const auto& cal = calendar2026();
  EXPECT_TRUE(cal.covers(date("2026-01-01")));
  EXPECT_TRUE(cal.covers(date("2026-12-31")));
  EXPECT_FALSE(cal.covers(date("2025-12-31")));
  EXPECT_FALSE(cal.covers(date("2027-01-01")));
  EXPECT_EQ(cal.years(), std::set<int>{2026});
}

TEST(WorkingCalendar, NormalWeekdayWorksAndWeekendRests) {
  const auto& cal = calendar2026();
  EXPECT_TRUE(cal.isWorkingDay(date("2026-03-10")));   // Tuesday
  EXPECT_FALSE(cal.isWorkingDay(date("2026-03-14")));  // Saturday
  EXPECT_FALSE(cal.isWorkingDay(date("2026-03-15")));  // Sunday
}

TEST(WorkingCalendar, MakeUpWeekendDaysAreWorkingDays) {
  const auto& cal = calendar2026();
  EXPECT_TRUE(cal.isWorkingDay(date("2026-10-10")));  // Saturday, make-up for National Day
  EXPECT_TRUE(cal.isWorkingDay(date("2026-01-04")));  // Sunday, make-up for New Year
  EXPECT_FALSE(cal.isWorkingDay(date("2026-10-11")));  // the Sunday after is an ordinary rest day
}

TEST(WorkingCalendar, NationalDayWeekRestsEvenOnWeekdays) {
  const auto& cal = calendar2026();
  for (CivilDate d = date("2026-10-01"); d <= date("2026-10-07"); d = d.next()) {
    EXPECT_FALSE(cal.isWorkingDay(d)) << d.toString();
  }
  EXPECT_TRUE(cal.isWorkingDay(date("2026-09-30")));
  EXPECT_TRUE(cal.isWorkingDay(date("2026-10-08")));
}

TEST(WorkingCalendar, SpringFestivalNineDaysBetweenTwoMakeUpSaturdays) {
  const auto& cal = calendar2026();
  // 2026-02-14 (Sat) is worked, 02-15 (Sun) .. 02-23 (Mon) rest, 02-24 (Tue) work resumes.
  EXPECT_TRUE(cal.isWorkingDay(date("2026-02-14")));
  for (CivilDate d = date("2026-02-15"); d <= date("2026-02-23"); d = d.next()) {
    EXPECT_FALSE(cal.isWorkingDay(d)) << d.toString();
  }
  EXPECT_TRUE(cal.isWorkingDay(date("2026-02-24")));
  EXPECT_TRUE(cal.isWorkingDay(date("2026-02-28")));  // Saturday, second make-up day
  EXPECT_EQ(cal.addWorkingDays(date("2026-02-13"), 1), date("2026-02-14"));
  EXPECT_EQ(cal.addWorkingDays(date("2026-02-14"), 1), date("2026-02-24"));
  EXPECT_EQ(cal.workingDaysBetween(date("2026-02-14"), date("2026-02-24")), 1);
}

TEST(WorkingCalendar, Year2026Has248WorkingDays) {
  // 365 days - 104 weekend days - 13 statutory holiday days (since 2025) = 248: the listed
  // holidays falling on weekdays (19) exceed the make-up days (6) by exactly 13.
  EXPECT_EQ(calendar2026().workingDaysBetween(date("2025-12-31"), date("2026-12-31")), 248);
}

TEST(WorkingCalendar, FiveWorkingDaysAfterSeptember30LandOnOctober13) {
  // Checked by hand against data/calendar-2026.json: 10-01..10-07 are holidays; then
  // 10-08 Thu (1), 10-09 Fri (2), 10-10 Sat make-up (3), 10-11 Sun rest, 10-12 Mon (4),
  // 10-13 Tue (5).
  const auto& cal = calendar2026();
  EXPECT_EQ(cal.addWorkingDays(date("2026-09-30"), 1), date("2026-10-08"));
  EXPECT_EQ(cal.addWorkingDays(date("2026-09-30"), 3), date("2026-10-10"));
  EXPECT_EQ(cal.addWorkingDays(date("2026-09-30"), 4), date("2026-10-12"));
  EXPECT_EQ(cal.addWorkingDays(date("2026-09-30"), 5), date("2026-10-13"));
}

TEST(WorkingCalendar, AddingZeroWorkingDaysReturnsTheDayItselfEvenOnARestDay) {
  const auto& cal = calendar2026();
  EXPECT_EQ(cal.addWorkingDays(date("2026-10-03"), 0), date("2026-10-03"));
  EXPECT_EQ(cal.addWorkingDays(date("2026-09-30"), 0), date("2026-09-30"));
}

TEST(WorkingCalendar, CountingStartsAfterTheStartDayWhetherOrNotItIsWorked) {
  const auto& cal = calendar2026();
  // From a holiday, the first working day after it is day 1.
  EXPECT_EQ(cal.addWorkingDays(date("2026-10-03"), 1), date("2026-10-08"));
  // From a make-up Saturday, that Saturday does not count either.
  EXPECT_EQ(cal.addWorkingDays(date("2026-10-10"), 1), date("2026-10-12"));
}

TEST(WorkingCalendar, NegativeCountsGoBackwards) {
  const auto& cal = calendar2026();
  EXPECT_EQ(cal.addWorkingDays(date("2026-10-13"), -5), date("2026-09-30"));
  EXPECT_EQ(cal.addWorkingDays(date("2026-10-08"), -1), date("2026-09-30"));
}

TEST(WorkingCalendar, WorkingDaysBetweenCountsTheHalfOpenIntervalAndIsAntisymmetric) {
  const auto& cal = calendar2026();
  EXPECT_EQ(cal.workingDaysBetween(date("2026-09-30"), date("2026-10-13")), 5);
  EXPECT_EQ(cal.workingDaysBetween(date("2026-10-13"), date("2026-09-30")), -5);
  EXPECT_EQ(cal.workingDaysBetween(date("2026-10-08"), date("2026-10-08")), 0);
  EXPECT_EQ(cal.workingDaysBetween(date("2026-09-30"), date("2026-10-07")), 0);  // all holidays
  EXPECT_EQ(cal.workingDaysBetween(date("2026-10-07"), date("2026-09-30")), 0);
  // a < d <= b: the end counts, the start does not.
  EXPECT_EQ(cal.workingDaysBetween(date("2026-10-07"), date("2026-10-08")), 1);
  EXPECT_EQ(cal.workingDaysBetween(date("2026-10-08"), date("2026-10-09")), 1);
  EXPECT_EQ(cal.workingDaysBetween(date("2026-10-09"), date("2026-10-08")), -1);
  // Across a year boundary into an uncovered year, plain weekend rules apply after 12-31.
  EXPECT_EQ(cal.workingDaysBetween(date("2026-12-31"), date("2027-01-08")), 6);
}

TEST(WorkingCalendar, AddThenCountRoundTripsOverTheWholeYear) {
  const auto& cal = calendar2026();
  for (CivilDate from = date("2026-01-01"); from.year == 2026; from = from.next()) {
    for (int n : {0, 1, 3, 5, 20}) {
      CivilDate to = cal.addWorkingDays(from, n);
      ASSERT_EQ(cal.workingDaysBetween(from, to), n) << from.toString() << " + " << n;
      ASSERT_LE(cal.addWorkingDays(to, -n), from) << from.toString() << " + " << n;
      if (n > 0) {
        ASSERT_TRUE(cal.isWorkingDay(to)) << from.toString() << " + " << n;
      }
    }
  }
}

TEST(WorkingCalendar, UncoveredYearsFollowPlainWeekendRules) {
  const auto& cal = calendar2026();
  // 2027-01-01 is a Friday and in reality New Year's Day, but no 2027 file is loaded: the
  // calendar cannot know, and covers() is how callers find out.
  EXPECT_FALSE(cal.covers(date("2027-01-01")));
  EXPECT_TRUE(cal.isWorkingDay(date("2027-01-01")));
  EXPECT_FALSE(cal.isWorkingDay(date("2027-01-02")));

  WorkingCalendar empty;
  EXPECT_FALSE(empty.covers(date("2026-10-01")));
  EXPECT_TRUE(empty.isWorkingDay(date("2026-10-01")));  // a Thursday, with no file
}

// ---- deadlines ----

TEST(WorkingCalendar, ImmediateItemIsDueAtTheEndOfTheCstAcceptanceDay) {
  const auto& cal = calendar2026();
  EXPECT_EQ(cal.deadlineMs(k20261008T0200Z, 0), k20261008T1600Z);
  // Accepted at 23:30 UTC on 10-08, which is 07:30 on Friday 10-09 in Beijing: due at the end of
  // 10-09 CST, not at the end of 10-08.
  EXPECT_EQ(cal.deadlineMs(k20261008T2330Z, 0), endOfDayMs(date("2026-10-09")));
  EXPECT_GT(cal.deadlineMs(k20261008T2330Z, 0), k20261008T2330Z);
}

TEST(WorkingCalendar, CommittedItemIsDueAtTheEndOfTheNthWorkingDayAfterAcceptance) {
  const auto& cal = calendar2026();
  // Accepted Wednesday 09-30, 5 working days: due at the end of Tuesday 10-13 CST.
  EXPECT_EQ(cal.deadlineMs(k20260930T0200Z, 5), k20261013T1600Z);
  // The 23:30 UTC case again: the acceptance day is Friday 10-09 CST, so one working day later
  // is the make-up Saturday 10-10. Counting from the UTC date (10-08) would give 10-09.
  EXPECT_EQ(cal.deadlineMs(k20261008T2330Z, 1), k20261010T1600Z);
}

// ---- merging and malformed files ----

constexpr const char* k2027Sample = R"({
  "year": 2027,
  "holidays": [{"name": "元旦 New Year", "dates": ["2027-01-01"]}],
  "makeup_working_days": []
})";

TEST(WorkingCalendar, MergeAddsAnotherYear) {
  WorkingCalendar cal = calendar2026();
  auto y2027 = WorkingCalendar::fromJson(k2027Sample);
  ASSERT_TRUE(y2027.isOk()) << y2027.status().toString();
  ASSERT_TRUE(cal.merge(*y2027).isOk());
  EXPECT_TRUE(cal.covers(date("2027-01-01")));
  EXPECT_FALSE(cal.isWorkingDay(date("2027-01-01")));
  EXPECT_FALSE(cal.isWorkingDay(date("2026-10-01")));  // 2026 still there
  // 2026-12-31 Thu; 2027-01-01 Fri is now a holiday, so the next working day is Monday 01-04.
  EXPECT_EQ(cal.addWorkingDays(date("2026-12-31"), 1), date("2027-01-04"));
}

TEST(WorkingCalendar, MergingTheSameYearTwiceIsRefusedAndChangesNothing) {
  WorkingCalendar cal = calendar2026();
  auto again = WorkingCalendar::fromJson(R"({"year": 2026, "holidays": [{"dates": ["2026-03-10"]}],
                                            "makeup_working_days": []})");
  ASSERT_TRUE(again.isOk());
  Status s = cal.merge(*again);
  EXPECT_EQ(s.code(), ErrorCode::kAlreadyExists);
  EXPECT_NE(s.message().find("2026"), std::string::npos);
  EXPECT_TRUE(cal.isWorkingDay(date("2026-03-10")));
}

// Returns the error message of fromJson(text), or "" if it loaded.
std::string loadError(const std::string& text, ErrorCode* code = nullptr) {
  auto r = WorkingCalendar::fromJson(text);
  if (r.isOk()) return "";
  if (code) *code = r.status().code();
  return r.status().message();
}

std::string fileWith(const std::string& holidays, const std::string& makeup) {
  return R"({"year": 2026, "holidays": [{"name": "test", "dates": [)" + holidays +
         R"(]}], "makeup_working_days": [)" + makeup + "]}";
}

TEST(WorkingCalendar, InvalidDateIsRejectedWithTheDateNamed) {
  ErrorCode code = ErrorCode::kOk;
  std::string msg = loadError(fileWith(R"("2026-02-30")", ""), &code);
  EXPECT_EQ(code, ErrorCode::kInvalidArgument);
  EXPECT_NE(msg.find("2026-02-30 is not a date"), std::string::npos) << msg;
  msg = loadError(fileWith(R"("2026-10-01")", R"("2026/10/10")"));
  EXPECT_NE(msg.find("\"2026/10/10\""), std::string::npos) << msg;
  msg = loadError(fileWith("20261001", ""));
  EXPECT_NE(msg.find("20261001"), std::string::npos) << msg;
}

TEST(WorkingCalendar, DateBothHolidayAndMakeUpDayIsRejectedWithTheDateNamed) {
  ErrorCode code = ErrorCode::kOk;
  std::string msg = loadError(fileWith(R"("2026-10-10")", R"("2026-10-10")"), &code);
  EXPECT_EQ(code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(msg, "2026-10-10 is listed both as a holiday and as a make-up working day");
}

TEST(WorkingCalendar, DateOutsideTheFilesYearIsRejectedWithTheDateNamed) {
  std::string msg = loadError(fileWith(R"("2026-12-31", "2027-01-01")", ""));
  EXPECT_NE(msg.find("2027-01-01 is outside the file's year 2026"), std::string::npos) << msg;
  msg = loadError(fileWith("", R"("2025-12-28")"));
  EXPECT_NE(msg.find("2025-12-28 is outside the file's year 2026"), std::string::npos) << msg;
}

TEST(WorkingCalendar, MakeUpDayOnAWeekdayIsRejectedAsATypo) {
  std::string msg = loadError(fileWith("", R"("2026-10-09")"));  // a Friday
  EXPECT_NE(msg.find("2026-10-09 is not a Saturday or Sunday"), std::string::npos) << msg;
}

TEST(WorkingCalendar, DuplicateDatesAreRejected) {
  EXPECT_NE(loadError(fileWith(R"("2026-10-06", "2026-10-06")", "")).find("2026-10-06 is listed twice"),
            std::string::npos);
  EXPECT_NE(loadError(fileWith("", R"("2026-10-10", "2026-10-10")")).find("2026-10-10 is listed twice"),
            std::string::npos);
}

TEST(WorkingCalendar, WrongShapeIsRejected) {
  EXPECT_EQ(loadError("{not json"), "not valid JSON");
  EXPECT_NE(loadError(R"({"year": "2026", "holidays": [], "makeup_working_days": []})").find("\"year\""),
            std::string::npos);
  // A misspelt make-up list must not silently turn make-up Saturdays into rest days.
  EXPECT_NE(loadError(R"({"year": 2026, "holidays": [], "makeup_days": ["2026-10-10"]})")
                .find("\"makeup_working_days\" must be an array"),
            std::string::npos);
  EXPECT_NE(loadError(R"({"year": 2026, "holidays": ["2026-10-01"], "makeup_working_days": []})")
                .find("holidays[0]"),
            std::string::npos);
  EXPECT_EQ(loadError(R"({"year": 2026, "holidays": [], "makeup_working_days": []})"), "");
}

TEST(WorkingCalendar, LoadFileNamesAMissingFile) {
  auto r = WorkingCalendar::loadFile("/nonexistent/calendar-2031.json");
  ASSERT_FALSE(r.isOk());
  EXPECT_EQ(r.status().code(), ErrorCode::kNotFound);
  EXPECT_NE(r.status().message().find("/nonexistent/calendar-2031.json"), std::string::npos);
}

}  // namespace
}  // namespace tongban
