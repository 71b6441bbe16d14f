#include "federation/trust/envelope.h"
#include "federation/util/capnp_io.h"
#include "schema/trust.capnp.h"

namespace tongban {

Result<ClaimedEnvelope> peekEnvelope(const Bytes& sealed, const EnvelopeLimits& limits) {
  capnp_io::ReadLimits outer;
  outer.max_bytes = limits.max_bytes;
  outer.nesting_limit = limits.nesting_limit;
  return capnp_io::read<wire::SealedEnvelope>(
      sealed, "sealed envelope", outer, [&](wire::SealedEnvelope::Reader r) -> Result<ClaimedEnvelope> {
        Bytes body = capnp_io::dataToBytes(r.getBody());
        return capnp_io::read<wire::Envelope>(body, "envelope body", outer,
                                              [](wire::Envelope::Reader e) -> Result<ClaimedEnvelope> {
                                                auto signer = e.getSigner();
                                                return ClaimedEnvelope{std::string(signer.begin(), signer.size()),
                                                                       e.getSeq(), e.getKind()};
                                              });
      });
}

}  // namespace tongban
