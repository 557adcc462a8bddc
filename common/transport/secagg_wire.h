// Conversions between the secure-aggregation messages of common/secagg/protocol.h and their
// protobuf form (proto/fedmed.proto: SecAggKeys, SecAggShare, SecAggUnmaskShare), shared by the
// coordinator and the site agent so that both ends read and write them the same way.
#ifndef FEDMED_COMMON_TRANSPORT_SECAGG_WIRE_H_
#define FEDMED_COMMON_TRANSPORT_SECAGG_WIRE_H_

#include "common/secagg/protocol.h"

namespace fedmed {
namespace v1 {
class SecAggKeys;
class SecAggShare;
class SecAggUnmaskShare;
class SecureAggregation;
}  // namespace v1

void ToProto(const AdvertisedKeys& in, v1::SecAggKeys* out);
AdvertisedKeys FromProto(const v1::SecAggKeys& in);

void ToProto(const EncryptedShare& in, v1::SecAggShare* out);
EncryptedShare FromProto(const v1::SecAggShare& in);

void ToProto(const UnmaskShare& in, v1::SecAggUnmaskShare* out);
UnmaskShare FromProto(const v1::SecAggUnmaskShare& in);

// The round parameters of a training task (round and num_values included); FromProto does not
// validate (SecAggClient's constructor does).
void ToProto(const SecAggRoundConfig& in, v1::SecureAggregation* out);
SecAggRoundConfig FromProto(const v1::SecureAggregation& in, int round);

}  // namespace fedmed

#endif  // FEDMED_COMMON_TRANSPORT_SECAGG_WIRE_H_
