#include "node/lookup/lookup.h"

#include <algorithm>
#include <list>
#include <map>
#include <unordered_map>

#include <spdlog/spdlog.h>

#include "federation/store/database.h"
#include "federation/trust/certificate.h"
#include "node/lookup/lookup_wire.h"

namespace tongban {

namespace {

std::string cacheKey(const LookupQuery& q) { return std::string(lookupQuestionName(q.question)) + ":" + q.key; }

}  // namespace

// ---------------------------------------------------------------------------------------------
// The service

namespace {

// An answer whose envelope verified and whose content fits the question.
struct VerifiedAnswer {
  Bytes sealed;
  AnswerMsg answer;
  DivisionCode signer;
  TimeMs signed_at_ms = 0;
};

// What a hop has for a question: the answer, and how it got here.
struct Resolution {
  VerifiedAnswer answer;
  std::vector<LookupHop> route_above;  // from our parent up to the answerer (or the cache)
  std::string cached_at;
};

using ResolveCallback = std::function<void(Resolution)>;

struct Waiter {
  uint64_t id = 0;
  ResolveCallback done;
  Clock::TimerId timer = 0;  // joiners only: their own deadline
  TimeMs deadline_ms = 0;    // the latest instant this waiter can still use an answer from upstream
};

// Everyone waiting at this node for the parent's answer to one question, and when the upstream
// request in flight for them gives up.
struct Pending {
  std::vector<Waiter> waiters;
  TimeMs request_deadline_ms = 0;
};

struct CacheEntry {
  std::string key;
  VerifiedAnswer answer;
  TimeMs expires_at_ms = 0;
  size_t bytes = 0;
};

// What a cached answer costs: its sealed bytes plus the decoded copy of its records.
size_t cacheEntryBytes(const VerifiedAnswer& a) {
  size_t n = a.sealed.size() + sizeof(CacheEntry);
  for (const auto& r : a.answer.records) {
    n += sizeof(LookupRecord) + r.payload.size() + r.type.size() + r.id.size() + r.holder.size() + r.kind.size() +
         r.issued_at.size() + r.status.size() + r.status_reason.size();
  }
  return n + a.answer.note.size() + a.answer.answerer_name.size();
}

bool namesCredential(const VerifiedAnswer& a, const std::string& number) {
  for (const auto& r : a.answer.records) {
    if (r.type == "credential" && r.id == number) return true;
  }
  return false;
}

std::string nameOf(const Bytes& signed_certificate) {
  auto info = peekCertificate(signed_certificate);
  return info ? info->name : std::string();
}

}  // namespace

struct LookupService::Impl {
  const Identity* identity = nullptr;
  const Verifier* verifier = nullptr;
  Clock* clock = nullptr;
  Transport* transport = nullptr;
  Random* random = nullptr;
  LookupSettings settings;
  UplinkProbe uplink;
  std::optional<DivisionCode> parent;
  std::string parent_name;
  std::vector<std::unique_ptr<LookupSource>> sources;
  CredentialRecordCheck credential_check;
  CompletenessProbe completeness;
  Transport::SubscriptionId subscription = 0;
  std::shared_ptr<bool> alive = std::make_shared<bool>(true);
  bool stopped = false;
  Stats stats;
  std::map<std::string, Pending> pending;  // question → who waits for the parent
  uint64_t next_waiter = 1;
  std::list<CacheEntry> lru;  // most recently used first
  std::unordered_map<std::string, std::list<CacheEntry>::iterator> cache;
  size_t cache_bytes = 0;

  const DivisionCode& self() const { return identity->division; }
  std::string selfLabel() const { return identity->name.empty() ? self().str() : identity->name; }
  std::string parentLabel() const { return parent_name.empty() ? parent->str() : parent_name; }

  // ---- cache ----
  const VerifiedAnswer* cached(const std::string& key, TimeMs now) {
    auto it = cache.find(key);
    if (it == cache.end()) return nullptr;
    if (it->second->expires_at_ms <= now) {
      forget(it);
      return nullptr;
    }
    lru.splice(lru.begin(), lru, it->second);
    return &it->second->answer;
  }

  void forget(std::unordered_map<std::string, std::list<CacheEntry>::iterator>::iterator it) {
    cache_bytes -= it->second->bytes;
    lru.erase(it->second);
    cache.erase(it);
  }

  void remember(const std::string& key, const VerifiedAnswer& answer) {
    if (settings.cache_entries == 0) return;
    if (auto it = cache.find(key); it != cache.end()) forget(it);
    const size_t bytes = cacheEntryBytes(answer);
    if (bytes > settings.cache_max_bytes) return;  // would push out everything else and still not fit
    lru.push_front(CacheEntry{key, answer, answer.signed_at_ms + settings.cache_ttl_ms, bytes});
    cache[key] = lru.begin();
    cache_bytes += bytes;
    while (cache.size() > settings.cache_entries || cache_bytes > settings.cache_max_bytes) {
      forget(cache.find(lru.back().key));
    }
  }

  void forgetCredential(const std::string& number) {
    const std::string own_key = cacheKey(LookupQuery{LookupQuestion::kCredential, number});
    for (auto it = lru.begin(); it != lru.end();) {
      auto next = std::next(it);
      if (it->key == own_key || namesCredential(it->answer, number)) forget(cache.find(it->key));
      it = next;
    }
  }

  void clear() {
    lru.clear();
    cache.clear();
    cache_bytes = 0;
  }

  // ---- our own statements ----
  Resolution ownAnswer(const LookupQuery& q, LookupOutcome outcome, std::vector<LookupRecord> records = {},
                       std::string note = {}, std::string failed_link = {}, std::string reason = {},
                       TimeMs since = 0, const Completeness* complete = nullptr) {
    AnswerMsg a;
    if (complete) {
      a.complete_as_of_ms = std::min(complete->as_of_ms, clock->now());
      a.held_back_by = complete->held_back_by;
      a.held_back_by_name = complete->held_back_by_name;
    }
    a.query = q;
    a.outcome = outcome;
    if (records.size() > kMaxLookupRecords) {
      records.resize(kMaxLookupRecords);
      a.truncated = true;
    }
    a.records = std::move(records);
    a.answerer_name = identity->name;
    a.note = std::move(note);
    a.failed_link = std::move(failed_link);
    a.reason = std::move(reason);
    a.link_down_since_ms = since;
    Bytes payload = encodeAnswer(a);
    // An answer over the cap (64 records of long fields) loses records until it fits.
    while (payload.size() + 8 * 1024 > kMaxLookupAnswerBytes && !a.records.empty()) {
      a.records.pop_back();
      a.truncated = true;
      payload = encodeAnswer(a);
    }
    SealParams p;
    p.kind = kLookupAnswerKind;
    p.timestamp_ms = clock->now();
    p.target = self();  // a statement: not addressed to anyone in particular
    p.payload = std::move(payload);
    Resolution r;
    r.answer.sealed = sealEnvelope(*identity, p);
    r.answer.answer = std::move(a);
    r.answer.signer = self();
    r.answer.signed_at_ms = p.timestamp_ms;
    return r;
  }

  Resolution couldNotAsk(const LookupQuery& q, const std::string& reason, bool link_failed) {
    std::string link;
    TimeMs since = 0;
    if (parent) {
      link = self().str() + " → " + parent->str();
      if (link_failed && uplink) {
        auto view = uplink();
        if (view && view->link != "up") since = view->since_ms;
      }
    }
    return ownAnswer(q, LookupOutcome::kCouldNotAsk, {}, {}, link, reason, since);
  }

  // This node's own store could not be read: whatever it holds is unknown, so neither it nor an
  // answer from above may say "not found".
  Resolution storeFailed(const LookupQuery& q, const std::string& why) {
    return ownAnswer(q, LookupOutcome::kCouldNotAsk, {}, {}, {},
                     "the records at " + selfLabel() + " could not be read (" + why +
                         "), so whether it holds a " + lookupQuestionName(q.question) + " record is unknown");
  }

  // The city's "not found", with how complete its records are.
  Resolution notFound(const LookupQuery& q, std::string note) {
    Completeness c = completeness ? completeness() : Completeness{};
    return ownAnswer(q, LookupOutcome::kNotFound, {}, std::move(note), {}, {}, 0, &c);
  }

  // ---- verification of what comes from upstream ----
  Result<VerifiedAnswer> verifyAnswer(const Bytes& sealed, const LookupQuery& q, TimeMs asked_at) {
    if (sealed.size() > kMaxLookupAnswerBytes) {
      return Status(ErrorCode::kOversize, "lookup answer of " + std::to_string(sealed.size()) + " bytes");
    }
    const TimeMs now = clock->now();
    TB_ASSIGN_OR_RETURN(OpenedEnvelope e, verifier->open(sealed, self(), now, nullptr));
    if (e.kind != kLookupAnswerKind) {
      return Status(ErrorCode::kMalformed, "expected a lookup answer (kind 121), got kind " + std::to_string(e.kind));
    }
    if (!e.signer.covers(self())) {
      return Status(ErrorCode::kUnauthorized, "lookup answer signed by " + e.signer.str() + ", which is not " +
                                                  self().str() + " or one of its ancestors");
    }
    TB_ASSIGN_OR_RETURN(AnswerMsg a, decodeAnswer(e.payload));
    if (a.query.question != q.question || a.query.key != q.key) {
      return Status(ErrorCode::kMalformed, "lookup answer is for another question");
    }
    switch (a.outcome) {
      case LookupOutcome::kNotFound:
        if (e.signer.level() != Level::kCity) {
          return Status(ErrorCode::kUnauthorized, "\"not found\" signed by " + e.signer.str() +
                                                      "; only the city may say a record does not exist");
        }
        [[fallthrough]];
      case LookupOutcome::kCouldNotAsk:
        if (!a.records.empty()) return Status(ErrorCode::kMalformed, "a negative lookup answer carries records");
        if (e.timestamp_ms + settings.freshness_slack_ms < asked_at) {
          return Status(ErrorCode::kReplay, "a negative lookup answer signed before the question was asked");
        }
        if (a.complete_as_of_ms > e.timestamp_ms) {
          return Status(ErrorCode::kMalformed, "a \"not found\" claims completeness after the moment it was signed");
        }
        break;
      case LookupOutcome::kFound:
        if (a.records.empty()) return Status(ErrorCode::kMalformed, "a \"found\" answer without records");
        if (now - e.timestamp_ms > settings.cache_ttl_ms + settings.freshness_slack_ms) {
          return Status(ErrorCode::kReplay, "a \"found\" answer older than the cache lifetime");
        }
        for (const auto& r : a.records) {
          const bool matches = q.question == LookupQuestion::kHolder
                                   ? r.holder == q.key
                                   : r.id == q.key && r.type == (q.question == LookupQuestion::kMaterial ? "material"
                                                                                                         : "credential");
          if (!matches) return Status(ErrorCode::kMalformed, "a record in the answer does not match the question");
          auto issuer = DivisionCode::parse(r.issued_at);
          if (r.type == "credential") {
            // A credential vouches for itself: its payload is the issuer's sealed document. A
            // node may hold one from outside its subtree (the hall that accepted the case holds
            // what its ancestor issued), so check the document, not the answerer's subtree.
            auto document = verifier->open(r.payload, self(), now, nullptr);
            if (!document || !issuer || document->signer != *issuer) {
              return Status(ErrorCode::kUnauthorized, e.signer.str() + " answered with a credential " + r.id +
                                                          " that is not a document signed by " + r.issued_at);
            }
            // ... and it must be the credential the record says it is.
            if (!credential_check) {
              return Status(ErrorCode::kUnauthorized, "credential " + r.id + " cannot be checked at " + self().str());
            }
            if (Status st = credential_check(r, *document); !st.isOk()) {
              return Status(ErrorCode::kUnauthorized, e.signer.str() + " answered with a credential record " + r.id +
                                                          " that does not match its document: " + st.message());
            }
          } else if (!issuer || !e.signer.covers(*issuer)) {
            return Status(ErrorCode::kUnauthorized, e.signer.str() + " answered for a record of " + r.issued_at +
                                                        ", which is outside its subtree");
          }
        }
        break;
    }
    return VerifiedAnswer{sealed, std::move(a), e.signer, e.timestamp_ms};
  }

  // ---- resolving a question at this hop ----
  void resolve(const LookupQuery& q, DurationMs budget_ms, ResolveCallback done) {
    const std::string key = cacheKey(q);
    const TimeMs now = clock->now();
    // 1. Our own store: authoritative and fresh for our subtree.
    std::vector<LookupRecord> records;
    bool any_source = false;
    std::string store_error;  // a source that could not read its store
    for (auto& source : sources) {
      if (!source->answers(q.question)) continue;
      any_source = true;
      const uint64_t skipped_before = source->skippedRecords();
      auto found = source->find(q, kMaxLookupRecords + 1 - std::min(records.size(), kMaxLookupRecords));
      if (found && found->empty() && source->skippedRecords() > skipped_before && store_error.empty()) {
        // Nothing readable, but something was there: a damaged record is not an absent one.
        store_error = "a record held for it is damaged";
      }
      if (!found) {
        ++stats.source_failures;
        spdlog::error("[{}] lookup source failed for a {} question: {}", self().str(), lookupQuestionName(q.question),
                      found.status().toString());
        if (store_error.empty()) store_error = found.status().toString();
        continue;
      }
      for (auto& r : *found) records.push_back(std::move(r));
    }
    if (!records.empty()) {
      std::string note;
      if (q.question == LookupQuestion::kHolder && parent) {
        note = "records held in " + selfLabel() + "'s area; other divisions may hold more (the city holds all)";
      }
      if (!store_error.empty()) note += (note.empty() ? "" : "; ") + std::string("part of the records here could not be read");
      return done(ownAnswer(q, LookupOutcome::kFound, std::move(records), note));
    }
    // 2. A positive answer that passed here lately.
    if (const VerifiedAnswer* hit = cached(key, now)) {
      ++stats.cache_hits;
      return done(Resolution{*hit, {}, self().str()});
    }
    // Our store failed: what it holds is unknown, so a "not found" (ours, or the city's from
    // above while a record of ours may still be on its way up) must not get through.
    if (!store_error.empty()) {
      if (!parent) return done(storeFailed(q, store_error));
      done = [this, alive = alive, q, store_error, done = std::move(done)](Resolution r) {
        if (*alive && r.answer.answer.outcome == LookupOutcome::kNotFound) return done(storeFailed(q, store_error));
        done(std::move(r));
      };
    }
    // 3. The city holds everything that reached it: nothing here means nothing anywhere created
    //    before its completeness watermark, which the answer states.
    if (!parent) {
      std::string note;
      if (!any_source) {
        note = std::string("no ") + lookupQuestionName(q.question) + " records are kept in this network, so none exists";
      }
      return done(notFound(q, note));
    }
    // 4. Someone here already asked the parent the same question: wait for that answer.
    auto waiting = pending.find(key);
    if (waiting != pending.end()) {
      auto& list = waiting->second.waiters;
      if (list.size() >= settings.max_waiters_per_question) {
        return done(couldNotAsk(q, "too many lookups of this question wait at " + selfLabel() + "; try again shortly",
                                false));
      }
      const DurationMs wait_ms = budget_ms - settings.hop_margin_ms;
      if (wait_ms <= 0) return done(budgetExhausted(q, budget_ms));
      ++stats.coalesced;
      Waiter w{next_waiter++, std::move(done), 0, now + wait_ms};
      const uint64_t id = w.id;
      w.timer = clock->schedule(wait_ms, [this, alive = alive, key, id, q, wait_ms] {
        if (!*alive) return;
        auto it = pending.find(key);
        if (it == pending.end()) return;
        auto& waiters = it->second.waiters;
        auto me = std::find_if(waiters.begin(), waiters.end(), [id](const Waiter& x) { return x.id == id; });
        if (me == waiters.end()) return;
        ResolveCallback cb = std::move(me->done);
        waiters.erase(me);
        cb(couldNotAsk(q, selfLabel() + " → " + parentLabel() + ": no answer within " + std::to_string(wait_ms) +
                              " ms (time budget exhausted at " + selfLabel() + ")",
                       true));
      });
      list.push_back(std::move(w));
      return;
    }
    // 5. Ask the parent, keeping a margin for the way back down.
    const DurationMs upstream_ms = budget_ms - settings.hop_margin_ms;
    if (upstream_ms < settings.min_upstream_ms) return done(budgetExhausted(q, budget_ms));
    if (pending.size() >= settings.max_pending_questions) {
      return done(couldNotAsk(q, "too many questions wait for " + parentLabel() + " at " + selfLabel() +
                                     "; try again shortly",
                              false));
    }
    pending[key].waiters.push_back(Waiter{next_waiter++, std::move(done), 0, now + upstream_ms});
    askParent(key, q, upstream_ms);
  }

  Resolution budgetExhausted(const LookupQuery& q, DurationMs budget_ms) {
    return couldNotAsk(q,
                       "time budget exhausted at " + selfLabel() + ": " + std::to_string(std::max<DurationMs>(budget_ms, 0)) +
                           " ms left, at least " + std::to_string(settings.min_upstream_ms + settings.hop_margin_ms) +
                           " ms needed to ask " + parentLabel(),
                       false);
  }

  void askParent(const std::string& key, const LookupQuery& q, DurationMs upstream_ms) {
    uint64_t nonce = random->next();
    if (nonce == 0) nonce = 1;  // 0 marks a refusal that could not be bound to a request
    RequestMsg m{q, static_cast<uint32_t>(upstream_ms), self().str()};
    SealParams p;
    p.kind = kLookupRequestKind;
    p.timestamp_ms = clock->now();
    p.target = *parent;
    p.payload = encodeRequest(m);
    p.nonce = nonce;
    ++stats.upstream_requests;
    const TimeMs asked_at = p.timestamp_ms;
    pending[key].request_deadline_ms = asked_at + upstream_ms;
    transport->request(lookupSubject(*parent), sealEnvelope(*identity, p), upstream_ms,
                       [this, alive = alive, key, q, nonce, asked_at, upstream_ms](Result<Bytes> reply) {
                         if (!*alive) return;
                         // Out of time or no link: a joiner with more time left may still get through.
                         const bool link_failed = !reply && (reply.status().code() == ErrorCode::kTimeout ||
                                                             reply.status().code() == ErrorCode::kNoResponders ||
                                                             reply.status().code() == ErrorCode::kUnavailable);
                         finish(key, q, fromParent(q, nonce, asked_at, upstream_ms, reply), link_failed);
                       });
  }

  void finish(const std::string& key, const LookupQuery& q, const Resolution& r, bool link_failed) {
    auto it = pending.find(key);
    if (it == pending.end()) return;
    Pending waiting = std::move(it->second);
    pending.erase(it);
    const TimeMs now = clock->now();
    std::vector<Waiter> again;  // joiners whose own deadline outlasts the request that failed
    for (auto& w : waiting.waiters) {
      if (link_failed && w.deadline_ms > waiting.request_deadline_ms &&
          w.deadline_ms - now >= settings.min_upstream_ms) {
        again.push_back(std::move(w));
        continue;
      }
      if (w.timer) clock->cancel(w.timer);
      w.done(r);
    }
    if (again.empty()) return;
    // Each keeps its own timer; the new request lasts as long as the longest of them can wait.
    TimeMs latest = 0;
    for (const auto& w : again) latest = std::max(latest, w.deadline_ms);
    stats.reasked += again.size();
    auto& slot = pending[key];
    for (auto& w : again) slot.waiters.push_back(std::move(w));
    askParent(key, q, latest - now);
  }

  Resolution fromParent(const LookupQuery& q, uint64_t nonce, TimeMs asked_at, DurationMs upstream_ms,
                        const Result<Bytes>& reply) {
    const std::string link = selfLabel() + " → " + parentLabel() + ": ";
    if (!reply) {
      switch (reply.status().code()) {
        case ErrorCode::kTimeout:
          return couldNotAsk(q, link + "no answer within " + std::to_string(upstream_ms) + " ms", true);
        case ErrorCode::kNoResponders:
          return couldNotAsk(q, link + "nobody answers on " + lookupSubject(*parent) + " (" + parentLabel() +
                                    " is down or not on the bus)",
                             true);
        case ErrorCode::kUnavailable:
          return couldNotAsk(q, link + selfLabel() + " is not connected to the message bus", true);
        default:
          return couldNotAsk(q, link + reply.status().toString(), true);
      }
    }
    auto rejected = [&](const Status& why) {
      ++stats.answers_rejected;
      spdlog::warn("[{}] rejected a lookup reply from {}: {}", self().str(), parent->str(), why.toString());
      return couldNotAsk(q, link + "its reply failed verification (" + why.toString() + ")", false);
    };
    if (reply->size() > kMaxLookupReplyBytes) {
      return rejected(Status(ErrorCode::kOversize, std::to_string(reply->size()) + " bytes"));
    }
    auto opened = verifier->open(*reply, self(), clock->now(), nullptr);
    if (!opened) return rejected(opened.status());
    if (opened->kind != kLookupReplyKind) return rejected(Status(ErrorCode::kMalformed, "not a lookup reply"));
    if (opened->signer != *parent) {
      return rejected(Status(ErrorCode::kUnauthorized, "signed by " + opened->signer.str() + ", not our parent"));
    }
    auto body = decodeReply(opened->payload);
    if (!body) return rejected(body.status());
    if (!body->error.empty() && (opened->nonce == 0 || opened->nonce == nonce)) {
      return couldNotAsk(q, link + parentLabel() + " refused the question: " + body->error, false);
    }
    if (opened->nonce != nonce || opened->target != self()) {
      return rejected(Status(ErrorCode::kReplay, "the reply is not for this request"));
    }
    // The route runs from our parent upward, one level per hop.
    if (body->route.empty() || body->route.front().division != parent->str()) {
      return rejected(Status(ErrorCode::kMalformed, "the route does not start at our parent"));
    }
    for (size_t i = 1; i < body->route.size(); ++i) {
      auto lower = DivisionCode::parse(body->route[i - 1].division);
      auto upper = DivisionCode::parse(body->route[i].division);
      if (!lower || !upper || !upper->isParentOf(*lower)) {
        return rejected(Status(ErrorCode::kMalformed, "the route does not go up one level per hop"));
      }
    }
    auto answer = verifyAnswer(body->answer, q, asked_at);
    if (!answer) return rejected(answer.status());
    // The route ends where the answer came from: the answerer, or the node whose cache served it
    // (which the answerer covers: a cache holds only what came from above it).
    const std::string& last = body->route.back().division;
    if (body->cached_at.empty() ? last != answer->signer.str() : last != body->cached_at) {
      return rejected(Status(ErrorCode::kMalformed, "the route ends at " + last + ", not at " +
                                                        (body->cached_at.empty() ? "the answerer " + answer->signer.str()
                                                                                 : "the cache at " + body->cached_at)));
    }
    if (!body->cached_at.empty()) {
      auto cache_at = DivisionCode::parse(body->cached_at);
      if (answer->answer.outcome != LookupOutcome::kFound) {
        return rejected(Status(ErrorCode::kMalformed, "only a \"found\" answer is served from a cache"));
      }
      if (!cache_at || !answer->signer.covers(*cache_at) || answer->signer == *cache_at) {
        return rejected(Status(ErrorCode::kMalformed, "an answer signed by " + answer->signer.str() +
                                                          " cannot have been cached at " + body->cached_at));
      }
    }
    if (answer->answer.outcome == LookupOutcome::kFound) remember(cacheKey(q), *answer);
    return Resolution{std::move(answer).value(), std::move(body->route), body->cached_at};
  }

  // ---- serving a child ----
  void onRequest(const InboundMessage& m) {
    if (stopped || m.reply_to.empty()) return;  // nobody to answer
    const TimeMs received_at = clock->now();
    auto refuse = [&](const Status& why, const std::optional<DivisionCode>& asker, uint64_t nonce) {
      ++stats.requests_refused;
      spdlog::warn("[{}] refused a lookup request: {}", self().str(), why.toString());
      ReplyMsg r;
      r.error = why.toString();
      SealParams p;
      p.kind = kLookupReplyKind;
      p.timestamp_ms = received_at;
      p.target = asker.value_or(self());
      p.payload = encodeReply(r);
      p.nonce = nonce;
      (void)transport->reply(m, sealEnvelope(*identity, p));
    };
    if (m.data.size() > kMaxLookupRequestBytes) {
      return refuse(Status(ErrorCode::kOversize, "lookup request of " + std::to_string(m.data.size()) +
                                                     " bytes; the limit is " + std::to_string(kMaxLookupRequestBytes)),
                    std::nullopt, 0);
    }
    auto e = verifier->open(m.data, self(), received_at, nullptr);
    if (!e) {
      // Addressed to whoever the envelope claims to be (a reply must name its receiver), so a
      // genuine child whose certificate expired learns why; unbound (nonce 0): it proves nothing.
      std::optional<DivisionCode> claimed;
      if (auto peeked = peekEnvelope(m.data); peeked) {
        if (auto c = DivisionCode::parse(peeked->signer); c) claimed = *c;
      }
      return refuse(e.status(), claimed, 0);
    }
    if (e->kind != kLookupRequestKind) {
      return refuse(Status(ErrorCode::kMalformed, "kind " + std::to_string(e->kind) + " sent to " +
                                                      lookupSubject(self()) + "; expected a lookup request (120)"),
                    e->signer, e->nonce);
    }
    auto request = decodeRequest(e->payload);
    if (!request) return refuse(request.status(), e->signer, e->nonce);
    ++stats.requests_served;
    const DurationMs budget = std::min<DurationMs>(request->budget_ms, settings.max_budget_ms);
    InboundMessage to{m.subject, m.reply_to, {}};
    resolve(request->query, budget,
            [this, alive = alive, to, asker = e->signer, nonce = e->nonce, received_at](Resolution r) {
              if (!*alive) return;
              ReplyMsg reply;
              reply.answer = std::move(r.answer.sealed);
              reply.route.push_back(LookupHop{self().str(), identity->name, received_at});
              for (auto& hop : r.route_above) reply.route.push_back(std::move(hop));
              if (reply.route.size() > kMaxLookupRouteHops) reply.route.resize(kMaxLookupRouteHops);
              reply.cached_at = r.cached_at;
              SealParams p;
              p.kind = kLookupReplyKind;
              p.timestamp_ms = clock->now();
              p.target = asker;
              p.payload = encodeReply(reply);
              p.nonce = nonce;
              (void)transport->reply(to, sealEnvelope(*identity, p));
            });
  }

  LookupResult toResult(const LookupQuery& q, const Resolution& r, TimeMs asked_at) {
    LookupResult out;
    const AnswerMsg& a = r.answer.answer;
    out.outcome = a.outcome;
    out.query = q;
    out.answered_by = r.answer.signer.str();
    out.answered_by_name = a.answerer_name;
    out.answered_at_ms = r.answer.signed_at_ms;
    out.cached_at = r.cached_at;
    out.route.push_back(LookupHop{self().str(), identity->name, asked_at});
    for (const auto& hop : r.route_above) out.route.push_back(hop);
    out.records = a.records;
    out.truncated = a.truncated;
    out.note = a.note;
    out.failed_link = a.failed_link;
    out.reason = a.reason;
    out.link_down_since_ms = a.link_down_since_ms;
    out.complete_as_of_ms = a.complete_as_of_ms;
    out.held_back_by = a.held_back_by;
    out.held_back_by_name = a.held_back_by_name;
    out.took_ms = clock->now() - asked_at;
    return out;
  }

  void stop() {
    if (stopped) return;
    stopped = true;
    if (subscription) transport->unsubscribe(subscription);
    auto waiting = std::move(pending);
    pending.clear();
    // Answer everyone still waiting while the service can still sign; then go quiet.
    for (auto& [key, entry] : waiting) {
      for (auto& w : entry.waiters) {
        if (w.timer) clock->cancel(w.timer);
        LookupQuery q;
        auto colon = key.find(':');
        const std::string name = key.substr(0, colon);
        q.question = name == "holder" ? LookupQuestion::kHolder
                     : name == "material" ? LookupQuestion::kMaterial
                                          : LookupQuestion::kCredential;
        q.key = key.substr(colon + 1);
        w.done(couldNotAsk(q, selfLabel() + " is stopping", false));
      }
    }
    *alive = false;
  }
};

LookupService::LookupService(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
LookupService::~LookupService() { stop(); }

Result<std::unique_ptr<LookupService>> LookupService::start(const Identity& identity, const Verifier& verifier,
                                                            Clock& clock, Transport& transport, Random& random,
                                                            LookupSettings settings, UplinkProbe uplink) {
  if (settings.hop_margin_ms < 0 || settings.min_upstream_ms <= 0 || settings.max_budget_ms <= 0 ||
      settings.default_budget_ms <= 0 || settings.cache_ttl_ms < 0) {
    return Status(ErrorCode::kInvalidArgument, "lookup settings: budgets and the minimum upstream time must be positive");
  }
  auto impl = std::make_unique<Impl>();
  impl->identity = &identity;
  impl->verifier = &verifier;
  impl->clock = &clock;
  impl->transport = &transport;
  impl->random = &random;
  impl->settings = settings;
  impl->uplink = std::move(uplink);
  impl->parent = identity.division.parent();
  if (impl->parent) {
    // The parent's name, for messages a person reads: its certificate is next in our chain (or
    // it is the city, whose certificate is the root).
    impl->parent_name = identity.chain.size() >= 2 ? nameOf(identity.chain[1]) : nameOf(identity.root_certificate);
  }
  Impl* raw = impl.get();
  auto sub = transport.subscribe(lookupSubject(identity.division),
                                 [raw](const InboundMessage& m) { raw->onRequest(m); });
  if (!sub) return sub.status().withContext("subscribing to " + lookupSubject(identity.division));
  impl->subscription = *sub;
  return std::unique_ptr<LookupService>(new LookupService(std::move(impl)));
}

void LookupService::addSource(std::unique_ptr<LookupSource> source) { impl_->sources.push_back(std::move(source)); }

void LookupService::lookup(const LookupQuery& query, DurationMs budget_ms, Callback done) {
  Impl* impl = impl_.get();
  ++impl->stats.lookups;
  const TimeMs asked_at = impl->clock->now();
  if (budget_ms <= 0) budget_ms = impl->settings.default_budget_ms;
  budget_ms = std::min(budget_ms, impl->settings.max_budget_ms);
  // The callback always runs later, from the executor, never inside lookup().
  auto deliver = [impl, query, asked_at, done = std::move(done)](Resolution r) {
    LookupResult result = impl->toResult(query, r, asked_at);
    impl->clock->schedule(0, [done, result = std::move(result)]() mutable { done(std::move(result)); });
  };
  if (impl->stopped) return deliver(impl->couldNotAsk(query, impl->selfLabel() + " is stopping", false));
  impl->resolve(query, budget_ms, std::move(deliver));
}

void LookupService::setCredentialCheck(CredentialRecordCheck check) { impl_->credential_check = std::move(check); }
void LookupService::setCompleteness(CompletenessProbe probe) { impl_->completeness = std::move(probe); }

void LookupService::clearCache() { impl_->clear(); }
void LookupService::forgetCredential(const std::string& number) { impl_->forgetCredential(number); }

size_t LookupService::cacheSize() const { return impl_->cache.size(); }
size_t LookupService::cacheBytes() const { return impl_->cache_bytes; }
uint64_t LookupService::skippedRecords() const {
  uint64_t n = 0;
  for (const auto& source : impl_->sources) n += source->skippedRecords();
  return n;
}
const LookupService::Stats& LookupService::stats() const { return impl_->stats; }
void LookupService::stop() { impl_->stop(); }

}  // namespace tongban
