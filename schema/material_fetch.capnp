@0xe5dd2660bd41b660;
# Material files on demand (docs/protocol.md "Material files on demand"): an ancestor that holds
# a material's record asks the node that stores the file for it, chunk by chunk, on
# tb.<storing node>.material. Both messages travel as payloads of sealed envelopes.

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("tongban::wire");

# kind 110 (down, not durable): "send me this part of this file". Signed by the asking node, a
# strict ancestor of the storing node (the files hold personal data); target = the storing node.
# The envelope's nonce binds the answer to this request.
struct MaterialFetchRequest {
  hash @0 :Text;               # SHA-256 hex of the file
  holder @1 :Text;             # applicant ID the record names (must match the stored record)
  offset @2 :UInt64;           # first byte wanted; the storing node decides the chunk length
}

# kind 111 (reply): one chunk of the file, or a clear refusal. Signed by the storing node;
# target = the asking node, nonce = the request's.
struct MaterialChunk {
  hash @0 :Text;
  totalSize @1 :UInt64;        # size of the whole file
  offset @2 :UInt64;           # where `chunk` starts in the file (the request's offset)
  chunk @3 :Data;              # at most 192 KiB (a sealed envelope is at most 256 KiB)
  errorCode @4 :Text;          # empty on success; else an ErrorCode name (NOT_FOUND, UNAUTHORIZED...)
  errorMessage @5 :Text;       # for the person who asked: what is wrong and what to do
}
