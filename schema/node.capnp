@0x9ce57a73e35e4544;
# Messages of the node layer: the service catalogue (published by the city, flows down) and the
# records that flow up (case events, material records). Kinds and subjects: docs/protocol.md.

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("tongban::wire");

# kind 101 (from root): one version of the whole catalogue, sealed by the city.
struct Catalogue {
  version @0 :UInt64;          # strictly increasing; a node keeps the highest it has verified
  publishedAtMs @1 :Int64;
  materialKinds @2 :List(MaterialKind);
  items @3 :List(CatalogueItem);
  # Who had authority for what, over the versions: one entry per item and version in which its
  # decide level or credential kind changed (or it left the catalogue), oldest first, carried
  # forward by every publication. A reader checks a credential against the version it was issued
  # under (docs/protocol.md, "Credentials"). Empty in a catalogue sealed before it existed.
  authorityHistory @4 :List(ItemAuthority);
}

struct ItemAuthority {
  itemCode @0 :Text;
  sinceVersion @1 :UInt64;     # in force from this catalogue version until the item's next entry
  removed @2 :Bool;            # the item left the catalogue in sinceVersion
  decideLevel @3 :UInt8;       # 1 city .. 4 village (0 when removed)
  issues @4 :Text;             # credential kind issued on approval
}

struct MaterialKind {
  code @0 :Text;
  name @1 :Text;
}

struct CatalogueItem {
  code @0 :Text;
  name @1 :Text;
  nameEn @2 :Text;
  department @3 :Text;
  kind @4 :Text;               # immediate | committed | joint | upward
  decideLevel @5 :UInt8;       # 1 city .. 4 village
  acceptLevels @6 :List(UInt8);
  legalDays @7 :Int32;
  committedDays @8 :Int32;
  feeFen @9 :Int64;            # fee in fen (0.01 CNY)
  legalBasis @10 :Text;
  materials @11 :List(Text);   # material kind codes required
  jointDepartments @12 :List(Text);
  issues @13 :Text;            # credential kind issued on approval
  contact @14 :Text;
  validityDays @15 :Int32 = -1;  # how long the credential it issues is valid: N days after the
                                 # issue day; 0 = long-term (长期, no end date); -1 = not stated
                                 # (the issuer's default, five years). Added after @14: a catalogue
                                 # sealed before it reads as -1.
}

# kind 100 (durable, up, relayed to every ancestor): one step of one case.
struct CaseEvent {
  caseNumber @0 :Text;         # <accepting division>-<8-digit per-node sequence>
  origin @1 :Text;             # division whose node recorded the event
  itemCode @2 :Text;
  department @3 :Text;
  step @4 :Text;               # submit, accept, refuse, undertake, review, approve, deny, conclude,
                               # supplement, resume, yellow, red, evaluate, complain
  state @5 :Text;              # the case's state after the step
  actor @6 :Text;              # authenticated username (or "citizen" / "system")
  atMs @7 :Int64;
  acceptedAtMs @8 :Int64;
  deadlineMs @9 :Int64;        # 0 when not applicable
  note @10 :Text;
  detail @11 :Text;            # step-specific: evaluation grade, review department, missing materials
  stepIndex @12 :UInt32;       # position of the step in the case's history (0-based)
}

# kind 102 (durable, up, relayed): a material's metadata; the file itself stays where it was
# uploaded and is fetched on demand by hash.
struct MaterialRecord {
  hash @0 :Text;               # SHA-256 hex of the file
  kind @1 :Text;
  holder @2 :Text;             # applicant ID the material belongs to
  sizeBytes @3 :UInt64;
  contentType @4 :Text;
  storedAt @5 :Text;           # division holding the file
  verifiedBy @6 :Text;         # clerk who checked it against the original
  verifiedAtMs @7 :Int64;
  seal @8 :Data;               # the storing node's Ed25519 signature over "hash|kind|holder"
}

# Request on tb.<parent>.catalogue: "I have this version". The reply is the parent's sealed
# catalogue (kind 101, signed by the city) if it holds a newer one, or empty bytes if not.
struct CatalogueRequest {
  haveVersion @0 :UInt64;
}

# kind 103 (durable, up, relayed to every ancestor): the cumulative supervision figures of one
# origin's own cases for one CST day. A receiver keeps only the highest version per (origin,
# day), so re-sends and reordering never double count (docs/supervision.md).
struct SupervisionSnapshot {
  origin @0 :Text;             # division whose own cases these are
  day @1 :Text;                # CST civil date, YYYY-MM-DD
  version @2 :UInt64;          # per (origin, day), strictly increasing from 1
  rows @3 :List(FigureRow);    # one per (item, department) with any activity that day
  originName @4 :Text;         # so ancestors can name deep divisions
}

struct FigureRow {
  itemCode @0 :Text;           # "" for a complaint against a unit
  department @1 :Text;
  accepted @2 :UInt64;
  refused @3 :UInt64;
  concluded @4 :UInt64;
  onTime @5 :UInt64;
  early @6 :UInt64;
  overdue @7 :UInt64;
  immediate @8 :UInt64;
  forwardedUp @9 :UInt64;
  supplements @10 :UInt64;
  yellow @11 :UInt64;
  red @12 :UInt64;
  satisfied @13 :UInt64;
  basicallySatisfied @14 :UInt64;
  unsatisfied @15 :UInt64;
  complaints @16 :UInt64;
  workingDaysTotal @17 :UInt64;
}
