// [transport] update_encoding in coordinator.toml: its values, and its refusal with secure
// aggregation (masked inputs are fixed-point words already).
#include <gtest/gtest.h>

#include <string>

#include "common/config/coordinator_config.h"
#include "common/util/error.h"

namespace fedmed {
namespace {

CoordinatorConfig Base() {
  CoordinatorConfig c;
  c.tls = TlsFiles{"ca.pem", "coordinator.pem", "coordinator.key"};
  c.allowed_sites = {"site-1", "site-2", "site-3"};
  c.in_channels = 1;
  c.num_classes = 2;
  return c;
}

std::string ErrorOf(const CoordinatorConfig& c) {
  try {
    ValidateCoordinatorConfig(c);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(TransportConfigTest, UpdateEncodingTakesTheThreeEncodings) {
  CoordinatorConfig c = Base();
  EXPECT_EQ(c.update_encoding, "float32");
  for (const char* name : {"float32", "float16", "int8"}) {
    c.update_encoding = name;
    EXPECT_EQ(ErrorOf(c), "") << name;
  }
  c.update_encoding = "int4";
  EXPECT_EQ(ErrorOf(c),
            "(configuration built in code): [transport] update_encoding: expected \"float32\", "
            "\"float16\" or \"int8\", got \"int4\"");
}

TEST(TransportConfigTest, CompressedUpdatesAreRefusedWithSecureAggregation) {
  CoordinatorConfig c = Base();
  c.secure_aggregation.enabled = true;
  EXPECT_EQ(ErrorOf(c), "");  // float32
  for (const char* name : {"float16", "int8"}) {
    c.update_encoding = name;
    const std::string error = ErrorOf(c);
    EXPECT_NE(error.find("[transport] update_encoding: expected \"float32\" with "
                         "[secure_aggregation] enabled = true"),
              std::string::npos)
        << error;
  }
}

}  // namespace
}  // namespace fedmed
