// Authentication in the TLS handshake (common/transport/client_auth.h), against a real gRPC
// server on loopback built from the coordinator's credentials: the `openssl s_client` binary
// (Debian's openssl package) presents a properly issued site certificate, a self-signed one, one
// from another CA, an expired one, one whose CN is not allowed, a revoked one, none, and the
// operator's. Only the first and the operator's reach HTTP/2: the server's SETTINGS frame comes
// back. For the others the server ends the connection inside the handshake, before any HTTP/2
// frame, and logs why, naming the certificate. A gRPC client with another CA's certificate gets
// UNAVAILABLE, which DescribeClientError turns into the site's sentence.
#include <gtest/gtest.h>
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <fstream>
#include <iostream>
#include <mutex>

#include "common/config/tls_files.h"
#include "common/crypto/crl.h"
#include "common/crypto/pki.h"
#include "common/transport/client_auth.h"
#include "common/transport/tls.h"
#include "proto/fedmed.grpc.pb.h"
#include "tests/test_util.h"

namespace fedmed {
namespace {

using testing::TempDir;

class HandshakeAuthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ca_ = CreateCa("fed-ca", 30);
    Write("ca.pem", ca_.cert_pem);
    CertificateRequest server;
    server.common_name = "fed-coordinator";
    server.ip_addresses = {"127.0.0.1"};
    server.server_auth = true;
    server.client_auth = false;
    server.validity_days = 10;
    WriteParty("coordinator", IssueCertificate(ca_, server));
    WriteParty("site-1", Site(ca_, "site-1"));
    WriteParty("site-2", Site(ca_, "site-2"));
    WriteParty("site-9", Site(ca_, "site-9"));  // valid, not on the allow-list
    CertificateRequest expired;
    expired.common_name = "site-1";
    expired.not_before_offset_seconds = -7200;
    expired.not_after_offset_seconds = -3600;
    WriteParty("expired", IssueCertificate(ca_, expired));
    const KeyAndCert other_ca = CreateCa("other-ca", 30);
    WriteParty("other-ca", Site(other_ca, "site-1"));
    // Self-signed: a CA certificate of its own, CN site-1.
    WriteParty("self-signed", CreateCa("site-1", 30));
    CertificateRequest op;
    op.common_name = "fed-operator";
    op.operator_role = true;
    op.validity_days = 10;
    WriteParty("operator", IssueCertificate(ca_, op));
    // site-2 is revoked.
    RevokedCertificate revoked;
    revoked.serial = CertificateSerial(Read("site-2.pem"));
    revoked.revoked_at = std::time(nullptr) - 60;
    revoked.reason = "keyCompromise";
    Write("crl.pem", CreateCrl(ca_, {revoked}, 2, 7));

    auto policy = std::make_shared<ClientAuthPolicy>();
    policy->ca_pem = ca_.cert_pem;
    policy->allowed_sites = {"site-1", "site-2"};
    policy->crl = std::make_shared<CrlWatcher>(dir_ / "crl.pem", ca_.cert_pem, nullptr);
    TlsFiles files{dir_ / "ca.pem", dir_ / "coordinator.pem", dir_ / "coordinator.key"};
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0",
                             MakeAuthenticatingServerCredentials(
                                 files, policy,
                                 [this](const std::string& line) {
                                   std::lock_guard<std::mutex> lock(mu_);
                                   refusals_ += line + "\n";
                                 }),
                             &port_);
    // The Federation service with no method implemented: a call that passes the handshake is
    // answered UNIMPLEMENTED.
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    ASSERT_TRUE(server_ != nullptr);
    ASSERT_GT(port_, 0);
  }

  void TearDown() override {
    if (server_) server_->Shutdown(std::chrono::system_clock::now());
  }

  static KeyAndCert Site(const KeyAndCert& ca, const std::string& name) {
    CertificateRequest r;
    r.common_name = name;
    r.validity_days = 10;
    return IssueCertificate(ca, r);
  }
  void Write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name) << text;
  }
  std::string Read(const std::string& name) { return testing::ReadFile(dir_ / name); }
  void WriteParty(const std::string& stem, const KeyAndCert& party) {
    Write(stem + ".pem", party.cert_pem);
    Write(stem + ".key", party.key_pem);
  }

  struct Probe {
    std::string output;   // s_client's stdout (session summary and the bytes received)
    bool http2 = false;   // an HTTP/2 SETTINGS frame header came back
  };
  // `openssl s_client` with `stem`.pem/.key ("" for no certificate), trusting our CA, offering
  // h2, with `options`; it sends nothing and reads what the server sends for up to 3 s.
  Probe SClient(const std::string& stem, const std::string& options = "") {
    std::string command = "timeout 3 openssl s_client -connect 127.0.0.1:" +
                          std::to_string(port_) + " -CAfile " + (dir_ / "ca.pem") +
                          " -alpn h2 -ign_eof" + options;
    if (!stem.empty()) {
      command += " -cert " + (dir_ / (stem + ".pem")) + " -key " + (dir_ / (stem + ".key"));
    }
    command += " </dev/null 2>&1";
    int status = 0;
    Probe probe;
    probe.output = testing::RunCommand(command, &status);
    // A frame header: 24-bit length, type 0x4 (SETTINGS), flags 0, stream 0. s_client's own
    // text never holds these zero bytes.
    static const std::string kSettings("\x04\x00\x00\x00\x00\x00", 6);
    const size_t at = probe.output.find(kSettings);
    probe.http2 = at != std::string::npos && at >= 3 && probe.output[at - 3] == '\0';
    return probe;
  }

  std::string Refusals() {
    std::lock_guard<std::mutex> lock(mu_);
    return refusals_;
  }

  TempDir dir_{"fedmed-handshake"};
  KeyAndCert ca_;
  v1::Federation::Service service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  std::mutex mu_;
  std::string refusals_;
};

TEST_F(HandshakeAuthTest, AProperlyIssuedSiteCertificateReachesHttp2OverTls13) {
  const Probe probe = SClient("site-1");
  EXPECT_TRUE(probe.http2) << probe.output;
  EXPECT_NE(probe.output.find("TLSv1.3"), std::string::npos) << probe.output;
  EXPECT_EQ(Refusals(), "");
}

// TLS 1.3 only: a client that offers only TLS 1.2 gets no handshake, even with a good
// certificate.
TEST_F(HandshakeAuthTest, AClientOfferingOnlyTls12IsRefused) {
  const Probe probe = SClient("site-1", " -tls1_2");
  EXPECT_FALSE(probe.http2) << probe.output;
  // The server sent no certificate: the handshake ended at its first message.
  EXPECT_NE(probe.output.find("no peer certificate available"), std::string::npos) << probe.output;
}

TEST_F(HandshakeAuthTest, TheOperatorCertificatePassesTheHandshake) {
  const Probe probe = SClient("operator");
  EXPECT_TRUE(probe.http2) << probe.output;
  EXPECT_EQ(Refusals(), "");
}

TEST_F(HandshakeAuthTest, EveryUnauthenticatedPeerIsRefusedBeforeAnyHttp2Frame) {
  struct Case {
    const char* stem;
    std::string logged;  // what the coordinator's log line says
  };
  const Case cases[] = {
      {"self-signed", "CN=site-1 is not issued by the federation CA"},
      {"other-ca", "CN=site-1 is not issued by the federation CA (CN=fed-ca)"},
      {"expired", "CN=site-1 expired on"},
      {"site-9", "CN=site-9 is valid but not in the coordinator's allow-list"},
      {"site-2", "CN=site-2 (serial " + CertificateSerial(Read("site-2.pem")) +
                     ") was revoked on"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.stem);
    const Probe probe = SClient(c.stem);
    EXPECT_FALSE(probe.http2) << probe.output;
    EXPECT_NE(Refusals().find(std::string("refused a TLS handshake: certificate ") + c.logged),
              std::string::npos)
        << Refusals();
  }
  const Probe none = SClient("");
  EXPECT_FALSE(none.http2) << none.output;
}

// The operator's certificate is revocable like a site's.
TEST_F(HandshakeAuthTest, ARevokedOperatorCertificateIsRefused) {
  RevokedCertificate revoked;
  revoked.serial = CertificateSerial(Read("operator.pem"));
  revoked.revoked_at = std::time(nullptr) - 60;
  Write("operator-crl.pem", CreateCrl(ca_, {revoked}, 3, 7));
  ClientAuthPolicy policy;
  policy.ca_pem = ca_.cert_pem;
  policy.allowed_sites = {"site-1"};
  policy.crl = std::make_shared<CrlWatcher>(dir_ / "operator-crl.pem", ca_.cert_pem, nullptr);
  const ClientCheck check = CheckClientCertificate(Read("operator.pem"), policy, std::time(nullptr));
  EXPECT_EQ(check.outcome, ClientCheck::Outcome::kRevoked) << check.reason;
  EXPECT_EQ(check.common_name, "fed-operator");
  EXPECT_TRUE(CheckClientCertificate(Read("site-1.pem"), policy, std::time(nullptr)).ok());
}

// What an unauthenticated peer writes into its certificate stays on one line of the log.
TEST_F(HandshakeAuthTest, ACommonNameWithLineBreaksStaysOnOneLogLine) {
  WriteParty("forged", CreateCa("site-1\n[coordinator] [info] site-1 registered", 1));
  EXPECT_FALSE(SClient("forged").http2);
  const std::string log = Refusals();
  EXPECT_EQ(std::count(log.begin(), log.end(), '\n'), 1) << log;
  EXPECT_NE(log.find("CN=site-1?[coordinator]"), std::string::npos) << log;
}

// A peer that reconnects in a loop cannot flood the coordinator's log: 20 lines per 10 s.
TEST_F(HandshakeAuthTest, RefusalsAreLoggedAtMostTwentyPerTenSeconds) {
  for (int i = 0; i < 25; ++i) EXPECT_FALSE(SClient("other-ca").http2);
  const std::string log = Refusals();
  size_t lines = 0;
  for (size_t at = log.find("refused a TLS handshake"); at != std::string::npos;
       at = log.find("refused a TLS handshake", at + 1)) {
    ++lines;
  }
  EXPECT_EQ(lines, 20u) << log;
}

// A site's view: its channel never connects, and the sentence says why.
TEST_F(HandshakeAuthTest, AGrpcClientFromAnotherCaGetsUnavailableWithTheSitesSentence) {
  const auto call = [&](const std::string& stem) {
    TlsFiles files{dir_ / "ca.pem", dir_ / (stem + ".pem"), dir_ / (stem + ".key")};
    auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(port_),
                                       MakeChannelCredentials(files));
    auto stub = v1::Federation::NewStub(channel);
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::RegisterRequest request;
    v1::RegisterReply reply;
    return stub->Register(&context, request, &reply);
  };
  // The control: the call passes the handshake and reaches a server without that service.
  EXPECT_EQ(call("site-1").error_code(), grpc::StatusCode::UNIMPLEMENTED);
  const grpc::Status refused = call("other-ca");
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::UNAVAILABLE) << refused.error_message();
  const std::string sentence = DescribeClientError(refused, "127.0.0.1");
  std::cout << "the site's log would say: " << sentence << "\n";
  EXPECT_NE(sentence.find("the coordinator refused our certificate during the TLS handshake"),
            std::string::npos)
      << sentence;
}

}  // namespace
}  // namespace fedmed
