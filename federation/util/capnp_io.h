// Internal helper for the few .cpp files that speak Cap'n Proto (the trust module and the
// federation's wire codecs): builders to bytes, and hostile bytes to readers within explicit
// limits. Cap'n Proto reports malformed input by throwing kj::Exception; everything here turns
// that into kMalformed, so no exception crosses a module boundary. Include only from .cpp files
// (and module-internal headers): it pulls in the Cap'n Proto headers.
#pragma once

#include <cstring>
#include <string>
#include <type_traits>
#include <utility>

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/exception.h>

#include "federation/util/bytes.h"
#include "federation/util/status.h"

namespace tongban::capnp_io {

struct DecodeLimits {
  uint64_t traversal_words_factor = 4;
  int nesting_limit = 16;
};


inline Bytes wordsToBytes(kj::ArrayPtr<const capnp::word> words) {
  auto bytes = words.asBytes();
  return Bytes(bytes.begin(), bytes.end());
}

// The bytes that get signed: the canonical single-segment encoding of `reader`.
template <typename Reader>
Bytes canonicalBytes(Reader reader) {
  kj::Array<capnp::word> words = capnp::canonicalize(reader);
  return wordsToBytes(words);
}

inline Bytes flatBytes(capnp::MessageBuilder& builder) {
  kj::Array<capnp::word> words = capnp::messageToFlatArray(builder);
  return wordsToBytes(words);
}

inline capnp::Data::Reader dataOf(const Bytes& b) { return capnp::Data::Reader(b.data(), b.size()); }
inline Bytes bytesOf(capnp::Data::Reader d) { return Bytes(d.begin(), d.end()); }
inline std::string text(capnp::Text::Reader t) { return std::string(t.begin(), t.size()); }

namespace detail {
template <typename MakeReader, typename Fn>
auto readWords(const uint8_t* data, size_t size, DecodeLimits limits, const std::string& what,
               MakeReader&& make_reader, Fn&& fn) -> decltype(fn(std::declval<capnp::MessageReader&>())) {
  if (size == 0 || size % sizeof(capnp::word) != 0) {
    return Status(ErrorCode::kMalformed,
                  what + " is " + std::to_string(size) + " bytes, not a whole number of 8-byte words");
  }
  // Copy: the input may sit at any address, and capnp reads words in place.
  kj::Array<capnp::word> words = kj::heapArray<capnp::word>(size / sizeof(capnp::word));
  std::memcpy(words.begin(), data, size);
  capnp::ReaderOptions options;
  options.traversalLimitInWords = limits.traversal_words_factor * words.size();
  options.nestingLimit = limits.nesting_limit;
  try {
    return make_reader(words.asPtr(), options, fn);
  } catch (const kj::Exception& e) {
    return Status(ErrorCode::kMalformed, what + " does not decode: " + e.getDescription().cStr());
  } catch (const std::exception& e) {
    return Status(ErrorCode::kMalformed, what + " does not decode: " + e.what());
  }
}
}  // namespace detail

// A framed message (segment table + segments), as written by messageToFlatArray. Trailing bytes
// after the message are refused: nothing unsigned may ride along.
template <typename Fn>
auto readFlat(const uint8_t* data, size_t size, DecodeLimits limits, const std::string& what, Fn&& fn)
    -> decltype(fn(std::declval<capnp::MessageReader&>())) {
  using R = decltype(fn(std::declval<capnp::MessageReader&>()));
  return detail::readWords(data, size, limits, what,
                           [&](kj::ArrayPtr<const capnp::word> words, capnp::ReaderOptions options, Fn& f) -> R {
                             capnp::FlatArrayMessageReader reader(words, options);
                             if (reader.getEnd() != words.end()) {
                               return Status(ErrorCode::kMalformed, what + " has bytes after the message");
                             }
                             return f(reader);
                           },
                           fn);
}

// A signed body: one canonical segment (what capnp::canonicalize produces, no segment table).
// `fn` runs first (so field access is bounded by the traversal limit), then the encoding must
// be canonical: two encodings of the same content would let a signature cover bytes that do
// not mean what the decoded fields say.
template <typename Fn>
auto readCanonical(const uint8_t* data, size_t size, DecodeLimits limits, const std::string& what, Fn&& fn)
    -> decltype(fn(std::declval<capnp::MessageReader&>())) {
  using R = decltype(fn(std::declval<capnp::MessageReader&>()));
  return detail::readWords(data, size, limits, what,
                           [&](kj::ArrayPtr<const capnp::word> words, capnp::ReaderOptions options, Fn& f) -> R {
                             kj::ArrayPtr<const capnp::word> segments[1] = {words};
                             capnp::SegmentArrayMessageReader reader(kj::arrayPtr(segments, 1), options);
                             R result = f(reader);
                             if (result.isOk() && !reader.isCanonical()) {
                               return Status(ErrorCode::kMalformed, what + " is not in canonical form");
                             }
                             return result;
                           },
                           fn);
}

// A whole framed message of type Root with a size cap checked first (kOversize), for the
// federation's own messages: fn gets the root reader.
template <typename Root, typename Fn>
auto read(const Bytes& bytes, const std::string& what, size_t max_bytes, Fn&& fn)
    -> decltype(fn(std::declval<typename Root::Reader>())) {
  using R = decltype(fn(std::declval<typename Root::Reader>()));
  if (bytes.size() > max_bytes) {
    return R(Status(ErrorCode::kOversize, what + " is " + std::to_string(bytes.size()) + " bytes; the limit is " +
                                              std::to_string(max_bytes)));
  }
  return readFlat(bytes.data(), bytes.size(), DecodeLimits{}, what,
                  [&](capnp::MessageReader& reader) -> R { return fn(reader.getRoot<Root>()); });
}

}  // namespace tongban::capnp_io
