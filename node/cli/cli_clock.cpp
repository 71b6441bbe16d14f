#include "node/cli/cli_clock.h"

#include <chrono>
#include <ctime>

namespace tongban::cli {

TimeMs wallClockMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string formatTime(TimeMs ms) {
  if (ms == 0) return "never";
  // China Standard Time, like every day and time the nodes show (cases, locations, figures).
  std::time_t secs = static_cast<std::time_t>((ms + 8LL * 3600 * 1000) / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S CST", &tm);
  return buf;
}

std::string formatAgo(TimeMs then, TimeMs now) {
  if (then == 0) return "never";
  const TimeMs d = (now - then) / 1000;
  if (d < 0) return "in the future (clock skew)";
  if (d < 120) return std::to_string(d) + " s ago";
  if (d < 7200) return std::to_string(d / 60) + " min ago";
  if (d < 172800) return std::to_string(d / 3600) + " h ago";
  return std::to_string(d / 86400) + " days ago";
}

}  // namespace tongban::cli
