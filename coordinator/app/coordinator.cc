#include "coordinator/app/coordinator.h"

#include <spdlog/spdlog.h>

#include <filesystem>

#include "common/crypto/crl.h"
#include "common/transport/tls.h"
#include "common/util/data_path.h"
#include "common/util/error.h"
#include "common/util/file_io.h"
#include "common/util/logging.h"
#include "coordinator/event_loop.h"
#include "coordinator/round_flow.h"
#include "coordinator/transport/service.h"
#include "coordinator/status_board.h"
#include "coordinator/status/status_json.h"
#include "coordinator/status/status_server.h"
#include "coordinator/status/status_token.h"

namespace fedmed {

class Coordinator::Impl {
 public:
  Impl(CoordinatorConfig config, Options options) : handle_signals_(options.handle_signals) {
    std::filesystem::create_directories(config.output_dir);
    log_ = MakeLogger("coordinator", config.output_dir + "/coordinator.log");
    log_->info("{}", DescribeDataRoot(options.data_root));
    ca_pem_ = ReadFile(config.tls.ca_cert, "[tls] ca_cert");
    if (!config.crl.empty()) {
      // Read and verified now: a broken [tls] crl stops the start (crl.h).
      crl_ = std::make_shared<CrlWatcher>(
          config.crl, ca_pem_, [log = log_](bool is_error, const std::string& message) {
            if (is_error) {
              log->error("{}", message);
            } else {
              log->info("{}", message);
            }
          });
    }
    SetComputeThreads(config.threads);
    FederationModel model =
        LoadFederationModel(config, options.data_root, std::move(options.initial_model),
                            options.custom_model, *log_);
    // The status server's token is read now, so that a bad [status] fails at start.
    if (!config.status.listen.empty()) status_token_ = ReadStatusTokenFile(config.status.token_file);
    config_ = config;
    flow_ = std::make_unique<RoundFlow>(std::move(config), std::move(model), ca_pem_, &loop_, log_);
  }

  ~Impl() {
    if (server_) server_->Shutdown(1.0);
  }

  int Start() {
    // The board sees every call on its way to the round flow (status_board.h); it answers the
    // status page and fedmed-admin status, so it is there with or without [status] listen.
    board_ = std::make_unique<StatusBoard>(
        flow_.get(), [flow = flow_.get()] { return flow->Snapshot(); },
        config_.output_dir + "/metrics.jsonl", config_.allowed_sites);
    SiteHandler* handler = board_.get();
    // The operator's Admin service (fedmed-admin) on the same port.
    AdminAccess admin{flow_.get(), [board = board_.get()] { return StatusJson(board->View()); }};
    server_ = std::make_unique<FederationServer>(handler, config_.listen_address, config_.tls,
                                                 ca_pem_, config_.allowed_sites,
                                                 ServiceLimits{config_.upload_idle_seconds}, log_,
                                                 crl_, std::move(admin));
    if (!config_.status.listen.empty()) StartStatusServer();
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
      // SIGHUP: re-read [tls] crl now (it is also re-read within a second of changing).
      loop_.HandleHangup([this] {
        log_->info("received SIGHUP{}", crl_ ? ", re-reading the CRL " + crl_->path() : "");
        if (crl_) crl_->Reload();
      });
    }
    loop_.Run();
    if (server_) server_->Shutdown(2.0);
    const int code = flow_->exit_code();
    log_->info("coordinator stopped (exit status {})", code);
    return code;
  }

  RoundFlow& flow() { return *flow_; }
  std::string StatusUrl() const { return status_server_ ? status_server_->url() : ""; }

 private:
  // [status]: serves the page and writes its URL (without the token) to
  // output_dir/status_url.txt, for scripts and the simulator.
  void StartStatusServer() {
    StatusServerOptions options;
    options.listen = config_.status.listen;
    options.token = status_token_;
    options.tls = config_.status.tls;
    options.cert_file = config_.tls.cert;
    options.key_file = config_.tls.key;
    status_server_ = std::make_unique<StatusServer>(
        options, [board = board_.get()] { return board->View(); }, log_);
    log_->info("status page: {} (open it with ?token=<the token in {}>)", status_server_->url(),
               config_.status.token_file);
    WriteFileAtomically(config_.output_dir + "/status_url.txt", status_server_->url() + "\n",
                        "status_url.txt");
  }

  const bool handle_signals_;
  CoordinatorConfig config_;
  std::shared_ptr<spdlog::logger> log_;
  std::string ca_pem_;
  std::shared_ptr<CrlWatcher> crl_;  // [tls] crl; null when unset
  AsioEventLoop loop_;              // outlives flow_ (its timers) and server_ (its handlers)
  std::unique_ptr<RoundFlow> flow_;
  std::string status_token_;
  std::unique_ptr<StatusBoard> board_;  // wraps flow_ for server_ (and the status page)
  std::unique_ptr<FederationServer> server_;
  std::unique_ptr<StatusServer> status_server_;  // reads board_; destroyed first
};

Coordinator::Coordinator(CoordinatorConfig config, Options options)
    : impl_(std::make_unique<Impl>(std::move(config), std::move(options))) {}
Coordinator::~Coordinator() = default;
int Coordinator::Start() { return impl_->Start(); }
int Coordinator::Run() { return impl_->Run(); }
void Coordinator::Stop() { impl_->flow().Stop(); }
std::string Coordinator::GlobalModelBytes() const { return impl_->flow().GlobalModelBytes(); }
std::string Coordinator::StatusUrl() const { return impl_->StatusUrl(); }

}  // namespace fedmed
