// The site agent: runs beside a hospital's images, trains the global model on them when the
// coordinator asks, and sends back only the model update (and aggregate evaluation metrics).
// Nothing derived from an individual image leaves the site.
//
// Boost.Asio carries what is not an RPC: SIGINT/SIGTERM (signal_set) and the exponential
// reconnect backoff (steady_timer). When the coordinator is not up yet, restarts, or the network
// fails, the agent logs why and retries after 0.5, 1, 2, ... up to [connection]
// backoff_max_seconds (with jitter), re-registering when the coordinator has forgotten it. It
// gives up only when the coordinator refuses it (certificate, allow-list, incompatible data) or
// after [connection] give_up_after_seconds.
//
// Files in output_dir: site.log.
#ifndef FEDMED_SITE_AGENT_SITE_AGENT_H_
#define FEDMED_SITE_AGENT_SITE_AGENT_H_

#include <memory>
#include <string>

#include "common/config/site_config.h"

namespace fedmed {

class SiteAgent {
 public:
  // Loads the site's data (its shard of the configured file) and checks its certificate.
  // Throws ConfigError / DataError / CryptoError naming what is wrong.
  SiteAgent(SiteConfig config, std::string data_root);
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
