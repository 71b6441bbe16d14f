// Credentials as a lookup source: a holder question lists the holder's identity record (一表登记)
// and the credentials a node holds for that holder, a credential question finds one by number. Each record's payload is the sealed
// credential itself, so the asker can verify it offline like any citizen-held copy; each
// credential record also says what this node knows of its status (CredentialService::verify at
// the moment of answering: verdict, reason, newest version, freshness of the status data).
#pragma once

#include <memory>

#include "node/credentials/credentials.h"
#include "node/lookup/lookup.h"

namespace tongban {

// `credentials` and `clock` must outlive the source.
std::unique_ptr<LookupSource> makeCredentialLookupSource(CredentialService& credentials, Clock& clock);

// The check a lookup applies to a credential record from upstream (CredentialRecordCheck): the
// document is a credential (kind 130) whose number, holder and issuer are the record's id,
// holder and issued_at.
Status checkCredentialRecord(const LookupRecord& record, const OpenedEnvelope& document);

}  // namespace tongban
