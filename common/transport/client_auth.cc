#include "common/transport/client_auth.h"

#include <grpcpp/grpcpp.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_certificate_verifier.h>
#include <grpcpp/security/tls_credentials_options.h>
#include <openssl/bio.h>
#include <openssl/conf.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <mutex>

#include "common/config/tls_files.h"
#include "common/crypto/crl.h"
#include "common/crypto/pki.h"
#include "common/util/error.h"
#include "common/util/file_io.h"
#include "common/util/mutex.h"

namespace fedmed {

namespace {

// "certificate CN=site-2 (serial AB12...) was revoked on ... (keyCompromise)" when the
// certificate is on the CRL in force; "" otherwise.
std::string RevocationProblem(const std::string& peer_pem, const std::string& common_name,
                              const ClientAuthPolicy& policy) {
  if (!policy.crl) return "";
  const std::shared_ptr<const CrlContents> crl = policy.crl->Current();
  if (!crl) return "";
  const std::string serial = CertificateSerial(peer_pem);
  const RevokedCertificate* entry = crl->Find(serial);
  if (entry == nullptr) return "";
  return "certificate CN=" + common_name + " (serial " + serial + ") was revoked on " +
         FormatUtc(entry->revoked_at) +
         (entry->reason.empty() ? "" : " (" + entry->reason + ")") +
         " by the federation CA's revocation list ([tls] crl)";
}

// OpenSSL's own configuration (SSL_CONF, "system_default", the section every new SSL_CTX
// applies; see config(5) and SSL_CONF_cmd(3)) for this process: TLS 1.3 only. `Protocol = -ALL,
// TLSv1.3` sets SSL_OP_NO_TLSv1_2 and below on each SSL_CTX, which the TLS 1.2 minimum that gRPC
// 1.51 sets afterwards (SSL_CTX_set_min_proto_version) does not undo. The cipher string keeps
// Debian's security level 2. It replaces the system's ssl_conf for every SSL_CTX made later in
// the process (the status page's HTTPS too).
constexpr char kTls13Only[] =
    "fedmed_tls = fedmed_tls_section\n"
    "[fedmed_tls_section]\n"
    "ssl_conf = fedmed_ssl_section\n"
    "[fedmed_ssl_section]\n"
    "system_default = fedmed_system_default\n"
    "[fedmed_system_default]\n"
    "MinProtocol = TLSv1.3\n"
    "Protocol = -ALL, TLSv1.3\n"
    "CipherString = DEFAULT:@SECLEVEL=2\n";

void RequireTls13InThisProcess() {
  static std::once_flag once;
  std::call_once(once, [] {
    OPENSSL_init_ssl(0, nullptr);
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(kTls13Only, -1), BIO_free);
    std::unique_ptr<CONF, decltype(&NCONF_free)> conf(NCONF_new(nullptr), NCONF_free);
    long error_line = 0;
    if (!bio || !conf || NCONF_load_bio(conf.get(), bio.get(), &error_line) <= 0 ||
        CONF_modules_load(conf.get(), "fedmed_tls", 0) <= 0) {
      const unsigned long error = ERR_get_error();
      ERR_clear_error();
      char text[256] = "";
      ERR_error_string_n(error, text, sizeof text);
      throw CryptoError(std::string("configuring OpenSSL for TLS 1.3 only: ") + text);
    }
  });
}

// A refusal names what an unauthenticated peer put in its certificate (its CN): control
// characters become '?' and the line is cut at 400 bytes, so that it stays one line of the log.
std::string OneLogLine(const std::string& text) {
  std::string line = text.substr(0, 400);
  for (char& c : line) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  }
  if (text.size() > line.size()) line += "...";
  return line;
}

// Passes at most kRefusalLinesPerWindow refusal lines per kRefusalWindow to `sink`, then one line
// saying how many were left out: a peer that reconnects in a loop cannot flood the log.
constexpr int kRefusalLinesPerWindow = 20;
constexpr auto kRefusalWindow = std::chrono::seconds(10);

class RefusalLog {
 public:
  explicit RefusalLog(std::function<void(const std::string&)> sink) : sink_(std::move(sink)) {}

  void Add(const std::string& line) {
    if (!sink_) return;
    std::string summary;
    bool pass = false;
    {
      MutexLock lock(&mu_);
      const auto now = std::chrono::steady_clock::now();
      if (now - window_start_ >= kRefusalWindow) {
        if (dropped_ > 0) {
          summary = "refused " + std::to_string(dropped_) +
                    " more TLS handshake(s) in the last 10 s (not logged one by one)";
        }
        window_start_ = now;
        lines_ = 0;
        dropped_ = 0;
      }
      pass = lines_ < kRefusalLinesPerWindow;
      if (pass) {
        ++lines_;
      } else {
        ++dropped_;
      }
    }
    if (!summary.empty()) sink_(summary);
    if (pass) sink_(line);
  }

 private:
  std::function<void(const std::string&)> sink_;
  Mutex mu_;
  std::chrono::steady_clock::time_point window_start_ GUARDED_BY(mu_);
  int lines_ GUARDED_BY(mu_) = 0;
  int64_t dropped_ GUARDED_BY(mu_) = 0;
};

// The handshake's check: CheckClientCertificate on the peer's leaf certificate.
class HandshakeVerifier final : public grpc::experimental::ExternalCertificateVerifier {
 public:
  HandshakeVerifier(std::shared_ptr<const ClientAuthPolicy> policy,
                    std::function<void(const std::string&)> on_refused)
      : policy_(std::move(policy)), refusals_(std::move(on_refused)) {}

  bool Verify(grpc::experimental::TlsCustomVerificationCheckRequest* request,
              std::function<void(grpc::Status)> /*callback*/,
              grpc::Status* sync_status) override {
    const grpc::string_ref leaf = request->peer_cert();
    const ClientCheck check = CheckClientCertificate(std::string(leaf.data(), leaf.size()),
                                                     *policy_, std::time(nullptr));
    if (check.ok()) {
      *sync_status = grpc::Status::OK;
    } else {
      refusals_.Add(OneLogLine("refused a TLS handshake: " + check.reason));
      *sync_status = grpc::Status(grpc::StatusCode::UNAUTHENTICATED, check.reason);
    }
    return true;  // decided synchronously
  }

  void Cancel(grpc::experimental::TlsCustomVerificationCheckRequest* /*request*/) override {}

 private:
  std::shared_ptr<const ClientAuthPolicy> policy_;
  RefusalLog refusals_;
};

}  // namespace

ClientCheck CheckClientCertificate(const std::string& peer_cert_pem,
                                   const ClientAuthPolicy& policy, std::time_t now) {
  ClientCheck check;
  if (peer_cert_pem.empty()) {
    check.reason = "the connection presented no client certificate (mutual TLS is required)";
    return check;
  }
  try {
    const PeerCheck site = VerifyPeerCertificate(peer_cert_pem, policy.ca_pem, now,
                                                 CertificatePurpose::kClientAuth);
    check.common_name = site.common_name;
    const PeerCheck as_operator =
        site.ok ? PeerCheck{} : VerifyPeerCertificate(peer_cert_pem, policy.ca_pem, now,
                                                      CertificatePurpose::kOperator);
    if (!site.ok && !as_operator.ok) {
      check.outcome = ClientCheck::Outcome::kInvalid;
      check.reason = site.reason;
      return check;
    }
    if (std::string revoked = RevocationProblem(peer_cert_pem, check.common_name, policy);
        !revoked.empty()) {
      check.outcome = ClientCheck::Outcome::kRevoked;
      check.reason = std::move(revoked);
      return check;
    }
    if (site.ok && std::find(policy.allowed_sites.begin(), policy.allowed_sites.end(),
                             site.common_name) == policy.allowed_sites.end()) {
      check.outcome = ClientCheck::Outcome::kNotAllowed;
      check.reason = "certificate CN=" + site.common_name +
                     " is valid but not in the coordinator's allow-list ([tls] allowed_sites)";
      return check;
    }
    check.outcome = ClientCheck::Outcome::kAccepted;
  } catch (const std::exception& e) {
    check.outcome = ClientCheck::Outcome::kInvalid;
    check.reason = std::string("the client certificate could not be checked: ") + e.what();
  }
  return check;
}

std::shared_ptr<grpc::ServerCredentials> MakeAuthenticatingServerCredentials(
    const TlsFiles& files, std::shared_ptr<const ClientAuthPolicy> policy,
    std::function<void(const std::string&)> on_refused) {
  const std::string cert = ReadFile(files.cert, "[tls] cert");
  const std::string key = ReadFile(files.key, "[tls] key");
  CheckKeyMatchesCertificate(key, cert, files.key + " and " + files.cert);
  RequireTls13InThisProcess();
  using grpc::experimental::IdentityKeyCertPair;
  auto provider = std::make_shared<grpc::experimental::StaticDataCertificateProvider>(
      std::vector<IdentityKeyCertPair>{IdentityKeyCertPair{key, cert}});
  grpc::experimental::TlsServerCredentialsOptions options(provider);
  options.watch_identity_key_cert_pairs();
  // The client must present a certificate; the verifier below checks its chain (to log why it
  // refuses one), not OpenSSL's handshake code, which would refuse without telling us.
  options.set_cert_request_type(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_BUT_DONT_VERIFY);
  options.set_certificate_verifier(
      grpc::experimental::ExternalCertificateVerifier::Create<HandshakeVerifier>(
          std::move(policy), std::move(on_refused)));
  return grpc::experimental::TlsServerCredentials(options);
}

grpc::Status CheckNotRevoked(const grpc::ServerContext& context, const ClientAuthPolicy& policy) {
  if (!policy.crl) return grpc::Status::OK;
  const std::shared_ptr<const grpc::AuthContext> auth = context.auth_context();
  if (auth == nullptr) return grpc::Status::OK;
  std::string peer_pem;
  for (const grpc::string_ref& value : auth->FindPropertyValues(GRPC_X509_PEM_CERT_PROPERTY_NAME)) {
    peer_pem.assign(value.data(), value.size());
  }
  if (peer_pem.empty()) return grpc::Status::OK;
  try {
    const std::string problem =
        RevocationProblem(peer_pem, InspectCertificate(peer_pem).common_name, policy);
    if (problem.empty()) return grpc::Status::OK;
    return grpc::Status(grpc::StatusCode::PERMISSION_DENIED, "refused: " + problem);
  } catch (const std::exception& e) {
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                        std::string("refused: the client certificate could not be read: ") +
                            e.what());
  }
}

}  // namespace fedmed
