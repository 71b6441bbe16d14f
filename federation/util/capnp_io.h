// Internal helper for the few .cpp files that speak Cap'n Proto (wire formats, trust): turn a
// builder into bytes, and read hostile bytes with explicit limits. Cap'n Proto reports
// malformed input by throwing kj::Exception; these helpers turn that into kMalformed so no
// exception crosses a module boundary. Include only from .cpp files.
#pragma once

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/exception.h>

#include <cstring>
#include <string>

#include "federation/util/bytes.h"
#include "federation/util/status.h"

namespace tongban::capnp_io {

struct ReadLimits {
  size_t max_bytes = 1 << 20;
  uint64_t traversal_words_factor = 4;  // a few times the message size, never unbounded
  int nesting_limit = 16;
};

inline Bytes toBytes(capnp::MessageBuilder& builder) {
  kj::Array<capnp::word> words = capnp::messageToFlatArray(builder);
  auto chars = words.asBytes();
  return Bytes(chars.begin(), chars.end());
}

// Runs fn(root reader) over `bytes`, decoded as `Root` within `limits`. fn returns Result<T> or
// Status; any decoding exception (also thrown lazily while fn walks the message) becomes
// kMalformed naming `what`.
template <typename Root, typename Fn>
auto read(const Bytes& bytes, const char* what, const ReadLimits& limits, Fn&& fn) -> decltype(fn(
    std::declval<typename Root::Reader>())) {
  using Out = decltype(fn(std::declval<typename Root::Reader>()));
  if (bytes.size() > limits.max_bytes) {
    return Out(Status(ErrorCode::kOversize, std::string(what) + " is " + std::to_string(bytes.size()) +
                                                " bytes; the limit is " + std::to_string(limits.max_bytes)));
  }
  if (bytes.empty() || bytes.size() % sizeof(capnp::word) != 0) {
    return Out(Status(ErrorCode::kMalformed, std::string(what) + " has " + std::to_string(bytes.size()) +
                                                 " bytes, not a whole number of 8-byte words (truncated?)"));
  }
  kj::Array<capnp::word> words = kj::heapArray<capnp::word>(bytes.size() / sizeof(capnp::word));
  std::memcpy(words.begin(), bytes.data(), bytes.size());
  capnp::ReaderOptions options;
  options.traversalLimitInWords = limits.traversal_words_factor * words.size() + 64;
  options.nestingLimit = limits.nesting_limit;
  try {
    capnp::FlatArrayMessageReader reader(words.asPtr(), options);
    if (reader.getEnd() != words.end()) {
      return Out(Status(ErrorCode::kMalformed, std::string(what) + " has trailing bytes after the message"));
    }
    return fn(reader.getRoot<Root>());
  } catch (const kj::Exception& e) {
    return Out(Status(ErrorCode::kMalformed,
                      std::string(what) + " does not decode: " + e.getDescription().cStr()));
  }
}

inline Bytes dataToBytes(capnp::Data::Reader d) { return Bytes(d.begin(), d.end()); }
inline capnp::Data::Reader bytesToData(const Bytes& b) { return capnp::Data::Reader(b.data(), b.size()); }

}  // namespace tongban::capnp_io
