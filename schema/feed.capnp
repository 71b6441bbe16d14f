@0xb3c1d7e25a9f4c61;
# Feeds (docs/protocol.md "Feeds (pulled down)"): an append-only log of opaque entries that every
# node pulls from its parent with a cursor, so an entry appended anywhere reaches every node below
# that point. Request and batch travel as payloads of sealed envelopes on tb.<parent>.feed; the
# hint, published by the parent when its log grew, on tb.<parent>.feed.head.

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("tongban::wire");

# kind 7 (up, not durable): "send me your entries after index `after`". Signed by the asking
# child; target = its parent; the envelope's nonce binds the reply to this request.
struct FeedRequest {
  after @0 :UInt64;            # the parent's index the child has consumed up to (0: none)
  maxEntries @1 :UInt32;       # the child's batch limit; the parent applies its own too
}

struct FeedEntry {
  index @0 :UInt64;            # in the parent's log, from 1, strictly increasing in a batch
  payload @1 :Data;            # opaque to the feed (itself a signed statement), at most 64 KiB
}

# kind 8 (reply): signed by the parent; target = the asker; nonce = the request's.
struct FeedBatch {
  entries @0 :List(FeedEntry); # oldest first, all with index > after, none above head
  head @1 :UInt64;             # the parent's last index when it answered
  freshAsOfMs @2 :Int64;       # every entry appended above the parent before this time is in its
                               # log (the city: its clock when it answered)
  afterDigest @3 :Data;        # BLAKE2b-256 of the parent's entry at `after` (empty if none):
                               # the child compares it with the entry it consumed there
  error @4 :Text;              # "MALFORMED: ..." when a verified child's request was refused
}

# kind 9 (statement, not durable): "my log's head is now `head`". Published by a node on
# tb.<node>.feed.head soon after its log grew; signer = target = that node. It carries no entries:
# a child whose cursor is below `head` pulls (kind 7) as it would on a poll, so a forged or
# replayed hint costs at most one authenticated pull.
struct FeedHint {
  head @0 :UInt64;             # the publisher's last index when it sealed the hint
}
