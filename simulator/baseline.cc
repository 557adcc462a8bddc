#include "simulator/baseline.h"

#include <chrono>
#include <cmath>

#include "common/data/hospital/site_images.h"
#include "common/data/medmnist.h"
#include "common/data/preprocess.h"
#include "common/metrics/metrics_json.h"
#include "common/model/evaluation.h"
#include "common/model/local_training.h"
#include "common/model/model_io.h"
#include "common/model/model_spec.h"
#include "common/model/model_state.h"
#include "common/util/data_path.h"
#include "common/util/error.h"
#include "coordinator/app/coordinator.h"

namespace fedmed {

namespace {

void Append(const ImageSet& part, const std::string& path, ImageSet* pooled) {
  if (pooled->labels.empty() && pooled->pixels.empty()) {
    pooled->height = part.height;
    pooled->width = part.width;
    pooled->channels = part.channels;
    pooled->mean = part.mean;
    pooled->std = part.std;
  } else if (part.mean != pooled->mean || part.std != pooled->std) {
    throw DataError(path + ": training images normalised with another mean/std than the other "
                           "sites' ([preprocessing]): their data cannot be pooled");
  } else if (part.height != pooled->height || part.width != pooled->width ||
             part.channels != pooled->channels) {
    throw DataError(path + ": " + std::to_string(part.channels) + "-channel " +
                    std::to_string(part.height) + "x" + std::to_string(part.width) +
                    " training images, unlike the other sites' files (" +
                    std::to_string(pooled->channels) + "-channel " +
                    std::to_string(pooled->height) + "x" + std::to_string(pooled->width) +
                    "): their data cannot be pooled");
  }
  pooled->pixels.insert(pooled->pixels.end(), part.pixels.begin(), part.pixels.end());
  pooled->labels.insert(pooled->labels.end(), part.labels.begin(), part.labels.end());
  pooled->num_classes = std::max(pooled->num_classes, part.num_classes);
}

}  // namespace

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

ImageSet PooledTrainingSet(const SimulationConfig& config, const std::string& data_root) {
  if (config.site_paths.empty()) {
    ImageSet train = LoadMedMnistSplit(ResolveDataPath(config.data_path, data_root), Split::kTrain);
    PreprocessImageSet(config.coordinator.preprocessing, &train);
    return train;
  }
  ImageSet pooled;
  for (int k = 1; k <= static_cast<int>(config.site_paths.size()); ++k) {
    const SiteDataConfig site = SiteDataFor(config, k);
    Append(LoadSiteSplit(site, Split::kTrain, data_root), ResolveDataPath(site.path, data_root),
           &pooled);
  }
  return pooled;
}

BaselineResult RunBaseline(const SimulationConfig& config, const std::string& data_root,
                           int threads) {
  const CoordinatorConfig& c = config.coordinator;
  if (c.eval_data.empty()) {
    throw ConfigError(config.config_path +
                      ": the pooled baseline is evaluated on the coordinator's held-out set; set "
                      "[evaluation] data (or [data] path)");
  }
  BaselineResult result;
  result.threads = threads;
  result.seed = c.seed;
  result.eval_path = ResolveDataPath(c.eval_data, data_root);
  result.eval_split = c.eval_split;
  const ImageSet train = PooledTrainingSet(config, data_root);
  const ImageSet heldout = LoadHeldOutSet(c, data_root, c.eval_split);
  const ModelSpec spec = FederationModelSpec(c, &heldout);
  ValidateModelSpec(spec, config.config_path + ": [model]");
  ModelState initial = InitialModelState(spec, c.seed);  // as the coordinator starts
  if (!c.initial_weights.empty()) initial = LoadInitialWeights(c.initial_weights, initial);

  TrainSettings settings;
  settings.local_epochs = c.rounds * c.training.local_epochs;
  settings.batch_size = c.training.batch_size;
  settings.optimizer = c.training.optimizer;
  settings.learning_rate = c.training.learning_rate;
  settings.momentum = c.training.momentum;
  settings.weight_decay = c.training.weight_decay;
  settings.seed = c.seed;
  settings.frozen_layers = c.training.frozen_layers;
  std::optional<ImageSet> selection_set;
  double selection_seconds = 0;  // evaluation inside training, not counted as training time
  if (!config.select_split.empty()) {
    selection_set = LoadHeldOutSet(c, data_root, config.select_split);
    result.selection.emplace();
    result.selection->unit = "epoch";
    result.selection->selection_split = config.select_split;
    result.selection->report_split = c.eval_split;
    settings.on_epoch_end = [&](int epoch, const ModelState& state) {
      const auto start = std::chrono::steady_clock::now();
      ScoredModel s;
      s.index = epoch;
      s.selection = EvaluateModel(spec, state, *selection_set, c.eval_batch_size);
      s.report = EvaluateModel(spec, state, heldout, c.eval_batch_size);
      result.selection->scored.push_back(std::move(s));
      selection_seconds +=
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    };
  }
  SetComputeThreads(threads);
  const TrainResult trained = TrainLocal(spec, initial, train, settings);

  ModelState final_model = initial;
  for (std::size_t t = 0; t < final_model.tensors.size(); ++t) {
    std::vector<float>& values = final_model.tensors[t].values;
    const std::vector<float>& delta = trained.delta.tensors[t].values;
    for (std::size_t i = 0; i < values.size(); ++i) values[i] += delta[i];
  }
  result.metrics = EvaluateModel(spec, final_model, heldout, c.eval_batch_size);
  result.epochs = settings.local_epochs;
  result.train_samples = trained.num_samples;
  result.train_seconds = trained.seconds - selection_seconds;
  result.mean_loss = trained.mean_loss;
  if (result.selection) result.selection->best = BestBySelectionAuc(result.selection->scored);
  return result;
}

}  // namespace fedmed
