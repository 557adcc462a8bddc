// The federation PKI: issuing, inspecting and verifying certificates, key/cert pairing (file I/O:
// tests/util/file_io_test.cc).
#include "common/crypto/pki.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <ctime>
#include <string>
#include <thread>

#include "common/util/error.h"

namespace fedmed {
namespace {

// Whether `text` contains `part`; prints both when not (gmock is not linked).
::testing::AssertionResult Contains(const std::string& text, const std::string& part) {
  if (text.find(part) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "'" << text << "' does not contain '" << part << "'";
}

constexpr int64_t kDay = 86400;

class PkiTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { ca_ = new KeyAndCert(CreateCa("fedmed-ca", 3650)); }
  static void TearDownTestSuite() {
    delete ca_;
    ca_ = nullptr;
  }

  static KeyAndCert Site(const std::string& name) {
    CertificateRequest request;
    request.common_name = name;
    return IssueCertificate(*ca_, request);
  }

  static KeyAndCert* ca_;
};

KeyAndCert* PkiTest::ca_ = nullptr;

TEST_F(PkiTest, CaIsSelfSignedWithRequestedValidity) {
  const CertificateInfo info = InspectCertificate(ca_->cert_pem);
  EXPECT_EQ(info.common_name, "fedmed-ca");
  EXPECT_EQ(info.issuer_common_name, "fedmed-ca");
  EXPECT_EQ(info.not_after - info.not_before, 3650 * kDay + 300);
  EXPECT_NE(ca_->key_pem.find("BEGIN PRIVATE KEY"), std::string::npos);
  EXPECT_TRUE(VerifyPeerCertificate(ca_->cert_pem, ca_->cert_pem, std::time(nullptr),
                                    CertificatePurpose::kClientAuth)
                  .reason.find("not valid for client authentication") != std::string::npos)
      << "the CA's key usage must not allow it to act as a TLS client";
}

TEST_F(PkiTest, IssuedSiteCertificateVerifiesForClientAuth) {
  const KeyAndCert site = Site("site-1");
  const PeerCheck check = VerifyPeerCertificate(site.cert_pem, ca_->cert_pem, std::time(nullptr),
                                                CertificatePurpose::kClientAuth);
  EXPECT_TRUE(check.ok) << check.reason;
  EXPECT_EQ(check.common_name, "site-1");
  EXPECT_EQ(check.reason, "");
  // A chain (leaf first, then the CA) verifies too.
  EXPECT_TRUE(
      VerifyPeerCertificate(site.cert_pem + ca_->cert_pem, ca_->cert_pem, std::time(nullptr)).ok);
  // A client-only certificate cannot serve as the coordinator.
  const PeerCheck as_server = VerifyPeerCertificate(site.cert_pem, ca_->cert_pem,
                                                    std::time(nullptr),
                                                    CertificatePurpose::kServerAuth);
  EXPECT_FALSE(as_server.ok);
  EXPECT_EQ(as_server.reason,
            "certificate CN=site-1 is not valid for server authentication (extended key usage)");
}

// Operator certificates (fedmed-admin) and site certificates never pass as each other, in either
// direction; only both role markers together make an operator.
TEST_F(PkiTest, OperatorAndSiteCertificatesKeepTheirRoles) {
  CertificateRequest request;
  request.common_name = "fedmed-operator";
  request.operator_role = true;
  const KeyAndCert op = IssueCertificate(*ca_, request);
  const CertificateInfo info = InspectCertificate(op.cert_pem);
  EXPECT_EQ(info.organizational_unit, kOperatorOrganizationalUnit);
  EXPECT_TRUE(info.operator_role);
  const std::time_t now = std::time(nullptr);
  EXPECT_TRUE(VerifyPeerCertificate(op.cert_pem, ca_->cert_pem, now,
                                    CertificatePurpose::kOperator).ok);
  const PeerCheck as_site = VerifyPeerCertificate(op.cert_pem, ca_->cert_pem, now,
                                                  CertificatePurpose::kClientAuth);
  EXPECT_FALSE(as_site.ok);
  EXPECT_TRUE(Contains(as_site.reason, "is an operator certificate"));

  const KeyAndCert site = Site("site-1");
  EXPECT_FALSE(InspectCertificate(site.cert_pem).operator_role);
  const PeerCheck site_as_operator = VerifyPeerCertificate(site.cert_pem, ca_->cert_pem, now,
                                                           CertificatePurpose::kOperator);
  EXPECT_FALSE(site_as_operator.ok);
  EXPECT_TRUE(Contains(site_as_operator.reason, "is not an operator certificate"));

  // The OU alone (no operator EKU) is neither a site nor an operator.
  CertificateRequest ou_only;
  ou_only.common_name = "pretender";
  ou_only.organizational_unit = kOperatorOrganizationalUnit;
  const KeyAndCert pretender = IssueCertificate(*ca_, ou_only);
  EXPECT_FALSE(VerifyPeerCertificate(pretender.cert_pem, ca_->cert_pem, now,
                                     CertificatePurpose::kOperator).ok);
  EXPECT_FALSE(VerifyPeerCertificate(pretender.cert_pem, ca_->cert_pem, now,
                                     CertificatePurpose::kClientAuth).ok);

  // An operator certificate is a client certificate and nothing else.
  CertificateRequest server;
  server.common_name = "x";
  server.operator_role = true;
  server.server_auth = true;
  EXPECT_THROW(IssueCertificate(*ca_, server), Error);
}

TEST_F(PkiTest, CoordinatorCertificateCarriesSubjectAltNames) {
  CertificateRequest request;
  request.common_name = "coordinator";
  request.dns_names = {"localhost", "fl.hospital.example"};
  request.ip_addresses = {"127.0.0.1", "::1", "2001:db8::7"};
  request.server_auth = true;
  request.client_auth = false;
  request.validity_days = 10;
  const KeyAndCert coordinator = IssueCertificate(*ca_, request);

  const CertificateInfo info = InspectCertificate(coordinator.cert_pem);
  EXPECT_EQ(info.common_name, "coordinator");
  EXPECT_EQ(info.issuer_common_name, "fedmed-ca");
  EXPECT_EQ(info.dns_names, (std::vector<std::string>{"localhost", "fl.hospital.example"}));
  EXPECT_EQ(info.ip_addresses, (std::vector<std::string>{"127.0.0.1", "::1", "2001:db8::7"}));
  EXPECT_EQ(info.not_after - info.not_before, 10 * kDay + 300);
  EXPECT_LE(info.not_before, std::time(nullptr) - 299);
  EXPECT_EQ(info.sha256_fingerprint.size(), 32 * 3 - 1);
  EXPECT_EQ(info.sha256_fingerprint[2], ':');
  EXPECT_NE(info.sha256_fingerprint, InspectCertificate(ca_->cert_pem).sha256_fingerprint);

  EXPECT_TRUE(VerifyPeerCertificate(coordinator.cert_pem, ca_->cert_pem, std::time(nullptr),
                                    CertificatePurpose::kServerAuth)
                  .ok);
}

TEST_F(PkiTest, ServerOnlyCertificateFailsClientAuthOnExtendedKeyUsage) {
  CertificateRequest request;
  request.common_name = "coordinator";
  request.server_auth = true;
  request.client_auth = false;
  const KeyAndCert server = IssueCertificate(*ca_, request);
  const PeerCheck check = VerifyPeerCertificate(server.cert_pem, ca_->cert_pem, std::time(nullptr),
                                                CertificatePurpose::kClientAuth);
  EXPECT_FALSE(check.ok);
  EXPECT_EQ(check.common_name, "coordinator");
  EXPECT_EQ(check.reason,
            "certificate CN=coordinator is not valid for client authentication (extended key "
            "usage)");
}

TEST_F(PkiTest, CertificateFromAnotherCaNamesTheFederationCa) {
  const KeyAndCert other_ca = CreateCa("other-ca", 3650);
  CertificateRequest request;
  request.common_name = "site-9";
  const KeyAndCert intruder = IssueCertificate(other_ca, request);
  const PeerCheck check =
      VerifyPeerCertificate(intruder.cert_pem, ca_->cert_pem, std::time(nullptr));
  EXPECT_FALSE(check.ok);
  EXPECT_EQ(check.common_name, "site-9");
  EXPECT_EQ(check.reason,
            "certificate CN=site-9 is not issued by the federation CA (CN=fedmed-ca): unable to "
            "get local issuer certificate (it was issued by CN=other-ca)");
  // Even with its own CA appended as a chain, it does not reach the federation CA.
  const PeerCheck chained = VerifyPeerCertificate(intruder.cert_pem + other_ca.cert_pem,
                                                  ca_->cert_pem, std::time(nullptr));
  EXPECT_FALSE(chained.ok);
  EXPECT_TRUE(Contains(chained.reason, "is not issued by the federation CA (CN=fedmed-ca)"));
}

TEST_F(PkiTest, ExpiredCertificateSaysWhenItExpired) {
  CertificateRequest request;
  request.common_name = "site-1";
  request.not_before_offset_seconds = -10 * kDay;
  request.not_after_offset_seconds = -kDay;
  const KeyAndCert expired = IssueCertificate(*ca_, request);
  const CertificateInfo info = InspectCertificate(expired.cert_pem);
  const PeerCheck check =
      VerifyPeerCertificate(expired.cert_pem, ca_->cert_pem, std::time(nullptr));
  EXPECT_FALSE(check.ok);
  EXPECT_EQ(check.reason, "certificate CN=site-1 expired on " + FormatUtc(info.not_after));
}

TEST_F(PkiTest, VerificationHonoursTheGivenTime) {
  const KeyAndCert site = Site("site-2");
  const CertificateInfo info = InspectCertificate(site.cert_pem);
  EXPECT_TRUE(VerifyPeerCertificate(site.cert_pem, ca_->cert_pem, info.not_after - 1).ok);
  const PeerCheck later = VerifyPeerCertificate(site.cert_pem, ca_->cert_pem, info.not_after + 1);
  EXPECT_FALSE(later.ok);
  EXPECT_TRUE(Contains(later.reason, "CN=site-2 expired on"));
}

TEST_F(PkiTest, NotYetValidCertificateSaysFromWhen) {
  CertificateRequest request;
  request.common_name = "site-3";
  request.not_before_offset_seconds = kDay;
  const KeyAndCert future = IssueCertificate(*ca_, request);
  const CertificateInfo info = InspectCertificate(future.cert_pem);
  const PeerCheck check = VerifyPeerCertificate(future.cert_pem, ca_->cert_pem, std::time(nullptr));
  EXPECT_FALSE(check.ok);
  EXPECT_EQ(check.reason, "certificate CN=site-3 is not valid before " +
                              FormatUtc(info.not_before) + " (check both machines' clocks)");
  EXPECT_TRUE(VerifyPeerCertificate(future.cert_pem, ca_->cert_pem, info.not_before + 1).ok);
}

TEST_F(PkiTest, FormatUtcIsIsoLike) {
  EXPECT_EQ(FormatUtc(1767225600), "2026-01-01 00:00:00 UTC");
}

TEST_F(PkiTest, MalformedPeerCertificateIsAFailedCheckNotAnException) {
  const PeerCheck check = VerifyPeerCertificate("hello", ca_->cert_pem, std::time(nullptr));
  EXPECT_FALSE(check.ok);
  EXPECT_TRUE(Contains(check.reason, "peer certificate: not a PEM certificate"));
  EXPECT_THROW(VerifyPeerCertificate(Site("x").cert_pem, "not a CA", std::time(nullptr)),
               CryptoError);
  EXPECT_THROW(InspectCertificate("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
               CryptoError);
}

TEST_F(PkiTest, KeyCertificateMismatchIsDetected) {
  const KeyAndCert a = Site("site-a");
  const KeyAndCert b = Site("site-b");
  EXPECT_NO_THROW(CheckKeyMatchesCertificate(a.key_pem, a.cert_pem, "site.toml [tls] key"));
  try {
    CheckKeyMatchesCertificate(b.key_pem, a.cert_pem, "site.toml [tls] key");
    FAIL() << "mismatch not detected";
  } catch (const CryptoError& e) {
    EXPECT_TRUE(Contains(e.what(), "site.toml [tls] key"));
    EXPECT_TRUE(Contains(e.what(), "CN=site-a"));
  }
  EXPECT_THROW(CheckKeyMatchesCertificate(a.cert_pem, a.cert_pem, "key"), CryptoError);
  EXPECT_THROW(CheckKeyMatchesCertificate(a.key_pem, a.key_pem, "cert"), CryptoError);
  // Issuing with a CA whose key is not the CA certificate's fails too.
  CertificateRequest request;
  request.common_name = "site-c";
  EXPECT_THROW(IssueCertificate(KeyAndCert{a.key_pem, ca_->cert_pem}, request), CryptoError);
}

TEST_F(PkiTest, MalformedRequestsAreRejected) {
  CertificateRequest bad_ip;
  bad_ip.common_name = "coordinator";
  bad_ip.ip_addresses = {"300.1.2.3"};
  EXPECT_THROW(IssueCertificate(*ca_, bad_ip), Error);

  CertificateRequest no_usage;
  no_usage.common_name = "site-1";
  no_usage.client_auth = false;
  EXPECT_THROW(IssueCertificate(*ca_, no_usage), Error);

  const KeyAndCert short_ca = CreateCa("short-ca", 30);
  CertificateRequest outlives_ca;
  outlives_ca.common_name = "site-1";
  outlives_ca.validity_days = 29;
  EXPECT_NO_THROW(IssueCertificate(short_ca, outlives_ca));
  outlives_ca.validity_days = 31;
  try {
    IssueCertificate(short_ca, outlives_ca);
    FAIL() << "a certificate outliving its CA was issued";
  } catch (const Error& e) {
    EXPECT_TRUE(Contains(e.what(), "outlive the federation CA CN=short-ca"));
  }
  EXPECT_THROW(IssueCertificate(*ca_, CertificateRequest{}), Error);
  EXPECT_THROW(CreateCa("ca", 0), Error);
}

TEST_F(PkiTest, SameValidityAsTheCaEndsWithTheCaSecondsLater) {
  // fedmed-pki init --days 30 --ca-days 30: the site certificate is issued a second or more after
  // the CA, so now + 30 days is later than the CA's notAfter; it ends with the CA instead.
  const KeyAndCert ca = CreateCa("same-days-ca", 30);
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  CertificateRequest same;
  same.common_name = "site-1";
  same.validity_days = 30;
  const KeyAndCert site = IssueCertificate(ca, same);
  EXPECT_EQ(InspectCertificate(site.cert_pem).not_after, InspectCertificate(ca.cert_pem).not_after);
  const PeerCheck check = VerifyPeerCertificate(site.cert_pem, ca.cert_pem, std::time(nullptr),
                                                CertificatePurpose::kClientAuth);
  EXPECT_TRUE(check.ok) << check.reason;  // still a valid chain
}

}  // namespace
}  // namespace fedmed
