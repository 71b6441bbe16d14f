#include "federation/sync/wire.h"

#include "federation/util/capnp_io.h"
#include "schema/federation.capnp.h"

namespace tongban {
namespace {

using capnp_io::text;

}  // namespace

void registerFederationKinds(KindRegistry& registry) {
  registry.add(kinds::kJoin, {"join", Direction::kUpToParent, /*durable=*/true});
  registry.add(kinds::kHeartbeat, {"heartbeat", Direction::kUpToParent, /*durable=*/true});
  registry.add(kinds::kOutboxAck, {"outbox-ack", Direction::kReply, /*durable=*/false});
  registry.add(kinds::kStatusReply, {"status-reply", Direction::kReply, /*durable=*/false});
}

std::string upSubject(const DivisionCode& parent) { return "tb." + parent.str() + ".up"; }
std::string downSubject(const DivisionCode& child) { return "tb." + child.str() + ".down"; }
std::string statusSubject(const DivisionCode& node) { return "tb." + node.str() + ".status"; }

Bytes encode(const JoinMsg& m) {
  capnp::MallocMessageBuilder b;
  auto r = b.initRoot<wire::Join>();
  r.setName(m.name);
  r.setSoftwareVersion(m.software_version);
  return capnp_io::flatBytes(b);
}

Result<JoinMsg> decodeJoin(const Bytes& bytes) {
  return capnp_io::read<wire::Join>(bytes, "join message", 4096, [](wire::Join::Reader r) -> Result<JoinMsg> {
    JoinMsg m{text(r.getName()), text(r.getSoftwareVersion())};
    if (m.name.empty()) return Status(ErrorCode::kMalformed, "join message has an empty division name");
    return m;
  });
}

Bytes encode(const HeartbeatMsg& m) {
  capnp::MallocMessageBuilder b;
  auto r = b.initRoot<wire::Heartbeat>();
  r.setOutboxDepth(m.outbox_depth);
  r.setStartedAtMs(m.started_at_ms);
  r.setChildrenCount(m.children_count);
  r.setSubtreeCompleteAsOfMs(m.subtree_complete_as_of_ms);
  r.setHeldBackBy(m.held_back_by);
  r.setHeldBackByName(m.held_back_by_name);
  return capnp_io::flatBytes(b);
}

Result<HeartbeatMsg> decodeHeartbeat(const Bytes& bytes) {
  return capnp_io::read<wire::Heartbeat>(bytes, "heartbeat", 1024,
                                         [](wire::Heartbeat::Reader r) -> Result<HeartbeatMsg> {
                                           HeartbeatMsg m;
                                           m.outbox_depth = r.getOutboxDepth();
                                           m.started_at_ms = r.getStartedAtMs();
                                           m.children_count = r.getChildrenCount();
                                           m.subtree_complete_as_of_ms = r.getSubtreeCompleteAsOfMs();
                                           m.held_back_by = capnp_io::text(r.getHeldBackBy());
                                           m.held_back_by_name = capnp_io::text(r.getHeldBackByName());
                                           if (!m.held_back_by.empty() && !DivisionCode::parse(m.held_back_by)) {
                                             return Status(ErrorCode::kMalformed,
                                                           "heartbeat names a bad division as holding it back");
                                           }
                                           return m;
                                         });
}

Bytes encode(const OutboxBatchMsg& m) {
  capnp::MallocMessageBuilder b;
  auto r = b.initRoot<wire::OutboxBatch>();
  r.setNonce(m.nonce);
  auto list = r.initEnvelopes(static_cast<unsigned>(m.envelopes.size()));
  for (unsigned i = 0; i < m.envelopes.size(); ++i) list.set(i, capnp_io::dataOf(m.envelopes[i]));
  return capnp_io::flatBytes(b);
}

Result<OutboxBatchMsg> decodeOutboxBatch(const Bytes& bytes) {
  return capnp_io::read<wire::OutboxBatch>(
      bytes, "outbox batch", kMaxBatchBytes, [](wire::OutboxBatch::Reader r) -> Result<OutboxBatchMsg> {
        OutboxBatchMsg m;
        m.nonce = r.getNonce();
        auto list = r.getEnvelopes();
        if (list.size() > kMaxBatchEnvelopes) {
          return Status(ErrorCode::kMalformed, "outbox batch carries " + std::to_string(list.size()) +
                                                   " envelopes; the limit is " + std::to_string(kMaxBatchEnvelopes));
        }
        for (auto d : list) m.envelopes.push_back(capnp_io::bytesOf(d));
        return m;
      });
}

Bytes encode(const OutboxAckMsg& m) {
  capnp::MallocMessageBuilder b;
  auto r = b.initRoot<wire::OutboxAck>();
  auto list = r.initResults(static_cast<unsigned>(m.results.size()));
  for (unsigned i = 0; i < m.results.size(); ++i) {
    list[i].setSeq(m.results[i].seq);
    list[i].setOutcome(m.results[i].outcome);
    list[i].setMessage(m.results[i].message);
  }
  return capnp_io::flatBytes(b);
}

Result<OutboxAckMsg> decodeOutboxAck(const Bytes& bytes) {
  return capnp_io::read<wire::OutboxAck>(bytes, "outbox ack", kMaxBatchBytes,
                                         [](wire::OutboxAck::Reader r) -> Result<OutboxAckMsg> {
                                           OutboxAckMsg m;
                                           auto list = r.getResults();
                                           if (list.size() > kMaxBatchEnvelopes) {
                                             return Status(ErrorCode::kMalformed, "outbox ack has too many results");
                                           }
                                           for (auto x : list) {
                                             m.results.push_back({x.getSeq(), text(x.getOutcome()), text(x.getMessage())});
                                           }
                                           return m;
                                         });
}

Bytes encode(const StatusRequestMsg& m) {
  capnp::MallocMessageBuilder b;
  b.initRoot<wire::StatusRequest>().setNonce(m.nonce);
  return capnp_io::flatBytes(b);
}

Result<StatusRequestMsg> decodeStatusRequest(const Bytes& bytes) {
  return capnp_io::read<wire::StatusRequest>(bytes, "status request", 256,
                                             [](wire::StatusRequest::Reader r) -> Result<StatusRequestMsg> {
                                               return StatusRequestMsg{r.getNonce()};
                                             });
}

Bytes encode(const NodeStatusMsg& m) {
  capnp::MallocMessageBuilder b;
  auto r = b.initRoot<wire::NodeStatus>();
  r.setDivision(m.division);
  r.setName(m.name);
  r.setLevel(m.level);
  r.setParent(m.parent);
  r.setBusConnected(m.bus_connected);
  r.setParentLink(m.parent_link);
  r.setParentLinkSinceMs(m.parent_link_since_ms);
  r.setLastAckMs(m.last_ack_ms);
  r.setOutboxDepth(m.outbox_depth);
  r.setNowMs(m.now_ms);
  r.setStartedAtMs(m.started_at_ms);
  r.setJoined(m.joined);
  r.setLastError(m.last_error);
  auto children = r.initChildren(static_cast<unsigned>(m.children.size()));
  for (unsigned i = 0; i < m.children.size(); ++i) {
    const auto& c = m.children[i];
    children[i].setDivision(c.division);
    children[i].setName(c.name);
    children[i].setJoinedAtMs(c.joined_at_ms);
    children[i].setLastSeenMs(c.last_seen_ms);
    children[i].setReportedOutboxDepth(c.reported_outbox_depth);
    children[i].setLastSeq(c.last_seq);
  }
  return capnp_io::flatBytes(b);
}

Result<NodeStatusMsg> decodeNodeStatus(const Bytes& bytes) {
  return capnp_io::read<wire::NodeStatus>(
      bytes, "node status", kMaxBatchBytes, [](wire::NodeStatus::Reader r) -> Result<NodeStatusMsg> {
        NodeStatusMsg m;
        m.division = text(r.getDivision());
        m.name = text(r.getName());
        m.level = text(r.getLevel());
        m.parent = text(r.getParent());
        m.bus_connected = r.getBusConnected();
        m.parent_link = text(r.getParentLink());
        m.parent_link_since_ms = r.getParentLinkSinceMs();
        m.last_ack_ms = r.getLastAckMs();
        m.outbox_depth = r.getOutboxDepth();
        m.now_ms = r.getNowMs();
        m.started_at_ms = r.getStartedAtMs();
        m.joined = r.getJoined();
        m.last_error = text(r.getLastError());
        if (r.getChildren().size() > kMaxStatusChildren) {
          return Status(ErrorCode::kMalformed, "node status lists too many children");
        }
        for (auto c : r.getChildren()) {
          m.children.push_back({text(c.getDivision()), text(c.getName()), c.getJoinedAtMs(), c.getLastSeenMs(),
                                c.getReportedOutboxDepth(), c.getLastSeq()});
        }
        return m;
      });
}

}  // namespace tongban
