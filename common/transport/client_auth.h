// The coordinator's authentication of its clients in the TLS handshake, and revocation.
//
// MakeAuthenticatingServerCredentials builds the coordinator's gRPC server credentials with
// gRPC's TLS API (grpc::experimental::TlsServerCredentials, gRPC 1.51): the server requires a
// client certificate, and a certificate verifier (CheckClientCertificate) decides inside the
// handshake, before gRPC creates the HTTP/2 transport, whether the peer may go on. A refused peer
// never gets an HTTP/2 frame: no SETTINGS, no call, no protobuf parsing. The verifier does the
// chain check itself (OpenSSL's X509_verify_cert, common/crypto/pki.h VerifyPeerCertificate)
// rather than leaving it to OpenSSL's own handshake check, so that the coordinator can log why it
// refused a handshake and whose certificate it was:
//   refused a TLS handshake: certificate CN=site-9 is not issued by the federation CA ...
//   refused a TLS handshake: certificate CN=site-2 (serial ...) was revoked on ... (keyCompromise)
//   refused a TLS handshake: certificate CN=site-9 is valid but not in ... allowed_sites
// gRPC 1.51's verifier is not told the peer's address; the log line names the certificate.
//
// Per call, the service still runs AuthenticatePeer (common/transport/tls.h) as a second check,
// and CheckNotRevoked below, which is what refuses a connection that was established before its
// certificate was revoked.
//
// TLS 1.3 only: gRPC 1.51's TlsServerCredentialsOptions has no setter for the version, so
// MakeAuthenticatingServerCredentials configures OpenSSL for the whole process through its own
// configuration module (SSL_CONF system_default: Protocol = -ALL, TLSv1.3), which every SSL_CTX
// made afterwards applies, gRPC's included; a client offering only TLS 1.2 gets no handshake.
#ifndef FEDMED_COMMON_TRANSPORT_CLIENT_AUTH_H_
#define FEDMED_COMMON_TRANSPORT_CLIENT_AUTH_H_

#include <ctime>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace grpc {
class ServerCredentials;
class ServerContext;
class Status;
}  // namespace grpc

namespace fedmed {

class CrlWatcher;
struct TlsFiles;

// What the coordinator accepts as a client.
struct ClientAuthPolicy {
  std::string ca_pem;                      // the federation CA ([tls] ca_cert)
  std::vector<std::string> allowed_sites;  // [tls] allowed_sites: the CNs that may be sites
  std::shared_ptr<CrlWatcher> crl;         // [tls] crl; null when no CRL is configured
};

// Outcome of CheckClientCertificate.
struct ClientCheck {
  enum class Outcome {
    kAccepted,        // a site on the allow-list, or an operator certificate
    kNoCertificate,   // the peer presented none
    kInvalid,         // not the federation CA's, expired, not yet valid, wrong purpose
    kRevoked,         // on the CRL
    kNotAllowed,      // a valid site certificate whose CN is not in allowed_sites
  };
  Outcome outcome = Outcome::kNoCertificate;
  std::string common_name;  // "" when the certificate could not be parsed
  std::string reason;       // one line for logs and status messages; "" when accepted
  bool ok() const { return outcome == Outcome::kAccepted; }
};

// Decides whether `peer_cert_pem` (PEM, leaf first) may talk to the coordinator at `now`: it must
// chain to policy.ca_pem and be valid now (VerifyPeerCertificate), not be on policy.crl, and be
// either a site certificate (kClientAuth) whose CN is in policy.allowed_sites or an operator
// certificate (kOperator, for the admin service). Never throws.
ClientCheck CheckClientCertificate(const std::string& peer_cert_pem,
                                   const ClientAuthPolicy& policy, std::time_t now);

// The coordinator's server credentials: its certificate and key from `files` (files.ca_cert is
// not read: the CA is policy->ca_pem), TLS 1.3 only for the whole process (the first call loads
// the OpenSSL configuration above; CryptoError if OpenSSL refuses it), a client certificate
// required in every handshake, and
// CheckClientCertificate run in the handshake on it; each refusal is passed to `on_refused`
// (one line starting "refused a TLS handshake: ", from a gRPC thread), at most 20 per 10 s; the
// first refusal after such a window says how many were left out. Throws Error naming the
// file if the certificate or key cannot be read, CryptoError if they do not match.
std::shared_ptr<grpc::ServerCredentials> MakeAuthenticatingServerCredentials(
    const TlsFiles& files, std::shared_ptr<const ClientAuthPolicy> policy,
    std::function<void(const std::string&)> on_refused);

// The per-call revocation check: PERMISSION_DENIED with a message that says "revoked", names the
// certificate's CN and serial, the revocation time and reason, when the certificate of the
// call's peer is on policy.crl now (re-read when the file changed); OK otherwise, and when there
// is no CRL or no certificate (AuthenticatePeer refuses that).
grpc::Status CheckNotRevoked(const grpc::ServerContext& context, const ClientAuthPolicy& policy);

}  // namespace fedmed

#endif  // FEDMED_COMMON_TRANSPORT_CLIENT_AUTH_H_
