#include "coordinator/status/status_server.h"

#include <openssl/crypto.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <fstream>
#include <optional>
#include <sstream>
#include <thread>

#include "common/config/toml_util.h"
#include "common/util/error.h"
#include "coordinator/status/status_json.h"
#include "coordinator/status/status_page.h"

namespace fedmed {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr char kCookie[] = "fedmed_status_token";
constexpr auto kIdle = std::chrono::seconds(30);
constexpr size_t kRequestLimit = 16 * 1024;

using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;

bool SameToken(std::string_view given, const std::string& token) {
  return given.size() == token.size() &&
         CRYPTO_memcmp(given.data(), token.data(), token.size()) == 0;
}

// The value of `name` in a query string ("a=1&token=x"), or nullopt.
std::optional<std::string_view> QueryValue(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    if (pair.size() > name.size() && pair.substr(0, name.size()) == name &&
        pair[name.size()] == '=') {
      return pair.substr(name.size() + 1);
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return std::nullopt;
}

std::optional<std::string_view> CookieValue(std::string_view header, std::string_view name) {
  while (!header.empty()) {
    const size_t semi = header.find(';');
    std::string_view item = header.substr(0, semi);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    if (item.size() > name.size() && item.substr(0, name.size()) == name &&
        item[name.size()] == '=') {
      return item.substr(name.size() + 1);
    }
    if (semi == std::string_view::npos) break;
    header.remove_prefix(semi + 1);
  }
  return std::nullopt;
}

// What a connection asks of the server.
class Handler {
 public:
  virtual ~Handler() = default;
  virtual Response Handle(const Request& request) = 0;
  std::atomic<int> connections{0};
};

}  // namespace

class StatusServer::Impl : public Handler {
 public:
  Impl(StatusServerOptions options, std::function<StatusView()> view,
       std::shared_ptr<spdlog::logger> log)
      : options_(std::move(options)),
        view_(std::move(view)),
        log_(std::move(log)),
        ssl_(asio::ssl::context::tls_server),
        acceptor_(io_) {
    if (options_.token.empty()) throw ConfigError("[status] token_file: the token is empty");
    std::string host;
    int port = 0;
    if (!ParseHostPort(options_.listen, &host, &port)) {
      throw ConfigError("[status] listen: expected host:port, got \"" + options_.listen + "\"");
    }
    boost::system::error_code ec;
    const auto address = asio::ip::make_address(host == "localhost" ? "127.0.0.1" : host, ec);
    if (ec) {
      throw ConfigError("[status] listen: \"" + host + "\" is not an IP address (" +
                        ec.message() + ")");
    }
    if (options_.tls) {
      ssl_.set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                       asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                       asio::ssl::context::no_tlsv1_1);
      ssl_.use_certificate_chain_file(options_.cert_file, ec);
      if (ec) {
        throw ConfigError("[status] tls: cannot load the certificate " + options_.cert_file +
                          ": " + ec.message());
      }
      ssl_.use_private_key_file(options_.key_file, asio::ssl::context::pem, ec);
      if (ec) {
        throw ConfigError("[status] tls: cannot load the key " + options_.key_file + ": " +
                          ec.message());
      }
    }
    const tcp::endpoint endpoint(address, static_cast<unsigned short>(port));
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(endpoint, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      throw ConfigError("[status] listen: cannot listen on " + options_.listen + ": " +
                        ec.message());
    }
    port_ = acceptor_.local_endpoint().port();
    const std::string shown = address.is_v6() ? "[" + address.to_string() + "]"
                                              : address.to_string();
    url_ = std::string(options_.tls ? "https" : "http") + "://" + shown + ":" +
           std::to_string(port_) + "/";
    std::ifstream chart(options_.chart_js, std::ios::binary);
    if (chart) {
      std::ostringstream text;
      text << chart.rdbuf();
      chart_js_ = text.str();
    } else if (log_) {
      log_->warn("status page: {} not found (Debian package libjs-chart.js): the page shows "
                 "tables without charts",
                 options_.chart_js);
    }
    Accept();
    thread_ = std::thread([this] { io_.run(); });
  }

  ~Impl() {
    io_.stop();
    if (thread_.joinable()) thread_.join();
  }

  int port() const { return port_; }
  const std::string& url() const { return url_; }

  // The answer to `request` (authenticated here).
  Response Handle(const Request& request) override {
    Response res;
    res.version(request.version());
    res.keep_alive(request.keep_alive());
    res.set(http::field::cache_control, "no-store");
    const std::string_view target(request.target().data(), request.target().size());
    const size_t question = target.find('?');
    const std::string_view path = target.substr(0, question);
    const std::string_view query =
        question == std::string_view::npos ? std::string_view() : target.substr(question + 1);

    bool authorized = false;
    if (const auto auth = request.find(http::field::authorization); auth != request.end()) {
      const std::string_view value(auth->value().data(), auth->value().size());
      authorized = value.substr(0, 7) == "Bearer " && SameToken(value.substr(7), options_.token);
    }
    if (!authorized) {
      if (const auto cookie = request.find(http::field::cookie); cookie != request.end()) {
        const auto value =
            CookieValue(std::string_view(cookie->value().data(), cookie->value().size()), kCookie);
        authorized = value && SameToken(*value, options_.token);
      }
    }
    if (!authorized) {
      if (const auto value = QueryValue(query, "token"); value && SameToken(*value, options_.token)) {
        // Once: the cookie, and the same page without the token in its address.
        res.result(http::status::see_other);
        res.set(http::field::location, std::string(path.empty() ? "/" : path));
        res.set(http::field::set_cookie, std::string(kCookie) + "=" + options_.token +
                                             "; Path=/; HttpOnly; SameSite=Strict" +
                                             (options_.tls ? "; Secure" : ""));
        res.prepare_payload();
        return res;
      }
      res.result(http::status::unauthorized);
      res.set(http::field::www_authenticate, "Bearer realm=\"fedmed status\"");
      res.prepare_payload();
      return res;
    }
    if (request.method() != http::verb::get && request.method() != http::verb::head) {
      res.result(http::status::method_not_allowed);
      res.set(http::field::allow, "GET, HEAD");
      res.prepare_payload();
      return res;
    }
    const auto body = [&](const char* type, std::string text) {
      res.result(http::status::ok);
      res.set(http::field::content_type, type);
      res.set("X-Content-Type-Options", "nosniff");
      res.body() = std::move(text);
    };
    if (path == "/" || path == "/index.html") {
      body("text/html; charset=utf-8", StatusPageHtml());
      res.set("Content-Security-Policy",
              "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; "
              "connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'");
      res.set("X-Frame-Options", "DENY");
      res.set("Referrer-Policy", "no-referrer");
    } else if (path == "/app.js") {
      body("text/javascript; charset=utf-8", StatusPageScript());
    } else if (path == "/chart.js" && !chart_js_.empty()) {
      body("text/javascript; charset=utf-8", chart_js_);
    } else if (path == "/api/status") {
      body("application/json", StatusJson(view_()));
    } else if (path == "/api/rounds") {
      body("application/json", RoundsJson(view_()));
    } else if (path == "/metrics") {
      body("text/plain; version=0.0.4; charset=utf-8", PrometheusText(view_()));
    } else {
      res.result(http::status::not_found);
    }
    res.prepare_payload();
    if (request.method() == http::verb::head) res.body().clear();
    return res;
  }

 private:
  void Accept();

  const StatusServerOptions options_;
  const std::function<StatusView()> view_;
  const std::shared_ptr<spdlog::logger> log_;
  asio::io_context io_;
  asio::ssl::context ssl_;
  tcp::acceptor acceptor_;
  std::string chart_js_;
  int port_ = 0;
  std::string url_;
  std::thread thread_;
};

namespace {

// One connection: requests answered in order until the peer closes, an error, or kIdle.
template <class Stream>
class Session : public std::enable_shared_from_this<Session<Stream>> {
 public:
  template <class... Args>
  Session(Handler* server, Args&&... args)
      : server_(server), stream_(std::forward<Args>(args)...) {
    ++server_->connections;
  }
  ~Session() { --server_->connections; }

  void Start() {
    beast::get_lowest_layer(stream_).expires_after(kIdle);
    if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
      Read();
    } else {
      stream_.async_handshake(asio::ssl::stream_base::server,
                              [self = this->shared_from_this()](beast::error_code ec) {
                                if (!ec) self->Read();
                              });
    }
  }

 private:
  void Read() {
    parser_.emplace();
    parser_->header_limit(kRequestLimit);
    parser_->body_limit(kRequestLimit);
    beast::get_lowest_layer(stream_).expires_after(kIdle);
    http::async_read(stream_, buffer_, *parser_,
                     [self = this->shared_from_this()](beast::error_code ec, size_t) {
                       self->OnRead(ec);
                     });
  }

  void OnRead(beast::error_code ec) {
    if (ec) return Close();
    response_ = server_->Handle(parser_->get());
    http::async_write(stream_, response_,
                      [self = this->shared_from_this()](beast::error_code ec, size_t) {
                        if (ec || !self->response_.keep_alive()) return self->Close();
                        self->Read();
                      });
  }

  void Close() {
    beast::error_code ignored;
    beast::get_lowest_layer(stream_).socket().shutdown(tcp::socket::shutdown_both, ignored);
  }

  Handler* const server_;
  Stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  Response response_;
};

}  // namespace

void StatusServer::Impl::Accept() {
  acceptor_.async_accept([this](beast::error_code ec, tcp::socket socket) {
    if (ec) {
      if (ec != asio::error::operation_aborted) Accept();
      return;
    }
    if (connections.load() >= kMaxConnections) {
      if (log_) log_->warn("status page: more than {} connections, one refused", kMaxConnections);
    } else if (options_.tls) {
      std::make_shared<Session<beast::ssl_stream<beast::tcp_stream>>>(this, std::move(socket),
                                                                       ssl_)
          ->Start();
    } else {
      std::make_shared<Session<beast::tcp_stream>>(this, std::move(socket))->Start();
    }
    Accept();
  });
}

StatusServer::StatusServer(StatusServerOptions options, std::function<StatusView()> view,
                           std::shared_ptr<spdlog::logger> log)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(view), std::move(log))) {}
StatusServer::~StatusServer() = default;
int StatusServer::port() const { return impl_->port(); }
std::string StatusServer::url() const { return impl_->url(); }

}  // namespace fedmed
