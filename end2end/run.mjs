// Browser test: headless Chromium against a real `factory` server on a fresh data directory.
// Proves sign-in, server rendering, hydration and the live WebSocket: a run created through
// the API appears on the Runs page without a reload. Saves screenshots to end2end/artifacts/.
//
// Usage: node end2end/run.mjs   (FACTORY_BIN and CHROMIUM override the defaults)

import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const bin = process.env.FACTORY_BIN ?? join(root, 'target/debug/factory');
const chromiumPath = process.env.CHROMIUM ?? '/usr/bin/chromium';
const artifacts = join(root, 'end2end/artifacts');
const token = 'fct_e2e_' + Math.random().toString(16).slice(2).padEnd(40, '0');
const results = [];

async function check(name, fn) {
  const started = Date.now();
  try {
    await fn();
    results.push({ name, ok: true });
    console.log(`ok   ${name} (${Date.now() - started} ms)`);
  } catch (err) {
    results.push({ name, ok: false });
    console.log(`FAIL ${name}: ${err.message}`);
    throw err;
  }
}

function startServer(dataDir) {
  const child = spawn(bin, ['--data-dir', dataDir, 'serve', '--addr', '127.0.0.1:0'], {
    env: { ...process.env, FACTORY_ADMIN_TOKEN: token, RUST_LOG: 'warn', OLLAMA_HOST: 'http://127.0.0.1:9' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('server did not start within 20 s')), 20000);
    child.on('exit', (code) => reject(new Error(`server exited early with ${code}`)));
    createInterface({ input: child.stdout }).on('line', (line) => {
      const m = line.match(/is listening on (http:\/\/\S+)/);
      if (m) {
        clearTimeout(timer);
        resolve({ child, base: m[1] });
      }
    });
  });
}

function launchBrowser(userDataDir) {
  return chromium.launchPersistentContext(userDataDir, {
    executablePath: chromiumPath,
    headless: true,
    viewport: { width: 1280, height: 800 },
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  });
}

async function main() {
  mkdirSync(artifacts, { recursive: true });
  const dataDir = mkdtempSync(join(tmpdir(), 'factory-e2e-'));
  const userDataDir = mkdtempSync(join(tmpdir(), 'factory-e2e-chromium-'));
  const { child, base } = await startServer(dataDir);
  let browser;
  try {
    browser = await launchBrowser(userDataDir);
  } catch (err) {
    child.kill('SIGTERM');
    throw err;
  }
  const pageErrors = [];
  try {
    const page = browser.pages()[0] ?? (await browser.newPage());
    page.on('pageerror', (err) => pageErrors.push(err.message));
    page.on('console', (msg) => {
      if (msg.type() === 'error' || msg.type() === 'warning') console.log(`browser ${msg.type()}: ${msg.text()}`);
    });
    page.setDefaultTimeout(15000);

    await check('an unauthenticated visit lands on the sign-in page', async () => {
      await page.goto(base + '/');
      if (!page.url().endsWith('/login')) throw new Error(`at ${page.url()}`);
      await page.getByRole('heading', { name: 'Sign in to Factory' }).waitFor();
    });

    await check('a wrong token is refused with a message', async () => {
      await page.fill('#token', 'fct_wrong_token');
      await page.click('button[type=submit]');
      await page.getByRole('alert').filter({ hasText: 'not valid' }).waitFor();
    });

    await check('the admin token signs in and shows the empty Runs page', async () => {
      await page.fill('#token', token);
      await page.click('button[type=submit]');
      await page.waitForURL(base + '/');
      await page.getByRole('heading', { name: 'Runs', exact: true }).waitFor();
      await page.getByText('No runs yet').waitFor();
    });

    await check('the page hydrates and the live link connects', async () => {
      await page.locator('[data-link="live"]').waitFor();
      await page.screenshot({ path: join(artifacts, 'runs-empty.png'), fullPage: true });
    });

    await check('a run created through the API appears and goes live to waiting_for_human without a reload', async () => {
      await page.evaluate(() => { window.__factoryNoReload = true; });
      const goal = 'Add a health check endpoint ' + Date.now();
      const res = await fetch(base + '/supervisor/start', {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ goal }),
      });
      if (res.status !== 201) throw new Error(`start returned ${res.status}`);
      const { run_id } = await res.json();
      const row = page.locator(`tr[data-run-id="${run_id}"]`);
      await row.waitFor({ timeout: 10000 });
      let text = await row.innerText();
      if (!text.includes(goal)) throw new Error(`row says: ${text}`);
      // The engine runs it at once (offline provider) up to the plan approval; the status
      // follows live.
      const until = Date.now() + 15000;
      while (!text.includes('waiting for human') && Date.now() < until) {
        await new Promise((r) => setTimeout(r, 100));
        text = await row.innerText();
      }
      if (!text.includes('waiting for human')) throw new Error(`row never showed waiting for human: ${text}`);
      const same = await page.evaluate(() => window.__factoryNoReload === true);
      if (!same) throw new Error('the page reloaded');
      await page.screenshot({ path: join(artifacts, 'runs-live.png'), fullPage: true });
    });

    await check('the plan and the final review are approved with buttons; the run succeeds', async () => {
      await page.goto(base + '/approvals');
      const plan = page.locator('li[data-kind="plan"]');
      await plan.waitFor({ timeout: 10000 });
      await page.locator('[data-link="live"]').waitFor(); // hydrated: the buttons work
      await plan.locator('button[data-option="approve"]').click();
      // The run goes on to its final review, which appears live on the same page.
      const review = page.locator('li[data-kind="review"]');
      await review.waitFor({ timeout: 15000 });
      await page.screenshot({ path: join(artifacts, 'approvals.png'), fullPage: true });
      await review.locator('button[data-option="approve"]').click();
      await page.locator('[data-testid="no-approvals"]').waitFor({ timeout: 15000 });
      const res = await fetch(base + '/api/runs', { headers: { authorization: `Bearer ${token}` } });
      const runs = await res.json();
      if (runs[0].status !== 'succeeded') throw new Error(`run is ${runs[0].status}`);
    });

    await check('no script errors on the page', async () => {
      if (pageErrors.length) throw new Error(pageErrors.join('; '));
    });
  } finally {
    await browser.close();
    child.kill('SIGTERM');
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(userDataDir, { recursive: true, force: true });
  }
}

main()
  .catch((err) => {
    console.log(`end2end: aborted: ${err.stack ?? err}`);
  })
  .finally(() => {
    const passed = results.filter((r) => r.ok).length;
    const failed = results.length - passed;
    console.log(`end2end: ${passed} passed, ${failed} failed`);
    console.log(`screenshots: ${artifacts}`);
    process.exit(failed === 0 && passed > 0 ? 0 : 1);
  });
