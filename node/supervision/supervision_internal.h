// Shared between supervision.cpp (figures, snapshots) and supervision_queries.cpp.
#pragma once

#include <map>
#include <string>
#include <utility>

#include "node/supervision/supervision.h"

namespace tongban {

struct SupervisionService::Impl {
  Database* db = nullptr;
  DivisionCode self;
  std::string self_name;
  const WorkingCalendar* calendar = nullptr;
  EnqueueUp enqueue_up;
  ChildrenSource children;
  OutboxDepth outbox_depth;
  SupervisionSettings settings;

  // Own figures of the steps and complaints in [lo, hi), by (item, department).
  Result<std::map<std::pair<std::string, std::string>, Figures>> computeOwn(TimeMs lo, TimeMs hi);
  Result<uint64_t> version(const std::string& origin, const std::string& day);
  // Replaces the held snapshot of (origin, day) in the caller's transaction.
  Status store(const SupervisionSnapshotInfo& snapshot, TimeMs now);
};

}  // namespace tongban
