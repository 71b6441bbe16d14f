// Wall time for the command-line tools (key validity periods, "seen 3 s ago"). Nodes never use
// this: they get their time from the injected Clock.
#pragma once

#include <string>

#include "federation/transport/clock.h"

namespace tongban::cli {

TimeMs wallClockMs();
// "2026-11-23 17:00:00 CST" (China Standard Time); "never" for 0.
std::string formatTime(TimeMs ms);
// "3 s ago", "5 min ago", "2 h ago" relative to `now`; "never" for 0.
std::string formatAgo(TimeMs then, TimeMs now);

}  // namespace tongban::cli
