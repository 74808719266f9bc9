// Dashboard benchmark: the release WASM's size (raw and gzip) and how fast the run page is
// server-rendered and painted. Needs a release build (`cargo leptos build --release`); run it
// with `bash scripts/bench-dashboard.sh`, which builds first. Prints a table.
//
// First paint: a completed offline run is created (`factory run --auto-approve`), then
//  - server render: time to the last byte of GET /runs/<id> (the full server-rendered HTML),
//    60 requests after 10 warm-ups;
//  - first contentful paint and largest contentful paint in headless Chromium for the same
//    page, 15 fresh loads. The page arrives whole (nothing is streamed in later), so its first
//    paint shows the run: the graph, the chat, the feed.
//
// FACTORY_BENCH_SMOKE=1 (the test command) does a few of each against whatever build FACTORY_BIN
// names: it checks the bench still runs, and its figures mean nothing.

import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync, mkdtempSync, rmSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { launchBrowser, newToken, root, startServer } from './lib.mjs';

const smoke = Boolean(process.env.FACTORY_BENCH_SMOKE);
// Server renders (the first WARM_UPS not counted) and fresh page loads (the first not counted).
const RENDERS = smoke ? 13 : 70;
const LOADS = smoke ? 3 : 16;

const bin = process.env.FACTORY_BIN ?? join(root, 'target/release/factory');
process.env.FACTORY_BIN = bin;
const pkg = join(root, 'target/site/pkg');

function sizes() {
  const out = [];
  for (const name of readdirSync(pkg)) {
    const data = readFileSync(join(pkg, name));
    out.push({ name, raw: data.length, gzip: gzipSync(data, { level: 9 }).length });
  }
  return out;
}

const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};
const kib = (n) => (n / 1024).toFixed(1) + ' KiB';

async function main() {
  const files = sizes();
  const token = newToken();
  const server = await startServer({ token });
  // A finished run with five stages, artifacts and approvals in its log.
  const out = execFileSync(bin, ['--data-dir', server.dataDir, 'run', '--auto-approve', '--json', 'As a shop owner, I want to export orders as CSV'], {
    env: { ...process.env, OLLAMA_HOST: 'http://127.0.0.1:9' },
  }).toString();
  const runId = JSON.parse(out).id ?? JSON.parse(out).run_id ?? JSON.parse(out).summary?.id;
  const url = `${server.base}/runs/${runId}`;
  const headers = { authorization: `Bearer ${token}` };
  const render = [];
  let bytes = 0;
  for (let i = 0; i < RENDERS; i++) {
    const t0 = performance.now();
    const res = await fetch(url, { headers });
    const body = await res.text();
    const t = performance.now() - t0;
    if (res.status !== 200 || !body.includes('data-testid="team-graph"')) throw new Error(`GET ${url}: ${res.status}`);
    bytes = body.length;
    if (i >= 10) render.push(t);
  }
  const browser = await launchBrowser();
  const fcp = [];
  const lcp = [];
  // The WASM a browser downloads to open the run page: the main module and, in a split build,
  // the chunks that page needs (counted once, on the first load).
  const loaded = new Map();
  try {
    await browser.context.setExtraHTTPHeaders(headers);
    for (let i = 0; i < LOADS; i++) {
      const page = await browser.context.newPage();
      if (i === 0) {
        page.on('response', async (res) => {
          if (!new URL(res.url()).pathname.endsWith('.wasm')) return;
          const body = await res.body().catch(() => null);
          if (body) loaded.set(new URL(res.url()).pathname, { raw: body.length, gzip: gzipSync(body, { level: 9 }).length });
        });
      }
      await page.goto(url, { waitUntil: 'load' });
      if (i === 0) {
        await page.locator('[data-link="live"]').first().waitFor({ timeout: 30000 });
        await page.waitForLoadState('networkidle');
      }
      const paint = await page.evaluate(() => new Promise((resolve) => {
        const found = performance.getEntriesByName('first-contentful-paint')[0];
        if (found) return resolve(found.startTime);
        new PerformanceObserver((list) => resolve(list.getEntries()[0].startTime)).observe({ type: 'paint', buffered: true });
      }));
      // The largest paint seen by the time the page is idle.
      const largest = await page.evaluate(() => new Promise((resolve) => {
        let last = 0;
        new PerformanceObserver((list) => {
          for (const e of list.getEntries()) last = Math.max(last, e.startTime);
        }).observe({ type: 'largest-contentful-paint', buffered: true });
        setTimeout(() => resolve(last), 300);
      }));
      if (i > 0) {
        fcp.push(paint);
        lcp.push(largest);
      }
      await page.close();
    }
  } finally {
    await browser.close();
    await server.stop();
  }
  console.log('| Measure | Result | Target |');
  console.log('|---|---|---|');
  const wasm = files.filter((f) => f.name.endsWith('.wasm'));
  const sum = (xs, k) => xs.reduce((n, x) => n + x[k], 0);
  const opened = [...loaded.values()];
  console.log(`| WASM the run page loads (${opened.length} file${opened.length === 1 ? '' : 's'}), raw / gzip | ${kib(sum(opened, 'raw'))} / ${kib(sum(opened, 'gzip'))} | ≤ 250 KiB gzip |`);
  console.log(`| all WASM of the build (${wasm.length} file${wasm.length === 1 ? '' : 's'}), raw / gzip | ${kib(sum(wasm, 'raw'))} / ${kib(sum(wasm, 'gzip'))} | |`);
  const main = wasm.find((f) => f.name === 'factory.wasm');
  if (main) console.log(`| main module factory.wasm, raw / gzip | ${kib(main.raw)} / ${kib(main.gzip)} | |`);
  for (const f of files.filter((f) => /\.(js|css)$/.test(f.name) && !f.name.startsWith('__wasm_split'))) {
    console.log(`| ${f.name} raw / gzip | ${kib(f.raw)} / ${kib(f.gzip)} | |`);
  }
  console.log(`| run page server render, p50 / p99 (${render.length} requests, ${kib(bytes)} HTML) | ${pct(render, 50).toFixed(2)} ms / ${pct(render, 99).toFixed(2)} ms | |`);
  console.log(`| run page first contentful paint, p50 / max (${fcp.length} loads, headless Chromium) | ${pct(fcp, 50).toFixed(0)} ms / ${Math.max(...fcp).toFixed(0)} ms | |`);
  console.log(`| run page largest contentful paint, p50 / max | ${pct(lcp, 50).toFixed(0)} ms / ${Math.max(...lcp).toFixed(0)} ms | |`);
}

main().catch((err) => {
  console.error(err.stack ?? err);
  process.exit(1);
});
