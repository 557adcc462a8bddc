// WriteFileAtomically and ReadFile: round trips, permissions, errors that name the file, and a
// failed replacement (a file-size limit in a child process) that keeps the old content.
#include "common/util/file_io.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "common/util/error.h"
#include "tests/test_util.h"

namespace fedmed {
namespace {

namespace fs = std::filesystem;
using testing::ErrorMessageOf;
using testing::TempDir;

// Whether `text` contains `part`; prints both when not (gmock is not linked).
::testing::AssertionResult Contains(const std::string& text, const std::string& part) {
  if (text.find(part) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "'" << text << "' does not contain '" << part << "'";
}

// The names of the entries of `dir`, sorted.
std::vector<std::string> Entries(const fs::path& dir) {
  std::vector<std::string> names;
  for (const fs::directory_entry& e : fs::directory_iterator(dir)) {
    names.push_back(e.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

TEST(FileIoTest, RoundTripIsByteExactAndLeavesNoTemporaryFile) {
  TempDir dir("fedmed-file-io");
  const std::string path = dir / "state.bin";
  std::string binary(256 * 1024 + 7, '\0');  // larger than one read() buffer, with NULs
  for (size_t i = 0; i < binary.size(); ++i) binary[i] = static_cast<char>(i * 131 % 251);
  WriteFileAtomically(path, binary, "state");
  EXPECT_EQ(ReadFile(path, "state"), binary);
  WriteFileAtomically(path, "");
  EXPECT_EQ(ReadFile(path, "state"), "");
  WriteFileAtomically(path, std::string("second\0binary", 13));
  EXPECT_EQ(ReadFile(path, "state"), std::string("second\0binary", 13));
  EXPECT_EQ(Entries(dir.path()), std::vector<std::string>{"state.bin"})
      << "no temporary file may be left behind";
}

TEST(FileIoTest, RelativePathInTheWorkingDirectory) {
  TempDir dir("fedmed-file-io");
  const fs::path previous = fs::current_path();
  fs::current_path(dir.path());
  WriteFileAtomically("plain.txt", "here");
  fs::current_path(previous);
  EXPECT_EQ(ReadFile(dir / "plain.txt", "plain"), "here");
}

TEST(FileIoTest, PermissionsOfTheNewFile) {
  TempDir dir("fedmed-file-io");
  const mode_t old_umask = ::umask(022);
  const std::string key = dir / "site.key";
  const std::string cert = dir / "site.pem";
  WriteFileAtomically(key, "secret", "site key", FilePermissions::kOwnerOnly);
  WriteFileAtomically(cert, "public", "site certificate");
  ::umask(0);  // 0600 whatever the umask; 0644 less the umask
  const std::string key2 = dir / "other.key";
  WriteFileAtomically(key2, "secret", "", FilePermissions::kOwnerOnly);
  ::umask(old_umask);
  struct stat st {};
  ASSERT_EQ(::stat(key.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(::stat(key2.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(::stat(cert.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644u);
}

TEST(FileIoTest, ReadErrorsNameWhatThePathAndTheReason) {
  TempDir dir("fedmed-file-io");
  const std::string missing = dir / "nope.pem";
  const std::string message =
      ErrorMessageOf<Error>([&] { ReadFile(missing, "TLS certificate [tls] cert"); });
  EXPECT_EQ(message, "cannot read TLS certificate [tls] cert '" + missing +
                         "': No such file or directory");
  EXPECT_TRUE(Contains(ErrorMessageOf<Error>([&] { ReadFile(dir.path().string(), "a folder"); }),
                       std::strerror(EISDIR)));
}

TEST(FileIoTest, WriteIntoAMissingDirectoryNamesTheFileAndLeavesNothing) {
  TempDir dir("fedmed-file-io");
  const std::string path = dir / "no-dir/resume.json";
  const std::string message =
      ErrorMessageOf<Error>([&] { WriteFileAtomically(path, "{}", "resume.json"); });
  EXPECT_TRUE(Contains(message, "cannot write resume.json '" + path + "'"));
  EXPECT_TRUE(Contains(message, "No such file or directory"));
  EXPECT_TRUE(Entries(dir.path()).empty());
  // Without `what`, the path alone.
  EXPECT_TRUE(Contains(ErrorMessageOf<Error>([&] { WriteFileAtomically(path, "{}"); }),
                       "cannot write '" + path + "'"));
}

TEST(FileIoTest, ReplacingADirectoryFailsAtTheRenameAndRemovesTheTemporaryFile) {
  TempDir dir("fedmed-file-io");
  fs::create_directories(dir.path() / "checkpoints" / "inside");
  const std::string path = dir / "checkpoints";
  const std::string message =
      ErrorMessageOf<Error>([&] { WriteFileAtomically(path, "x", "checkpoint"); });
  EXPECT_TRUE(Contains(message, "renaming"));
  EXPECT_TRUE(Contains(message, path));
  EXPECT_EQ(Entries(dir.path()), std::vector<std::string>{"checkpoints"});
}

// ReplaceFile (no fsync) replaces as atomically, and fails as cleanly.
TEST(FileIoTest, ReplaceFileReplacesWholeAndFailsCleanly) {
  TempDir dir("fedmed-file-io");
  const std::string path = dir / "status.json";
  ReplaceFile(path, "{\"round\": 1}\n", "status.json");
  ReplaceFile(path, "{\"round\": 2}\n", "status.json");
  EXPECT_EQ(ReadFile(path, "status.json"), "{\"round\": 2}\n");
  EXPECT_EQ(Entries(dir.path()), std::vector<std::string>{"status.json"});
  fs::create_directories(dir.path() / "busy" / "inside");
  const std::string message =
      ErrorMessageOf<Error>([&] { ReplaceFile(dir / "busy", "x", "status.json"); });
  EXPECT_TRUE(Contains(message, "cannot write status.json"));
  EXPECT_TRUE(Contains(message, "renaming"));
  EXPECT_EQ(Entries(dir.path()), (std::vector<std::string>{"busy", "status.json"}));
}

// A write that fails half way (here: RLIMIT_FSIZE, in a child process so that the limit does not
// touch the test runner, with SIGXFSZ ignored as fedmed's binaries do) throws an Error naming the
// file and EFBIG, removes its temporary file and leaves the old file as it was.
TEST(FileIoTest, AFailedReplacementKeepsTheOldContent) {
  TempDir dir("fedmed-file-io");
  const std::string path = dir / "resume.json";
  const std::string old_content = "{\"round\": 3}\n";
  WriteFileAtomically(path, old_content, "resume.json");
  const std::string report = dir / "report.txt";

  const pid_t child = ::fork();
  ASSERT_GE(child, 0) << std::strerror(errno);
  if (child == 0) {
    ::signal(SIGXFSZ, SIG_IGN);
    const struct rlimit limit {4096, 4096};
    if (::setrlimit(RLIMIT_FSIZE, &limit) != 0) ::_exit(2);
    std::string message = "no exception";
    int status = 1;
    try {
      WriteFileAtomically(path, std::string(64 * 1024, 'x'), "resume.json");
    } catch (const Error& e) {
      message = e.what();
      status = 0;
    }
    // The report is small enough for the limit.
    try {
      WriteFileAtomically(report, message);
    } catch (const Error&) {
      ::_exit(3);
    }
    ::_exit(status);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status)) << "the child was killed by signal " << WTERMSIG(status);
  const std::string message = ReadFile(report, "the child's report");
  EXPECT_EQ(WEXITSTATUS(status), 0) << message;
  EXPECT_TRUE(Contains(message, "cannot write resume.json '" + path + "'"));
  EXPECT_TRUE(Contains(message, std::strerror(EFBIG)));
  EXPECT_EQ(ReadFile(path, "resume.json"), old_content);
  EXPECT_EQ(Entries(dir.path()), (std::vector<std::string>{"report.txt", "resume.json"}));
}

// Readers never see a partial file while writers replace it, also from several threads.
TEST(FileIoTest, ConcurrentReplacementsAreEachWhole) {
  TempDir dir("fedmed-file-io");
  const std::string path = dir / "status.json";
  const auto version = [](int writer, int i) {
    return std::string(1000 + 100 * writer + i, static_cast<char>('a' + writer));
  };
  WriteFileAtomically(path, version(0, 0));
  std::atomic<bool> done{false};
  std::atomic<int> partial{0};
  std::thread reader([&] {
    while (!done) {
      const std::string s = ReadFile(path, "status");
      const int writer = s.empty() ? -1 : s[0] - 'a';
      const int i = static_cast<int>(s.size()) - 1000 - 100 * writer;
      if (writer < 0 || writer > 3 || i < 0 || s != version(writer, i)) ++partial;
    }
  });
  std::vector<std::thread> writers;
  for (int w = 0; w < 4; ++w) {
    writers.emplace_back([&, w] {
      for (int i = 0; i < 50; ++i) WriteFileAtomically(path, version(w, i));
    });
  }
  for (std::thread& t : writers) t.join();
  done = true;
  reader.join();
  EXPECT_EQ(partial, 0);
  EXPECT_EQ(Entries(dir.path()), std::vector<std::string>{"status.json"});
}

}  // namespace
}  // namespace fedmed
