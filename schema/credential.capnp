@0xb7e2c41d9a3f5e07;
# Credentials (证照) and identity records (一表登记): signed documents every node can check
# offline, and the status records (revocation, suspension) that flow down to every node.
# Kinds, authority and the conflict rules: docs/protocol.md, "Credentials".

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("tongban::wire");

struct Fact {
  key @0 :Text;                  # e.g. "plates", "address"
  value @1 :Text;
}

# kind 130 (statement, sealed by the issuing node; the envelope carries its certificate chain to
# the city root, and its timestamp is the issue time). The citizen-held form is this sealed
# envelope as text: "TBC1." + base64url (no padding).
struct Credential {
  number @0 :Text;               # <issuer>-L<8-digit sequence>; the same number across versions
  version @1 :UInt32;            # 1 when first issued; a renewal by the issuer is version + 1
  sequence @2 :UInt64;           # the issuer's credential sequence (the digits of the number)
  kind @3 :Text;                 # the catalogue item's `issues`, e.g. business_license
  holderId @4 :Text;             # resident ID or unified social credit code
  holderName @5 :Text;
  issuer @6 :Text;               # division code of the signer
  issuerName @7 :Text;
  itemCode @8 :Text;
  itemName @9 :Text;
  caseNumber @10 :Text;
  origin @11 :Text;              # the hall that accepted the case (where it is handed over)
  validFromMs @12 :Int64;
  validUntilMs @13 :Int64;       # exclusive; 0 = no end
  facts @14 :List(Fact);
  issuedAtMs @15 :Int64;         # equals the envelope's timestamp
  catalogueVersion @16 :UInt64;  # the catalogue version the issuer held: readers check the issuer's
                                 # authority as that version stated it; 0 in documents issued
                                 # before the field existed (checked against the reader's own)
}

# kind 134 (statement, sealed by the issuer or one of its ancestors): the status of a credential
# from `atMs` on. Per number the greatest (is revoked, version, atMs, by, sealed bytes) among
# revoked | suspended | active wins; "revoked" is final. A renewal publishes a "renewed" notice
# (by the issuer only; version = currentVersion = the new credential version) that takes no part
# in that order: every node keeps the highest currentVersion of all records it holds, so every
# node learns that the older version is superseded (docs/protocol.md, "Conflict rules").
struct CredentialStatus {
  number @0 :Text;
  status @1 :Text;               # revoked | suspended | active (a suspension lifted) | renewed
  version @2 :UInt32;            # per number, from 1 (a "renewed" notice: the credential version)
  atMs @3 :Int64;                # equals the envelope's timestamp
  by @4 :Text;                   # division code of the signer
  byName @5 :Text;
  reason @6 :Text;
  currentVersion @7 :UInt32;     # the newest version of the credential: an older one is superseded
}

# kind 136 (statement, sealed by the node where the person or organisation registered).
# Per ID number the highest (version, registeredAtMs, registeredBy) wins.
struct IdentityRecord {
  idNumber @0 :Text;
  name @1 :Text;
  kind @2 :Text;                 # person | organisation (from the ID number's format)
  contacts @3 :List(Fact);       # phone, address, email ...
  version @4 :UInt32;
  registeredAtMs @5 :Int64;      # equals the envelope's timestamp
  registeredBy @6 :Text;         # division code of the signer
}
