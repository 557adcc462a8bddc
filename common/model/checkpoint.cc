#include "common/model/checkpoint.h"

#include <fcntl.h>
#include <unistd.h>

#include <torch/torch.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <vector>

#include "common/util/error.h"

namespace fedmed {

namespace {

std::string ErrnoText() { return std::strerror(errno); }

// Writes `bytes` to a new file at `path` and flushes it to disk.
void WriteFileSynced(const std::string& path, const std::vector<char>& bytes) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw DataError("cannot create checkpoint file '" + path + "': " + ErrnoText());
  size_t written = 0;
  while (written < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + written, bytes.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const std::string error = ErrnoText();
      ::close(fd);
      throw DataError("cannot write checkpoint file '" + path + "': " + error);
    }
    written += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    const std::string error = ErrnoText();
    ::close(fd);
    throw DataError("cannot flush checkpoint file '" + path + "' to disk: " + error);
  }
  if (::close(fd) != 0) {
    throw DataError("cannot close checkpoint file '" + path + "': " + ErrnoText());
  }
}

}  // namespace

void SaveCheckpoint(const ModelState& state, const std::string& path) {
  c10::Dict<std::string, at::Tensor> dict;
  for (const NamedTensor& t : state.tensors) {
    // from_blob does not copy; the pickler only reads the values.
    dict.insert(t.name, torch::from_blob(const_cast<float*>(t.values.data()), t.shape,
                                         torch::kFloat));
  }
  const std::vector<char> bytes = torch::pickle_save(dict);
  const std::string temporary = path + ".tmp";
  try {
    WriteFileSynced(temporary, bytes);
  } catch (const DataError&) {
    std::remove(temporary.c_str());
    throw;
  }
  if (std::rename(temporary.c_str(), path.c_str()) != 0) {
    const std::string error = ErrnoText();
    std::remove(temporary.c_str());
    throw DataError("cannot rename checkpoint file '" + temporary + "' to '" + path +
                    "': " + error);
  }
}

ModelState LoadCheckpoint(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) throw DataError("cannot open checkpoint file '" + path + "': " + ErrnoText());
  const std::vector<char> bytes((std::istreambuf_iterator<char>(file)),
                                std::istreambuf_iterator<char>());
  if (file.bad()) throw DataError("cannot read checkpoint file '" + path + "': " + ErrnoText());

  const std::string expected =
      "expected a torch.save archive of a dict {parameter name: float32 tensor} (from Python, "
      "save dict(model.state_dict()) rather than the OrderedDict model.state_dict())";
  c10::IValue value;
  try {
    value = torch::pickle_load(bytes);
  } catch (const c10::Error& e) {
    const std::string reason = e.what_without_backtrace();
    throw FormatError("checkpoint '" + path + "' cannot be unpickled (" +
                      reason.substr(0, reason.find('\n')) + "); " + expected);
  }
  if (!value.isGenericDict()) {
    throw FormatError("checkpoint '" + path + "' holds a " + value.tagKind() + "; " + expected);
  }
  ModelState state;
  for (const auto& entry : value.toGenericDict()) {
    if (!entry.key().isString()) {
      throw FormatError("checkpoint '" + path + "' has a " + entry.key().tagKind() + " key; " +
                        expected);
    }
    const std::string name = entry.key().toStringRef();
    if (!entry.value().isTensor() || entry.value().toTensor().scalar_type() != torch::kFloat) {
      const std::string found = entry.value().isTensor()
                                    ? std::string(c10::toString(
                                          entry.value().toTensor().scalar_type())) + " tensor"
                                    : entry.value().tagKind();
      throw FormatError("checkpoint '" + path + "': entry '" + name + "' is a " + found +
                        ", expected a float32 tensor");
    }
    const torch::Tensor t = entry.value().toTensor().contiguous();
    NamedTensor& out = state.tensors.emplace_back();
    out.name = name;
    out.shape.assign(t.sizes().begin(), t.sizes().end());
    out.values.resize(static_cast<size_t>(t.numel()));
    std::memcpy(out.values.data(), t.data_ptr<float>(), out.values.size() * sizeof(float));
  }
  return state;
}

}  // namespace fedmed
