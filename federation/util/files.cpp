#include "federation/util/files.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include <fcntl.h>
#include <unistd.h>

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
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status(ErrorCode::kIo, "cannot write " + tmp + ": " + std::strerror(errno));
  size_t written = 0;
  while (written < data.size()) {
    ssize_t n = ::write(fd, data.data() + written, data.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const std::string why = std::strerror(errno);
      ::close(fd);
      return Status(ErrorCode::kIo, "error writing " + tmp + ": " + why);
    }
    written += static_cast<size_t>(n);
  }
  // The content must be on disk before the name points at it, or a power cut could leave a
  // complete-looking name over an empty file.
  if (::fsync(fd) != 0) {
    const std::string why = std::strerror(errno);
    ::close(fd);
    return Status(ErrorCode::kIo, "cannot sync " + tmp + ": " + why);
  }
  ::close(fd);
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) return Status(ErrorCode::kIo, "cannot rename " + tmp + " to " + path + ": " + ec.message());
  const std::string dir = fs::path(path).parent_path().string();
  int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);  // best effort: makes the rename itself durable
    ::close(dfd);
  }
  return Status::ok();
}

}  // namespace tongban
