// The coordinator's status server ([status] in coordinator.toml; docs/OPERATIONS.md): HTTP/1.1
// with Boost.Beast on its own thread, over TLS with the coordinator's certificate when
// [status] tls is set. It only reads: every answer is rendered from a StatusView
// (status_view.h; the coordinator's StatusBoard, coordinator/status_board.h, makes it), and nothing a request says reaches the round flow.
//
// Every request must carry the token, as `Authorization: Bearer <token>`, as the cookie
// fedmed_status_token (HttpOnly, SameSite=Strict; Secure with TLS), or once as `?token=<token>`,
// which answers 303 to the same path without the token and sets that cookie. Anything else gets
// 401 with an empty body, whatever the path. Tokens are compared in constant time.
//
//   GET /             the status page (status_page.h): polls /api/status every 2 s
//   GET /app.js       its script
//   GET /chart.js     Chart.js from Debian's libjs-chart.js (404 when not installed)
//   GET /api/status   StatusJson (status_json.h)
//   GET /api/rounds   RoundsJson
//   GET /metrics      PrometheusText (text/plain; version=0.0.4)
// Other paths: 404; other methods than GET and HEAD: 405. Requests are limited to 16 KiB, a
// connection idle for 30 s is closed, at most kMaxConnections are served at once (more are
// closed at once).
#ifndef FEDMED_COORDINATOR_STATUS_STATUS_SERVER_H_
#define FEDMED_COORDINATOR_STATUS_STATUS_SERVER_H_

#include <functional>
#include <memory>
#include <string>

#include "coordinator/status/status_view.h"

namespace spdlog {
class logger;
}

namespace fedmed {

struct StatusServerOptions {
  std::string listen = "127.0.0.1:0";  // host:port ([::1]:port for IPv6); port 0 = any free
  std::string token;                   // required, non-empty
  // TLS: the certificate chain and private key (PEM) it is served with; plain HTTP when unset.
  bool tls = false;
  std::string cert_file;
  std::string key_file;
  // Chart.js as Debian's libjs-chart.js installs it.
  std::string chart_js = "/usr/share/javascript/chart.js/chart.min.js";
};

class StatusServer {
 public:
  static constexpr int kMaxConnections = 64;

  // Binds `options.listen` and starts serving on a thread of its own. `view` is called for every
  // /api and /metrics request (on that thread) and must be thread-safe. Throws ConfigError
  // naming [status] listen for an address that does not parse or cannot be bound, [status] tls
  // for a certificate or key that does not load, and for an empty token. A missing Chart.js
  // file is logged as a warning (the page then shows tables only).
  StatusServer(StatusServerOptions options, std::function<StatusView()> view,
               std::shared_ptr<spdlog::logger> log);
  // Stops serving and joins the thread: open connections are closed.
  ~StatusServer();

  StatusServer(const StatusServer&) = delete;
  StatusServer& operator=(const StatusServer&) = delete;

  int port() const;
  // "http://127.0.0.1:PORT/" (https with TLS; the bound host, bracketed for IPv6).
  std::string url() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace fedmed

#endif  // FEDMED_COORDINATOR_STATUS_STATUS_SERVER_H_
