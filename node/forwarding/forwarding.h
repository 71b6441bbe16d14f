// Forwarded cases (上报件): "the citizen applies once at the nearest station; the network does
// the travelling".
//
// Up: a hall that accepts a case it may not decide seals a CaseTransfer (a statement only it can
// make) and sends it to its parent inside a CaseRelay, in the intake transaction. Each node on the
// way checks the relay came from a child that covers the origin and that the transfer is the
// origin's own, records the passage, and either takes the case in (its level is the item's
// decide level) or passes the relay up, appending itself to the hops. A genuine transfer the
// deciding node may not take in (a material seal that does not check) is returned (退回): a
// signed "returned" progress tells the origin who refused it and why.
//
// Down: every step the decider takes on a case it holds for an origin is sealed as a CaseProgress
// and relayed down, hop by hop (each from its parent), to the origin, which mirrors the state
// (CaseService::applyDeciderStep). The progress names the case's decide level: every hop requires
// the signer to be the origin's ancestor at that level (and, if the case went up through it, the
// level it saw in the transfer); the origin requires the level it recorded at acceptance. Both
// directions ride the durable outbox, so a cut link only delays them and each is applied exactly
// once (receipts).
//
// Wire formats: schema/forwarding.capnp. Rules and subjects: docs/protocol.md.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "federation/store/database.h"
#include "federation/trust/envelope.h"
#include "federation/trust/keys.h"
#include "node/cases/cases.h"
#include "node/materials/materials.h"

namespace tongban {

inline constexpr MessageKind kCaseTransferKind = 104;   // statement, sealed by the origin
inline constexpr MessageKind kCaseRelayUpKind = 105;    // durable, up, hop by hop
inline constexpr MessageKind kCaseProgressKind = 106;   // statement, sealed by the decider
inline constexpr MessageKind kCaseRelayDownKind = 107;  // durable, down, hop by hop

void registerForwardingKinds(KindRegistry& registry);

// One entry of a node's audit trail of forwarded traffic it handled.
struct Passage {
  std::string number;
  std::string what;          // "transfer" (the case going up) or "progress" (a step coming down)
  uint32_t step_index = 0;   // for progress: the decider's step
  std::string action;        // sent up, passed up, taken in, already held, returned (refused here, word sent
                             // down), sent down, passed down, delivered, returned here (at the origin)
  std::string from;          // the neighbour it came from ("" when made here)
  std::string to;            // the neighbour it went to ("" when consumed here)
  std::string route;         // the hops so far, "440604001001 → 440604001000"
  TimeMs at_ms = 0;
  uint8_t decide_level = 0;  // the case's decide level the transfer or step named (1 city .. 4 village)
};

class ForwardingService {
 public:
  // Enqueues for a neighbour inside the caller's open transaction (the node's outbox).
  using EnqueueTo = std::function<Result<uint64_t>(const DivisionCode& neighbour, MessageKind kind, const Bytes& payload)>;

  static Result<ForwardingService> open(Database& db, const Identity& identity, const Verifier& verifier,
                                        CaseService& cases, MaterialStore& materials, EnqueueTo enqueue_to,
                                        std::function<bool(uint64_t seq)> outbox_pending,
                                        std::function<std::string(uint64_t seq)> outbox_refused);

  // `outbox_pending(seq)`: the message still waits in this node's outbox; `outbox_refused(seq)`:
  // why the parent refused it for good ("" if it did not).
  //
  // What the case service calls to send a case up and its steps down (installs nothing itself).
  ForwardingHooks hooks();

  // A credential issued on the conclusion of a forwarded case rides down with that step, so the
  // origin holds it (node/credentials provides both ends).
  struct CredentialLink {
    std::function<Result<std::optional<Bytes>>(const std::string& number)> sealed_of;  // at the decider
    std::function<Result<bool>(const Bytes& sealed)> accept;                           // at the origin
  };
  void setCredentialLink(CredentialLink link);

  // Downlink appliers, inside the applying transaction. Content that can never be acceptable
  // (forged, misrouted, malformed) is kInvalidArgument / kMalformed / kUnauthorized.
  Status applyRelayUp(const OpenedEnvelope& envelope, TimeMs now);
  Status applyRelayDown(const OpenedEnvelope& envelope, TimeMs now);

  // This node's passages of one case, oldest first.
  Result<std::vector<Passage>> passages(const std::string& number);

  struct Impl;
 private:
  explicit ForwardingService(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<Impl> impl_;
};

}  // namespace tongban
