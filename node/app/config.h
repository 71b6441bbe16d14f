// Node configuration: a TOML file per node (see docs/operations.md for every key).
//
//   division   = "440604001001"
//   name       = "祖庙第1社区"
//   data_dir   = "/var/lib/tongban/440604001001"
//   key_dir    = "/etc/tongban/keys/440604001001"
//   root_cert  = "/etc/tongban/keys/root.cert"     # optional: default <key_dir>/root.cert
//   nats_urls  = ["nats://127.0.0.1:4222"]
//   synchronous = "full"                            # full | normal | off
//   heartbeat_interval_ms = 10000                   # optional, and the other [sync] limits
//   revocations = ["/etc/tongban/revoked/v1-laptop.rev"]  # optional: key revocations to enforce
//   http_listen = "127.0.0.1:8080"                 # the window's HTTP API and console
//   calendar_files = ["data/calendar-2026.json"]   # working days for deadlines
//   catalogue_file = "data/catalog.json"           # city only: the catalogue it publishes
//   yellow_working_days = 1                         # yellow light when this many working days remain
//   session_lifetime_s = 28800                      # staff log-in sessions expire after this
//   supervision_interval_ms = 30000                 # how often changed days' figures go up
//   light_scan_interval_ms = 60000                  # how often open cases are checked for yellow/red
//   clock_offset_days = 0                           # rehearsal networks only: run this many days ahead
//   catalogue_poll_ms = 60000                       # how often the parent is asked for a newer catalogue
//   feed_poll_ms = 30000                            # how often the parent is asked for new status records
//   fetch_cache_max_bytes = 2147483648              # files fetched from descendants kept, LRU beyond
//   expected_children = ["440604001001"]            # direct children the completeness watermark waits for
//   log_level  = "info"
#pragma once

#include <string>
#include <vector>

#include "federation/division/division.h"
#include "federation/store/database.h"
#include "federation/sync/sync_types.h"
#include "node/materials/materials.h"

namespace tongban {

struct NodeConfig {
  DivisionCode division;
  std::string name;
  std::string data_dir;
  std::string key_dir;
  std::string root_cert;
  std::vector<std::string> nats_urls;
  Synchronous synchronous = Synchronous::kFull;
  SyncLimits limits;
  std::string log_level = "info";
  std::vector<std::string> revocation_files;
  std::string http_listen;               // empty: no HTTP API
  std::vector<std::string> calendar_files;
  std::string catalogue_file;            // city only
  int yellow_working_days = 1;
  DurationMs session_lifetime_ms = 8 * 3600 * 1000;
  DurationMs supervision_interval_ms = 30 * 1000;
  DurationMs light_scan_interval_ms = 60 * 1000;
  int clock_offset_days = 0;
  DurationMs catalogue_poll_ms = 60 * 1000;
  DurationMs feed_poll_ms = 30 * 1000;    // the feed of credential status records and key revocations
  uint64_t fetch_cache_max_bytes = kDefaultFetchCacheMaxBytes;  // files fetched from descendants kept
  std::vector<DivisionCode> expected_children;  // direct children only; empty: those that reached it
};

// Parses and validates; every error names the key and says what is expected.
Result<NodeConfig> loadNodeConfig(const std::string& path);
Result<NodeConfig> parseNodeConfig(const std::string& toml_text, const std::string& origin);

}  // namespace tongban
