// The centralised ("pooled") baseline of a federation: what the same model reaches when the
// sites' training data are pooled in one place. Every federated result of fedmed-simulate can sit
// next to it (experiment.h writes it as baseline.json in the run directory).
//
// Same model (the [model] spec and the initial weights of [federation] seed), the same local
// training settings ([training]: optimizer, learning rate, batch size, ...), trained on the union
// of all sites' training images for rounds x local_epochs epochs (the same number of passes over
// the data as each site makes in the federation) in one TrainLocal call with one optimizer, and
// evaluated on the coordinator's held-out set ([evaluation] data and split). Without differential
// privacy, whatever [privacy] says: it is the reference the private federation is measured
// against.
#ifndef FEDMED_SIMULATOR_BASELINE_H_
#define FEDMED_SIMULATOR_BASELINE_H_

#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "common/data/image_set.h"
#include "common/metrics/classification_metrics.h"
#include "simulator/model_selection.h"
#include "simulator/simulation.h"

namespace fedmed {

struct BaselineResult {
  ClassificationMetrics metrics;  // on the held-out set
  int epochs = 0;                 // rounds x local_epochs
  int64_t train_samples = 0;      // pooled training images
  double train_seconds = 0;
  double mean_loss = 0;           // mean training cross-entropy over all epochs
  int threads = 0;                // LibTorch threads used
  uint64_t seed = 0;              // [federation] seed: initial weights and data order
  std::string eval_path;          // resolved [evaluation] data
  std::string eval_split;
  // With [simulation] select_split: the model after every epoch scored on that split and on the
  // held-out split, and the epoch chosen (model_selection.h); `metrics` stays the last epoch's.
  std::optional<ModelSelection> selection;

  // The JSON written as baseline.json: the settings above, the [training] settings and "global",
  // the metrics with the key names of metrics.jsonl, and "selection" (ModelSelection::ToJson)
  // when there is one.
  nlohmann::json ToJson(const SimulationConfig& config) const;
};

// The pooled training split: the training split of [data] path (the sites' shards together are
// exactly that split), or with [data] site_paths, the sites' training splits one after another,
// each loaded in its site_formats format as the site loads it (LoadSiteSplit); preprocessed
// with [preprocessing]. Throws DataError if a file does not load or the sites' image
// geometries or normalisations (mean/std) differ; ConfigError as LoadSiteSplit.
ImageSet PooledTrainingSet(const SimulationConfig& config, const std::string& data_root);

// Trains and evaluates the pooled baseline as described above, with `threads` LibTorch threads
// (SetComputeThreads), from the coordinator's initial model ([model] initial_weights when set)
// with its [training] frozen_layers, on the held-out set preprocessed with [preprocessing]. With
// [simulation] select_split it also scores the model after every epoch on that split and on the
// held-out split (training itself is unchanged: the same final model). Throws ConfigError when
// the config has no [evaluation] data, DataError / ConfigError / Error as TrainLocal and
// EvaluateModel do.
BaselineResult RunBaseline(const SimulationConfig& config, const std::string& data_root,
                           int threads);

}  // namespace fedmed

#endif  // FEDMED_SIMULATOR_BASELINE_H_
