// Material files on demand, on real nodes in the simulated world: a district fetches a scan that
// one of its villages stored, chunk by chunk, verified against the village's seal and the hash;
// keeps it so the next request is local, in a cache bounded by size (least recently used files go
// first, files stored here never); shares one stream between concurrent callers; asks the next
// storing node when one fails; and says clearly what went wrong when no storing node can be
// reached, one refuses, or one sends bad bytes.
#include "node/materials/fetch.h"

#include <filesystem>
#include <map>

#include <gtest/gtest.h>
#include <sodium.h>

#include "federation/sync/wire.h"
#include "federation/trust/certificate.h"
#include "federation/util/files.h"
#include "node/app/config.h"
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
constexpr size_t kSmallScanBytes = 100 * 1024;  // one chunk: the cache tests fetch several

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
    if (auto it = fetch_settings_.find(c); it != fetch_settings_.end()) o.material_fetch = it->second;
    int ep = endpoints_[c];
    auto node = Node::open(o, NodeEnvironment{&world_.clock(ep), &world_.transport(ep), randoms_[c].get(), nullptr});
    ASSERT_TRUE(node.isOk()) << node.status().toString();
    nodes_[c] = std::move(node).value();
  }

  // A crash and a fresh node over the same files, with the fetch settings of fetch_settings_.
  void restart(const std::string& c) {
    world_.crash(endpoints_[c]);
    nodes_[c].reset();
    world_.restart(endpoints_[c]);
    start(c);
  }

  void runFor(DurationMs ms) { ASSERT_TRUE(world_.runUntil(world_.now() + ms).isOk()); }

  // How many storing nodes' records of `hash` node `c` holds.
  int64_t recordsAt(const std::string& c, const std::string& hash) {
    auto stmt = nodes_[c]->database().prepare("SELECT COUNT(*) FROM subtree_materials WHERE hash = ?1").value();
    stmt.bind(1, hash);
    return stmt.step().value() ? stmt.columnInt64(0) : 0;
  }
  bool recordedAt(const std::string& c) { return recordsAt(c, hash_) > 0; }

  // Stores `content` for kHolder at `c` and waits until the district holds `records` records of it.
  std::string storeAt(const std::string& c, const Bytes& content, int64_t records = 1) {
    auto stored = nodes_[c]->materials().put(content, "id_card", kHolder, "image/jpeg", "clerk1", world_.now());
    EXPECT_TRUE(stored.isOk()) << stored.status().toString();
    if (!stored) return "";
    for (int i = 0; i < 600 && recordsAt(kDistrict, stored->hash) < records; ++i) runFor(100);
    EXPECT_EQ(recordsAt(kDistrict, stored->hash), records) << "the record did not reach the district";
    return stored->hash;
  }

  std::string fileAt(const std::string& c, const std::string& hash) {
    return dir_.path() + "/" + c + "/materials/" + hash.substr(0, 2) + "/" + hash;
  }
  bool hasFile(const std::string& c, const std::string& hash) { return std::filesystem::exists(fileAt(c, hash)); }
  bool cacheRowAt(const std::string& c, const std::string& hash) {
    auto stmt = nodes_[c]->database().prepare("SELECT COUNT(*) FROM fetch_cache WHERE hash = ?1").value();
    stmt.bind(1, hash);
    return stmt.step().value() && stmt.columnInt64(0) > 0;
  }
  const MaterialFetcher::Counters& districtCounters() { return nodes_[kDistrict]->materialFetcher().counters(); }

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

  // Stops the real village node (or `node`) and answers on its subject with `answer` instead (a
  // storing node that misbehaves), signing with that node's own key.
  void replaceVillageResponder(std::function<Bytes(const OpenedEnvelope&, const MaterialFetchRequestMsg&)> answer,
                               const char* node = kVillage) {
    nodes_[node]->stop();
    const int ep = endpoints_[node];
    auto sub = world_.transport(ep).subscribe(materialSubject(code(node)), [this, ep, node, answer](const InboundMessage& m) {
      auto opened = verifier_->open(m.data, code(node), world_.now(), nullptr);
      ASSERT_TRUE(opened.isOk()) << opened.status().toString();
      auto asked = decodeMaterialFetchRequest(opened->payload);
      ASSERT_TRUE(asked.isOk());
      (void)world_.transport(ep).reply(m, answer(*opened, *asked));
    });
    ASSERT_TRUE(sub.isOk());
  }

  Bytes sealChunk(const OpenedEnvelope& asked, const MaterialChunkMsg& chunk, const char* node = kVillage) {
    SealParams p;
    p.kind = kMaterialChunkKind;
    p.timestamp_ms = world_.now();
    p.target = asked.signer;
    p.payload = encodeMaterialChunk(chunk);
    p.nonce = asked.nonce;
    return sealEnvelope(identities_[node], p);
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
  std::map<std::string, MaterialFetchSettings> fetch_settings_;  // per node; defaults when absent
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

// --- The fetched-file cache: bounded, least recently used first, never a file stored here ---

// Three small scans, stored at the village and recorded at the district; the district's cache holds
// at most two and a half of them.
class MaterialCacheTest : public MaterialFetchTest {
 protected:
  void SetUp() override {
    MaterialFetchTest::SetUp();
    if (HasFatalFailure()) return;
    for (uint64_t seed : {1, 2, 3}) {
      small_.push_back(scan(kSmallScanBytes, seed));
      hashes_.push_back(storeAt(kVillage, small_.back()));
    }
    boundDistrictCache(kSmallScanBytes * 5 / 2);
  }

  void boundDistrictCache(uint64_t max_bytes) {
    fetch_settings_[kDistrict].cache_max_bytes = max_bytes;
    restart(kDistrict);
  }

  void fetchOk(const std::string& hash, FetchedMaterial::Source expected) {
    auto got = fetchAt(kDistrict, hash);
    ASSERT_TRUE(got.isOk()) << got.status().toString();
    EXPECT_EQ(got->source, expected) << fetchSourceName(got->source);
  }

  std::vector<Bytes> small_;
  std::vector<std::string> hashes_;
};

TEST_F(MaterialCacheTest, KeepingAFileBeyondTheBoundEvictsTheLeastRecentlyUsedCachedFile) {
  fetchOk(hashes_[0], FetchedMaterial::Source::kFetched);
  fetchOk(hashes_[1], FetchedMaterial::Source::kFetched);
  EXPECT_EQ(districtCounters().cache_files, 2u);
  EXPECT_EQ(districtCounters().cache_evictions, 0u);

  fetchOk(hashes_[2], FetchedMaterial::Source::kFetched);  // 300 KiB > 250 KiB: the oldest goes
  EXPECT_FALSE(hasFile(kDistrict, hashes_[0]));
  EXPECT_FALSE(cacheRowAt(kDistrict, hashes_[0]));
  EXPECT_TRUE(hasFile(kDistrict, hashes_[1]));
  EXPECT_TRUE(hasFile(kDistrict, hashes_[2]));
  EXPECT_EQ(districtCounters().cache_evictions, 1u);
  EXPECT_EQ(districtCounters().cache_files, 2u);
  EXPECT_EQ(districtCounters().cache_bytes, 2 * kSmallScanBytes);
  // Evicted is not lost: the next request fetches it again from the village.
  fetchOk(hashes_[0], FetchedMaterial::Source::kFetched);
}

TEST_F(MaterialCacheTest, ACacheHitMakesTheFileTheLastToBeEvicted) {
  fetchOk(hashes_[0], FetchedMaterial::Source::kFetched);
  fetchOk(hashes_[1], FetchedMaterial::Source::kFetched);
  fetchOk(hashes_[0], FetchedMaterial::Source::kCached);  // now the most recently used
  EXPECT_EQ(districtCounters().cache_hits, 1u);

  fetchOk(hashes_[2], FetchedMaterial::Source::kFetched);
  EXPECT_TRUE(hasFile(kDistrict, hashes_[0])) << "used last, so kept";
  EXPECT_FALSE(hasFile(kDistrict, hashes_[1])) << "the least recently used goes";
  EXPECT_TRUE(hasFile(kDistrict, hashes_[2]));
}

TEST_F(MaterialCacheTest, FilesStoredHereAreNeverEvictedNorCounted) {
  // The district stores a scan of its own, and takes in one it had fetched before: both are its
  // truth now, not cache.
  fetchOk(hashes_[0], FetchedMaterial::Source::kFetched);
  auto own = nodes_[kDistrict]->materials().put(scan(kSmallScanBytes, 9), "id_card", kHolder, "image/jpeg", "clerk2",
                                                world_.now());
  ASSERT_TRUE(own.isOk()) << own.status().toString();
  auto taken_in = nodes_[kDistrict]->materials().put(small_[0], "id_card", kHolder, "image/jpeg", "clerk2", world_.now());
  ASSERT_TRUE(taken_in.isOk()) << taken_in.status().toString();
  EXPECT_FALSE(cacheRowAt(kDistrict, hashes_[0])) << "stored here now: no longer cache";

  // Far past the bound: every cached file but the newest goes; the district's own files stay.
  boundDistrictCache(kSmallScanBytes / 2);
  fetchOk(hashes_[1], FetchedMaterial::Source::kFetched);
  fetchOk(hashes_[2], FetchedMaterial::Source::kFetched);
  EXPECT_FALSE(hasFile(kDistrict, hashes_[1]));
  EXPECT_TRUE(hasFile(kDistrict, hashes_[2]));
  for (const std::string& hash : {own->hash, hashes_[0]}) {
    EXPECT_TRUE(hasFile(kDistrict, hash));
    EXPECT_TRUE(nodes_[kDistrict]->materials().read(hash).isOk()) << "a file stored here reads as before";
  }
  EXPECT_EQ(districtCounters().cache_files, 1u) << "files stored here are not cache";
  EXPECT_EQ(districtCounters().cache_bytes, kSmallScanBytes);
}

TEST_F(MaterialCacheTest, TheFileJustFetchedStaysEvenWhenItAloneExceedsTheBound) {
  boundDistrictCache(kSmallScanBytes / 2);
  fetchOk(hashes_[0], FetchedMaterial::Source::kFetched);
  EXPECT_TRUE(hasFile(kDistrict, hashes_[0])) << "kept: its caller is reading it";
  EXPECT_EQ(districtCounters().cache_bytes, kSmallScanBytes) << "over the bound, and the counters say so";
  EXPECT_EQ(districtCounters().cache_evictions, 0u);

  fetchOk(hashes_[1], FetchedMaterial::Source::kFetched);  // the next one takes its place
  EXPECT_FALSE(hasFile(kDistrict, hashes_[0]));
  EXPECT_TRUE(hasFile(kDistrict, hashes_[1]));
  EXPECT_EQ(districtCounters().cache_evictions, 1u);
}

TEST_F(MaterialCacheTest, ALoweredBoundTakesEffectAtTheNextStart) {
  for (const auto& hash : hashes_) fetchOk(hash, FetchedMaterial::Source::kFetched);
  boundDistrictCache(kSmallScanBytes);
  EXPECT_EQ(districtCounters().cache_files, 1u);
  EXPECT_EQ(districtCounters().cache_evictions, 1u);
  EXPECT_TRUE(hasFile(kDistrict, hashes_[2])) << "the most recently used stays";
}

// A crash between a cached file's row and its file, either way round: the next start sees the
// cache as it is on disk, and every file is still served.
TEST_F(MaterialCacheTest, RestartAfterACrashBetweenRowAndFileFindsTheCacheConsistent) {
  fetchOk(hashes_[0], FetchedMaterial::Source::kFetched);
  fetchOk(hashes_[1], FetchedMaterial::Source::kFetched);
  // hashes_[0]: its row committed, its file gone (a crash before the file landed, or after
  // eviction removed it and before the row went).
  ASSERT_TRUE(std::filesystem::remove(fileAt(kDistrict, hashes_[0])));
  // hashes_[1]: its file on disk, its row gone (as cached before the table existed); and the
  // temporary file of a rewrite that a crash left half written.
  ASSERT_TRUE(nodes_[kDistrict]->database().exec("DELETE FROM fetch_cache WHERE hash = '" + hashes_[1] + "'").isOk());
  const std::string half_written = fileAt(kDistrict, hashes_[1]) + ".tmp";
  ASSERT_TRUE(writeFileAtomically(half_written, Bytes(1000, 0x5a)).isOk());
  restart(kDistrict);

  EXPECT_FALSE(cacheRowAt(kDistrict, hashes_[0])) << "a row without its file is dropped";
  EXPECT_TRUE(cacheRowAt(kDistrict, hashes_[1])) << "a file without its row is adopted";
  EXPECT_FALSE(std::filesystem::exists(half_written));
  EXPECT_EQ(districtCounters().cache_files, 1u);
  EXPECT_EQ(districtCounters().cache_bytes, kSmallScanBytes);

  fetchOk(hashes_[0], FetchedMaterial::Source::kFetched);
  fetchOk(hashes_[1], FetchedMaterial::Source::kCached);
  // The adopted file counts against the bound like any other (it went in as least recently used
  // and was used since): the next file pushes out the least recently used, hashes_[0].
  fetchOk(hashes_[2], FetchedMaterial::Source::kFetched);
  EXPECT_FALSE(hasFile(kDistrict, hashes_[0]));
  EXPECT_TRUE(hasFile(kDistrict, hashes_[1]));
  EXPECT_EQ(districtCounters().cache_bytes, 2 * kSmallScanBytes);
}

TEST(FetchCacheConfig, TheBoundIsAConfigKeyWithADefaultAndAClearRange) {
  const std::string base =
      "division = \"440604000000\"\nname = \"district\"\ndata_dir = \"/tmp/d\"\nkey_dir = \"/tmp/k\"\n"
      "nats_urls = [\"nats://127.0.0.1:4222\"]\n";
  auto defaults = parseNodeConfig(base, "node.toml");
  ASSERT_TRUE(defaults.isOk()) << defaults.status().toString();
  EXPECT_EQ(defaults->fetch_cache_max_bytes, kDefaultFetchCacheMaxBytes);
  auto set = parseNodeConfig(base + "fetch_cache_max_bytes = 536870912\n", "node.toml");
  ASSERT_TRUE(set.isOk()) << set.status().toString();
  EXPECT_EQ(set->fetch_cache_max_bytes, 512u << 20);
  for (const char* bad : {"fetch_cache_max_bytes = 1000\n", "fetch_cache_max_bytes = \"2 GiB\"\n",
                          "fetch_cache_max_bytes = 2199023255553\n"}) {
    auto st = parseNodeConfig(base + bad, "node.toml").status();
    EXPECT_EQ(st.code(), ErrorCode::kInvalidArgument) << bad;
    EXPECT_NE(st.message().find("'fetch_cache_max_bytes' must be a number of bytes from 16777216"), std::string::npos)
        << st.message();
  }
}

// --- One file, several storing nodes: the next is asked when one fails ---

// The same scan, for the same holder, stored at the village and then at its sibling (an ID card
// scanned at two stations): the district holds both records, the sibling's newest.
class MaterialFallbackTest : public MaterialFetchTest {
 protected:
  void SetUp() override {
    MaterialFetchTest::SetUp();
    if (HasFatalFailure()) return;
    ASSERT_EQ(storeAt(kSibling, content_, /*records=*/2), hash_);
  }

  // `node` answers every request with a signed refusal of `code`.
  void refuseAt(const char* node, const std::string& error_code) {
    replaceVillageResponder(
        [this, node, error_code](const OpenedEnvelope& e, const MaterialFetchRequestMsg& asked) {
          MaterialChunkMsg c;
          c.hash = asked.hash;
          c.error_code = error_code;
          c.error_message = "no material of holder " + asked.holder + " is stored at " + node;
          return sealChunk(e, c, node);
        },
        node);
  }
};

TEST_F(MaterialFallbackTest, APartitionedStoringNodeIsFollowedByTheNextOne) {
  world_.setLinkUp(code(kSibling), false);
  auto got = fetchAt(kDistrict, hash_);
  ASSERT_TRUE(got.isOk()) << got.status().toString();
  EXPECT_EQ(got->content, content_);
  EXPECT_EQ(got->source, FetchedMaterial::Source::kFetched);
  EXPECT_EQ(got->record.stored_at, kVillage) << "the record of the node that served it";
  EXPECT_EQ(districtCounters().source_fallbacks, 1u);
  EXPECT_EQ(districtCounters().fetches_started, 1u);
}

TEST_F(MaterialFallbackTest, TheNewestRecordsNodeIsAskedFirstAndAloneWhenItServes) {
  auto got = fetchAt(kDistrict, hash_);
  ASSERT_TRUE(got.isOk()) << got.status().toString();
  EXPECT_EQ(got->record.stored_at, kSibling);
  EXPECT_EQ(districtCounters().source_fallbacks, 0u);
}

TEST_F(MaterialFallbackTest, ANotFoundAnswerIsFollowedByTheNextStoringNode) {
  refuseAt(kSibling, "NOT_FOUND");
  auto got = fetchAt(kDistrict, hash_);
  ASSERT_TRUE(got.isOk()) << got.status().toString();
  EXPECT_EQ(got->record.stored_at, kVillage);
  EXPECT_EQ(got->content, content_);
}

TEST_F(MaterialFallbackTest, WhenNoStoringNodeServesTheErrorNamesEverySourceTriedAndWhy) {
  world_.setLinkUp(code(kSibling), false);
  refuseAt(kVillage, "NOT_FOUND");
  auto got = fetchAt(kDistrict, hash_);
  ASSERT_FALSE(got.isOk());
  const std::string m = got.status().message();  // a copy: status() returns by value
  EXPECT_TRUE(got.status().code() == ErrorCode::kNoResponders || got.status().code() == ErrorCode::kTimeout)
      << "the failure a retry may cure decides the code: " << got.status().toString();
  EXPECT_NE(m.find("could not be fetched; storing nodes asked, newest record first: (1) "), std::string::npos) << m;
  EXPECT_NE(m.find("(1) " + std::string(kSibling) + ", which"), std::string::npos) << m;
  EXPECT_NE(m.find("(2) " + std::string(kVillage) + ", which refused: NOT_FOUND"), std::string::npos) << m;
  EXPECT_NE(m.find("try again when their links are up"), std::string::npos) << m;
  EXPECT_FALSE(cachedAtDistrict());
}

TEST_F(MaterialFallbackTest, AtMostMaxSourcesStoringNodesAreAsked) {
  fetch_settings_[kDistrict].max_sources = 1;
  restart(kDistrict);
  world_.setLinkUp(code(kSibling), false);
  auto got = fetchAt(kDistrict, hash_);
  ASSERT_FALSE(got.isOk());
  EXPECT_NE(got.status().message().find("is stored at " + std::string(kSibling)), std::string::npos)
      << got.status().message();
  EXPECT_EQ(got.status().message().find(kVillage), std::string::npos) << got.status().message();
  EXPECT_EQ(districtCounters().source_fallbacks, 0u);
}

TEST_F(MaterialFallbackTest, EverySourceSharesTheOneOverallDeadline) {
  // Two attempts of 5 s at a silent sibling would take ~10 s; the whole file may take 8 s.
  fetch_settings_[kDistrict].overall_deadline_ms = 8000;
  restart(kDistrict);
  world_.faults().drop = 1.0;
  const TimeMs asked_at = world_.now();
  auto got = fetchAt(kDistrict, hash_);
  ASSERT_FALSE(got.isOk());
  EXPECT_EQ(got.status().code(), ErrorCode::kTimeout) << got.status().toString();
  EXPECT_NE(got.status().message().find("not asked before the deadline: " + std::string(kVillage)), std::string::npos)
      << got.status().message();
  EXPECT_LE(world_.now() - asked_at, 8000 + 100) << "virtual time: the deadline bounds the whole fetch";
}

}  // namespace
}  // namespace tongban
