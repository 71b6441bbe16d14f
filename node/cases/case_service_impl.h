// Module-internal: the state CaseService's parts share (cases.cpp: intake, steps, queries;
// forwarded_cases.cpp: the forwarded-case side). Only node/cases includes this.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "node/cases/cases.h"

namespace tongban {

inline constexpr size_t kMaxTextField = 200;
inline constexpr size_t kMaxNote = 2000;

inline bool limited(const std::string& s, size_t max) { return s.size() <= max; }

// "2026-11-23 10:12" in China Standard Time, for the location line a clerk reads out.
std::string cstMinute(TimeMs ms);

struct CaseService::Impl {
  Database* db;
  DivisionCode self;
  const CatalogueStore* catalogue;
  const WorkingCalendar* calendar;
  MaterialStore* materials;
  EnqueueUp enqueue_up;
  CaseSettings settings;
  Notifier* notifier;
  ForwardingHooks hooks;
  CredentialIssuer issuer;
  Status saveFacts(const std::string& number, const std::vector<std::pair<std::string, std::string>>& facts);

  Result<CaseRecord> load(const std::string& number);
  Status loadForwarding(CaseRecord& c, uint64_t forward_seq);
  Status saveRow(const CaseRecord& c, TimeMs now, bool insert);
  // Appends a step to the case's history, stores the case and enqueues the step's event, all in
  // the caller's transaction.
  Status record(CaseRecord& c, const std::string& step, const std::string& actor, TimeMs now,
                const std::string& note, const std::string& detail, bool insert = false);
  Result<std::string> nextNumber();
  Light lightOf(const CaseRecord& c, TimeMs now) const;
};

}  // namespace tongban
