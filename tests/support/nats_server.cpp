#include "tests/support/nats_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

namespace tongban::testing {

namespace {

constexpr int kPollIntervalMs = 20;
constexpr size_t kLogTailBytes = 2000;
constexpr int kLowestTestPort = 10000;  // below: well-known and registered services

std::string errnoText(const std::string& doing) { return doing + ": " + std::strerror(errno); }

bool isExecutable(const std::string& path) { return ::access(path.c_str(), X_OK) == 0; }

// Resolved before fork(): after fork in a multi-threaded process only async-signal-safe calls
// are allowed, and execvp's PATH search is not one of them.
std::string findNatsServer() {
  if (const char* env = std::getenv("TONGBAN_NATS_SERVER"); env != nullptr && *env != '\0') return env;
  if (const char* path = std::getenv("PATH"); path != nullptr) {
    std::stringstream dirs(path);
    std::string dir;
    while (std::getline(dirs, dir, ':')) {
      if (!dir.empty() && isExecutable(dir + "/nats-server")) return dir + "/nats-server";
    }
  }
  // Debian installs it in /usr/sbin, which is not on every user's PATH.
  for (const char* candidate : {"/usr/sbin/nats-server", "/usr/bin/nats-server", "/usr/local/bin/nats-server"}) {
    if (isExecutable(candidate)) return candidate;
  }
  return {};
}

bool portAcceptsConnections(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  ::close(fd);
  return ok;
}

void sleepMs(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

}  // namespace

namespace {

// The lowest port of the kernel's ephemeral range (32768 unless configured otherwise).
int ephemeralRangeLow() {
  std::ifstream in("/proc/sys/net/ipv4/ip_local_port_range");
  int low = 0;
  if (!(in >> low) || low <= kLowestTestPort + 1000) return 32768;
  return low;
}

// True if 127.0.0.1:`port` can be bound now (nobody listens on it or holds it).
bool canBind(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  int yes = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));  // as nats-server will
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  ::close(fd);
  return ok;
}

}  // namespace

Result<int> findFreeLoopbackPort() {
  // Below the ephemeral range: a port the kernel hands out for bind(0) or an outgoing connect()
  // can be taken again by any connection between this check and the server's bind (CI saw it).
  // Below the range only another listener can take it.
  int low = ephemeralRangeLow();
  std::random_device entropy;
  std::mt19937 pick(entropy());
  std::uniform_int_distribution<int> port_in(kLowestTestPort, low - 1);
  for (int attempt = 0; attempt < 200; ++attempt) {
    int port = port_in(pick);
    if (canBind(port)) return port;
  }
  return Status(ErrorCode::kIo, "no free port on 127.0.0.1 between " + std::to_string(kLowestTestPort) + " and " +
                                    std::to_string(low - 1) + " after 200 tries");
}

NatsServer::NatsServer(std::vector<std::string> extra_args) : extra_args_(std::move(extra_args)) {
  log_path_ = dir_.file("nats-server.log");
  auto port = findFreeLoopbackPort();
  port_ = port.isOk() ? *port : 0;  // 0 makes start() fail with a clear message
}

NatsServer::~NatsServer() { stop(); }

std::string NatsServer::url() const { return "nats://127.0.0.1:" + std::to_string(port_); }

std::string NatsServer::logTail() const {
  std::ifstream in(log_path_, std::ios::binary);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (text.size() > kLogTailBytes) text = "..." + text.substr(text.size() - kLogTailBytes);
  return text.empty() ? "(empty log)" : text;
}

Status NatsServer::start() {
  if (running()) return Status::ok();
  if (port_ <= 0) return Status(ErrorCode::kIo, "no free loopback port was found for nats-server");
  std::string binary = findNatsServer();
  if (binary.empty()) {
    return Status(ErrorCode::kNotFound,
                  "nats-server not found on PATH, /usr/sbin or /usr/bin; install it (apt-get install nats-server) "
                  "or set TONGBAN_NATS_SERVER");
  }

  std::vector<std::string> args = {binary, "-a", "127.0.0.1", "-p", std::to_string(port_)};
  args.insert(args.end(), extra_args_.begin(), extra_args_.end());
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  // Append: after a restart the log keeps the earlier run too, which helps when a reconnect
  // test fails.
  int log_fd = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) return Status(ErrorCode::kIo, errnoText("opening " + log_path_));
  pid_t parent = ::getpid();

  pid_t pid = ::fork();
  if (pid < 0) {
    ::close(log_fd);
    return Status(ErrorCode::kIo, errnoText("forking to start nats-server"));
  }
  if (pid == 0) {
    // Child: async-signal-safe calls only.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);  // the test died between fork and prctl
    ::dup2(log_fd, STDOUT_FILENO);
    ::dup2(log_fd, STDERR_FILENO);
    int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, STDIN_FILENO);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(log_fd);
  pid_ = pid;

  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kStartTimeoutMs);
  while (std::chrono::steady_clock::now() < deadline) {
    int wstatus = 0;
    pid_t done = ::waitpid(pid_, &wstatus, WNOHANG);
    if (done == pid_) {
      pid_ = -1;
      std::string how = WIFEXITED(wstatus) ? "exited with status " + std::to_string(WEXITSTATUS(wstatus))
                                           : "was killed by signal " + std::to_string(WTERMSIG(wstatus));
      return Status(ErrorCode::kUnavailable, "nats-server on port " + std::to_string(port_) + " " + how +
                                                 " before accepting connections; its log:\n" + logTail());
    }
    if (portAcceptsConnections(port_)) return Status::ok();
    sleepMs(kPollIntervalMs);
  }
  std::string tail = logTail();
  stop();
  return Status(ErrorCode::kTimeout, "nats-server did not accept connections on 127.0.0.1:" + std::to_string(port_) +
                                         " within " + std::to_string(kStartTimeoutMs) + " ms; its log:\n" + tail);
}

void NatsServer::stop() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGTERM);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kStopGraceMs);
  while (true) {
    int wstatus = 0;
    pid_t done = ::waitpid(pid_, &wstatus, WNOHANG);
    if (done == pid_ || (done < 0 && errno == ECHILD)) break;
    if (std::chrono::steady_clock::now() >= deadline) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &wstatus, 0);  // SIGKILL cannot be ignored: this returns promptly
      break;
    }
    sleepMs(kPollIntervalMs);
  }
  pid_ = -1;
}

}  // namespace tongban::testing
