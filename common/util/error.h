// fedmed error types.
//
// fedmed reports failures with exceptions derived from fedmed::Error. Every message names the
// thing that was wrong (a file, a config field, an array, a peer) and what was expected, so that
// it can be shown to an operator as is. At the gRPC boundary errors become grpc::Status values
// (see common/transport/), never the other way round.
#ifndef FEDMED_COMMON_UTIL_ERROR_H_
#define FEDMED_COMMON_UTIL_ERROR_H_

#include <stdexcept>
#include <string>

namespace fedmed {

// Base class of every error fedmed throws on purpose.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// A configuration file or command-line value is missing, malformed or contradictory.
class ConfigError : public Error {
 public:
  using Error::Error;
};

// A data file (image archive, array, manifest) is unreadable, corrupt or not what was expected.
class DataError : public Error {
 public:
  using Error::Error;
};

// Bytes received from a peer or read from disk do not follow the expected format
// (model state, chunk stream, digest mismatch).
class FormatError : public Error {
 public:
  using Error::Error;
};

// An OpenSSL call or a certificate check failed.
class CryptoError : public Error {
 public:
  using Error::Error;
};

}  // namespace fedmed

#endif  // FEDMED_COMMON_UTIL_ERROR_H_
