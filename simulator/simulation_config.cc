#include "simulator/simulation_config.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <thread>
#include <vector>

#include "common/config/toml_util.h"
#include "common/data/site_data_config.h"
#include "common/model/frozen_layers.h"
#include "common/util/error.h"
#include "simulator/experiment.h"

namespace fedmed {

int ComputeThreads(const SimulationConfig& config) {
  if (config.compute_threads > 0) return config.compute_threads;
  return std::max(1u, std::thread::hardware_concurrency());
}

SiteDataConfig SiteDataFor(const SimulationConfig& config, int k) {
  SiteDataConfig data;
  data.preprocess = config.coordinator.preprocessing;
  if (!config.site_paths.empty()) {
    data.path = config.site_paths.at(static_cast<size_t>(k - 1));
    if (!config.site_formats.empty()) data.format = config.site_formats.at(static_cast<size_t>(k - 1));
    data.partition = "none";
    data.shard = 1;
    data.num_shards = 1;
    return data;
  }
  data.path = config.data_path;
  data.partition = config.partition;
  data.shard = k;
  data.num_shards = config.sites;
  data.alpha = config.alpha;
  data.seed = config.data_seed;
  return data;
}

void ValidateSimulationConfig(const SimulationConfig& c) {
  const std::string& path = c.config_path;
  for (const auto& [k, round] : c.kill_sites) {
    if (c.mode != "process") {
      throw ConfigError("--kill-site needs process mode (a thread cannot be killed alone)");
    }
    if (k < 1 || k > c.sites || round < 1 || round > c.coordinator.rounds) {
      throw ConfigError("--kill-site " + std::to_string(k) + "@" + std::to_string(round) +
                        ": expected a site in 1.." + std::to_string(c.sites) + " and a round in 1.." +
                        std::to_string(c.coordinator.rounds));
    }
  }
  if (c.sites < 1) ThrowBadSetting(path, "simulation", "sites", "an integer >= 1", std::to_string(c.sites));
  if (c.mode != "process" && c.mode != "threads") {
    ThrowBadSetting(path, "simulation", "mode", "\"process\" or \"threads\"", "\"" + c.mode + "\"");
  }
  if (c.site_threads < 1) {
    ThrowBadSetting(path, "simulation", "site_threads", "an integer >= 1",
                    std::to_string(c.site_threads));
  }
  if (c.compute_threads < 0) {
    ThrowBadSetting(path, "simulation", "compute_threads", "an integer >= 0 (0 = all cores)",
                    std::to_string(c.compute_threads));
  }
  if (!c.select_split.empty()) {
    if (c.select_split != "train" && c.select_split != "val" && c.select_split != "test") {
      ThrowBadSetting(path, "simulation", "select_split",
                      "\"val\" (or \"train\"; \"\" = no model selection)",
                      TomlString(c.select_split));
    }
    if (c.select_split == c.coordinator.eval_split) {
      ThrowBadSetting(path, "simulation", "select_split",
                      "another split than [evaluation] split (choosing a model on the split it is "
                      "reported on would overstate its score)",
                      TomlString(c.select_split));
    }
  }
  if (c.partition != "iid" && c.partition != "dirichlet" && c.partition != "quantity") {
    ThrowBadSetting(path, "data", "partition", "\"iid\", \"dirichlet\" or \"quantity\"",
                    "\"" + c.partition + "\"");
  }
  if (!(c.alpha > 0) || !std::isfinite(c.alpha)) {
    ThrowBadSetting(path, "data", "alpha", "a finite number > 0", TomlDouble(c.alpha));
  }
  if (c.site_paths.empty() && c.data_path.empty()) {
    ThrowBadSetting(path, "data", "path", "the data file to split across the sites (or "
                    "site_paths, one file per site)", "nothing");
  }
  if (!c.site_paths.empty()) {
    if (static_cast<int>(c.site_paths.size()) != c.sites) {
      ThrowBadSetting(path, "simulation", "sites",
                      "the number of [data] site_paths (" + std::to_string(c.site_paths.size()) +
                          "), or no value",
                      std::to_string(c.sites));
    }
    for (const std::string& p : c.site_paths) {
      if (p.empty()) ThrowBadSetting(path, "data", "site_paths", "non-empty paths", "\"\"");
    }
  }
  if (!c.site_formats.empty()) {
    if (c.site_formats.size() != c.site_paths.size()) {
      ThrowBadSetting(path, "data", "site_formats",
                      "one format per [data] site_paths entry (" +
                          std::to_string(c.site_paths.size()) + ")",
                      std::to_string(c.site_formats.size()) + " formats");
    }
    for (const std::string& f : c.site_formats) {
      if (!ParseDataFormat(f).has_value()) {
        ThrowBadSetting(path, "data", "site_formats",
                        "\"medmnist\", \"image_folder\", \"csv\" or \"dicom\" for each site",
                        TomlString(f));
      }
    }
  }
  ValidatePreprocessSpec(c.coordinator.preprocessing, SectionName(path, "preprocessing"));
  const bool scripted = c.coordinator.model == "torchscript";
  if (scripted == c.coordinator.torchscript_path.empty()) {
    ThrowBadSetting(path, "model", "torchscript_path",
                    "the TorchScript file when (and only when) name = \"torchscript\"",
                    TomlString(c.coordinator.torchscript_path) + " with name = " +
                        TomlString(c.coordinator.model));
  }
  try {
    ValidateFrozenLayers(c.coordinator.training.frozen_layers);
  } catch (const ConfigError& e) {
    throw ConfigError(SettingName(path, "training", e.what()));
  }
  ValidateSitePrivacyConfig(path, c.privacy);
  if (!c.budget_epsilon_per_site.empty()) {
    if (static_cast<int>(c.budget_epsilon_per_site.size()) != c.sites) {
      ThrowBadSetting(path, "privacy", "budget_epsilon_per_site",
                      "one budget per site (" + std::to_string(c.sites) + " numbers)",
                      std::to_string(c.budget_epsilon_per_site.size()) + " numbers");
    }
    for (int k = 0; k < c.sites; ++k) {
      SitePrivacyConfig site = c.privacy;
      site.budget_epsilon = c.budget_epsilon_per_site[static_cast<size_t>(k)];
      ValidateSitePrivacyConfig(path, site);
    }
  }
  ValidateStrategyConfig(c.coordinator.strategy, path);
}

SimulationConfig LoadSimulationConfig(const std::string& path) {
  TomlFile file(path);
  SimulationConfig c;
  c.config_path = path;
  file.Read("simulation", "name", &c.name);
  int sites = 0;
  file.Read("simulation", "sites", &sites);
  file.Read("simulation", "output_dir", &c.output_root);
  file.Read("simulation", "mode", &c.mode);
  file.Read("simulation", "site_threads", &c.site_threads);
  file.Read("simulation", "compute_threads", &c.compute_threads);
  file.Read("simulation", "baseline", &c.baseline);
  file.Read("simulation", "plots", &c.plots);
  file.Read("simulation", "status", &c.status);
  file.Read("simulation", "select_split", &c.select_split);
  file.Read("data", "path", &c.data_path);
  file.Read("data", "partition", &c.partition);
  file.Read("data", "alpha", &c.alpha);
  file.Read("data", "seed", &c.data_seed);
  file.Read("data", "site_paths", &c.site_paths);
  file.Read("data", "site_formats", &c.site_formats);
  c.coordinator.config_path = path;
  ReadFederationSections(file, &c.coordinator);  // resolves [model] paths against `path`
  ReadSitePrivacySection(file, &c.privacy);
  file.Read("privacy", "budget_epsilon_per_site", &c.budget_epsilon_per_site);
  file.Read("sweep", "strategy", &c.sweep.strategy);
  file.Read("sweep", "alpha", &c.sweep.alpha);
  std::vector<double> sweep_sites, sweep_seeds;
  file.Read("sweep", "sites", &sweep_sites);
  file.Read("sweep", "epsilon", &c.sweep.epsilon);
  file.Read("sweep", "seed", &sweep_seeds);
  file.Finish();
  for (const double v : sweep_sites) {
    if (!(v >= 1 && v <= 100000 && v == std::floor(v))) {
      ThrowBadSetting(path, "sweep", "sites", "integers >= 1", TomlDouble(v));
    }
    c.sweep.sites.push_back(static_cast<int>(v));
  }
  for (const double v : sweep_seeds) {
    if (!(v >= 0 && v <= 9007199254740992.0 && v == std::floor(v))) {
      ThrowBadSetting(path, "sweep", "seed", "integers >= 0", TomlDouble(v));
    }
    c.sweep.seed.push_back(static_cast<uint64_t>(v));
  }
  // sites: from the config, else one per site file, else 3.
  c.sites = sites != 0 ? sites : (c.site_paths.empty() ? 3 : static_cast<int>(c.site_paths.size()));
  if (c.coordinator.eval_data.empty()) c.coordinator.eval_data = c.data_path;
  if (c.sweep.empty()) {
    ValidateSimulationConfig(c);
  } else {
    ExpandSweep(c);  // validates every grid point (the base may need the sweep's values)
  }
  return c;
}

}  // namespace fedmed
