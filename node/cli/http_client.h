// A small blocking HTTP/1.1 client for the command line (tongban case, tongban login). Nodes
// never use it.
#pragma once

#include <string>

#include "federation/transport/clock.h"
#include "federation/util/status.h"

namespace tongban::cli {

struct HttpReply {
  int status = 0;
  std::string content_type;
  std::string body;
};

// url: "http://127.0.0.1:8080" (no path). `token` adds "Authorization: Bearer ...".
Result<HttpReply> httpCall(const std::string& url, const std::string& method, const std::string& target,
                           const std::string& body, const std::string& token,
                           const std::string& content_type = "application/json", DurationMs timeout_ms = 10000);

}  // namespace tongban::cli
