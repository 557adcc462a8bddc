// The coordinator's gRPC service (proto/fedmed.proto, service fedmed.v1.Federation): the only
// coordinator file besides main.cc that knows gRPC or protobuf.
//
// Transport only: every call is first authenticated (AuthenticatePeer: the certificate chains
// to the federation CA and its CN is on the allow-list; refusals are logged with the peer
// address and the reason), protos become the domain messages of common/transport/messages.h
// (common/transport/wire.h), models are streamed out and updates reassembled in chunks
// (common/transport/chunking.h), and every decision is the SiteHandler's (site_handler.h),
// whose Status answers become grpc::Status here and nowhere else.
#ifndef FEDMED_COORDINATOR_TRANSPORT_SERVICE_H_
#define FEDMED_COORDINATOR_TRANSPORT_SERVICE_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "coordinator/admin_handler.h"
#include "coordinator/site_handler.h"

namespace grpc {
class Service;
}
namespace spdlog {
class logger;
}

namespace fedmed {

struct TlsFiles;
class CrlWatcher;

// Limits of the service's calls (docs/SECURITY.md).
struct ServiceLimits {
  // An upload that receives nothing for this long is cancelled (DEADLINE_EXCEEDED; the site's
  // attempt failed and it may upload again). [federation] upload_idle_seconds; 0 = no limit.
  double upload_idle_seconds = 30;
};

// The service, bound to `handler` (not owned; must outlive the service). `ca_pem`: the
// federation CA; `allowed_sites`: [tls] allowed_sites; `crl`: [tls] crl, or null for none.
std::unique_ptr<grpc::Service> MakeFederationService(SiteHandler* handler, std::string ca_pem,
                                                     std::vector<std::string> allowed_sites,
                                                     const ServiceLimits& limits,
                                                     std::shared_ptr<spdlog::logger> logger,
                                                     std::shared_ptr<CrlWatcher> crl = nullptr);

// The operator's Admin service (admin_service.h) on the same port: `handler` null = not served;
// `status_json` answers its GetStatus (/api/status).
struct AdminAccess {
  AdminHandler* handler = nullptr;
  std::function<std::string()> status_json;
};

// The coordinator's gRPC server: the service above on `listen_address` (host:port; port 0
// picks a free one) with mutual-TLS credentials from `tls` that authenticate every client in the
// TLS handshake (common/transport/client_auth.h: the federation CA, the allow-list and `crl`, the
// [tls] crl revocation list or null), and resource limits sized for `allowed_sites.size()` sites
// (polls are held open: a few threads per site). A certificate on `crl` is also refused at every
// call (PERMISSION_DENIED, "revoked"), and the Attend stream of a site whose certificate is
// revoked ends (its session with it). With `admin`, the Admin service too. Destroying it shuts it
// down.
class FederationServer {
 public:
  // Starts serving. Throws Error naming the address when it cannot be bound; Error /
  // CryptoError when the TLS files cannot be read.
  FederationServer(SiteHandler* handler, const std::string& listen_address, const TlsFiles& tls,
                   std::string ca_pem, std::vector<std::string> allowed_sites,
                   const ServiceLimits& limits, std::shared_ptr<spdlog::logger> logger,
                   std::shared_ptr<CrlWatcher> crl = nullptr, AdminAccess admin = {});
  ~FederationServer();

  FederationServer(const FederationServer&) = delete;
  FederationServer& operator=(const FederationServer&) = delete;

  // The bound port.
  int port() const { return port_; }
  // Stops taking calls; calls in flight get `grace_seconds` to finish, then are cancelled.
  // Returns once every handler has returned. Idempotent.
  void Shutdown(double grace_seconds);

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
  int port_ = 0;
};

}  // namespace fedmed

#endif  // FEDMED_COORDINATOR_TRANSPORT_SERVICE_H_
