// Byte buffers and hex, shared by every layer.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "federation/util/status.h"

namespace tongban {

using Bytes = std::vector<uint8_t>;

inline Bytes toBytes(std::string_view s) { return Bytes(s.begin(), s.end()); }
inline std::string toString(const Bytes& b) { return std::string(b.begin(), b.end()); }

std::string hexEncode(const uint8_t* data, size_t size);
inline std::string hexEncode(const Bytes& b) { return hexEncode(b.data(), b.size()); }
Result<Bytes> hexDecode(std::string_view hex);

}  // namespace tongban
