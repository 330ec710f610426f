/**
 * The console's "Service accounts" page in Chromium against the real server process: an
 * operator creates a service, broadcasts to a list and to a segment, schedules one; the users
 * get them and the audit log has each action. Skips without /usr/bin/chromium unless
 * MAGPIE_REQUIRE_SERVICES=1.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { startServer, registerAndLogin, api, sleep, type ServerProcess } from './harness.ts';

const ADMIN = 'admin-token-console-services-0123';
const CHROMIUM = '/usr/bin/chromium';
const skip = !existsSync(CHROMIUM) && process.env.MAGPIE_REQUIRE_SERVICES !== '1' ? 'chromium not found' : false;

describe('console: service accounts page', { skip }, () => {
  let srv: ServerProcess;
  before(async () => {
    srv = await startServer({ env: { MAGPIE_ADMIN_TOKEN: ADMIN, MAGPIE_SERVICES_SCHEDULE_POLL_MS: '100' } });
    await api(srv.url, 'POST', '/api/admin/console/admins', { username: 'ops', password: 'a long operator password', role: 'operator' }, ADMIN);
  });
  after(() => srv.stop());

  it('create a service, broadcast to a list and a segment, schedule one; users get them; audited', async () => {
    const alice = await registerAndLogin(srv.url);
    const bob = await registerAndLogin(srv.url);
    await api(srv.url, 'PATCH', `/api/admin/users/${bob.userId}/attributes`, { attributes: { plan: 'gold' } }, ADMIN);
    const { chromium } = await import('playwright-core');
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'] });
    try {
      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
      await page.goto(`${srv.url}/admin/`);
      await page.getByLabel('Username').fill('ops');
      await page.getByLabel('Password').fill('a long operator password');
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.getByRole('button', { name: 'Service accounts' }).click();
      await page.getByLabel('Service name').fill('Campus news');
      await page.getByRole('button', { name: 'Create service' }).click();
      await page.getByRole('button', { name: 'Open Campus news' }).click();
      await page.getByLabel('Audience').selectOption('list');
      await page.getByLabel('Recipients').fill(alice.userId);
      await page.getByLabel('Title', { exact: true }).fill('Library closes early');
      await page.getByRole('button', { name: 'Send' }).click();
      await page.getByText('1 recipient(s)').waitFor({ timeout: 10_000 });
      // The form is not rebuilt under the operator: the audience stays, the message fields are empty.
      assert.equal(await page.getByLabel('Audience').inputValue(), 'list');
      assert.equal(await page.getByLabel('Title', { exact: true }).inputValue(), '');
      await page.getByLabel('Audience').selectOption('segment');
      await page.getByLabel('Recipients').fill('plan=gold');
      await page.getByLabel('Title', { exact: true }).fill('Gold members week');
      await page.getByRole('button', { name: 'Send' }).click();
      await page.getByRole('cell', { name: 'Gold members week' }).waitFor({ timeout: 10_000 });
      await page.getByLabel('Audience').selectOption('all');
      await page.getByLabel('Title', { exact: true }).fill('Scheduled hello');
      // datetime-local takes local time: two seconds from now.
      const at = await page.evaluate(() => {
        const d = new Date(Date.now() + 2000);
        d.setMinutes(d.getMinutes() - d.getTimezoneOffset());
        return d.toISOString().slice(0, 19);
      });
      await page.getByLabel('Send at').fill(at);
      await page.getByRole('button', { name: 'Send' }).click();
      await page.getByText(/^Scheduled for/).waitFor({ timeout: 10_000 });
      assert.deepEqual(errors, []);
    } finally {
      await browser.close();
    }
    const titles = async (token: string) => (await api(srv.url, 'GET', '/api/notifications', undefined, token)).body.notifications.map((n: any) => n.title);
    for (let i = 0; i < 100 && !(await titles(alice.token)).includes('Scheduled hello'); i++) await sleep(100);
    assert.deepEqual(await titles(alice.token), ['Library closes early', 'Scheduled hello']);
    assert.deepEqual(await titles(bob.token), ['Gold members week', 'Scheduled hello']);
    const owner = await api(srv.url, 'POST', '/api/admin/console/admins', { username: 'boss', password: 'a long owner password', role: 'owner' }, ADMIN);
    assert.equal(owner.status, 201);
    const t = (await api(srv.url, 'POST', '/api/console/login', { username: 'boss', password: 'a long owner password' })).body.token;
    const audit = (await api(srv.url, 'GET', '/api/console/audit?limit=50', undefined, t)).body.entries.filter((e: any) => e.admin === 'ops' && e.action.startsWith('service.')).map((e: any) => e.action);
    assert.deepEqual(audit.sort(), ['service.broadcast', 'service.broadcast', 'service.create', 'service.schedule']);
  });
});
