// The other pages, on the offline provider: memory search, the audit log (chain check, kind
// filter, an event's JSON), a settings change recorded as an event, and cancelling a run —
// each through the page's own controls, shown without a reload.

import { join } from 'node:path';
import { api, artifacts, check, noReload, signIn, until, withDashboard } from '../lib.mjs';

/** Approves every pending approval of `runId` until the run has finished. */
async function finish(base, token, runId) {
  await until('the run to finish', async () => {
    const run = await api(base, token, `/api/runs/${runId}`);
    if (['succeeded', 'failed', 'canceled'].includes(run.json.status)) return run.json.status;
    const pending = await api(base, token, `/api/approvals?status=pending&run_id=${runId}`);
    for (const a of pending.json) {
      await api(base, token, `/api/approvals/${a.id}/decide`, { option: 'approve' });
    }
    return false;
  }, 30000);
}

export default async function pages() {
  await withDashboard({}, async ({ page, base, token }) => {
    await signIn(page, base, token);
    const done = await api(base, token, '/supervisor/start', { goal: 'Add a health check endpoint for the load balancer' });
    await finish(base, token, done.json.run_id);

    await check('memory search shows what the teams retained, without a reload', async () => {
      await page.goto(base + '/memory');
      await page.locator('[data-link="live"]').waitFor();
      await page.locator('[data-testid="memory-empty"]').waitFor();
      await noReload(page, 'the search', async () => {
        await page.fill('[data-testid="memory-q"]', 'health check');
        await page.keyboard.press('Enter');
        await page.locator('[data-testid="memory-results"] li').first().waitFor();
      });
      if (!page.url().includes('q=health')) throw new Error(`the address is ${page.url()}`);
    });

    await check('the audit page checks the chain, filters by kind and opens an event', async () => {
      await page.goto(base + '/audit');
      await page.locator('[data-testid="audit-status"] [data-state="intact"]').waitFor();
      await noReload(page, 'the filter', async () => {
        await page.selectOption('[data-testid="audit-kind"]', 'run_created');
        await until('only run_created rows', async () => {
          const kinds = await page.locator('[data-testid="audit-rows"] tr[data-kind]').evaluateAll((rs) => rs.map((r) => r.getAttribute('data-kind')));
          return kinds.length > 0 && kinds.every((k) => k === 'run_created');
        });
        await page.locator('[data-testid="audit-rows"] tr[data-kind] a').first().click();
        const detail = page.locator('[data-testid="event-detail"]');
        await detail.waitFor();
        if (!(await detail.innerText()).includes('run_created')) throw new Error('the event JSON is not shown');
      });
      await page.locator('[data-testid="audit-verify"]').click();
      await page.locator('[data-testid="audit-status"] [data-state="intact"]').waitFor();
    });

    await check('a routing change is saved, recorded as an event and in force', async () => {
      await page.goto(base + '/settings');
      await page.locator('[data-link="live"]').waitFor();
      const field = page.locator('[data-testid="settings-routing-threshold"]');
      await page.locator('form[data-ready="true"] [data-testid="settings-routing-save"]').waitFor();
      await field.fill('0.45');
      await page.click('[data-testid="settings-routing-save"]');
      const saved = page.locator('[data-testid="settings-saved"]');
      await saved.waitFor();
      const seq = await saved.getAttribute('data-event');
      if (!(Number(seq) > 0)) throw new Error(`saved as event ${seq}`);
      const settings = await api(base, token, '/api/settings');
      if (settings.json.routing.threshold !== 0.45) throw new Error(`threshold is ${settings.json.routing.threshold}`);
      // The live refresh that follows keeps the form and its note.
      await page.locator('[data-testid="settings-routing-source"]').getByText(`event #${seq}`).waitFor();
      await saved.waitFor();
      await page.screenshot({ path: join(artifacts, 'settings.png'), fullPage: true });
    });

    await check('a run is cancelled with its button and shows canceled live', async () => {
      const started = await api(base, token, '/supervisor/start', { goal: 'Export invoices as PDF' });
      const id = started.json.run_id;
      await page.goto(`${base}/runs/${id}`);
      await page.locator('[data-link="live"]').waitFor();
      await page.locator('[data-testid="cancel-run"]').click();
      await page.locator('[data-testid="run"][data-status="canceled"]').waitFor();
      if (await page.locator('[data-testid="cancel-run"]').count()) throw new Error('the cancel button is still there');
      const run = await api(base, token, `/api/runs/${id}`);
      if (run.json.status !== 'canceled') throw new Error(`run is ${run.json.status}`);
    });
  });
}
