#include "federation/trust/envelope.h"
#include "federation/trust/wire_codec.h"

namespace tongban {

Result<ClaimedEnvelope> peekEnvelope(const Bytes& sealed, const EnvelopeLimits& limits) {
  if (sealed.size() > limits.max_bytes) {
    return Status(ErrorCode::kOversize, "sealed envelope is " + std::to_string(sealed.size()) + " bytes");
  }
  const trust_internal::DecodeLimits decode{limits.traversal_words_factor, limits.nesting_limit};
  auto body = trust_internal::readFlat(sealed.data(), sealed.size(), decode, "sealed envelope",
                                       [](capnp::MessageReader& r) -> Result<Bytes> {
                                         return trust_internal::bytesOf(r.getRoot<wire::SealedEnvelope>().getBody());
                                       });
  if (!body) return body.status();
  return trust_internal::readCanonical(body->data(), body->size(), decode, "envelope body",
                                       [](capnp::MessageReader& r) -> Result<ClaimedEnvelope> {
                                         auto e = r.getRoot<wire::Envelope>();
                                         auto signer = e.getSigner();
                                         return ClaimedEnvelope{std::string(signer.begin(), signer.size()),
                                                                e.getSeq(), e.getKind(), e.getTimestampMs(),
                                                                trust_internal::bytesOf(e.getPayload())};
                                       });
}

}  // namespace tongban
