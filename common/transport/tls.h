// Mutual TLS for fedmed's gRPC channels.
//
// The coordinator is the only server. Its credentials (MakeAuthenticatingServerCredentials,
// common/transport/client_auth.h) require a client certificate and check it in the TLS handshake
// (TLS 1.3 is what gRPC 1.51 and OpenSSL 3 negotiate between fedmed peers): a peer whose
// certificate is from another CA, expired, revoked or whose CN is not on the allow-list never
// reaches HTTP/2, and the coordinator logs why. AuthenticatePeer() checks the same per call, as a
// second line, and tells the caller why in its status. The handshake also proves that the peer
// holds the private key of the certificate it showed.
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

// Channel credentials for a site: trusts only ca_cert, presents cert/key. (The coordinator's
// server credentials are MakeAuthenticatingServerCredentials, common/transport/client_auth.h.)
// Throws Error naming the file if one cannot be read, CryptoError if the key does not match the
// certificate.
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
// handshake failures that gRPC reports as UNAVAILABLE: the coordinator's certificate does not
// verify, a host name mismatch, and the coordinator refusing ours in the handshake ("the
// coordinator refused our certificate during the TLS handshake": a connection it closed right
// after the handshake, see common/transport/client_auth.h).
std::string DescribeClientError(const grpc::Status& status, const std::string& target);

}  // namespace fedmed

#endif  // FEDMED_COMMON_TRANSPORT_TLS_H_
