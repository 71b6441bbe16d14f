#include "node/cli/http_client.h"

#include <utility>  // Boost 1.74 Asio under C++20 needs it before the Asio headers

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace tongban::cli {

namespace beast = boost::beast;
namespace http = beast::http;
using tcp = boost::asio::ip::tcp;

Result<HttpReply> httpCall(const std::string& url, const std::string& method, const std::string& target,
                           const std::string& body, const std::string& token, const std::string& content_type,
                           DurationMs timeout_ms) {
  const std::string prefix = "http://";
  if (url.rfind(prefix, 0) != 0) return Status(ErrorCode::kInvalidArgument, "URL must start with http:// (got '" + url + "')");
  std::string host_port = url.substr(prefix.size());
  while (!host_port.empty() && host_port.back() == '/') host_port.pop_back();
  const auto colon = host_port.rfind(':');
  if (colon == std::string::npos) return Status(ErrorCode::kInvalidArgument, "URL needs a port: " + url);
  const std::string host = host_port.substr(0, colon), port = host_port.substr(colon + 1);
  try {
    boost::asio::io_context io;
    tcp::resolver resolver(io);
    beast::tcp_stream stream(io);
    stream.expires_after(std::chrono::milliseconds(timeout_ms));
    stream.connect(resolver.resolve(host, port));
    http::request<http::string_body> req{http::string_to_verb(method), target, 11};
    req.set(http::field::host, host_port);
    req.set(http::field::user_agent, "tongban-cli");
    if (!token.empty()) req.set(http::field::authorization, "Bearer " + token);
    if (!body.empty() || method == "POST") {
      req.set(http::field::content_type, content_type);
      req.body() = body;
      req.prepare_payload();
    }
    http::write(stream, req);
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(64u << 20);
    http::read(stream, buffer, parser);
    auto res = parser.release();
    beast::error_code ec;
    stream.socket().shutdown(tcp::socket::shutdown_both, ec);
    return HttpReply{static_cast<int>(res.result_int()), std::string(res[http::field::content_type]), res.body()};
  } catch (const std::exception& e) {
    return Status(ErrorCode::kUnavailable, method + " " + url + target + ": " + e.what());
  }
}

}  // namespace tongban::cli
