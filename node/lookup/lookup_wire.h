// Module-internal: the lookup messages (schema/lookup.capnp) as structs, and their encoding.
// Decoding treats the bytes as hostile (limits, field checks). Only node/lookup includes this.
#pragma once

#include <string>
#include <vector>

#include "node/lookup/lookup.h"

namespace tongban {

struct RequestMsg {
  LookupQuery query;
  uint32_t budget_ms = 0;
  std::string asked_at;
};

struct AnswerMsg {
  LookupQuery query;
  LookupOutcome outcome = LookupOutcome::kCouldNotAsk;
  std::vector<LookupRecord> records;
  bool truncated = false;
  std::string answerer_name;
  std::string note;
  std::string failed_link;
  std::string reason;
  TimeMs link_down_since_ms = 0;
  TimeMs complete_as_of_ms = 0;
  std::string held_back_by;
  std::string held_back_by_name;
};

struct ReplyMsg {
  Bytes answer;
  std::vector<LookupHop> route;
  std::string cached_at;
  std::string error;
};

Bytes encodeRequest(const RequestMsg& m);
Result<RequestMsg> decodeRequest(const Bytes& b);
Bytes encodeAnswer(const AnswerMsg& m);
Result<AnswerMsg> decodeAnswer(const Bytes& b);
Bytes encodeReply(const ReplyMsg& m);
Result<ReplyMsg> decodeReply(const Bytes& b);

}  // namespace tongban
