#include "coordinator/transport/admin_service.h"

#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include <utility>

#include "common/transport/client_auth.h"
#include "common/transport/tls.h"
#include "coordinator/transport/grpc_status.h"
#include "proto/fedmed.grpc.pb.h"

namespace fedmed {

namespace {

class AdminService final : public v1::Admin::Service {
 public:
  AdminService(AdminHandler* handler, std::function<std::string()> status_json,
               std::shared_ptr<const ClientAuthPolicy> policy,
               std::shared_ptr<spdlog::logger> logger)
      : handler_(handler),
        status_json_(std::move(status_json)),
        policy_(std::move(policy)),
        log_(std::move(logger)) {}

  grpc::Status GetStatus(grpc::ServerContext* context, const v1::AdminStatusRequest*,
                         v1::AdminStatusReply* reply) override {
    std::string name;
    if (grpc::Status s = Authenticate(*context, "GetStatus", &name); !s.ok()) return s;
    reply->set_status_json(status_json_());
    return grpc::Status::OK;
  }

  grpc::Status Pause(grpc::ServerContext* context, const v1::AdminRequest*,
                     v1::AdminReply* reply) override {
    return Act(*context, "Pause", reply, [&](const std::string& name, std::string* outcome) {
      return handler_->Pause(name, outcome);
    });
  }

  grpc::Status Resume(grpc::ServerContext* context, const v1::AdminRequest*,
                      v1::AdminReply* reply) override {
    return Act(*context, "Resume", reply, [&](const std::string& name, std::string* outcome) {
      return handler_->Resume(name, outcome);
    });
  }

  grpc::Status Stop(grpc::ServerContext* context, const v1::AdminRequest*,
                    v1::AdminReply* reply) override {
    return Act(*context, "Stop", reply, [&](const std::string& name, std::string* outcome) {
      return handler_->StopFederation(name, outcome);
    });
  }

  grpc::Status Exclude(grpc::ServerContext* context, const v1::ExcludeRequest* request,
                       v1::AdminReply* reply) override {
    return Act(*context, "Exclude", reply, [&](const std::string& name, std::string* outcome) {
      return handler_->Exclude(name, request->site(), request->reason(), outcome);
    });
  }

  grpc::Status Extend(grpc::ServerContext* context, const v1::ExtendRequest* request,
                      v1::AdminReply* reply) override {
    return Act(*context, "Extend", reply, [&](const std::string& name, std::string* outcome) {
      return handler_->Extend(name, request->rounds(), outcome);
    });
  }

 private:
  grpc::Status Authenticate(const grpc::ServerContext& context, const char* rpc,
                            std::string* name) {
    grpc::Status s = AuthenticateOperator(context, policy_->ca_pem, name);
    if (s.ok()) s = CheckNotRevoked(context, *policy_);
    if (!s.ok()) log_->warn("admin {} from {} {}", rpc, context.peer(), s.error_message());
    return s;
  }

  template <class Action>
  grpc::Status Act(const grpc::ServerContext& context, const char* rpc, v1::AdminReply* reply,
                   Action action) {
    std::string name;
    if (grpc::Status s = Authenticate(context, rpc, &name); !s.ok()) return s;
    std::string outcome;
    const Status s = action(name, &outcome);
    if (!s.ok()) {
      log_->warn("admin {} by CN={} refused: {}", rpc, name, s.message());
      return ToGrpc(s);
    }
    reply->set_message(outcome);
    return grpc::Status::OK;
  }

  AdminHandler* const handler_;
  const std::function<std::string()> status_json_;
  const std::shared_ptr<const ClientAuthPolicy> policy_;
  std::shared_ptr<spdlog::logger> log_;
};

}  // namespace

std::unique_ptr<grpc::Service> MakeAdminService(AdminHandler* handler,
                                                std::function<std::string()> status_json,
                                                std::shared_ptr<const ClientAuthPolicy> policy,
                                                std::shared_ptr<spdlog::logger> logger) {
  return std::make_unique<AdminService>(handler, std::move(status_json), std::move(policy),
                                        std::move(logger));
}

}  // namespace fedmed
