#include "coordinator/status/status_token.h"

#include <sys/stat.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "common/crypto/secure_random.h"
#include "common/util/error.h"
#include "common/util/file_io.h"

namespace fedmed {

std::string NewStatusToken() {
  std::string token;
  for (int i = 0; i < 4; ++i) {
    char part[17];
    std::snprintf(part, sizeof part, "%016llx",
                  static_cast<unsigned long long>(SecureRandomUint64()));
    token += part;
  }
  return token;
}

std::string WriteStatusTokenFile(const std::string& path) {
  const std::string token = NewStatusToken();
  WriteFileAtomically(path, token + "\n", "status token", FilePermissions::kOwnerOnly);
  return token;
}

std::string ReadStatusTokenFile(const std::string& path) {
  const std::string what = "[status] token_file " + path;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    throw ConfigError(what + ": cannot read it: " + std::strerror(errno) +
                      " (fedmed-pki init writes one; or write 64 random hex digits to it, "
                      "mode 0600)");
  }
  if ((st.st_mode & 077) != 0) {
    throw ConfigError(what + ": readable or writable by others than its owner (mode " +
                      [&] {
                        char mode[8];
                        std::snprintf(mode, sizeof mode, "%04o", st.st_mode & 07777);
                        return std::string(mode);
                      }() +
                      "); it is a secret: chmod 600 it");
  }
  std::string text;
  try {
    text = ReadFile(path, "[status] token_file");
  } catch (const Error& e) {
    throw ConfigError(e.what());
  }
  const size_t begin = text.find_first_not_of(" \t\r\n");
  const size_t end = text.find_last_not_of(" \t\r\n");
  const std::string token = begin == std::string::npos ? "" : text.substr(begin, end - begin + 1);
  if (token.size() < 16) {
    throw ConfigError(what + ": expected a token of at least 16 characters, got " +
                      std::to_string(token.size()));
  }
  for (char c : token) {
    const bool ok = std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' ||
                    c == '~' || c == '-';
    if (!ok) {
      throw ConfigError(what + ": the token may hold only letters, digits and . _ ~ -");
    }
  }
  return token;
}

}  // namespace fedmed
