// Shared by the tests of configuration files (config_test, model_config_test,
// site_data_config_test, site_privacy_config_test, provision_test): a fixture that writes files
// into a temporary directory, the smallest site configuration that loads, and a substring
// assertion for error messages and rendered files.
#ifndef FEDMED_TESTS_CONFIG_CONFIG_TEST_UTIL_H_
#define FEDMED_TESTS_CONFIG_CONFIG_TEST_UTIL_H_

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "tests/test_util.h"

namespace fedmed::testing {

// Success when `text` contains `part`; the failure quotes both.
inline ::testing::AssertionResult Contains(const std::string& text, const std::string& part) {
  if (text.find(part) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "'" << text << "' does not contain '" << part << "'";
}

// A test with its own temporary directory dir_ (removed afterwards) and Write() to put files in it.
class ConfigFileTest : public ::testing::Test {
 protected:
  // Writes `text` to dir_/`name`, creating the directories on the way; returns the file's path.
  std::string Write(const std::string& name, const std::string& text) {
    const std::filesystem::path path = dir_ / name;
    std::filesystem::create_directories(path.parent_path());
    std::ofstream(path) << text;
    return path.string();
  }

  TempDir tmp_{"fedmed-config-test"};
  const std::filesystem::path dir_ = tmp_.path();
};

// The smallest site configuration LoadSiteConfig accepts: site-1 of a coordinator on
// localhost:7443 with relative TLS files, and a [data] section with only `path = data_path`,
// last, so that tests can append more [data] keys or other sections.
inline std::string MinimalSiteToml(const std::string& data_path = "medmnist/pneumoniamnist.npz") {
  return "[site]\n"
         "name = \"site-1\"\n"
         "coordinator = \"localhost:7443\"\n"
         "[tls]\n"
         "ca_cert = \"ca.pem\"\n"
         "cert = \"site-1.pem\"\n"
         "key = \"site-1.key\"\n"
         "[data]\n"
         "path = \"" + data_path + "\"\n";
}

}  // namespace fedmed::testing

#endif  // FEDMED_TESTS_CONFIG_CONFIG_TEST_UTIL_H_
