#include "common/transport/secagg_wire.h"

#include "common/util/byte_order.h"
#include "common/util/error.h"
#include "proto/fedmed.pb.h"

namespace fedmed {

void ToProto(const AdvertisedKeys& in, v1::SecAggKeys* out) {
  out->set_index(in.index);
  out->set_site(in.site);
  out->set_c_public_key(in.c_public_key);
  out->set_s_public_key(in.s_public_key);
  out->set_signature(in.signature);
  out->set_certificate_pem(in.certificate_pem);
}

AdvertisedKeys FromProto(const v1::SecAggKeys& in) {
  AdvertisedKeys out;
  out.index = in.index();
  out.site = in.site();
  out.c_public_key = in.c_public_key();
  out.s_public_key = in.s_public_key();
  out.signature = in.signature();
  out.certificate_pem = in.certificate_pem();
  return out;
}

void ToProto(const EncryptedShare& in, v1::SecAggShare* out) {
  out->set_from(in.from);
  out->set_to(in.to);
  out->set_ciphertext(in.ciphertext);
}

EncryptedShare FromProto(const v1::SecAggShare& in) {
  EncryptedShare out;
  out.from = in.from();
  out.to = in.to();
  out.ciphertext = in.ciphertext();
  return out;
}

void ToProto(const UnmaskShare& in, v1::SecAggUnmaskShare* out) {
  out->set_owner(in.owner);
  out->set_self_mask(in.self_mask);
  out->set_share(in.share);
}

UnmaskShare FromProto(const v1::SecAggUnmaskShare& in) {
  UnmaskShare out;
  out.owner = in.owner();
  out.self_mask = in.self_mask();
  out.share = in.share();
  return out;
}

void ToProto(const SecAggRoundConfig& in, v1::SecureAggregation* out) {
  out->set_attempt(in.attempt);
  out->set_threshold(in.threshold);
  out->set_clip_range(in.clip_range);
  out->set_quantization_bits(in.quantization_bits);
  for (const std::string& p : in.participants) out->add_participants(p);
  out->set_weight_normalizer(in.weight_normalizer);
  out->set_num_values(in.num_values);
  out->set_neighbours(in.neighbours);
}

SecAggRoundConfig FromProto(const v1::SecureAggregation& in, int round) {
  SecAggRoundConfig out;
  out.round = round;
  out.attempt = in.attempt();
  out.threshold = in.threshold();
  out.clip_range = in.clip_range();
  out.quantization_bits = in.quantization_bits();
  out.participants.assign(in.participants().begin(), in.participants().end());
  out.weight_normalizer = in.weight_normalizer();
  out.num_values = in.num_values();
  out.neighbours = in.neighbours();
  return out;
}

std::string EncodeMaskedInput(const std::vector<uint32_t>& words) {
  std::string bytes(words.size() * 4, '\0');
  for (size_t i = 0; i < words.size(); ++i) StoreLittleEndian32(&bytes[4 * i], words[i]);
  return bytes;
}

std::vector<uint32_t> DecodeMaskedInput(const std::string& bytes, const std::string& what) {
  if (bytes.size() % 4 != 0) {
    throw FormatError(what + ": " + std::to_string(bytes.size()) +
                      " bytes is not a whole number of 32-bit words");
  }
  std::vector<uint32_t> words(bytes.size() / 4);
  for (size_t i = 0; i < words.size(); ++i) words[i] = LoadLittleEndian32(&bytes[4 * i]);
  return words;
}

}  // namespace fedmed
