/**
 * The console's message trace view in Chromium: an address `#/messages/<id>/trace` opens the
 * timeline of that message after sign-in, and the "Message trace" tab traces an id typed in.
 * Skips when /usr/bin/chromium is missing unless MAGPIE_REQUIRE_SERVICES=1.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { startServer, registerAndLogin, api, RawClient, sleep, type ServerProcess } from './harness.ts';

const ADMIN = 'trace-console-admin-token-0123456789';
const CHROMIUM = '/usr/bin/chromium';
const browserSkip = !existsSync(CHROMIUM) && process.env.MAGPIE_REQUIRE_SERVICES !== '1' ? 'chromium not found' : false;

describe('console: message trace view', { skip: browserSkip }, () => {
  let srv: ServerProcess;
  before(async () => {
    srv = await startServer({ env: { MAGPIE_ADMIN_TOKEN: ADMIN, MAGPIE_NODE_ID: 'console-node' } });
  });
  after(() => srv?.stop());

  it('shows each stage with its time and node, from a link and from the form', async () => {
    const a = await registerAndLogin(srv.url, { deviceId: 'a-1' });
    const b = await registerAndLogin(srv.url, { deviceId: 'b-1' });
    const { client: ca } = await RawClient.connect(srv.wsUrl, a.token);
    const { client: cb } = await RawClient.connect(srv.wsUrl, b.token);
    const sent = await ca.request({ type: 'send', clientMsgId: 't1', to: b.userId, kind: 'text', body: { text: 'trace me' } });
    const got = await cb.waitFor((f) => f.type === 'msg' && f.message.id === sent.message.id);
    cb.send({ type: 'ack', inboxSeq: got.inboxSeq });
    const second = await ca.request({ type: 'send', clientMsgId: 't2', to: b.userId, kind: 'text', body: { text: 'and me' } });
    for (let i = 0; i < 50; i++) {
      const r = await api(srv.url, 'GET', `/api/admin/messages/${sent.message.id}/trace`, undefined, ADMIN);
      if (r.body.events?.some((e: { stage: string }) => e.stage === 'ack')) break;
      await sleep(100);
    }
    assert.equal((await api(srv.url, 'POST', '/api/admin/console/admins', { username: 'tracer', password: 'a long viewer password', role: 'viewer' }, ADMIN)).status, 201);

    const { chromium } = await import('playwright-core');
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'] });
    try {
      const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
      await page.goto(`${srv.url}/admin/#/messages/${encodeURIComponent(sent.message.id)}/trace`);
      await page.getByLabel('Username').fill('tracer');
      await page.getByLabel('Password').fill('a long viewer password');
      await page.getByRole('button', { name: 'Sign in' }).click();
      const table = page.getByRole('table', { name: `Trace of message ${sent.message.id}` });
      await table.waitFor({ timeout: 10_000 });
      for (const stage of ['send', 'commit', 'fanout', 'deliver', 'ack']) assert.equal(await table.locator(`tr[data-stage="${stage}"]`).count(), 1, stage);
      const ackRow = table.locator('tr[data-stage="ack"]');
      assert.match(await ackRow.innerText(), /ACK from device\s+console-node\s+/);
      assert.match(await ackRow.innerText(), new RegExp(`${b.userId} / b-1`));
      assert.match(await table.locator('tr[data-stage="send"]').innerText(), /^\+0\.00 ms\s+Send/);
      assert.match(await page.getByRole('status').innerText(), /from 1 node\(s\): console-node/);
      await page.screenshot({ path: process.env.MAGPIE_SCREENSHOT ?? '/tmp/magpie-console-trace.png', fullPage: true });

      // The form: another message id, and an unknown one.
      await page.getByLabel('Message id').fill(second.message.id);
      await page.getByRole('button', { name: 'Trace', exact: true }).click();
      await page.getByRole('table', { name: `Trace of message ${second.message.id}` }).waitFor({ timeout: 10_000 });
      assert.ok(page.url().endsWith(`#/messages/${encodeURIComponent(second.message.id)}/trace`));
      await page.getByLabel('Message id').fill('m-none');
      await page.getByRole('button', { name: 'Trace', exact: true }).click();
      await page.getByRole('alert').filter({ hasText: 'no node' }).waitFor({ timeout: 10_000 });
      assert.equal(await page.getByRole('table').count(), 0, 'no stale timeline under the error');
      assert.deepEqual(errors.filter((e) => !/404|Not Found/.test(e)), []);
    } finally {
      await browser.close();
      ca.close();
      cb.close();
    }
  });
});
