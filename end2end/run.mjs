// Browser tests: headless Chromium against real `factory` servers on fresh data directories.
//  - basics: sign-in, server rendering, hydration, the live Runs page and the Approvals page;
//  - chat flow: a requirement typed in the chat runs against a scripted model; the team graph,
//    a clarification edge and its approval, answering with a button, the final review, costs;
//  - pages: memory search, the audit log, a settings change and cancelling a run, each through
//    the page's own controls without a reload;
//  - providers: a provider added with its key on Settings, tested, serving a run started in
//    the chat, and the key in no event, answer, page or log line;
//  - gym: the gym's self-contained report.html, written by `factory gym run` and opened from
//    disk: its tables, both charts drawn, nothing fetched;
//  - flood: run requests offered at 1,000 a second for 3 s while the Runs page must stay
//    responsive and end up showing the newest run.
// Saves screenshots to end2end/artifacts/.
//
// Usage: node end2end/run.mjs [basics|chat|pages|providers|gym|flood]...   (default: all; FACTORY_BIN and
// CHROMIUM override the binary and the browser)

import { mkdirSync } from 'node:fs';
import { artifacts, results } from './lib.mjs';
import basics from './scenarios/basics.mjs';
import chat from './scenarios/chat_flow.mjs';
import flood from './scenarios/flood.mjs';
import gym from './scenarios/gym.mjs';
import pages from './scenarios/pages.mjs';
import providers from './scenarios/providers.mjs';

const scenarios = { basics, chat, pages, providers, gym, flood };
const wanted = process.argv.slice(2);
const chosen = wanted.length ? wanted : Object.keys(scenarios);

async function main() {
  mkdirSync(artifacts, { recursive: true });
  for (const name of chosen) {
    const scenario = scenarios[name];
    if (!scenario) throw new Error(`unknown scenario ${name}; known: ${Object.keys(scenarios).join(', ')}`);
    console.log(`-- ${name}`);
    try {
      await scenario();
    } catch (err) {
      // A scenario that could not run (no Chromium, no server) fails: it never just skips.
      results.push({ name: `${name} aborted`, ok: false });
      console.log(`end2end: ${name} aborted: ${err.stack ?? err}`);
    }
  }
}

main()
  .catch((err) => console.log(`end2end: aborted: ${err.stack ?? err}`))
  .finally(() => {
    const passed = results.filter((r) => r.ok).length;
    const failed = results.length - passed;
    console.log(`end2end: ${passed} passed, ${failed} failed`);
    console.log(`screenshots: ${artifacts}`);
    process.exit(failed === 0 && passed > 0 ? 0 : 1);
  });
