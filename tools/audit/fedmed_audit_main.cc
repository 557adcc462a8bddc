// fedmed-audit: privacy accounting from the command line (see common/privacy/rdp_accountant.h)
// and the audit of privacy logs (see common/audit/privacy_log.h and common/audit/log_audit.h).
//
//   fedmed-audit epsilon --noise-multiplier S --sampling-rate Q --steps T --delta D
//       [--conversion balle2020|classic]
//     Prints the epsilon of T steps of DP-SGD (Poisson-subsampled Gaussian mechanism) as a bare
//     number on the first line, then the delta, the best RDP order and the method.
//   fedmed-audit calibrate --epsilon E --sampling-rate Q --steps T --delta D
//       [--conversion balle2020|classic] [--tolerance TOL]
//     Prints the noise multiplier that keeps T steps within epsilon E as a bare number on the
//     first line, then the epsilon it gives.
//   fedmed-audit verify LOG --cert CERT [--ca CA] [--crl CRL]
//     Checks the log's hash chain, every entry's Ed25519 signature under the writer's audit
//     certificate (audit.pem), writer = the certificate's CN, and with --ca that the certificate
//     is an audit-log certificate of that federation CA. With a CRL (--crl, or crl.pem beside
//     --ca when it exists; its signature checked against --ca), an entry dated after the
//     revocation of the certificate is refused (common/audit/log_revocation.h).
//     Prints "ok, N entries" (exit 0) or the
//     first broken entry as "line L: <what is wrong>" ("certificate: ..." when the certificate
//     itself is at fault) (exit 1).
//   fedmed-audit report LOG [LOG...] [--json] [--plot OUT.png]
//     Per site log: every trained round's epsilon recomputed from its recorded mechanism with
//     the RDP accountant, against the recorded epsilon (flagged above 1e-6 relative difference)
//     and the budget (flagged when exceeded). A table, or with --json one JSON document; --plot
//     also draws cumulative epsilon per site over rounds with the budgets (needs /usr/bin/python3
//     with matplotlib, Debian's python3-matplotlib; FEDMED_PYTHON overrides the interpreter).
//     Exit 0 only if nothing is flagged.
//   fedmed-audit cross-check --coordinator COORD_LOG SITE_LOG...
//     Every update digest a site says it sent against what the coordinator recorded as
//     received from it, round by round, and no update used from a site for a round that site
//     has no "trained" record of. Prints each mismatch; exit 0 only if there is none.
//
// report and cross-check read the logs' structure and hash chains but not their signatures:
// run verify on each log first.
//
// Exit status 0 on success, 2 for command-line mistakes (including values out of range and
// targets that cannot be met; the message names the flag), 1 for any other error and for a log
// that fails its audit. Errors are printed as one line on stderr.
//
// Each subcommand is one Add...Command function (its flags) and one Run...Command function (its
// work); a new subcommand (verify, report, cross-check) adds one of each and a line in Main.
#include <CLI/CLI.hpp>
#include <stdlib.h>

#include <cmath>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/audit/log_audit.h"
#include "common/audit/log_revocation.h"
#include "common/crypto/crl.h"
#include "common/audit/privacy_log.h"
#include "common/privacy/rdp_accountant.h"
#include "common/util/error.h"
#include "common/util/file_io.h"
#include "common/util/process.h"
#include "tools/audit/plot_epsilon_script.h"

namespace fedmed {
namespace {

constexpr int kExitError = 1;
constexpr int kExitUsage = 2;

std::string Num(double value, int digits = 10) {
  char text[64];
  std::snprintf(text, sizeof(text), "%.*g", digits, value);
  return text;
}

const char* const kMechanism = "Poisson-subsampled Gaussian, Mironov et al. 2019";

// Flags shared by the accounting subcommands.
struct MechanismFlags {
  double sampling_rate = 0;
  int64_t steps = 0;
  double delta = 0;
  std::string conversion = "balle2020";
};

void AddMechanismFlags(CLI::App* cmd, MechanismFlags* flags) {
  cmd->add_option("--sampling-rate", flags->sampling_rate,
                  "Poisson sampling rate q of each DP-SGD step, in [0, 1] "
                  "(expected batch size / number of training images)")
      ->required();
  cmd->add_option("--steps", flags->steps, "Number of DP-SGD steps T, >= 0")->required();
  cmd->add_option("--delta", flags->delta, "delta of the (epsilon, delta) guarantee, in (0, 1)")
      ->required();
  cmd->add_option("--conversion", flags->conversion,
                  "RDP to (epsilon, delta) conversion: balle2020 (Balle et al. 2020, Theorem "
                  "21, as Opacus) or classic (Mironov 2017, Prop. 3)")
      ->capture_default_str();
}

// Checks the shared flags, naming the flag at fault (the library's messages name the
// parameter, not the flag).
void CheckMechanismFlags(const MechanismFlags& flags) {
  if (!(flags.sampling_rate >= 0 && flags.sampling_rate <= 1)) {
    throw ConfigError("--sampling-rate " + Num(flags.sampling_rate) +
                      ": expected a probability in [0, 1]");
  }
  if (flags.steps < 0) {
    throw ConfigError("--steps " + std::to_string(flags.steps) + ": expected >= 0");
  }
  if (!(flags.delta > 0 && flags.delta < 1)) {
    throw ConfigError("--delta " + Num(flags.delta) + ": expected a number in (0, 1)");
  }
  if (flags.conversion != "balle2020" && flags.conversion != "classic") {
    throw ConfigError("--conversion \"" + flags.conversion +
                      "\": expected \"balle2020\" or \"classic\"");
  }
}

// ---- epsilon ----

struct EpsilonFlags {
  MechanismFlags mechanism;
  double noise_multiplier = 0;
};

CLI::App* AddEpsilonCommand(CLI::App* app, EpsilonFlags* flags) {
  CLI::App* cmd = app->add_subcommand(
      "epsilon", "Epsilon spent by T steps of DP-SGD (RDP accountant, as Opacus)");
  cmd->add_option("--noise-multiplier", flags->noise_multiplier,
                  "Noise multiplier sigma (noise std / clipping norm), >= 0")
      ->required();
  AddMechanismFlags(cmd, &flags->mechanism);
  return cmd;
}

int RunEpsilonCommand(const EpsilonFlags& flags) {
  CheckMechanismFlags(flags.mechanism);
  if (!(flags.noise_multiplier >= 0 && std::isfinite(flags.noise_multiplier))) {
    throw ConfigError("--noise-multiplier " + Num(flags.noise_multiplier) +
                      ": expected a finite number >= 0");
  }
  const MechanismFlags& m = flags.mechanism;
  const RdpConversion conversion = ParseRdpConversion(m.conversion);
  RdpAccountant accountant;
  accountant.Compose(m.sampling_rate, flags.noise_multiplier, m.steps);
  const PrivacySpent spent = accountant.Spent(m.delta, conversion);
  std::cout << Num(spent.epsilon) << "\n";
  std::cout << "at delta=" << Num(m.delta, 6) << ", ";
  if (std::isfinite(spent.epsilon)) {
    std::cout << "best RDP order " << Num(spent.order, 6);
  } else {
    std::cout << "no RDP order gives a finite bound";
  }
  std::cout << " (" << RdpConversionName(conversion) << " conversion, " << kMechanism << ")\n";
  return 0;
}

// ---- calibrate ----

struct CalibrateFlags {
  MechanismFlags mechanism;
  double epsilon = 0;
  double tolerance = 0.01;
};

CLI::App* AddCalibrateCommand(CLI::App* app, CalibrateFlags* flags) {
  CLI::App* cmd = app->add_subcommand(
      "calibrate",
      "Noise multiplier that keeps T steps of DP-SGD within epsilon (as Opacus's "
      "get_noise_multiplier)");
  cmd->add_option("--epsilon", flags->epsilon, "Target epsilon, > 0")->required();
  AddMechanismFlags(cmd, &flags->mechanism);
  cmd->add_option("--tolerance", flags->tolerance,
                  "Stop when the epsilon is within this much below the target, > 0")
      ->capture_default_str();
  return cmd;
}

int RunCalibrateCommand(const CalibrateFlags& flags) {
  CheckMechanismFlags(flags.mechanism);
  if (!(flags.epsilon > 0 && std::isfinite(flags.epsilon))) {
    throw ConfigError("--epsilon " + Num(flags.epsilon) + ": expected a finite number > 0");
  }
  if (!(flags.tolerance > 0 && std::isfinite(flags.tolerance))) {
    throw ConfigError("--tolerance " + Num(flags.tolerance) + ": expected a finite number > 0");
  }
  const MechanismFlags& m = flags.mechanism;
  const RdpConversion conversion = ParseRdpConversion(m.conversion);
  double sigma;
  try {
    sigma = CalibrateNoiseMultiplier(flags.epsilon, m.delta, m.sampling_rate, m.steps,
                                     conversion, flags.tolerance);
  } catch (const ConfigError& e) {
    throw ConfigError("--epsilon " + Num(flags.epsilon) + ": " + e.what());
  }
  RdpAccountant accountant;
  accountant.Compose(m.sampling_rate, sigma, m.steps);
  const PrivacySpent spent = accountant.Spent(m.delta, conversion);
  std::cout << Num(sigma) << "\n";
  std::cout << "gives epsilon " << Num(spent.epsilon, 6) << " <= " << Num(flags.epsilon, 6)
            << " at delta=" << Num(m.delta, 6) << " with sampling rate "
            << Num(m.sampling_rate, 6) << " and " << m.steps << " steps";
  if (std::isfinite(spent.epsilon) && spent.epsilon > 0) {
    std::cout << ", best RDP order " << Num(spent.order, 6);
  }
  std::cout << " (" << RdpConversionName(conversion) << " conversion, " << kMechanism << ")\n";
  return 0;
}

// ---- verify ----

struct VerifyFlags {
  std::string log;
  std::string cert;
  std::string ca;
  std::string crl;
};

CLI::App* AddVerifyCommand(CLI::App* app, VerifyFlags* flags) {
  CLI::App* cmd = app->add_subcommand(
      "verify",
      "Checks a privacy log: hash chain, every entry's Ed25519 signature, writer = the audit "
      "certificate's CN");
  cmd->add_option("LOG", flags->log, "The privacy log (JSON lines)")->required();
  cmd->add_option("--cert", flags->cert,
                  "The writer's audit certificate (audit.pem from fedmed-pki)")
      ->required();
  cmd->add_option("--ca", flags->ca,
                  "The federation CA certificate (ca.pem): also check that the audit "
                  "certificate was issued by it");
  cmd->add_option("--crl", flags->crl,
                  "The federation CA's revocation list (crl.pem; default: crl.pem beside --ca "
                  "when it exists): refuse entries signed after the certificate's revocation");
  return cmd;
}

int RunVerifyCommand(const VerifyFlags& flags) {
  const std::string cert = ReadFile(flags.cert, "audit certificate (--cert)");
  const std::string ca = flags.ca.empty() ? "" : ReadFile(flags.ca, "CA certificate (--ca)");
  LogVerification result = VerifyLog(flags.log, cert, ca);
  std::string crl_path = flags.crl;
  if (crl_path.empty() && !flags.ca.empty()) {
    const std::filesystem::path beside =
        std::filesystem::path(flags.ca).parent_path() / "crl.pem";
    if (std::filesystem::exists(beside)) crl_path = beside.string();
  }
  if (!crl_path.empty()) {
    if (ca.empty()) throw Error("--crl needs --ca: the CRL's signature is checked against the CA");
    const CrlContents crl = ReadCrl(ReadFile(crl_path, "CRL (--crl)"), ca, crl_path);
    result = CheckRevokedSigner(result, flags.log, cert, crl);
  }
  if (result.ok) {
    std::cout << "ok, " << result.entries << " entries\n";
    return 0;
  }
  if (result.first_bad_line == 0) {
    std::cout << "certificate: " << result.what << "\n";
  } else {
    std::cout << "line " << result.first_bad_line << ": " << result.what << "\n";
  }
  return kExitError;
}

// ---- report ----

struct ReportFlags {
  std::vector<std::string> logs;
  bool json = false;
  std::string plot;
};

CLI::App* AddReportCommand(CLI::App* app, ReportFlags* flags) {
  CLI::App* cmd = app->add_subcommand(
      "report",
      "Epsilon per site and round recomputed from the logged mechanisms, against the logged "
      "epsilon and the budget");
  cmd->add_option("LOG", flags->logs, "Site privacy logs (JSON lines)")->required();
  cmd->add_flag("--json", flags->json, "Print one JSON document instead of a table");
  cmd->add_option("--plot", flags->plot,
                  "Also write a PNG of cumulative epsilon per site over rounds, with the budgets "
                  "(needs python3-matplotlib)");
  return cmd;
}

// A temporary directory, removed with its content on scope exit.
class ScratchDir {
 public:
  ScratchDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "fedmed-audit-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) {
      throw Error("cannot create a temporary directory under " +
                  std::filesystem::temp_directory_path().string());
    }
    path_ = pattern;
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

// Draws cumulative epsilon per site (the recomputed totals) with the budgets into `png` with
// tools/audit/plot_epsilon.py (embedded). Throws Error if Python or matplotlib is missing or
// the script fails.
void WritePlot(const std::vector<SiteLogAudit>& audits, const std::string& png) {
  nlohmann::json sites = nlohmann::json::array();
  for (const SiteLogAudit& audit : audits) {
    if (audit.is_coordinator) continue;
    std::vector<int> rounds;
    std::vector<double> totals;
    std::vector<double> budgets;
    for (const TrainedRoundAudit& r : audit.rounds) {
      if (!std::isfinite(r.recomputed_total)) continue;
      rounds.push_back(r.recorded.round);
      totals.push_back(r.recomputed_total);
      budgets.push_back(r.recorded.budget_epsilon);
    }
    sites.push_back({{"site", audit.site},
                     {"rounds", rounds},
                     {"epsilon_total", totals},
                     {"budgets", budgets},
                     {"budget_epsilon", audit.budget_epsilon},
                     {"delta", audit.delta}});
  }
  const nlohmann::json data = {
      {"title", "Privacy spent per site (recomputed from the privacy logs)"}, {"sites", sites}};
  const char* env_python = std::getenv("FEDMED_PYTHON");
  const std::string python = env_python != nullptr ? env_python : "/usr/bin/python3";
  if (!std::filesystem::exists(python)) {
    throw Error("--plot: " + python +
                " not found; install Debian's python3 and python3-matplotlib (scripts/deps.sh)");
  }
  ScratchDir scratch;
  WriteFileAtomically(scratch / "data.json", data.dump(2), "plot data");
  WriteFileAtomically(scratch / "plot_epsilon.py", kPlotEpsilonScript, "plot script");
  const std::string output = scratch / "output.txt";
  ChildProcess child({python, scratch / "plot_epsilon.py", scratch / "data.json", png}, output);
  const std::optional<int> status = child.Wait(300);
  if (!status) {
    child.Stop();
    throw Error("--plot: plot_epsilon.py did not finish within 300 s");
  }
  if (*status == 3) {
    throw Error("--plot: matplotlib is missing for " + python +
                "; install Debian's python3-matplotlib (apt-get install python3-matplotlib, or "
                "scripts/deps.sh)");
  }
  if (*status != 0) {
    std::string text;
    try {
      text = ReadFile(output, "plot output");
    } catch (const Error&) {
    }
    while (!text.empty() && text.back() == '\n') text.pop_back();
    throw Error("--plot: plot_epsilon.py failed (exit status " + std::to_string(*status) +
                "): " + text);
  }
}

void PrintSiteAudit(const SiteLogAudit& audit) {
  std::printf("\n%s  (%s, %lld entries)\n", audit.site.c_str(), audit.path.c_str(),
              static_cast<long long>(audit.entries));
  if (audit.is_coordinator) {
    std::printf("  a coordinator's log (round records), not a site's: check it with cross-check\n");
    return;
  }
  std::printf("  %5s  %-9s  %-9s  %-10s  %6s  %-22s  %-22s  %-8s  %s\n", "round", "mechanism",
              "sigma", "q", "steps", "epsilon round", "epsilon total", "budget", "check");
  std::printf("  %5s  %-9s  %-9s  %-10s  %6s  %-10s  %-10s  %-10s  %-10s  %-8s\n", "", "", "",
              "", "", "recorded", "recomputed", "recorded", "recomputed", "");
  // Trained and declined rounds in log order.
  size_t t = 0;
  size_t d = 0;
  while (t < audit.rounds.size() || d < audit.declined.size()) {
    const bool take_trained =
        d >= audit.declined.size() ||
        (t < audit.rounds.size() && audit.rounds[t].line < audit.declined[d].line);
    if (!take_trained) {
      const DeclinedRoundAudit& r = audit.declined[d++];
      std::printf("  %5d  declined: %s\n", r.recorded.round, r.recorded.reason.c_str());
      continue;
    }
    const TrainedRoundAudit& r = audit.rounds[t++];
    const TrainedEvent& e = r.recorded;
    std::printf("  %5d  %-9s  %-9.6g  %-10.6g  %6lld  %-10.6g  %-10.6g  %-10.6g  %-10.6g  "
                "%-8.6g  %s\n",
                e.round, PrivacyModeName(e.mechanism), e.noise_multiplier, e.sampling_rate,
                static_cast<long long>(e.steps), e.epsilon_round, r.recomputed_round,
                e.epsilon_total, r.recomputed_total, e.budget_epsilon,
                r.flags.empty() ? "ok" : "FLAGGED");
    for (const std::string& flag : r.flags) std::printf("         ! %s\n", flag.c_str());
  }
  if (audit.rounds.empty()) {
    std::printf("  no trained rounds: nothing spent (budget %.6g)\n", audit.budget_epsilon);
  } else {
    std::printf("  total: epsilon %.6g of budget %.6g at delta %.6g (%s conversion): %s\n",
                audit.epsilon_total, audit.budget_epsilon, audit.delta, audit.conversion.c_str(),
                audit.ok() ? "ok" : "FLAGGED");
  }
}

int RunReportCommand(const ReportFlags& flags) {
  std::vector<SiteLogAudit> audits;
  std::vector<std::string> unreadable;  // one line each
  size_t flagged = 0;
  for (const std::string& path : flags.logs) {
    try {
      audits.push_back(AuditSiteLog(ReadLog(path), path));
      if (!audits.back().is_coordinator) flagged += audits.back().flags.size();
    } catch (const Error& e) {
      unreadable.push_back(e.what());
    }
  }
  flagged += unreadable.size();
  if (flags.json) {
    nlohmann::json sites = nlohmann::json::array();
    for (const SiteLogAudit& audit : audits) sites.push_back(ToJson(audit));
    const nlohmann::json doc = {{"ok", flagged == 0},
                                {"flags", flagged},
                                {"relative_tolerance", kEpsilonRelativeTolerance},
                                {"accountant", "RDP of the Poisson-subsampled Gaussian (Mironov et "
                                               "al. 2019), default orders"},
                                {"sites", sites},
                                {"unreadable", unreadable}};
    std::cout << doc.dump(2) << "\n";
  } else {
    std::printf("privacy report: epsilon recomputed from each logged mechanism with the RDP "
                "accountant;\nflagged where a logged epsilon differs by more than %g (relative) "
                "or the budget is exceeded\n",
                kEpsilonRelativeTolerance);
    for (const SiteLogAudit& audit : audits) PrintSiteAudit(audit);
    for (const std::string& line : unreadable) std::printf("\ncannot audit %s\n", line.c_str());
    std::printf("\n%s\n", flagged == 0 ? "ok: nothing flagged"
                                       : ("FLAGGED: " + std::to_string(flagged) +
                                          " problem(s)").c_str());
    std::fflush(stdout);
  }
  if (!flags.plot.empty()) {
    WritePlot(audits, flags.plot);
    if (!flags.json) std::cout << "plot written to " << flags.plot << "\n";
  }
  return flagged == 0 ? 0 : kExitError;
}

// ---- cross-check ----

struct CrossCheckFlags {
  std::string coordinator_log;
  std::vector<std::string> site_logs;
};

CLI::App* AddCrossCheckCommand(CLI::App* app, CrossCheckFlags* flags) {
  CLI::App* cmd = app->add_subcommand(
      "cross-check",
      "Update digests the sites say they sent against what the coordinator says it received "
      "and used, round by round");
  cmd->add_option("--coordinator", flags->coordinator_log, "The coordinator's audit log")
      ->required();
  cmd->add_option("SITE_LOG", flags->site_logs, "The sites' privacy logs")->required();
  return cmd;
}

bool HasEvent(const std::vector<PrivacyLogEntry>& log, const char* event) {
  for (const PrivacyLogEntry& entry : log) {
    if (entry.event == event) return true;
  }
  return false;
}

int RunCrossCheckCommand(const CrossCheckFlags& flags) {
  const std::vector<PrivacyLogEntry> coordinator = ReadLog(flags.coordinator_log);
  if (HasEvent(coordinator, kEventTrained)) {
    throw ConfigError("--coordinator " + flags.coordinator_log + ": this is " +
                      coordinator.front().writer +
                      "'s log (it has \"trained\" entries), not the coordinator's");
  }
  std::vector<std::vector<PrivacyLogEntry>> sites;
  for (const std::string& path : flags.site_logs) {
    sites.push_back(ReadLog(path));
    if (HasEvent(sites.back(), kEventRound)) {
      throw ConfigError(path + ": this is a coordinator's log (it has \"round\" entries); "
                        "give it with --coordinator");
    }
  }
  const CrossCheckResult result = CrossCheckLogs(coordinator, sites);
  for (const std::string& line : result.mismatches) std::cout << "mismatch: " << line << "\n";
  for (const std::string& line : result.notes) std::cout << "note: " << line << "\n";
  if (result.ok()) {
    std::cout << "ok: " << result.matched << " update digests match between the coordinator and "
              << sites.size() << " site log(s)\n";
    return 0;
  }
  std::cout << "FAILED: " << result.mismatches.size() << " mismatch(es); " << result.matched
            << " update digests match\n";
  return kExitError;
}

// ---- main ----

int Main(int argc, char** argv) {
  CLI::App app{
      "fedmed-audit: privacy accounting of DP-SGD (RDP of the Poisson-subsampled Gaussian "
      "mechanism, Mironov et al. 2019) and the audit of fedmed's privacy logs."};
  app.require_subcommand(1);

  EpsilonFlags epsilon_flags;
  CLI::App* epsilon_cmd = AddEpsilonCommand(&app, &epsilon_flags);
  CalibrateFlags calibrate_flags;
  CLI::App* calibrate_cmd = AddCalibrateCommand(&app, &calibrate_flags);
  VerifyFlags verify_flags;
  CLI::App* verify_cmd = AddVerifyCommand(&app, &verify_flags);
  ReportFlags report_flags;
  CLI::App* report_cmd = AddReportCommand(&app, &report_flags);
  CrossCheckFlags cross_check_flags;
  CLI::App* cross_check_cmd = AddCrossCheckCommand(&app, &cross_check_flags);

  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {  // --help
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "fedmed-audit: error: " << e.what() << " (run fedmed-audit --help for usage)\n";
    return kExitUsage;
  }

  try {
    if (*epsilon_cmd) return RunEpsilonCommand(epsilon_flags);
    if (*calibrate_cmd) return RunCalibrateCommand(calibrate_flags);
    if (*verify_cmd) return RunVerifyCommand(verify_flags);
    if (*report_cmd) return RunReportCommand(report_flags);
    if (*cross_check_cmd) return RunCrossCheckCommand(cross_check_flags);
    std::cerr << "fedmed-audit: error: no subcommand (run fedmed-audit --help for usage)\n";
    return kExitUsage;
  } catch (const ConfigError& e) {
    std::cerr << "fedmed-audit: error: " << e.what() << "\n";
    return kExitUsage;
  } catch (const std::exception& e) {
    std::cerr << "fedmed-audit: error: " << e.what() << "\n";
    return kExitError;
  }
}

}  // namespace
}  // namespace fedmed

int main(int argc, char** argv) {
  // A file-size limit (RLIMIT_FSIZE) then fails the write with EFBIG, which WriteFileAtomically
  // reports naming the file, instead of killing the process (common/util/file_io.h).
  std::signal(SIGXFSZ, SIG_IGN);
  return fedmed::Main(argc, argv);
}
