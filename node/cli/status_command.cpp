// tongban status --nats URL --division CODE --root FILE [--tree]: asks a node over NATS for its
// view (identity, parent link, children last seen, outbox depth). Replies are signed; they are
// verified against the root certificate before anything is printed.
#include <functional>
#include <iostream>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "federation/transport/asio_clock.h"
#include "federation/transport/nats/nats_transport.h"
#include "federation/sync/wire.h"
#include "federation/transport/random.h"
#include "federation/util/files.h"
#include "node/cli/cli_clock.h"
#include "node/cli/commands.h"

namespace tongban::cli {

namespace {

struct StatusClient {
  explicit StatusClient(DurationMs clock_offset_ms) : clock(io, clock_offset_ms) {}
  boost::asio::io_context io;
  AsioClock clock;
  std::unique_ptr<NatsTransport> transport;
  KindRegistry kinds;
  std::optional<Verifier> verifier;
  Random random{seedFromEntropy()};
  DurationMs timeout_ms = 3000;

  // Asks one node; retries within the budget because interest takes a moment to cross leaf
  // links (a fresh inbox can miss the first reply).
  Result<NodeStatusMsg> ask(const DivisionCode& division) {
    Status last(ErrorCode::kTimeout, "no answer");
    const TimeMs deadline = clock.now() + timeout_ms;
    while (clock.now() < deadline) {
      const uint64_t nonce = random.next() | 1;
      std::optional<Result<Bytes>> reply;
      transport->request(statusSubject(division), encode(StatusRequestMsg{nonce}),
                         std::max<DurationMs>(200, std::min<DurationMs>(1000, deadline - clock.now())),
                         [&](Result<Bytes> r) { reply.emplace(std::move(r)); });
      while (!reply) {
        if (io.stopped()) io.restart();  // a context that ran out of work stays stopped
        io.run_one_for(std::chrono::milliseconds(100));
      }
      if (!*reply) {
        last = reply->status();
        if (last.code() == ErrorCode::kNoResponders) std::this_thread::sleep_for(std::chrono::milliseconds(100));
        continue;
      }
      auto opened = verifier->open(reply->value(), division, clock.now(), nullptr);
      if (!opened) return opened.status().withContext("reply from " + division.str());
      if (opened->signer != division || opened->kind != kinds::kStatusReply || opened->nonce != nonce) {
        return Status(ErrorCode::kUnauthorized, "reply on " + statusSubject(division) + " was signed by " +
                                                    opened->signer.str() + ", not by the node asked");
      }
      return decodeNodeStatus(opened->payload);
    }
    return last.withContext("asking " + division.str());
  }
};

std::string describe(const NodeStatusMsg& s) {
  std::string line = s.name + " " + s.division + " (" + s.level + ")";
  if (!s.parent.empty()) {
    line += "  uplink " + s.parent_link;
    if (s.parent_link_since_ms) line += " since " + formatTime(s.parent_link_since_ms);
    line += s.joined ? ", joined" : ", NOT joined yet";
  }
  line += ", outbox " + std::to_string(s.outbox_depth);
  if (!s.bus_connected) line += ", bus DISCONNECTED";
  if (s.parent_link == "down" && !s.last_error.empty()) line += " [" + s.last_error + "]";
  return line;
}

// `heard` is what the parent says of this node ("last heard 2 s ago"), empty for the top.
void printTree(StatusClient& client, const NodeStatusMsg& s, const std::string& indent, bool json,
               nlohmann::json* out, int* unreachable, const std::string& heard = "") {
  if (!json) std::cout << describe(s) << heard << "\n";
  if (out) {
    (*out)["division"] = s.division;
    (*out)["name"] = s.name;
    (*out)["level"] = s.level;
    (*out)["parent_link"] = s.parent_link;
    (*out)["joined"] = s.joined;
    (*out)["outbox_depth"] = s.outbox_depth;
    (*out)["children"] = nlohmann::json::array();
  }
  for (size_t i = 0; i < s.children.size(); ++i) {
    const auto& c = s.children[i];
    const bool last = i + 1 == s.children.size();
    if (!json) std::cout << indent << (last ? "└─ " : "├─ ");
    const std::string next_indent = indent + (last ? "   " : "│  ");
    nlohmann::json child_json;
    auto code = DivisionCode::parse(c.division);
    Result<NodeStatusMsg> child = code ? client.ask(*code) : Result<NodeStatusMsg>(code.status());
    if (child) {
      printTree(client, *child, next_indent, json, out ? &child_json : nullptr, unreachable,
                "; parent heard from it " + formatAgo(c.last_seen_ms, s.now_ms));
    } else {
      ++*unreachable;
      if (!json) {
        std::cout << c.name << " " << c.division << "  NO ANSWER (" << child.status().toString()
                  << "); parent last heard from it " << formatAgo(c.last_seen_ms, s.now_ms) << "\n";
      }
      child_json = {{"division", c.division}, {"name", c.name}, {"error", child.status().toString()}};
    }
    if (out) (*out)["children"].push_back(child_json);
  }
}

int runStatus(const std::string& url, const std::string& division_text, const std::string& root_path, bool tree,
              bool json, int timeout_ms, int expect_nodes, int clock_offset_days) {
  auto division = DivisionCode::parse(division_text);
  if (!division) {
    std::cerr << "error: --division: " << division.status().toString() << "\n";
    return 2;
  }
  auto root = readFileBytes(root_path);
  if (!root) {
    std::cerr << "error: --root: " << root.status().toString() << "\n";
    return 2;
  }

  StatusClient client(static_cast<DurationMs>(clock_offset_days) * 24 * 3600 * 1000);
  client.timeout_ms = timeout_ms;
  registerFederationKinds(client.kinds);
  auto verifier = Verifier::create(*root, &client.kinds);
  if (!verifier) {
    std::cerr << "error: root certificate " << root_path << ": " << verifier.status().toString() << "\n";
    return 2;
  }
  client.verifier.emplace(std::move(verifier).value());
  NatsOptions options;
  options.urls = {url};
  options.name = "tongban-status";
  auto transport = NatsTransport::create(client.io, options);
  if (!transport) {
    std::cerr << "error: " << transport.status().toString() << "\n";
    return 1;
  }
  client.transport = std::move(transport).value();

  auto status = client.ask(*division);
  if (!status) {
    std::cerr << "error: " << status.status().toString() << "\n";
    return 1;
  }
  int unreachable = 0;
  nlohmann::json doc;
  if (tree) {
    printTree(client, *status, "", json, &doc, &unreachable);
  } else if (json) {
    doc = {{"division", status->division}, {"name", status->name}, {"level", status->level},
           {"parent_link", status->parent_link}, {"joined", status->joined}, {"outbox_depth", status->outbox_depth}};
  } else {
    std::cout << describe(*status) << "\n";
    for (const auto& c : status->children) {
      std::cout << "  child " << c.name << " " << c.division << ": last seen " << formatAgo(c.last_seen_ms, status->now_ms)
                << ", reported outbox " << c.reported_outbox_depth << "\n";
    }
  }
  if (json) std::cout << doc.dump(2) << "\n";
  if (unreachable > 0) return 1;
  if (expect_nodes > 0) {
    // For scripts that wait for a network to form: count the nodes of the tree that joined.
    std::function<int(const nlohmann::json&)> count = [&](const nlohmann::json& n) {
      int c = (n.value("joined", false) || n.value("parent_link", "") == "none") ? 1 : 0;
      if (n.contains("children")) for (const auto& k : n["children"]) c += count(k);
      return c;
    };
    const int joined = count(doc);
    if (joined < expect_nodes) {
      std::cerr << joined << " of the expected " << expect_nodes << " nodes have joined\n";
      return 1;
    }
  }
  return 0;
}
}  // namespace

void registerStatusCommand(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand("status", "Ask a node over NATS for its view of itself and its children");
  static std::string url, division, root;
  static bool tree = false, json = false;
  static int timeout_ms = 3000, expect = 0, offset_days = 0;
  cmd->add_option("--nats", url, "NATS URL to connect to, e.g. nats://127.0.0.1:4222")->required();
  cmd->add_option("--division", division, "Division code of the node to ask")->required();
  cmd->add_option("--root", root, "The city's root certificate (verifies the signed replies)")->required();
  cmd->add_flag("--tree", tree, "Walk the children recursively and print the tree");
  cmd->add_flag("--json", json, "Print JSON instead of text");
  cmd->add_option("--timeout-ms", timeout_ms, "Budget per node asked")->default_val(3000);
  cmd->add_option("--expect-joined", expect, "With --tree: exit 1 unless at least this many nodes have joined");
  cmd->add_option("--clock-offset-days", offset_days, "For a rehearsal network running ahead (its clock_offset_days)");
  cmd->callback([exit_code] { *exit_code = runStatus(url, division, root, tree, json, timeout_ms, expect, offset_days); });
}

}  // namespace tongban::cli
