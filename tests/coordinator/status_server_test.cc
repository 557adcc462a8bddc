// The status server on loopback (coordinator/status/status_server.h), fed by a StatusBoard that
// wraps a fake round flow: 401 and an empty body without the token, whatever the path; 200
// with it (Bearer header, or the cookie that ?token= sets once); the JSON documents' fields; the
// board's records (registrations, update bytes, refusals by reason, declines); Prometheus text
// that promtool accepts; the [status] config rules and the token file's checks.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "common/config/coordinator_config.h"
#include "common/crypto/pki.h"
#include "common/util/error.h"
#include "coordinator/status_board.h"
#include "coordinator/status/status_json.h"
#include "coordinator/status/status_server.h"
#include "coordinator/status/status_token.h"
#include "tests/test_util.h"

namespace fedmed {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
using tcp = boost::asio::ip::tcp;

constexpr char kToken[] = "0123456789abcdef0123456789abcdef";

// Answers every call with OK (a refusal for updates when `refuse` is set).
class FakeFlow : public SiteHandler {
 public:
  Status refuse = Status::OK();
  Status Register(const std::string&, const RegistrationInfo&, Registration*) override {
    return Status::OK();
  }
  Status Poll(const std::string&, const std::string&, int, SiteTask*) override {
    return Status::OK();
  }
  Status GetModel(const std::string&, const std::string&, int,
                  std::shared_ptr<const EncodedModel>* model) override {
    auto m = std::make_shared<EncodedModel>();
    m->bytes.assign(1000, 'x');
    *model = m;
    return Status::OK();
  }
  Status CheckUpdate(const std::string&, const UpdateHeader&) override { return Status::OK(); }
  Status AcceptUpdate(const std::string&, const UpdateHeader&, std::string, double) override {
    return refuse;
  }
  Status AcceptEvaluation(const std::string&, const EvaluationReport&) override {
    return Status::OK();
  }
  Status DeclineTask(const std::string&, const DeclineRequest&) override { return Status::OK(); }
  Status SecAggSend(const std::string&, const SecAggMessage&) override { return Status::OK(); }
  Status SecAggReceive(const std::string&, const SecAggPoll&, SecAggStage*) override {
    return Status::OK();
  }
  void RecordDownload(const std::string&, double) override {}
  void UploadFailed(const std::string&, const Status&) override {}
  Status Attend(const std::string&, const std::string&) override { return Status::OK(); }
  Status Hello(const std::string&, const std::string&, HelloAnswer*) override {
    return Status::OK();
  }
  void SiteGone(const std::string&, const std::string&) override {}
};

struct Reply {
  int status = 0;
  std::string body;
  std::string set_cookie;
  std::string location;
  std::string content_type;
};

Reply Fetch(int port, const std::string& target, const std::string& authorization = "",
            const std::string& cookie = "") {
  boost::asio::io_context io;
  tcp::socket socket(io);
  socket.connect(tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"),
                               static_cast<unsigned short>(port)));
  http::request<http::empty_body> request(http::verb::get, target, 11);
  request.set(http::field::host, "127.0.0.1");
  if (!authorization.empty()) request.set(http::field::authorization, authorization);
  if (!cookie.empty()) request.set(http::field::cookie, cookie);
  http::write(socket, request);
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(16 << 20);
  http::read(socket, buffer, parser);
  const auto& res = parser.get();
  Reply reply;
  reply.status = res.result_int();
  reply.body = res.body();
  reply.set_cookie = std::string(res[http::field::set_cookie]);
  reply.location = std::string(res[http::field::location]);
  reply.content_type = std::string(res[http::field::content_type]);
  return reply;
}

FlowSnapshot Training() {
  FlowSnapshot f;
  f.federation = "test-federation";
  f.phase = "training";
  f.round = 2;
  f.attempt = 1;
  f.total_rounds = 5;
  f.registered = {"site-1", "site-2"};
  f.selected = {"site-1", "site-2"};
  f.contributed = {"site-1"};
  f.update_norm = {{"site-1", 1.5}};
  f.round_elapsed_seconds = 3;
  return f;
}

class StatusServerTest : public ::testing::Test {
 protected:
  StatusServerTest() : dir_("fedmed-status-server") {
    metrics_ = (dir_.path() / "metrics.jsonl").string();
    std::ofstream(metrics_)
        << R"({"round":1,"attempt":1,"unix_time":1700000000,"seconds":{"round":12.5,)"
           R"("training":10,"aggregation":0.5,"evaluation":1.5,"checkpoint":0.5},)"
           R"("contributors":["site-1","site-2"],"train_loss":0.4,"update_norm":{"site-2":2.5},)"
           R"("global":{"auc":0.91,"accuracy":0.85,"loss":0.35},"federated":null,)"
           R"("sites":{"site-1":{"auc":0.88,"accuracy":0.8},"site-2":{"auc":0.93}}})"
        << "\n";
    board_ = std::make_unique<StatusBoard>(
        &flow_, [] { return Training(); }, metrics_,
        std::vector<std::string>{"site-1", "site-2", "site-3"});
    StatusServerOptions options;
    options.listen = "127.0.0.1:0";
    options.token = kToken;
    server_ = std::make_unique<StatusServer>(options, [this] { return board_->View(); },
                                             nullptr);
  }

  int port() const { return server_->port(); }

  ::fedmed::testing::TempDir dir_;
  std::string metrics_;
  FakeFlow flow_;
  std::unique_ptr<StatusBoard> board_;
  std::unique_ptr<StatusServer> server_;
};

TEST_F(StatusServerTest, WithoutTheTokenEveryPathIs401AndNothingElse) {
  for (const char* path : {"/", "/app.js", "/chart.js", "/api/status", "/api/rounds", "/metrics",
                           "/no-such-page", "/?token=wrong"}) {
    const Reply r = Fetch(port(), path);
    EXPECT_EQ(r.status, 401) << path;
    EXPECT_TRUE(r.body.empty()) << path << ": " << r.body;
    EXPECT_TRUE(r.set_cookie.empty()) << path;
  }
  EXPECT_EQ(Fetch(port(), "/api/status", "Bearer wrong-token-wrong-token-12").status, 401);
  EXPECT_EQ(Fetch(port(), "/api/status", std::string("Basic ") + kToken).status, 401);
  EXPECT_EQ(Fetch(port(), "/api/status", "", "fedmed_status_token=nope").status, 401);
  EXPECT_EQ(server_->url(), "http://127.0.0.1:" + std::to_string(port()) + "/");
}

TEST_F(StatusServerTest, BearerTokenGivesThePageAndJson) {
  const std::string bearer = std::string("Bearer ") + kToken;
  const Reply page = Fetch(port(), "/", bearer);
  EXPECT_EQ(page.status, 200);
  EXPECT_NE(page.content_type.find("text/html"), std::string::npos);
  EXPECT_NE(page.body.find("<script src=\"/app.js\">"), std::string::npos);
  EXPECT_EQ(Fetch(port(), "/app.js", bearer).status, 200);
  EXPECT_EQ(Fetch(port(), "/no-such-page", bearer).status, 404);

  const Reply status = Fetch(port(), "/api/status", bearer);
  ASSERT_EQ(status.status, 200);
  EXPECT_EQ(status.content_type, "application/json");
  const nlohmann::json j = nlohmann::json::parse(status.body);
  EXPECT_EQ(j["federation"], "test-federation");
  EXPECT_EQ(j["phase"], "training");
  EXPECT_EQ(j["round"], 2);
  EXPECT_EQ(j["total_rounds"], 5);
  EXPECT_EQ(j["stage"], "training: 1 of 2 sites answered");
  ASSERT_EQ(j["sites"].size(), 3u);
  EXPECT_EQ(j["sites"][0]["name"], "site-1");
  EXPECT_EQ(j["sites"][0]["state"], "registered");  // its update is in
  EXPECT_EQ(j["sites"][0]["last_update_norm"], 1.5);
  EXPECT_EQ(j["sites"][1]["state"], "training");
  EXPECT_EQ(j["sites"][1]["last_update_norm"], 2.5);  // from round 1's row
  EXPECT_EQ(j["sites"][2]["state"], "not_registered");
  EXPECT_TRUE(j["sites"][2]["last_seen_unix"].is_null());
  ASSERT_EQ(j["rounds"].size(), 1u);
  EXPECT_DOUBLE_EQ(j["rounds"][0]["global"]["auc"].get<double>(), 0.91);
  EXPECT_TRUE(j["rounds"][0]["federated"]["auc"].is_null());
  // One round of 12.5 s done, 3 s into round 2 of 5: 4 x 12.5 - 3 s left.
  EXPECT_DOUBLE_EQ(j["eta_seconds"].get<double>(), 47);
  for (const char* key : {"elapsed_seconds", "round_elapsed_seconds", "events", "counters"}) {
    EXPECT_TRUE(j.contains(key)) << key;
  }
  EXPECT_GT(j["counters"]["process_rss_bytes"].get<int64_t>(), 0);

  const nlohmann::json rounds = nlohmann::json::parse(Fetch(port(), "/api/rounds", bearer).body);
  ASSERT_EQ(rounds["rounds"].size(), 1u);
  EXPECT_EQ(rounds["rounds"][0]["contributors"], nlohmann::json({"site-1", "site-2"}));
  EXPECT_DOUBLE_EQ(rounds["rounds"][0]["seconds"]["round"].get<double>(), 12.5);
  EXPECT_EQ(rounds["rounds"][0]["site_auc"], nlohmann::json({{"site-1", 0.88}, {"site-2", 0.93}}));
}

TEST_F(StatusServerTest, TokenInTheUrlSetsAStrictHttpOnlyCookieOnce) {
  const Reply first = Fetch(port(), std::string("/?token=") + kToken);
  EXPECT_EQ(first.status, 303);
  EXPECT_EQ(first.location, "/");  // the token leaves the address bar
  EXPECT_NE(first.set_cookie.find(std::string("fedmed_status_token=") + kToken),
            std::string::npos);
  EXPECT_NE(first.set_cookie.find("HttpOnly"), std::string::npos);
  EXPECT_NE(first.set_cookie.find("SameSite=Strict"), std::string::npos);
  EXPECT_EQ(first.set_cookie.find("Secure"), std::string::npos);  // plain HTTP on loopback
  const std::string cookie = first.set_cookie.substr(0, first.set_cookie.find(';'));
  EXPECT_EQ(Fetch(port(), "/", "", "other=1; " + cookie).status, 200);
  const Reply status = Fetch(port(), "/api/status", "", cookie);
  EXPECT_EQ(status.status, 200);
  EXPECT_EQ(nlohmann::json::parse(status.body)["round"], 2);
}

TEST_F(StatusServerTest, BoardRecordsUpdatesRefusalsAndDeclines) {
  RegistrationInfo info;
  info.software_version = "fedmed 0.1.0";
  info.certificate_not_after = 1830000000;
  Registration reg;
  ASSERT_TRUE(board_->Register("site-2", info, &reg).ok());
  std::shared_ptr<const EncodedModel> model;
  ASSERT_TRUE(board_->GetModel("site-2", "s", 1, &model).ok());
  UpdateHeader header;
  header.info.round = 2;
  header.has_privacy = true;
  header.info.privacy.mechanism.mode = PrivacyMode::kDpSgd;
  header.info.privacy.epsilon_total = 1.25;
  header.info.privacy.budget_epsilon = 8;
  header.info.privacy.delta = 1e-5;
  ASSERT_TRUE(board_->CheckUpdate("site-2", header).ok());
  EXPECT_EQ(board_->View().sites[1].state, "uploading");
  ASSERT_TRUE(board_->AcceptUpdate("site-2", header, std::string(500, 'u'), 0.1).ok());
  flow_.refuse = Status::InvalidArgument("update from site-2: L2 norm 1e9 above the bound 10");
  EXPECT_FALSE(board_->AcceptUpdate("site-2", header, std::string(500, 'u'), 0.1).ok());
  flow_.refuse = Status::FailedPrecondition("round 1 is over");
  EXPECT_FALSE(board_->AcceptUpdate("site-2", header, std::string(500, 'u'), 0.1).ok());
  DeclineRequest decline;
  decline.round = 2;
  decline.reason = "privacy budget exhausted";
  ASSERT_TRUE(board_->DeclineTask("site-1", decline).ok());

  const StatusView v = board_->View();
  EXPECT_EQ(v.bytes_received, 500);
  EXPECT_EQ(v.bytes_sent, 1000);
  EXPECT_EQ(v.updates_accepted, 1);
  EXPECT_EQ(v.updates_refused.at("norm_bound"), 1);
  EXPECT_EQ(v.updates_refused.at("unexpected"), 1);
  const SiteStatus& s2 = v.sites[1];
  EXPECT_EQ(s2.software_version, "fedmed 0.1.0");
  EXPECT_EQ(s2.certificate_not_after_unix, 1830000000.0);
  EXPECT_EQ(v.sites[0].certificate_not_after_unix, 0.0);  // not registered through the board
  EXPECT_EQ(s2.rounds_contributed, 1);
  EXPECT_EQ(s2.last_update_bytes, 500);
  EXPECT_EQ(s2.privacy_mechanism, "dp-sgd");
  EXPECT_DOUBLE_EQ(s2.epsilon_spent, 1.25);
  EXPECT_GT(s2.last_seen_unix, 0);
  ASSERT_EQ(v.events.size(), 3u);
  EXPECT_EQ(v.events[0].kind, "refused");
  EXPECT_EQ(v.events[0].reason, "norm_bound");
  EXPECT_EQ(v.events[2].kind, "declined");
  EXPECT_EQ(v.events[2].detail, "privacy budget exhausted");

  const std::string text = PrometheusText(v);
  EXPECT_NE(text.find("fedmed_updates_refused_total{reason=\"norm_bound\"} 1"), std::string::npos);
  EXPECT_NE(text.find("fedmed_site_epsilon_spent{site=\"site-2\"} 1.25"), std::string::npos);
  EXPECT_NE(text.find("fedmed_sites{state=\"not_registered\"} 1"), std::string::npos);
  EXPECT_NE(text.find("fedmed_round_duration_seconds_count 1"), std::string::npos);
}

TEST_F(StatusServerTest, PromtoolAcceptsTheMetrics) {
  const Reply metrics = Fetch(port(), "/metrics", std::string("Bearer ") + kToken);
  ASSERT_EQ(metrics.status, 200);
  EXPECT_NE(metrics.content_type.find("version=0.0.4"), std::string::npos);
  ASSERT_EQ(std::system("command -v promtool > /dev/null"), 0)
      << "promtool not found: scripts/deps.sh installs Debian's prometheus package";
  const std::string file = (dir_.path() / "metrics.txt").string();
  std::ofstream(file) << metrics.body;
  const std::string out = (dir_.path() / "promtool.out").string();
  const int rc = std::system(("promtool check metrics < " + file + " > " + out + " 2>&1").c_str());
  std::ifstream in(out);
  const std::string said((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(rc, 0) << said << "\n" << metrics.body;
  EXPECT_EQ(said, "") << "promtool's lint findings";
}

TEST(StatusConfigTest, NonLoopbackNeedsTlsAndListenNeedsAToken) {
  CoordinatorConfig c;
  c.allowed_sites = {"site-1"};
  c.min_sites = 1;
  c.tls = {"ca.pem", "c.pem", "c.key"};
  c.in_channels = 1;
  c.num_classes = 2;
  c.status.listen = "127.0.0.1:8080";
  c.status.token_file = "/tmp/token";
  EXPECT_NO_THROW(ValidateCoordinatorConfig(c));
  c.status.listen = "0.0.0.0:8080";
  try {
    ValidateCoordinatorConfig(c);
    ADD_FAILURE() << "a non-loopback listen without tls was accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("[status] tls"), std::string::npos) << e.what();
  }
  c.status.tls = true;
  EXPECT_NO_THROW(ValidateCoordinatorConfig(c));
  c.status.token_file = "";
  try {
    ValidateCoordinatorConfig(c);
    ADD_FAILURE() << "listen without a token file was accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("[status] token_file"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(IsLoopbackHost("::1"));
  EXPECT_TRUE(IsLoopbackHost("localhost"));
  EXPECT_FALSE(IsLoopbackHost("10.0.0.1"));
}

TEST(StatusTokenTest, WrittenOwnerOnlyAndRefusedWhenOthersCanRead) {
  ::fedmed::testing::TempDir dir("fedmed-status-token");
  const std::string path = (dir.path() / "status.token").string();
  const std::string token = WriteStatusTokenFile(path);
  EXPECT_EQ(token.size(), 64u);
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(ReadStatusTokenFile(path), token);
  ::chmod(path.c_str(), 0644);
  try {
    ReadStatusTokenFile(path);
    ADD_FAILURE() << "a world-readable token file was accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("[status] token_file " + path), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("chmod 600"), std::string::npos);
  }
  EXPECT_THROW(ReadStatusTokenFile(path + ".missing"), ConfigError);
}

// HTTPS with the coordinator's certificate ([status] tls): the client verifies it against the
// federation CA and the name 127.0.0.1; the cookie is Secure; plain HTTP gets no answer.
TEST(StatusServerTlsTest, ServedWithTheCoordinatorsCertificate) {
  ::fedmed::testing::TempDir dir("fedmed-status-tls");
  const KeyAndCert ca = CreateCa("test-ca", 2);
  CertificateRequest request;
  request.common_name = "test-coordinator";
  request.ip_addresses = {"127.0.0.1"};
  request.server_auth = true;
  request.client_auth = false;
  request.validity_days = 1;
  const KeyAndCert cert = IssueCertificate(ca, request);
  const std::string cert_file = (dir.path() / "coordinator.pem").string();
  const std::string key_file = (dir.path() / "coordinator.key").string();
  std::ofstream(cert_file) << cert.cert_pem;
  std::ofstream(key_file) << cert.key_pem;
  FakeFlow flow;
  StatusBoard board(&flow, [] { return Training(); }, (dir.path() / "none.jsonl").string(),
                    {"site-1"});
  StatusServerOptions options;
  options.listen = "127.0.0.1:0";
  options.token = kToken;
  options.tls = true;
  options.cert_file = cert_file;
  options.key_file = key_file;
  StatusServer server(options, [&] { return board.View(); }, nullptr);
  EXPECT_EQ(server.url(), "https://127.0.0.1:" + std::to_string(server.port()) + "/");

  const auto https = [&](const std::string& target, const std::string& authorization) {
    boost::asio::io_context io;
    boost::asio::ssl::context ctx(boost::asio::ssl::context::tls_client);
    ctx.add_certificate_authority(boost::asio::buffer(ca.cert_pem));
    ctx.set_verify_mode(boost::asio::ssl::verify_peer);
    ctx.set_verify_callback(boost::asio::ssl::host_name_verification("127.0.0.1"));
    beast::ssl_stream<beast::tcp_stream> stream(io, ctx);
    beast::get_lowest_layer(stream).connect(
        tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"),
                      static_cast<unsigned short>(server.port())));
    stream.handshake(boost::asio::ssl::stream_base::client);  // throws if not verified
    http::request<http::empty_body> req(http::verb::get, target, 11);
    req.set(http::field::host, "127.0.0.1");
    if (!authorization.empty()) req.set(http::field::authorization, authorization);
    http::write(stream, req);
    beast::flat_buffer buffer;
    http::response<http::string_body> res;
    http::read(stream, buffer, res);
    return res;
  };
  EXPECT_EQ(https("/api/status", "").result_int(), 401);
  const auto ok = https("/api/status", std::string("Bearer ") + kToken);
  EXPECT_EQ(ok.result_int(), 200);
  EXPECT_EQ(nlohmann::json::parse(ok.body())["federation"], "test-federation");
  const auto cookie = https(std::string("/?token=") + kToken, "");
  EXPECT_EQ(cookie.result_int(), 303);
  EXPECT_NE(std::string(cookie[http::field::set_cookie]).find("; Secure"), std::string::npos);
  // Plain HTTP to the TLS port: no HTTP answer.
  EXPECT_THROW(Fetch(server.port(), "/api/status", std::string("Bearer ") + kToken),
               std::exception);

  // A key that does not load is refused naming [status] tls.
  options.key_file = (dir.path() / "missing.key").string();
  try {
    StatusServer bad(options, [&] { return board.View(); }, nullptr);
    ADD_FAILURE() << "a missing key was accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("[status] tls"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace fedmed
