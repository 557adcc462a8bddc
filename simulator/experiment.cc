#include "simulator/experiment.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iomanip>
#include <map>
#include <optional>
#include <set>
#include <sstream>

#include "common/config/site_config.h"
#include "common/config/toml_util.h"
#include "common/metrics/metrics_json.h"
#include "common/util/error.h"
#include "common/util/file_io.h"
#include "common/util/process.h"
#include "simulator/baseline.h"
#include "simulator/model_selection.h"
#include "simulator/run_directory.h"

namespace fedmed {

namespace fs = std::filesystem;

namespace {

// Shortest readable text of a swept number: 0.3, 100, 1e-05.
std::string Compact(double v) {
  std::ostringstream out;
  out << v;
  return out.str();
}

template <typename T>
void CheckUnique(const std::vector<T>& values, const std::string& file, const std::string& key) {
  std::set<T> seen;
  for (const T& v : values) {
    if (!seen.insert(v).second) {
      std::ostringstream got;
      got << v;
      ThrowBadSetting(file, "sweep", key, "distinct values", got.str() + " twice");
    }
  }
}

// Re-throws a ConfigError raised by validating a grid point with the point's values in front.
[[noreturn]] void ThrowForPoint(const std::string& file, const std::string& label,
                                const ConfigError& e) {
  throw ConfigError(SettingName(file, "sweep", "") + " grid point " + label + ": " + e.what());
}

struct Row {
  SweepPoint point;
  SimulationResult result;
  std::optional<BaselineResult> baseline;
  std::optional<ModelSelection> selection;  // with [simulation] select_split
};

nlohmann::json Metric(const nlohmann::json& metrics, const char* key) {
  return metrics.is_object() ? metrics.value(key, nlohmann::json()) : nlohmann::json();
}

std::string CsvNumber(const nlohmann::json& v) {
  if (!v.is_number()) return "";
  std::ostringstream out;
  out << std::setprecision(6) << v.get<double>();
  return out.str();
}

void WriteSweepTables(const fs::path& dir, const SimulationConfig& base,
                      const std::string& command_line, const std::vector<Row>& rows,
                      std::size_t total) {
  std::vector<std::string> keys;
  if (!rows.empty()) {
    for (const auto& [key, value] : rows.front().point.values) keys.push_back(key);
  }
  std::ostringstream csv;
  csv << "run";
  for (const std::string& k : keys) csv << "," << k;
  csv << ",exit_status,rounds_completed,global_acc,global_auc,federated_acc,federated_auc,"
         "wall_seconds,peak_rss_mib";
  if (base.baseline) csv << ",baseline_acc,baseline_auc";
  const bool select = !base.select_split.empty();
  if (select) {
    csv << ",selected_round,selected_acc,selected_auc";
    if (base.baseline) csv << ",baseline_selected_epoch,baseline_selected_acc,baseline_selected_auc";
  }
  csv << ",run_dir\n";
  std::ostringstream md;
  md << "# Sweep `" << base.name << "`\n\n"
     << "Command: `" << command_line << "`  \n"
     << "Config: `" << base.config_path << "`; mode " << base.mode << ", rounds "
     << base.coordinator.rounds << ", local epochs " << base.coordinator.training.local_epochs
     << ", model " << base.coordinator.model << "; final global metrics on the "
     << base.coordinator.eval_split << " split";
  if (base.baseline) md << "; pooled = the centralised baseline (same model and epochs of data)";
  if (base.mode == "threads") md << "; peak RSS: of this process so far (it ran the earlier rows too)";
  if (select) {
    md << "; \"sel.\" = the round (pooled: the epoch) with the best AUC on the "
       << base.select_split << " split, and its metrics on the " << base.coordinator.eval_split
       << " split (simulator/model_selection.h)";
  }
  md << ". " << rows.size() << " of " << total << " runs done.\n\n| run |";
  for (const std::string& k : keys) md << " " << k << " |";
  md << " status | rounds | ACC | AUC | federated ACC | federated AUC | wall s | peak RSS MiB |";
  if (base.baseline) md << " pooled ACC | pooled AUC |";
  if (select) {
    md << " sel. round | sel. ACC | sel. AUC |";
    if (base.baseline) md << " pooled sel. epoch | pooled sel. ACC | pooled sel. AUC |";
  }
  md << "\n|---|";
  for (std::size_t i = 0; i < keys.size(); ++i) md << "---|";
  md << "---|---|---|---|---|---|---|---|";
  if (base.baseline) md << "---|---|";
  if (select) md << (base.baseline ? "---|---|---|---|---|---|" : "---|---|---|");
  md << "\n";
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const Row& r = rows[i];
    const std::string run = fs::path(r.result.run_dir).filename().string();
    csv << run;
    md << "| " << run << " |";
    for (const auto& [key, value] : r.point.values) {
      csv << "," << value;
      md << " " << value << " |";
    }
    const nlohmann::json& g = r.result.final_global;
    const nlohmann::json& f = r.result.final_federated;
    csv << "," << r.result.exit_status << "," << r.result.rounds_completed << ","
        << CsvNumber(Metric(g, "accuracy")) << "," << CsvNumber(Metric(g, "auc")) << ","
        << CsvNumber(Metric(f, "accuracy")) << "," << CsvNumber(Metric(f, "auc")) << ","
        << CsvNumber(r.result.wall_seconds) << "," << CsvNumber(r.result.peak_rss_mib);
    md << " " << r.result.exit_status << " | " << r.result.rounds_completed << " | "
       << FormatNumber(Metric(g, "accuracy")) << " | " << FormatNumber(Metric(g, "auc")) << " | "
       << FormatNumber(Metric(f, "accuracy")) << " | " << FormatNumber(Metric(f, "auc")) << " | "
       << FormatNumber(r.result.wall_seconds, 1) << " | "
       << FormatNumber(r.result.peak_rss_mib, 0) << " |";
    if (base.baseline) {
      const nlohmann::json b =
          r.baseline ? MetricsToJson(r.baseline->metrics) : nlohmann::json::object();
      csv << "," << CsvNumber(Metric(b, "accuracy")) << "," << CsvNumber(Metric(b, "auc"));
      md << " " << FormatNumber(Metric(b, "accuracy")) << " | " << FormatNumber(Metric(b, "auc"))
         << " |";
    }
    if (select) {
      auto cells = [&](const std::optional<ModelSelection>& sel) {
        const nlohmann::json m =
            sel ? MetricsToJson(sel->chosen().report) : nlohmann::json::object();
        const std::string index = sel ? std::to_string(sel->chosen().index) : "";
        csv << "," << index << "," << CsvNumber(Metric(m, "accuracy")) << ","
            << CsvNumber(Metric(m, "auc"));
        md << " " << (index.empty() ? "-" : index) << " | " << FormatNumber(Metric(m, "accuracy"))
           << " | " << FormatNumber(Metric(m, "auc")) << " |";
      };
      cells(r.selection);
      if (base.baseline) cells(r.baseline ? r.baseline->selection : std::nullopt);
    }
    csv << "," << r.result.run_dir << "\n";
    md << "\n";
  }
  WriteFileAtomically((dir / "sweep.csv").string(), csv.str(), "sweep table");
  WriteFileAtomically((dir / "sweep.md").string(), md.str(), "sweep table");
}

// The baseline of `config`, trained once per seed (the pooled data do not depend on how the
// sites split them, on the strategy or on privacy).
const BaselineResult& BaselineFor(const SimulationConfig& config, const std::string& data_root,
                                  std::map<uint64_t, BaselineResult>* cache,
                                  std::ostream& progress) {
  auto it = cache->find(config.coordinator.seed);
  if (it != cache->end()) return it->second;
  const int threads = ComputeThreads(config);
  progress << "\npooled baseline: training " << config.coordinator.model << " on all sites' "
           << "training images together for " << config.coordinator.rounds << " x "
           << config.coordinator.training.local_epochs << " epochs (" << threads
           << " LibTorch threads, seed " << config.coordinator.seed << ")" << std::endl;
  return cache->emplace(config.coordinator.seed, RunBaseline(config, data_root, threads))
      .first->second;
}

void PrintSelection(const char* what, const ModelSelection& sel, std::ostream& progress) {
  const ScoredModel& c = sel.chosen();
  progress << what << ": " << sel.unit << " " << c.index << " of " << sel.scored.size()
           << " has the best " << sel.selection_split << " AUC ("
           << FormatNumber(MetricsToJson(c.selection)["auc"]) << "); on the " << sel.report_split
           << " split: ACC " << FormatNumber(MetricsToJson(c.report)["accuracy"]) << ", AUC "
           << FormatNumber(MetricsToJson(c.report)["auc"]) << std::endl;
}

void PrintComparison(const SimulationResult& result, const BaselineResult& b,
                     std::ostream& progress) {
  const nlohmann::json pooled = MetricsToJson(b.metrics);
  const nlohmann::json& fed = result.final_global;
  progress << "pooled baseline (" << b.train_samples << " training images, " << b.epochs
           << " epochs, " << FormatNumber(b.train_seconds, 1) << " s): ACC "
           << FormatNumber(Metric(pooled, "accuracy")) << ", AUC "
           << FormatNumber(Metric(pooled, "auc")) << "\nfederated (final round):          ACC "
           << FormatNumber(Metric(fed, "accuracy")) << ", AUC " << FormatNumber(Metric(fed, "auc"));
  const nlohmann::json fa = Metric(fed, "auc"), pa = Metric(pooled, "auc");
  if (fa.is_number() && pa.is_number()) {
    progress << " (AUC federated - pooled: " << std::showpos << std::fixed << std::setprecision(4)
             << fa.get<double>() - pa.get<double>() << std::noshowpos << ")";
  }
  progress << std::endl;
  if (b.selection) PrintSelection("pooled baseline, model selection", *b.selection, progress);
}

// What follows a successful federation: model selection on its checkpoints (selection.json) and
// the pooled baseline beside it (baseline.json), as the config asks.
void FinishRow(const SimulationConfig& config, const std::string& data_root,
               std::map<uint64_t, BaselineResult>* baselines, Row* row, std::ostream& progress) {
  if (row->result.exit_status != 0) {
    if (config.baseline || !config.select_split.empty()) {
      progress << "model selection and pooled baseline skipped: the federation failed"
               << std::endl;
    }
    return;
  }
  const fs::path run_dir(row->result.run_dir);
  if (!config.select_split.empty()) {
    row->selection = SelectCheckpoint(config, data_root,
                                      (run_dir / "coordinator" / "checkpoints").string());
    WriteFileAtomically((run_dir / "selection.json").string(),
                        row->selection->ToJson().dump(2) + "\n", "model selection");
    PrintSelection("federation, model selection", *row->selection, progress);
  }
  if (config.baseline) {
    const BaselineResult& b = BaselineFor(config, data_root, baselines, progress);
    row->baseline = b;
    WriteFileAtomically((run_dir / "baseline.json").string(), b.ToJson(config).dump(2) + "\n",
                        "baseline result");
    PrintComparison(row->result, b, progress);
  }
}

// A finished run as RunSimulation returned it, read back from its summary.json.
SimulationResult ReadRunResult(const fs::path& run_dir) {
  const fs::path file = run_dir / "summary.json";
  std::string text;
  try {
    text = ReadFile(file.string(), "run summary");
  } catch (const Error& e) {
    throw Error(std::string(e.what()) + " (is " + run_dir.string() + " a run?)");
  }
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw FormatError(file.string() + ": not JSON (" + e.what() + ")");
  }
  SimulationResult r;
  r.run_dir = fs::absolute(run_dir).string();
  r.exit_status = j.value("exit_status", 1);
  r.wall_seconds = j.value("wall_seconds", 0.0);
  r.peak_rss_mib = j.value("peak_rss_mib", 0.0);
  r.rounds_completed = j.value("rounds_completed", 0);
  r.final_global = j.value("global", nlohmann::json());
  r.final_federated = j.value("federated", nlohmann::json());
  return r;
}

// "01".."99" (or "001".. from 100 runs on): the number of grid point i (0-based) of `count`.
std::string RunNumber(std::size_t i, std::size_t count) {
  std::ostringstream number;
  number << std::setw(count >= 100 ? 3 : 2) << std::setfill('0') << (i + 1);
  return number.str();
}

// The row of grid point i of `points` in sweep directory `dir` of sweep `name`: the point, run
// in dir/NN-<slug> under the name <name>-NN.
Row RowFor(const std::vector<SweepPoint>& points, std::size_t i, const fs::path& dir,
           const std::string& name) {
  Row row;
  row.point = points[i];
  const std::string number = RunNumber(i, points.size());
  row.point.config.run_dir = (dir / (number + "-" + row.point.slug)).string();
  row.point.config.name = name + "-" + number;
  return row;
}

}  // namespace

StrategyConfig StrategyForName(const StrategyConfig& base, const std::string& name) {
  auto among = [&name](std::initializer_list<const char*> names) {
    return std::any_of(names.begin(), names.end(), [&name](const char* n) { return name == n; });
  };
  StrategyConfig s = base;
  s.name = name;
  if (!among({"fedprox"})) s.proximal_mu.reset();
  if (!among({"fedadam", "fedyogi", "fedadagrad"})) {
    s.server_learning_rate.reset();
    s.beta1.reset();
    s.tau.reset();
  }
  if (!among({"fedadam", "fedyogi"})) s.beta2.reset();
  if (!among({"trimmed_mean"})) s.trim_fraction.reset();
  return s;
}

std::vector<SweepPoint> ExpandSweep(const SimulationConfig& base) {
  const SweepConfig& sweep = base.sweep;
  const std::string& file = base.config_path;
  CheckUnique(sweep.strategy, file, "strategy");
  CheckUnique(sweep.alpha, file, "alpha");
  CheckUnique(sweep.sites, file, "sites");
  CheckUnique(sweep.epsilon, file, "epsilon");
  CheckUnique(sweep.seed, file, "seed");
  if (!sweep.alpha.empty() && base.partition != "dirichlet" && base.partition != "quantity") {
    ThrowBadSetting(file, "sweep", "alpha",
                    "[data] partition \"dirichlet\" or \"quantity\" (alpha is their concentration)",
                    "partition \"" + base.partition + "\"" +
                        (base.site_paths.empty() ? "" : " with site_paths"));
  }
  if (!sweep.alpha.empty() && !base.site_paths.empty()) {
    ThrowBadSetting(file, "sweep", "alpha", "one data file split across the sites",
                    "[data] site_paths (one file per site)");
  }
  if (!sweep.sites.empty() && !base.site_paths.empty()) {
    ThrowBadSetting(file, "sweep", "sites", "one data file split across the sites",
                    "[data] site_paths (one file per site)");
  }
  if (!sweep.sites.empty() && !base.budget_epsilon_per_site.empty()) {
    ThrowBadSetting(file, "sweep", "sites", "no [privacy] budget_epsilon_per_site (one per site)",
                    "both");
  }
  if (!sweep.epsilon.empty()) {
    if (!base.privacy.enabled()) {
      ThrowBadSetting(file, "sweep", "epsilon",
                      "a [privacy] mode (\"dp-sgd\" or \"update\") whose target_epsilon and "
                      "budget_epsilon it sets",
                      "mode \"none\"");
    }
    if (base.privacy.noise_multiplier != 0) {
      ThrowBadSetting(file, "sweep", "epsilon",
                      "no [privacy] noise_multiplier (the noise is calibrated to each epsilon)",
                      "noise_multiplier = " + TomlDouble(base.privacy.noise_multiplier));
    }
    if (!base.budget_epsilon_per_site.empty()) {
      ThrowBadSetting(file, "sweep", "epsilon", "no [privacy] budget_epsilon_per_site", "both");
    }
  }

  // Each axis: (key, number of values, apply value i).
  struct Axis {
    std::string key;
    std::size_t count;
    std::function<std::string(std::size_t, SimulationConfig*)> apply;  // returns the value text
  };
  std::vector<Axis> axes;
  if (!sweep.strategy.empty()) {
    axes.push_back({"strategy", sweep.strategy.size(), [&](std::size_t i, SimulationConfig* c) {
                      c->coordinator.strategy =
                          StrategyForName(base.coordinator.strategy, sweep.strategy[i]);
                      return sweep.strategy[i];
                    }});
  }
  if (!sweep.alpha.empty()) {
    axes.push_back({"alpha", sweep.alpha.size(), [&](std::size_t i, SimulationConfig* c) {
                      c->alpha = sweep.alpha[i];
                      return Compact(sweep.alpha[i]);
                    }});
  }
  if (!sweep.sites.empty()) {
    axes.push_back({"sites", sweep.sites.size(), [&](std::size_t i, SimulationConfig* c) {
                      c->sites = sweep.sites[i];
                      return std::to_string(sweep.sites[i]);
                    }});
  }
  if (!sweep.epsilon.empty()) {
    axes.push_back({"epsilon", sweep.epsilon.size(), [&](std::size_t i, SimulationConfig* c) {
                      c->privacy.target_epsilon = sweep.epsilon[i];
                      c->privacy.budget_epsilon = sweep.epsilon[i];
                      return Compact(sweep.epsilon[i]);
                    }});
  }
  if (!sweep.seed.empty()) {
    axes.push_back({"seed", sweep.seed.size(), [&](std::size_t i, SimulationConfig* c) {
                      c->coordinator.seed = sweep.seed[i];
                      c->data_seed = sweep.seed[i];
                      return std::to_string(sweep.seed[i]);
                    }});
  }

  std::size_t total = 1;
  for (const Axis& a : axes) total *= a.count;
  std::vector<SweepPoint> points;
  for (std::size_t n = 0; n < total; ++n) {
    SweepPoint point;
    point.config = base;
    point.config.sweep = SweepConfig();
    // Mixed radix, the last axis fastest.
    std::size_t rest = n;
    std::vector<std::size_t> index(axes.size());
    for (std::size_t a = axes.size(); a-- > 0;) {
      index[a] = rest % axes[a].count;
      rest /= axes[a].count;
    }
    for (std::size_t a = 0; a < axes.size(); ++a) {
      const std::string value = axes[a].apply(index[a], &point.config);
      point.values.emplace_back(axes[a].key, value);
      point.label += (point.label.empty() ? "" : " ") + axes[a].key + "=" + value;
      point.slug += (point.slug.empty() ? "" : "-") +
                    (axes[a].key == "strategy" ? value
                     : axes[a].key == "epsilon" ? "eps" + value
                                                : axes[a].key + value);
    }
    try {
      ValidateSimulationConfig(point.config);
    } catch (const ConfigError& e) {
      ThrowForPoint(file, point.label, e);
    }
    points.push_back(std::move(point));
  }
  return points;
}

bool RunPlots(const std::string& bin_dir, const std::string& dir, std::ostream& progress) {
  const std::string script = bin_dir + "/plot_results.py";
  if (!fs::exists(script)) {
    progress << "plots skipped: " << script << " not found" << std::endl;
    return false;
  }
  const std::string python = fs::exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
  const std::string log = (fs::path(dir) / "plots.log").string();
  try {
    ChildProcess check({python, "-c", "import matplotlib"}, log);
    const std::optional<int> status = check.Wait(60);
    if (!status.has_value() || *status != 0) {
      progress << "plots skipped: " << python << " cannot import matplotlib (Debian: apt-get "
               << "install python3-matplotlib; see " << log << ")" << std::endl;
      return false;
    }
    ChildProcess plot({python, script, dir}, log, {"MPLBACKEND=Agg"});
    const std::optional<int> done = plot.Wait(300);
    if (!done.has_value() || *done != 0) {
      progress << "plots failed; see " << log << std::endl;
      return false;
    }
  } catch (const Error& e) {
    progress << "plots skipped: " << e.what() << std::endl;
    return false;
  }
  std::ifstream in(log);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("wrote ", 0) == 0) progress << "plot: " << line.substr(6) << std::endl;
  }
  return true;
}

// The evaluation report of a finished run (fedmed-report: report.json, figures, report.html in
// RUN_DIR/report). A report that cannot be made is said, not fatal: the run itself succeeded.
void RunReport(const std::string& bin_dir, const std::string& run_dir,
               const std::string& data_root, std::ostream& progress) {
  const std::string tool = bin_dir + "/fedmed-report";
  if (!fs::exists(tool)) {
    progress << "report skipped: " << tool << " not found" << std::endl;
    return;
  }
  const std::string log = (fs::path(run_dir) / "report.log").string();
  try {
    ChildProcess report({tool, run_dir, "--data-root", data_root}, log);
    const std::optional<int> done = report.Wait(600);
    if (!done.has_value() || *done != 0) {
      progress << "report failed; see " << log << std::endl;
      return;
    }
  } catch (const Error& e) {
    progress << "report skipped: " << e.what() << std::endl;
    return;
  }
  progress << "report: " << (fs::path(run_dir) / "report" / "report.html").string() << std::endl;
}

int RunExperiment(const SimulationConfig& config, const std::string& data_root,
                  const std::string& bin_dir, const std::string& command_line,
                  std::ostream& progress) {
  std::map<uint64_t, BaselineResult> baselines;
  if (config.sweep.empty()) {
    Row row;
    row.result = RunSimulation(config, data_root, bin_dir, progress);
    if (SimulationInterrupted()) return row.result.exit_status != 0 ? row.result.exit_status : 1;
    FinishRow(config, data_root, &baselines, &row, progress);
    if (config.plots) RunPlots(bin_dir, row.result.run_dir, progress);
    if (config.plots && row.result.exit_status == 0) {
      RunReport(bin_dir, row.result.run_dir, data_root, progress);
    }
    return row.result.exit_status;
  }

  const std::vector<SweepPoint> points = ExpandSweep(config);
  const fs::path dir =
      fs::absolute(fs::path(config.output_root) / (config.name + "-sweep-" + LocalTimestamp()));
  fs::create_directories(dir);
  progress << "sweep of " << points.size() << " runs into " << dir.string() << std::endl;
  std::vector<Row> rows;
  int status = 0;
  for (std::size_t i = 0; i < points.size(); ++i) {
    Row row = RowFor(points, i, dir, config.name);
    progress << "\n=== run " << (i + 1) << "/" << points.size() << ": " << row.point.label
             << " ===" << std::endl;
    row.result = RunSimulation(row.point.config, data_root, bin_dir, progress);
    if (SimulationInterrupted()) {
      rows.push_back(std::move(row));
      WriteSweepTables(dir, config, command_line, rows, points.size());
      return 1;
    }
    if (row.result.exit_status != 0 && status == 0) status = row.result.exit_status;
    FinishRow(row.point.config, data_root, &baselines, &row, progress);
    rows.push_back(std::move(row));
    WriteSweepTables(dir, config, command_line, rows, points.size());
  }
  progress << "\nsweep done: " << (dir / "sweep.csv").string() << " and sweep.md ("
           << rows.size() << " rows)" << std::endl;
  progress << ReadFile((dir / "sweep.md").string(), "sweep table") << std::endl;
  if (config.plots) RunPlots(bin_dir, dir.string(), progress);
  return status;
}

int SelectFinishedExperiment(const SimulationConfig& config, const std::string& data_root,
                             const std::string& dir, const std::string& command_line,
                             std::ostream& progress) {
  if (config.select_split.empty()) {
    throw ConfigError(config.config_path + ": [simulation] select_split is not set (e.g. \"val\")");
  }
  std::map<uint64_t, BaselineResult> baselines;
  if (config.sweep.empty()) {
    Row row;
    row.result = ReadRunResult(dir);
    FinishRow(config, data_root, &baselines, &row, progress);
    return row.result.exit_status;
  }
  const std::vector<SweepPoint> points = ExpandSweep(config);
  std::vector<Row> rows;
  int status = 0;
  for (std::size_t i = 0; i < points.size(); ++i) {
    Row row = RowFor(points, i, dir, config.name);
    const fs::path run_dir = row.point.config.run_dir;
    if (!fs::exists(run_dir / "summary.json")) {
      progress << "\n" << run_dir.string() << ": no summary.json (the sweep stopped before this "
               << "run); stopping here" << std::endl;
      break;
    }
    progress << "\n=== run " << (i + 1) << "/" << points.size() << ": " << row.point.label
             << " ===" << std::endl;
    row.result = ReadRunResult(run_dir);
    if (row.result.exit_status != 0 && status == 0) status = row.result.exit_status;
    FinishRow(row.point.config, data_root, &baselines, &row, progress);
    rows.push_back(std::move(row));
    WriteSweepTables(dir, config, command_line, rows, points.size());
  }
  progress << "\nmodel selection done: " << (fs::path(dir) / "sweep.csv").string()
           << " and sweep.md (" << rows.size() << " rows)" << std::endl;
  return status;
}

}  // namespace fedmed
