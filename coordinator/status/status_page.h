// The status page (GET / of the status server, status_server.h): one HTML document and its
// script, compiled in. The script polls /api/status every 2 seconds (same origin, the cookie
// authenticates it) and draws the federation's phase, round and stage, one row per site, the
// global and federated metrics per round (Chart.js from /chart.js, when Debian's libjs-chart.js
// is installed; tables otherwise) and the latest refusals and dropouts. Readable from a phone's
// width up (one column below 700 px). It shows only what /api/status holds: nothing derived
// from an individual image. Elements the browser test (tests/status_page/) reads: #phase,
// #round, #stage, #sites tbody tr[data-site], #auc-chart[data-points].
#ifndef FEDMED_COORDINATOR_STATUS_STATUS_PAGE_H_
#define FEDMED_COORDINATOR_STATUS_STATUS_PAGE_H_

#include <string>

namespace fedmed {

// The page's HTML. Never throws.
const std::string& StatusPageHtml();
// Its script (served as /app.js, so that the page's Content-Security-Policy allows no inline
// script). Never throws.
const std::string& StatusPageScript();

}  // namespace fedmed

#endif  // FEDMED_COORDINATOR_STATUS_STATUS_PAGE_H_
