// LoadSiteSplit: one call for every [data] format, split folders, partitioning, preprocessing.
#include "common/data/hospital/site_images.h"

#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <vector>

#include "common/data/hospital/dicom.h"
#include "common/util/error.h"
#include "tests/data/hospital/image_test_util.h"
#include "tests/test_util.h"

namespace fedmed {
namespace {

using image_test::ImageAt;
using image_test::WritePng8;
using testing::TempDir;

TEST(LoadSiteSplitTest, ImageFolderWithSplitSubfolders) {
  TempDir dir;
  const std::string root = dir / "xray";
  // train has classes a, c; test has a, b: every split numbers a, b, c as 0, 1, 2.
  for (int i = 0; i < 40; ++i) {
    WritePng8(root + "/train/" + (i % 2 ? "c" : "a") + "/" + std::to_string(i) + ".png", 12, 10,
              1, std::vector<uint8_t>(120, static_cast<uint8_t>(i)));
  }
  WritePng8(root + "/test/a/0.png", 12, 10, 1, std::vector<uint8_t>(120, 1));
  WritePng8(root + "/test/b/0.png", 12, 10, 1, std::vector<uint8_t>(120, 2));
  SiteDataConfig data;
  data.path = root;
  data.format = "image_folder";
  data.preprocess.image_size = 8;
  data.decode_threads = 2;
  const ImageSet train = LoadSiteSplit(data, Split::kTrain);
  EXPECT_EQ(train.size(), 40);
  EXPECT_EQ(train.num_classes, 3);
  EXPECT_EQ(train.height, 8);
  EXPECT_EQ(train.labels[0], 0);
  EXPECT_EQ(train.labels[39], 2);
  const ImageSet test = LoadSiteSplit(data, Split::kTest);
  EXPECT_EQ(test.labels, (std::vector<int64_t>{0, 1}));
  EXPECT_EQ(test.num_classes, 3);
  const ImageSet val = LoadSiteSplit(data, Split::kVal);  // no val/ folder
  EXPECT_EQ(val.size(), 0);
  EXPECT_EQ(val.num_classes, 3);

  // Shard 2 of 2 (IID) of the training split; the shards are disjoint and cover it.
  data.partition = "iid";
  data.num_shards = 2;
  data.shard = 2;
  const ImageSet second = LoadSiteSplit(data, Split::kTrain);
  data.shard = 1;
  const ImageSet first = LoadSiteSplit(data, Split::kTrain);
  EXPECT_EQ(first.size() + second.size(), 40);
  std::vector<int> seen(40, 0);
  for (const ImageSet* s : {&first, &second}) {
    for (int64_t i = 0; i < s->size(); ++i) ++seen[ImageAt(*s, i)[0]];
  }
  EXPECT_EQ(seen, std::vector<int>(40, 1));
}

TEST(LoadSiteSplitTest, ImageFolderWithoutSplitsIsAllTraining) {
  TempDir dir;
  WritePng8(dir / "f/x/0.png", 9, 9, 3, std::vector<uint8_t>(243, 5));
  WritePng8(dir / "f/y/0.png", 9, 9, 3, std::vector<uint8_t>(243, 6));
  SiteDataConfig data;
  data.path = dir / "f";
  data.format = "image_folder";
  data.preprocess.normalization = "mean_std";
  data.preprocess.mean = {0.485, 0.456, 0.406};
  data.preprocess.std = {0.229, 0.224, 0.225};
  const ImageSet train = LoadSiteSplit(data, Split::kTrain);
  EXPECT_EQ(train.size(), 2);
  EXPECT_EQ(train.channels, 3);
  EXPECT_FLOAT_EQ(train.mean[1], 0.456f);
  EXPECT_FLOAT_EQ(train.std[2], 0.225f);
  EXPECT_EQ(LoadSiteSplit(data, Split::kTest).size(), 0);
}

TEST(LoadSiteSplitTest, CsvAndDicomManifestsAndRelativePaths) {
  TempDir dir;
  std::string csv = "path,label,split\n", dcm = "sop_instance_uid,label,split\n";
  for (int i = 0; i < 4; ++i) {
    const std::vector<uint8_t> v(100, static_cast<uint8_t>(i * 50));
    WritePng8(dir / ("site/png/" + std::to_string(i) + ".png"), 10, 10, 1, v);
    DicomWriteSpec s;
    s.rows = s.columns = 10;
    s.bits_allocated = s.bits_stored = 8;
    s.values.assign(v.begin(), v.end());
    s.window_center = 128;  // identity: x <= 0 -> 0, x > 255 -> 255, ((x - 127.5) / 255 + 0.5) * 255 = x
    s.window_width = 256;
    s.sop_instance_uid = "1.2.3.4." + std::to_string(i);
    std::filesystem::create_directories(dir / "site/dicom");
    WriteDicomFile(dir / ("site/dicom/" + std::to_string(i)), s);  // no extension
    const std::string split = i == 3 ? "test" : "train";
    csv += "png/" + std::to_string(i) + ".png," + std::to_string(i % 2) + "," + split + "\n";
    dcm += s.sop_instance_uid + "," + std::to_string(i % 2) + "," + split + "\n";
  }
  std::ofstream(dir / "site/images.csv") << csv;
  std::ofstream(dir / "site/dicom.csv") << dcm;

  SiteDataConfig data;
  data.format = "csv";
  data.path = "site/images.csv";  // relative: resolved under the data root
  const ImageSet png = LoadSiteSplit(data, Split::kTrain, dir.path().string());
  data.format = "dicom";
  data.path = "site/dicom.csv";
  data.dicom_dir = "site/dicom";
  const ImageSet dicom = LoadSiteSplit(data, Split::kTrain, dir.path().string());
  ASSERT_EQ(png.size(), 3);
  EXPECT_EQ(png.pixels, dicom.pixels);
  EXPECT_EQ(png.labels, dicom.labels);
  EXPECT_EQ(LoadSiteSplit(data, Split::kTest, dir.path().string()).size(), 1);

  // The window override replaces the files' window.
  data.window_center = 0;
  data.window_width = 1;  // a step: x > -0.5 -> 255
  const ImageSet step = LoadSiteSplit(data, Split::kTrain, dir.path().string());
  EXPECT_EQ(ImageAt(step, 0)[0], 255);

  data.path = "site/absent.csv";
  EXPECT_THROW(LoadSiteSplit(data, Split::kTrain, dir.path().string()), DataError);
  data.path = "site/dicom.csv";
  data.format = "nifti";
  EXPECT_THROW(LoadSiteSplit(data, Split::kTrain, dir.path().string()), ConfigError);
}

}  // namespace
}  // namespace fedmed
