// Civil dates in China Standard Time and the working-day calendar that time limits count in.
//
// Committed time limits (承诺时限) are stated in working days: "自受理之日起N个工作日内办结",
// N working days counted from acceptance, where the day of acceptance itself does not count.
// Saturdays and Sundays are rest days unless the State Council names them make-up working days
// (调休); the listed public holidays are rest days. Both lists change every year and are
// published late in the previous year, so they are data (data/calendar-YYYY.json), not code.
//
// All dates are civil dates in China Standard Time, UTC+8 all year (China has no daylight
// saving). A node never asks the OS for its time zone: a node whose host runs in UTC must still
// put a case accepted at 23:30 UTC on the next day's date.
//
// Everything here is pure: no clock is read, no file is touched except by loadFile().
#pragma once

#include <compare>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>

#include "federation/transport/clock.h"
#include "federation/util/status.h"

namespace tongban {

// China Standard Time is UTC+8 with no daylight saving.
inline constexpr DurationMs kCstOffsetMs = 8LL * 60 * 60 * 1000;

// A date on the proleptic Gregorian calendar, as a person in China would write it.
// A plain value: build one with parse() or fromTimeMs() when it comes from outside; the
// arithmetic below assumes isValid().
struct CivilDate {
  int year = 1970;
  int month = 1;  // 1..12
  int day = 1;    // 1..daysInMonth

  // Accepts exactly "YYYY-MM-DD" (ASCII digits, year 0001..9999). kInvalidArgument names the
  // text and says whether the layout or the date is wrong ("2026-02-29 is not a date: February
  // 2026 has 28 days").
  static Result<CivilDate> parse(std::string_view text);

  // The CST date containing the instant `t`.
  static CivilDate fromTimeMs(TimeMs t);

  // Month and day exist (leap years included) and 1 <= year <= 9999.
  bool isValid() const;

  // "2026-10-08"; zero-padded, the form parse() accepts.
  std::string toString() const;

  CivilDate next() const;  // the following day
  CivilDate prev() const;  // the preceding day

  // ISO weekday: 1 = Monday ... 6 = Saturday, 7 = Sunday.
  int weekday() const;
  bool isWeekend() const { return weekday() >= 6; }

  // Days since 1970-01-01 (negative before), so that date differences are plain subtraction.
  int64_t daysSinceEpoch() const;
  static CivilDate fromDaysSinceEpoch(int64_t days);

  // Lexicographic on (year, month, day), i.e. chronological for valid dates.
  friend auto operator<=>(const CivilDate&, const CivilDate&) = default;
};

// 00:00:00.000 CST of `d`: the first millisecond of the day.
TimeMs startOfDayMs(CivilDate d);
// The instant the day ends: 00:00 CST of the following day, an exclusive bound. An instant t
// lies in `d` iff startOfDayMs(d) <= t < endOfDayMs(d); fromTimeMs(endOfDayMs(d)) is d.next().
TimeMs endOfDayMs(CivilDate d);

// Which days are working days, from one or more yearly calendar files.
//
// File format (data/calendar-2026.json):
//   {"year": 2026,
//    "holidays": [{"name": "国庆节 National Day", "dates": ["2026-10-01", ...]}, ...],
//    "makeup_working_days": ["2026-10-10", ...]}
// Other keys ("source", "note") are ignored.
//
// A date in a year no file covers follows plain weekend rules (Monday to Friday work). That is
// wrong around every holiday, so callers that compute deadlines should check covers() and warn
// the operator to install next year's file.
class WorkingCalendar {
 public:
  // No year loaded: plain weekend rules everywhere.
  WorkingCalendar() = default;

  // kIo / kNotFound when the file cannot be read; otherwise as fromJson(), with the path named.
  static Result<WorkingCalendar> loadFile(const std::string& path);

  // kInvalidArgument, naming the offending date, when: the JSON or its shape is wrong; a date
  // is not a date; a date lies outside the file's "year"; a date is listed twice; a date is both
  // a holiday and a make-up working day; a make-up working day is not a Saturday or Sunday
  // (a weekday is a working day already, so such an entry is a typo for another date).
  static Result<WorkingCalendar> fromJson(std::string_view json_text);

  // Adds the years of `other` (several yearly files make one calendar). kAlreadyExists if a
  // year is in both; then nothing is changed.
  Status merge(const WorkingCalendar& other);

  // Is the year of `d` loaded from a file? If not, isWorkingDay() used weekend rules only.
  bool covers(CivilDate d) const { return years_.count(d.year) > 0; }
  const std::set<int>& years() const { return years_; }

  // Make-up days work, listed holidays rest, otherwise Monday to Friday work.
  bool isWorkingDay(CivilDate d) const;

  // The n-th working day strictly after `from` (the day `from` itself never counts, whether or
  // not it is a working day); n = 0 returns `from`. A negative n counts backwards: the |n|-th
  // working day strictly before `from`.
  //   addWorkingDays(2026-09-30, 5) == 2026-10-13 (National Day week rests, 10-10 is a make-up day).
  CivilDate addWorkingDays(CivilDate from, int n) const;

  // The number of working days d with a < d <= b; if b < a, minus the number with b < d <= a.
  // For a working day b after a, addWorkingDays(a, workingDaysBetween(a, b)) == b.
  int workingDaysBetween(CivilDate a, CivilDate b) const;

  // The committed deadline of an item accepted at `accepted_at` with a time limit of
  // `working_days` (自受理之日起N个工作日): the end (exclusive, see endOfDayMs) of the
  // `working_days`-th working day after the CST day of acceptance. The acceptance day does not
  // count, so acceptance on a Saturday or a holiday starts counting on the next working day.
  // 0 working days (an immediate item, 即办件) gives the end of the acceptance day itself.
  // A case concluded at t is on time iff t < deadlineMs(...).
  TimeMs deadlineMs(TimeMs accepted_at, int working_days) const;

 private:
  std::set<int> years_;
  std::set<int64_t> holidays_;      // days since epoch, rest days
  std::set<int64_t> makeup_days_;   // days since epoch, working weekends
};

}  // namespace tongban
