// The status server's access token ([status] token_file; docs/OPERATIONS.md): 64 hex digits
// (256 bits from the OS's secure random source) in a file readable by its owner only.
// fedmed-pki init writes one beside coordinator.toml (tools/pki/provision.h).
#ifndef FEDMED_COORDINATOR_STATUS_STATUS_TOKEN_H_
#define FEDMED_COORDINATOR_STATUS_STATUS_TOKEN_H_

#include <string>

namespace fedmed {

// A fresh token: 64 lowercase hex digits. Never throws.
std::string NewStatusToken();

// Writes a fresh token (and a newline) to `path` with mode 0600, atomically; returns it. Throws
// Error naming the path when it cannot be written.
std::string WriteStatusTokenFile(const std::string& path);

// The token in `path` (surrounding whitespace removed). Throws ConfigError naming "[status]
// token_file" and the path when the file cannot be read, is readable or writable by its group
// or others (chmod 600 it), or holds fewer than 16 characters or any character outside
// [A-Za-z0-9._~-] (tokens travel in URLs and cookies).
std::string ReadStatusTokenFile(const std::string& path);

}  // namespace fedmed

#endif  // FEDMED_COORDINATOR_STATUS_STATUS_TOKEN_H_
