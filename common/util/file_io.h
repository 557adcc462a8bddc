// Reading and replacing whole files: the one place fedmed does file I/O of that kind.
//
// Every file fedmed writes for later use (checkpoints, resume.json, a site's privacy ledger,
// certificates and keys, exported models, status.json) is replaced with WriteFileAtomically, so
// that a reader, or the process restarted after a crash or power loss, finds either the old file
// or the whole new one, never a partial one. Files that grow line by line (the privacy log,
// metrics.csv) are appended to by their own writers.
//
// Errors: both functions throw fedmed::Error (common/util/error.h) whose message names the file
// (and, when given, what it is for: "resume.json", "[tls] cert") and the system's reason
// (strerror), for example
//   cannot write resume.json '/run/checkpoints/resume.json': writing: No space left on device
//   cannot read [tls] ca_cert 'certs/ca.pem': No such file or directory
//
// A file-size limit (RLIMIT_FSIZE, `ulimit -f`) makes the kernel send SIGXFSZ, which kills the
// process by default, instead of failing the write with EFBIG. fedmed's binaries ignore SIGXFSZ
// (signal(SIGXFSZ, SIG_IGN) first thing in main()), so that WriteFileAtomically reports the
// limit as an Error and leaves the old file in place; a program that uses these functions and
// wants the same must do the same.
//
// Thread safety: the functions are safe to call from several threads at once, also for the same
// path (the last rename wins; every version seen is whole).
#ifndef FEDMED_COMMON_UTIL_FILE_IO_H_
#define FEDMED_COMMON_UTIL_FILE_IO_H_

#include <string>
#include <string_view>

namespace fedmed {

// Who may read a file WriteFileAtomically creates.
enum class FilePermissions {
  kPublic,     // mode 0644 less the process's umask
  kOwnerOnly,  // mode 0600 (owner read/write only), whatever the umask: private keys
};

// Replaces the file at `path` with `content` (any bytes, also NULs) so that readers see either
// the old file or the new one, never a partial one, and so that the new content survives a
// crash or power loss once this returns:
//   1. writes `content` to a new temporary file beside it, path + ".tmp.<pid>.<counter>"
//      (created exclusively, so concurrent writers never share one), looping over partial
//      writes and EINTR;
//   2. fsync()s and close()s it, checking both (a delayed write error such as EIO or ENOSPC on
//      NFS shows up only there);
//   3. rename()s it over `path` (atomic within one file system);
//   4. fsync()s the directory, so that the rename itself is on disk.
// The new file gets `permissions`; the old file's mode and owner are not kept. The parent
// directory must exist (it is not created). `what` names the file's purpose in error messages
// ("resume.json", "CA key"); when empty, messages name the path alone.
//
// Throws Error naming `what`, `path`, the step that failed and strerror(errno) if any step fails:
// e.g. ENOENT (no such directory), EACCES/EROFS (not writable), ENOSPC (disk full), EDQUOT,
// EFBIG (RLIMIT_FSIZE reached, with SIGXFSZ ignored: see above), EIO. If it throws before the
// rename (steps 1-3), the temporary file has been removed and `path` still holds its old content
// (or still does not exist). If only step 4 fails, `path` already holds the new content but its
// durability across a crash is not assured; the error says so. (EINVAL from the directory's
// fsync, a file system that cannot sync directories, is not an error.)
void WriteFileAtomically(const std::string& path, std::string_view content,
                         const std::string& what = "",
                         FilePermissions permissions = FilePermissions::kPublic);

// As WriteFileAtomically, steps 1 to 3 without the two fsync()s: readers still see the old file
// or the new one, never a partial one, but after a crash or power loss the file may hold its old
// content. For files that only show progress (status.json), rewritten often, where an fsync's
// milliseconds matter and losing the latest version costs nothing. Throws Error as
// WriteFileAtomically.
void ReplaceFile(const std::string& path, std::string_view content, const std::string& what = "");

// Returns the whole content of the file at `path`, byte for byte (binary; no newline
// translation). Reads with POSIX read(), looping over partial reads and EINTR.
//
// Throws Error naming `what` (e.g. "TLS certificate [tls] cert", "strategy state named in
// resume.json"), `path` and strerror(errno) if the file cannot be opened or read: it does not
// exist (ENOENT), is not readable (EACCES), is a directory (EISDIR), or the read fails (EIO).
// The message reads "cannot read <what> '<path>': <reason>".
std::string ReadFile(const std::string& path, const std::string& what);

}  // namespace fedmed

#endif  // FEDMED_COMMON_UTIL_FILE_IO_H_
