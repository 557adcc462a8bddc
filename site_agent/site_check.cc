#include "site_agent/site_check.h"

#include <fcntl.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <sstream>

#include "common/config/proxy_route.h"
#include "common/config/site_config.h"
#include "common/config/toml_util.h"
#include "common/crypto/pki.h"
#include "common/data/hospital/site_images.h"
#include "common/privacy/privacy_budget.h"
#include "common/util/error.h"
#include "common/util/file_io.h"

namespace fedmed {

namespace fs = std::filesystem;

namespace {

std::string Fixed(double v, int digits) {
  std::ostringstream out;
  out.precision(digits);
  out << std::fixed << v;
  return out.str();
}

std::string OpenSslError() {
  const unsigned long e = ERR_get_error();
  if (e == 0) return "no detail from OpenSSL";
  char buffer[256];
  ERR_error_string_n(e, buffer, sizeof buffer);
  return buffer;
}

// A connected TCP socket to host:port within `timeout` seconds, or -1 with *why set.
int Connect(const addrinfo* address, double timeout, std::string* why) {
  const int fd = ::socket(address->ai_family, SOCK_STREAM, 0);
  if (fd < 0) {
    *why = std::strerror(errno);
    return -1;
  }
  const int flags = ::fcntl(fd, F_GETFL, 0);
  ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
  int rc = ::connect(fd, address->ai_addr, address->ai_addrlen);
  if (rc != 0 && errno == EINPROGRESS) {
    pollfd p{fd, POLLOUT, 0};
    rc = ::poll(&p, 1, static_cast<int>(timeout * 1000));
    if (rc == 0) {
      *why = "timed out after " + Fixed(timeout, 0) + " s (a firewall dropping the packets?)";
      ::close(fd);
      return -1;
    }
    int error = 0;
    socklen_t len = sizeof error;
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len);
    rc = error == 0 ? 0 : -1;
    errno = error;
  }
  if (rc != 0) {
    *why = std::strerror(errno);
    ::close(fd);
    return -1;
  }
  ::fcntl(fd, F_SETFL, flags);
  timeval tv{static_cast<time_t>(timeout), 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  return fd;
}

// Asks the proxy on `fd` for a tunnel to `target` (RFC 9110, 9.3.6); returns its status line
// (or what went wrong), having read the whole answer header.
std::string ProxyConnect(int fd, const ProxyUri& proxy, const std::string& target) {
  std::string request = "CONNECT " + target + " HTTP/1.1\r\nHost: " + target + "\r\n";
  if (!proxy.credentials.empty()) {
    request += "Proxy-Authorization: " + proxy.BasicAuthorization() + "\r\n";
  }
  request += "\r\n";
  if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(request.size())) {
    return std::string("cannot send CONNECT: ") + std::strerror(errno);
  }
  std::string header;
  char c;
  while (header.size() < 8192 && header.find("\r\n\r\n") == std::string::npos) {
    if (::recv(fd, &c, 1, 0) != 1) return header.empty() ? "no answer" : header.substr(0, header.find('\r'));
    header.push_back(c);
  }
  return header.substr(0, header.find('\r'));
}

// OpenSSL writes with write(2): a peer that closed the connection (a coordinator that refused
// the certificate at the end of the TLS 1.3 handshake) would raise SIGPIPE and end the process.
// While one lives, SIGPIPE is blocked on this thread; one raised meanwhile is consumed.
class SigpipeBlock {
 public:
  SigpipeBlock() {
    sigemptyset(&set_);
    sigaddset(&set_, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set_, &old_);
  }
  ~SigpipeBlock() {
    const timespec zero{};
    while (sigtimedwait(&set_, nullptr, &zero) > 0) {
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  SigpipeBlock(const SigpipeBlock&) = delete;
  SigpipeBlock& operator=(const SigpipeBlock&) = delete;

 private:
  sigset_t set_{};
  sigset_t old_{};
};

// The authenticated call (Hello, through options.hello): the coordinator accepts this site's
// certificate and name, and its clock is within kMaxClockSkewSeconds of this machine's.
constexpr double kMaxClockSkewSeconds = 60;

void CheckHello(const SiteConfig& site, const SiteCheckOptions& o, std::vector<SiteCheck>* out) {
  if (!o.hello) return;
  HelloAnswer answer;
  try {
    answer = o.hello(site, o.network_timeout_seconds);
  } catch (const std::exception& e) {
    out->push_back(SiteCheck{"network", "authenticated call", false,
                             std::string("Hello: ") + e.what() +
                                 " (the coordinator checks the certificate against the "
                                 "federation CA and [tls] allowed_sites)"});
    return;
  }
  out->push_back(SiteCheck{"network", "authenticated call", true,
                           "the coordinator of federation '" + answer.federation + "' (" +
                               answer.coordinator_version + ") accepts this site as " +
                               answer.site + " (Hello; nothing registered)"});
  const double now =
      o.now != 0 ? static_cast<double>(o.now)
                 : std::chrono::duration<double>(
                       std::chrono::system_clock::now().time_since_epoch()).count();
  const double skew = static_cast<double>(answer.unix_ms) / 1000.0 - now;
  std::ostringstream detail;
  detail.precision(1);
  detail << std::fixed << "this machine's clock is " << (skew >= 0 ? skew : -skew) << " s "
         << (skew >= 0 ? "behind" : "ahead of") << " the coordinator's";
  const bool ok = skew <= kMaxClockSkewSeconds && skew >= -kMaxClockSkewSeconds;
  if (!ok) {
    detail << ", more than " << kMaxClockSkewSeconds
           << " s: certificate validity and round deadlines depend on it; synchronise both "
              "clocks (NTP)";
  }
  out->push_back(SiteCheck{"network", "clock skew", ok, detail.str()});
}

void CheckNetwork(const SiteConfig& site, const SiteCheckOptions& o,
                  std::vector<SiteCheck>* out) {
  const SigpipeBlock no_sigpipe;
  const auto add = [&](const std::string& name, bool ok, const std::string& detail) {
    out->push_back(SiteCheck{"network", name, ok, detail});
    return ok;
  };
  std::string host;
  int port = 0;
  if (!ParseHostPort(site.coordinator_address, &host, &port)) {
    add("coordinator address", false, "[site] coordinator = \"" + site.coordinator_address +
                                          "\" is not host:port");
    return;
  }
  // The way the site agent dials: directly or through an HTTP CONNECT proxy.
  ProxyRoute route;
  try {
    route = ResolveProxyRoute(site.coordinator_proxy, site.coordinator_address, site.config_path);
  } catch (const std::exception& e) {
    add("proxy", false, e.what());
    return;
  }
  if (route.via_proxy || !route.source.empty()) add("proxy", true, "dialling " + route.Describe());
  const std::string dial_host = route.via_proxy ? route.proxy.host : host;
  const int dial_port = route.via_proxy ? route.proxy.port : port;
  const std::string dial = route.via_proxy ? "the proxy " + route.proxy.HostPort()
                                           : site.coordinator_address;
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (const int rc = ::getaddrinfo(dial_host.c_str(), std::to_string(dial_port).c_str(), &hints,
                                   &found);
      rc != 0) {
    add("name resolution", false,
        "cannot resolve " + dial_host + ": " + gai_strerror(rc) +
            (route.via_proxy ? " (check the proxy's name, " + route.source + ")"
                             : " (check [site] coordinator and the site's DNS)"));
    return;
  }
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> addresses(found, ::freeaddrinfo);
  add("name resolution", true, dial_host + " resolves");
  std::string why;
  const int fd = Connect(found, o.network_timeout_seconds, &why);
  if (fd < 0) {
    add("TCP connection", false,
        "cannot connect to " + dial + ": " + why +
            (route.via_proxy ? " (is the proxy running, and reachable from this site?)"
                             : " (is the coordinator running, and does the firewall allow "
                               "outbound TCP to it?)"));
    return;
  }
  add("TCP connection", true, "connected to " + dial);
  if (route.via_proxy) {
    const std::string answer = ProxyConnect(fd, route.proxy, site.coordinator_address);
    const bool ok = answer.rfind("HTTP/1.", 0) == 0 && answer.size() > 9 && answer[9] == '2';
    if (!ok) {
      ::close(fd);
      add("proxy tunnel", false,
          "the proxy " + route.proxy.HostPort() + " answered CONNECT " +
              site.coordinator_address + " with \"" + answer +
              "\" (does it allow CONNECT to that host and port, and this site?)");
      return;
    }
    add("proxy tunnel", true, "the proxy opened a tunnel to " + site.coordinator_address);
  }

  std::unique_ptr<SSL_CTX, decltype(&::SSL_CTX_free)> ctx(SSL_CTX_new(TLS_client_method()),
                                                          ::SSL_CTX_free);
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  const bool loaded =
      SSL_CTX_load_verify_locations(ctx.get(), site.tls.ca_cert.c_str(), nullptr) == 1 &&
      SSL_CTX_use_certificate_chain_file(ctx.get(), site.tls.cert.c_str()) == 1 &&
      SSL_CTX_use_PrivateKey_file(ctx.get(), site.tls.key.c_str(), SSL_FILETYPE_PEM) == 1;
  if (!loaded) {
    ::close(fd);
    add("TLS handshake", false, "cannot load the [tls] files: " + OpenSslError());
    return;
  }
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
  static const unsigned char kAlpn[] = {2, 'h', '2'};
  SSL_CTX_set_alpn_protos(ctx.get(), kAlpn, sizeof kAlpn);
  std::unique_ptr<SSL, decltype(&::SSL_free)> ssl(SSL_new(ctx.get()), ::SSL_free);
  SSL_set_fd(ssl.get(), fd);
  SSL_set_tlsext_host_name(ssl.get(), host.c_str());
  // An IP address is checked against the certificate's IP entries, a name against its DNS ones.
  if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl.get()), host.c_str()) != 1) {
    ERR_clear_error();
    SSL_set1_host(ssl.get(), host.c_str());
  }
  if (SSL_connect(ssl.get()) != 1) {
    const long verify = SSL_get_verify_result(ssl.get());
    const std::string reason = verify != X509_V_OK
                                   ? std::string("the coordinator's certificate: ") +
                                         X509_verify_cert_error_string(verify)
                                   : OpenSslError();
    ::close(fd);
    add("TLS handshake", false,
        "with " + site.coordinator_address + ": " + reason +
            " (is [site] coordinator the name on the coordinator's certificate, and ca.pem the "
            "federation's CA?)");
    return;
  }
  add("TLS handshake", true, "the coordinator's certificate verifies for " + host);
  // The HTTP/2 preface and an empty SETTINGS frame: the coordinator's gRPC server answers with its
  // SETTINGS. (It checks the site's certificate against the CA and the allow-list per call, so a
  // certificate it would refuse still gets this far: the tls checks above cover that.)
  static const char kPreface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\4\0\0\0\0\0";
  unsigned char frame[9];
  const bool wrote = SSL_write(ssl.get(), kPreface, sizeof kPreface - 1) > 0;
  const int n = wrote ? SSL_read(ssl.get(), frame, sizeof frame) : -1;
  const bool answered = n >= 4 && frame[3] == 4;
  if (answered) {
    add("gRPC endpoint", true, "the coordinator's server answers HTTP/2 over mutual TLS");
  } else {
    add("gRPC endpoint", false,
        "no HTTP/2 answer over TLS from " + site.coordinator_address + ": " + OpenSslError() +
            " (is that port the coordinator's [coordinator] listen, or something else?)");
  }
  SSL_shutdown(ssl.get());
  ::close(fd);
  if (answered) CheckHello(site, o, out);
}

}  // namespace

std::vector<SiteCheck> CheckSite(const std::string& config_path, const SiteCheckOptions& o) {
  std::vector<SiteCheck> out;
  const auto add = [&](const char* area, const std::string& name, bool ok,
                       const std::string& detail) {
    out.push_back(SiteCheck{area, name, ok, detail});
  };
  const std::time_t now = o.now != 0 ? o.now : std::time(nullptr);

  SiteConfig site;
  try {
    site = LoadSiteConfig(config_path);
    add("config", config_path, true,
        "site " + site.name + ", coordinator " + site.coordinator_address);
  } catch (const std::exception& e) {
    add("config", config_path, false, e.what());
    return out;
  }

  // Data.
  for (const auto& [split, name] : {std::pair{Split::kTrain, "train"}, {Split::kTest, "test"}}) {
    try {
      LoadReport report;
      const ImageSet images = LoadSiteSplit(site.data, split, o.data_root, &report);
      std::map<int64_t, int64_t> per_class;
      for (int64_t label : images.labels) ++per_class[label];
      std::string detail = std::to_string(images.labels.size()) + " images (";
      for (const auto& [label, count] : per_class) {
        const std::string cls = label < static_cast<int64_t>(report.class_names.size())
                                    ? report.class_names[static_cast<size_t>(label)]
                                    : std::to_string(label);
        detail += (detail.back() == '(' ? "" : ", ") + cls + ": " + std::to_string(count);
      }
      detail += ")";
      if (!report.skipped.empty()) {
        detail += "; " + std::to_string(report.skipped.size()) + " bad files skipped, e.g. " +
                  report.skipped.front().path + ": " + report.skipped.front().reason;
      }
      add("data", std::string(name) + " split", !images.labels.empty(),
          images.labels.empty() ? "no images in the " + std::string(name) + " split" : detail);
    } catch (const std::exception& e) {
      add("data", std::string(name) + " split", false, e.what());
    }
  }
  add("data", "preprocessing", true, "announced as " + site.data.preprocess.Canonical());

  // Certificates and keys.
  try {
    const std::string ca = ReadFile(site.tls.ca_cert, "[tls] ca_cert");
    const std::string cert = ReadFile(site.tls.cert, "[tls] cert");
    const PeerCheck chain = VerifyPeerCertificate(cert, ca, now, CertificatePurpose::kClientAuth);
    if (chain.ok) {
      const CertificateInfo info = InspectCertificate(cert);
      add("tls", "certificate", true,
          "CN=" + chain.common_name + ", chains to the CA in " + site.tls.ca_cert +
              ", expires " + FormatUtc(info.not_after) + " (in " +
              std::to_string((info.not_after - now) / 86400) + " days)");
      if (chain.common_name != site.name) {
        add("tls", "certificate name", false,
            "the certificate's CN is " + chain.common_name + " but [site] name is " + site.name);
      }
    } else {
      add("tls", "certificate", false, chain.reason + " (fedmed-pki add-site issues a new one)");
    }
    try {
      CheckKeyMatchesCertificate(ReadFile(site.tls.key, "[tls] key"), cert, "[tls] key");
      add("tls", "key", true, site.tls.key + " belongs to the certificate");
    } catch (const std::exception& e) {
      add("tls", "key", false, e.what());
    }
  } catch (const std::exception& e) {
    add("tls", "certificate", false, e.what());
  }

  // Privacy.
  if (!site.privacy.enabled()) {
    add("privacy", "mode", true, "none: updates are sent without differential privacy");
  } else {
    const fs::path dir = fs::path(config_path).parent_path();
    const bool audit = fs::exists(dir / "audit.key") && fs::exists(dir / "audit.pem");
    add("privacy", "audit key", audit,
        audit ? "audit.key and audit.pem beside " + config_path
              : "audit.key or audit.pem missing beside " + config_path +
                    " (fedmed-pki writes them; the privacy log cannot be signed without them)");
    try {
      const PrivacyBudget budget(site.output_dir + "/privacy_ledger.json",
                                 site.privacy.budget_epsilon, site.privacy.delta,
                                 ParseRdpConversion(site.privacy.conversion));
      const double left = budget.budget_epsilon() - budget.spent();
      const std::string spent = "epsilon " + Fixed(budget.spent(), 3) + " of " +
                                Fixed(budget.budget_epsilon(), 3) + " spent at delta " +
                                Fixed(site.privacy.delta, 8) + " (" + site.privacy.mode + ")";
      const bool ok = left > 1e-9;
      add("privacy", "budget", ok,
          ok ? spent + ", " + Fixed(left, 3) + " left"
             : spent + ": the budget is spent, the site will decline every round (raise "
                       "[privacy] budget_epsilon only if your privacy officer agrees)");
    } catch (const std::exception& e) {
      add("privacy", "budget", false, e.what());
    }
  }

  CheckNetwork(site, o, &out);
  return out;
}

std::string FormatSiteChecks(const std::vector<SiteCheck>& checks) {
  std::ostringstream out;
  int failed = 0;
  for (const SiteCheck& c : checks) {
    out << (c.ok ? "[ ok ] " : "[FAIL] ") << c.area << ": " << c.name << ": " << c.detail << "\n";
    failed += c.ok ? 0 : 1;
  }
  out << (failed == 0 ? "the site is ready\n"
                      : std::to_string(failed) + " check(s) failed: the site is not ready\n");
  return out.str();
}

bool SiteReady(const std::vector<SiteCheck>& checks) {
  for (const SiteCheck& c : checks) {
    if (!c.ok) return false;
  }
  return !checks.empty();
}

}  // namespace fedmed
