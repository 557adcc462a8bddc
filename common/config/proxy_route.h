// How a site reaches its coordinator: directly, or through an HTTP CONNECT proxy (RFC 9110,
// section 9.3.6), decided from `[coordinator] proxy` in site.toml and the usual environment
// variables (docs/NETWORK.md, "Outbound proxies"). Pure: the environment is passed in.
//
// The order, first match wins:
//   1. [coordinator] proxy = "http://[user[:password]@]host:port": that proxy, whatever the
//      environment says (no_proxy included); proxy = "none": directly, whatever it says.
//   2. the first of grpc_proxy, https_proxy, HTTPS_PROXY, http_proxy that is set (gRPC's own
//      order, with curl's upper-case HTTPS_PROXY; an empty value means "no proxy"), unless the
//      first of no_grpc_proxy, no_proxy, NO_PROXY that is set names the coordinator's host, or
//      that host is a loopback address (localhost, 127.0.0.0/8, ::1: fedmed-simulate, tests).
//   3. directly.
// no_proxy is a comma-separated list; an entry matches a host equal to it or ending in "." + it
// (a leading '.' or "*." is ignored: ".example.org" matches a.example.org and example.org), an
// IP address equal to it, an IP address inside it when it is a CIDR range ("10.0.0.0/8",
// "fd00::/8"), and "*" matches every host. Ports in entries are not supported (an entry with
// one never matches). Matching is case-insensitive.
//
// The site's gRPC channel is built from the result (site_agent/connection.cc), with gRPC's own
// reading of these variables turned off, so that a malformed value is an error here instead of
// a silent direct connection (gRPC 1.51 logs it and goes direct), and so that the key overrides
// no_proxy. fedmed-site check dials the same way (site_agent/site_check.cc).
#ifndef FEDMED_COMMON_CONFIG_PROXY_ROUTE_H_
#define FEDMED_COMMON_CONFIG_PROXY_ROUTE_H_

#include <functional>
#include <optional>
#include <string>

namespace fedmed {

// "http://[user[:password]@]host:port[/]" split up. host may be a name, an IPv4 address or a
// bracketed IPv6 address; port is required (1..65535).
struct ProxyUri {
  std::string host;         // without brackets
  int port = 0;
  std::string credentials;  // "user:password" or "user" (percent-decoded), "" = none

  std::string HostPort() const;  // "host:port", an IPv6 host in brackets
  // The value of a Proxy-Authorization header for the credentials: "Basic " + base64 (RFC
  // 7617, RFC 4648); "" when there are none.
  std::string BasicAuthorization() const;
};

// Parses `value`; std::nullopt with *why set (what was expected) when it is not a proxy URI of
// the form above ("https://" proxies are not supported: gRPC speaks plain HTTP to the proxy and
// TLS only inside the tunnel). Never throws.
std::optional<ProxyUri> ParseProxyUri(const std::string& value, std::string* why);

// What ParseProxyUri expects, for error messages.
inline constexpr const char* kProxyUriRule =
    "\"http://host:port\" (or \"http://user:password@host:port\") of an HTTP CONNECT proxy, or "
    "\"none\" to connect directly";

// Whether `host` (a name or an IP address, without brackets or port) is matched by the no_proxy
// list `no_proxy` (rules above). Never throws.
bool NoProxyMatches(const std::string& no_proxy, const std::string& host);

struct ProxyRoute {
  bool via_proxy = false;
  ProxyUri proxy;      // when via_proxy
  std::string source;  // "[coordinator] proxy", "https_proxy", ...; "" when nothing chose one
  std::string why_direct;  // when !via_proxy: e.g. "no_proxy names 10.77.0.1"

  // One line for logs, never with the credentials: "directly (no proxy configured)",
  // "through the HTTP proxy 10.78.0.1:3128 (from [coordinator] proxy)".
  std::string Describe() const;
};

// An environment variable's value, std::nullopt when unset.
using EnvLookup = std::function<std::optional<std::string>(const std::string& name)>;
// The process environment (getenv).
std::optional<std::string> ProcessEnv(const std::string& name);

// The route to `coordinator_address` (host:port) given `configured` (the [coordinator] proxy
// value; "" = not set) and the environment. Throws ConfigError naming the key (with
// `config_path`) or the variable and what was expected when the value that decides is
// malformed.
ProxyRoute ResolveProxyRoute(const std::string& configured, const std::string& coordinator_address,
                             const std::string& config_path, const EnvLookup& env = ProcessEnv);

}  // namespace fedmed

#endif  // FEDMED_COMMON_CONFIG_PROXY_ROUTE_H_
