/**
 * The operator's message actions on SQLite (real server process; see admin-messages-e2e-suite.ts),
 * and the console's Messages page in Chromium: list a conversation, recall a message with a
 * reason, see it in the audit log. The browser part skips when /usr/bin/chromium is missing
 * unless MAGPIE_REQUIRE_SERVICES=1.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { api, registerAndLogin, startServer, type ServerProcess } from './harness.ts';
import { MSG_ADMIN, MSG_ENV, adminMessagesSuite } from './admin-messages-e2e-suite.ts';

const CHROMIUM = '/usr/bin/chromium';
const browserSkip = !existsSync(CHROMIUM) && process.env.MAGPIE_REQUIRE_SERVICES !== '1' ? 'chromium not found' : false;

describe('operator message actions (SQLite)', () => {
  let srv: ServerProcess;
  before(async () => {
    srv = await startServer({ env: MSG_ENV });
  });
  after(() => srv.stop());
  adminMessagesSuite(() => srv);

  it('the console Messages and Retention pages in Chromium', { skip: browserSkip }, async () => {
    const a = await registerAndLogin(srv.url);
    const b = await registerAndLogin(srv.url);
    const sent = await api(srv.url, 'POST', '/api/messages', { clientMsgId: 'browser-1', to: b.userId, kind: 'text', body: { text: 'spam spam spam' } }, a.token);
    const conv = sent.body.message.conv;
    await api(srv.url, 'POST', '/api/admin/console/admins', { username: 'boss', password: 'a long owner password', role: 'owner' }, MSG_ADMIN);
    const { chromium } = await import('playwright-core');
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'] });
    try {
      const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
      page.on('dialog', (d) => void d.accept('spam campaign'));
      await page.goto(`${srv.url}/admin/`);
      await page.getByLabel('Username').fill('boss');
      await page.getByLabel('Password').fill('a long owner password');
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.getByRole('button', { name: 'Messages' }).click();
      await page.getByLabel('Conversation id').fill(conv);
      await page.getByRole('button', { name: 'List messages' }).click();
      const row = page.locator(`tr[data-message-id="${sent.body.message.id}"]`);
      await row.getByRole('cell', { name: 'spam spam spam' }).waitFor({ timeout: 10_000 });
      await row.getByRole('button', { name: 'Recall' }).click();
      await page.getByRole('status').filter({ hasText: 'Recall: done' }).waitFor({ timeout: 10_000 });
      await row.getByRole('cell', { name: 'recalled', exact: true }).waitFor({ timeout: 10_000 });
      // Look the same message up by id.
      await page.getByLabel('Message id').fill(sent.body.message.id);
      await page.getByRole('button', { name: 'Look up' }).click();
      await page.getByText(`Conversation ${conv}`).waitFor({ timeout: 10_000 }).catch(async () => page.getByText(conv).first().waitFor({ timeout: 5000 }));
      await page.getByRole('button', { name: 'Audit log' }).click();
      await page.getByRole('cell', { name: 'message.recall' }).first().waitFor({ timeout: 10_000 });
      // Retention: set an override on the conversation and see it listed.
      await page.getByRole('button', { name: 'Retention' }).click();
      await page.getByLabel('Conversation to override').fill(conv);
      await page.getByLabel('Retention days').fill('7');
      await page.getByLabel('Reason', { exact: true }).fill('short-lived support chat');
      await page.getByRole('button', { name: 'Set override' }).click();
      await page.getByRole('cell', { name: 'short-lived support chat' }).waitFor({ timeout: 10_000 });
      await page.getByRole('button', { name: 'Run purge now' }).click();
      await page.getByRole('status').filter({ hasText: 'Run done' }).waitFor({ timeout: 10_000 });
      assert.deepEqual(errors, []);
    } finally {
      await browser.close();
    }
    const o = await api(srv.url, 'GET', `/api/admin/retention/conversations/${encodeURIComponent(conv)}`, undefined, MSG_ADMIN);
    assert.deepEqual([o.body.days, o.body.override.setBy], [7, 'boss']);
  });
});
