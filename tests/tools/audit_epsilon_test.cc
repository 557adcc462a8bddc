// fedmed-audit epsilon / calibrate: the binary as an operator runs it.
#include <gtest/gtest.h>

#include <string>

#include "tests/test_util.h"

namespace fedmed {
namespace {

struct RunResult {
  int exit_status = -1;
  std::string output;
};

// Runs fedmed-audit with `args` through the shell; `merge_stderr` captures stderr too.
RunResult RunAudit(const std::string& args, bool merge_stderr) {
  RunResult result;
  result.output = testing::RunCommand("'" + testing::BinDir() + "/fedmed-audit' " + args +
                                          (merge_stderr ? " 2>&1" : " 2>/dev/null"),
                                      &result.exit_status);
  return result;
}

std::string FirstLine(const std::string& text) { return text.substr(0, text.find('\n')); }

const char* const kReference =
    "--noise-multiplier 1.1 --sampling-rate 0.004266666666666667 --steps 14062 --delta 1e-5";

TEST(AuditEpsilonTest, PrintsReferenceEpsilon) {
  const RunResult r = RunAudit(std::string("epsilon ") + kReference, false);
  ASSERT_EQ(r.exit_status, 0) << r.output;
  const double eps = std::stod(FirstLine(r.output));
  EXPECT_NEAR(eps, 2.597, 2.597e-3) << r.output;
  const std::string second = r.output.substr(r.output.find('\n') + 1);
  EXPECT_NE(second.find("at delta=1e-05, best RDP order "), std::string::npos) << r.output;
  EXPECT_NE(second.find("balle2020 conversion"), std::string::npos) << r.output;

  const RunResult classic =
      RunAudit(std::string("epsilon ") + kReference + " --conversion classic", false);
  ASSERT_EQ(classic.exit_status, 0) << classic.output;
  EXPECT_NEAR(std::stod(FirstLine(classic.output)), 3.008, 3.008e-3) << classic.output;
  EXPECT_NE(classic.output.find("classic conversion"), std::string::npos);
}

TEST(AuditEpsilonTest, CalibratesReferenceNoise) {
  const RunResult r = RunAudit(
      "calibrate --epsilon 2.597 --sampling-rate 0.004266666666666667 --steps 14062 "
      "--delta 1e-5",
      false);
  ASSERT_EQ(r.exit_status, 0) << r.output;
  EXPECT_NEAR(std::stod(FirstLine(r.output)), 1.1, 0.011) << r.output;
}

TEST(AuditEpsilonTest, BadArgumentsExitWithUsageError) {
  RunResult r = RunAudit(
      "epsilon --noise-multiplier 1.1 --sampling-rate 1.5 --steps 100 --delta 1e-5", true);
  EXPECT_EQ(r.exit_status, 2) << r.output;
  EXPECT_NE(r.output.find("--sampling-rate"), std::string::npos) << r.output;

  r = RunAudit("epsilon --noise-multiplier 1.1 --sampling-rate 0.01 --delta 1e-5", true);
  EXPECT_EQ(r.exit_status, 2) << r.output;
  EXPECT_NE(r.output.find("--steps"), std::string::npos) << r.output;

  r = RunAudit("epsilon --noise-multiplier abc --sampling-rate 0.01 --steps 10 --delta 1e-5",
               true);
  EXPECT_EQ(r.exit_status, 2) << r.output;
  EXPECT_NE(r.output.find("--noise-multiplier"), std::string::npos) << r.output;

  r = RunAudit(std::string("epsilon ") + kReference + " --conversion balle", true);
  EXPECT_EQ(r.exit_status, 2) << r.output;
  EXPECT_NE(r.output.find("--conversion"), std::string::npos) << r.output;

  r = RunAudit("epsilon --noise-multiplier 1.1 --sampling-rate 0.01 --steps 10 --delta 0", true);
  EXPECT_EQ(r.exit_status, 2) << r.output;
  EXPECT_NE(r.output.find("--delta"), std::string::npos) << r.output;

  r = RunAudit("calibrate --epsilon 0.01 --sampling-rate 0.01 --steps 10 --delta 1e-5", true);
  EXPECT_EQ(r.exit_status, 2) << r.output;
  EXPECT_NE(r.output.find("--epsilon"), std::string::npos) << r.output;

  r = RunAudit("", true);
  EXPECT_EQ(r.exit_status, 2) << r.output;
}

}  // namespace
}  // namespace fedmed
