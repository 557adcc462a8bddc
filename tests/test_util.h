// Helpers shared by fedmed's tests: temporary directories, files, binaries under test.
#ifndef FEDMED_TESTS_TEST_UTIL_H_
#define FEDMED_TESTS_TEST_UTIL_H_

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/util/error.h"
#include "common/util/file_io.h"

namespace fedmed::testing {

// Runs f, which must throw an E (or a subclass of it), and returns its what(); a test failure and
// "" when f returns normally. Any other exception propagates.
template <typename E>
std::string ErrorMessageOf(const std::function<void()>& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected an exception; none was thrown";
  return "";
}

// A fresh directory under the system temp dir, removed with everything in it on destruction
// (kept when FEDMED_KEEP_TEST_DIRS is set, for post-mortems).
class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "fedmed-test") {
    std::random_device rd;
    path_ = std::filesystem::temp_directory_path() /
            (prefix + "-" + std::to_string(rd()) + std::to_string(rd()));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    if (std::getenv("FEDMED_KEEP_TEST_DIRS") == nullptr) {
      std::error_code ec;
      std::filesystem::remove_all(path_, ec);
    }
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

// The whole content of the file at `path`, or "" when it cannot be read (tests poll for files
// that do not exist yet).
inline std::string ReadFile(const std::string& path) {
  try {
    return fedmed::ReadFile(path, "file");
  } catch (const fedmed::Error&) {
    return "";
  }
}

// Directory of the fedmed binaries (set by ctest as FEDMED_BIN_DIR).
inline std::string BinDir() {
  const char* dir = std::getenv("FEDMED_BIN_DIR");
  return dir != nullptr ? dir : "bin";
}

// The project's source directory (set by ctest as FEDMED_SOURCE_DIR).
inline std::string SourceDir() {
  const char* dir = std::getenv("FEDMED_SOURCE_DIR");
  return dir != nullptr ? dir : ".";
}

// Polls `path` until it contains `needle` or `timeout_seconds` pass.
inline bool WaitForFileContaining(const std::string& path, const std::string& needle,
                                  double timeout_seconds) {
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::duration<double>(timeout_seconds);
  while (std::chrono::steady_clock::now() < deadline) {
    if (ReadFile(path).find(needle) != std::string::npos) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

// Runs `command` with /bin/sh and returns its standard output; *status gets its exit status
// (-1 when it could not be started or did not exit normally).
inline std::string RunCommand(const std::string& command, int* status) {
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) {
    *status = -1;
    return "";
  }
  std::string out;
  char buffer[4096];
  size_t n = 0;
  while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) out.append(buffer, n);
  const int raw = pclose(pipe);
  *status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  return out;
}

// A Python interpreter that can run `import <modules>` (e.g. "torch" or "PIL, numpy"):
// $FEDMED_PYTHON, else python3 on the PATH, else /usr/bin/python3 (where Debian's python3-torch
// and python3-pil live, e.g. when a pyenv python3 comes first on the PATH). "" if none can;
// *tried (when given) lists what was tried.
inline std::string FindPythonWith(const std::string& modules, std::string* tried = nullptr) {
  std::vector<std::string> candidates;
  if (const char* env = std::getenv("FEDMED_PYTHON"); env != nullptr && *env != '\0') {
    candidates.emplace_back(env);
  }
  candidates.emplace_back("python3");
  candidates.emplace_back("/usr/bin/python3");
  for (const std::string& python : candidates) {
    int status = 0;
    RunCommand(python + " -c 'import " + modules + "' 2>/dev/null", &status);
    if (status == 0) return python;
    if (tried != nullptr) *tried += " " + python;
  }
  return "";
}

}  // namespace fedmed::testing

#endif  // FEDMED_TESTS_TEST_UTIL_H_
