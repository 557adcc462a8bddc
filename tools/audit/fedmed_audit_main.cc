// fedmed-audit: privacy accounting from the command line (see common/privacy/rdp_accountant.h).
//
//   fedmed-audit epsilon --noise-multiplier S --sampling-rate Q --steps T --delta D
//       [--conversion balle2020|classic]
//     Prints the epsilon of T steps of DP-SGD (Poisson-subsampled Gaussian mechanism) as a bare
//     number on the first line, then the delta, the best RDP order and the method.
//   fedmed-audit calibrate --epsilon E --sampling-rate Q --steps T --delta D
//       [--conversion balle2020|classic] [--tolerance TOL]
//     Prints the noise multiplier that keeps T steps within epsilon E as a bare number on the
//     first line, then the epsilon it gives.
//
// Exit status 0 on success, 2 for command-line mistakes (including values out of range and
// targets that cannot be met; the message names the flag), 1 for any other error. Errors are
// printed as one line on stderr.
//
// Each subcommand is one Add...Command function (its flags) and one Run...Command function (its
// work); a new subcommand (verify, report, cross-check) adds one of each and a line in Main.
#include <CLI/CLI.hpp>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <iostream>
#include <string>

#include "common/privacy/rdp_accountant.h"
#include "common/util/error.h"

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

// ---- main ----

int Main(int argc, char** argv) {
  CLI::App app{
      "fedmed-audit: privacy accounting of DP-SGD (RDP of the Poisson-subsampled Gaussian "
      "mechanism, Mironov et al. 2019)."};
  app.require_subcommand(1);

  EpsilonFlags epsilon_flags;
  CLI::App* epsilon_cmd = AddEpsilonCommand(&app, &epsilon_flags);
  CalibrateFlags calibrate_flags;
  CLI::App* calibrate_cmd = AddCalibrateCommand(&app, &calibrate_flags);

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

int main(int argc, char** argv) { return fedmed::Main(argc, argv); }
