// Keeps the status page open in headless Chromium (Debian's chromium via playwright-core) while
// a federation runs, for bench/status_page_bench.sh: the page polls /api/status every 2 s by
// itself, and this reloads it every RELOAD_SECONDS (default 5). Stops when SECONDS pass or the
// coordinator stops answering; prints how many polls and reloads it made.
//   node watch_page.mjs URL TOKEN SECONDS
import { chromium } from 'playwright-core';

const [url, token, seconds] = process.argv.slice(2);
const reloadMs = 1000 * Number(process.env.RELOAD_SECONDS || 5);
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox'] });
let polls = 0, reloads = 0;
// The bench ends the watcher with SIGTERM once the federation is over.
process.on('SIGTERM', async () => {
  console.log(JSON.stringify({ polls, reloads }));
  await browser.close().catch(() => {});
  process.exit(0);
});
try {
  const page = await browser.newPage();
  page.on('response', (r) => { if (r.url().endsWith('/api/status')) ++polls; });
  await page.goto(url + '?token=' + token);
  const end = Date.now() + 1000 * Number(seconds);
  while (Date.now() < end) {
    await new Promise((r) => setTimeout(r, reloadMs));
    try { await page.reload(); ++reloads; } catch (e) { break; }
  }
} finally {
  console.log(JSON.stringify({ polls, reloads }));
  await browser.close().catch(() => {});
}
