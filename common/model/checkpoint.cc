#include "common/model/checkpoint.h"

#include <caffe2/serialize/inline_container.h>
#include <torch/csrc/jit/serialization/import_read.h>
#include <torch/torch.h>

#include <algorithm>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "common/util/error.h"
#include "common/util/file_io.h"
#include "common/model/torch_archive.h"
#include "common/model/torch_state.h"

namespace fedmed {

void SaveCheckpoint(const ModelState& state, const std::string& path) {
  c10::Dict<std::string, at::Tensor> dict;
  for (const NamedTensor& t : state.tensors) {
    // from_blob does not copy; the pickler only reads the values.
    dict.insert(t.name, torch::from_blob(const_cast<float*>(t.values.data()), t.shape,
                                         torch::kFloat));
  }
  const std::vector<char> bytes = torch::pickle_save(dict);
  try {
    WriteFileAtomically(path, std::string_view(bytes.data(), bytes.size()), "checkpoint file");
  } catch (const Error& e) {
    throw DataError(e.what());
  }
}

ModelState LoadCheckpoint(const std::string& path) {
  std::string content;
  try {
    content = ReadFile(path, "checkpoint file");
  } catch (const Error& e) {
    throw DataError(e.what());
  }

  const std::string expected =
      "expected a torch.save archive of a dict {parameter name: float32 tensor} (from Python, "
      "save dict(model.state_dict()) rather than the OrderedDict model.state_dict())";
  CheckTorchArchive(content, "checkpoint '" + path + "'");
  c10::IValue value;
  try {
    // What torch::pickle_load does, through a reader bounded to the file's bytes.
    caffe2::serialize::PyTorchStreamReader reader(
        BoundedArchiveReader(std::move(content)));
    value = torch::jit::readArchiveAndTensors("data", /*pickle_prefix=*/"", /*tensor_prefix=*/"",
                                              c10::nullopt, c10::nullopt, c10::nullopt, reader);
  } catch (const c10::Error& e) {
    const std::string reason = e.what_without_backtrace();
    throw FormatError("checkpoint '" + path + "' cannot be unpickled (" +
                      reason.substr(0, reason.find('\n')) + "); " + expected);
  } catch (const std::bad_alloc&) {
    throw;
  } catch (const std::exception& e) {
    // LibTorch's type parser reports a malformed type tag as torch::jit::ErrorReport, which is
    // not a c10::Error (found by fuzz/fuzz_checkpoint).
    const std::string reason = e.what();
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
    state.tensors.push_back(
        CopyTensor(name, entry.value().toTensor(), "checkpoint '" + path + "'"));
  }
  return state;
}

}  // namespace fedmed
