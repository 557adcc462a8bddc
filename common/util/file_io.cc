#include "common/util/file_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "common/util/error.h"

namespace fedmed {

namespace {

// Closes a file descriptor when it goes out of scope, unless Close() did already.
class FdCloser {
 public:
  explicit FdCloser(int fd) : fd_(fd) {}
  ~FdCloser() {
    if (fd_ >= 0) ::close(fd_);
  }
  FdCloser(const FdCloser&) = delete;
  FdCloser& operator=(const FdCloser&) = delete;

  // Closes now and reports close()'s result (0, or -1 with errno set).
  int Close() {
    const int rc = ::close(fd_);
    fd_ = -1;
    return rc;
  }

 private:
  int fd_;
};

// "<what> '<path>'", or "'<path>'" when `what` is empty.
std::string Named(const std::string& what, const std::string& path) {
  return (what.empty() ? "" : what + " ") + "'" + path + "'";
}

// The directory that holds `path`'s directory entry.
std::string ParentDirectory(const std::string& path) {
  const std::string::size_type slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// WriteFileAtomically when `durable`; ReplaceFile (no fsync) otherwise.
void Replace(const std::string& path, std::string_view content, const std::string& what,
             FilePermissions permissions, bool durable) {
  static std::atomic<unsigned> counter{0};
  const std::string tmp =
      path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter++);
  const std::string name = "cannot write " + Named(what, path) + ": ";
  const bool owner_only = permissions == FilePermissions::kOwnerOnly;

  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
                        owner_only ? 0600 : 0644);
  if (fd < 0) throw Error(name + "creating '" + tmp + "': " + std::strerror(errno));
  FdCloser closer(fd);
  // Removes the temporary file and throws; errno is read first, before unlink() can change it.
  const auto fail = [&](const std::string& step) {
    const int saved = errno;
    closer.Close();
    ::unlink(tmp.c_str());
    throw Error(name + step + ": " + std::strerror(saved));
  };
  // open() applies the umask to the mode; a private key gets exactly 0600 whatever it is.
  if (owner_only && ::fchmod(fd, 0600) != 0) fail("setting mode 0600");
  size_t written = 0;
  while (written < content.size()) {
    const ssize_t n = ::write(fd, content.data() + written, content.size() - written);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail("writing");
    }
    if (n == 0) {  // not expected of a regular file; never loop forever
      errno = EIO;
      fail("writing");
    }
    written += static_cast<size_t>(n);
  }
  if (durable && ::fsync(fd) != 0) fail("syncing to disk");
  if (closer.Close() != 0) {
    const int saved = errno;
    ::unlink(tmp.c_str());
    throw Error(name + "closing: " + std::strerror(saved));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int saved = errno;
    ::unlink(tmp.c_str());
    throw Error(name + "renaming '" + tmp + "' over it: " + std::strerror(saved));
  }
  if (!durable) return;

  // The rename is durable once the directory entry is on disk.
  const std::string dir = ParentDirectory(path);
  const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd < 0) {
    throw Error(name + "the new content is in place, but opening its directory '" + dir +
                "' to sync it failed, so it may not survive a crash: " + std::strerror(errno));
  }
  if (::fsync(dir_fd) != 0 && errno != EINVAL) {
    const int saved = errno;
    ::close(dir_fd);
    throw Error(name + "the new content is in place, but syncing its directory '" + dir +
                "' failed, so it may not survive a crash: " + std::strerror(saved));
  }
  ::close(dir_fd);
}

}  // namespace

void WriteFileAtomically(const std::string& path, std::string_view content,
                         const std::string& what, FilePermissions permissions) {
  Replace(path, content, what, permissions, /*durable=*/true);
}

void ReplaceFile(const std::string& path, std::string_view content, const std::string& what) {
  Replace(path, content, what, FilePermissions::kPublic, /*durable=*/false);
}

std::string ReadFile(const std::string& path, const std::string& what) {
  const std::string name = "cannot read " + Named(what, path) + ": ";
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(name + std::strerror(errno));
  FdCloser closer(fd);
  std::string content;
  struct stat st {};
  if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) {
    content.reserve(static_cast<size_t>(st.st_size));
  }
  char buf[65536];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      throw Error(name + std::strerror(errno));
    }
    content.append(buf, static_cast<size_t>(n));
  }
  return content;
}

}  // namespace fedmed
