// The federation CRL (common/crypto/crl.h): what CreateCrl signs is what ReadCrl reads back, a
// CRL of another CA or an altered one is refused, and CrlWatcher picks up a replaced file without
// a restart and keeps the last good list when the new file is broken.
#include "common/crypto/crl.h"

#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <thread>

#include "common/util/error.h"
#include "common/util/file_io.h"
#include "tests/test_util.h"

namespace fedmed {
namespace {

KeyAndCert Site(const KeyAndCert& ca, const std::string& name) {
  CertificateRequest r;
  r.common_name = name;
  r.validity_days = 10;
  return IssueCertificate(ca, r);
}

TEST(CrlTest, WhatIsSignedIsReadBack) {
  const KeyAndCert ca = CreateCa("fed-ca", 10);
  const KeyAndCert site = Site(ca, "site-2");
  RevokedCertificate entry;
  entry.serial = CertificateSerial(site.cert_pem);
  entry.revoked_at = 1790000000;
  entry.reason = "keyCompromise";
  const std::time_t before = std::time(nullptr);
  const CrlContents crl = ReadCrl(CreateCrl(ca, {entry}, 7, 30), ca.cert_pem, "crl.pem");
  EXPECT_EQ(crl.number, 7);
  EXPECT_GE(crl.this_update, before);
  EXPECT_NEAR(static_cast<double>(crl.next_update - crl.this_update), 30 * 86400.0, 1.0);
  ASSERT_EQ(crl.revoked.size(), 1u);
  EXPECT_EQ(crl.revoked[0].serial, entry.serial);
  EXPECT_EQ(crl.revoked[0].revoked_at, 1790000000);
  EXPECT_EQ(crl.revoked[0].reason, "keyCompromise");
  EXPECT_NE(crl.Find(entry.serial), nullptr);
  EXPECT_EQ(crl.Find(CertificateSerial(Site(ca, "site-2").cert_pem)), nullptr);  // reissued
  // The openssl binary reads it as a CRL of this CA too.
  testing::TempDir dir("fedmed-crl");
  std::ofstream(dir / "crl.pem") << CreateCrl(ca, {entry}, 7, 30);
  std::ofstream(dir / "ca.pem") << ca.cert_pem;
  int status = 0;
  const std::string text = testing::RunCommand(
      "openssl crl -in " + (dir / "crl.pem") + " -CAfile " + (dir / "ca.pem") +
          " -noout -text 2>&1",
      &status);
  EXPECT_EQ(status, 0) << text;
  EXPECT_NE(text.find("verify OK"), std::string::npos) << text;
  EXPECT_NE(text.find("Key Compromise"), std::string::npos) << text;
}

TEST(CrlTest, AnotherCasOrAnAlteredCrlIsRefused) {
  const KeyAndCert ca = CreateCa("fed-ca", 10);
  const KeyAndCert other = CreateCa("other-ca", 10);
  EXPECT_NE(testing::ErrorMessageOf<CryptoError>([&] { ReadCrl(CreateCrl(other, {}, 1, 1), ca.cert_pem, "x"); })
                .find("not issued by the federation CA"),
            std::string::npos);
  // Same issuer name, another key.
  const KeyAndCert impostor = CreateCa("fed-ca", 10);
  EXPECT_NE(
      testing::ErrorMessageOf<CryptoError>([&] { ReadCrl(CreateCrl(impostor, {}, 1, 1), ca.cert_pem, "x"); })
          .find("signature does not verify"),
      std::string::npos);
  EXPECT_THROW(ReadCrl("not a crl", ca.cert_pem, "x"), CryptoError);
  RevokedCertificate bad;
  bad.serial = "XYZ";
  EXPECT_THROW(CreateCrl(ca, {bad}, 1, 1), Error);
  bad.serial = "AB";
  bad.reason = "certificateHold";
  EXPECT_THROW(CreateCrl(ca, {bad}, 1, 1), Error);
  EXPECT_THROW(CreateCrl(ca, {}, 1, 0), Error);
}

TEST(CrlTest, TheWatcherReloadsAReplacedFileAndKeepsTheLastGoodOne) {
  const KeyAndCert ca = CreateCa("fed-ca", 10);
  testing::TempDir dir("fedmed-crl");
  const std::string path = dir / "crl.pem";
  WriteFileAtomically(path, CreateCrl(ca, {}, 1, 30), "crl");
  std::vector<std::string> reports;
  std::mutex mu;
  CrlWatcher watcher(path, ca.cert_pem, [&](bool is_error, const std::string& message) {
    std::lock_guard<std::mutex> lock(mu);
    reports.push_back((is_error ? "E " : "I ") + message);
  });
  EXPECT_EQ(watcher.Current()->number, 1);

  RevokedCertificate entry;
  entry.serial = "1234ABCD";
  entry.revoked_at = std::time(nullptr);
  WriteFileAtomically(path, CreateCrl(ca, {entry}, 2, 30), "crl");
  watcher.Reload();  // what SIGHUP does: at once
  EXPECT_EQ(watcher.Current()->number, 2);
  EXPECT_NE(watcher.Current()->Find("1234ABCD"), nullptr);

  // Without a signal: noticed on a Current() call at most a second later.
  WriteFileAtomically(path, CreateCrl(ca, {}, 3, 30), "crl");
  const auto start = std::chrono::steady_clock::now();
  while (watcher.Current()->number != 3 &&
         std::chrono::steady_clock::now() - start < std::chrono::seconds(3)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(watcher.Current()->number, 3);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(1500));

  // A broken file (another CA's) keeps list 3 in force, reported as an error.
  WriteFileAtomically(path, CreateCrl(CreateCa("other-ca", 10), {}, 4, 30), "crl");
  watcher.Reload();
  EXPECT_EQ(watcher.Current()->number, 3);
  std::lock_guard<std::mutex> lock(mu);
  ASSERT_FALSE(reports.empty());
  EXPECT_EQ(reports.back().rfind("E ", 0), 0u) << reports.back();
  EXPECT_NE(reports.back().find("stays in force"), std::string::npos) << reports.back();

  // A coordinator does not start with a CRL it cannot verify.
  EXPECT_THROW(CrlWatcher(path, ca.cert_pem, nullptr), CryptoError);
  EXPECT_THROW(CrlWatcher(dir / "missing.pem", ca.cert_pem, nullptr), Error);
}

}  // namespace
}  // namespace fedmed
