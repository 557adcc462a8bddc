#include "common/config/proxy_route.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "common/config/toml_util.h"
#include "common/util/error.h"

namespace fedmed {

namespace {

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::string Trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t") - b + 1);
}

// Percent-decoding of the userinfo (RFC 3986, 2.1); false on a malformed escape.
bool PercentDecode(const std::string& in, std::string* out) {
  out->clear();
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out->push_back(in[i]);
      continue;
    }
    if (i + 2 >= in.size() || !std::isxdigit(static_cast<unsigned char>(in[i + 1])) ||
        !std::isxdigit(static_cast<unsigned char>(in[i + 2]))) {
      return false;
    }
    out->push_back(static_cast<char>(std::stoi(in.substr(i + 1, 2), nullptr, 16)));
    i += 2;
  }
  return true;
}

// An IPv4 or IPv6 address as bytes (4 or 16), or empty when `text` is not one.
std::vector<unsigned char> IpBytes(const std::string& text) {
  unsigned char buffer[16];
  if (::inet_pton(AF_INET, text.c_str(), buffer) == 1) return {buffer, buffer + 4};
  if (::inet_pton(AF_INET6, text.c_str(), buffer) == 1) return {buffer, buffer + 16};
  return {};
}

bool InCidr(const std::vector<unsigned char>& ip, const std::string& cidr) {
  const size_t slash = cidr.find('/');
  if (slash == std::string::npos || ip.empty()) return false;
  const std::vector<unsigned char> net = IpBytes(cidr.substr(0, slash));
  const std::string bits_text = cidr.substr(slash + 1);
  if (net.size() != ip.size() || bits_text.empty() || bits_text.size() > 3 ||
      !std::all_of(bits_text.begin(), bits_text.end(), ::isdigit)) {
    return false;
  }
  const size_t bits = std::stoul(bits_text);
  if (bits > ip.size() * 8) return false;
  for (size_t i = 0; i < bits; ++i) {
    const unsigned char mask = static_cast<unsigned char>(0x80u >> (i % 8));
    if ((ip[i / 8] & mask) != (net[i / 8] & mask)) return false;
  }
  return true;
}

// The first of `names` that is set, with its name; std::nullopt when none is.
std::optional<std::pair<std::string, std::string>> FirstSet(const EnvLookup& env,
                                                            std::initializer_list<const char*> names) {
  for (const char* name : names) {
    if (std::optional<std::string> v = env(name)) return std::make_pair(std::string(name), *v);
  }
  return std::nullopt;
}

bool IsLoopbackHost(const std::string& host) {
  const std::vector<unsigned char> ip = IpBytes(host);
  if (ip.size() == 4) return ip[0] == 127;
  if (ip.size() == 16) return IpBytes("::1") == ip;
  return Lower(host) == "localhost";
}

}  // namespace

std::string ProxyUri::HostPort() const {
  const std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  return h + ":" + std::to_string(port);
}

std::string ProxyUri::BasicAuthorization() const {
  if (credentials.empty()) return "";
  static const char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out = "Basic ";
  for (size_t i = 0; i < credentials.size(); i += 3) {
    uint32_t v = static_cast<uint32_t>(static_cast<unsigned char>(credentials[i])) << 16;
    if (i + 1 < credentials.size()) v |= static_cast<unsigned char>(credentials[i + 1]) << 8;
    if (i + 2 < credentials.size()) v |= static_cast<unsigned char>(credentials[i + 2]);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += i + 1 < credentials.size() ? kAlphabet[(v >> 6) & 63] : '=';
    out += i + 2 < credentials.size() ? kAlphabet[v & 63] : '=';
  }
  return out;
}

std::optional<ProxyUri> ParseProxyUri(const std::string& value, std::string* why) {
  const std::string scheme = "http://";
  if (Lower(value.substr(0, scheme.size())) != scheme) {
    *why = Lower(value.substr(0, 8)) == "https://"
               ? "an http:// proxy (gRPC speaks plain HTTP to the proxy, TLS inside the tunnel)"
               : "a URI starting with http://";
    return std::nullopt;
  }
  std::string authority = value.substr(scheme.size());
  if (!authority.empty() && authority.back() == '/') authority.pop_back();
  if (authority.find_first_of("/?#") != std::string::npos) {
    *why = "no path, query or fragment after host:port";
    return std::nullopt;
  }
  ProxyUri uri;
  const size_t at = authority.rfind('@');
  if (at != std::string::npos) {
    if (!PercentDecode(authority.substr(0, at), &uri.credentials) || uri.credentials.empty()) {
      *why = "user[:password]@ with valid %-escapes before host:port";
      return std::nullopt;
    }
    authority = authority.substr(at + 1);
  }
  if (!ParseHostPort(authority, &uri.host, &uri.port) || uri.port < 1) {
    *why = "host:port with a port between 1 and 65535 after http://";
    return std::nullopt;
  }
  return uri;
}

bool NoProxyMatches(const std::string& no_proxy, const std::string& host_in) {
  const std::string host = Lower(host_in);
  const std::vector<unsigned char> ip = IpBytes(host);
  size_t start = 0;
  while (start <= no_proxy.size()) {
    const size_t comma = std::min(no_proxy.find(',', start), no_proxy.size());
    std::string entry = Lower(Trim(no_proxy.substr(start, comma - start)));
    start = comma + 1;
    if (entry.empty()) continue;
    if (entry == "*") return true;
    if (entry.find('/') != std::string::npos) {
      if (InCidr(ip, entry)) return true;
      continue;
    }
    if (entry.size() > 2 && entry.front() == '[' && entry.back() == ']') {
      entry = entry.substr(1, entry.size() - 2);
    }
    if (!ip.empty()) {
      if (IpBytes(entry) == ip) return true;
      continue;
    }
    if (entry.rfind("*.", 0) == 0) entry = entry.substr(2);
    if (!entry.empty() && entry.front() == '.') entry = entry.substr(1);
    if (entry.empty()) continue;
    if (host == entry ||
        (host.size() > entry.size() && host.compare(host.size() - entry.size(), entry.size(), entry) == 0 &&
         host[host.size() - entry.size() - 1] == '.')) {
      return true;
    }
  }
  return false;
}

std::string ProxyRoute::Describe() const {
  if (via_proxy) return "through the HTTP proxy " + proxy.HostPort() + " (from " + source + ")";
  return "directly (" + why_direct + ")";
}

std::optional<std::string> ProcessEnv(const std::string& name) {
  const char* v = std::getenv(name.c_str());
  if (v == nullptr) return std::nullopt;
  return std::string(v);
}

ProxyRoute ResolveProxyRoute(const std::string& configured, const std::string& coordinator_address,
                             const std::string& config_path, const EnvLookup& env) {
  ProxyRoute route;
  std::string why;
  if (Lower(configured) == "none") {
    route.source = "[coordinator] proxy";
    route.why_direct = "[coordinator] proxy = \"none\"";
    return route;
  }
  if (!configured.empty()) {
    const std::optional<ProxyUri> uri = ParseProxyUri(configured, &why);
    if (!uri) ThrowBadSetting(config_path, "coordinator", "proxy", kProxyUriRule, TomlString(configured));
    route.via_proxy = true;
    route.proxy = *uri;
    route.source = "[coordinator] proxy";
    return route;
  }
  const auto proxy_var = FirstSet(env, {"grpc_proxy", "https_proxy", "HTTPS_PROXY", "http_proxy"});
  if (!proxy_var) {
    route.why_direct = "no proxy configured: no [coordinator] proxy, https_proxy or http_proxy";
    return route;
  }
  const auto& [name, value] = *proxy_var;
  if (value.empty()) {
    route.source = name;
    route.why_direct = name + " is set and empty";
    return route;
  }
  const std::optional<ProxyUri> uri = ParseProxyUri(value, &why);
  if (!uri) {
    throw ConfigError("environment variable " + name + "=" + TomlString(value) + ": expected " +
                      why + " (" + kProxyUriRule + "), or unset it, or set [coordinator] proxy" +
                      (config_path.empty() ? "" : " in " + config_path) + " to override it");
  }
  std::string host;
  int port = 0;
  if (ParseHostPort(coordinator_address, &host, &port) && IsLoopbackHost(host)) {
    route.source = name;
    route.why_direct = "a loopback coordinator address (" + name + " not used)";
    return route;
  }
  if (const auto no_proxy = FirstSet(env, {"no_grpc_proxy", "no_proxy", "NO_PROXY"});
      no_proxy && ParseHostPort(coordinator_address, &host, &port) &&
      NoProxyMatches(no_proxy->second, host)) {
    route.source = no_proxy->first;
    route.why_direct = no_proxy->first + " names " + host + " (" + name + " not used)";
    return route;
  }
  route.via_proxy = true;
  route.proxy = *uri;
  route.source = name;
  return route;
}

}  // namespace fedmed
