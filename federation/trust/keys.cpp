#include "federation/trust/keys.h"

#include "federation/util/files.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "federation/trust/certificate.h"

namespace tongban {

namespace {

namespace fs = std::filesystem;

// libsodium must be initialised before first use; a function-local static makes that happen
// exactly once, thread-safely, whichever entry point runs first.
void ensureSodium() {
  static const int rc = sodium_init();
  (void)rc;  // 1 = already initialised, which is fine; -1 cannot happen on Linux with getrandom
}

std::string chainFileName(size_t index) {
  char name[32];
  std::snprintf(name, sizeof name, "%02zu.cert", index);
  return name;
}

Result<Bytes> readFile(const fs::path& path) { return readFileBytes(path.string()); }

template <size_t N>
Result<std::array<uint8_t, N>> readHexFile(const fs::path& path) {
  TB_ASSIGN_OR_RETURN(Bytes text, readFile(path));
  std::string s = toString(text);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  auto decoded = hexDecode(s);
  if (!decoded) return Status(ErrorCode::kCorrupt, path.string() + ": " + decoded.status().message());
  if (decoded->size() != N) {
    return Status(ErrorCode::kCorrupt, path.string() + " holds " + std::to_string(decoded->size()) +
                                           " bytes; expected " + std::to_string(N));
  }
  std::array<uint8_t, N> out{};
  std::copy(decoded->begin(), decoded->end(), out.begin());
  return out;
}

Status writeFile(const fs::path& path, const Bytes& data) { return writeFileAtomically(path.string(), data); }

// The secret key file is created exclusively and with mode 0600 from the start, so it is never
// readable by others, not even for an instant, and an existing key is never replaced.
Status writeSecretKey(const fs::path& path, const SecretKey& key) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    if (errno == EEXIST) {
      return Status(ErrorCode::kAlreadyExists, path.string() + " already exists; refusing to overwrite a node key");
    }
    return Status(ErrorCode::kIo, "cannot create " + path.string() + ": " + std::strerror(errno));
  }
  std::string text = hexEncode(key.data(), key.size()) + "\n";
  size_t written = 0;
  while (written < text.size()) {
    ssize_t n = ::write(fd, text.data() + written, text.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int err = errno;
      ::close(fd);
      ::unlink(path.c_str());
      return Status(ErrorCode::kIo, "cannot write " + path.string() + ": " + std::strerror(err));
    }
    written += static_cast<size_t>(n);
  }
  ::fchmod(fd, 0600);  // umask can only narrow the mode, but be explicit
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    return Status(ErrorCode::kIo, "cannot flush " + path.string() + ": " + std::strerror(errno));
  }
  return Status::ok();
}

}  // namespace

KeyPair KeyPair::generate() {
  ensureSodium();
  KeyPair kp;
  crypto_sign_keypair(kp.public_key.data(), kp.secret_key.data());
  return kp;
}

KeyPair KeyPair::fromSeed(const std::array<uint8_t, 32>& seed) {
  ensureSodium();
  KeyPair kp;
  crypto_sign_seed_keypair(kp.public_key.data(), kp.secret_key.data(), seed.data());
  return kp;
}

Signature sign(const SecretKey& key, const uint8_t* data, size_t size) {
  ensureSodium();
  Signature sig{};
  crypto_sign_detached(sig.data(), nullptr, data, size, key.data());
  return sig;
}

bool verifySignature(const PublicKey& key, const uint8_t* data, size_t size, const Signature& sig) {
  ensureSodium();
  return crypto_sign_verify_detached(sig.data(), data, size, key.data()) == 0;
}

Result<Identity> loadIdentity(const std::string& key_dir) {
  const fs::path dir(key_dir);
  auto fail = [&](const Status& s) { return s.withContext("key directory " + key_dir); };

  auto secret = readHexFile<64>(dir / "node.key");
  if (!secret) return fail(secret.status());
  auto pub = readHexFile<32>(dir / "node.pub");
  if (!pub) return fail(pub.status());
  auto cert = readFile(dir / "node.cert");
  if (!cert) return fail(cert.status());
  auto root = readFile(dir / "root.cert");
  if (!root) return fail(root.status());

  // An Ed25519 secret key in libsodium's layout ends with its public key.
  if (!std::equal(pub->begin(), pub->end(), secret->begin() + 32)) {
    return fail(Status(ErrorCode::kCorrupt, "node.pub does not match node.key"));
  }
  auto info = peekCertificate(*cert);
  if (!info) return fail(info.status().withContext("node.cert"));
  if (info->public_key != *pub) {
    return fail(Status(ErrorCode::kCorrupt, "node.cert certifies a different key than node.pub"));
  }
  auto root_info = peekCertificate(*root);
  if (!root_info) return fail(root_info.status().withContext("root.cert"));

  std::vector<Bytes> chain;
  const bool is_root = *cert == *root;
  if (!is_root) {
    chain.push_back(*cert);
    // chain/NN.cert, parent first; the root may be stored last (it is the anchor, not part of
    // Identity::chain).
    for (size_t i = 0;; ++i) {
      fs::path p = dir / "chain" / chainFileName(i);
      std::error_code ec;
      if (!fs::exists(p, ec)) {
        if (i == 0) return fail(Status(ErrorCode::kNotFound, "missing file " + p.string() + " (the parent's certificate)"));
        break;
      }
      auto c = readFile(p);
      if (!c) return fail(c.status());
      if (*c == *root) break;
      chain.push_back(std::move(*c));
    }
  }
  Identity identity{info->division, info->name, KeyPair{*pub, *secret}, std::move(*cert), std::move(chain),
                    std::move(*root)};
  return identity;
}

Status saveIdentity(const std::string& key_dir, const Identity& identity) {
  const fs::path dir(key_dir);
  auto fail = [&](const Status& s) { return s.withContext("key directory " + key_dir); };
  std::error_code ec;
  fs::create_directories(dir / "chain", ec);
  if (ec) return fail(Status(ErrorCode::kIo, "cannot create " + (dir / "chain").string() + ": " + ec.message()));
  if (fs::exists(dir / "node.key", ec)) {
    return fail(Status(ErrorCode::kAlreadyExists,
                       (dir / "node.key").string() + " already exists; refusing to overwrite a node key"));
  }

  const std::string pub_hex = hexEncode(identity.keys.public_key.data(), identity.keys.public_key.size()) + "\n";
  TB_RETURN_IF_ERROR(fail(writeFile(dir / "node.pub", toBytes(pub_hex))));
  TB_RETURN_IF_ERROR(fail(writeFile(dir / "node.cert", identity.certificate)));
  TB_RETURN_IF_ERROR(fail(writeFile(dir / "root.cert", identity.root_certificate)));

  // Issuers parent first, then the root itself, as the layout promises. The root's own key
  // directory has no issuers: its certificate is the anchor.
  size_t n = 0;
  if (identity.certificate != identity.root_certificate) {
    for (size_t i = 1; i < identity.chain.size(); ++i) {
      TB_RETURN_IF_ERROR(fail(writeFile(dir / "chain" / chainFileName(n++), identity.chain[i])));
    }
    TB_RETURN_IF_ERROR(fail(writeFile(dir / "chain" / chainFileName(n++), identity.root_certificate)));
  }
  // Stale chain files from an earlier, aborted save would be read as part of this chain.
  for (size_t i = n;; ++i) {
    fs::path stale = dir / "chain" / chainFileName(i);
    if (!fs::exists(stale, ec)) break;
    fs::remove(stale, ec);
  }
  // Last, so a failed save leaves no key behind that would block a retry.
  return fail(writeSecretKey(dir / "node.key", identity.keys.secret_key));
}

}  // namespace tongban
