// Shared pieces of the browser tests: the real `factory` server on a fresh data directory,
// headless Chromium, a scripted model speaking the OpenAI wire format on loopback, and the
// check/result bookkeeping.

import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..');
export const artifacts = join(root, 'end2end/artifacts');
const bin = process.env.FACTORY_BIN ?? join(root, 'target/debug/factory');
const chromiumPath = process.env.CHROMIUM ?? '/usr/bin/chromium';

export const results = [];

/** Runs one named check; a failure is recorded and rethrown (the scenario stops there). */
export async function check(name, fn) {
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

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` until it returns a truthy value or `ms` pass. */
export async function until(what, fn, ms = 15000) {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    last = await fn();
    if (last) return last;
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${what} (last: ${JSON.stringify(last)})`);
}

export function newToken() {
  return 'fct_e2e_' + Math.random().toString(16).slice(2).padEnd(40, '0');
}

/**
 * Starts `factory serve` on a fresh data directory; `config` is written as its factory.toml.
 * With `logLevel`, everything the server writes is kept in `log` (an array of lines) at that
 * level instead of going to this process's stderr.
 */
export async function startServer({ token, config, logLevel }) {
  const dataDir = mkdtempSync(join(tmpdir(), 'factory-e2e-'));
  if (config) writeFileSync(join(dataDir, 'factory.toml'), config);
  const log = [];
  const child = spawn(bin, ['--data-dir', dataDir, 'serve', '--addr', '127.0.0.1:0'], {
    env: { ...process.env, FACTORY_ADMIN_TOKEN: token, RUST_LOG: logLevel ?? 'warn', OLLAMA_HOST: 'http://127.0.0.1:9' },
    stdio: ['ignore', 'pipe', logLevel ? 'pipe' : 'inherit'],
  });
  if (logLevel) createInterface({ input: child.stderr }).on('line', (line) => log.push(line));
  const base = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('server did not start within 20 s')), 20000);
    child.on('exit', (code) => reject(new Error(`server exited early with ${code}`)));
    createInterface({ input: child.stdout }).on('line', (line) => {
      log.push(line);
      const m = line.match(/is listening on (http:\/\/\S+)/);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
  });
  return {
    base,
    dataDir,
    log,
    async stop() {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10000))]);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export async function launchBrowser() {
  const userDataDir = mkdtempSync(join(tmpdir(), 'factory-e2e-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: chromiumPath,
    headless: true,
    viewport: { width: 1280, height: 800 },
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  });
  const page = context.pages()[0] ?? (await context.newPage());
  const errors = [];
  page.on('pageerror', (err) => errors.push(err.message));
  page.on('console', (msg) => {
    if (msg.type() === 'error' || msg.type() === 'warning') console.log(`browser ${msg.type()}: ${msg.text()}`);
  });
  page.setDefaultTimeout(15000);
  return {
    context,
    page,
    errors,
    async close() {
      await context.close();
      rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}

/**
 * Runs `body({ page, base, token, server })` against a fresh server (`config` as its
 * factory.toml) and a fresh headless Chromium, then checks the pages raised no script errors.
 * Both are stopped whatever happens.
 */
export async function withDashboard({ config, logLevel } = {}, body) {
  const token = newToken();
  const server = await startServer({ token, config, logLevel });
  const browser = await launchBrowser().catch((e) => { server.stop(); throw e; });
  try {
    await body({ page: browser.page, base: server.base, token, server });
    await check('no script errors on the pages', async () => {
      if (browser.errors.length) throw new Error(browser.errors.join('; '));
    });
  } finally {
    await browser.close();
    await server.stop();
  }
}

/** Runs `fn` (actions on `page`) and fails if they reloaded the page: a flag set on `window`
 *  before must still be there after. `what` names the actions in the error. */
export async function noReload(page, what, fn) {
  await page.evaluate(() => { window.__factoryNoReload = true; });
  await fn();
  if (!(await page.evaluate(() => window.__factoryNoReload === true))) throw new Error(`${what} reloaded the page`);
}

/** Signs in through the login form. */
export async function signIn(page, base, token) {
  await page.goto(base + '/login');
  await page.fill('#token', token);
  await page.click('button[type=submit]');
  await page.waitForURL(base + '/');
}

/** A JSON request to the API with the admin token. */
export async function api(base, token, path, body) {
  const res = await fetch(base + path, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let json;
  try { json = JSON.parse(text); } catch { json = text; }
  return { status: res.status, json };
}

/**
 * Answers an OpenAI chat-completions request with `text`: streamed the way the API streams
 * (role, content in pieces, finish, usage only when `stream_options.include_usage` asks) when
 * the request says `stream: true`, one JSON reply otherwise.
 */
export function sendCompletion(res, request, text, usage, n) {
  const id = 'chatcmpl-' + n;
  if (request.stream === true) {
    const chunk = (delta, finish) => ({
      id, object: 'chat.completion.chunk', model: request.model,
      choices: [{ index: 0, delta, finish_reason: finish }],
    });
    const frames = [chunk({ role: 'assistant', content: '' }, null)];
    for (let i = 0; i < text.length; i += 64) frames.push(chunk({ content: text.slice(i, i + 64) }, null));
    frames.push(chunk({}, 'stop'));
    if (request.stream_options && request.stream_options.include_usage === true) {
      frames.push({ id, object: 'chat.completion.chunk', choices: [], usage });
    }
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.end(frames.map((f) => `data: ${JSON.stringify(f)}\n\n`).join('') + 'data: [DONE]\n\n');
    return;
  }
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify({
    id,
    object: 'chat.completion',
    created: Math.floor(Date.now() / 1000),
    model: request.model,
    choices: [{ index: 0, message: { role: 'assistant', content: text }, finish_reason: 'stop' }],
    usage,
  }));
}

/**
 * A model server on loopback speaking the OpenAI chat-completions wire format. `reply(prompt)`
 * gets the whole prompt text (system + user messages) and returns the assistant's text.
 * Every call is answered with 1,200 prompt and 300 completion tokens.
 */
export async function scriptedModel(reply) {
  const calls = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      if (req.method === 'GET' && req.url.endsWith('/models')) {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ object: 'list', data: [{ id: 'gpt-4o-mini', object: 'model' }] }));
        return;
      }
      if (req.method !== 'POST' || !req.url.endsWith('/chat/completions')) {
        res.writeHead(404).end();
        return;
      }
      const request = JSON.parse(body);
      const prompt = request.messages.map((m) => (typeof m.content === 'string' ? m.content : JSON.stringify(m.content))).join('\n');
      const text = reply(prompt);
      calls.push({ prompt, text });
      sendCompletion(res, request, text, { prompt_tokens: 1200, completion_tokens: 300, total_tokens: 1500 }, calls.length);
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${server.address().port}/v1`, calls, close: () => server.close() };
}
