// Mutual TLS for fedmed's gRPC channels.
//
// The coordinator is the only server. It asks every client for a certificate during the TLS
// handshake (TLS 1.3 is what gRPC 1.51 and OpenSSL 3 negotiate between fedmed peers) and then
// checks that certificate itself, in AuthenticatePeer(), instead of letting the handshake fail
// silently: a site whose certificate is from another CA, expired, or whose CN is not on the
// allow-list gets a gRPC status that says exactly why, and the coordinator logs the same reason.
// The handshake still proves that the peer holds the private key of the certificate it showed.
//
// Sites verify the coordinator's certificate against the federation CA and its host name (a SAN
// of the coordinator certificate) in the handshake, as usual.
#ifndef FEDMED_COMMON_TRANSPORT_TLS_H_
#define FEDMED_COMMON_TRANSPORT_TLS_H_

#include <memory>
#include <string>
#include <vector>

namespace grpc {
class ChannelCredentials;
class ServerCredentials;
class ServerContext;
class Status;
}  // namespace grpc

namespace fedmed {

struct TlsFiles;

// Server credentials from PEM files (the coordinator's certificate and key; ca_cert is used only
// by AuthenticatePeer). Throws Error naming the file if one cannot be read, CryptoError if the key
// does not match the certificate.
std::shared_ptr<grpc::ServerCredentials> MakeServerCredentials(const TlsFiles& files);

// Channel credentials for a site: trusts only ca_cert, presents cert/key.
// Throws as MakeServerCredentials.
std::shared_ptr<grpc::ChannelCredentials> MakeChannelCredentials(const TlsFiles& files);

// Checks the peer of a server call: its certificate chains to the federation CA (`ca_pem`), is
// valid now, carries clientAuth, and its CN is in `allowed_sites`. On success stores the CN in
// `*site_name` and returns OK. Otherwise returns UNAUTHENTICATED (bad certificate) or
// PERMISSION_DENIED (CN not allowed) with a message naming the certificate and the reason.
grpc::Status AuthenticatePeer(const grpc::ServerContext& context, const std::string& ca_pem,
                              const std::vector<std::string>& allowed_sites,
                              std::string* site_name);

// The certificate (PEM) the peer of a server call presented in the TLS handshake; "" when none.
std::string PeerCertificatePem(const grpc::ServerContext& context);

// Checks the peer of an admin call (the Admin service, fedmed-admin): its certificate chains to
// the federation CA, is valid now and is an operator certificate (CertificatePurpose::kOperator,
// common/crypto/pki.h). On success stores its CN in `*operator_name` and returns OK. Otherwise
// UNAUTHENTICATED (no certificate, or one that does not verify) or PERMISSION_DENIED (a valid
// certificate that is not an operator's, e.g. a site's), with a message naming the certificate.
// (AuthenticatePeer answers an operator certificate PERMISSION_DENIED the same way.)
grpc::Status AuthenticateOperator(const grpc::ServerContext& context, const std::string& ca_pem,
                                  std::string* operator_name);

// Turns a failed client call's status into a sentence an operator can act on, recognising TLS
// handshake failures (unknown CA, host name mismatch) that gRPC reports as UNAVAILABLE.
std::string DescribeClientError(const grpc::Status& status, const std::string& target);

}  // namespace fedmed

#endif  // FEDMED_COMMON_TRANSPORT_TLS_H_
