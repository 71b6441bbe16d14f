@0xf56e907662bf9781;
# Lookups (docs/protocol.md "Lookups"): a clerk anywhere asks which materials and credentials a
# holder has, or whether a material or credential is genuine. A node answers from what it holds
# (its own records and its subtree's); otherwise it asks its parent on tb.<parent>.lookup, up to
# the city, which holds everything. All three messages travel as payloads of sealed envelopes.

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("tongban::wire");

# The question, as asked: 1 = holder ID (what does this person/organisation hold), 2 = material
# (SHA-256 hex), 3 = credential number.

# kind 120 (up, not durable): "answer this within budgetMs". Signed by the asking child;
# target = its parent; the envelope's nonce binds the reply to this request.
struct LookupRequest {
  question @0 :UInt8;
  key @1 :Text;                # normalised: ID upper case, hash lower case
  budgetMs @2 :UInt32;         # how long the asker waits for the reply (the remaining deadline)
  askedAt @3 :Text;            # division where the clerk asked (logs only)
}

# One record in an answer. For a material `payload` is the MaterialRecord (node.capnp) as held.
struct LookupRecordMsg {
  type @0 :Text;               # "material" | "credential"
  id @1 :Text;                 # material hash, credential number
  holder @2 :Text;
  kind @3 :Text;               # material kind, credential item
  issuedAt @4 :Text;           # division that stored / issued it
  atMs @5 :Int64;              # verified / issued at
  sealVerified @6 :Bool;       # the answering node checked the issuer's seal itself
  payload @7 :Data;
  # Credentials: the answering node's verdict on the credential when it answered (valid, revoked,
  # suspended, superseded, expired, not_yet_valid, unknown), why, the newest version it holds and
  # how fresh its status data is.
  status @8 :Text;
  statusReason @9 :Text;
  currentVersion @10 :UInt32;
  statusFreshAsOfMs @11 :Int64;
}

# kind 121 (statement): the answer, signed by the node that answered (FOUND from its store or
# COULD_NOT_ASK when its own link failed; NOT_FOUND only by the city). Not bound to one asker:
# a FOUND answer is cached and passed on unchanged to later askers of the same question.
struct LookupAnswer {
  question @0 :UInt8;
  key @1 :Text;
  outcome @2 :UInt8;           # 1 found, 2 not found, 3 could not ask
  records @3 :List(LookupRecordMsg);
  truncated @4 :Bool;          # more records exist than an answer carries
  answererName @5 :Text;
  note @6 :Text;
  failedLink @7 :Text;         # could not ask: "<child code> → <parent code>"
  reason @8 :Text;             # could not ask: "石湾镇 → 禅城区: no answer within 1200 ms"
  linkDownSinceMs @9 :Int64;   # 0 if unknown
  # Not found: the city's completeness watermark (every durable record created in the tree before
  # it had reached the city) and, when it lags, the subtree holding it back.
  completeAsOfMs @10 :Int64;
  heldBackBy @11 :Text;        # a division code, or ""
  heldBackByName @12 :Text;
}

struct LookupHopMsg {
  division @0 :Text;
  name @1 :Text;
  atMs @2 :Int64;              # when this hop received the question
}

# kind 122 (reply): the answer on its way down. Signed by the replying hop (the asker's parent);
# target = the asker, nonce = the request's. Carries the answering node's sealed LookupAnswer
# unchanged, and the route from the replying hop up to the node that answered (or whose cache
# did). A request the parent could not verify gets `error` and nonce 0.
struct LookupReply {
  answer @0 :Data;             # sealed envelope, kind 121
  route @1 :List(LookupHopMsg);
  cachedAt @2 :Text;           # division whose cache served the answer, "" if fresh
  error @3 :Text;              # "MALFORMED: ..." when the request was refused
}
