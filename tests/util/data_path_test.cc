// The data root (common/util/data_path.h): an explicit root (--data, FEDMED_DATA) is obeyed, and a
// file missing under it is an error naming the path looked for and where the root came from;
// the ../shared/data fallback applies only when neither is given.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

#include "common/util/data_path.h"
#include "common/util/error.h"
#include "tests/test_util.h"

namespace fedmed {
namespace {

namespace fs = std::filesystem;

// Sets or unsets FEDMED_DATA for the test's duration, and restores it.
class ScopedDataEnv {
 public:
  explicit ScopedDataEnv(const char* value) {
    if (const char* old = std::getenv("FEDMED_DATA")) old_ = old;
    if (value) setenv("FEDMED_DATA", value, 1); else unsetenv("FEDMED_DATA");
  }
  ~ScopedDataEnv() {
    if (old_) setenv("FEDMED_DATA", old_->c_str(), 1); else unsetenv("FEDMED_DATA");
  }

 private:
  std::optional<std::string> old_;
};

// Changes the current directory for the test's duration.
class ScopedCwd {
 public:
  explicit ScopedCwd(const fs::path& dir) : old_(fs::current_path()) { fs::current_path(dir); }
  ~ScopedCwd() { fs::current_path(old_); }

 private:
  fs::path old_;
};

std::string MessageOf(const std::string& path, const std::string& root) {
  try {
    ResolveDataPath(path, root);
  } catch (const DataError& e) {
    return e.what();
  }
  return "(no error)";
}

class DataPathTest : public ::testing::Test {
 protected:
  DataPathTest() : dir_("fedmed-data-path") {
    // <dir>/work is the current directory; <dir>/shared/data holds the fallback's file, as
    // ../shared/data does beside a checkout.
    fs::create_directories(dir_.path() / "work");
    fs::create_directories(dir_.path() / "shared" / "data" / "medmnist");
    std::ofstream(dir_.path() / "shared" / "data" / "medmnist" / "x.npz") << "x";
    fs::create_directories(dir_.path() / "mine" / "medmnist");
    std::ofstream(dir_.path() / "mine" / "medmnist" / "y.npz") << "y";
  }
  ::fedmed::testing::TempDir dir_;
};

TEST_F(DataPathTest, AnExplicitRootThatLacksTheFileIsAnErrorNamingPathAndSource) {
  ScopedCwd cwd(dir_.path() / "work");
  ScopedDataEnv env(nullptr);
  const std::string mine = (dir_.path() / "mine").string();
  // x.npz exists under the fallback ../shared/data, but --data says where to look.
  const std::string m = MessageOf("medmnist/x.npz", mine);
  EXPECT_NE(m.find(mine + "/medmnist/x.npz does not exist"), std::string::npos) << m;
  EXPECT_NE(m.find("from --data"), std::string::npos) << m;
  // A root that is not a directory at all (fedmed-simulate --data /nonexistent).
  const std::string gone = MessageOf("medmnist/x.npz", "/nonexistent");
  EXPECT_NE(gone.find("data root /nonexistent from --data is not a directory"), std::string::npos)
      << gone;
  EXPECT_NE(gone.find("/nonexistent/medmnist/x.npz"), std::string::npos) << gone;
  // The file that is there.
  EXPECT_EQ(ResolveDataPath("medmnist/y.npz", mine), mine + "/medmnist/y.npz");
  EXPECT_EQ(DescribeDataRoot(mine), "data root: " + mine + " (from --data)");
}

TEST_F(DataPathTest, FedmedDataIsObeyedAndNamed) {
  ScopedCwd cwd(dir_.path() / "work");
  const std::string mine = (dir_.path() / "mine").string();
  ScopedDataEnv env(mine.c_str());
  const std::string m = MessageOf("medmnist/x.npz", "");
  EXPECT_NE(m.find(mine + "/medmnist/x.npz does not exist"), std::string::npos) << m;
  EXPECT_NE(m.find("from FEDMED_DATA"), std::string::npos) << m;
  EXPECT_EQ(ResolveDataPath("medmnist/y.npz"), mine + "/medmnist/y.npz");
  // --data wins over FEDMED_DATA.
  EXPECT_NE(MessageOf("medmnist/y.npz", "/tmp").find("from --data"), std::string::npos);
  EXPECT_EQ(DataRootSource(""), "FEDMED_DATA");
}

TEST_F(DataPathTest, TheFallbackAppliesOnlyWhenNeitherIsGiven) {
  ScopedCwd cwd(dir_.path() / "work");
  ScopedDataEnv env(nullptr);
  EXPECT_EQ(ResolveDataPath("medmnist/x.npz"),
            (dir_.path() / "work" / ".." / "shared" / "data" / "medmnist" / "x.npz")
                .lexically_normal()
                .string());
  EXPECT_EQ(DataRootSource(""), "");
  EXPECT_NE(DescribeDataRoot("").find("none given"), std::string::npos);
  const std::string m = MessageOf("medmnist/none.npz", "");
  EXPECT_NE(m.find("../shared/data/medmnist/none.npz"), std::string::npos) << m;
}

}  // namespace
}  // namespace fedmed
