// libFuzzer harness: a model arriving in chunks (the global model a site downloads, an update the
// coordinator receives): ChunkAssembler (common/transport/chunking.h) checks the announced size,
// the chunk sizes and count and the SHA-256, then DecodeModelState decodes the bytes.
//
// Input: 8 bytes of announced size (little-endian, taken modulo 2^24 when bit 0 of the next byte
// is clear, so that most inputs announce a plausible size), one flag byte (bit 1: announce the
// SHA-256 of the chunks, else a fixed digest), then length-prefixed chunks.
#include <cstddef>
#include <cstdint>

#include "common/crypto/sha256.h"
#include "common/model/model_state.h"
#include "common/transport/chunking.h"
#include "fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fedmed::fuzz::InputReader in(data, size);
  uint64_t announced = 0;
  for (int i = 0; i < 8; ++i) announced |= static_cast<uint64_t>(in.Byte()) << (8 * i);
  const uint8_t flags = in.Byte();
  if ((flags & 1) == 0) announced &= (uint64_t{1} << 24) - 1;
  std::vector<std::string_view> chunks;
  fedmed::Sha256 digest;
  while (!in.empty()) {
    chunks.push_back(in.Piece());
    digest.Update(chunks.back());
  }
  const std::string sha = (flags & 2) != 0 ? digest.FinishHex() : std::string(64, 'a');
  fedmed::fuzz::ExpectOnlyFedmedErrors("fuzz_model_download", [&] {
    fedmed::ChunkAssembler assembler(static_cast<int64_t>(announced), sha, "fuzz download");
    for (std::string_view c : chunks) assembler.Append(c);
    fedmed::DecodeModelState(assembler.Finish(), "fuzz download");
  });
  return 0;
}
