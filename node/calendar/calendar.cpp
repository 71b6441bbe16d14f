#include "node/calendar/calendar.h"

#include <cstdio>

#include <nlohmann/json.hpp>

#include "federation/util/files.h"

namespace tongban {
namespace {

constexpr int64_t kDayMs = 24LL * 60 * 60 * 1000;

bool isLeapYear(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

int daysInMonth(int y, int m) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && isLeapYear(y) ? 29 : kDays[m - 1];
}

const char* monthName(int m) {
  static constexpr const char* kNames[] = {"January", "February", "March",     "April",   "May",      "June",
                                           "July",    "August",   "September", "October", "November", "December"};
  return kNames[m - 1];
}

// Floor division: the day containing a negative instant is the earlier one, not the one
// towards zero.
int64_t floorDiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

// Howard Hinnant's days_from_civil / civil_from_days: exact for the whole proleptic Gregorian
// calendar, no tables, no time-zone database.
int64_t daysFromCivil(int y, int m, int d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;                                   // [0, 399]
  const int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;  // [0, 365]
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;          // [0, 146096]
  return era * 146097 + doe - 719468;
}

CivilDate civilFromDays(int64_t z) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  const int d = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  const int m = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  const int y = static_cast<int>(yoe + era * 400 + (m <= 2));
  return CivilDate{y, m, d};
}

Status invalid(std::string message) { return Status(ErrorCode::kInvalidArgument, std::move(message)); }

}  // namespace

// ---- CivilDate ----

Result<CivilDate> CivilDate::parse(std::string_view text) {
  auto layout_error = [&] {
    return invalid("\"" + std::string(text) + "\" is not a date in the form YYYY-MM-DD");
  };
  if (text.size() != 10 || text[4] != '-' || text[7] != '-') return layout_error();
  auto number = [&](size_t pos, size_t len, int* out) {
    int v = 0;
    for (size_t i = pos; i < pos + len; ++i) {
      if (text[i] < '0' || text[i] > '9') return false;
      v = v * 10 + (text[i] - '0');
    }
    *out = v;
    return true;
  };
  CivilDate d;
  if (!number(0, 4, &d.year) || !number(5, 2, &d.month) || !number(8, 2, &d.day)) return layout_error();
  if (d.year < 1) return invalid(std::string(text) + " is not a date: there is no year 0000");
  if (d.month < 1 || d.month > 12) {
    return invalid(std::string(text) + " is not a date: month " + std::to_string(d.month) + " does not exist");
  }
  if (d.day < 1 || d.day > daysInMonth(d.year, d.month)) {
    return invalid(std::string(text) + " is not a date: " + monthName(d.month) + " " + std::to_string(d.year) +
                   " has " + std::to_string(daysInMonth(d.year, d.month)) + " days");
  }
  return d;
}

CivilDate CivilDate::fromTimeMs(TimeMs t) { return civilFromDays(floorDiv(t + kCstOffsetMs, kDayMs)); }

bool CivilDate::isValid() const {
  return year >= 1 && year <= 9999 && month >= 1 && month <= 12 && day >= 1 && day <= daysInMonth(year, month);
}

std::string CivilDate::toString() const {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02d", year, month, day);
  return buf;
}

CivilDate CivilDate::next() const { return civilFromDays(daysSinceEpoch() + 1); }
CivilDate CivilDate::prev() const { return civilFromDays(daysSinceEpoch() - 1); }

int CivilDate::weekday() const {
  // 1970-01-01 was a Thursday (ISO 4).
  const int64_t r = ((daysSinceEpoch() % 7) + 7) % 7;  // 0 = Thursday
  return static_cast<int>((r + 3) % 7) + 1;
}

int64_t CivilDate::daysSinceEpoch() const { return daysFromCivil(year, month, day); }
CivilDate CivilDate::fromDaysSinceEpoch(int64_t days) { return civilFromDays(days); }

TimeMs startOfDayMs(CivilDate d) { return d.daysSinceEpoch() * kDayMs - kCstOffsetMs; }
TimeMs endOfDayMs(CivilDate d) { return startOfDayMs(d) + kDayMs; }

// ---- WorkingCalendar ----

Result<WorkingCalendar> WorkingCalendar::loadFile(const std::string& path) {
  auto bytes = readFileBytes(path);
  if (!bytes) return bytes.status().withContext("calendar file " + path);
  auto cal = fromJson(toString(*bytes));
  if (!cal) return cal.status().withContext("calendar file " + path);
  return cal;
}

Result<WorkingCalendar> WorkingCalendar::fromJson(std::string_view json_text) {
  nlohmann::json doc = nlohmann::json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return invalid("not valid JSON");
  if (!doc.is_object()) return invalid("expected a JSON object with \"year\", \"holidays\", \"makeup_working_days\"");
  // Both lists are required: a misspelt key must not silently turn a year's make-up Saturdays
  // into rest days.
  if (!doc.contains("year") || !doc["year"].is_number_integer()) return invalid("\"year\" must be an integer");
  if (!doc.contains("holidays") || !doc["holidays"].is_array()) return invalid("\"holidays\" must be an array");
  if (!doc.contains("makeup_working_days") || !doc["makeup_working_days"].is_array()) {
    return invalid("\"makeup_working_days\" must be an array");
  }
  const int64_t year = doc["year"].get<int64_t>();
  if (year < 1 || year > 9999) return invalid("\"year\" " + std::to_string(year) + " is out of range");

  WorkingCalendar cal;
  cal.years_.insert(static_cast<int>(year));

  // Parses one listed date and checks it belongs to this file. `what` says which list.
  auto take = [&](const nlohmann::json& j, const std::string& what) -> Result<CivilDate> {
    if (!j.is_string()) return invalid(what + ": expected a date string, got " + j.dump());
    auto d = CivilDate::parse(j.get<std::string>());
    if (!d) return d.status().withContext(what);
    if (d->year != year) {
      return invalid(what + " " + d->toString() + " is outside the file's year " + std::to_string(year));
    }
    return d;
  };

  size_t index = 0;
  for (const auto& h : doc["holidays"]) {
    const std::string where = "holidays[" + std::to_string(index++) + "]";
    if (!h.is_object() || !h.contains("dates") || !h["dates"].is_array()) {
      return invalid(where + " must be an object with a \"dates\" array");
    }
    std::string what = "holiday";
    if (h.contains("name") && h["name"].is_string()) what += " " + h["name"].get<std::string>();
    for (const auto& j : h["dates"]) {
      auto d = take(j, what);
      if (!d) return d.status();
      if (!cal.holidays_.insert(d->daysSinceEpoch()).second) {
        return invalid("holiday date " + d->toString() + " is listed twice");
      }
    }
  }
  for (const auto& j : doc["makeup_working_days"]) {
    auto d = take(j, "make-up working day");
    if (!d) return d.status();
    if (cal.holidays_.count(d->daysSinceEpoch())) {
      return invalid(d->toString() + " is listed both as a holiday and as a make-up working day");
    }
    if (!d->isWeekend()) {
      return invalid("make-up working day " + d->toString() +
                     " is not a Saturday or Sunday (it is a working day anyway); check the date");
    }
    if (!cal.makeup_days_.insert(d->daysSinceEpoch()).second) {
      return invalid("make-up working day " + d->toString() + " is listed twice");
    }
  }
  return cal;
}

Status WorkingCalendar::merge(const WorkingCalendar& other) {
  for (int y : other.years_) {
    if (years_.count(y)) {
      return Status(ErrorCode::kAlreadyExists, "the calendar for " + std::to_string(y) + " is loaded twice");
    }
  }
  years_.insert(other.years_.begin(), other.years_.end());
  holidays_.insert(other.holidays_.begin(), other.holidays_.end());
  makeup_days_.insert(other.makeup_days_.begin(), other.makeup_days_.end());
  return Status::ok();
}

bool WorkingCalendar::isWorkingDay(CivilDate d) const {
  const int64_t day = d.daysSinceEpoch();
  if (makeup_days_.count(day)) return true;
  if (holidays_.count(day)) return false;
  return !d.isWeekend();
}

CivilDate WorkingCalendar::addWorkingDays(CivilDate from, int n) const {
  // Terminates: every week outside the listed holidays has five working days.
  int64_t day = from.daysSinceEpoch();
  const int step = n >= 0 ? 1 : -1;
  for (int left = n >= 0 ? n : -n; left > 0;) {
    day += step;
    if (isWorkingDay(CivilDate::fromDaysSinceEpoch(day))) --left;
  }
  return CivilDate::fromDaysSinceEpoch(day);
}

int WorkingCalendar::workingDaysBetween(CivilDate a, CivilDate b) const {
  if (b < a) return -workingDaysBetween(b, a);
  int count = 0;
  const int64_t last = b.daysSinceEpoch();
  for (int64_t day = a.daysSinceEpoch() + 1; day <= last; ++day) {
    if (isWorkingDay(CivilDate::fromDaysSinceEpoch(day))) ++count;
  }
  return count;
}

TimeMs WorkingCalendar::deadlineMs(TimeMs accepted_at, int working_days) const {
  return endOfDayMs(addWorkingDays(CivilDate::fromTimeMs(accepted_at), working_days));
}

}  // namespace tongban
