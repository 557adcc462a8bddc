// The one mapping of the domain's Status (common/util/status.h) to gRPC's: the codes are gRPC's
// own. Included only by the coordinator's gRPC services (service.cc, admin_service.cc).
#ifndef FEDMED_COORDINATOR_TRANSPORT_GRPC_STATUS_H_
#define FEDMED_COORDINATOR_TRANSPORT_GRPC_STATUS_H_

#include <grpcpp/grpcpp.h>

#include "common/util/status.h"

namespace fedmed {

inline grpc::Status ToGrpc(const Status& s) {
  using C = Status::Code;
  grpc::StatusCode code = grpc::StatusCode::UNKNOWN;
  switch (s.code()) {
    case C::kOk: return grpc::Status::OK;
    case C::kCancelled: code = grpc::StatusCode::CANCELLED; break;
    case C::kInvalidArgument: code = grpc::StatusCode::INVALID_ARGUMENT; break;
    case C::kNotFound: code = grpc::StatusCode::NOT_FOUND; break;
    case C::kPermissionDenied: code = grpc::StatusCode::PERMISSION_DENIED; break;
    case C::kResourceExhausted: code = grpc::StatusCode::RESOURCE_EXHAUSTED; break;
    case C::kFailedPrecondition: code = grpc::StatusCode::FAILED_PRECONDITION; break;
    case C::kUnavailable: code = grpc::StatusCode::UNAVAILABLE; break;
    case C::kInternal: code = grpc::StatusCode::INTERNAL; break;
  }
  return grpc::Status(code, s.message());
}

}  // namespace fedmed

#endif  // FEDMED_COORDINATOR_TRANSPORT_GRPC_STATUS_H_
