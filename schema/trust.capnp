@0xc363490d3f53453a;
# Identity and signed envelopes: the bytes every node signs and verifies.
# Signatures are Ed25519 (libsodium) over the exact bytes of a `body` field, which is itself the
# canonical Cap'n Proto encoding of the inner struct (capnp::canonicalize). Receivers verify the
# signature over those raw bytes before decoding them.

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("tongban::wire");

# What a certificate says: this key speaks for this division, at this level, for this period.
struct Certificate {
  serial @0 :UInt64;          # unique per issuer
  division @1 :Text;          # 12-digit division code of the key holder
  level @2 :UInt8;            # 1 city, 2 district, 3 town, 4 village (derived from the code; checked)
  publicKey @3 :Data;         # Ed25519, 32 bytes
  issuer @4 :Text;            # division code of the signer (the parent; the city itself for the root)
  validFromMs @5 :Int64;      # Unix ms, inclusive
  validUntilMs @6 :Int64;     # Unix ms, exclusive
  name @7 :Text;              # human name of the division, for display only
}

struct SignedCertificate {
  body @0 :Data;              # canonical encoding of Certificate
  signature @1 :Data;         # Ed25519 by the issuer's key, 64 bytes
}

# The signed part of every node-to-node message.
struct Envelope {
  signer @0 :Text;            # division code of the sender
  kind @1 :UInt16;            # message kind (see docs/protocol.md); decides the authority rule
  seq @2 :UInt64;             # per-signer, per-stream sequence (outbox seq for durable kinds)
  timestampMs @3 :Int64;      # sender's clock when sealed
  target @4 :Text;            # division code the message is for
  payload @5 :Data;           # kind-specific Cap'n Proto message
  chain @6 :List(Data);       # SignedCertificate bytes, signer's first, up to (not including) the root
  nonce @7 :UInt64;           # binds a reply to its request (0 when unused)
}

struct SealedEnvelope {
  body @0 :Data;              # canonical encoding of Envelope
  signerKey @1 :Data;         # the key the signature is checked with first (32 bytes); the chain
                              # must then bind it to `signer`
  signature @2 :Data;         # Ed25519 over `body`, 64 bytes
}

# Revocation of a node key: everything it signs at or after `revokedAtMs` is rejected.
struct KeyRevocation {
  division @0 :Text;          # holder of the revoked key
  publicKey @1 :Data;
  revokedAtMs @2 :Int64;
  reason @3 :Text;
  issuer @4 :Text;            # an ancestor of `division` (or the city)
}

struct SignedKeyRevocation {
  body @0 :Data;              # canonical encoding of KeyRevocation
  signature @1 :Data;
  chain @2 :List(Data);       # issuer's chain, as in Envelope
}
