// Credentials as a lookup source: a holder question lists the holder's identity record (一表登记)
// and the credentials a node holds for that holder, a credential question finds one by number. Each record's payload is the sealed
// credential itself, so the asker can verify it offline like any citizen-held copy.
#pragma once

#include <memory>

#include "node/credentials/credentials.h"
#include "node/lookup/lookup.h"

namespace tongban {

// `credentials` must outlive the source.
std::unique_ptr<LookupSource> makeCredentialLookupSource(CredentialService& credentials);

}  // namespace tongban
