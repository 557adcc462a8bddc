// fedmed-admin's connection to the coordinator: the Admin service of proto/fedmed.proto over
// mutual TLS with the operator certificate (fedmed-pki init writes DIR/operator/). gRPC and
// protobuf stay inside admin_client.cc.
#ifndef FEDMED_TOOLS_ADMIN_ADMIN_CLIENT_H_
#define FEDMED_TOOLS_ADMIN_ADMIN_CLIENT_H_

#include <memory>
#include <string>

#include "common/util/error.h"

namespace fedmed {

struct TlsFiles;

// A refused or failed admin call. code(): the grpc::StatusCode (e.g. 7 PERMISSION_DENIED for a
// certificate that is not an operator's, 9 FAILED_PRECONDITION for an action that does not
// apply now, 14 UNAVAILABLE for a coordinator that cannot be reached); what(): a sentence for
// the operator (DescribeClientError, common/transport/tls.h, for transport failures).
class AdminError : public Error {
 public:
  AdminError(int code, const std::string& message) : Error(message), code_(code) {}
  int code() const { return code_; }

 private:
  int code_;
};

// Where fedmed-admin finds its files: DIR/ca.pem, DIR/operator.pem, DIR/operator.key and
// DIR/coordinator_address (host:port, one line), as fedmed-pki init writes DIR/operator/.
struct AdminTarget {
  std::string address;  // host:port; the host must be a SAN of the coordinator's certificate
  std::string ca_cert, cert, key;
};
// Reads DIR/coordinator_address unless `address` is given. Throws Error naming the file when it
// cannot be read or is empty.
AdminTarget AdminTargetFromDir(const std::string& dir, const std::string& address);

class AdminClient {
 public:
  // Throws Error / CryptoError when the TLS files cannot be read or the key does not match the
  // certificate. Every call has a deadline of `timeout_seconds`.
  AdminClient(const AdminTarget& target, double timeout_seconds);
  ~AdminClient();

  // The /api/status JSON document. Throws AdminError.
  std::string StatusJson();
  // Each returns the coordinator's one-line outcome. Throw AdminError.
  std::string Pause();
  std::string Resume();
  std::string Stop();
  std::string Exclude(const std::string& site, const std::string& reason);
  std::string Extend(int rounds);

 private:
  class Stub;
  std::string address_;
  double timeout_seconds_;
  std::unique_ptr<Stub> stub_;
};

}  // namespace fedmed

#endif  // FEDMED_TOOLS_ADMIN_ADMIN_CLIENT_H_
