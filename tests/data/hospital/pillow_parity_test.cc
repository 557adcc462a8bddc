// Preprocessing against Pillow itself (Debian's python3-pil): PNG decoding, RGB -> gray,
// bilinear resize and equalisation of random images of random sizes must match Pillow 9.4's
// Image.open / convert("L") / resize(BILINEAR) / ImageOps.equalize bit for bit.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "common/data/hospital/image_folder.h"
#include "common/data/preprocess.h"
#include "tests/data/hospital/image_test_util.h"
#include "tests/test_util.h"

namespace fedmed {
namespace {

using testing::TempDir;

constexpr const char* kScript = R"(
import sys
from PIL import Image, ImageOps
for line in open(sys.argv[1]):
    src, size, channels, equalize, dst = line.split()
    im = Image.open(src)
    im.load()
    if channels == '1' and im.mode != 'L':
        im = im.convert('L')
    elif channels == '3' and im.mode != 'RGB':
        im = im.convert('RGB')
    if int(size) and im.size != (int(size), int(size)):
        im = im.resize((int(size), int(size)), Image.BILINEAR)
    if equalize == '1':
        im = ImageOps.equalize(im)
    open(dst, 'wb').write(im.tobytes())
)";

TEST(PillowParityTest, PreprocessingMatchesPillowBitForBit) {
  std::string tried;
  const std::string python = testing::FindPythonWith("PIL, numpy", &tried);
  ASSERT_FALSE(python.empty()) << "no Python interpreter that can 'import PIL, numpy' (tried:"
                               << tried << "); install Debian's python3-pil and python3-numpy";
  TempDir dir;
  std::mt19937 rng(2024);
  struct Case {
    std::string png, raw;
    PreprocessSpec spec;
  };
  std::vector<Case> cases;
  std::ofstream list(dir / "cases.txt");
  for (int t = 0; t < 120; ++t) {
    const int w = 1 + static_cast<int>(rng() % 200), h = 1 + static_cast<int>(rng() % 200);
    const int comp = rng() % 2 ? 3 : 1;
    std::vector<uint8_t> pixels(static_cast<size_t>(w) * h * comp);
    // Smooth gradients plus noise: realistic histograms for the equalisation.
    for (int y = 0; y < h; ++y) {
      for (int x = 0; x < w; ++x) {
        for (int c = 0; c < comp; ++c) {
          pixels[(static_cast<size_t>(y) * w + x) * comp + c] =
              static_cast<uint8_t>((x * 255 / w + y * 97 / h + c * 40 + rng() % 16) % 256);
        }
      }
    }
    Case k;
    k.png = dir / ("in" + std::to_string(t) + ".png");
    k.raw = dir / ("out" + std::to_string(t) + ".raw");
    image_test::WritePng8(k.png, w, h, comp, pixels);
    k.spec.image_size = t % 5 == 0 ? 0 : 8 + static_cast<int64_t>(rng() % 240);
    k.spec.channels = std::vector<int64_t>{0, 1, 3}[rng() % 3];
    k.spec.equalize = rng() % 2 == 0;
    list << k.png << " " << k.spec.image_size << " " << k.spec.channels << " "
         << (k.spec.equalize ? 1 : 0) << " " << k.raw << "\n";
    cases.push_back(k);
  }
  list.close();
  std::ofstream(dir / "pillow.py") << kScript;
  int status = 0;
  const std::string out =
      testing::RunCommand(python + " " + (dir / "pillow.py") + " " + (dir / "cases.txt") + " 2>&1",
                          &status);
  ASSERT_EQ(status, 0) << out;
  for (const Case& k : cases) {
    const DecodedImage ours = ApplyPreprocess(ReadImageFile(k.png), k.spec);
    const std::string theirs = testing::ReadFile(k.raw);
    ASSERT_EQ(ours.pixels.size(), theirs.size()) << k.png << " " << k.spec.Canonical();
    EXPECT_EQ(std::string(ours.pixels.begin(), ours.pixels.end()), theirs)
        << k.png << " " << k.spec.Canonical();
  }
}

}  // namespace
}  // namespace fedmed
