// The path, against a scripted model over the OpenAI wire format: a requirement typed
// in the chat → stages turn complete on the team graph → business analysis asks solution
// architecture, which cannot answer, so the question appears as a clarification edge and as an
// approval → a person answers it with the button → the run continues → the final review →
// approve → succeeded. Then the costs page draws its charts; the run page at 390 px wide.

import { join } from 'node:path';
import { api, artifacts, check, noReload, scriptedModel, signIn, until, withDashboard } from '../lib.mjs';

const QUESTION = 'Which columns must the CSV export contain?';

function teamOf(prompt) {
  const m = prompt.match(/# Team: [^(\n]+\(([a-z-]+)\)/);
  return m ? m[1] : 'unknown';
}

function reply(prompt) {
  const team = teamOf(prompt);
  if (prompt.includes('# A question for your team')) {
    return JSON.stringify({
      status: 'BLOCKED',
      reasoning: 'Only the product owner can say which columns matter.',
      blockers: ['the product owner decides the export columns'],
    });
  }
  if (team === 'business-analysis' && !prompt.includes('# Answers to your questions')) {
    return JSON.stringify({
      status: 'NEEDS_CLARIFICATION',
      reasoning: 'The export format is not specified.',
      clarification_needed: { target_team: 'solution-architecture', question: QUESTION },
    });
  }
  return JSON.stringify({
    status: 'COMPLETE',
    reasoning: `The ${team} deliverable is ready.`,
    verified_facts: [`${team} reviewed the requirement`],
    artifacts: [{
      name: `${team}.md`,
      content: `# ${team} deliverable\n\nFor **CSV export**.\n\n| column | type |\n|---|---|\n| id | int |\n\n<script>alert(1)</script>\n`,
    }],
  });
}

export default async function chatFlow() {
  const model = await scriptedModel(reply);
  const config = `
[providers.script]
kind = "openai"
base_url = "${model.url}"

[aliases]
"factory/architect" = ["script:gpt-4o-mini"]
"factory/coder" = ["script:gpt-4o-mini"]
"factory/fast" = ["script:gpt-4o-mini"]
"factory/cheap" = ["script:gpt-4o-mini"]

[models."script:gpt-4o-mini"]
input_per_mtok = 0.15
output_per_mtok = 0.60
`;
  try {
    await withDashboard({ config }, async ({ page, base, token }) => {
      let runId;
      await signIn(page, base, token);

      await check('a requirement typed in the chat starts a run at once and its conversation follows', async () => {
        await page.locator('[data-link="live"]').first().waitFor();
        await page.fill('[data-testid="composer-goal"]', 'As a shop owner, I want to export orders as CSV');
        await page.click('[data-testid="composer-send"]');
        const chat = page.locator('[data-testid="chat"]');
        await chat.getByText('export orders as CSV').first().waitFor();
        const href = await page.locator('[data-testid="chat-open-run"]').getAttribute('href');
        runId = href.split('/').pop();
        await page.locator(`tr[data-run-id="${runId}"]`).waitFor();
        await chat.getByText(QUESTION).first().waitFor({ timeout: 15000 });
      });

      await check('the run page shows the clarification as an edge of the graph and as an approval', async () => {
        await page.click('[data-testid="chat-open-run"]');
        await page.waitForURL(`${base}/runs/${runId}`);
        await page.locator('[data-testid="run"]').waitFor();
        await page.locator('[data-link="live"]').waitFor();
        const edge = page.locator('[data-testid="team-graph"] [data-edge="clarification"]');
        await edge.waitFor();
        const label = await edge.textContent();
        if (!label.includes('Which columns') || !label.includes('$')) throw new Error(`edge label: ${label}`);
        await page.locator('[data-testid="run-approvals"] li[data-kind="clarification"]').waitFor();
        // A direct load while the approval is pending (its card is in the chat too) must hydrate.
        await page.reload();
        await page.locator('[data-link="live"]').waitFor();
        await page.locator('[data-edge="clarification"]').waitFor();
        const ba = page.locator('[data-node="stage"]').first();
        const state = await ba.getAttribute('data-state');
        if (state !== 'waiting') throw new Error(`business analysis is ${state}`);
      });

      await check('clicking the edge opens the question, the refusal and its cost; Enter on a stage opens its TaskResult', async () => {
        // Selecting on the graph shows the detail without reloading the page.
        await noReload(page, 'selecting on the graph', async () => {
          await page.locator('[data-edge="clarification"]').click();
          const detail = page.locator('[data-testid="clarification-detail"]');
          await detail.getByText(QUESTION).waitFor();
          await detail.getByText('Refused').waitFor();
          const usage = await page.locator('[data-testid="detail"] [data-testid="usage"]').innerText();
          if (!usage.includes('script:gpt-4o-mini')) throw new Error(`usage: ${usage}`);
          await page.locator('[data-node="stage"]').first().focus();
          await page.keyboard.press('Enter');
          await page.locator('[data-testid="task-result"]').getByText('NEEDS_CLARIFICATION').waitFor();
          if (!new URL(page.url()).search.includes('sel=stage')) throw new Error(`the address is ${page.url()}`);
        });
      });

      await check('the answer given with the button lets the run continue to its final review', async () => {
        const card = page.locator('[data-testid="run-approvals"] li[data-kind="clarification"]');
        await card.locator('textarea').fill('id, date, customer, total');
        await card.locator('button[data-option="answer"]').click();
        await page.locator('[data-testid="run-approvals"] li[data-kind="review"]').waitFor({ timeout: 20000 });
        const states = await page.locator('[data-testid="team-graph"] [data-node="stage"]').evaluateAll((ns) => ns.map((n) => n.getAttribute('data-state')));
        if (states.length !== 5 || states.some((s) => s !== 'complete')) throw new Error(`stage states: ${states}`);
        await page.locator('[data-testid="chat"]').getByText('id, date, customer, total').first().waitFor();
        await page.screenshot({ path: join(artifacts, 'run-review.png'), fullPage: true });
      });

      await check('artifacts render as sanitised markdown', async () => {
        const first = page.locator('[data-testid="artifacts"] li a').first();
        await first.click();
        const html = page.locator('[data-testid="artifacts"] table');
        await html.first().waitFor();
        const scripts = await page.locator('[data-testid="artifacts"] script').count();
        if (scripts !== 0) throw new Error('a <script> survived sanitising');
      });

      await check('approving the review finishes the run: succeeded everywhere, live', async () => {
        await page.locator('[data-testid="run-approvals"] li[data-kind="review"] button[data-option="approve"]').click();
        await page.locator('[data-testid="run"][data-status="succeeded"]').waitFor({ timeout: 15000 });
        const run = await api(base, token, `/api/runs/${runId}`);
        if (run.json.status !== 'succeeded') throw new Error(`run is ${run.json.status}`);
        if (!(run.json.cost_usd > 0)) throw new Error(`run cost ${run.json.cost_usd}`);
        await page.screenshot({ path: join(artifacts, 'run.png'), fullPage: true });
      });

      await check('the activity feed filters by kind', async () => {
        await noReload(page, 'the feed filter', async () => {
          await page.selectOption('[data-testid="feed-kind"]', 'clarification_requested');
          await until('a filtered feed', async () => {
            const kinds = await page.locator('[data-testid="feed"] li').evaluateAll((ls) => ls.map((l) => l.getAttribute('data-kind')));
            return kinds.length > 0 && kinds.every((k) => k === 'clarification_requested');
          });
        });
      });

      await check('the costs page draws its charts for the run and overall', async () => {
        await page.goto(`${base}/costs?run=${runId}`);
        await page.locator('[data-testid="costs"]').waitFor();
        await until('rendered charts', async () => (await page.locator('[data-chart][data-rendered="true"]').count()) >= 3);
        await page.screenshot({ path: join(artifacts, 'costs.png'), fullPage: true });
        await page.goto(`${base}/costs`);
        await until('rendered charts overall', async () => (await page.locator('[data-chart][data-rendered="true"]').count()) >= 3);
      });

      await check('the run page is usable at 390 px wide (nothing wider than the screen)', async () => {
        await page.setViewportSize({ width: 390, height: 844 });
        await page.goto(`${base}/runs/${runId}`);
        await page.locator('[data-link="live"]').waitFor();
        const width = await page.evaluate(() => document.documentElement.scrollWidth);
        if (width > 392) throw new Error(`the page is ${width} px wide`);
        await page.screenshot({ path: join(artifacts, 'run-390.png'), fullPage: true });
        await page.setViewportSize({ width: 1280, height: 800 });
      });
    });
  } finally {
    model.close();
  }
}
