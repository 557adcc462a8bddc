// libFuzzer harness: a privacy log as fedmed-audit reads another party's log: VerifyLogContent
// under the writer's audit certificate (structure, hash chain, Ed25519 signatures; the
// certificate's validity is not checked, so that the checked-in seeds stay valid), then ReadLog
// and the audit of its entries (AuditSiteLog: epsilon recomputed from the recorded mechanism) and
// the cross-check of the log as a coordinator's log against itself as a site's (CrossCheckLogs).
// The audit certificate is fuzz/corpus/audit.pem (fuzz/make_seeds.cc wrote it and the seed logs).
#include <cstddef>
#include <cstdint>
#include <fstream>
#include <sstream>

#include "common/audit/log_audit.h"
#include "common/audit/privacy_log.h"
#include "common/crypto/audit_key.h"
#include "fuzz/fuzz_util.h"

namespace {

const fedmed::AuditVerifyingKey& Key() {
  static const fedmed::AuditVerifyingKey key = [] {
    const std::string path = std::string(FEDMED_FUZZ_SOURCE_DIR) + "/corpus/audit.pem";
    std::ifstream file(path);
    std::stringstream pem;
    pem << file.rdbuf();
    return fedmed::AuditVerifyingKey::FromCertificate(pem.str(), path);
  }();
  return key;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view content(reinterpret_cast<const char*>(data), size);
  fedmed::fuzz::ExpectOnlyFedmedErrors("fuzz_privacy_log", [&] {
    fedmed::VerifyLogContent(content, fedmed::PrivacyLogVerifier(Key(), /*check_time=*/false));
  });
  const std::string path = fedmed::fuzz::WriteScratchFile("privacy_log.jsonl", content);
  fedmed::fuzz::ExpectOnlyFedmedErrors("fuzz_privacy_log", [&] {
    const std::vector<fedmed::PrivacyLogEntry> entries = fedmed::ReadLog(path);
    fedmed::ToJson(fedmed::AuditSiteLog(entries, path));
    fedmed::CrossCheckLogs(entries, {entries});
  });
  return 0;
}
