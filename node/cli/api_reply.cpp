#include "node/cli/api_reply.h"

#include <cctype>
#include <cstdlib>
#include <iostream>

namespace tongban::cli {

std::string percentEncode(const std::string& s) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string sessionToken(const std::string& flag) {
  if (!flag.empty()) return flag;
  const char* env = std::getenv("TONGBAN_TOKEN");
  return env ? env : "";
}

int checkReply(const Result<HttpReply>& reply, nlohmann::json* out, int also_ok) {
  if (!reply) {
    std::cerr << "error: " << reply.status().toString() << "\n";
    return 1;
  }
  nlohmann::json doc = nlohmann::json::parse(reply->body, nullptr, false);
  if (reply->status >= 400 && reply->status != also_ok) {
    if (!doc.is_discarded() && doc.is_object() && doc.contains("error")) {
      std::cerr << "error " << reply->status << " " << doc["error"].value("code", "") << ": "
                << doc["error"].value("message", "") << "\n";
    } else {
      std::cerr << "error " << reply->status << ": " << reply->body << "\n";
    }
    return 1;
  }
  if (doc.is_discarded()) {
    std::cerr << "error: the answer is not JSON: " << reply->body.substr(0, 200) << "\n";
    return 1;
  }
  if (out) *out = std::move(doc);
  return 0;
}

}  // namespace tongban::cli
