// Chunked transfer of large byte strings (models and updates) over gRPC streams.
//
// gRPC's default limit is 4 MB per message and protobuf's hard ceiling is 2 GB, so models never
// travel as one message: a header carrying the total size and the SHA-256 of the whole is followed
// by data chunks of at most kMaxChunkBytes, in order. The receiver checks the size as it goes
// (so a lying peer cannot make it allocate without bound) and the digest at the end.
// This file has no gRPC in it; the service and the site connection move the chunks.
#ifndef FEDMED_COMMON_TRANSPORT_CHUNKING_H_
#define FEDMED_COMMON_TRANSPORT_CHUNKING_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace fedmed {

// Largest data chunk on the wire: 1 MiB.
inline constexpr std::size_t kMaxChunkBytes = std::size_t{1} << 20;

// Largest model or update fedmed accepts: 4 GiB. A header announcing more is refused.
inline constexpr int64_t kMaxTransferBytes = int64_t{4} << 30;

// A transfer of S bytes may come in at most 1 + ceil(S / kMinChunkBytes) chunks (senders use
// kMaxChunkBytes), and an empty chunk only as the whole of an empty transfer: a peer cannot keep
// a receiver busy with a stream of tiny or empty chunks.
inline constexpr std::size_t kMinChunkBytes = std::size_t{64} << 10;

// Calls `send` with consecutive pieces of `bytes` of at most `chunk_bytes` each (at least one call,
// with an empty piece, when `bytes` is empty). Stops early and returns false when `send` returns
// false (the stream broke); returns true when every piece was sent.
bool ForEachChunk(std::string_view bytes, const std::function<bool(std::string_view)>& send,
                  std::size_t chunk_bytes = kMaxChunkBytes);

// Reassembles a chunked transfer and checks it against its header.
class ChunkAssembler {
 public:
  // `what` names the transfer in errors ("update from site-2 for round 3").
  // Throws FormatError if expected_size is negative or above kMaxTransferBytes, or if
  // expected_sha256 is not 64 lowercase hex characters.
  ChunkAssembler(int64_t expected_size, std::string expected_sha256, std::string what);

  // Appends one chunk. Throws FormatError if the chunk is larger than kMaxChunkBytes, empty (but
  // for the one chunk of an empty transfer), beyond the chunk count allowed for the announced
  // size (kMinChunkBytes), or the data would exceed the announced size.
  void Append(std::string_view chunk);

  // Returns the reassembled bytes. Throws FormatError if fewer bytes than announced arrived or the
  // SHA-256 of the bytes differs from the header's.
  std::string Finish();

  int64_t received() const { return static_cast<int64_t>(data_.size()); }

  // Resumable transfers: continues a transfer of which `received` (its first received.size()
  // bytes, as an earlier stream cut part-way delivered them) is already here; later Appends add
  // what follows, and Finish checks the SHA-256 of the whole. Only before the first Append.
  // Throws FormatError if received is longer than the announced size.
  void Resume(std::string received);
  // The bytes received so far (whole chunks, in order), leaving the assembler empty: what a
  // receiver keeps of a stream that ended part-way, to Resume it on the next one.
  std::string TakeReceived() { return std::move(data_); }

 private:
  int64_t expected_size_;
  std::string expected_sha256_;
  std::string what_;
  std::string data_;
  int64_t chunks_ = 0;
  int64_t max_chunks_ = 1;
};

}  // namespace fedmed

#endif  // FEDMED_COMMON_TRANSPORT_CHUNKING_H_
