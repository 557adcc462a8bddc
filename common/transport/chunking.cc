#include "common/transport/chunking.h"

#include <algorithm>

#include "common/crypto/sha256.h"
#include "common/util/error.h"

namespace fedmed {

bool ForEachChunk(std::string_view bytes, const std::function<bool(std::string_view)>& send,
                  std::size_t chunk_bytes) {
  if (bytes.empty()) return send(bytes);
  for (std::size_t offset = 0; offset < bytes.size(); offset += chunk_bytes) {
    if (!send(bytes.substr(offset, chunk_bytes))) return false;
  }
  return true;
}

ChunkAssembler::ChunkAssembler(int64_t expected_size, std::string expected_sha256,
                               std::string what)
    : expected_size_(expected_size),
      expected_sha256_(std::move(expected_sha256)),
      what_(std::move(what)) {
  if (expected_size_ < 0 || expected_size_ > kMaxTransferBytes) {
    throw FormatError(what_ + ": announced size " + std::to_string(expected_size_) +
                      " bytes is outside [0, " + std::to_string(kMaxTransferBytes) + "]");
  }
  const bool hex = std::all_of(expected_sha256_.begin(), expected_sha256_.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
  });
  if (expected_sha256_.size() != 64 || !hex) {
    throw FormatError(what_ + ": header sha256 '" + expected_sha256_ +
                      "' is not 64 lowercase hex digits");
  }
  const auto min_chunk = static_cast<int64_t>(kMinChunkBytes);
  max_chunks_ = 1 + (expected_size_ + min_chunk - 1) / min_chunk;
  // Reserve no more than 64 MiB up front: a peer announcing a huge size must send it to use it.
  data_.reserve(static_cast<std::size_t>(std::min<int64_t>(expected_size_, int64_t{64} << 20)));
}

void ChunkAssembler::Append(std::string_view chunk) {
  if (++chunks_ > max_chunks_) {
    throw FormatError(what_ + ": more than " + std::to_string(max_chunks_) + " chunks for " +
                      std::to_string(expected_size_) + " bytes");
  }
  if (chunk.empty() && expected_size_ > 0) {
    throw FormatError(what_ + ": an empty chunk in a transfer of " +
                      std::to_string(expected_size_) + " bytes");
  }
  if (chunk.size() > kMaxChunkBytes) {
    throw FormatError(what_ + ": chunk of " + std::to_string(chunk.size()) +
                      " bytes exceeds the 1 MiB chunk limit");
  }
  if (received() + static_cast<int64_t>(chunk.size()) > expected_size_) {
    throw FormatError(what_ + ": more data than the " + std::to_string(expected_size_) +
                      " bytes announced in the header");
  }
  data_.append(chunk);
}

void ChunkAssembler::Resume(std::string received) {
  if (static_cast<int64_t>(received.size()) > expected_size_) {
    throw FormatError(what_ + ": resuming after " + std::to_string(received.size()) +
                      " bytes, more than the " + std::to_string(expected_size_) + " announced");
  }
  data_ = std::move(received);
  data_.reserve(static_cast<std::size_t>(std::min<int64_t>(expected_size_, int64_t{64} << 20)));
}

std::string ChunkAssembler::Finish() {
  if (received() != expected_size_) {
    throw FormatError(what_ + ": stream ended after " + std::to_string(received()) + " of " +
                      std::to_string(expected_size_) + " bytes");
  }
  const std::string digest = Sha256Hex(data_);
  if (digest != expected_sha256_) {
    throw FormatError(what_ + ": SHA-256 mismatch: header says " + expected_sha256_ +
                      ", data hashes to " + digest);
  }
  return std::move(data_);
}

}  // namespace fedmed
