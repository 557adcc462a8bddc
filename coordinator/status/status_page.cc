#include "coordinator/status/status_page.h"

namespace fedmed {

const std::string& StatusPageHtml() {
  static const std::string html = R"HTML(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>fedmed status</title>
<style>
  body { font: 15px/1.4 system-ui, sans-serif; margin: 0; color: #1d2430; background: #f4f6f9; }
  header { background: #1d3557; color: #fff; padding: 12px 16px; }
  header h1 { font-size: 18px; margin: 0; }
  header .sub { opacity: .85; font-size: 13px; }
  main { padding: 12px; display: grid; gap: 12px; grid-template-columns: 1fr 1fr; }
  section { background: #fff; border-radius: 8px; padding: 12px; box-shadow: 0 1px 2px #0002; min-width: 0; }
  section.wide { grid-column: 1 / -1; }
  h2 { font-size: 15px; margin: 0 0 8px; }
  .facts { display: flex; flex-wrap: wrap; gap: 8px 20px; }
  .fact b { display: block; font-size: 20px; }
  .fact span { font-size: 12px; color: #5a6473; }
  table { border-collapse: collapse; width: 100%; font-size: 13px; }
  th, td { text-align: left; padding: 4px 6px; border-bottom: 1px solid #e3e7ee; white-space: nowrap; }
  .scroll { overflow-x: auto; }
  .state { border-radius: 10px; padding: 1px 8px; font-size: 12px; background: #e3e7ee; }
  .state.training, .state.uploading { background: #ffe8a3; }
  .state.evaluating { background: #c7e3ff; }
  .state.registered { background: #cdeccd; }
  .state.declined { background: #ffd5b0; }
  .state.dead, .state.excluded { background: #f6b3b3; }
  canvas { max-height: 260px; }
  .muted { color: #5a6473; font-size: 12px; }
  #error { color: #b00020; }
  @media (max-width: 700px) { main { grid-template-columns: 1fr; padding: 8px; } }
</style>
</head>
<body>
<header>
  <h1 id="federation">fedmed</h1>
  <div class="sub">status, updated every 2 s <span id="error"></span></div>
</header>
<main>
  <section class="wide">
    <div class="facts">
      <div class="fact"><b id="phase">-</b><span>phase</span></div>
      <div class="fact"><b id="round">-</b><span>round</span></div>
      <div class="fact"><b id="stage">-</b><span>stage</span></div>
      <div class="fact"><b id="elapsed">-</b><span>elapsed</span></div>
      <div class="fact"><b id="eta">-</b><span>estimated time left</span></div>
    </div>
  </section>
  <section class="wide">
    <h2>Sites</h2>
    <div class="scroll"><table id="sites">
      <thead><tr><th>site</th><th>state</th><th>last seen</th><th>rounds</th><th>last update</th>
      <th>update norm</th><th>&epsilon; spent / budget</th><th>version</th>
      <th>certificate expires</th></tr></thead>
      <tbody></tbody></table></div>
  </section>
  <section><h2>Global model (held-out set)</h2><canvas id="auc-chart" data-points="0"></canvas>
    <div class="muted" id="chart-note"></div></section>
  <section><h2>Federated evaluation (sites' test splits)</h2><canvas id="fed-chart"></canvas></section>
  <section><h2>Each site's AUC (its own test split)</h2><canvas id="site-chart"></canvas></section>
  <section class="wide">
    <h2>Rounds</h2>
    <div class="scroll"><table id="rounds"><thead><tr><th>round</th><th>AUC</th><th>ACC</th>
      <th>loss</th><th>fed. AUC</th><th>fed. ACC</th><th>seconds</th><th>contributors</th></tr></thead>
      <tbody></tbody></table></div>
  </section>
  <section class="wide">
    <h2>Latest refusals and dropouts</h2>
    <div class="scroll"><table id="events"><thead><tr><th>time</th><th>site</th><th>round</th>
      <th>what</th><th>why</th></tr></thead><tbody></tbody></table></div>
  </section>
</main>
<script src="/chart.js"></script>
<script src="/app.js"></script>
</body>
</html>
)HTML";
  return html;
}

const std::string& StatusPageScript() {
  static const std::string script = R"JS('use strict';
const $ = (id) => document.getElementById(id);
const charts = {};
function fmt(v, digits) { return v === null || v === undefined ? '-' : Number(v).toFixed(digits); }
function duration(s) {
  if (s === null || s === undefined) return '-';
  s = Math.max(0, Math.round(s));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  return (h ? h + 'h ' : '') + (h || m ? m + 'm ' : '') + sec + 's';
}
function ago(unix, now) { return unix ? duration(now - unix) + ' ago' : 'never'; }
function bytes(n) {
  if (!n) return '-';
  const units = ['B', 'KB', 'MB', 'GB'];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) { n /= 1000; ++i; }
  return n.toFixed(i ? 1 : 0) + ' ' + units[i];
}
function cell(row, text, cls) {
  const td = document.createElement('td');
  if (cls) { const span = document.createElement('span'); span.className = cls; span.textContent = text; td.appendChild(span); }
  else td.textContent = text;
  row.appendChild(td);
}
function fill(tbody, items, build) {
  tbody.replaceChildren();
  for (const item of items) { const tr = document.createElement('tr'); build(tr, item); tbody.appendChild(tr); }
}
function chart(id, rounds, series) {
  const canvas = $(id);
  canvas.dataset.points = String(rounds.length);
  if (typeof Chart === 'undefined') { $('chart-note').textContent = 'Charts need Debian\'s libjs-chart.js on the coordinator.'; return; }
  const labels = rounds.map((r) => r.round);
  const datasets = series.map(([label, pick, color]) => ({ label, data: rounds.map(pick), borderColor: color,
    backgroundColor: color, spanGaps: true, tension: 0.2 }));
  if (!charts[id]) {
    charts[id] = new Chart(canvas, { type: 'line', data: { labels, datasets },
      options: { animation: false, responsive: true, scales: { y: { suggestedMin: 0, suggestedMax: 1 },
        x: { title: { display: true, text: 'round' } } } } });
  } else {
    charts[id].data.labels = labels;
    charts[id].data.datasets.forEach((d, i) => { d.data = datasets[i].data; });
    charts[id].update();
  }
}
function render(s) {
  $('federation').textContent = s.federation;
  document.title = s.federation + ' - round ' + s.round + ' of ' + s.total_rounds;
  $('phase').textContent = s.phase.replace(/_/g, ' ');
  $('round').textContent = s.round + ' of ' + s.total_rounds;
  $('stage').textContent = s.stage;
  $('elapsed').textContent = duration(s.elapsed_seconds);
  $('eta').textContent = s.eta_seconds === null ? '-' : duration(s.eta_seconds);
  fill($('sites').tBodies[0], s.sites, (tr, site) => {
    tr.dataset.site = site.name;
    cell(tr, site.name);
    cell(tr, site.state.replace(/_/g, ' '), 'state ' + site.state);
    cell(tr, ago(site.last_seen_unix, s.now_unix));
    cell(tr, String(site.rounds_contributed));
    cell(tr, bytes(site.last_update_bytes));
    cell(tr, fmt(site.last_update_norm, 3));
    const p = site.privacy;
    cell(tr, !p || p.mechanism === 'none' ? (p ? 'no DP' : '-') :
      fmt(p.epsilon_spent, 2) + ' / ' + fmt(p.epsilon_budget, 2) + ' (' + p.mechanism + ')');
    cell(tr, site.software_version || '-');
    cell(tr, site.certificate_not_after_unix === null ? '-'
      : new Date(site.certificate_not_after_unix * 1000).toISOString().slice(0, 10));
  });
  const rounds = s.rounds;
  fill($('rounds').tBodies[0], rounds.slice().reverse(), (tr, r) => {
    cell(tr, String(r.round)); cell(tr, fmt(r.global.auc, 4)); cell(tr, fmt(r.global.accuracy, 4));
    cell(tr, fmt(r.global.loss, 4)); cell(tr, fmt(r.federated.auc, 4)); cell(tr, fmt(r.federated.accuracy, 4));
    cell(tr, fmt(r.seconds.round, 1)); cell(tr, r.contributors.join(', '));
  });
  fill($('events').tBodies[0], s.events.slice().reverse(), (tr, e) => {
    cell(tr, new Date(e.unix_time * 1000).toLocaleTimeString()); cell(tr, e.site); cell(tr, String(e.round));
    cell(tr, e.kind + (e.reason ? ' (' + e.reason + ')' : '')); cell(tr, e.detail);
  });
  chart('auc-chart', rounds, [['AUC', (r) => r.global.auc, '#1d6fd8'], ['ACC', (r) => r.global.accuracy, '#2a9d4b'],
    ['loss', (r) => r.global.loss, '#d8731d']]);
  chart('fed-chart', rounds, [['AUC', (r) => r.federated.auc, '#1d6fd8'], ['ACC', (r) => r.federated.accuracy, '#2a9d4b'],
    ['loss', (r) => r.federated.loss, '#d8731d']]);
  const palette = ['#1d6fd8', '#2a9d4b', '#d8731d', '#8e44ad', '#c0392b', '#16a085', '#7f8c8d', '#b7950b'];
  chart('site-chart', rounds, s.sites.map((site, i) => [site.name,
    (r) => (r.site_auc && r.site_auc[site.name] !== undefined ? r.site_auc[site.name] : null),
    palette[i % palette.length]]));
}
async function poll() {
  try {
    const res = await fetch('/api/status', { cache: 'no-store', credentials: 'same-origin' });
    if (res.status === 401) { $('error').textContent = ' - not authorised: open the URL with ?token='; return; }
    render(await res.json());
    $('error').textContent = '';
  } catch (e) {
    $('error').textContent = ' - coordinator unreachable';
  }
}
poll();
setInterval(poll, 2000);
)JS";
  return script;
}

}  // namespace fedmed
