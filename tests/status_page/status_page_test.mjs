// Drives the coordinator's status page in headless Chromium (Debian's chromium, with
// playwright-core as the driver) while a real federation runs; run by
// tests/integration/status_page_test.cc:
//
//   node status_page_test.mjs URL TOKEN SCREENSHOT_DIR EXPECTED_SITES
//
// Checks, in order, and exits 1 naming the first that fails:
//   1. without the token, /, /api/status and /metrics answer 401 with an empty body;
//   2. URL?token=TOKEN redirects to the page and sets an HttpOnly, SameSite=Strict cookie;
//   3. the page shows EXPECTED_SITES site rows;
//   4. the round number shown advances, and the AUC chart gains points (data-points grows, to 2
//      or more);
// then writes status_page.png (1280 px wide) and status_page_phone.png (390 px) to
// SCREENSHOT_DIR and prints one JSON line with what it saw.
import { chromium } from 'playwright-core';

const [url, token, shotDir, expectedSites] = process.argv.slice(2);
if (!url || !token || !shotDir || !expectedSites) {
  console.error('usage: node status_page_test.mjs URL TOKEN SCREENSHOT_DIR EXPECTED_SITES');
  process.exit(2);
}
const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';
const deadline = Date.now() + Number(process.env.STATUS_PAGE_TIMEOUT_MS || 240000);

function fail(what) {
  console.error('status page test FAILED: ' + what);
  process.exit(1);
}

async function until(what, check) {
  while (Date.now() < deadline) {
    const value = await check();
    if (value) return value;
    await new Promise((r) => setTimeout(r, 250));
  }
  fail('timed out waiting for ' + what);
}

// 1. No token: 401 and nothing else.
for (const path of ['', 'api/status', 'metrics']) {
  const res = await fetch(url + path, { redirect: 'manual' });
  const body = await res.text();
  if (res.status !== 401 || body !== '') fail(`/${path} without the token gave ${res.status} "${body.slice(0, 80)}"`);
}

const browser = await chromium.launch({ executablePath: chromiumPath, args: ['--no-sandbox'] });
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  // 2. The token once in the URL: redirected to the page, with the cookie.
  const response = await page.goto(url + '?token=' + token);
  if (!response || response.status() !== 200) fail('the page did not load: ' + (response && response.status()));
  if (page.url() !== url) fail('the token stayed in the address bar: ' + page.url());
  const cookies = await context.cookies();
  const cookie = cookies.find((c) => c.name === 'fedmed_status_token');
  if (!cookie || !cookie.httpOnly || cookie.sameSite !== 'Strict') fail('cookie: ' + JSON.stringify(cookies));

  // 3. The sites.
  const sites = Number(expectedSites);
  await until(`${sites} site rows`, async () => (await page.locator('#sites tbody tr[data-site]').count()) === sites);
  const names = await page.locator('#sites tbody tr[data-site]').evaluateAll((rows) => rows.map((r) => r.dataset.site));

  // 4. The round advances and the AUC chart gains points.
  const roundNow = async () => Number(((await page.textContent('#round')) || '0').split(' ')[0]) || 0;
  const pointsNow = async () => Number(await page.getAttribute('#auc-chart', 'data-points')) || 0;
  const firstRound = await until('a round to start', async () => (await roundNow()) || false);
  const firstPoints = await pointsNow();
  await until(`the round to advance past ${firstRound}`, async () => (await roundNow()) > firstRound);
  await until(`the AUC chart to gain points beyond ${firstPoints} (and show at least 2)`,
    async () => { const n = await pointsNow(); return n > firstPoints && n >= 2; });
  const chartReady = await page.evaluate(() => typeof Chart !== 'undefined');
  if (!chartReady) fail('Chart.js did not load from /chart.js');
  const lastRound = await roundNow();
  const points = await pointsNow();
  const states = await page.locator('#sites tbody tr[data-site] .state').allTextContents();

  await page.screenshot({ path: shotDir + '/status_page.png', fullPage: true });
  await page.setViewportSize({ width: 390, height: 844 });
  await page.waitForTimeout(500);
  await page.screenshot({ path: shotDir + '/status_page_phone.png', fullPage: true });
  console.log(JSON.stringify({ sites: names, states, first_round: firstRound, last_round: lastRound,
    first_points: firstPoints, points }));
} finally {
  await browser.close();
}
