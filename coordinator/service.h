// The coordinator's gRPC service (proto/fedmed.proto, service fedmed.v1.Federation).
//
// Transport only: every call is first authenticated (AuthenticatePeer: certificate chains to the
// federation CA, CN on the allow-list; refusals are logged with the peer address and the reason),
// models are streamed out and updates reassembled in chunks (common/transport/chunking.h), and
// the decisions are delegated to a SiteHandler, which the Coordinator implements.
#ifndef FEDMED_COORDINATOR_SERVICE_H_
#define FEDMED_COORDINATOR_SERVICE_H_

#include <grpcpp/support/status.h>

#include <memory>
#include <string>
#include <vector>

namespace grpc {
class Service;
}
namespace spdlog {
class logger;
}

namespace fedmed {
namespace v1 {
class RegisterRequest;
class RegisterReply;
class PollRequest;
class Task;
class DownloadRequest;
class UpdateHeader;
class EvaluationReport;
class DeclineRequest;
class SecAggMessage;
class SecAggPoll;
class SecAggBroadcast;
}  // namespace v1

// A global model ready to be streamed: its version, encoding and SHA-256 (hex).
struct EncodedModel {
  int version = 0;
  std::string bytes;
  std::string sha256;
};

// What the service asks of the coordinator. `site` is always the authenticated certificate CN.
// Every method is called concurrently from gRPC threads.
class SiteHandler {
 public:
  virtual ~SiteHandler() = default;
  virtual grpc::Status Register(const std::string& site, const v1::RegisterRequest& request,
                                v1::RegisterReply* reply) = 0;
  // May block up to request.wait_ms() until there is a task for `site`.
  virtual grpc::Status Poll(const std::string& site, const v1::PollRequest& request,
                            v1::Task* task) = 0;
  virtual grpc::Status GetModel(const std::string& site, const v1::DownloadRequest& request,
                                std::shared_ptr<const EncodedModel>* model) = 0;
  // Checks an update's header before its data is received (is the site expected to send it?).
  virtual grpc::Status CheckUpdate(const std::string& site, const v1::UpdateHeader& header) = 0;
  // Takes a complete update whose digest has been checked. `transfer_seconds`: upload time.
  virtual grpc::Status AcceptUpdate(const std::string& site, const v1::UpdateHeader& header,
                                    std::string bytes, double transfer_seconds) = 0;
  virtual grpc::Status AcceptEvaluation(const std::string& site,
                                        const v1::EvaluationReport& report) = 0;
  // A site declines its training task for a round (its privacy budget would be exceeded).
  virtual grpc::Status DeclineTask(const std::string& site, const v1::DeclineRequest& request) = 0;
  // Secure aggregation: a stage message of `site` (keys, shares or unmasking shares).
  virtual grpc::Status SecAggSend(const std::string& site, const v1::SecAggMessage& message) = 0;
  // May block up to poll.wait_ms() until the stage `site` waits for is collected.
  virtual grpc::Status SecAggReceive(const std::string& site, const v1::SecAggPoll& poll,
                                     v1::SecAggBroadcast* broadcast) = 0;
  // Server-side seconds spent streaming a model download to `site`.
  virtual void RecordDownload(const std::string& site, double seconds) = 0;
};

// The service, bound to `handler` (not owned; must outlive the service).
std::unique_ptr<grpc::Service> MakeFederationService(SiteHandler* handler, std::string ca_pem,
                                                     std::vector<std::string> allowed_sites,
                                                     std::shared_ptr<spdlog::logger> logger);

}  // namespace fedmed

#endif  // FEDMED_COORDINATOR_SERVICE_H_
