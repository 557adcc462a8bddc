#include "simulator/model_selection.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <regex>

#include "common/metrics/metrics_json.h"
#include "common/model/checkpoint.h"
#include "common/model/evaluation.h"
#include "common/model/local_training.h"
#include "common/model/model_spec.h"
#include "common/model/model_state.h"
#include "common/util/error.h"
#include "coordinator/app/coordinator.h"
#include "simulator/baseline.h"

namespace fedmed {

namespace fs = std::filesystem;

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

ModelSelection SelectCheckpoint(const SimulationConfig& config, const std::string& data_root,
                                const std::string& checkpoint_dir) {
  if (config.select_split.empty()) {
    throw ConfigError(config.config_path + ": [simulation] select_split is not set");
  }
  std::vector<std::pair<int, fs::path>> files;
  const std::regex name(R"(round-(\d+)\.pt)");
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(checkpoint_dir, ec)) {
    std::smatch m;
    const std::string file = entry.path().filename().string();
    if (std::regex_match(file, m, name)) files.emplace_back(std::stoi(m[1].str()), entry.path());
  }
  if (files.empty()) {
    throw Error(checkpoint_dir + ": no round-NNNN.pt checkpoint to select from" +
                (ec ? " (" + ec.message() + ")" : std::string()));
  }
  std::sort(files.begin(), files.end());

  const CoordinatorConfig& c = config.coordinator;
  const ImageSet selection_set = LoadHeldOutSet(c, data_root, config.select_split);
  const ImageSet report_set = LoadHeldOutSet(c, data_root, c.eval_split);
  const ModelSpec spec = FederationModelSpec(c, &report_set);
  ValidateModelSpec(spec, config.config_path + ": [model]");
  const ModelState layout = InitialModelState(spec, config.coordinator.seed);
  ModelSelection result;
  result.unit = "round";
  result.selection_split = config.select_split;
  result.report_split = config.coordinator.eval_split;
  const int batch = config.coordinator.eval_batch_size;
  for (const auto& [round, path] : files) {
    const ModelState state = LoadCheckpoint(path.string());
    CheckSameLayout(layout, state, "checkpoint " + path.string());
    ScoredModel s;
    s.index = round;
    s.selection = EvaluateModel(spec, state, selection_set, batch);
    s.report = EvaluateModel(spec, state, report_set, batch);
    result.scored.push_back(std::move(s));
  }
  result.best = BestBySelectionAuc(result.scored);
  return result;
}

}  // namespace fedmed
