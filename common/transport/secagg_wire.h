// Conversions between the secure-aggregation messages of common/secagg/stage_messages.h and
// their protobuf form (proto/fedmed.proto: SecAggKeys, SecAggShare, SecAggUnmaskShare), shared by
// the coordinator and the site agent so that both ends read and write them the same way.
#ifndef FEDMED_COMMON_TRANSPORT_SECAGG_WIRE_H_
#define FEDMED_COMMON_TRANSPORT_SECAGG_WIRE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "common/secagg/stage_messages.h"

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

// The bytes of a masked input as uploaded (stage 2): each 32-bit word of Z_2^32, little-endian,
// in order (4 bytes per word; num_values + 1 words, the last one the masked weight).
std::string EncodeMaskedInput(const std::vector<uint32_t>& words);
// The inverse. Throws FormatError naming `what` when the size is not a multiple of 4 bytes.
std::vector<uint32_t> DecodeMaskedInput(const std::string& bytes, const std::string& what);

}  // namespace fedmed

#endif  // FEDMED_COMMON_TRANSPORT_SECAGG_WIRE_H_
