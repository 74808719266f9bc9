// The gym's report.html in the browser: `factory gym run` on two built-in scenarios with the
// offline templates writes a self-contained page; opened from disk (no server, no network) it
// shows its tables, draws both charts, and raises no script error.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { artifacts, check, launchBrowser, root } from '../lib.mjs';

const bin = process.env.FACTORY_BIN ?? join(root, 'target/debug/factory');

export default async function gym() {
  const dataDir = mkdtempSync(join(tmpdir(), 'factory-e2e-gym-'));
  const report = join(dataDir, 'report');
  const browser = await launchBrowser();
  try {
    await check('factory gym run writes report.html for two scenarios', async () => {
      const echarts = join(root, 'node_modules/echarts/dist/echarts.min.js');
      if (!existsSync(echarts)) throw new Error(`${echarts} is missing (npm ci installs it)`);
      const env = { ...process.env, OLLAMA_HOST: 'http://127.0.0.1:9', FACTORY_ECHARTS_JS: echarts };
      delete env.FACTORY_CONFIG;
      const run = spawnSync(bin, ['--data-dir', dataDir, 'gym', 'run', '--model', '*=offline:template',
        '--scenario', 'hello-world', '--scenario', 'hostile-gate', '--report', report], {
        env,
        encoding: 'utf8',
        timeout: 120000,
      });
      if (run.status !== 0) throw new Error(`exit ${run.status}: ${run.stdout}${run.stderr}`);
      if (!existsSync(join(report, 'report.html'))) throw new Error('no report.html');
    });

    const { page, errors } = browser;
    // Nothing may leave the file: every request other than the page itself fails the check.
    const requests = [];
    page.on('request', (req) => { if (!req.url().startsWith('file://')) requests.push(req.url()); });

    await check('the report shows both scenarios in its table and their checks', async () => {
      await page.goto('file://' + join(report, 'report.html'));
      const rows = await page.locator('#scenarios tbody tr').count();
      if (rows !== 2) throw new Error(`${rows} scenario rows`);
      const summary = await page.locator('#summary').innerText();
      if (!summary.includes('2 of 2 scenarios passed')) throw new Error(`summary: ${summary}`);
      await page.getByRole('heading', { name: /hostile-gate/ }).waitFor();
      const checks = await page.locator('table.checks').first().innerText();
      if (!checks.includes('passed')) throw new Error(`checks: ${checks}`);
    });

    await check('both charts are drawn from the inline ECharts, with no request leaving the file', async () => {
      for (const id of ['chart-pass-rate', 'chart-latency']) {
        const host = page.locator(`#${id}`);
        await host.locator('svg').first().waitFor();
        if ((await host.getAttribute('data-rendered')) !== 'true') throw new Error(`${id} not rendered`);
      }
      await page.screenshot({ path: join(artifacts, 'gym-report.png'), fullPage: true });
      if (requests.length) throw new Error(`requests left the file: ${requests.join(', ')}`);
    });

    await check('no script errors on the report', async () => {
      if (errors.length) throw new Error(errors.join('; '));
    });
  } finally {
    await browser.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}
