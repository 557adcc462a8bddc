// Shared machinery of fedmed's TOML configuration files: typed reading with operator-readable
// errors, rejection of unknown keys, path resolution, and rendering of TOML values.
//
// Every error is a ConfigError of the form
//   <file>: [section] key: expected <what>, got <value>
// e.g. "site.toml: [data] shard: expected an integer between 1 and 3 (num_shards), got 4".
// toml++ stays inside the .cc files; this header exposes none of its types.
#ifndef FEDMED_COMMON_CONFIG_TOML_UTIL_H_
#define FEDMED_COMMON_CONFIG_TOML_UTIL_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace fedmed {

// A parsed TOML file, read one [section] key at a time.
//
// Each Read() call declares `key` as accepted in `section`. When the key is present it must have
// the output's type (a double also accepts an integer) and is stored into *out; when absent, *out
// keeps its default. Read() returns whether the key was present: presence is looked up once, in
// the parsed tree, so an optional setting needs no sentinel value. After the last Read(),
// Finish() rejects every section and key that no Read() declared, listing the accepted ones, so
// that a typo ("lerning_rate") is never silently ignored; then it reports the first required key
// that is missing.
//
// Most callers do not call Read() key by key: a ConfigSection (common/config/config_schema.h)
// reads a whole section from its key table.
class TomlFile {
 public:
  enum class Presence { kOptional, kRequired };

  // Reads and parses the file. Throws ConfigError if it cannot be read (naming the system's
  // reason) or is not valid TOML (naming line and column).
  explicit TomlFile(const std::string& path);
  ~TomlFile();
  TomlFile(const TomlFile&) = delete;
  TomlFile& operator=(const TomlFile&) = delete;

  const std::string& path() const;

  // Each returns true if the key is present (and stored into *out), false if absent (*out
  // unchanged). Each throws ConfigError if the key is present with another type (or, for int, a
  // value outside int's range; for uint64_t, a negative value).
  bool Read(const std::string& section, const std::string& key, std::string* out,
            Presence presence = Presence::kOptional);
  bool Read(const std::string& section, const std::string& key, bool* out,
            Presence presence = Presence::kOptional);
  bool Read(const std::string& section, const std::string& key, int* out,
            Presence presence = Presence::kOptional);
  bool Read(const std::string& section, const std::string& key, int64_t* out,
            Presence presence = Presence::kOptional);
  bool Read(const std::string& section, const std::string& key, uint64_t* out,
            Presence presence = Presence::kOptional);
  bool Read(const std::string& section, const std::string& key, double* out,
            Presence presence = Presence::kOptional);
  bool Read(const std::string& section, const std::string& key, std::vector<std::string>* out,
            Presence presence = Presence::kOptional);
  // An array of numbers (integers accepted).
  bool Read(const std::string& section, const std::string& key, std::vector<double>* out,
            Presence presence = Presence::kOptional);

  // A key that is no longer accepted: throws ConfigError "<file>: [section] key: <why> (line N)"
  // if the file sets it, so that an old file fails with the reason instead of as an unknown key.
  // Does not declare the key as accepted.
  void Refuse(const std::string& section, const std::string& key, const std::string& why);

  // Throws ConfigError for the first unknown section, unknown key, or missing required key.
  void Finish();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// "<file>: [section] key". An empty file is shown as "(configuration built in code)".
std::string SettingName(const std::string& file, const std::string& section,
                        const std::string& key);

// "<file>: [section]" (the prefix of SettingName without the key).
std::string SectionName(const std::string& file, const std::string& section);

// Throws ConfigError("<file>: [section] key: expected <expected>, got <got>").
[[noreturn]] void ThrowBadSetting(const std::string& file, const std::string& section,
                                  const std::string& key, const std::string& expected,
                                  const std::string& got);

// `path` made absolute relative to the directory of `config_path` (itself made absolute against
// the current directory), lexically normalised. Empty and absolute paths are returned as is.
std::string ResolveRelativeTo(const std::string& config_path, const std::string& path);

// Splits "host:port" or "[ipv6]:port" into host (without brackets) and port. Returns false if
// the text has no host, no port, or a port that is not an integer in 0..65535.
bool ParseHostPort(const std::string& address, std::string* host, int* port);

// TOML literals for rendering configuration files.
std::string TomlString(std::string_view s);  // a basic string: "..." with escapes
std::string TomlDouble(double v);            // shortest text that reads back as v; "0.5", "600.0"
std::string TomlStringArray(const std::vector<std::string>& v);  // ["a", "b"]
inline std::string TomlBool(bool v) { return v ? "true" : "false"; }

}  // namespace fedmed

#endif  // FEDMED_COMMON_CONFIG_TOML_UTIL_H_
