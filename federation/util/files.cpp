#include "federation/util/files.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

namespace tongban {

namespace fs = std::filesystem;

Result<Bytes> readFileBytes(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return Status(ErrorCode::kNotFound, "missing file " + path);
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status(ErrorCode::kIo, "cannot read " + path + ": " + std::strerror(errno));
  Bytes data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return Status(ErrorCode::kIo, "error reading " + path);
  return data;
}

Status writeFileAtomically(const std::string& path, const Bytes& data) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return Status(ErrorCode::kIo, "cannot write " + tmp + ": " + std::strerror(errno));
    out.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
    out.flush();
    if (!out) return Status(ErrorCode::kIo, "error writing " + tmp);
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) return Status(ErrorCode::kIo, "cannot rename " + tmp + " to " + path + ": " + ec.message());
  return Status::ok();
}

}  // namespace tongban
