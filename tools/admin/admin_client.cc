#include "tools/admin/admin_client.h"

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <filesystem>

#include "common/config/tls_files.h"
#include "common/transport/tls.h"
#include "common/util/file_io.h"
#include "proto/fedmed.grpc.pb.h"

namespace fedmed {

namespace fs = std::filesystem;

AdminTarget AdminTargetFromDir(const std::string& dir, const std::string& address) {
  AdminTarget t;
  t.ca_cert = (fs::path(dir) / "ca.pem").string();
  t.cert = (fs::path(dir) / "operator.pem").string();
  t.key = (fs::path(dir) / "operator.key").string();
  t.address = address;
  if (t.address.empty()) {
    const std::string file = (fs::path(dir) / "coordinator_address").string();
    t.address = ReadFile(file, "the coordinator's address (--coordinator, or DIR/coordinator_address)");
    while (!t.address.empty() && (t.address.back() == '\n' || t.address.back() == '\r' ||
                                  t.address.back() == ' ')) {
      t.address.pop_back();
    }
    if (t.address.empty()) throw Error(file + " is empty: expected host:port of the coordinator");
  }
  return t;
}

class AdminClient::Stub {
 public:
  explicit Stub(std::shared_ptr<grpc::Channel> channel)
      : stub(v1::Admin::NewStub(std::move(channel))) {}
  std::unique_ptr<v1::Admin::Stub> stub;
};

AdminClient::AdminClient(const AdminTarget& target, double timeout_seconds)
    : address_(target.address), timeout_seconds_(timeout_seconds) {
  const TlsFiles files{target.ca_cert, target.cert, target.key};
  stub_ = std::make_unique<Stub>(
      grpc::CreateChannel(target.address, MakeChannelCredentials(files)));
}

AdminClient::~AdminClient() = default;

namespace {

// Runs one unary call with a deadline; throws AdminError when it fails.
template <class Call>
void Run(const std::string& address, double timeout_seconds, Call call) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::milliseconds(static_cast<int64_t>(timeout_seconds * 1000)));
  const grpc::Status status = call(&context);
  if (!status.ok()) {
    throw AdminError(status.error_code(), DescribeClientError(status, address));
  }
}

}  // namespace

std::string AdminClient::StatusJson() {
  v1::AdminStatusReply reply;
  Run(address_, timeout_seconds_, [&](grpc::ClientContext* c) {
    return stub_->stub->GetStatus(c, v1::AdminStatusRequest(), &reply);
  });
  return reply.status_json();
}

std::string AdminClient::Pause() {
  v1::AdminReply reply;
  Run(address_, timeout_seconds_,
      [&](grpc::ClientContext* c) { return stub_->stub->Pause(c, v1::AdminRequest(), &reply); });
  return reply.message();
}

std::string AdminClient::Resume() {
  v1::AdminReply reply;
  Run(address_, timeout_seconds_,
      [&](grpc::ClientContext* c) { return stub_->stub->Resume(c, v1::AdminRequest(), &reply); });
  return reply.message();
}

std::string AdminClient::Stop() {
  v1::AdminReply reply;
  Run(address_, timeout_seconds_,
      [&](grpc::ClientContext* c) { return stub_->stub->Stop(c, v1::AdminRequest(), &reply); });
  return reply.message();
}

std::string AdminClient::Exclude(const std::string& site, const std::string& reason) {
  v1::ExcludeRequest request;
  request.set_site(site);
  request.set_reason(reason);
  v1::AdminReply reply;
  Run(address_, timeout_seconds_,
      [&](grpc::ClientContext* c) { return stub_->stub->Exclude(c, request, &reply); });
  return reply.message();
}

std::string AdminClient::Extend(int rounds) {
  v1::ExtendRequest request;
  request.set_rounds(rounds);
  v1::AdminReply reply;
  Run(address_, timeout_seconds_,
      [&](grpc::ClientContext* c) { return stub_->stub->Extend(c, request, &reply); });
  return reply.message();
}

}  // namespace fedmed
