// GET /api/materials/{hash}/file?holder=ID (docs/api.md "Material files"): the file of a
// material this node holds a record of, from its own store, its cache, or fetched on demand from
// the node that stores it (node/materials/fetch.h). Asynchronous: the node's one thread keeps
// serving while the chunks travel; the answer goes out when the fetch ends.
#include "federation/util/bytes.h"
#include "node/http/api.h"

namespace tongban {

void registerMaterialsApi(Router& router, Node& node) {
  Node* n = &node;
  // Any logged-in staff: a clerk at the deciding hall reads the scans of the case in front of them.
  router.addAsync("GET", "/api/materials/{hash}/file", Access::kAuthenticated,
                  [n](const HttpRequest& req, const Principal*, Router::Respond respond) {
                    auto holder = req.query.find("holder");
                    if (holder == req.query.end() || holder->second.empty()) {
                      return respond(errorResponse(Status(
                          ErrorCode::kInvalidArgument,
                          "name the material's holder: /api/materials/<hash>/file?holder=<applicant ID>")));
                    }
                    n->materialFetcher().fetch(req.params.at("hash"), holder->second,
                                               [respond](Result<FetchedMaterial> fetched) {
                                                 if (!fetched) return respond(errorResponse(fetched.status()));
                                                 HttpResponse res;
                                                 res.content_type = fetched->record.content_type;
                                                 res.body = toString(fetched->content);
                                                 res.headers.emplace_back("X-Tongban-Seal", hexEncode(fetched->record.seal));
                                                 res.headers.emplace_back("X-Tongban-Stored-At", fetched->record.stored_at);
                                                 res.headers.emplace_back("X-Tongban-Source",
                                                                          fetchSourceName(fetched->source));
                                                 respond(std::move(res));
                                               });
                  });
}

}  // namespace tongban
