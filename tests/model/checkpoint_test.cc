#include "common/model/checkpoint.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "common/crypto/sha256.h"
#include "common/model/local_training.h"
#include "common/model/torch_state.h"
#include "common/model/zoo.h"
#include "common/util/error.h"
#include "tests/test_util.h"

namespace fedmed {
namespace {

namespace fs = std::filesystem;

// Reads a checkpoint as PyTorch does and checks it against the modules documented in zoo.h.
// argv: cnn checkpoint (C=1, K=2), resnet18 checkpoint (C=3, K=3), output directory.
// Prints one line per fact for the C++ side to compare.
constexpr char kPythonScript[] = R"PY(
import hashlib, sys
import torch, torch.nn as nn, torch.nn.functional as F

from fedmed_zoo import Cnn, ResNet18  # tests/python: zoo.h's networks in PyTorch

def probe(C):
    return torch.linspace(-1, 1, 2 * C * 28 * 28).reshape(2, C, 28, 28)

def logits(tag, model, C):
    model.eval()
    with torch.no_grad():
        print("logits", tag, " ".join(repr(v) for v in model(probe(C)).flatten().tolist()))

for tag, path, model, C in [("cnn", sys.argv[1], Cnn(1, 2), 1),
                            ("resnet18", sys.argv[2], ResNet18(3, 3), 3)]:
    sd = torch.load(path)
    print("type", tag, type(sd).__name__)
    for name, t in sd.items():
        print("tensor", tag, name, str(t.dtype), ",".join(str(d) for d in t.shape),
              hashlib.sha256(t.contiguous().numpy().tobytes()).hexdigest())
    model.load_state_dict(sd, strict=True)
    logits(tag, model, C)

torch.manual_seed(0)
model = Cnn(1, 2)
torch.save(dict(model.state_dict()), sys.argv[3] + "/from_python.pt")
torch.save(model.state_dict(), sys.argv[3] + "/from_python_ordered.pt")
logits("python_cnn", model, 1)
print("done")
)PY";

class CheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("fedmed_checkpoint_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Path(const std::string& name) const { return (dir_ / name).string(); }

  fs::path dir_;
};

ModelState HandMadeState() {
  ModelState s;
  s.tensors.push_back({"conv1.weight", {2, 1, 1, 2}, {1.5f, -0.0f, 3e-39f, -7.25f}});
  s.tensors.push_back({"scalar", {}, {42.0f}});
  s.tensors.push_back({"empty", {0, 3}, {}});
  return s;
}

TEST_F(CheckpointTest, RoundTripIsBitIdentical) {
  for (const ModelState& state :
       {HandMadeState(), InitialModelState({"cnn", 1, 2, 28}, 4)}) {
    const std::string path = Path("model.pt");
    SaveCheckpoint(state, path);
    EXPECT_FALSE(fs::exists(path + ".tmp"));
    EXPECT_EQ(EncodeModelState(LoadCheckpoint(path)), EncodeModelState(state));
  }
}

TEST_F(CheckpointTest, OverwritesAtomicallyAndReportsIoErrors) {
  const std::string path = Path("global.pt");
  SaveCheckpoint(HandMadeState(), path);
  const ModelState cnn = InitialModelState({"cnn", 1, 2, 28}, 1);
  SaveCheckpoint(cnn, path);
  EXPECT_EQ(EncodeModelState(LoadCheckpoint(path)), EncodeModelState(cnn));

  const std::string missing_dir = Path("no/such/dir/model.pt");
  try {
    SaveCheckpoint(cnn, missing_dir);
    ADD_FAILURE() << "expected DataError";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find(missing_dir), std::string::npos) << e.what();
  }
  try {
    LoadCheckpoint(Path("absent.pt"));
    ADD_FAILURE() << "expected DataError";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("absent.pt"), std::string::npos) << e.what();
  }
  std::ofstream(Path("garbage.pt")) << "not a checkpoint";
  try {
    LoadCheckpoint(Path("garbage.pt"));
    ADD_FAILURE() << "expected FormatError";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("garbage.pt"), std::string::npos) << e.what();
  }
}

// Logits of `model` (eval mode) on the probe input of the Python script.
std::vector<double> ProbeLogits(Classifier& model, int64_t channels) {
  model.eval();
  torch::NoGradGuard no_grad;
  const torch::Tensor x =
      torch::linspace(-1, 1, 2 * channels * 28 * 28).reshape({2, channels, 28, 28});
  const torch::Tensor y = model.forward(x).flatten().to(torch::kDouble).contiguous();
  return std::vector<double>(y.data_ptr<double>(), y.data_ptr<double>() + y.numel());
}

std::vector<double> ParseDoubles(const std::string& text) {
  std::istringstream in(text);
  std::vector<double> v;
  for (double d; in >> d;) v.push_back(d);
  return v;
}

void ExpectClose(const std::vector<double>& expected, const std::vector<double>& actual,
                 const std::string& what) {
  ASSERT_EQ(expected.size(), actual.size()) << what;
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_NEAR(actual[i], expected[i], 1e-4 * (1 + std::fabs(expected[i]))) << what << " " << i;
  }
}

TEST_F(CheckpointTest, PyTorchReadsAndWritesTheFormat) {
  std::string tried;
  const std::string python = testing::FindPythonWith("torch", &tried);
  ASSERT_FALSE(python.empty())
      << "no Python interpreter that can 'import torch' (tried:" << tried
      << "); install Debian's python3-torch (apt-get install -y python3-torch) or set "
         "FEDMED_PYTHON to an interpreter with torch";

  const ModelSpec cnn_spec{"cnn", 1, 2, 28};
  const ModelSpec resnet_spec{"resnet18", 3, 3, 28};
  std::shared_ptr<Classifier> cnn = MakeModel(cnn_spec, 21);
  std::shared_ptr<Classifier> resnet = MakeModel(resnet_spec, 22);
  const std::map<std::string, ModelState> states = {{"cnn", ExportState(*cnn)},
                                                    {"resnet18", ExportState(*resnet)}};
  SaveCheckpoint(states.at("cnn"), Path("cnn.pt"));
  SaveCheckpoint(states.at("resnet18"), Path("resnet18.pt"));
  std::ofstream(Path("check.py")) << "import sys\nsys.path.insert(0, '" << testing::SourceDir()
                                  << "/tests/python')\n" << kPythonScript;

  int status = 0;
  const std::string output =
      testing::RunCommand(python + " -B " + Path("check.py") + " " + Path("cnn.pt") + " " +
                     Path("resnet18.pt") + " " + dir_.string() + " 2>&1",
                 &status);
  ASSERT_EQ(status, 0) << output;
  ASSERT_NE(output.find("\ndone"), std::string::npos) << output;

  // Every tensor, in order, with its dtype, shape and the SHA-256 of its float32 bytes.
  std::map<std::string, std::vector<std::string>> seen;
  std::map<std::string, std::vector<double>> logits;
  std::istringstream lines(output);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream fields(line);
    std::string kind, tag;
    fields >> kind >> tag;
    if (kind == "type") {
      std::string type;
      fields >> type;
      EXPECT_EQ(type, "dict") << tag;
    } else if (kind == "tensor") {
      std::string name, dtype, shape, digest;
      fields >> name >> dtype >> shape >> digest;
      seen[tag].push_back(name + " " + dtype + " " + shape + " " + digest);
    } else if (kind == "logits") {
      std::string rest;
      std::getline(fields, rest);
      logits[tag] = ParseDoubles(rest);
    }
  }
  for (const auto& [tag, state] : states) {
    std::vector<std::string> expected;
    for (const NamedTensor& t : state.tensors) {
      std::string shape;
      for (int64_t d : t.shape) shape += (shape.empty() ? "" : ",") + std::to_string(d);
      expected.push_back(t.name + " torch.float32 " + shape + " " +
                         Sha256Hex(std::string_view(reinterpret_cast<const char*>(t.values.data()),
                                                    t.values.size() * sizeof(float))));
    }
    EXPECT_EQ(seen[tag], expected) << tag;
  }
  // The documented PyTorch modules compute what the zoo's networks compute.
  ExpectClose(ProbeLogits(*cnn, 1), logits["cnn"], "cnn logits");
  ExpectClose(ProbeLogits(*resnet, 3), logits["resnet18"], "resnet18 logits");

  // A plain dict saved from Python loads and computes what it computed in Python.
  std::shared_ptr<Classifier> from_python = MakeModel(cnn_spec);
  ImportState(*from_python, LoadCheckpoint(Path("from_python.pt")));
  ExpectClose(logits["python_cnn"], ProbeLogits(*from_python, 1), "logits of Python's cnn");
  // model.state_dict() itself (an OrderedDict) is refused with a hint.
  try {
    LoadCheckpoint(Path("from_python_ordered.pt"));
    ADD_FAILURE() << "expected FormatError";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("dict(model.state_dict())"), std::string::npos)
        << e.what();
  }
}

// What LoadCheckpoint says of fuzz/fuzz_checkpoint's seed `name`, a checkpoint the fuzzer found
// to hurt LibTorch: its path and the FormatError's message (empty, with a test failure, when the
// seed is missing or loads). Any other exception propagates and fails the test.
struct Refusal {
  std::string path;
  std::string message;
};
Refusal RefusalOfSeed(const std::string& name) {
  Refusal r{testing::SourceDir() + "/fuzz/corpus/fuzz_checkpoint/" + name, ""};
  EXPECT_TRUE(std::filesystem::exists(r.path)) << r.path;
  try {
    LoadCheckpoint(r.path);
    ADD_FAILURE() << r.path << ": expected a FormatError";
  } catch (const FormatError& e) {
    r.message = e.what();
  }
  return r;
}

// Found by fuzz/fuzz_checkpoint (AddressSanitizer: heap-buffer-overflow in LibTorch's zip reader):
// a forged zip central directory made torch::pickle_load read past the file's bytes. The input is
// kept as a seed of the fuzzer; it must be refused as a FormatError naming the file.
TEST_F(CheckpointTest, AForgedZipDirectoryIsAFormatErrorNotAReadPastTheBuffer) {
  const Refusal r = RefusalOfSeed("regression-zip-read-past-buffer.pt");
  // Refused by the archive check (CheckDeclaredSizes) before LibTorch's reader, which is itself
  // bounded by BoundedReadAdapter.
  EXPECT_EQ(r.message.rfind("checkpoint '" + r.path + "'", 0), 0u) << r.message;
}

// Found by fuzz/fuzz_checkpoint: a checkpoint whose pickle carries a malformed type tag made
// LibTorch's type parser throw torch::jit::ErrorReport, which is no c10::Error and escaped
// LoadCheckpoint's contract (FormatError).
TEST_F(CheckpointTest, AMalformedTypeTagIsAFormatError) {
  const Refusal r = RefusalOfSeed("regression-unpickler-type-tag.pt");
  EXPECT_NE(r.message.find("checkpoint '" + r.path + "' cannot be unpickled"), std::string::npos)
      << r.message;
}

// Found by fuzz/fuzz_checkpoint (600 s run): a 1,063-byte checkpoint whose pickle declares a string
// of 1.5 GB, which LibTorch's unpickler reserved before reading. Refused from the declaration.
TEST_F(CheckpointTest, APickleDeclaringMoreBytesThanItHoldsIsRefusedBeforeLibTorchReadsIt) {
  const Refusal r = RefusalOfSeed("regression-pickle-length-bomb.pt");
  EXPECT_NE(r.message.find("checkpoint '" + r.path +
                           "': entry 'archive/data.pkl': the pickle declares a "),
            std::string::npos)
      << r.message;
  EXPECT_NE(r.message.find("but only"), std::string::npos) << r.message;
}

// Found by fuzz/fuzz_checkpoint (240 s run): a 1,071-byte checkpoint whose pickle memoises a value
// under index 976,000,000 (LONG_BINPUT), for which LibTorch's unpickler reserved a 31 GB memo
// table. Refused from the declaration.
TEST_F(CheckpointTest, APickleMemoIndexBeyondItsSizeIsRefusedBeforeLibTorchReadsIt) {
  const Refusal r = RefusalOfSeed("regression-pickle-memo-index-bomb.pt");
  EXPECT_NE(r.message.find("checkpoint '" + r.path +
                           "': entry 'archive/data.pkl': the pickle memoises value "),
            std::string::npos)
      << r.message;
}

// Found by fuzz/fuzz_checkpoint (the 30 s CI run of 2026-12-06): a 1,063-byte checkpoint whose
// pickle applies TUPLE2 to a stack holding one value; LibTorch's unpickler pops without checking
// and freed memory it never allocated (AddressSanitizer: bad-free). Refused before LibTorch reads it.
TEST_F(CheckpointTest, APickleThatPopsMoreThanItsStackHoldsIsRefusedBeforeLibTorchReadsIt) {
  const Refusal r = RefusalOfSeed("regression-pickle-stack-underflow.pt");
  EXPECT_NE(r.message.find("checkpoint '" + r.path +
                           "': entry 'archive/data.pkl': the pickle's opcode at byte 40 needs 2 "
                           "value(s) on a stack of 1 value(s)"),
            std::string::npos)
      << r.message;
}

}  // namespace
}  // namespace fedmed
