#include "common/transport/tls.h"

#include <grpcpp/grpcpp.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>

#include <algorithm>
#include <ctime>

#include "common/config/tls_files.h"
#include "common/crypto/pki.h"
#include "common/util/file_io.h"

namespace fedmed {

namespace {

struct PemFiles {
  std::string ca, cert, key;
};

PemFiles ReadPemFiles(const TlsFiles& files) {
  PemFiles pem;
  pem.ca = ReadFile(files.ca_cert, "[tls] ca_cert");
  pem.cert = ReadFile(files.cert, "[tls] cert");
  pem.key = ReadFile(files.key, "[tls] key");
  CheckKeyMatchesCertificate(pem.key, pem.cert, files.key + " and " + files.cert);
  return pem;
}

bool Contains(const std::string& haystack, const char* needle) {
  return haystack.find(needle) != std::string::npos;
}

}  // namespace

std::shared_ptr<grpc::ChannelCredentials> MakeChannelCredentials(const TlsFiles& files) {
  const PemFiles pem = ReadPemFiles(files);
  grpc::SslCredentialsOptions options;
  options.pem_root_certs = pem.ca;
  options.pem_private_key = pem.key;
  options.pem_cert_chain = pem.cert;
  return grpc::SslCredentials(options);
}

std::string PeerCertificatePem(const grpc::ServerContext& context) {
  const std::shared_ptr<const grpc::AuthContext> auth = context.auth_context();
  std::string peer_pem;
  if (auth != nullptr) {
    for (const grpc::string_ref& value : auth->FindPropertyValues(GRPC_X509_PEM_CERT_PROPERTY_NAME)) {
      peer_pem.assign(value.data(), value.size());
    }
  }
  return peer_pem;
}

namespace {

grpc::Status NoCertificate() {
  return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                      "refused: the connection presented no client certificate (mutual TLS is "
                      "required)");
}

// A certificate refused for `purpose` that passes as `other` is the wrong role
// (PERMISSION_DENIED); otherwise it is not a valid certificate (UNAUTHENTICATED).
grpc::Status Refused(const std::string& peer_pem, const std::string& ca_pem, std::time_t now,
                     CertificatePurpose other, const std::string& reason) {
  const bool wrong_role = VerifyPeerCertificate(peer_pem, ca_pem, now, other).ok;
  return grpc::Status(wrong_role ? grpc::StatusCode::PERMISSION_DENIED
                                 : grpc::StatusCode::UNAUTHENTICATED,
                      "refused: " + reason);
}

}  // namespace

grpc::Status AuthenticateOperator(const grpc::ServerContext& context, const std::string& ca_pem,
                                  std::string* operator_name) {
  const std::string peer_pem = PeerCertificatePem(context);
  if (peer_pem.empty()) return NoCertificate();
  const std::time_t now = std::time(nullptr);
  const PeerCheck check =
      VerifyPeerCertificate(peer_pem, ca_pem, now, CertificatePurpose::kOperator);
  if (!check.ok) {
    return Refused(peer_pem, ca_pem, now, CertificatePurpose::kClientAuth, check.reason);
  }
  *operator_name = check.common_name;
  return grpc::Status::OK;
}

grpc::Status AuthenticatePeer(const grpc::ServerContext& context, const std::string& ca_pem,
                              const std::vector<std::string>& allowed_sites,
                              std::string* site_name) {
  const std::string peer_pem = PeerCertificatePem(context);
  if (peer_pem.empty()) return NoCertificate();
  const std::time_t now = std::time(nullptr);
  const PeerCheck check = VerifyPeerCertificate(peer_pem, ca_pem, now);
  if (!check.ok) {
    return Refused(peer_pem, ca_pem, now, CertificatePurpose::kOperator, check.reason);
  }
  if (std::find(allowed_sites.begin(), allowed_sites.end(), check.common_name) ==
      allowed_sites.end()) {
    return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                        "refused: certificate CN=" + check.common_name +
                            " is valid but not in the coordinator's allow-list ([tls] "
                            "allowed_sites)");
  }
  *site_name = check.common_name;
  return grpc::Status::OK;
}

std::string DescribeClientError(const grpc::Status& status, const std::string& target) {
  const std::string& msg = status.error_message();
  if (status.error_code() == grpc::StatusCode::UNAVAILABLE) {
    if (Contains(msg, "CERTIFICATE_VERIFY_FAILED") || Contains(msg, "certificate verify failed")) {
      return "TLS handshake with the coordinator at " + target +
             " failed: its certificate does not verify against [tls] ca_cert (is ca_cert the "
             "federation CA?) (" + msg + ")";
    }
    if (Contains(msg, "Peer name") || Contains(msg, "not in peer certificate")) {
      return "TLS handshake with the coordinator at " + target +
             " failed: the host name is not in the coordinator certificate's subject alternative "
             "names (re-issue it with fedmed-pki --coordinator-dns/--coordinator-ip) (" + msg +
             ")";
    }
    // The coordinator verifies our certificate in the handshake (client_auth.h) and ends the
    // connection before HTTP/2 when it refuses it: a connection attempt that the peer closes
    // (or answers with a TLS alert) right after our certificate went out.
    if (Contains(msg, "failed to connect") &&
        (Contains(msg, "Socket closed") || Contains(msg, "Connection reset") ||
         Contains(msg, "alert") || Contains(msg, "Broken pipe"))) {
      return "TLS handshake with the coordinator at " + target +
             " failed: the coordinator refused our certificate during the TLS handshake (is "
             "[tls] cert issued by the federation CA, valid now, not revoked, and is this "
             "site's name in the coordinator's allow-list? The coordinator's log says which) (" +
             msg + ")";
    }
    if (Contains(msg, "handshake") || Contains(msg, "SSL")) {
      return "TLS handshake with the coordinator at " + target + " failed (" + msg + ")";
    }
    return "coordinator at " + target + " is unreachable (" + msg + ")";
  }
  if (status.error_code() == grpc::StatusCode::PERMISSION_DENIED && Contains(msg, "revoked")) {
    return "our certificate was revoked: the coordinator at " + target +
           " refused it (" + msg + "); the federation's operator can issue a new one (fedmed-pki "
           "add-site)";
  }
  if (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    return "coordinator at " + target + " did not answer in time (" + msg + ")";
  }
  return "coordinator at " + target + " answered " + std::to_string(status.error_code()) + ": " +
         msg;
}

}  // namespace fedmed
