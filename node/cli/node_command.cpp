// tongban node --config FILE: the daemon. One io_context thread owns the node; NATS callbacks
// and timers are posted onto it. SIGINT/SIGTERM stop it cleanly (every change is already
// committed, so a kill -9 loses nothing either).
#include <iostream>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include "federation/transport/asio_clock.h"
#include "federation/transport/nats/nats_transport.h"
#include "federation/util/files.h"
#include "node/app/config.h"
#include "node/app/node.h"
#include "node/http/api.h"
#include "node/http/console.h"
#include "node/http/metrics.h"
#include "node/http/http_server.h"
#include "node/cli/commands.h"

namespace tongban::cli {

namespace {
// The daemon's failures also go to its log, which is where an operator looks first.
int failNode(const Status& st) {
  spdlog::critical("{}", st.toString());
  return printFailure(st);
}

int runNode(const std::string& config_path) {
  auto config = loadNodeConfig(config_path);
  if (!config) return failNode(config.status());
  spdlog::set_level(spdlog::level::from_str(config->log_level));
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%-5l%$ %v");

  auto identity = loadIdentity(config->key_dir);
  if (!identity) return failNode(identity.status().withContext("key_dir"));
  if (identity->division != config->division) {
    return failNode(Status(ErrorCode::kInvalidArgument, "key_dir " + config->key_dir + " holds the key of " +
                                                            identity->division.str() + ", but the config says division " +
                                                            config->division.str()));
  }
  auto root = readFileBytes(config->root_cert);
  if (!root) return failNode(root.status().withContext("root_cert"));
  identity->root_certificate = *root;
  identity->name = config->name;

  boost::asio::io_context io;
  AsioClock clock(io, static_cast<DurationMs>(config->clock_offset_days) * 24 * 3600 * 1000);
  if (config->clock_offset_days > 0) {
    spdlog::warn("[{}] rehearsal clock: running {} days ahead of the system time", config->division.str(),
                 config->clock_offset_days);
  }
  NatsOptions nats;
  nats.urls = config->nats_urls;
  nats.name = "tongban-" + config->division.str();
  auto transport = NatsTransport::create(io, nats);
  if (!transport) return failNode(transport.status());
  Random random(seedFromEntropy());

  NodeOptions options;
  options.identity = std::move(identity).value();
  options.data_dir = config->data_dir;
  options.synchronous = config->synchronous;
  options.limits = config->limits;
  for (const auto& file : config->calendar_files) {
    auto year = WorkingCalendar::loadFile(file);
    if (!year) return failNode(year.status().withContext("calendar_files"));
    if (auto st = options.calendar.merge(*year); !st.isOk()) return failNode(st.withContext("calendar_files " + file));
  }
  if (config->calendar_files.empty()) {
    spdlog::warn("[{}] no calendar_files: deadlines count Monday to Friday only, ignoring holidays",
                 config->division.str());
  }
  options.catalogue_file = config->catalogue_file;
  options.cases.yellow_working_days = config->yellow_working_days;
  options.supervision.snapshot_interval_ms = config->supervision_interval_ms;
  options.cases.light_scan_interval_ms = config->light_scan_interval_ms;
  options.catalogue_poll_ms = config->catalogue_poll_ms;
  options.feed.poll_interval_ms = config->feed_poll_ms;
  options.material_fetch.cache_max_bytes = config->fetch_cache_max_bytes;
  options.expected_children = config->expected_children;
  for (const auto& file : config->revocation_files) {
    auto revocation = readFileBytes(file);
    if (!revocation) return failNode(revocation.status().withContext("revocations"));
    options.revocations.push_back(std::move(revocation).value());
  }
  auto node = Node::open(std::move(options), NodeEnvironment{&clock, transport->get(), &random, nullptr});
  if (!node) return failNode(node.status());

  StaffOptions staff_options;
  staff_options.session_lifetime_ms = config->session_lifetime_ms;
  auto staff = StaffDirectory::open((*node)->database(), staff_options);
  if (!staff) return failNode(staff.status());
  Router router;
  registerNodeApi(router, **node, *staff);
  HttpMetrics http_metrics;  // before the server, which reports into it
  registerMetricsRoute(router, **node, http_metrics);
  registerConsoleRoutes(router);
  std::unique_ptr<HttpServer> http;
  if (!config->http_listen.empty()) {
    auto server = HttpServer::start(io, config->http_listen, HttpLimits{}, router, &*staff, clock,
                                    [&http_metrics](const HttpRequest& req, int status, double seconds) {
                                      http_metrics.observe(req.method, req.route, status, seconds);
                                    });
    if (!server) return failNode(server.status().withContext("http_listen " + config->http_listen));
    http = std::move(server).value();
    spdlog::info("[{}] HTTP API on {}", config->division.str(), config->http_listen);
  }

  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code&, int signo) {
    spdlog::info("[{}] signal {}: stopping", config->division.str(), signo);
    if (http) http->stop();
    (*node)->stop();
    io.stop();
  });
  spdlog::info("[{}] ready: bus {}, data {}", config->division.str(), config->nats_urls.front(), config->data_dir);
  io.run();
  node->reset();
  return 0;
}
}  // namespace

void registerNodeCommand(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand("node", "Run a node (the daemon) from a TOML config file");
  static std::string config;
  cmd->add_option("--config", config, "Node config file (see docs/operations.md)")->required();
  cmd->callback([exit_code] { *exit_code = runNode(config); });
}

}  // namespace tongban::cli
