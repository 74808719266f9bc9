// A newcomer's path from "offline (no model)" to a model of their own, on the Settings page:
// a provider added with its key in one form, tested with its button (the answer names the
// model only that server could name), a run started in the chat served by it — and the key
// nowhere a person or a program can read it back: events, API answers, pages, server log.
//
// The model is a small OpenAI-format server in this process that refuses any request without
// the expected bearer key, lists a model with a random name (the provider asks for `auto`),
// and answers each stage with a valid TaskResult that echoes the team it was asked as.

import { createServer } from 'node:http';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { api, artifacts, check, sendCompletion, signIn, until, withDashboard } from '../lib.mjs';

const KEY = 'sk-e2e-' + randomBytes(18).toString('hex');
const SERVED = 'e2e-model-' + randomBytes(4).toString('hex');

function teamOf(prompt) {
  const m = prompt.match(/# Team: [^(\n]+\(([a-z-]+)\)/);
  return m ? m[1] : 'unknown';
}

/** The OpenAI-format server: 401 without `Bearer KEY`, like the real API. */
async function keyedModel() {
  const calls = [];
  const refused = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      const json = (status, value) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(value));
      };
      if (req.headers.authorization !== `Bearer ${KEY}`) {
        refused.push(req.url);
        json(401, { error: { message: 'Incorrect API key provided.', type: 'invalid_request_error', code: 'invalid_api_key' } });
        return;
      }
      if (req.method === 'GET' && req.url.endsWith('/models')) {
        json(200, { object: 'list', data: [{ id: SERVED, object: 'model' }] });
        return;
      }
      if (req.method !== 'POST' || !req.url.endsWith('/chat/completions')) {
        json(404, { error: { message: 'not found' } });
        return;
      }
      const request = JSON.parse(body);
      const prompt = request.messages.map((m) => (typeof m.content === 'string' ? m.content : JSON.stringify(m.content))).join('\n');
      const team = teamOf(prompt);
      const text = prompt.includes('connectivity test')
        ? 'ready'
        : JSON.stringify({
          status: 'COMPLETE',
          reasoning: `${request.model} answered as ${team} (call ${calls.length + 1}).`,
          verified_facts: [`${team} read the requirement`],
          artifacts: [{ name: `${team}.md`, content: `# ${team}\n\nWritten by ${request.model}.\n` }],
        });
      calls.push({ model: request.model, team });
      sendCompletion(res, request, text, { prompt_tokens: 900, completion_tokens: 120, total_tokens: 1020 }, calls.length);
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${server.address().port}/v1`, calls, refused, close: () => server.close() };
}

export default async function providers() {
  const model = await keyedModel();
  try {
    await withDashboard({ logLevel: 'debug' }, async ({ page, base, token, server }) => {
      const pages = [];
      let runId;
      await signIn(page, base, token);

      await check('a provider is added with its key in one form, and the page shows only its last four characters', async () => {
        await page.goto(base + '/settings');
        await page.locator('[data-link="live"]').waitFor();
        await page.locator('form[data-ready="true"] [data-testid="provider-save"]').waitFor();
        await page.fill('[data-testid="provider-name"]', 'acme');
        await page.selectOption('[data-testid="provider-kind"]', 'openai');
        await page.fill('[data-testid="provider-base-url"]', model.url);
        await page.fill('[data-testid="provider-model"]', 'auto');
        await page.fill('[data-testid="provider-key"]', KEY);
        if (!(await page.isChecked('[data-testid="provider-every-alias"]'))) throw new Error('"use for every alias" is not the default');
        await page.click('[data-testid="provider-save"]');
        await page.locator('[data-testid="provider-saved"]').waitFor();
        const row = page.locator('tr[data-provider="acme"]');
        await row.waitFor();
        await row.getByText(`key set, ends in …${KEY.slice(-4)}`).waitFor();
        if ((await page.inputValue('[data-testid="provider-key"]')) !== '') throw new Error('the key stays in the form after saving');
        const chains = await page.locator('[data-testid="settings-aliases"]').innerText();
        if (!chains.includes('acme:auto')) throw new Error(`chains: ${chains}`);
        pages.push(await page.content());
        await page.screenshot({ path: join(artifacts, 'settings-providers.png'), fullPage: true });
      });

      await check('Test on the provider row shows the server\'s own model, latency, tokens and capabilities', async () => {
        const row = page.locator('tr[data-provider="acme"]');
        await row.locator('[data-testid="provider-test"]').click();
        const result = row.locator('[data-testid="provider-test-result"][data-ok="true"]');
        await result.waitFor();
        const text = await result.innerText();
        if (!text.includes(`acme:${SERVED}`)) throw new Error(`test result: ${text}`);
        for (const c of ['context_window', 'temperature', 'reasoning_effort', 'tools', 'structured_output', 'max_completion_tokens']) {
          if ((await result.locator(`[data-capability="${c}"]`).count()) !== 1) throw new Error(`no ${c} in ${text}`);
        }
        if (!/\d+ ms/.test(text) || !text.includes('900 tokens in')) throw new Error(`test result: ${text}`);
        pages.push(await page.content());
      });

      await check('a run started in the chat is served by the new model', async () => {
        const before = model.calls.length;
        await page.goto(base + '/');
        await page.locator('[data-link="live"]').first().waitFor();
        await page.locator('[data-testid="composer"]').getByText('acme:auto').first().waitFor();
        await page.fill('[data-testid="composer-goal"]', 'As a shop owner, I want to export orders as CSV');
        await page.click('[data-testid="composer-send"]');
        const href = await page.locator('[data-testid="chat-open-run"]').getAttribute('href');
        runId = href.split('/').pop();
        const chat = page.locator('[data-testid="chat"]');
        await chat.getByText(`${SERVED} answered as business-analysis`).first().waitFor({ timeout: 20000 });
        if (model.calls.length <= before) throw new Error('the model server saw no call');
        const events = await api(base, token, `/events?run_id=${runId}&limit=1000`);
        const served = events.json.events.filter((e) => e.kind === 'model_call_finished').map((e) => `${e.payload.provider}:${e.payload.model}`);
        if (!served.length || served.some((s) => s !== `acme:${SERVED}`)) throw new Error(`served by ${served}`);
        if (model.refused.length) throw new Error(`requests without the key: ${model.refused}`);
        pages.push(await page.content());
        await page.goto(`${base}/runs/${runId}`);
        await page.locator('[data-testid="run"]').waitFor();
        pages.push(await page.content());
      });

      await check('the key is in no event, API answer, page or server log line', async () => {
        const seen = [];
        const events = await api(base, token, '/events?after=0&limit=1000');
        if (!JSON.stringify(events.json).includes('"key":"changed"')) throw new Error('the change is not recorded as "key": "changed"');
        seen.push(['events', JSON.stringify(events.json)]);
        for (const path of ['/api/settings', `/api/runs/${runId}`, '/api/costs']) {
          seen.push([path, JSON.stringify((await api(base, token, path)).json)]);
        }
        for (const path of ['/audit', '/settings', '/costs', '/gym']) {
          await page.goto(base + path);
          seen.push([path, await page.content()]);
        }
        pages.forEach((html, i) => seen.push([`page ${i}`, html]));
        if (!server.log.some((l) => l.includes('settings changed'))) throw new Error('the server log was not captured');
        seen.push(['server log', server.log.join('\n')]);
        const leaks = seen.filter(([, text]) => text.includes(KEY) || text.includes(KEY.slice(7, 30))).map(([where]) => where);
        if (leaks.length) throw new Error(`the key appears in: ${leaks.join(', ')}`);
      });
    });
  } finally {
    model.close();
  }
}
