/**
 * The web client's Notifications tab in chromium against the real server: a service's
 * notifications (sent before sign-in and live while open) are listed apart from the chat list,
 * unsubscribe stops new ones, and the chat list shows no conversation for them.
 * Skips when /usr/bin/chromium is missing unless MAGPIE_REQUIRE_SERVICES=1.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Browser } from 'playwright-core';
import { api, login, sleep, startServer, type Account, type ServerProcess } from '../../server/test/harness.ts';

const CHROMIUM = '/usr/bin/chromium';
const ROOT = new URL('../../../', import.meta.url).pathname;
const required = process.env.MAGPIE_REQUIRE_SERVICES === '1';
const haveChromium = existsSync(CHROMIUM);
const skip = !haveChromium && !required ? `chromium not found at ${CHROMIUM}; set MAGPIE_REQUIRE_SERVICES=1 to fail instead` : false;
const PASSWORD = 'correct horse';
const ADMIN = 'web-notifications-admin-token-0123';

describe('web client: notifications tab', { skip, timeout: 300_000 }, () => {
  let server: ServerProcess;
  let browser: Browser;
  let ann: Account;

  before(async () => {
    if (!haveChromium) throw new Error(`MAGPIE_REQUIRE_SERVICES=1 but ${CHROMIUM} is missing`);
    const build = spawnSync(process.execPath, [join(ROOT, 'scripts/build-web.mjs'), '--if-stale'], { stdio: 'inherit' });
    assert.equal(build.status, 0, 'web client build');
    server = await startServer({ env: { MAGPIE_ADMIN_TOKEN: ADMIN, MAGPIE_IP_RATE: '5000', MAGPIE_IP_BURST: '5000' } });
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'] });
    const username = `ann_${randomBytes(3).toString('hex')}`;
    assert.equal((await api(server.url, 'POST', '/api/register', { username, password: PASSWORD, nickname: 'Ann' })).status, 201);
    ann = await login(server.url, username, 'script', 'desktop');
  });
  after(async () => {
    await browser?.close().catch(() => undefined);
    await server?.stop();
  });

  it('lists notifications (earlier and live), unsubscribes, and keeps them out of the chat list', async () => {
    const svc = (await api(server.url, 'POST', '/api/admin/services', { name: 'Campus Deals' }, ADMIN)).body.service;
    const send = (title: string, audience: unknown = { kind: 'all' }) => api(server.url, 'POST', `/api/admin/services/${svc.id}/broadcasts`, { audience, title, body: `${title} body` }, ADMIN);
    await send('Welcome week');
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await ctx.newPage();
    page.setDefaultTimeout(20_000);
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(server.url + '/');
    await page.getByTestId('login-form').waitFor();
    await page.locator('input[name=username]').fill(ann.username);
    await page.locator('input[name=password]').fill(PASSWORD);
    await page.locator('[data-testid=login-form] button[type=submit]').click();
    await page.getByTestId('conversation-list').waitFor();
    await page.getByTestId('tab-notifications').click();
    await page.getByTestId('notification').filter({ hasText: 'Welcome week' }).waitFor();
    assert.equal((await send('Flash sale', { kind: 'list', userIds: [ann.userId] })).status, 201);
    await page.getByTestId('notification').filter({ hasText: 'Flash sale' }).waitFor();
    assert.match(await page.getByTestId('notification').first().innerText(), /Flash sale/, 'newest first');
    await page.getByTestId('notification-service').getByRole('button', { name: 'Unsubscribe' }).click();
    await page.getByTestId('notification-service').getByText('unsubscribed').waitFor();
    assert.equal((await send('After unsubscribe', { kind: 'list', userIds: [ann.userId] })).body.broadcast.recipients, 0);
    await send('All after unsubscribe');
    await sleep(1000);
    assert.equal(await page.getByTestId('notification').count(), 2);
    // Seen in the tab: read.
    const s = (await api(server.url, 'GET', '/api/notifications/services', undefined, ann.token)).body.services.find((x: any) => x.id === svc.id);
    assert.equal(s.unread, 0);
    // No chat conversation was made for them.
    await page.goto(server.url + '/');
    await page.getByTestId('conversation-list').waitFor();
    assert.equal(await page.getByTestId('conversation-row').count(), 0);
    assert.deepEqual(errors, []);
    await ctx.close();
  });
});
