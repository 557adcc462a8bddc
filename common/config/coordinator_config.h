// Configuration of fedmed-coordinator: a TOML file, parsed, validated and rendered here.
//
//   [coordinator] federation, listen, output_dir, threads
//   [tls]         ca_cert, cert, key, allowed_sites
//   [federation]  rounds, min_sites, sites_per_round, min_available_sites, round_deadline_seconds,
//                 registration_timeout_seconds, seed
//   [model]       name, in_channels, num_classes, image_size, torchscript_path, initial_weights
//   [preprocessing] image_size, channels, normalization, mean, std, equalize
//   [training]    local_epochs, batch_size, optimizer, learning_rate, momentum, weight_decay,
//                 frozen_layers
//   [strategy]    name, proximal_mu, server_learning_rate, beta1, beta2, tau, trim_fraction
//   [secure_aggregation]  enabled, threshold, clip_range, quantization_bits,
//                 stage_timeout_seconds, neighbours
//   [evaluation]  data, split, federated, batch_size
//   [status]      listen, tls, token_file (the status server; off unless listen is set)
//
// Each section is one key table (CoordinatorConfigSections, built with common/config/
// config_schema.h): reading, validation, rendering and equality all follow from it.
// RenderCoordinatorConfig writes the full, commented file. [tls] ca_cert, cert, key and
// allowed_sites are required; every other key has the default shown below. Unknown sections
// and keys are errors. Relative [tls] paths, output_dir and [model] torchscript_path and
// initial_weights are resolved against the directory of the config file and stored absolute;
// [evaluation] data is stored as written and resolved by the binaries with ResolveDataPath
// (common/util/data_path.h). [evaluation] checkpoint_every is no longer accepted (the
// coordinator writes a checkpoint after every round, which resume needs); a file that sets it
// is refused with that reason.
#ifndef FEDMED_COMMON_CONFIG_COORDINATOR_CONFIG_H_
#define FEDMED_COMMON_CONFIG_COORDINATOR_CONFIG_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/config/config_schema.h"
#include "common/config/strategy_config.h"
#include "common/config/tls_files.h"
#include "common/data/preprocess.h"

namespace fedmed {

// Local training every selected site runs in a round; sent to the sites with each task.
struct TrainingConfig {
  int local_epochs = 1;         // >= 1
  int batch_size = 32;          // >= 1
  std::string optimizer = "sgd";  // "sgd" | "adam"
  double learning_rate = 0.01;  // > 0
  double momentum = 0.9;        // SGD only, in [0, 1)
  double weight_decay = 0.0;    // L2 penalty, >= 0
  // Fine-tuning: parameter-name prefixes, matched at dots (common/model/frozen_layers.h), that
  // local training leaves unchanged, e.g. ["conv1", "gn1"]; empty = train everything. Checked
  // here for shape (ValidateFrozenLayers) and by the coordinator at start-up against the
  // model's parameter names (MatchFrozenLayers); sent in every train task.
  std::vector<std::string> frozen_layers = {};
};

// [secure_aggregation]: the coordinator learns only the sum of the round's updates (Bonawitz et
// al., CCS 2017; common/secagg/protocol.h, docs/SECURE_AGGREGATION.md). Sites follow the
// coordinator's choice; a site that does not support it is refused at registration.
struct SecureAggregationConfig {
  bool enabled = false;
  // t: survivors needed to unmask a round; 0 = a majority of the round's selected sites
  // (floor(n/2) + 1, at least 2); else 2..#allowed_sites (a round with fewer selected sites than
  // t fails). Also the number of sites that must collude with the coordinator to see an update.
  int threshold = 0;
  // R: each value of a site's weighted update (n_k / n_max) * delta is clipped to [-R, R]
  // before quantisation; > 0 and small enough that 2 * R * #sites fits the code range.
  double clip_range = 1.0;
  // b: the sum of the sites' codes fits in b bits (8..32); 32 is the finest.
  int quantization_bits = 32;
  // Seconds the key exchange stages and the unmasking stage wait for the sites that have not
  // answered yet before going on without them; > 0.
  double stage_timeout_seconds = 30;
  // SecAgg+ (Bell et al., CCS 2020): k > 0 (even) makes each site exchange keys and masks with
  // k neighbours only, so its cost stops growing with the number of sites; the threshold then
  // applies per neighbourhood (<= k + 1; 0 = a majority of the k + 1). 0 = every other site.
  int neighbours = 0;
};

// [status]: the coordinator's status server (coordinator/status/status_server.h,
// docs/OPERATIONS.md): a live page, JSON and Prometheus metrics, behind a token.
struct StatusConfig {
  // host:port the status server listens on; "" = no status server. Port 0 = any free port (it
  // is logged). A non-loopback host (anything but 127.x.x.x, ::1, localhost) needs tls = true.
  std::string listen;
  // Serve HTTPS with the coordinator's [tls] cert and key.
  bool tls = false;
  // The file holding the access token (fedmed-pki init writes status.token, mode 0600);
  // required with listen.
  std::string token_file;
};

// Whether `host` (as ParseHostPort gives it) is a loopback address: localhost, 127.x.x.x or ::1.
// Never throws.
bool IsLoopbackHost(const std::string& host);

struct CoordinatorConfig {
  std::string config_path;  // the file this was loaded from ("" when built in code)
  // [coordinator]
  std::string federation = "fedmed";            // non-empty; shown in logs and status
  std::string listen_address = "0.0.0.0:7443";  // key `listen`; host:port, port 0 = any free
  std::string output_dir = "coordinator-out";   // checkpoints, metrics, audit log
  int threads = 1;                              // LibTorch compute threads, >= 1
  // [tls]
  TlsFiles tls;
  std::vector<std::string> allowed_sites;  // certificate CNs allowed to join; non-empty, unique
  // The federation CA's certificate revocation list (fedmed-pki revoke writes it; PEM); re-read
  // when the file changes and on SIGHUP (common/crypto/crl.h). "" = no revocation list.
  std::string crl;
  // [federation]
  int rounds = 5;                              // >= 1
  int min_sites = 2;                           // quorum per round, 1..allowed_sites.size()
  int sites_per_round = 0;                     // 0 = all registered; else min_sites..#allowed
  // Registered sites needed before the first round starts; 0 = min_sites; else
  // min_sites..#allowed (Flower's min_available_clients).
  int min_available_sites = 0;
  double round_deadline_seconds = 600;         // > 0
  double registration_timeout_seconds = 0;     // 0 = wait forever; >= 0
  uint64_t seed = 0;                           // <= 2^63 - 1 (TOML integers are signed)
  // Limits on what a site may send (docs/SECURITY.md). An update (a model delta) is refused
  // when its L2 norm exceeds max_update_norm (0 = no absolute bound) or max_update_norm_ratio
  // times the global model's L2 norm (0 = no relative bound).
  double max_update_norm = 0;                  // >= 0
  double max_update_norm_ratio = 10;           // >= 0
  // The largest training or test sample count a site may register (its FedAvg weight).
  int64_t max_site_samples = 100000000;        // >= 1
  // Consecutive refused updates after which a site is excluded from the federation.
  int max_invalid_updates = 3;                 // >= 1
  // Attempts of one round (a missed quorum, a failed secure aggregation, an aggregate that is
  // not finite) before the federation stops.
  int max_attempts = 10;                       // >= 1
  // An update upload that receives no data for this long is cancelled (0 = no limit).
  double upload_idle_seconds = 30;             // >= 0
  // [model]
  std::string model = "cnn";  // key `name`; a model zoo name, or "torchscript"
  int64_t in_channels = 0;    // 0 = from the evaluation data
  int64_t num_classes = 0;    // 0 = from the evaluation data; else >= 2
  int64_t image_size = 28;    // pixels per side, >= 1
  // With name "torchscript" (required then, and only then): the coordinator's copy of the
  // TorchScript file that defines the network (common/model/torchscript_model.h); every site
  // names its own copy in its [model] torchscript_path, and registers only with the same
  // architecture. Never sent to the sites.
  std::string torchscript_path;
  // Fine-tuning: the initial global model, read from this file instead of the zoo's
  // initialisation (or the script's own weights): a state dict or a TorchScript file
  // (LoadInitialWeights, common/model/model_io.h), checked against the model's layout at
  // start-up. "" = none. A coordinator that resumes from its output_dir ignores it.
  std::string initial_weights;
  // [preprocessing]: what every site's preprocessing must be (PreprocessSpec, with the keys of
  // the site's [data] table: image_size, channels, normalization, mean, std, equalize). The
  // default is the MedMNIST one, what a site's default [data] keys give: keep the images' size
  // and channels, (x/255 - 0.5)/0.5, no equalisation. Sites whose preprocessing differs are
  // refused at registration; the held-out [evaluation] data is preprocessed with it. A fixed
  // image_size must equal [model] image_size, and fixed channels a non-zero in_channels.
  PreprocessSpec preprocessing;
  // [training]
  TrainingConfig training;
  // [strategy]
  StrategyConfig strategy;
  // [secure_aggregation]
  SecureAggregationConfig secure_aggregation;
  // [transport]
  // How sites encode their updates (common/model/quantization.h), announced in every train task:
  // "float32" (exact), "float16" or "int8" (per-tensor scale, unbiased stochastic rounding).
  // Only "float32" with [secure_aggregation] (masked inputs are fixed-point words already).
  std::string update_encoding = "float32";
  // How long a site whose connection ended during a transfer of the round (its download of the
  // global model, its upload) keeps its place in the round, for it to reconnect and resume from
  // the bytes kept (0 = it leaves the round at once, as a site that is gone). The round's
  // deadline still applies.
  double resume_seconds = 120;  // >= 0
  // [evaluation]
  std::string eval_data;              // key `data`; "" = no central evaluation
  std::string eval_split = "test";    // key `split`; "train" | "val" | "test"
  bool federated_evaluation = true;   // key `federated`; sites evaluate on their test split
  int eval_batch_size = 64;           // key `batch_size`; >= 1 (64 keeps evaluation memory small)
  // [status]
  StatusConfig status;
};

// Every key of the section(s) is equal; config_path (where they came from) is not compared.
// Never throw.
bool operator==(const TrainingConfig& a, const TrainingConfig& b);
bool operator==(const SecureAggregationConfig& a, const SecureAggregationConfig& b);
bool operator==(const CoordinatorConfig& a, const CoordinatorConfig& b);
inline bool operator!=(const CoordinatorConfig& a, const CoordinatorConfig& b) { return !(a == b); }

// The key tables of coordinator.toml, in file order: [coordinator], [tls], [federation], [model],
// [preprocessing], [training], [strategy], [secure_aggregation], [transport], [evaluation],
// [status]. Never throws.
const ConfigSections<CoordinatorConfig>& CoordinatorConfigSections();

// The [strategy] key table (also embedded by fedmed-simulate's files). Never throws.
const ConfigSection<StrategyConfig>& StrategySection();

// Reads, resolves and validates the file at `path` (config_path = path as given).
// Throws ConfigError "<path>: [section] key: expected <what>, got <value>" for a value of the
// wrong type or range, an unknown section or key, a missing required key, or contradictory
// settings; "<path>:<line>:<column>: not valid TOML: ..." for a syntax error.
CoordinatorConfig LoadCoordinatorConfig(const std::string& path);

// Reads the [federation], [model], [preprocessing], [training], [strategy], [secure_aggregation],
// [transport] and [evaluation] sections of `file` into `config` exactly as LoadCoordinatorConfig does,
// declaring their keys as accepted (see TomlFile), for files that embed a coordinator's settings,
// such as fedmed-simulate's experiment configs. Relative [model] torchscript_path and
// initial_weights are resolved against the directory of file.path(). Throws ConfigError for a
// value of the wrong type or a retired key; the caller calls file.Finish() and validates.
void ReadFederationSections(TomlFile& file, CoordinatorConfig* config);

// Checks ranges and consistency, section by section in file order (see the field comments; in
// addition, either eval_data is set or both in_channels and num_classes are > 0; [strategy] as
// ValidateStrategyConfig; a strategy that needs each update on its own (median, trimmed_mean) is
// refused with secure aggregation; [model] name "torchscript" needs torchscript_path and
// torchscript_path needs that name; [preprocessing] as ValidatePreprocessSpec, and consistent
// with [model]; [training] frozen_layers as ValidateFrozenLayers, each error naming its key).
// Throws ConfigError naming config_path, section and key of the first violation. Called by
// LoadCoordinatorConfig.
void ValidateCoordinatorConfig(const CoordinatorConfig& config);

// The complete TOML file for `config`, every key with its comment, paths as they are in
// `config`. LoadCoordinatorConfig of the rendered file gives back `config` (with relative paths
// resolved). Never throws.
std::string RenderCoordinatorConfig(const CoordinatorConfig& config);

}  // namespace fedmed

#endif  // FEDMED_COMMON_CONFIG_COORDINATOR_CONFIG_H_
