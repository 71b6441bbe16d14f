// A real nats-server child process for integration tests, on 127.0.0.1 and a free port.
//
// The port is chosen when the object is built (so a transport can be pointed at a server that
// is not up yet) and kept across stop()/start(), so a test can restart "the same" server. The
// destructor stops the process (SIGTERM, then SIGKILL after a bound) and reaps it; the child
// also dies with the test process (PR_SET_PDEATHSIG), so a crashed test leaves no server behind.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "federation/util/status.h"
#include "tests/support/temp_dir.h"

namespace tongban::testing {

class NatsServer {
 public:
  // Bounds of every wait, so a broken server fails a test instead of hanging it.
  static constexpr int kStartTimeoutMs = 5000;  // until the port accepts connections
  static constexpr int kStopGraceMs = 3000;     // after SIGTERM, before SIGKILL

  // `extra_args` are appended to the command line (e.g. {"-c", "/tmp/x/leaf.conf"}); `-a` and
  // `-p` are always given first. The binary is $TONGBAN_NATS_SERVER or `nats-server` on PATH.
  explicit NatsServer(std::vector<std::string> extra_args = {});
  ~NatsServer();
  NatsServer(const NatsServer&) = delete;
  NatsServer& operator=(const NatsServer&) = delete;

  // Starts the server and waits until it accepts TCP connections. On failure (binary missing,
  // bad config, port taken) the message includes the tail of the server's log.
  Status start();
  // Stops and reaps the server; a no-op if it is not running.
  void stop();
  bool running() const { return pid_ > 0; }

  int port() const { return port_; }
  std::string url() const;                       // nats://127.0.0.1:<port>
  const std::string& logPath() const { return log_path_; }

 private:
  std::string logTail() const;

  std::vector<std::string> extra_args_;
  int port_ = 0;
  pid_t pid_ = -1;
  TempDir dir_;  // the server's log (and anything else it writes), removed with the object
  std::string log_path_;
};

// A free TCP port on 127.0.0.1, chosen at random below the kernel's ephemeral range (so no
// outgoing connection can take it before it is used; another test's listener still could, which
// on one machine is rare enough for tests).
Result<int> findFreeLoopbackPort();

}  // namespace tongban::testing
