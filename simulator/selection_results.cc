// The pooled baseline's and model selection's results as JSON, and the choice of the best model
// (baseline.h, model_selection.h): the parts of those modules without LibTorch, which
// fedmed-simulate's summaries use (simulator/CMakeLists.txt).
#include <cmath>

#include "common/metrics/metrics_json.h"
#include "common/util/error.h"
#include "simulator/baseline.h"
#include "simulator/model_selection.h"

namespace fedmed {

nlohmann::json ModelSelection::ToJson() const {
  nlohmann::json j;
  j["unit"] = unit;
  j["selection_split"] = selection_split;
  j["report_split"] = report_split;
  const ScoredModel& c = chosen();
  j["chosen"] = c.index;
  j["selection"] = MetricsToJson(c.selection);
  j["report"] = MetricsToJson(c.report);
  nlohmann::json candidates = nlohmann::json::array();
  for (const ScoredModel& s : scored) {
    const nlohmann::json sel = MetricsToJson(s.selection), rep = MetricsToJson(s.report);
    candidates.push_back({{"index", s.index},
                          {"selection_auc", sel["auc"]},
                          {"report_auc", rep["auc"]},
                          {"report_accuracy", rep["accuracy"]}});
  }
  j["candidates"] = std::move(candidates);
  return j;
}

std::size_t BestBySelectionAuc(const std::vector<ScoredModel>& scored) {
  if (scored.empty()) throw Error("model selection: no model to choose from");
  std::size_t best = scored.size();
  for (std::size_t i = 0; i < scored.size(); ++i) {
    const double auc = scored[i].selection.auc;
    if (std::isnan(auc)) continue;
    if (best == scored.size() || auc > scored[best].selection.auc) best = i;
  }
  if (best == scored.size()) {
    throw Error("model selection: no model has a defined AUC on the selection split (does it "
                "hold a single class?)");
  }
  return best;
}

nlohmann::json BaselineResult::ToJson(const SimulationConfig& config) const {
  const TrainingConfig& t = config.coordinator.training;
  nlohmann::json j;
  j["kind"] = "pooled";
  j["model"] = config.coordinator.model;
  j["train_samples"] = train_samples;
  j["epochs"] = epochs;
  j["rounds"] = config.coordinator.rounds;
  j["local_epochs"] = t.local_epochs;
  j["batch_size"] = t.batch_size;
  j["optimizer"] = t.optimizer;
  j["learning_rate"] = t.learning_rate;
  j["momentum"] = t.momentum;
  j["weight_decay"] = t.weight_decay;
  j["seed"] = seed;
  j["threads"] = threads;
  j["private"] = false;
  j["train_seconds"] = train_seconds;
  j["mean_train_loss"] = JsonNumberOrNull(mean_loss);
  j["eval_data"] = eval_path;
  j["eval_split"] = eval_split;
  j["global"] = MetricsToJson(metrics);
  if (selection) j["selection"] = selection->ToJson();
  return j;
}

}  // namespace fedmed
