// Module-internal: the wire formats of forwarded cases (schema/forwarding.capnp) as plain structs,
// and their codecs with the limits every hop applies to hostile bytes. Only node/forwarding and
// its tests (which forge messages with it) include this.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "federation/util/bytes.h"
#include "federation/util/status.h"
#include "federation/transport/clock.h"
#include "node/materials/materials.h"

namespace tongban::forwarding_wire {

// Explicit limits on what a hop accepts (docs/protocol.md, "Forwarded cases").
inline constexpr size_t kMaxRelayBytes = 192 * 1024;
inline constexpr size_t kMaxProgressBytes = 64 * 1024;
inline constexpr size_t kMaxHops = 4;            // village → town → district → city
inline constexpr size_t kMaxTransferMaterials = 64;
inline constexpr size_t kMaxTransferFacts = 16;
inline constexpr size_t kMaxForwardedText = 2000;

struct Hop {
  std::string division;
  TimeMs at_ms = 0;
};

struct Relay {
  Bytes statement;
  std::vector<Hop> hops;
};

struct Transfer {
  std::string number, origin, origin_name, item_code, item_name, department, kind;
  uint8_t decide_level = 0;
  std::string applicant_id, applicant_name, contact;
  TimeMs accepted_ms = 0, deadline_ms = 0;
  std::string accepted_by, note;
  std::vector<Bytes> materials;               // encoded MaterialRecords, as sealed at the origin
  std::vector<MaterialRecordInfo> records;    // decodeTransfer: the same, decoded (each kind once)
  uint64_t catalogue_version = 0;
  std::vector<std::pair<std::string, std::string>> facts;
};

struct Progress {
  std::string number, decider, decider_name;
  uint32_t step_index = 0;
  std::string step, state, actor;
  TimeMs at_ms = 0;
  std::string note, detail;
  TimeMs deadline_ms = 0, concluded_ms = 0;
  Bytes credential;
  std::string credential_number;
  uint8_t decide_level = 0;                   // 1 city .. 4 village
};

Bytes encodeRelay(const Relay& r);
Result<Relay> decodeRelay(const Bytes& bytes);
Bytes encodeTransfer(const Transfer& t);
// kMalformed for a transfer over the limits, with a field too long, a decide level outside
// 1..4, a number its origin did not give, a material record that does not decode, or a
// material kind listed twice.
Result<Transfer> decodeTransfer(const Bytes& bytes);
Bytes encodeProgress(const Progress& p);
// kMalformed for a progress over the limits, without a number or step, with a field too long,
// or with a decide level outside 1..4.
Result<Progress> decodeProgress(const Bytes& bytes);

}  // namespace tongban::forwarding_wire
