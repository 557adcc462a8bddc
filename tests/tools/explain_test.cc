// fedmed-explain (issue 15): Grad-CAM maps of a cnn trained here on PneumoniaMNIST (one epoch on
// 2048 training images, the project's TrainLocal) against PyTorch's (tests/tools/
// explain_gradcam.py: the network rebuilt from zoo.h, the state dict loaded with torch.load,
// forward and backward hooks on conv2), the same for a resnet18 with random weights at layer4;
// the sanity check of Adebayo et al. (NeurIPS 2018): randomised weights change the maps; the
// output files; refusals.
#include <gtest/gtest.h>
#include <stb_image_write.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <numeric>
#include <sstream>

#include "common/data/medmnist.h"
#include "common/data/npy.h"
#include "common/model/checkpoint.h"
#include "common/model/local_training.h"
#include "common/util/data_path.h"
#include "tests/test_util.h"

namespace fedmed {
namespace {

constexpr char kPneumonia[] = "medmnist/pneumoniamnist.npz";

class ExplainTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing::TempDir("fedmed-explain-test");
    npz_ = ResolveDataPath(kPneumonia);
    const ModelSpec cnn{"cnn", 1, 2, 28};
    ImageSet train = LoadMedMnistSplit(npz_, Split::kTrain);
    std::vector<int64_t> first(2048);
    std::iota(first.begin(), first.end(), 0);
    TrainSettings settings;
    settings.local_epochs = 1;
    settings.optimizer = "adam";
    settings.learning_rate = 1e-3;
    ModelState model = InitialModelState(cnn, 0);
    const TrainResult trained = TrainLocal(cnn, model, train.Subset(first), settings);
    for (size_t t = 0; t < model.tensors.size(); ++t) {  // trained = global + delta
      std::vector<float>& w = model.tensors[t].values;
      for (size_t j = 0; j < w.size(); ++j) w[j] += trained.delta.tensors[t].values[j];
    }
    SaveCheckpoint(model, Path("cnn.pt"));
    SaveCheckpoint(InitialModelState(cnn, 12345), Path("cnn-random.pt"));
    SaveCheckpoint(InitialModelState({"resnet18", 1, 2, 28}, 3), Path("resnet18.pt"));
    WriteConfig("cnn");
    WriteConfig("resnet18");
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }

  static std::string Path(const std::string& name) { return *dir_ / name; }

  // A minimal coordinator.toml for `model` whose held-out set is PneumoniaMNIST.
  static void WriteConfig(const std::string& model) {
    std::ofstream(Path(model + ".toml"))
        << "[tls]\nca_cert = \"ca.pem\"\ncert = \"c.pem\"\nkey = \"c.key\"\n"
           "allowed_sites = [\"site-1\", \"site-2\"]\n[model]\nname = \""
        << model << "\"\n[evaluation]\ndata = \"" << npz_ << "\"\n";
  }

  // Runs fedmed-explain with `args`; returns its output, *status its exit status.
  static std::string Explain(const std::string& args, int* status) {
    return testing::RunCommand(testing::BinDir() + "/fedmed-explain " + args + " 2>&1", status);
  }

  static std::vector<float> ReadMap(const std::string& out, int i) {
    char stem[16];
    std::snprintf(stem, sizeof(stem), "%05d", i);
    const std::string path = out + "/gradcam/" + stem + ".npy";
    const NpyArray a = ParseNpy(testing::ReadFile(path), path);
    EXPECT_EQ(a.dtype, "<f4");
    std::vector<float> v(a.data.size() / 4);
    std::memcpy(v.data(), a.data.data(), v.size() * 4);
    return v;
  }

  static inline testing::TempDir* dir_ = nullptr;
  static inline std::string npz_;
};

// Ranks with ties averaged (as scipy.stats.rankdata).
std::vector<double> Ranks(const std::vector<float>& v) {
  std::vector<size_t> order(v.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return v[a] < v[b]; });
  std::vector<double> rank(v.size());
  for (size_t i = 0; i < order.size();) {
    size_t j = i;
    while (j + 1 < order.size() && v[order[j + 1]] == v[order[i]]) ++j;
    for (size_t k = i; k <= j; ++k) rank[order[k]] = (static_cast<double>(i + j) / 2.0) + 1;
    i = j + 1;
  }
  return rank;
}

// Spearman's rank correlation; 0 when either map is constant (no ranking to correlate).
double Spearman(const std::vector<float>& a, const std::vector<float>& b) {
  const std::vector<double> ra = Ranks(a), rb = Ranks(b);
  const double n = static_cast<double>(a.size());
  const double ma = std::accumulate(ra.begin(), ra.end(), 0.0) / n;
  const double mb = std::accumulate(rb.begin(), rb.end(), 0.0) / n;
  double sab = 0, saa = 0, sbb = 0;
  for (size_t i = 0; i < ra.size(); ++i) {
    sab += (ra[i] - ma) * (rb[i] - mb);
    saa += (ra[i] - ma) * (ra[i] - ma);
    sbb += (rb[i] - mb) * (rb[i] - mb);
  }
  return saa > 0 && sbb > 0 ? sab / std::sqrt(saa * sbb) : 0.0;
}

// Checks the Python reference's report: every map within 1e-4, probabilities within 1e-5.
void ExpectMatchesPyTorch(const std::string& report, int images) {
  std::istringstream in(report);
  std::string word;
  int maps = 0;
  double worst = 0;
  while (in >> word) {
    if (word == "map") {
      int i = 0;
      double diff = 0;
      in >> i >> diff;
      EXPECT_LE(diff, 1e-4) << "map " << i;
      worst = std::max(worst, diff);
      ++maps;
    } else if (word == "prob") {
      double diff = 1;
      in >> diff;
      EXPECT_LE(diff, 1e-5);
    } else if (word == "predicted_mismatches") {
      int m = -1;
      in >> m;
      EXPECT_EQ(m, 0);
    }
  }
  EXPECT_EQ(maps, images) << report;
  std::cout << "[ explain  ] max abs diff over " << maps << " maps: " << worst << "\n";
}

TEST_F(ExplainTest, CnnMapsMatchPyTorchGradCamAtConv2) {
  const std::string python = testing::FindPythonWith("torch, numpy");
  ASSERT_FALSE(python.empty()) << "no python3 with torch and numpy (apt-get install python3-torch)";
  const std::string out = Path("cnn-out");
  int status = 0;
  std::string log = Explain("--config " + Path("cnn.toml") + " --weights " + Path("cnn.pt") +
                                " --limit 16 --out " + out, &status);
  ASSERT_EQ(status, 0) << log;
  EXPECT_NE(log.find("layer conv2"), std::string::npos) << log;  // the default: last Conv2d
  const std::string script = testing::SourceDir() + "/tests/tools/explain_gradcam.py";
  log = testing::RunCommand(python + " " + script + " cnn " + Path("cnn.pt") + " " + npz_ +
                                " 16 conv2 " + out + " 2>&1",
                            &status);
  ASSERT_EQ(status, 0) << log;
  ExpectMatchesPyTorch(log, 16);

  // The outputs: 16 lines of predictions, a PNG at least 224 px wide per image, the gallery.
  const std::string csv = testing::ReadFile(out + "/predictions.csv");
  EXPECT_EQ(csv.rfind("index,path,label,predicted,p_0,p_1\n", 0), 0u) << csv;
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 17);
  const std::string png = testing::ReadFile(out + "/gradcam/00015.png");
  ASSERT_GT(png.size(), 24u);
  EXPECT_EQ(png.substr(1, 3), "PNG");
  const uint32_t width = (uint8_t(png[16]) << 24) | (uint8_t(png[17]) << 16) |
                         (uint8_t(png[18]) << 8) | uint8_t(png[19]);
  EXPECT_GE(width, 224u);
  const std::string html = testing::ReadFile(out + "/index.html");
  size_t cards = 0;
  for (size_t at = html.find("class=\"card"); at != std::string::npos;
       at = html.find("class=\"card", at + 1)) {
    ++cards;
  }
  EXPECT_EQ(cards, 16u);
}

TEST_F(ExplainTest, ResNet18MapsMatchPyTorchGradCamAtLayer4) {
  const std::string python = testing::FindPythonWith("torch, numpy");
  ASSERT_FALSE(python.empty()) << "no python3 with torch and numpy (apt-get install python3-torch)";
  const std::string out = Path("resnet-out");
  int status = 0;
  std::string log = Explain("--config " + Path("resnet18.toml") + " --weights " +
                                Path("resnet18.pt") + " --layer layer4 --limit 4 --out " + out,
                            &status);
  ASSERT_EQ(status, 0) << log;
  const std::string script = testing::SourceDir() + "/tests/tools/explain_gradcam.py";
  log = testing::RunCommand(python + " " + script + " resnet18 " + Path("resnet18.pt") + " " +
                                npz_ + " 4 layer4 " + out + " 2>&1",
                            &status);
  ASSERT_EQ(status, 0) << log;
  ExpectMatchesPyTorch(log, 4);
}

// Adebayo et al., "Sanity Checks for Saliency Maps" (NeurIPS 2018), model randomisation: maps
// that depend on what the model learned change when its weights are re-drawn. The pneumonia
// class's map of each of 16 test images, trained against random weights.
TEST_F(ExplainTest, RandomisedWeightsChangeTheMaps) {
  int status = 0;
  const std::string trained = Path("sanity-trained"), random = Path("sanity-random");
  std::string log = Explain("--config " + Path("cnn.toml") + " --weights " + Path("cnn.pt") +
                                " --class 1 --limit 16 --out " + trained, &status);
  ASSERT_EQ(status, 0) << log;
  log = Explain("--config " + Path("cnn.toml") + " --weights " + Path("cnn-random.pt") +
                    " --class 1 --limit 16 --out " + random, &status);
  ASSERT_EQ(status, 0) << log;
  double sum = 0;
  for (int i = 0; i < 16; ++i) sum += Spearman(ReadMap(trained, i), ReadMap(random, i));
  const double mean = sum / 16;
  std::cout << "[ explain  ] mean Spearman rank correlation, trained vs random weights: " << mean
            << "\n";
  EXPECT_LT(mean, 0.5);
  // The same maps twice correlate fully (the check can tell).
  EXPECT_NEAR(Spearman(ReadMap(trained, 0), ReadMap(trained, 0)), 1.0, 1e-12);
}

// A TorchScript nn.Sequential: its children are reached (the default layer is its last Conv2d,
// "2"), and the maps match PyTorch's; a script with a forward of its own is refused, saying why.
TEST_F(ExplainTest, TorchScriptSequentialIsExplainedOtherScriptsAreRefused) {
  const std::string python = testing::FindPythonWith("torch, numpy");
  ASSERT_FALSE(python.empty()) << "no python3 with torch and numpy (apt-get install python3-torch)";
  const std::string script = testing::SourceDir() + "/tests/tools/explain_gradcam.py";
  int status = 0;
  std::string log = testing::RunCommand(
      python + " " + script + " make-scripts " + dir_->path().string() + " 2>&1", &status);
  ASSERT_EQ(status, 0) << log;
  for (const std::string name : {"seq", "custom"}) {
    std::ofstream(Path(name + ".toml"))
        << "[tls]\nca_cert = \"ca.pem\"\ncert = \"c.pem\"\nkey = \"c.key\"\n"
           "allowed_sites = [\"site-1\", \"site-2\"]\n[model]\nname = \"torchscript\"\n"
           "torchscript_path = \""
        << Path(name + ".pt") << "\"\n[evaluation]\ndata = \"" << npz_ << "\"\n";
  }
  const std::string out = Path("seq-out");
  log = Explain("--config " + Path("seq.toml") + " --weights " + Path("seq.pt") +
                    " --limit 4 --out " + out, &status);
  ASSERT_EQ(status, 0) << log;
  EXPECT_NE(log.find("layer 2,"), std::string::npos) << log;
  log = testing::RunCommand(python + " " + script + " seq " + Path("seq.pt") + " " + npz_ +
                                " 4 2 " + out + " 2>&1",
                            &status);
  ASSERT_EQ(status, 0) << log;
  ExpectMatchesPyTorch(log, 4);

  log = Explain("--config " + Path("custom.toml") + " --weights " + Path("custom.pt") +
                    " --limit 4 --out " + Path("custom-out"), &status);
  EXPECT_NE(status, 0);
  EXPECT_NE(log.find("custom.pt"), std::string::npos) << log;
  EXPECT_NE(log.find("cannot hook the submodules of a TorchScript module"), std::string::npos)
      << log;
}

// The same images as PNG files, in an image folder and in a CSV manifest, go through the sites'
// loaders (LoadSiteSplit) and give the .npz file's probabilities and maps.
TEST_F(ExplainTest, ImageFolderAndCsvManifestGiveTheNpzResults) {
  constexpr int kImages = 6;
  const ImageSet test = LoadMedMnistSplit(npz_, Split::kTest);
  const std::string folder = Path("folder");
  std::ofstream manifest(Path("manifest.csv"));
  manifest << "path,label,split\n";
  std::vector<int> folder_order;  // npz index of each image in the folder's order
  for (int label = 0; label < 2; ++label) {
    for (int i = 0; i < kImages; ++i) {
      if (test.labels[static_cast<size_t>(i)] != label) continue;
      const std::string dir = folder + "/test/" + std::to_string(label);
      std::filesystem::create_directories(dir);
      const std::string png = dir + "/img" + std::to_string(i) + ".png";
      ASSERT_NE(stbi_write_png(png.c_str(), 28, 28, 1, test.pixels.data() + i * 28 * 28, 28), 0);
      folder_order.push_back(i);
    }
  }
  for (int i = 0; i < kImages; ++i) {
    const int label = static_cast<int>(test.labels[static_cast<size_t>(i)]);
    manifest << folder << "/test/" << label << "/img" << i << ".png," << label << ",test\n";
  }
  manifest.close();
  int status = 0;
  const std::string common = "--config " + Path("cnn.toml") + " --weights " + Path("cnn.pt");
  std::string log = Explain(common + " --limit 6 --out " + Path("fmt-npz"), &status);
  ASSERT_EQ(status, 0) << log;
  log = Explain(common + " --data " + folder + " --out " + Path("fmt-folder"), &status);
  ASSERT_EQ(status, 0) << log;
  log = Explain(common + " --data " + Path("manifest.csv") + " --out " + Path("fmt-csv"), &status);
  ASSERT_EQ(status, 0) << log;
  // predictions.csv names the files, in the loaders' order.
  const std::string csv_rows = testing::ReadFile(Path("fmt-csv") + "/predictions.csv");
  const std::string folder_rows = testing::ReadFile(Path("fmt-folder") + "/predictions.csv");
  for (int j = 0; j < kImages; ++j) {
    const int label = static_cast<int>(test.labels[static_cast<size_t>(j)]);
    const std::string file = "/test/" + std::to_string(label) + "/img" + std::to_string(j) + ".png";
    EXPECT_NE(csv_rows.find("\n" + std::to_string(j) + "," + folder + file + ","),
              std::string::npos) << csv_rows;
    const int k = static_cast<int>(
        std::find(folder_order.begin(), folder_order.end(), j) - folder_order.begin());
    EXPECT_NE(folder_rows.find("\n" + std::to_string(k) + "," + folder + file + ","),
              std::string::npos) << folder_rows;
  }
  for (int j = 0; j < kImages; ++j) {
    const std::vector<float> npz_map = ReadMap(Path("fmt-npz"), j);
    EXPECT_EQ(ReadMap(Path("fmt-csv"), j), npz_map) << "manifest image " << j;
    EXPECT_EQ(ReadMap(Path("fmt-folder"), static_cast<int>(
                  std::find(folder_order.begin(), folder_order.end(), j) - folder_order.begin())),
              npz_map)
        << "folder image of npz index " << j;
  }
}

TEST_F(ExplainTest, RefusesLayersWithoutAFeatureMapAndUnknownLayers) {
  int status = 0;
  const std::string base = "--config " + Path("cnn.toml") + " --weights " + Path("cnn.pt") +
                           " --limit 2 --out " + Path("refused");
  std::string log = Explain(base + " --layer fc1", &status);
  EXPECT_NE(status, 0);
  EXPECT_NE(log.find("--layer \"fc1\""), std::string::npos) << log;
  EXPECT_NE(log.find("spatial feature map"), std::string::npos) << log;
  log = Explain(base + " --layer layer4", &status);
  EXPECT_NE(status, 0);
  EXPECT_NE(log.find("conv1, gn1, conv2, gn2, fc1, fc2"), std::string::npos) << log;
  log = Explain(base + " --class 2", &status);
  EXPECT_NE(status, 0);
  EXPECT_NE(log.find("--class 2"), std::string::npos) << log;
  // Weights of another network: named by LoadInitialWeights.
  log = Explain("--config " + Path("cnn.toml") + " --weights " + Path("resnet18.pt") +
                    " --limit 2 --out " + Path("refused"), &status);
  EXPECT_NE(status, 0);
  EXPECT_NE(log.find("resnet18.pt"), std::string::npos) << log;
  log = Explain("--config " + Path("cnn.toml") + " --out " + Path("refused"), &status);
  EXPECT_NE(status, 0);
  EXPECT_NE(log.find("--weights"), std::string::npos) << log;
}

}  // namespace
}  // namespace fedmed
