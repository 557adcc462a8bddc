#include "tools/report/report_builder.h"

#include <algorithm>
#include <cstdio>
#include <sstream>
#include <stdexcept>

#include "tools/report/report_metrics.h"

namespace fedmed::report {

using nlohmann::json;

namespace {

json ToJson(const Proportion& p) {
  return {{"value", p.value}, {"lower", p.lower}, {"upper", p.upper},
          {"successes", p.successes}, {"trials", p.trials}};
}

json ToJson(const BinaryConfusion& c, const std::string& name) {
  return {{"name", name},
          {"threshold", c.threshold},
          {"tp", c.tp},
          {"fp", c.fp},
          {"tn", c.tn},
          {"fn", c.fn},
          {"sensitivity", ToJson(c.sensitivity)},
          {"specificity", ToJson(c.specificity)}};
}

// Scores of class k and the one-vs-rest flags.
void OneVsRest(const SplitPredictions& s, size_t k, std::vector<double>* scores,
               std::vector<bool>* positive) {
  scores->clear();
  positive->clear();
  for (size_t i = 0; i < s.labels.size(); ++i) {
    scores->push_back(s.probabilities[i][k]);
    positive->push_back(s.labels[i] == static_cast<int64_t>(k));
  }
}

bool BothClasses(const std::vector<bool>& positive) {
  const auto m = std::count(positive.begin(), positive.end(), true);
  return m > 0 && m < static_cast<long>(positive.size());
}

std::string Num(double v, int digits = 4) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", digits, v);
  return buf;
}

std::string Interval(const json& p) {
  return Num(p["value"].get<double>()) + " [" + Num(p["lower"].get<double>()) + ", " +
         Num(p["upper"].get<double>()) + "]";
}

}  // namespace

json BuildReport(const SplitPredictions& test, const SplitPredictions& val,
                 const std::vector<std::string>& class_names, const std::string& metrics_jsonl,
                 int replicates, uint64_t seed) {
  if (test.labels.empty() || test.labels.size() != test.probabilities.size()) {
    throw std::invalid_argument("the test split is empty or its probabilities and labels differ");
  }
  const size_t classes = test.probabilities[0].size();
  for (size_t i = 0; i < test.labels.size(); ++i) {
    if (test.probabilities[i].size() != classes || test.labels[i] < 0 ||
        test.labels[i] >= static_cast<int64_t>(classes)) {
      throw std::invalid_argument("test image " + std::to_string(i) +
                                  ": probabilities or label do not fit " +
                                  std::to_string(classes) + " classes");
    }
  }
  json t = {{"n", test.labels.size()}, {"num_classes", classes}, {"class_names", class_names}};
  json notes = json::array();
  std::vector<double> scores;
  std::vector<bool> positive;
  if (classes == 2) {
    OneVsRest(test, 1, &scores, &positive);
    const AucInterval a = DeLongInterval(scores, positive);
    t["auc"] = {{"value", a.auc}, {"lower", a.lower}, {"upper", a.upper},
                {"standard_error", a.standard_error}, {"method", a.method}};
  } else {
    const AucInterval a = BootstrapMacroAuc(test.probabilities, test.labels, replicates, seed);
    t["auc"] = {{"value", a.auc}, {"lower", a.lower}, {"upper", a.upper},
                {"method", a.method}, {"replicates", replicates}, {"seed", seed},
                {"average", "macro one-vs-rest"}};
  }
  json roc = json::array(), pr = json::array();
  for (size_t k = classes == 2 ? 1 : 0; k < classes; ++k) {
    OneVsRest(test, k, &scores, &positive);
    if (!BothClasses(positive)) continue;
    json fpr = json::array(), tpr = json::array(), rec = json::array(), prec = json::array();
    for (const CurvePoint& p : RocCurve(scores, positive)) {
      fpr.push_back(p.x);
      tpr.push_back(p.y);
    }
    for (const CurvePoint& p : PrecisionRecallCurve(scores, positive)) {
      rec.push_back(p.x);
      prec.push_back(p.y);
    }
    roc.push_back({{"class", k}, {"auc", RocAuc(scores, positive)}, {"fpr", fpr}, {"tpr", tpr}});
    pr.push_back({{"class", k}, {"average_precision", AveragePrecision(scores, positive)},
                  {"recall", rec}, {"precision", prec},
                  {"prevalence", static_cast<double>(std::count(positive.begin(), positive.end(), true)) /
                                     static_cast<double>(positive.size())}});
  }
  t["roc"] = roc;
  t["pr"] = pr;
  std::vector<std::vector<int64_t>> matrix(classes, std::vector<int64_t>(classes, 0));
  for (size_t i = 0; i < test.labels.size(); ++i) {
    const auto& p = test.probabilities[i];
    matrix[static_cast<size_t>(test.labels[i])]
          [static_cast<size_t>(std::max_element(p.begin(), p.end()) - p.begin())] += 1;
  }
  t["confusion_matrix"] = matrix;
  if (classes == 2) {
    OneVsRest(test, 1, &scores, &positive);
    json points = json::array({ToJson(ConfusionAt(scores, positive, 0.5), "threshold 0.5")});
    std::vector<double> vs;
    std::vector<bool> vp;
    if (!val.labels.empty()) OneVsRest(val, 1, &vs, &vp);
    if (BothClasses(vp)) {
      const double youden = YoudenThreshold(vs, vp);
      json point = ToJson(ConfusionAt(scores, positive, youden), "Youden's J on the val split");
      point["validation"] = ToJson(ConfusionAt(vs, vp, youden), "val");
      points.push_back(point);
    } else {
      notes.push_back("no Youden threshold: the val split is empty or has one class only");
    }
    t["operating_points"] = points;
  }
  const Calibration c = Calibrate(test.probabilities, test.labels, 10);
  t["calibration"] = {{"bins", 10}, {"count", c.count}, {"accuracy", c.accuracy},
                      {"confidence", c.confidence}, {"ece", c.ece}, {"brier", c.brier},
                      {"brier_definition", classes == 2 ? "mean (p_1 - y)^2"
                                                        : "mean sum_k (p_k - [y = k])^2"}};

  json rounds = json::array(), sites = json::object();
  std::istringstream lines(metrics_jsonl);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const json r = json::parse(line);
    const int round = r.value("round", 0);
    json entry = {{"round", round}};
    if (r.contains("global")) entry["global"] = r["global"];
    if (r.contains("federated")) entry["federated"] = r["federated"];
    rounds.push_back(entry);
    if (r.contains("sites") && r["sites"].is_object()) {
      for (const auto& [name, m] : r["sites"].items()) {
        json s = m;
        s["round"] = round;
        sites[name].push_back(s);
      }
    }
  }
  return {{"test", t}, {"rounds", rounds}, {"sites", sites}, {"notes", notes}};
}

std::string ReportHtml(const json& report, bool figures) {
  std::ostringstream h;
  const json& t = report["test"];
  h << "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>fedmed-report</title>"
       "<style>body{font-family:sans-serif;margin:1em;max-width:1100px}"
       "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px}"
       "img{max-width:520px;margin:4px}</style></head><body>\n<h1>Evaluation report</h1>\n";
  if (report.contains("run")) {
    h << "<p>";
    for (const auto& [k, v] : report["run"].items()) {
      h << "<b>" << k << "</b>: " << (v.is_string() ? v.get<std::string>() : v.dump())
        << "<br>";
    }
    h << "</p>\n";
  }
  const json& auc = t["auc"];
  h << "<h2>Held-out set: " << t["n"].get<int64_t>() << " images, " << t["num_classes"]
    << " classes</h2>\n<p>ROC AUC " << Num(auc["value"].get<double>()) << ", 95 % CI ["
    << Num(auc["lower"].get<double>()) << ", " << Num(auc["upper"].get<double>()) << "] ("
    << (auc["method"] == "delong" ? "DeLong et al. 1988"
                                  : "macro one-vs-rest, seeded percentile bootstrap")
    << ").</p>\n";
  if (t.contains("operating_points")) {
    h << "<table><tr><th>operating point</th><th>threshold</th><th>TP</th><th>FP</th><th>TN</th>"
         "<th>FN</th><th>sensitivity [Wilson 95 % CI]</th><th>specificity [Wilson 95 % CI]</th>"
         "</tr>\n";
    for (const json& p : t["operating_points"]) {
      h << "<tr><td>" << p["name"].get<std::string>() << "</td><td>"
        << Num(p["threshold"].get<double>()) << "</td><td>" << p["tp"] << "</td><td>" << p["fp"]
        << "</td><td>" << p["tn"] << "</td><td>" << p["fn"] << "</td><td>"
        << Interval(p["sensitivity"]) << "</td><td>" << Interval(p["specificity"])
        << "</td></tr>\n";
    }
    h << "</table>\n";
  }
  const json& cal = t["calibration"];
  h << "<p>Calibration: expected calibration error (10 bins) " << Num(cal["ece"].get<double>())
    << ", Brier score " << Num(cal["brier"].get<double>()) << " ("
    << cal["brier_definition"].get<std::string>() << ").</p>\n";
  for (const json& n : report["notes"]) h << "<p><i>" << n.get<std::string>() << "</i></p>\n";
  if (figures) {
    for (const char* png : {"roc", "pr", "confusion", "calibration", "rounds", "sites"}) {
      h << "<img src=\"" << png << ".png\" alt=\"" << png << "\">\n";
    }
  }
  h << "<h2>Per round</h2>\n<table><tr><th>round</th><th>global ACC</th><th>global AUC</th>"
       "<th>federated ACC</th><th>federated AUC</th></tr>\n";
  for (const json& r : report["rounds"]) {
    auto cell = [&](const char* which, const char* key) {
      return r.contains(which) && r[which].contains(key) ? Num(r[which][key].get<double>())
                                                         : std::string("-");
    };
    h << "<tr><td>" << r["round"] << "</td><td>" << cell("global", "accuracy") << "</td><td>"
      << cell("global", "auc") << "</td><td>" << cell("federated", "accuracy") << "</td><td>"
      << cell("federated", "auc") << "</td></tr>\n";
  }
  h << "</table>\n<h2>Per site (federated evaluation, last round)</h2>\n<table><tr><th>site</th>"
       "<th>images</th><th>ACC</th><th>AUC</th><th>sensitivity</th><th>specificity</th></tr>\n";
  for (const auto& [name, rounds] : report["sites"].items()) {
    const json& last = rounds.back();
    auto cell = [&](const char* key) {
      return last.contains(key) && last[key].is_number() ? Num(last[key].get<double>())
                                                         : std::string("-");
    };
    h << "<tr><td>" << name << "</td><td>" << last.value("num_samples", 0) << "</td><td>"
      << cell("accuracy") << "</td><td>" << cell("auc") << "</td><td>" << cell("sensitivity")
      << "</td><td>" << cell("specificity") << "</td></tr>\n";
  }
  h << "</table>\n<p>The numbers are in report.json.</p></body></html>\n";
  return h.str();
}

}  // namespace fedmed::report
