// Material files on demand, on real nodes in the simulated world: a district fetches a scan that
// one of its villages stored, chunk by chunk, verified against the village's seal and the hash;
// keeps it so the next request is local; shares one stream between concurrent callers; and says
// clearly what went wrong when the village cannot be reached, refuses, or sends bad bytes.
#include "node/materials/fetch.h"

#include <map>

#include <gtest/gtest.h>
#include <sodium.h>

#include "federation/sync/wire.h"
#include "federation/trust/certificate.h"
#include "node/app/node.h"
#include "node/http/api.h"
#include "simulations/world/sim_world.h"
#include "tests/support/temp_dir.h"

namespace tongban {
namespace {

constexpr TimeMs kStart = 1795395600000LL;  // 2026-11-23 09:00 CST
constexpr const char* kCity = "440600000000";
constexpr const char* kDistrict = "440604000000";
constexpr const char* kTown = "440604001000";
constexpr const char* kVillage = "440604001001";
constexpr const char* kSibling = "440604001002";
constexpr const char* kHolder = "11010519491231002X";
constexpr size_t kScanBytes = 700 * 1024;  // four chunks of at most 192 KiB

DivisionCode code(const char* text) { return DivisionCode::parse(text).value(); }

Bytes scan(size_t size, uint64_t seed) {
  Random r(seed);
  Bytes b(size);
  for (auto& byte : b) byte = static_cast<uint8_t>(r.next());
  return b;
}

// city → district → town → village (+ a sibling village), real nodes on SQLite in a temp dir.
class MaterialFetchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* codes[] = {kCity, kDistrict, kTown, kVillage, kSibling};
    for (uint8_t i = 0; i < 5; ++i) {
      std::array<uint8_t, 32> seed{};
      seed.fill(static_cast<uint8_t>(i + 1));
      auto c = code(codes[i]);
      const TimeMs until = kStart + 1000LL * 3600 * 24 * 365;
      Result<Identity> id = i == 0 ? createRootIdentity(c, "city", KeyPair::fromSeed(seed), kStart - 1000, until)
                                   : issueChildIdentity(identities_[c.parent()->str()], c, codes[i],
                                                        KeyPair::fromSeed(seed), i, kStart - 1000, until);
      ASSERT_TRUE(id.isOk()) << id.status().toString();
      identities_[codes[i]] = *id;
      endpoints_[codes[i]] = world_.addEndpoint(c, codes[i]);
      randoms_[codes[i]] = std::make_unique<Random>(i + 100);
    }
    registerFederationKinds(kinds_);
    registerMaterialFetchKinds(kinds_);
    verifier_.emplace(Verifier::create(identities_[kCity].root_certificate, &kinds_).value());
    for (const char* c : codes) start(c);
    // The village stores a scan; its record travels up to every ancestor.
    content_ = scan(kScanBytes, 42);
    auto stored = nodes_[kVillage]->materials().put(content_, "id_card", kHolder, "image/jpeg", "clerk1", world_.now());
    ASSERT_TRUE(stored.isOk()) << stored.status().toString();
    hash_ = stored->hash;
    for (int i = 0; i < 600 && !recordedAt(kDistrict); ++i) runFor(100);
    ASSERT_TRUE(recordedAt(kDistrict)) << "the record did not reach the district";
  }

  void start(const std::string& c) {
    NodeOptions o;
    o.identity = identities_[c];
    o.data_dir = dir_.path() + "/" + c;
    o.synchronous = Synchronous::kOff;
    o.limits.heartbeat_interval_ms = 5000;
    o.limits.request_timeout_ms = 1000;
    o.limits.retry_initial_ms = 200;
    o.limits.retry_max_ms = 10000;
    int ep = endpoints_[c];
    auto node = Node::open(o, NodeEnvironment{&world_.clock(ep), &world_.transport(ep), randoms_[c].get(), nullptr});
    ASSERT_TRUE(node.isOk()) << node.status().toString();
    nodes_[c] = std::move(node).value();
  }

  void runFor(DurationMs ms) { ASSERT_TRUE(world_.runUntil(world_.now() + ms).isOk()); }

  bool recordedAt(const std::string& c) {
    auto stmt = nodes_[c]->database().prepare("SELECT COUNT(*) FROM subtree_materials WHERE hash = ?1").value();
    stmt.bind(1, hash_);
    return stmt.step().value() && stmt.columnInt64(0) > 0;
  }

  // Starts a fetch at `at`; the answer lands in the returned slot when the world runs.
  std::shared_ptr<std::optional<Result<FetchedMaterial>>> startFetch(const std::string& at, const std::string& hash,
                                                                     const std::string& holder = kHolder) {
    auto slot = std::make_shared<std::optional<Result<FetchedMaterial>>>();
    nodes_[at]->materialFetcher().fetch(hash, holder, [slot](Result<FetchedMaterial> r) {
      EXPECT_FALSE(slot->has_value()) << "a fetch's callback ran twice";
      slot->emplace(std::move(r));
    });
    EXPECT_FALSE(slot->has_value()) << "the callback must not run inside fetch()";
    return slot;
  }

  // Fetches and runs the world until the answer arrives (or `bound_ms` of virtual time passes).
  Result<FetchedMaterial> fetchAt(const std::string& at, const std::string& hash, const std::string& holder = kHolder,
                                  DurationMs bound_ms = 120'000) {
    auto slot = startFetch(at, hash, holder);
    for (DurationMs waited = 0; waited < bound_ms && !slot->has_value(); waited += 50) runFor(50);
    if (!slot->has_value()) return Status(ErrorCode::kInternal, "no answer within " + std::to_string(bound_ms) + " ms");
    return std::move(**slot);
  }

  // A hand-made request from `from` (any node's identity) to the village's subject, and the reply.
  Result<Bytes> askVillage(const std::string& from, const Bytes& sealed_or_garbage) {
    auto slot = std::make_shared<std::optional<Result<Bytes>>>();
    world_.transport(endpoints_[from]).request(materialSubject(code(kVillage)), sealed_or_garbage, 2000,
                                               [slot](Result<Bytes> r) { slot->emplace(std::move(r)); });
    for (int i = 0; i < 100 && !slot->has_value(); ++i) runFor(50);
    if (!slot->has_value()) return Status(ErrorCode::kInternal, "the request never completed");
    return std::move(**slot);
  }

  Bytes sealedRequest(const std::string& from, const std::string& hash, const std::string& holder, uint64_t nonce) {
    SealParams p;
    p.kind = kMaterialFetchKind;
    p.timestamp_ms = world_.now();
    p.target = code(kVillage);
    p.payload = encodeMaterialFetchRequest({hash, holder, 0});
    p.nonce = nonce;
    return sealEnvelope(identities_[from], p);
  }

  // Opens a reply addressed to `to` and decodes its chunk.
  MaterialChunkMsg openChunk(const std::string& to, const Bytes& reply, uint64_t nonce) {
    auto opened = verifier_->open(reply, code(to.c_str()), world_.now(), nullptr);
    EXPECT_TRUE(opened.isOk()) << opened.status().toString();
    if (!opened) return {};
    EXPECT_EQ(opened->kind, kMaterialChunkKind);
    EXPECT_EQ(opened->signer.str(), kVillage);
    EXPECT_EQ(opened->nonce, nonce);
    return decodeMaterialChunk(opened->payload).value();
  }

  // Stops the real village node and answers on its subject with `answer` instead (a storing node
  // that misbehaves), signing with the village's own key.
  void replaceVillageResponder(std::function<Bytes(const OpenedEnvelope&, const MaterialFetchRequestMsg&)> answer) {
    nodes_[kVillage]->stop();
    const int ep = endpoints_[kVillage];
    auto sub = world_.transport(ep).subscribe(materialSubject(code(kVillage)), [this, ep, answer](const InboundMessage& m) {
      auto opened = verifier_->open(m.data, code(kVillage), world_.now(), nullptr);
      ASSERT_TRUE(opened.isOk()) << opened.status().toString();
      auto asked = decodeMaterialFetchRequest(opened->payload);
      ASSERT_TRUE(asked.isOk());
      (void)world_.transport(ep).reply(m, answer(*opened, *asked));
    });
    ASSERT_TRUE(sub.isOk());
  }

  Bytes sealChunk(const OpenedEnvelope& asked, const MaterialChunkMsg& chunk) {
    SealParams p;
    p.kind = kMaterialChunkKind;
    p.timestamp_ms = world_.now();
    p.target = asked.signer;
    p.payload = encodeMaterialChunk(chunk);
    p.nonce = asked.nonce;
    return sealEnvelope(identities_[kVillage], p);
  }

  MaterialChunkMsg honestChunk(const MaterialFetchRequestMsg& asked) {
    MaterialChunkMsg c;
    c.hash = asked.hash;
    c.total_size = content_.size();
    c.offset = asked.offset;
    const size_t n = std::min<size_t>(kMaterialChunkBytes, content_.size() - asked.offset);
    c.chunk.assign(content_.begin() + asked.offset, content_.begin() + asked.offset + n);
    return c;
  }

  bool cachedAtDistrict() {
    auto present = nodes_[kDistrict]->materials().readIfPresent(hash_);
    return present.isOk() && present->has_value();
  }

  testing::TempDir dir_;
  sim::SimWorld world_{11, kStart};
  std::map<std::string, Identity> identities_;
  std::map<std::string, int> endpoints_;
  std::map<std::string, std::unique_ptr<Random>> randoms_;
  std::map<std::string, std::unique_ptr<Node>> nodes_;
  KindRegistry kinds_;
  std::optional<Verifier> verifier_;
  Bytes content_;
  std::string hash_;
};

TEST_F(MaterialFetchTest, DistrictFetchesAVillagesScanInChunksAndGetsIdenticalBytes) {
  auto got = fetchAt(kDistrict, hash_);
  ASSERT_TRUE(got.isOk()) << got.status().toString();
  EXPECT_EQ(got->content, content_);
  EXPECT_EQ(got->source, FetchedMaterial::Source::kFetched);
  EXPECT_EQ(got->record.stored_at, kVillage);
  EXPECT_EQ(got->record.content_type, "image/jpeg");
  const auto& c = nodes_[kDistrict]->materialFetcher().counters();
  EXPECT_EQ(c.chunk_requests_sent, 4u) << "700 KiB in chunks of 192 KiB";
  EXPECT_EQ(c.files_cached, 1u);
  EXPECT_TRUE(cachedAtDistrict());
  // A cached file is not a record: the district does not claim to store it, and sends nothing up.
  EXPECT_EQ(nodes_[kDistrict]->materials().get(hash_).status().code(), ErrorCode::kNotFound);
}

TEST_F(MaterialFetchTest, SecondFetchIsServedFromTheCacheWithoutAskingTheNetwork) {
  ASSERT_TRUE(fetchAt(kDistrict, hash_).isOk());
  const uint64_t asked = nodes_[kDistrict]->materialFetcher().counters().chunk_requests_sent;
  world_.setLinkUp(code(kVillage), false);  // proves it: the village is unreachable now
  auto again = fetchAt(kDistrict, hash_);
  ASSERT_TRUE(again.isOk()) << again.status().toString();
  EXPECT_EQ(again->source, FetchedMaterial::Source::kCached);
  EXPECT_EQ(again->content, content_);
  EXPECT_EQ(nodes_[kDistrict]->materialFetcher().counters().chunk_requests_sent, asked);
}

TEST_F(MaterialFetchTest, TheStoringNodeServesItsOwnFileWithoutAskingAnyone) {
  auto own = fetchAt(kVillage, hash_);
  ASSERT_TRUE(own.isOk()) << own.status().toString();
  EXPECT_EQ(own->source, FetchedMaterial::Source::kStoredHere);
  EXPECT_EQ(own->content, content_);
  EXPECT_EQ(nodes_[kVillage]->materialFetcher().counters().chunk_requests_sent, 0u);
}

TEST_F(MaterialFetchTest, TheCityFetchesAcrossThreeHops) {
  ASSERT_TRUE(recordedAt(kCity) || (runFor(30'000), recordedAt(kCity)));
  auto got = fetchAt(kCity, hash_);
  ASSERT_TRUE(got.isOk()) << got.status().toString();
  EXPECT_EQ(got->content, content_);
}

TEST_F(MaterialFetchTest, ConcurrentFetchesOfOneFileShareOneChunkStream) {
  auto a = startFetch(kDistrict, hash_);
  auto b = startFetch(kDistrict, hash_);
  runFor(5);
  auto c = startFetch(kDistrict, hash_);  // joins a stream already under way
  for (int i = 0; i < 400 && !(a->has_value() && b->has_value() && c->has_value()); ++i) runFor(50);
  for (auto* slot : {&a, &b, &c}) {
    ASSERT_TRUE((*slot)->has_value());
    ASSERT_TRUE((**slot)->isOk()) << (**slot)->status().toString();
    EXPECT_EQ((**slot)->value().content, content_);
  }
  const auto& counters = nodes_[kDistrict]->materialFetcher().counters();
  EXPECT_EQ(counters.fetches_started, 1u);
  EXPECT_EQ(counters.fetches_coalesced, 2u);
  EXPECT_EQ(counters.chunk_requests_sent, 4u) << "one chunk stream for three callers";
}

TEST_F(MaterialFetchTest, ASignedButAlteredChunkFailsTheHashCheckAndNothingIsKept) {
  replaceVillageResponder([this](const OpenedEnvelope& e, const MaterialFetchRequestMsg& asked) {
    MaterialChunkMsg c = honestChunk(asked);
    if (asked.offset == kMaterialChunkBytes) c.chunk[100] ^= 0x01;  // one bit in the second chunk
    return sealChunk(e, c);
  });
  auto got = fetchAt(kDistrict, hash_);
  ASSERT_FALSE(got.isOk());
  EXPECT_EQ(got.status().code(), ErrorCode::kCorrupt);
  EXPECT_NE(got.status().message().find("does not hash"), std::string::npos) << got.status().message();
  EXPECT_NE(got.status().message().find(kVillage), std::string::npos) << got.status().message();
  EXPECT_FALSE(cachedAtDistrict());
  EXPECT_EQ(nodes_[kDistrict]->materialFetcher().counters().files_cached, 0u);
}

TEST_F(MaterialFetchTest, AChunkAlteredAfterSealingFailsItsSignatureAndNothingIsKept) {
  replaceVillageResponder([this](const OpenedEnvelope& e, const MaterialFetchRequestMsg& asked) {
    Bytes sealed = sealChunk(e, honestChunk(asked));
    sealed[sealed.size() / 2] ^= 0x01;  // inside the chunk's bytes: the signature no longer covers them
    return sealed;
  });
  auto got = fetchAt(kDistrict, hash_);
  ASSERT_FALSE(got.isOk());
  EXPECT_EQ(got.status().code(), ErrorCode::kCorrupt);
  EXPECT_NE(got.status().message().find("BAD_SIGNATURE"), std::string::npos) << got.status().message();
  EXPECT_FALSE(cachedAtDistrict());
  EXPECT_EQ(nodes_[kDistrict]->materialFetcher().counters().answers_rejected, 1u);
}

TEST_F(MaterialFetchTest, AnAnswerThatLiesAboutTheSizeIsRejected) {
  replaceVillageResponder([this](const OpenedEnvelope& e, const MaterialFetchRequestMsg& asked) {
    MaterialChunkMsg c = honestChunk(asked);
    c.total_size = kMaxMaterialBytes + 1;
    return sealChunk(e, c);
  });
  auto got = fetchAt(kDistrict, hash_);
  ASSERT_FALSE(got.isOk());
  EXPECT_EQ(got.status().code(), ErrorCode::kCorrupt);
  EXPECT_NE(got.status().message().find("size"), std::string::npos) << got.status().message();
  EXPECT_FALSE(cachedAtDistrict());
}

TEST_F(MaterialFetchTest, ASiblingVillageIsRefusedByTheStoringNode) {
  const uint64_t nonce = 77;
  auto reply = askVillage(kSibling, sealedRequest(kSibling, hash_, kHolder, nonce));
  ASSERT_TRUE(reply.isOk()) << "a refusal, not silence: " << reply.status().toString();
  MaterialChunkMsg answer = openChunk(kSibling, *reply, nonce);
  EXPECT_EQ(answer.error_code, "UNAUTHORIZED");
  EXPECT_NE(answer.error_message.find("only into its own subtree"), std::string::npos) << answer.error_message;
  EXPECT_TRUE(answer.chunk.empty());
  EXPECT_EQ(answer.total_size, 0u) << "a refusal tells nothing about the file";
}

TEST_F(MaterialFetchTest, ADescendantCannotFetchItsAncestorsFiles) {
  // The town stores a file; its village holds no record of it and may not ask for it.
  auto stored = nodes_[kTown]->materials().put(scan(1000, 7), "id_card", kHolder, "image/png", "clerk1", world_.now());
  ASSERT_TRUE(stored.isOk());
  runFor(10'000);
  auto got = fetchAt(kVillage, stored->hash);
  ASSERT_FALSE(got.isOk());
  EXPECT_EQ(got.status().code(), ErrorCode::kNotFound);
  EXPECT_NE(got.status().message().find("only by an ancestor"), std::string::npos) << got.status().message();
}

TEST_F(MaterialFetchTest, UnknownHashIsNotFoundWithAClearMessage) {
  const std::string unknown(64, 'a');
  auto here = fetchAt(kDistrict, unknown);
  ASSERT_FALSE(here.isOk());
  EXPECT_EQ(here.status().code(), ErrorCode::kNotFound);
  EXPECT_NE(here.status().message().find("aaaaaaaaaaaa…"), std::string::npos) << here.status().message();
  EXPECT_NE(here.status().message().find(kDistrict), std::string::npos) << here.status().message();

  // Asked directly, the storing node answers NOT_FOUND, signed; the same for a wrong holder.
  for (const std::string& holder : {std::string(kHolder), std::string("110105194912310029")}) {
    const std::string hash = holder == kHolder ? unknown : hash_;
    auto reply = askVillage(kDistrict, sealedRequest(kDistrict, hash, holder, 5));
    ASSERT_TRUE(reply.isOk()) << reply.status().toString();
    MaterialChunkMsg answer = openChunk(kDistrict, *reply, 5);
    EXPECT_EQ(answer.error_code, "NOT_FOUND");
    EXPECT_NE(answer.error_message.find("is stored at " + std::string(kVillage)), std::string::npos)
        << answer.error_message;
    EXPECT_TRUE(answer.chunk.empty());
  }
}

TEST_F(MaterialFetchTest, BadHashOrMissingHolderIsAnInvalidArgument) {
  EXPECT_EQ(fetchAt(kDistrict, "not-a-hash").status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(fetchAt(kDistrict, hash_, "").status().code(), ErrorCode::kInvalidArgument);
}

TEST_F(MaterialFetchTest, APartitionedVillageGivesAClearErrorNamingItAndNoHang) {
  world_.setLinkUp(code(kVillage), false);
  const TimeMs asked_at = world_.now();
  auto got = fetchAt(kDistrict, hash_);
  ASSERT_FALSE(got.isOk());
  EXPECT_TRUE(got.status().code() == ErrorCode::kNoResponders || got.status().code() == ErrorCode::kTimeout)
      << got.status().toString();
  EXPECT_NE(got.status().message().find("is stored at 440604001001"), std::string::npos) << got.status().message();
  EXPECT_NE(got.status().message().find("try again when its link is up"), std::string::npos) << got.status().message();
  EXPECT_LE(world_.now() - asked_at, 15'000) << "within two attempts of the request timeout";
  EXPECT_FALSE(cachedAtDistrict());

  world_.setLinkUp(code(kVillage), true);
  auto healed = fetchAt(kDistrict, hash_);
  ASSERT_TRUE(healed.isOk()) << healed.status().toString();
  EXPECT_EQ(healed->content, content_);
}

TEST_F(MaterialFetchTest, ASilentVillageTimesOutWithinTheRequestBudget) {
  world_.faults().drop = 1.0;  // every message lost: the request reaches nobody, nothing answers
  const TimeMs asked_at = world_.now();
  auto got = fetchAt(kDistrict, hash_);
  ASSERT_FALSE(got.isOk());
  EXPECT_EQ(got.status().code(), ErrorCode::kTimeout) << got.status().toString();
  EXPECT_NE(got.status().message().find("440604001001, which did not answer within 5000 ms"), std::string::npos)
      << got.status().message();
  EXPECT_LE(world_.now() - asked_at, 2 * 5000 + 1000);
  EXPECT_EQ(nodes_[kDistrict]->materialFetcher().counters().chunk_requests_sent, 2u);
}

TEST_F(MaterialFetchTest, MalformedRequestBytesAreDroppedAndTheVillageKeepsServing) {
  for (const Bytes& garbage : {toBytes("hello"), Bytes(16, 0), Bytes(300 * 1024, 0xff)}) {
    auto reply = askVillage(kDistrict, garbage);
    EXPECT_FALSE(reply.isOk()) << "garbage gets no answer";
  }
  // A well-signed envelope of another kind on the subject: dropped too.
  SealParams p;
  p.kind = kinds::kStatusReply;
  p.timestamp_ms = world_.now();
  p.target = code(kVillage);
  EXPECT_FALSE(askVillage(kDistrict, sealEnvelope(identities_[kDistrict], p)).isOk());

  auto got = fetchAt(kDistrict, hash_);
  ASSERT_TRUE(got.isOk()) << got.status().toString();
  EXPECT_EQ(got->content, content_);
}

// The HTTP endpoint answers through the async router: the node's thread is free while the chunks
// travel, and the answer carries the bytes with the record's content type.
TEST_F(MaterialFetchTest, FileEndpointFetchesOnDemandWithoutHoldingTheNodesThread) {
  StaffOptions staff_options;
  staff_options.pwhash_opslimit = crypto_pwhash_OPSLIMIT_MIN;
  staff_options.pwhash_memlimit = crypto_pwhash_MEMLIMIT_MIN;
  auto staff = StaffDirectory::open(nodes_[kDistrict]->database(), staff_options).value();
  ASSERT_TRUE(staff.addUser("li", "李四", "correct horse", {Role::kApprover}, world_.now()).isOk());
  const std::string token = staff.login("li", "correct horse", world_.now()).value().token;
  Router router;
  registerMaterialsApi(router, *nodes_[kDistrict]);

  auto get = [&](const std::string& path, std::map<std::string, std::string> query) {
    auto answers = std::make_shared<std::vector<HttpResponse>>();
    HttpRequest req;
    req.method = "GET";
    req.path = path;
    req.query = std::move(query);
    req.headers["authorization"] = "Bearer " + token;
    router.dispatchAsync(req, &staff, world_.now(), [answers](HttpResponse r) { answers->push_back(std::move(r)); });
    return answers;
  };
  auto file = get("/api/materials/" + hash_ + "/file", {{"holder", kHolder}});
  EXPECT_TRUE(file->empty()) << "answered before the file arrived";
  for (int i = 0; i < 200 && file->empty(); ++i) runFor(50);
  ASSERT_EQ(file->size(), 1u);
  const HttpResponse& res = (*file)[0];
  ASSERT_EQ(res.status, 200) << res.body;
  EXPECT_EQ(res.content_type, "image/jpeg");
  EXPECT_EQ(toBytes(res.body), content_);
  auto header = [&](const std::string& name) {
    for (const auto& [k, v] : res.headers) {
      if (k == name) return v;
    }
    return std::string();
  };
  EXPECT_EQ(header("X-Tongban-Source"), "fetched");
  EXPECT_EQ(header("X-Tongban-Stored-At"), kVillage);

  auto no_holder = get("/api/materials/" + hash_ + "/file", {});
  ASSERT_EQ(no_holder->size(), 1u) << "a missing holder is answered at once";
  EXPECT_EQ((*no_holder)[0].status, 400);
  auto unknown = get("/api/materials/" + std::string(64, 'b') + "/file", {{"holder", kHolder}});
  runFor(10);
  ASSERT_EQ(unknown->size(), 1u);
  EXPECT_EQ((*unknown)[0].status, 404);
  EXPECT_NE((*unknown)[0].body.find("NOT_FOUND"), std::string::npos);
}

}  // namespace
}  // namespace tongban
