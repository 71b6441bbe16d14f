// Cases (办件): an application from intake to conclusion, with every step recorded with its
// responsible person and time, deadlines in working days, supplement pauses, joint reviews,
// yellow/red lights, and citizen evaluations. Every change is one SQLite transaction that also
// enqueues the step's CaseEvent for the parent (supervision reads them upstream).
//
// States and the steps that move between them (role in brackets):
//   intake [clerk] ──complete──▶ accepted          ──incomplete──▶ refused (不予受理, terminal)
//   immediate items: accepted ──conclude──▶ concluded in the same transaction
//   accepted ──undertake [undertaker]──▶ undertaken
//   undertaken ──review [reviewer]──▶ reviewed    (joint items: one review per department;
//                                                   all approve → reviewed, one denies → denied)
//   reviewed ──approve [approver]──▶ approved  |  ──deny [approver]──▶ denied
//   approved | denied ──conclude [clerk]──▶ concluded (terminal)
//   accepted | undertaken ──supplement [clerk, undertaker, reviewer]──▶ supplement (clock paused)
//   supplement ──resume [clerk]──▶ the state it left (deadline moved by the working days paused)
// A node decides only items whose decide level is its own level or below it in the tree
// (city = highest). A case it may not decide is forwarded (上报件, node/forwarding): the
// ForwardingHooks carry it up in the intake transaction; the decider holds it as a case
// "held for" the origin and works it with the same steps, and every step it takes comes back to
// the origin, which mirrors the state and shows where the case is.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "federation/store/outbox.h"
#include "node/calendar/calendar.h"
#include "node/catalogue/catalogue.h"
#include "node/materials/materials.h"
#include "node/staff/staff.h"

namespace tongban {

enum class CaseState { kRefused, kAccepted, kUndertaken, kReviewed, kApproved, kDenied, kConcluded, kSupplement };
const char* caseStateName(CaseState state);
Result<CaseState> parseCaseState(const std::string& name);

enum class Light { kNone, kGreen, kYellow, kRed };
const char* lightName(Light light);

// Message kind of a CaseEvent (durable, up, relayed to every ancestor).
inline constexpr MessageKind kCaseEventKind = 100;

// One step of one case as it travels upward (schema/node.capnp CaseEvent).
struct CaseEventInfo {
  std::string case_number;    // empty for a complaint against a unit
  std::string origin;         // division whose node recorded it
  std::string item_code;
  std::string department;
  std::string step;
  std::string state;
  std::string actor;
  TimeMs at_ms = 0;
  TimeMs accepted_at_ms = 0;
  TimeMs deadline_ms = 0;
  std::string note;
  std::string detail;
  uint32_t step_index = 0;
};
Bytes encodeCaseEvent(const CaseEventInfo& event);
Result<CaseEventInfo> decodeCaseEvent(const Bytes& bytes);

// Tells the responsible person that a case turned yellow or red. The node logs it (and the
// event goes upward with the case); an SMS gateway can implement this later.
class Notifier {
 public:
  virtual ~Notifier() = default;
  virtual void notify(const std::string& case_number, Light light, const std::string& responsible,
                      const std::string& message) = 0;
};

struct MaterialOffer {
  std::string kind;
  std::string hash;           // an uploaded material; empty: reuse the holder's material of that kind here
};

struct IntakeRequest {
  std::string item_code;
  std::string applicant_id;   // resident ID (GB 11643) or unified social credit code (GB 32100)
  std::string applicant_name;
  std::string contact;        // phone number or address for the result
  std::vector<MaterialOffer> materials;
  std::string note;
  // Key facts the credential will state (the plates on a muck-transport permit, the address on a
  // shop-sign permit): at most 16, each key and value at most 200 bytes.
  std::vector<std::pair<std::string, std::string>> facts;
};

struct CaseStep {
  uint32_t index = 0;
  std::string step;
  std::string actor;
  TimeMs at_ms = 0;
  std::string note;
  std::string detail;
};

struct CaseRecord {
  std::string number;
  std::string item_code;
  std::string item_name;
  std::string department;
  ItemKind kind = ItemKind::kCommitted;
  std::string applicant_id;
  std::string applicant_name;
  std::string contact;
  CaseState state = CaseState::kAccepted;
  CaseState paused_from = CaseState::kAccepted;   // meaningful in kSupplement
  TimeMs accepted_ms = 0;
  TimeMs deadline_ms = 0;     // 0: none (refused)
  TimeMs concluded_ms = 0;
  TimeMs paused_ms = 0;       // when the current supplement began (0: not paused)
  std::string decided_at;     // level that decides it ("district"), fixed when it was accepted: a later
                              // catalogue does not move a case already accepted (or taken in)
  uint64_t catalogue_version = 0;  // the catalogue version it was accepted under (at the decider: the origin's)
  std::string refusal_notice; // 一次性告知: every missing or invalid material, for a refused case
  Light light = Light::kNone;
  std::string evaluation;     // "", satisfied, basically_satisfied, unsatisfied
  std::vector<CaseStep> steps;
  std::vector<std::pair<std::string, std::string>> reviews;  // joint: department → approve/deny
  std::vector<std::string> material_hashes;
  std::vector<std::pair<std::string, std::string>> materials;  // kind → hash, by kind (material_hashes in order)
  std::vector<std::pair<std::string, std::string>> facts;
  std::string credential;     // the number of the credential issued when it concluded ("" none)

  // --- forwarding ---
  // At the decider: the division whose hall accepted the case ("" for the node's own cases).
  std::string held_for;
  // At the origin: the case is decided elsewhere; `decider` is known once it has received it.
  bool forwarded = false;
  std::string decider;
  std::string decider_name;
  // At the origin, for a forwarded case: where it is, in words ("at 南海区 (440605000000):
  // undertaken since 2026-11-23 10:12" / "waiting for the uplink since ..."), and the steps
  // taken at the decider as they arrived.
  std::string location;
  bool waiting_for_uplink = false;
  std::vector<CaseStep> decider_steps;
  // At the origin: a hop on the way up refused the case for good (退回) before any decider took it
  // in: who (its division and name), why and when. Empty while nothing was refused.
  std::string returned_by;
  std::string returned_by_name;
  std::string returned_reason;
  TimeMs returned_ms = 0;
};

// A forwarded case as the decider receives it (from the origin's signed CaseTransfer).
struct ForwardedCase {
  std::string number;
  std::string origin;
  std::string item_code;
  std::string item_name;
  std::string department;
  ItemKind kind = ItemKind::kCommitted;
  Level decide_level = Level::kCity;
  std::string applicant_id;
  std::string applicant_name;
  std::string contact;
  TimeMs accepted_ms = 0;
  TimeMs deadline_ms = 0;
  std::string accepted_by;
  std::vector<std::pair<std::string, std::string>> materials;  // kind → hash, each kind once
  std::vector<std::pair<std::string, std::string>> facts;
  std::string route;        // "440604001001 → 440604001000 → 440604000000", for the receive step
  uint64_t catalogue_version = 0;  // the origin's catalogue when it accepted the case
};

// What receiveForwarded did: the case is new here, or this node already held it (a second
// delivery changes nothing).
enum class Received { kTakenIn, kAlreadyHeld };

// The step name of a CaseProgress that says a hop refused the case on its way up (退回).
inline constexpr const char* kReturnedStep = "returned";

// One step taken at the decider, as the origin receives it; or (step kReturnedStep) the word that
// a hop on the way up refused the case: `decider` is then that hop and `step.note` the reason.
struct DeciderStep {
  std::string number;
  std::string decider;
  std::string decider_name;
  Level decide_level = Level::kCity;  // the level the decider claims the case is decided at
  CaseStep step;
  std::string state;
  TimeMs deadline_ms = 0;
  TimeMs concluded_ms = 0;
  std::string credential;     // the credential issued on conclusion, if any
};

// Issues the item's credential when an approved case concludes at its decide level, inside the
// conclude transaction; returns its number (node/credentials implements it).
using CredentialIssuer = std::function<Result<std::string>(const CaseRecord& c, TimeMs now)>;

// How the case service hands forwarded cases to the network (node/forwarding implements it).
// Both run inside the case's own transaction, so the message commits with the change.
struct ForwardingHooks {
  // A case this node accepted and may not decide: send it up. Returns the outbox seq.
  std::function<Result<uint64_t>(const CaseRecord& c, const std::string& clerk, TimeMs now)> forward;
  // A step on a case held for another node: send it down to the origin.
  std::function<Status(const CaseRecord& c, const CaseStep& step)> progress;
  // Whether an outbox message is still waiting to be shipped (for "waiting for the uplink").
  std::function<bool(uint64_t seq)> pending;
  // Why the parent refused an outbox message for good ("" if it did not): the transfer was set
  // aside at the first hop, and the origin says so.
  std::function<std::string(uint64_t seq)> refused;
};

struct StepRequest {
  std::string step;           // undertake, review, approve, deny, conclude, supplement, resume
  std::string note;
  std::string department;     // joint reviews
  std::string decision;       // joint reviews: approve | deny
};

struct CaseSettings {
  int yellow_working_days = 1;     // yellow when at most this many working days remain
  DurationMs light_scan_interval_ms = 60 * 1000;
};

class CaseService {
 public:
  // `enqueue_up` enqueues a payload of a kind for the parent inside the open transaction (the
  // node provides it; null for the city, which has no parent).
  using EnqueueUp = std::function<Result<uint64_t>(MessageKind kind, const Bytes& payload)>;

  static Result<CaseService> open(Database& db, const DivisionCode& self, const CatalogueStore& catalogue,
                                  const WorkingCalendar& calendar, MaterialStore& materials, EnqueueUp enqueue_up,
                                  CaseSettings settings = {}, Notifier* notifier = nullptr);

  // Intake at the window. Refuses with kInvalidArgument (and records nothing) when the request
  // itself is malformed or the item may not be accepted at this level (the message says where
  // to apply). A well-formed application with missing or invalid materials is recorded as a
  // refused case whose notice lists every problem at once (一次性告知).
  Result<CaseRecord> submit(const IntakeRequest& request, const Principal& clerk, TimeMs now);

  // Moves a case one step. Illegal transitions and missing roles get kFailedPrecondition /
  // kPermissionDenied with a message naming the state, the step and the role needed.
  Result<CaseRecord> step(const std::string& number, const StepRequest& request, const Principal& actor, TimeMs now);

  // Citizen evaluation of a concluded case (once): satisfied | basically_satisfied | unsatisfied.
  Result<CaseRecord> evaluate(const std::string& number, const std::string& grade, TimeMs now);
  // A complaint against a case (number) or a unit (department), recorded and sent upward.
  Status complain(const std::string& number, const std::string& department, const std::string& text, TimeMs now);

  Result<CaseRecord> get(const std::string& number);
  // Open or all cases, newest first; filter by state and/or light ("" = any).
  Result<std::vector<CaseRecord>> list(const std::string& state, const std::string& light, size_t limit, TimeMs now);
  // Open cases whose light is yellow or red now.
  Result<std::vector<CaseRecord>> warnings(TimeMs now);

  // Records every transition into yellow or red that has happened by `now` (each once per
  // case) and enqueues its event. Returns how many transitions were recorded. The node calls
  // it from a timer.
  Result<int> scanLights(TimeMs now);

  Light lightOf(const CaseRecord& c, TimeMs now) const;
  const CaseSettings& settings() const { return settings_; }

  // --- forwarding (node/forwarding calls these inside its applying transaction) ---
  void setForwardingHooks(ForwardingHooks hooks);
  void setCredentialIssuer(CredentialIssuer issuer);
  // The decider takes in a forwarded case: stored as held for its origin, with a "receive" step
  // (which itself goes back down). A case already held is left alone (Received::kAlreadyHeld).
  // A material kind listed twice is kInvalidArgument (nothing is written).
  Result<Received> receiveForwarded(const ForwardedCase& fc, TimeMs now);
  // The origin records a step taken at the decider and mirrors its state. Only the origin's
  // ancestor at the case's decide level (as recorded when it was accepted here) may report steps;
  // anyone else is kUnauthorized. Steps arrive in order; one seen before is ignored (returns
  // false). A kReturnedStep is accepted from an ancestor at or below the decide level while no
  // decider has taken the case in; it is recorded once and shown in `location`.
  Result<bool> applyDeciderStep(const DeciderStep& s, TimeMs now);

  struct Impl;
 private:
  explicit CaseService(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<Impl> impl_;
  CaseSettings settings_;
};

}  // namespace tongban
