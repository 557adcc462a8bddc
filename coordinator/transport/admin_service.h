// The coordinator's Admin service (proto/fedmed.proto, service fedmed.v1.Admin; fedmed-admin is
// its client): served by FederationServer (service.h) on the coordinator's port beside the
// Federation service. With service.cc and grpc_status.h (this folder) the only coordinator files
// that know gRPC.
//
// Transport only: every call is first authenticated as an operator (AuthenticateOperator,
// common/transport/tls.h: a certificate from the federation CA with the operator markers;
// a site's certificate gets PERMISSION_DENIED, anything else UNAUTHENTICATED; refusals are
// logged with the peer's address), then handed to the AdminHandler (admin_handler.h) with the
// operator's CN, whose Status becomes the gRPC status (grpc_status.h).
#ifndef FEDMED_COORDINATOR_TRANSPORT_ADMIN_SERVICE_H_
#define FEDMED_COORDINATOR_TRANSPORT_ADMIN_SERVICE_H_

#include <functional>
#include <memory>
#include <string>

#include "coordinator/admin_handler.h"

namespace grpc {
class Service;
}
namespace spdlog {
class logger;
}

namespace fedmed {

struct ClientAuthPolicy;

// The service, bound to `handler` (not owned; must outlive the service). `status_json` returns
// the /api/status document (coordinator/status/status_json.h) for GetStatus; it is called on
// gRPC's threads and must be thread-safe. `policy`: the federation CA and [tls] crl
// (common/transport/client_auth.h): every call is refused PERMISSION_DENIED ("revoked") once
// the operator certificate is on the CRL, also on a connection made before.
std::unique_ptr<grpc::Service> MakeAdminService(AdminHandler* handler,
                                                std::function<std::string()> status_json,
                                                std::shared_ptr<const ClientAuthPolicy> policy,
                                                std::shared_ptr<spdlog::logger> logger);

}  // namespace fedmed

#endif  // FEDMED_COORDINATOR_TRANSPORT_ADMIN_SERVICE_H_
