// 1,000 events a second: run requests are offered at 1,000 a second for 3 seconds (each one a
// `run_created` event, and the engine adds its own events as it takes the runs), at most 256 in
// flight, while the Runs page is open. The page must stay responsive — animation frames keep
// coming, and keys typed into the chat are shown quickly — and end up showing the newest run.
// It prints the rate the server accepted and the events per second that reached the page.
//
// Typing is measured in the page with the Event Timing API: from the moment the browser
// received each key to the next paint after it was handled (what a person waits for). This
// script's own round trip is printed too, but it is not the page's latency: on two cores this
// script, sending 1,000 requests a second, is the busiest process of all.

import { join } from 'node:path';
import { api, artifacts, check, signIn, sleep, until, withDashboard } from '../lib.mjs';

const RATE = 1000; // requests per second
const SECONDS = 3;
const MAX_IN_FLIGHT = 256;
// One run at a time in the engine: the flood is about the page and the event stream, and on two
// cores three offline runs working through their stages beside the browser would take the CPU
// the 1,000 requests a second need.
const ENGINE = '[engine]\nmax_concurrent_runs = 1\n';

export default async function flood() {
  await withDashboard({ config: ENGINE }, async ({ page, base, token }) => {
    await signIn(page, base, token);
    await page.locator('[data-link="live"]').first().waitFor();

    let sent = 0;
    let refused = 0;
    await check(`the Runs page stays responsive while ${RATE * SECONDS} runs are requested at ${RATE}/s`, async () => {
      // Longest gap between animation frames while the flood lasts, and the slowest key.
      await page.evaluate(() => {
        window.__keys = { max: 0, slow: 0 };
        new PerformanceObserver((list) => {
          for (const e of list.getEntries()) {
            if (!['keydown', 'keypress', 'keyup', 'input', 'beforeinput'].includes(e.name)) continue;
            window.__keys.max = Math.max(window.__keys.max, e.duration);
            window.__keys.slow += 1;
          }
        }).observe({ type: 'event', durationThreshold: 16, buffered: false });
        window.__gaps = { max: 0, frames: 0 };
        let last = performance.now();
        const tick = (t) => {
          window.__gaps.max = Math.max(window.__gaps.max, t - last);
          window.__gaps.frames += 1;
          last = t;
          if (!window.__gaps.stop) requestAnimationFrame(tick);
        };
        requestAnimationFrame(tick);
      });
      const seqAt = async () => Number(await page.locator('[data-testid="link"]').getAttribute('data-last-seq'));
      const firstSeq = await seqAt();
      await page.focus('[data-testid="composer-goal"]');
      const started = Date.now();
      let inFlight = 0;
      const pending = [];
      const typing = [];
      for (let i = 0; i < RATE * SECONDS; i++) {
        const due = started + (i * 1000) / RATE;
        const wait = due - Date.now();
        if (wait > 0) await sleep(wait);
        while (inFlight >= MAX_IN_FLIGHT) await sleep(1);
        inFlight += 1;
        pending.push(api(base, token, '/supervisor/start', { goal: `flood requirement ${i}` }).then((r) => {
          inFlight -= 1;
          if (r.status === 201) sent += 1; else refused += 1;
        }));
        if (i % RATE === RATE / 2) {
          // Typing during the flood, key by key, into the focused composer (one word after
          // the other: a word waits for the one before it).
          const word = ` typed${i}`;
          const before = typing[typing.length - 1] ?? Promise.resolve();
          typing.push(before.then(async () => {
            const t0 = Date.now();
            await page.keyboard.type(word);
            return Date.now() - t0;
          }));
        }
      }
      await Promise.all(pending);
      const elapsed = (Date.now() - started) / 1000;
      const typed = await Promise.all(typing);
      const gaps = await page.evaluate(() => { window.__gaps.stop = true; return window.__gaps; });
      const keys = await page.evaluate(() => window.__keys);
      const pushed = (await seqAt()) - firstSeq;
      console.log(`     ${pushed} events reached the page in ${elapsed.toFixed(1)} s: ${(pushed / elapsed).toFixed(0)} events/s`);
      console.log(`     ${sent} runs created in ${elapsed.toFixed(1)} s (${refused} refused); longest frame gap ${gaps.max.toFixed(0)} ms over ${gaps.frames} frames`);
      console.log(`     slowest key to paint ${keys.max.toFixed(0)} ms (${keys.slow} over 16 ms); this script's typing round trips ${typed.join(', ')} ms`);
      if (sent !== RATE * SECONDS) throw new Error(`${refused} requests were refused`);
      if (gaps.max > 500) throw new Error(`the page froze for ${gaps.max.toFixed(0)} ms`);
      if (keys.max > 500) throw new Error(`a key took ${keys.max.toFixed(0)} ms to show`);
      const value = await page.locator('[data-testid="composer-goal"]').inputValue();
      for (let i = RATE / 2; i < RATE * SECONDS; i += RATE) {
        if (!value.includes(` typed${i}`)) throw new Error(`the composer lost what was typed: ${value}`);
      }
    });

    await check('the page shows the newest run, at the top, without a reload', async () => {
      // Requests overlap, so the last one sent is not always the last one created: the newest
      // run is the store's.
      const newest = await api(base, token, '/api/runs?limit=1');
      const id = newest.json[0].id;
      if (!newest.json[0].goal.startsWith('flood requirement ')) throw new Error(`newest run is ${newest.json[0].goal}`);
      await until('the newest run at the top', async () => {
        const first = await page.locator('[data-testid="runs"] tr').first().getAttribute('data-run-id');
        return first === id;
      }, 20000);
      const rows = await page.locator('[data-testid="runs"] tr').count();
      if (rows > 200) throw new Error(`${rows} rows: the list is not capped`);
      await page.screenshot({ path: join(artifacts, 'runs-flood.png') });
    });
  });
}
