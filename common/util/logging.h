// Logging for fedmed's daemons and tools (spdlog).
//
// Every binary logs to stderr and, when a file is given, to that file too, with the same lines:
// "2026-11-22 10:00:00.123 [coordinator] [info] round 3: 3/3 updates, global acc=0.87".
// Log files are flushed at every line at level info and above, so that a crash loses nothing and
// tests (and operators) can read them while the process runs.
#ifndef FEDMED_COMMON_UTIL_LOGGING_H_
#define FEDMED_COMMON_UTIL_LOGGING_H_

#include <memory>
#include <string>

namespace spdlog {
class logger;
}

namespace fedmed {

// Creates (or replaces) the logger `name` writing to stderr and, if `file` is not empty, appending
// to `file` (parent directories are created). Throws Error if the file cannot be opened.
// Also makes it spdlog's default logger, so free functions spdlog::info(...) go to it.
std::shared_ptr<spdlog::logger> MakeLogger(const std::string& name, const std::string& file = "");

}  // namespace fedmed

#endif  // FEDMED_COMMON_UTIL_LOGGING_H_
