// Sign-in, server rendering, hydration and the live WebSocket on the offline provider: a run
// created through the API appears on the Runs page without a reload; the Approvals page
// approves its plan and final review with buttons.

import { join } from 'node:path';
import { api, artifacts, check, noReload, sleep, withDashboard } from '../lib.mjs';

export default async function basics() {
  await withDashboard({}, async ({ page, base, token }) => {
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

    await check('the admin token signs in and shows the empty Runs page with the chat', async () => {
      await page.fill('#token', token);
      await page.click('button[type=submit]');
      await page.waitForURL(base + '/');
      await page.getByRole('heading', { name: 'Runs', exact: true }).waitFor();
      await page.getByText('No runs yet').waitFor();
      await page.locator('[data-testid="composer"]').waitFor();
      const note = await page.locator('[data-testid="models-note"]').innerText();
      if (!note.includes('offline (no model)')) throw new Error(`the models note says: ${note}`);
    });

    await check('the page hydrates and the live link connects', async () => {
      await page.locator('[data-link="live"]').first().waitFor();
      await page.screenshot({ path: join(artifacts, 'runs-empty.png'), fullPage: true });
    });

    await check('a run created through the API appears and goes live to waiting_for_human without a reload', async () => {
      await noReload(page, 'the new run going live', async () => {
        const goal = 'Add a health check endpoint ' + Date.now();
        const res = await api(base, token, '/supervisor/start', { goal });
        if (res.status !== 201) throw new Error(`start returned ${res.status}`);
        const row = page.locator(`tr[data-run-id="${res.json.run_id}"]`);
        await row.waitFor({ timeout: 10000 });
        let text = await row.innerText();
        if (!text.includes(goal)) throw new Error(`row says: ${text}`);
        const until = Date.now() + 15000;
        while (!text.includes('waiting for human') && Date.now() < until) {
          await sleep(100);
          text = await row.innerText();
        }
        if (!text.includes('waiting for human')) throw new Error(`row never showed waiting for human: ${text}`);
      });
      await page.screenshot({ path: join(artifacts, 'runs-live.png'), fullPage: true });
    });

    await check('the plan and the final review are approved with buttons; the run succeeds', async () => {
      await page.goto(base + '/approvals');
      const plan = page.locator('li[data-kind="plan"]');
      await plan.waitFor({ timeout: 10000 });
      await page.locator('[data-link="live"]').waitFor();
      await plan.locator('button[data-option="approve"]').click();
      const review = page.locator('li[data-kind="review"]');
      await review.waitFor({ timeout: 15000 });
      await page.screenshot({ path: join(artifacts, 'approvals.png'), fullPage: true });
      await review.locator('button[data-option="approve"]').click();
      await page.locator('[data-testid="no-approvals"]').waitFor({ timeout: 15000 });
      const runs = await api(base, token, '/api/runs');
      if (runs.json[0].status !== 'succeeded') throw new Error(`run is ${runs.json[0].status}`);
    });
  });
}
