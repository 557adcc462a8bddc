// The site agent: runs beside a hospital's images, trains the global model on them when the
// coordinator asks, and sends back only the model update (and aggregate evaluation metrics).
// Nothing derived from an individual image leaves the site.
//
// Boost.Asio carries what is not an RPC: SIGINT/SIGTERM (signal_set) and the exponential
// reconnect backoff (steady_timer). When the coordinator is not up yet, restarts, or the network
// fails, the agent logs why and retries after 0.5, 1, 2, ... up to [connection]
// backoff_max_seconds (with jitter), re-registering when the coordinator has forgotten it. It
// gives up only when the coordinator refuses it (certificate, allow-list, incompatible data,
// preprocessing or TorchScript architecture) or after [connection] give_up_after_seconds.
//
// The site's images are loaded in its [data] format (MedMNIST .npz, image folder, CSV manifest
// or DICOM; common/data/hospital/site_images.h), preprocessed with its [data] preprocessing keys,
// whose canonical form it announces at registration. With a [model] torchscript_path it also
// announces its script's architecture. Every train or evaluate task carries the federation's
// preprocessing and model name: the site refuses a task whose preprocessing differs from its
// own, or that names a TorchScript model when it has no torchscript_path (logged as an error;
// a train task is declined with the reason, which the coordinator logs; the site stays
// registered), and likewise a train task whose settings do not fit its model (frozen_layers
// matching no parameter, DP-SGD with frozen layers; the ConfigError of local training). Local
// training applies the site's own [data] augmentation.
//
// Files in output_dir: site.log.
//
// In one process (fedmed-simulate's threads mode), several agents may share one loaded data file
// (Options::data) and a limit on concurrent training and evaluation (Options::compute_slots), and
// drop the global model between tasks (Options::keep_global_model).
#ifndef FEDMED_SITE_AGENT_SITE_AGENT_H_
#define FEDMED_SITE_AGENT_SITE_AGENT_H_

#include <memory>
#include <string>

#include "common/config/site_config.h"

namespace fedmed {

class ComputeSlots;  // site_agent/compute_slots.h
struct MedMnist;     // common/data/medmnist.h

class SiteAgent {
 public:
  struct Options {
    // Data root for a relative [data] path (the --data flag).
    std::string data_root;
    // The contents of the .npz file at [data] path (format "medmnist"), already loaded, shared
    // read-only with other agents of this process; null = the agent loads its data itself (as
    // it always does for other formats, where this is ignored). The agent copies only its
    // shard out of it and keeps no reference after the constructor.
    std::shared_ptr<const MedMnist> data;
    // At most compute_slots->slots() trainings and evaluations at a time among the agents that
    // share it, each run on the slot's compute thread; null = no limit, and the agent trains on
    // its own thread. A slot is held from the global model's download to the upload of the
    // update (or the evaluation's end), so that only that many agents hold a model, gradients
    // and an update at once.
    std::shared_ptr<ComputeSlots> compute_slots;
    // Keep the last global model after a task, so that a later task on the same version (the
    // next round's training after this round's federated evaluation, a retried round) does not
    // download it again. false frees it after every task (the model's size, 4.8 MB for the cnn,
    // per agent between tasks): for many agents in one process.
    bool keep_global_model = true;
    // How many of its last plain updates the site keeps to send again instead of retraining
    // (trained_update.h): 2, because a coordinator records a round while the next one runs and
    // a crash in between asks for the round before the site's last again; 1 for agents whose
    // coordinator runs in their own process (it cannot restart without them).
    int kept_updates = 2;
  };

  // Loads the site's data (its shard of the configured file or folder, LoadSiteSplit), reads
  // the architecture of its [model] torchscript_path when set, and checks its certificate.
  // Throws ConfigError / DataError / CryptoError naming what is wrong (DataError for too many
  // bad image files, naming them; ConfigError naming [model] torchscript_path for a file that
  // is not a usable TorchScript model).
  SiteAgent(SiteConfig config, std::string data_root);
  // The same, with the options above.
  SiteAgent(SiteConfig config, Options options);
  ~SiteAgent();

  // Runs until the federation finishes (returns 0), Stop() or a signal (1), or the coordinator
  // refuses this site / give_up_after_seconds passes (2).
  int Run(bool handle_signals = true);

  // Thread-safe. Takes effect at once during a backoff wait or an RPC (which it cancels), and at
  // the end of local training.
  void Stop();

  class Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace fedmed

#endif  // FEDMED_SITE_AGENT_SITE_AGENT_H_
