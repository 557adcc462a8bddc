// Model selection on a validation split: which round of a federation (or which epoch of the
// pooled baseline) to report. Following the protocol of MedMNIST v2 (Yang et al., "MedMNIST v2",
// Scientific Data 10, 41, 2023: every model is trained for a fixed number of epochs and the
// checkpoint with the best AUC on the validation split is the one evaluated on the test split),
// every saved model is scored on the selection split ([simulation] select_split, normally "val")
// and on the report split ([evaluation] split, normally "test"); the model with the highest
// selection-split AUC is chosen, and its report-split metrics are what a result table shows
// beside the final round's. The report split never influences the choice.
//
// For a federation the models are the coordinator's per-round checkpoints
// (<run>/coordinator/checkpoints/round-NNNN.pt, written after every round); for the pooled
// baseline, the model after each epoch (baseline.h).
#ifndef FEDMED_SIMULATOR_MODEL_SELECTION_H_
#define FEDMED_SIMULATOR_MODEL_SELECTION_H_

#include <cstddef>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/metrics/classification_metrics.h"
#include "simulator/simulation.h"

namespace fedmed {

// One candidate model and its scores.
struct ScoredModel {
  int index = 0;                        // 1-based round (federation) or epoch (baseline)
  ClassificationMetrics selection;      // on the selection split
  ClassificationMetrics report;         // on the report split
};

struct ModelSelection {
  std::string unit;             // "round" | "epoch": what ScoredModel::index counts
  std::string selection_split;  // e.g. "val"
  std::string report_split;     // e.g. "test"
  std::vector<ScoredModel> scored;  // in index order
  std::size_t best = 0;             // position in `scored` of the chosen model

  const ScoredModel& chosen() const { return scored.at(best); }

  // {"unit", "selection_split", "report_split", "chosen": index, "selection": metrics,
  //  "report": metrics (of the chosen model), "candidates": [{index, selection_auc,
  //  report_auc, report_accuracy}, ...]}; metrics in metrics.jsonl's form (MetricsToJson,
  //  common/metrics/metrics_json.h).
  nlohmann::json ToJson() const;
};

// The position in `scored` of the model with the highest selection-split AUC; ties go to the
// earliest (fewer rounds or epochs); a NaN AUC (a split with one class) never wins.
// Throws Error when `scored` is empty or no AUC is a number.
std::size_t BestBySelectionAuc(const std::vector<ScoredModel>& scored);

// Scores every checkpoint round-NNNN.pt in `checkpoint_dir` (a run's coordinator/checkpoints) on
// config.select_split and on [evaluation] split (LoadHeldOutSet, coordinator/federation_model.h), with
// [evaluation] batch_size, and chooses one by
// BestBySelectionAuc. Takes about two held-out evaluations per checkpoint (cnn on
// PneumoniaMNIST: ~0.3 s each on 2 cores). Throws ConfigError when config.select_split is empty,
// Error when the directory holds no round checkpoint, FormatError when one does not load or does
// not fit the model (naming the file).
ModelSelection SelectCheckpoint(const SimulationConfig& config, const std::string& data_root,
                                const std::string& checkpoint_dir);

}  // namespace fedmed

#endif  // FEDMED_SIMULATOR_MODEL_SELECTION_H_
