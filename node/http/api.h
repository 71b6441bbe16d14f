// The node's HTTP API (docs/api.md): the catalogue and case status for the public, and for
// logged-in staff the window's work — intake, steps, warnings, materials. Handlers run on the
// node's executor (the HTTP server shares its io_context), so they call the node directly.
#pragma once

#include "node/app/node.h"
#include "node/http/router.h"
#include "node/staff/staff.h"

namespace tongban {

// Registers every endpoint of the node on `router`. `node` and `staff` must outlive it.
void registerNodeApi(Router& router, Node& node, StaffDirectory& staff);

// The supervision endpoints (supervision_api.cpp); registerNodeApi calls it last.
void registerSupervisionApi(Router& router, Node& node);

// GET /api/materials/{hash}/file: a material file, fetched on demand (materials_api.cpp);
// registerNodeApi calls it after the supervision endpoints.
void registerMaterialsApi(Router& router, Node& node);

// GET /api/lookup: holder, material or credential, asked up the tree (lookup_api.cpp; async);
// registerNodeApi calls it after the supervision endpoints.
void registerLookupApi(Router& router, Node& node);

// Credentials: verify (public), held credentials, status, renewal, identity records, key
// revocations (credentials_api.cpp); registerNodeApi calls it after the lookups.
void registerCredentialsApi(Router& router, Node& node);

}  // namespace tongban
