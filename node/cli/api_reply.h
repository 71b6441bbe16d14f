// What the commands that talk to a hall's HTTP API share: encoding a path or query value, the
// session token, and turning an answer into JSON or a printed error.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "node/cli/http_client.h"

namespace tongban::cli {

// Percent-encodes everything but the unreserved characters (RFC 3986), for a path segment or a
// query value.
std::string percentEncode(const std::string& s);

// The --token flag, else $TONGBAN_TOKEN, else "".
std::string sessionToken(const std::string& flag);

// Prints the error (the API's code and message) and returns 1 for a failed call, an HTTP status
// of 400 or more (except `also_ok`, e.g. 422 for a recorded refusal) or an answer that is not
// JSON; otherwise stores the JSON in *out (if given) and returns 0.
int checkReply(const Result<HttpReply>& reply, nlohmann::json* out, int also_ok = 0);

}  // namespace tongban::cli
