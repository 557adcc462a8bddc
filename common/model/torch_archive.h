// Checks on a PyTorch archive (the zip file torch.save and torch.jit.save write) made before
// LibTorch reads it, and a bounded in-memory reader for LibTorch. LibTorch 1.13 trusts what an
// archive declares: miniz reads whatever range a central directory names, and the unpickler
// reserves a declared string length before reading it, and a storage takes its size from the
// pickle but its bytes from a record of any size, so a forged file of a few hundred bytes could
// read past its buffer or allocate gigabytes (all found by fuzz/fuzz_checkpoint). A file
// that passes CheckTorchArchive allocates at most about 1032 times its own size in LibTorch.
//
// The pickle format is Python's (PEP 307 and PEP 3154, protocols 0-5); the zip format is
// PKWARE's APPNOTE.TXT, read with libzip.
#ifndef FEDMED_COMMON_MODEL_TORCH_ARCHIVE_H_
#define FEDMED_COMMON_MODEL_TORCH_ARCHIVE_H_

#include <memory>
#include <string>

namespace caffe2::serialize {
class ReadAdapterInterface;
}  // namespace caffe2::serialize

namespace fedmed {

// Checks `bytes`, the whole content of a torch.save or torch.jit.save archive, before LibTorch
// reads it:
//   - the file is a zip archive; every entry's declared uncompressed size is at most what its
//     stored bytes can hold (equal when stored, as PyTorch writes them; at most 1032:1 when
//     deflated) and its stored size at most the file's size;
//   - every pickle in it (the entries whose names end in "pkl": data.pkl, constants.pkl,
//     code/*.debug_pkl) declares no string, bytes or long longer than the bytes that follow the
//     declaration, and memoises no value under an index beyond its own size;
//   - every persistent id of a pickle is a storage tuple ('storage', torch.<Type>Storage, key,
//     location, numel) whose numel elements fit in the record <pickle's name without .pkl>/key
//     (LibTorch sizes the storage from numel but fills it from the record).
// Throws FormatError starting with `what` (e.g. "checkpoint 'PATH'") and naming the entry, the
// pickle's byte offset and what was declared otherwise. Opcodes it does not know end the walk
// of that pickle (LibTorch refuses them itself).
void CheckTorchArchive(const std::string& bytes, const std::string& what);

// A reader for LibTorch's caffe2::serialize::PyTorchStreamReader (and torch::jit::load) over
// `bytes`, every read clamped to them: a read past the end returns fewer bytes (LibTorch then
// reports the archive as corrupt) instead of reading beyond the buffer.
std::shared_ptr<caffe2::serialize::ReadAdapterInterface> BoundedArchiveReader(std::string bytes);

}  // namespace fedmed

#endif  // FEDMED_COMMON_MODEL_TORCH_ARCHIVE_H_
