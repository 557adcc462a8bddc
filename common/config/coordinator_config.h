// Configuration of fedmed-coordinator: a TOML file, parsed, validated and rendered here.
//
//   [coordinator] federation, listen, output_dir, threads
//   [tls]         ca_cert, cert, key, allowed_sites
//   [federation]  rounds, min_sites, sites_per_round, round_deadline_seconds,
//                 registration_timeout_seconds, seed
//   [model]       name, in_channels, num_classes, image_size
//   [training]    local_epochs, batch_size, optimizer, learning_rate, momentum, weight_decay
//   [evaluation]  data, split, federated, batch_size, checkpoint_every
//
// RenderCoordinatorConfig writes the full, commented file. [tls] ca_cert, cert, key and
// allowed_sites are required; every other key has the default shown below. Unknown sections
// and keys are errors. Relative [tls] paths and output_dir are resolved against the directory
// of the config file and stored absolute; [evaluation] data is stored as written and resolved
// by the binaries with ResolveDataPath (common/util/data_path.h).
#ifndef FEDMED_COMMON_CONFIG_COORDINATOR_CONFIG_H_
#define FEDMED_COMMON_CONFIG_COORDINATOR_CONFIG_H_

#include <cstdint>
#include <string>
#include <vector>

namespace fedmed {

class TomlFile;  // common/config/toml_util.h

// Mutual-TLS files of one party (PEM).
struct TlsFiles {
  std::string ca_cert;  // the federation CA certificate
  std::string cert;     // this party's certificate
  std::string key;      // this party's private key
};

// Local training every selected site runs in a round; sent to the sites with each task.
struct TrainingConfig {
  int local_epochs = 1;         // >= 1
  int batch_size = 32;          // >= 1
  std::string optimizer = "sgd";  // "sgd" | "adam"
  double learning_rate = 0.01;  // > 0
  double momentum = 0.9;        // SGD only, in [0, 1)
  double weight_decay = 0.0;    // L2 penalty, >= 0
};

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
  // [federation]
  int rounds = 5;                              // >= 1
  int min_sites = 2;                           // quorum per round, 1..allowed_sites.size()
  int sites_per_round = 0;                     // 0 = all registered; else min_sites..#allowed
  double round_deadline_seconds = 600;         // > 0
  double registration_timeout_seconds = 0;     // 0 = wait forever; >= 0
  uint64_t seed = 0;                           // <= 2^63 - 1 (TOML integers are signed)
  // [model]
  std::string model = "cnn";  // key `name`; a model zoo name
  int64_t in_channels = 0;    // 0 = from the evaluation data
  int64_t num_classes = 0;    // 0 = from the evaluation data; else >= 2
  int64_t image_size = 28;    // pixels per side, >= 1
  // [training]
  TrainingConfig training;
  // [evaluation]
  std::string eval_data;              // key `data`; "" = no central evaluation
  std::string eval_split = "test";    // key `split`; "train" | "val" | "test"
  bool federated_evaluation = true;   // key `federated`; sites evaluate on their test split
  int eval_batch_size = 64;           // key `batch_size`; >= 1 (64 keeps evaluation memory small)
  int checkpoint_every = 1;           // rounds between checkpoints, >= 1
};

// Settings are equal; config_path (where they came from) is not compared.
bool operator==(const TlsFiles& a, const TlsFiles& b);

// Makes the three paths absolute, relative to the directory of `config_path`.
void ResolveTlsPaths(const std::string& config_path, TlsFiles* tls);
bool operator==(const TrainingConfig& a, const TrainingConfig& b);
bool operator==(const CoordinatorConfig& a, const CoordinatorConfig& b);
inline bool operator!=(const CoordinatorConfig& a, const CoordinatorConfig& b) { return !(a == b); }

// Reads, resolves and validates the file at `path` (config_path = path as given).
// Throws ConfigError "<path>: [section] key: expected <what>, got <value>" for a value of the
// wrong type or range, an unknown section or key, a missing required key, or contradictory
// settings; "<path>:<line>:<column>: not valid TOML: ..." for a syntax error.
CoordinatorConfig LoadCoordinatorConfig(const std::string& path);

// Reads the [federation], [model], [training] and [evaluation] sections of `file` into `config`
// exactly as LoadCoordinatorConfig does, declaring their keys as accepted (see TomlFile), for
// files that embed a coordinator's settings, such as fedmed-simulate's experiment configs.
// Throws ConfigError for a value of the wrong type; the caller calls file.Finish() and validates.
void ReadFederationSections(TomlFile& file, CoordinatorConfig* config);

// Checks ranges and consistency (see the field comments; in addition, either eval_data is set or
// both in_channels and num_classes are > 0). Throws ConfigError naming config_path, section and
// key of the first violation. Called by LoadCoordinatorConfig.
void ValidateCoordinatorConfig(const CoordinatorConfig& config);

// The complete TOML file for `config`, every key with a comment, paths as they are in `config`.
// LoadCoordinatorConfig of the rendered file gives back `config` (with relative paths resolved).
std::string RenderCoordinatorConfig(const CoordinatorConfig& config);

}  // namespace fedmed

#endif  // FEDMED_COMMON_CONFIG_COORDINATOR_CONFIG_H_
