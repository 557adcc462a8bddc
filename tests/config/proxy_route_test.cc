// How a site reaches its coordinator (common/config/proxy_route.h): [coordinator] proxy against
// the environment's https_proxy / no_proxy, proxy URIs, no_proxy matching, and the key's
// validation in site.toml. The route through a real proxy: netns_federation_test.
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "common/config/proxy_route.h"
#include "common/util/error.h"

namespace fedmed {
namespace {

EnvLookup Env(std::map<std::string, std::string> vars) {
  return [vars](const std::string& name) -> std::optional<std::string> {
    const auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

TEST(ProxyUriTest, ParsesHostPortAndCredentials) {
  std::string why;
  auto uri = ParseProxyUri("http://10.78.0.1:3128", &why);
  ASSERT_TRUE(uri) << why;
  EXPECT_EQ(uri->host, "10.78.0.1");
  EXPECT_EQ(uri->port, 3128);
  EXPECT_EQ(uri->credentials, "");
  EXPECT_EQ(uri->BasicAuthorization(), "");
  uri = ParseProxyUri("HTTP://Aladdin:open%20sesame@proxy.hospital.example:8080/", &why);
  ASSERT_TRUE(uri) << why;
  EXPECT_EQ(uri->host, "proxy.hospital.example");
  EXPECT_EQ(uri->credentials, "Aladdin:open sesame");
  // RFC 7617, section 2's example.
  EXPECT_EQ(uri->BasicAuthorization(), "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
  uri = ParseProxyUri("http://[fd00::1]:3128", &why);
  ASSERT_TRUE(uri) << why;
  EXPECT_EQ(uri->host, "fd00::1");
  EXPECT_EQ(uri->HostPort(), "[fd00::1]:3128");
}

TEST(ProxyUriTest, RefusesWhatIsNotAnHttpProxyWithAPort) {
  for (const auto& [value, expected] : std::map<std::string, std::string>{
           {"https://proxy:3128", "an http:// proxy"},
           {"proxy:3128", "a URI starting with http://"},
           {"socks5://proxy:1080", "a URI starting with http://"},
           {"http://proxy", "host:port"},
           {"http://proxy:0", "host:port"},
           {"http://proxy:3128/path", "no path"},
           {"http://%zz@proxy:3128", "%-escapes"},
       }) {
    std::string why;
    EXPECT_FALSE(ParseProxyUri(value, &why)) << value;
    EXPECT_NE(why.find(expected), std::string::npos) << value << ": " << why;
  }
}

TEST(NoProxyTest, MatchesNamesSuffixesAddressesAndRanges) {
  EXPECT_TRUE(NoProxyMatches("example.org", "fl.example.org"));
  EXPECT_TRUE(NoProxyMatches("example.org", "EXAMPLE.org"));
  EXPECT_TRUE(NoProxyMatches(" .example.org ", "fl.example.org"));
  EXPECT_TRUE(NoProxyMatches("*.example.org", "example.org"));
  EXPECT_FALSE(NoProxyMatches("ample.org", "fl.example.org")) << "a suffix only at a dot";
  EXPECT_TRUE(NoProxyMatches("a.b,10.77.0.1", "10.77.0.1"));
  EXPECT_FALSE(NoProxyMatches("10.77.0.1", "10.77.0.10"));
  EXPECT_TRUE(NoProxyMatches("10.77.0.0/24", "10.77.0.10"));
  EXPECT_FALSE(NoProxyMatches("10.77.0.0/24", "10.77.1.10"));
  EXPECT_TRUE(NoProxyMatches("fd00::/8", "fd12::1"));
  EXPECT_TRUE(NoProxyMatches("[::1]", "::1"));
  EXPECT_TRUE(NoProxyMatches("*", "anything"));
  EXPECT_FALSE(NoProxyMatches("", "fl.example.org"));
  EXPECT_FALSE(NoProxyMatches("example.org:7443", "fl.example.org")) << "ports are not supported";
}

TEST(ProxyRouteTest, TheKeyOverridesTheEnvironment) {
  const auto env = Env({{"https_proxy", "http://env-proxy:3128"}, {"no_proxy", "10.77.0.1"}});
  ProxyRoute r = ResolveProxyRoute("http://key-proxy:8080", "10.77.0.1:7443", "site.toml", env);
  EXPECT_TRUE(r.via_proxy);
  EXPECT_EQ(r.proxy.HostPort(), "key-proxy:8080");
  EXPECT_EQ(r.source, "[coordinator] proxy");
  EXPECT_EQ(r.Describe(), "through the HTTP proxy key-proxy:8080 (from [coordinator] proxy)");
  r = ResolveProxyRoute("none", "fl.example.org:7443", "site.toml", env);
  EXPECT_FALSE(r.via_proxy);
  EXPECT_EQ(r.Describe(), "directly ([coordinator] proxy = \"none\")");
}

TEST(ProxyRouteTest, TheEnvironmentInGrpcsOrderWithNoProxy) {
  ProxyRoute r = ResolveProxyRoute("", "fl.example.org:7443", "",
                                   Env({{"http_proxy", "http://h:1"}, {"https_proxy", "http://s:2"}}));
  EXPECT_TRUE(r.via_proxy);
  EXPECT_EQ(r.proxy.HostPort(), "s:2");
  EXPECT_EQ(r.source, "https_proxy");
  r = ResolveProxyRoute("", "fl.example.org:7443", "",
                        Env({{"grpc_proxy", "http://g:3"}, {"https_proxy", "http://s:2"}}));
  EXPECT_EQ(r.proxy.HostPort(), "g:3");
  r = ResolveProxyRoute("", "fl.example.org:7443", "", Env({{"HTTPS_PROXY", "http://u:4"}}));
  EXPECT_EQ(r.proxy.HostPort(), "u:4");
  r = ResolveProxyRoute("", "fl.example.org:7443", "",
                        Env({{"https_proxy", "http://s:2"}, {"no_proxy", "example.org"}}));
  EXPECT_FALSE(r.via_proxy);
  EXPECT_EQ(r.why_direct, "no_proxy names fl.example.org (https_proxy not used)");
  r = ResolveProxyRoute("", "fl.example.org:7443", "",
                        Env({{"https_proxy", "http://s:2"}, {"no_proxy", "other.org"}}));
  EXPECT_TRUE(r.via_proxy);
  r = ResolveProxyRoute("", "127.0.0.1:7443", "", Env({{"https_proxy", "http://s:2"}}));
  EXPECT_FALSE(r.via_proxy) << "a loopback coordinator is never proxied by the environment";
  r = ResolveProxyRoute("", "fl.example.org:7443", "",
                        Env({{"https_proxy", ""}, {"http_proxy", "http://h:1"}}));
  EXPECT_FALSE(r.via_proxy) << "an empty https_proxy means no proxy";
  r = ResolveProxyRoute("", "fl.example.org:7443", "", Env({}));
  EXPECT_FALSE(r.via_proxy);
  EXPECT_EQ(r.source, "");
}

TEST(ProxyRouteTest, AMalformedValueIsAnErrorNamingItsSource) {
  try {
    ResolveProxyRoute("", "fl.example.org:7443", "site.toml",
                      Env({{"https_proxy", "https://proxy:3128"}}));
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("environment variable https_proxy=\"https://proxy:3128\": "
                                         "expected an http:// proxy"),
              std::string::npos)
        << e.what();
  }
  try {
    ResolveProxyRoute("proxy:3128", "fl.example.org:7443", "site.toml", Env({}));
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("site.toml: [coordinator] proxy: expected"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace fedmed
