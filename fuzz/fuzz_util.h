// What the libFuzzer harnesses of fuzz/ share: a scratch file for parsers that read a path, the
// rule for which exceptions a parser may throw on hostile input, and a reader of fuzz input.
#ifndef FEDMED_FUZZ_FUZZ_UTIL_H_
#define FEDMED_FUZZ_FUZZ_UTIL_H_

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <string_view>

#include "common/util/error.h"

namespace fedmed::fuzz {

// Writes `bytes` to a file called `name` in this process's own scratch directory
// ($TMPDIR or /tmp, "fedmed-fuzz-<pid>") and returns its path. The file is overwritten by the next
// call with the same name. Aborts (a harness failure, not a finding) if it cannot be written.
inline std::string WriteScratchFile(const std::string& name, std::string_view bytes) {
  static const std::string dir = [] {
    const char* tmp = std::getenv("TMPDIR");
    std::string d = std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") +
                    "/fedmed-fuzz-" + std::to_string(::getpid());
    std::filesystem::create_directories(d);
    return d;
  }();
  const std::string path = dir + "/" + name;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) {
    std::fprintf(stderr, "fuzz harness: cannot write %s\n", path.c_str());
    std::abort();
  }
  return path;
}

// Runs `parse` on one fuzz input. The errors fedmed documents for hostile input
// (fedmed::Error: DataError, FormatError, ConfigError, CryptoError) are the expected outcome of a
// bad input. Any other exception escaping a parser (std::bad_alloc, std::out_of_range, a
// third-party library's own exception, ...) breaks the parser's contract and is reported as a
// crash (abort, so libFuzzer saves the input).
inline void ExpectOnlyFedmedErrors(const char* harness, const std::function<void()>& parse) {
  try {
    parse();
  } catch (const Error&) {
    // The documented refusal of a bad input.
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: undocumented exception escaped the parser: %s\n", harness,
                 e.what());
    std::abort();
  } catch (...) {
    std::fprintf(stderr, "%s: a non-std exception escaped the parser\n", harness);
    std::abort();
  }
}

// Consumes fuzz input from the front: small integers, then length-prefixed pieces, then the rest.
class InputReader {
 public:
  InputReader(const uint8_t* data, size_t size)
      : rest_(reinterpret_cast<const char*>(data), size) {}

  // The next byte (0 when the input is exhausted).
  uint8_t Byte() {
    if (rest_.empty()) return 0;
    const auto b = static_cast<uint8_t>(rest_.front());
    rest_.remove_prefix(1);
    return b;
  }
  // A piece whose length (0..65535) is given by the next two bytes (little-endian), cut short
  // at the end of the input.
  std::string_view Piece() {
    const size_t n = Byte() | (static_cast<size_t>(Byte()) << 8);
    const std::string_view piece = rest_.substr(0, n);
    rest_.remove_prefix(piece.size());
    return piece;
  }
  // Everything not consumed yet.
  std::string_view Rest() {
    const std::string_view r = rest_;
    rest_ = {};
    return r;
  }
  bool empty() const { return rest_.empty(); }

 private:
  std::string_view rest_;
};

}  // namespace fedmed::fuzz

#endif  // FEDMED_FUZZ_FUZZ_UTIL_H_
