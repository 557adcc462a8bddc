// The PneumoniaMNIST test split (624 28x28 grayscale images) converted the ways hospitals store
// images: a PNG ImageFolder (written with stb_image_write), a CSV manifest of those PNGs, and
// DICOM files written with DCMTK (16-bit allocated, 12 stored, Rescale Slope 2, Intercept -1024,
// the window in each file; a quarter MONOCHROME1; a third RLE- and a third JPEG-LS-compressed),
// labelled by a manifest keyed by SOPInstanceUID. Each is loaded through LoadSiteSplit, as a site
// does, and must give exactly the .npz reader's pixels and labels (after matching images by file
// name / UID: the loaders' orders differ), and a model trained on PneumoniaMNIST training images
// must score exactly the same metrics on all four. Skipped only when the .npz file is absent.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "common/data/hospital/dicom.h"
#include "common/data/hospital/site_images.h"
#include "common/data/medmnist.h"
#include "common/model/evaluation.h"
#include "common/model/local_training.h"
#include "common/util/data_path.h"
#include "common/util/error.h"
#include "tests/data/hospital/image_test_util.h"
#include "tests/test_util.h"

namespace fedmed {
namespace {

using image_test::ImageAt;
using image_test::WindowedDicomSpec;
using image_test::WritePng8;
using testing::TempDir;

std::string Name(int64_t i) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "img_%05lld", static_cast<long long>(i));
  return buffer;
}

std::string Uid(int64_t i) { return "1.2.826.0.1.3680043.10.543." + std::to_string(i); }

void ExpectSameMetrics(const ClassificationMetrics& a, const ClassificationMetrics& b,
                       const std::string& what) {
  EXPECT_EQ(a.num_samples, b.num_samples) << what;
  EXPECT_EQ(a.loss, b.loss) << what;
  EXPECT_EQ(a.accuracy, b.accuracy) << what;
  EXPECT_EQ(a.balanced_accuracy, b.balanced_accuracy) << what;
  EXPECT_EQ(a.auc, b.auc) << what;
  EXPECT_EQ(a.f1, b.f1) << what;
  EXPECT_EQ(a.confusion, b.confusion) << what;
}

class HospitalFormatsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    try {
      npz_path_ = new std::string(ResolveDataPath("medmnist/pneumoniamnist.npz"));
    } catch (const DataError& e) {
      skip_reason_ = new std::string(e.what());
    }
  }
  static void TearDownTestSuite() {
    delete npz_path_;
    delete skip_reason_;
    npz_path_ = skip_reason_ = nullptr;
  }
  void SetUp() override {
    if (npz_path_ == nullptr) GTEST_SKIP() << "PneumoniaMNIST not found: " << *skip_reason_;
  }
  static std::string* npz_path_;
  static std::string* skip_reason_;
};
std::string* HospitalFormatsTest::npz_path_ = nullptr;
std::string* HospitalFormatsTest::skip_reason_ = nullptr;

TEST_F(HospitalFormatsTest, FolderCsvAndDicomGiveTheNpzPixelsAndMetrics) {
  const ImageSet npz = LoadMedMnistSplit(*npz_path_, Split::kTest);
  ASSERT_EQ(npz.size(), 624);
  ASSERT_EQ(npz.height, 28);
  ASSERT_EQ(npz.channels, 1);
  ASSERT_EQ(npz.num_classes, 2);
  const int64_t n = npz.size();

  // --- write the three conversions ---
  TempDir dir;
  const auto write_start = std::chrono::steady_clock::now();
  const std::string classes[2] = {"0_normal", "1_pneumonia"};
  std::mt19937 rng(2025);
  std::vector<int64_t> manifest_order(n);
  std::iota(manifest_order.begin(), manifest_order.end(), 0);
  std::shuffle(manifest_order.begin(), manifest_order.end(), rng);
  std::string csv = "path,label,split\n";
  std::string dicom_csv = "sop_instance_uid,label,split\n";
  std::filesystem::create_directories(dir / "dicom/files");
  for (int64_t i = 0; i < n; ++i) {
    const std::vector<uint8_t> v = ImageAt(npz, i);
    WritePng8(dir / ("folder/test/" + classes[npz.labels[i]] + "/" + Name(i) + ".png"), 28, 28, 1,
              v);
    DicomWriteSpec s = WindowedDicomSpec(v, 28, 28, /*monochrome1=*/i % 4 == 3);
    s.sop_instance_uid = Uid(i);
    s.transfer_syntax = i % 3 == 0 ? "explicit_little" : i % 3 == 1 ? "rle" : "jpeg_ls_lossless";
    WriteDicomFile(dir / ("dicom/files/" + Name(i) + ".dcm"), s);
  }
  for (const int64_t i : manifest_order) {
    csv += "../folder/test/" + classes[npz.labels[i]] + "/" + Name(i) + ".png," +
           std::to_string(npz.labels[i]) + ",test\n";
    dicom_csv += Uid(i) + "," + std::to_string(npz.labels[i]) + ",test\n";
  }
  // Training lines pointing elsewhere: filtered out by the split.
  csv += "missing.png,0,train\n";
  dicom_csv += "9.9.9,1,train\n";
  std::filesystem::create_directories(dir / "csv");
  std::ofstream(dir / "csv/manifest.csv") << csv;
  std::ofstream(dir / "dicom/manifest.csv") << dicom_csv;
  const double write_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - write_start).count();

  // --- load each as a site does ---
  SiteDataConfig folder_config, csv_config, dicom_config;
  folder_config.format = "image_folder";
  folder_config.path = dir / "folder";
  folder_config.max_bad_fraction = 0;
  csv_config.format = "csv";
  csv_config.path = dir / "csv/manifest.csv";
  csv_config.max_bad_fraction = 0;
  dicom_config.format = "dicom";
  dicom_config.path = dir / "dicom/manifest.csv";
  dicom_config.dicom_dir = dir / "dicom/files";
  dicom_config.max_bad_fraction = 0;
  const auto load_start = std::chrono::steady_clock::now();
  LoadReport folder_report, csv_report, dicom_report;
  const ImageSet folder = LoadSiteSplit(folder_config, Split::kTest, "", &folder_report);
  const ImageSet manifest = LoadSiteSplit(csv_config, Split::kTest, "", &csv_report);
  const ImageSet dicom = LoadSiteSplit(dicom_config, Split::kTest, "", &dicom_report);
  const double load_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - load_start).count();
  std::printf("wrote 624 PNG + 624 DICOM files in %.2f s; loaded the three sets in %.2f s\n",
              write_seconds, load_seconds);
  EXPECT_TRUE(folder_report.skipped.empty());
  EXPECT_TRUE(csv_report.skipped.empty());
  EXPECT_TRUE(dicom_report.skipped.empty());
  EXPECT_EQ(folder_report.class_names, (std::vector<std::string>{"0_normal", "1_pneumonia"}));

  // The folder is in class order, then file-name order (= npz index order within a class); the
  // manifests are in their lines' order.
  std::vector<int64_t> folder_order;
  for (int64_t label = 0; label < 2; ++label) {
    for (int64_t i = 0; i < n; ++i) {
      if (npz.labels[i] == label) folder_order.push_back(i);
    }
  }
  const std::pair<const ImageSet*, const std::vector<int64_t>*> loaded[] = {
      {&folder, &folder_order}, {&manifest, &manifest_order}, {&dicom, &manifest_order}};
  const char* names[] = {"image folder", "CSV manifest", "DICOM manifest"};
  for (int k = 0; k < 3; ++k) {
    const ImageSet& set = *loaded[k].first;
    const ImageSet expected = npz.Subset(*loaded[k].second);
    ASSERT_EQ(set.size(), n) << names[k];
    EXPECT_EQ(set.height, 28) << names[k];
    EXPECT_EQ(set.width, 28) << names[k];
    EXPECT_EQ(set.channels, 1) << names[k];
    EXPECT_EQ(set.num_classes, 2) << names[k];
    EXPECT_EQ(set.mean, npz.mean) << names[k];
    EXPECT_EQ(set.std, npz.std) << names[k];
    EXPECT_EQ(set.labels, expected.labels) << names[k];
    EXPECT_TRUE(set.pixels == expected.pixels) << names[k] << ": pixels differ";
  }

  // --- the same trained model scores the same on each ---
  SetComputeThreads(1);
  const ModelSpec spec{"cnn", 1, 2, 28};
  std::vector<int64_t> first(400);
  std::iota(first.begin(), first.end(), 0);
  const ImageSet train = LoadMedMnistSplit(*npz_path_, Split::kTrain).Subset(first);
  TrainSettings settings;
  settings.local_epochs = 3;
  settings.batch_size = 32;
  settings.learning_rate = 0.01;
  settings.seed = 7;
  const ModelState initial = InitialModelState(spec, 1);
  const TrainResult trained = TrainLocal(spec, initial, train, settings);
  ModelState model = initial;
  for (size_t t = 0; t < model.tensors.size(); ++t) {
    for (size_t j = 0; j < model.tensors[t].values.size(); ++j) {
      model.tensors[t].values[j] += trained.delta.tensors[t].values[j];
    }
  }
  const ClassificationMetrics reference = EvaluateModel(spec, model, npz, 128);
  std::printf("model trained on 400 images x 3 epochs: test accuracy %.4f, AUC %.4f, loss %.4f\n",
              reference.accuracy, reference.auc, reference.loss);
  EXPECT_GT(reference.auc, 0.8);  // it learned something: the comparison is not vacuous
  for (int k = 0; k < 3; ++k) {
    // In the .npz order the inputs are identical tensors: identical metrics, bit for bit.
    std::vector<int64_t> back(n);
    for (int64_t j = 0; j < n; ++j) back[(*loaded[k].second)[j]] = j;
    ExpectSameMetrics(EvaluateModel(spec, model, loaded[k].first->Subset(back), 128), reference,
                      names[k]);
    // In the loader's own order: the same up to the order of floating-point sums.
    const ClassificationMetrics own = EvaluateModel(spec, model, *loaded[k].first, 128);
    EXPECT_EQ(own.accuracy, reference.accuracy) << names[k];
    EXPECT_EQ(own.confusion, reference.confusion) << names[k];
    EXPECT_NEAR(own.auc, reference.auc, 1e-12) << names[k];
    EXPECT_NEAR(own.loss, reference.loss, 1e-6) << names[k];
  }
}

TEST_F(HospitalFormatsTest, PreprocessedFolderMatchesPreprocessedNpz) {
  // The same preprocessing (resize to 32, gray -> RGB, equalisation, ImageNet normalisation)
  // applied by LoadSiteSplit to the .npz and to a PNG folder of its first 64 test images.
  ImageSet npz = LoadMedMnistSplit(*npz_path_, Split::kTest);
  std::vector<int64_t> first(64);
  std::iota(first.begin(), first.end(), 0);
  const ImageSet small = npz.Subset(first);
  TempDir dir;
  for (int64_t i = 0; i < small.size(); ++i) {
    WritePng8(dir / ("f/" + std::to_string(small.labels[i]) + "/" + Name(i) + ".png"), 28, 28, 1,
              ImageAt(small, i));
  }
  SiteDataConfig config;
  config.format = "image_folder";
  config.path = dir / "f";
  config.preprocess.image_size = 32;
  config.preprocess.channels = 3;
  config.preprocess.equalize = true;
  config.preprocess.normalization = "mean_std";
  config.preprocess.mean = {0.485, 0.456, 0.406};
  config.preprocess.std = {0.229, 0.224, 0.225};
  const ImageSet folder = LoadSiteSplit(config, Split::kTrain);
  SiteDataConfig npz_config = config;
  npz_config.format = "medmnist";
  npz_config.path = *npz_path_;
  const ImageSet all = LoadSiteSplit(npz_config, Split::kTest);
  const ImageSet expected = all.Subset(first);
  ASSERT_EQ(folder.size(), 64);
  EXPECT_EQ(folder.height, 32);
  EXPECT_EQ(folder.channels, 3);
  std::vector<int64_t> order;
  for (int64_t label = 0; label < 2; ++label) {
    for (int64_t i = 0; i < 64; ++i) {
      if (small.labels[i] == label) order.push_back(i);
    }
  }
  const ImageSet reordered = expected.Subset(order);
  EXPECT_TRUE(folder.pixels == reordered.pixels);
  EXPECT_EQ(folder.labels, reordered.labels);
  EXPECT_EQ(folder.mean, reordered.mean);
  EXPECT_FLOAT_EQ(folder.mean[1], 0.456f);
  // And the default spec leaves the .npz exactly as LoadMedMnistSplit reads it.
  SiteDataConfig plain;
  plain.path = *npz_path_;
  const ImageSet unchanged = LoadSiteSplit(plain, Split::kTest);
  EXPECT_TRUE(unchanged.pixels == npz.pixels);
  EXPECT_EQ(unchanged.mean, npz.mean);
}

}  // namespace
}  // namespace fedmed
