@0xd1c3a9e47b2f8a61;
# Forwarded cases (上报件): what a hall accepts but may not decide travels up hop by hop to the
# deciding level, and every step taken there travels back down to the hall that accepted it.
# Kinds, subjects and the rules each hop checks: docs/protocol.md, "Forwarded cases".

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("tongban::wire");

# kind 104 (statement, sealed by the accepting node): the case as accepted. It travels unchanged
# inside CaseRelay, so the decider checks the origin's own signature, not only the last hop's.
struct CaseTransfer {
  caseNumber @0 :Text;           # <origin>-<8 digits>
  origin @1 :Text;               # the accepting division (= the signer)
  originName @2 :Text;
  itemCode @3 :Text;
  itemName @4 :Text;
  department @5 :Text;
  kind @6 :Text;                 # immediate | committed | joint | upward
  decideLevel @7 :UInt8;         # 1 city .. 4 village: the first node of this level on the way up decides
  applicantId @8 :Text;
  applicantName @9 :Text;
  contact @10 :Text;
  acceptedAtMs @11 :Int64;       # the deadline clock starts here, at the origin
  deadlineMs @12 :Int64;
  acceptedBy @13 :Text;          # the clerk who accepted it
  note @14 :Text;
  materials @15 :List(Data);     # MaterialRecord (node.capnp) of each material, with its seal
  catalogueVersion @16 :UInt64;
  facts @17 :List(KeyValue);     # key facts for the credential (plates, address ...)
}

struct KeyValue {
  key @0 :Text;
  value @1 :Text;
}

# kind 106 (statement, sealed by the deciding node): the case after one step taken there. Or,
# with step "returned" (退回), sealed by the hop that refused to take the case in or pass it on:
# the case never reached its decider, and `note` says why.
struct CaseProgress {
  caseNumber @0 :Text;
  decider @1 :Text;              # the deciding division (= the signer); for "returned", the refusing hop
  deciderName @2 :Text;
  stepIndex @3 :UInt32;          # position in the decider's history; the origin applies each once
  step @4 :Text;                 # receive, undertake, review, approve, deny, conclude, supplement, resume, yellow,
                                 # red; or returned
  state @5 :Text;                # the case's state after the step
  actor @6 :Text;
  atMs @7 :Int64;
  note @8 :Text;
  detail @9 :Text;
  deadlineMs @10 :Int64;         # moves when a supplement ends
  concludedAtMs @11 :Int64;
  credential @12 :Data;          # on the conclusion of an approved case: the sealed credential issued
  credentialNumber @13 :Text;
  decideLevel @14 :UInt8;        # the case's decide level (1 city .. 4 village), from its transfer: each hop
                                 # and the origin check that `decider` is the origin's ancestor of this level
}

struct Hop {
  division @0 :Text;
  atMs @1 :Int64;                # when that node passed it on (or, the last one, took it in)
}

# kind 105 (durable, up, hop by hop) carries a CaseTransfer; kind 107 (durable, down, hop by hop)
# carries a CaseProgress. Each hop appends itself to `hops` before passing it on.
struct CaseRelay {
  statement @0 :Data;            # the sealed CaseTransfer or CaseProgress, as its author sealed it
  hops @1 :List(Hop);
}
