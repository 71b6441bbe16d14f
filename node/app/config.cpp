#include "node/app/config.h"

#include <algorithm>

#include <fstream>
#include <set>
#include <sstream>

#include <toml++/toml.h>

namespace tongban {

namespace {
Status bad(const std::string& origin, const std::string& key, const std::string& what) {
  return Status(ErrorCode::kInvalidArgument, origin + ": key '" + key + "' " + what);
}

Result<std::string> requiredString(const toml::table& t, const std::string& origin, const char* key) {
  auto node = t[key];
  if (!node) return bad(origin, key, "is missing");
  auto v = node.value<std::string>();
  if (!v || v->empty()) return bad(origin, key, "must be a non-empty string");
  return *v;
}

Status optionalDuration(const toml::table& t, const std::string& origin, const char* key, DurationMs min,
                        DurationMs max, DurationMs* out) {
  auto node = t[key];
  if (!node) return Status::ok();
  auto v = node.value<int64_t>();
  if (!v || *v < min || *v > max) {
    return bad(origin, key, "must be an integer between " + std::to_string(min) + " and " + std::to_string(max));
  }
  *out = *v;
  return Status::ok();
}
}  // namespace

Result<NodeConfig> parseNodeConfig(const std::string& toml_text, const std::string& origin) {
  // Debian's toml++ is built with exceptions; they stay inside this function.
  toml::table t;
  try {
    t = toml::parse(toml_text, origin);
  } catch (const toml::parse_error& err) {
    return Status(ErrorCode::kInvalidArgument, origin + ":" + std::to_string(err.source().begin.line) + ": " +
                                                   std::string(err.description()));
  }
  // A misspelt key would silently fall back to a default: refuse unknown keys instead.
  static const std::set<std::string> kKnownKeys = {
      "division", "name", "data_dir", "key_dir", "root_cert", "nats_urls", "synchronous", "heartbeat_interval_ms",
      "request_timeout_ms", "retry_initial_ms", "retry_max_ms", "log_level", "revocations",
      "http_listen", "calendar_files", "catalogue_file", "yellow_working_days", "session_lifetime_s", "supervision_interval_ms", "light_scan_interval_ms",
      "clock_offset_days", "catalogue_poll_ms", "feed_poll_ms", "fetch_cache_max_bytes", "expected_children"};
  for (const auto& [key, value] : t) {
    if (!kKnownKeys.count(std::string(key.str()))) {
      return bad(origin, std::string(key.str()), "is not a known setting (see docs/operations.md)");
    }
  }
  TB_ASSIGN_OR_RETURN(std::string division_text, requiredString(t, origin, "division"));
  auto division = DivisionCode::parse(division_text);
  if (!division) return division.status().withContext(origin + ": key 'division'");
  NodeConfig c;
  c.division = *division;
  TB_ASSIGN_OR_RETURN(c.name, requiredString(t, origin, "name"));
  TB_ASSIGN_OR_RETURN(c.data_dir, requiredString(t, origin, "data_dir"));
  TB_ASSIGN_OR_RETURN(c.key_dir, requiredString(t, origin, "key_dir"));
  c.root_cert = t["root_cert"].value_or(c.key_dir + "/root.cert");

  if (auto* urls = t["nats_urls"].as_array()) {
    for (const auto& u : *urls) {
      auto s = u.value<std::string>();
      if (!s || s->rfind("nats://", 0) != 0) return bad(origin, "nats_urls", "must list URLs like nats://127.0.0.1:4222");
      c.nats_urls.push_back(*s);
    }
  }
  if (c.nats_urls.empty()) return bad(origin, "nats_urls", "must list at least one nats:// URL");

  const std::string sync = t["synchronous"].value_or(std::string("full"));
  if (sync == "full") c.synchronous = Synchronous::kFull;
  else if (sync == "normal") c.synchronous = Synchronous::kNormal;
  else if (sync == "off") c.synchronous = Synchronous::kOff;
  else return bad(origin, "synchronous", "must be \"full\", \"normal\" or \"off\" (got \"" + sync + "\")");

  TB_RETURN_IF_ERROR(optionalDuration(t, origin, "heartbeat_interval_ms", 100, 3600 * 1000, &c.limits.heartbeat_interval_ms));
  TB_RETURN_IF_ERROR(optionalDuration(t, origin, "request_timeout_ms", 50, 600 * 1000, &c.limits.request_timeout_ms));
  TB_RETURN_IF_ERROR(optionalDuration(t, origin, "retry_initial_ms", 10, 600 * 1000, &c.limits.retry_initial_ms));
  TB_RETURN_IF_ERROR(optionalDuration(t, origin, "retry_max_ms", 10, 3600 * 1000, &c.limits.retry_max_ms));
  if (c.limits.retry_max_ms < c.limits.retry_initial_ms) {
    return bad(origin, "retry_max_ms", "must not be smaller than retry_initial_ms");
  }
  if (auto* files = t["revocations"].as_array()) {
    for (const auto& f : *files) {
      auto path = f.value<std::string>();
      if (!path || path->empty()) return bad(origin, "revocations", "must list file paths");
      c.revocation_files.push_back(*path);
    }
  } else if (t["revocations"]) {
    return bad(origin, "revocations", "must be an array of file paths");
  }
  // The children this node waits for in its completeness watermark (docs/protocol.md): one that
  // never reached this node holds it at 0 instead of being unknown here.
  if (auto* kids = t["expected_children"].as_array()) {
    for (const auto& k : *kids) {
      auto text = k.value<std::string>();
      auto child = text ? DivisionCode::parse(*text) : Result<DivisionCode>(Status(ErrorCode::kInvalidArgument, "not a string"));
      if (!child) return bad(origin, "expected_children", "must list 12-digit division codes (" + child.status().message() + ")");
      if (!c.division.isParentOf(*child)) {
        return bad(origin, "expected_children", child->str() + " is not a direct child of " + c.division.str());
      }
      if (std::find(c.expected_children.begin(), c.expected_children.end(), *child) != c.expected_children.end()) {
        return bad(origin, "expected_children", child->str() + " is listed twice");
      }
      c.expected_children.push_back(*child);
    }
  } else if (t["expected_children"]) {
    return bad(origin, "expected_children", "must be an array of division codes");
  }
  c.http_listen = t["http_listen"].value_or(std::string());
  if (!c.http_listen.empty() && c.http_listen.rfind(':') == std::string::npos) {
    return bad(origin, "http_listen", "must be host:port, e.g. 127.0.0.1:8080");
  }
  if (auto* files = t["calendar_files"].as_array()) {
    for (const auto& f : *files) {
      auto path = f.value<std::string>();
      if (!path || path->empty()) return bad(origin, "calendar_files", "must list file paths");
      c.calendar_files.push_back(*path);
    }
  } else if (t["calendar_files"]) {
    return bad(origin, "calendar_files", "must be an array of file paths");
  }
  c.catalogue_file = t["catalogue_file"].value_or(std::string());
  if (!c.catalogue_file.empty() && c.division.level() != Level::kCity) {
    return bad(origin, "catalogue_file", "is for the city only; other nodes receive the catalogue from their parent");
  }
  if (t["yellow_working_days"]) {
    auto v = t["yellow_working_days"].value<int64_t>();
    if (!v || *v < 0 || *v > 30) return bad(origin, "yellow_working_days", "must be an integer from 0 to 30");
    c.yellow_working_days = static_cast<int>(*v);
  }
  TB_RETURN_IF_ERROR(optionalDuration(t, origin, "supervision_interval_ms", 100, 3600 * 1000, &c.supervision_interval_ms));
  TB_RETURN_IF_ERROR(optionalDuration(t, origin, "light_scan_interval_ms", 100, 3600 * 1000, &c.light_scan_interval_ms));
  TB_RETURN_IF_ERROR(optionalDuration(t, origin, "catalogue_poll_ms", 100, 24 * 3600 * 1000, &c.catalogue_poll_ms));
  TB_RETURN_IF_ERROR(optionalDuration(t, origin, "feed_poll_ms", 100, 3600 * 1000, &c.feed_poll_ms));
  if (t["fetch_cache_max_bytes"]) {
    auto v = t["fetch_cache_max_bytes"].value<int64_t>();
    if (!v || *v < static_cast<int64_t>(kMinFetchCacheMaxBytes) || *v > static_cast<int64_t>(kMaxFetchCacheMaxBytes)) {
      return bad(origin, "fetch_cache_max_bytes",
                 "must be a number of bytes from " + std::to_string(kMinFetchCacheMaxBytes) + " (16 MiB, one largest "
                 "file) to " + std::to_string(kMaxFetchCacheMaxBytes) + " (1 TiB), e.g. 2147483648 for 2 GiB");
    }
    c.fetch_cache_max_bytes = static_cast<uint64_t>(*v);
  }
  if (t["clock_offset_days"]) {
    auto v = t["clock_offset_days"].value<int64_t>();
    if (!v || *v < 0 || *v > 366) return bad(origin, "clock_offset_days", "must be an integer from 0 to 366");
    c.clock_offset_days = static_cast<int>(*v);
  }
  if (t["session_lifetime_s"]) {
    auto v = t["session_lifetime_s"].value<int64_t>();
    if (!v || *v < 2 || *v > 7 * 86400) return bad(origin, "session_lifetime_s", "must be an integer from 2 to 604800");
    c.session_lifetime_ms = *v * 1000;
  }
  c.log_level = t["log_level"].value_or(std::string("info"));
  if (c.log_level != "debug" && c.log_level != "info" && c.log_level != "warn" && c.log_level != "error") {
    return bad(origin, "log_level", "must be debug, info, warn or error");
  }
  return c;
}

Result<NodeConfig> loadNodeConfig(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status(ErrorCode::kIo, "cannot read config file " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return parseNodeConfig(ss.str(), path);
}

}  // namespace tongban
