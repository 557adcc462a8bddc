// Privacy-log entries signed by a revoked audit certificate (common/audit/log_revocation.h):
// entries up to the revocation time pass, the first one after it is refused with its line and
// the revocation, and a certificate not on the CRL passes whatever the times.
#include "common/audit/log_revocation.h"

#include <gtest/gtest.h>

#include "tests/audit/audit_test_util.h"
#include "tests/test_util.h"

namespace fedmed {
namespace {

TEST(LogRevocationTest, EntriesAfterTheRevocationOfTheirCertificateAreRefused) {
  const KeyAndCert ca = CreateCa("fed-ca", 30);
  const KeyAndCert site = testing::IssueAuditCertificate(ca, "site-2");
  const KeyAndCert other = testing::IssueAuditCertificate(ca, "site-1");
  testing::TempDir dir("fedmed-log-revocation");
  const std::string path = dir / "privacy_log.jsonl";
  {
    PrivacyLogWriter log(path, site.key_pem, site.cert_pem);
    log.Append(kEventStart, {{"role", "site"}});
    log.Append(kEventStart, {{"role", "site"}});
  }
  const LogVerification verified = VerifyLog(path, site.cert_pem, ca.cert_pem);
  ASSERT_TRUE(verified.ok) << verified.what;
  const std::vector<PrivacyLogEntry> entries = ReadLog(path);
  const std::time_t written = *ParseLogTime(entries.front().time);

  const auto crl_revoking = [&](const KeyAndCert& cert, std::time_t at) {
    RevokedCertificate r;
    r.serial = CertificateSerial(cert.cert_pem);
    r.revoked_at = at;
    r.reason = "keyCompromise";
    return ReadCrl(CreateCrl(ca, {r}, 2, 30), ca.cert_pem, "crl.pem");
  };
  // Revoked an hour before the entries: line 1 is refused.
  const LogVerification before =
      CheckRevokedSigner(verified, path, site.cert_pem, crl_revoking(site, written - 3600));
  EXPECT_FALSE(before.ok);
  EXPECT_EQ(before.first_bad_line, 1);
  EXPECT_EQ(before.entries, 0);
  EXPECT_NE(before.what.find("CN=site-2"), std::string::npos) << before.what;
  EXPECT_NE(before.what.find("which was revoked on"), std::string::npos) << before.what;
  EXPECT_NE(before.what.find("keyCompromise"), std::string::npos) << before.what;
  // Revoked an hour after them: every entry stays valid.
  EXPECT_TRUE(
      CheckRevokedSigner(verified, path, site.cert_pem, crl_revoking(site, written + 3600)).ok);
  // Another certificate on the CRL does not touch this log.
  EXPECT_TRUE(
      CheckRevokedSigner(verified, path, site.cert_pem, crl_revoking(other, written - 3600)).ok);
  // A failed verification is passed on unchanged.
  LogVerification failed;
  failed.what = "bad chain";
  EXPECT_EQ(CheckRevokedSigner(failed, path, site.cert_pem, crl_revoking(site, 0)).what,
            "bad chain");
}

}  // namespace
}  // namespace fedmed
