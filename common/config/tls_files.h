// The mutual-TLS files of one party (the [tls] section of coordinator.toml and site.toml), as a
// plain struct: what common/transport/tls.h needs from a configuration, without the rest of it.
// Header only; no TOML.
#ifndef FEDMED_COMMON_CONFIG_TLS_FILES_H_
#define FEDMED_COMMON_CONFIG_TLS_FILES_H_

#include <string>

namespace fedmed {

// Mutual-TLS files of one party (PEM). A loaded configuration holds absolute paths.
struct TlsFiles {
  std::string ca_cert;  // the federation CA certificate
  std::string cert;     // this party's certificate
  std::string key;      // this party's private key
};

// The three paths are equal. Never throws.
inline bool operator==(const TlsFiles& a, const TlsFiles& b) {
  return a.ca_cert == b.ca_cert && a.cert == b.cert && a.key == b.key;
}
inline bool operator!=(const TlsFiles& a, const TlsFiles& b) { return !(a == b); }

}  // namespace fedmed

#endif  // FEDMED_COMMON_CONFIG_TLS_FILES_H_
