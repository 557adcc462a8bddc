#include "coordinator/coordinator.h"

#include <spdlog/spdlog.h>

#include <filesystem>

#include "common/transport/tls.h"
#include "common/util/error.h"
#include "common/util/file_io.h"
#include "common/util/logging.h"
#include "coordinator/event_loop.h"
#include "coordinator/round_flow.h"
#include "coordinator/service.h"

namespace fedmed {

class Coordinator::Impl {
 public:
  Impl(CoordinatorConfig config, Options options) : handle_signals_(options.handle_signals) {
    std::filesystem::create_directories(config.output_dir);
    log_ = MakeLogger("coordinator", config.output_dir + "/coordinator.log");
    ca_pem_ = ReadFile(config.tls.ca_cert, "[tls] ca_cert");
    SetComputeThreads(config.threads);
    FederationModel model =
        LoadFederationModel(config, options.data_root, std::move(options.initial_model),
                            options.custom_model, *log_);
    config_ = config;
    flow_ = std::make_unique<RoundFlow>(std::move(config), std::move(model), ca_pem_, &loop_, log_);
  }

  ~Impl() {
    if (server_) server_->Shutdown(1.0);
  }

  int Start() {
    server_ = std::make_unique<FederationServer>(flow_.get(), config_.listen_address, config_.tls,
                                                 ca_pem_, config_.allowed_sites,
                                                 ServiceLimits{config_.upload_idle_seconds}, log_);
    flow_->Begin(server_->port());
    return server_->port();
  }

  int Run() {
    if (!server_) Start();
    if (handle_signals_) {
      loop_.HandleSignals([this](int signal) {
        log_->warn("received signal {}, stopping after closing files", signal);
        flow_->Stop();
      });
    }
    loop_.Run();
    if (server_) server_->Shutdown(2.0);
    const int code = flow_->exit_code();
    log_->info("coordinator stopped (exit status {})", code);
    return code;
  }

  RoundFlow& flow() { return *flow_; }

 private:
  const bool handle_signals_;
  CoordinatorConfig config_;
  std::shared_ptr<spdlog::logger> log_;
  std::string ca_pem_;
  AsioEventLoop loop_;              // outlives flow_ (its timers) and server_ (its handlers)
  std::unique_ptr<RoundFlow> flow_;
  std::unique_ptr<FederationServer> server_;
};

Coordinator::Coordinator(CoordinatorConfig config, Options options)
    : impl_(std::make_unique<Impl>(std::move(config), std::move(options))) {}
Coordinator::~Coordinator() = default;
int Coordinator::Start() { return impl_->Start(); }
int Coordinator::Run() { return impl_->Run(); }
void Coordinator::Stop() { impl_->flow().Stop(); }
std::string Coordinator::GlobalModelBytes() const { return impl_->flow().GlobalModelBytes(); }

}  // namespace fedmed
