/**
 * Read receipts, typing and presence in the web client (issue 19), in chromium against the
 * real server: ✓✓ turns into "Read" in a 1:1 chat, a group message shows "N unread" that
 * opens the read / unread lists, "Bob is typing…", the online dot and "last seen", and the
 * per-group notification level. Skips when /usr/bin/chromium is missing unless MAGPIE_REQUIRE_SERVICES=1.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Browser, Page } from 'playwright-core';
import { api, login, startServer, RawClient, type Account, type ServerProcess } from '../../server/test/harness.ts';

const CHROMIUM = '/usr/bin/chromium';
const ROOT = new URL('../../../', import.meta.url).pathname;
const required = process.env.MAGPIE_REQUIRE_SERVICES === '1';
const haveChromium = existsSync(CHROMIUM);
const skip = !haveChromium && !required ? `chromium not found at ${CHROMIUM}; set MAGPIE_REQUIRE_SERVICES=1 to fail instead` : false;
if (skip) console.log(`# web receipts skipped: ${skip}`);
const PASSWORD = 'correct horse';
const T = 20_000;

describe('web client: read receipts, typing, presence, notification level', { skip, timeout: 300_000 }, () => {
  let server: ServerProcess;
  let browser: Browser;
  const suffix = randomBytes(3).toString('hex');
  let ann: Account;
  let bob: Account;
  let cat: Account;
  let group = '';
  let dm = '';
  const sockets: RawClient[] = [];

  before(async () => {
    const build = spawnSync(process.execPath, [join(ROOT, 'scripts/build-web.mjs'), '--if-stale'], { stdio: 'inherit' });
    assert.equal(build.status, 0, 'web client build');
    server = await startServer({ env: { MAGPIE_IP_RATE: '2000', MAGPIE_IP_BURST: '5000', MAGPIE_USER_RATE: '500', MAGPIE_USER_BURST: '2000', MAGPIE_PRESENCE_DEBOUNCE_MS: '100', MAGPIE_RECEIPTS_FLUSH_MS: '20' } });
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-quic', '--no-first-run'] });
    const reg = async (name: string, nickname: string) => {
      const username = `${name}_${suffix}`;
      assert.equal((await api(server.url, 'POST', '/api/register', { username, password: PASSWORD, nickname })).status, 201);
      return login(server.url, username, 'script', 'desktop');
    };
    ann = await reg('ann', 'Ann');
    bob = await reg('bob', 'Bob');
    cat = await reg('cat', 'Cat');
    for (const b of [bob, cat]) {
      assert.equal((await api(server.url, 'POST', '/api/friends/requests', { to: b.userId }, ann.token)).status, 200);
      assert.equal((await api(server.url, 'POST', `/api/friends/requests/${ann.userId}/accept`, {}, b.token)).status, 200);
    }
    const g = await api<{ group: { conv: string } }>(server.url, 'POST', '/api/groups', { name: 'Receipts', members: [bob.userId, cat.userId] }, ann.token);
    group = g.body.group.conv;
    const r = await api<{ message: { conv: string } }>(server.url, 'POST', '/api/messages', { clientMsgId: 'hello', to: bob.userId, kind: 'text', body: { text: 'Hello Bob' } }, ann.token);
    dm = r.body.message.conv;
    await api(server.url, 'POST', '/api/messages', { clientMsgId: 'g1', conv: group, kind: 'text', body: { text: 'Read this, team' } }, ann.token);
  });

  after(async () => {
    for (const s of sockets) s.close();
    await browser?.close().catch(() => undefined);
    await server?.stop();
  });

  async function signedIn(who: Account, path: string): Promise<Page> {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await ctx.newPage();
    page.setDefaultTimeout(T);
    await page.goto(server.url + '/');
    await page.getByTestId('login-form').waitFor();
    await page.locator('input[name=username]').fill(who.username);
    await page.locator('input[name=password]').fill(PASSWORD);
    await page.locator('[data-testid=login-form] button[type=submit]').click();
    await page.getByTestId('conversation-list').waitFor();
    await page.goto(server.url + path);
    await page.getByTestId('chat').waitFor();
    return page;
  }

  it('1:1: "Read" after the peer reads; "Bob is typing…"; online dot then "last seen"', async () => {
    assert.equal((await api(server.url, 'PUT', '/api/me/privacy', { presence: 'everyone' }, bob.token)).status, 200);
    const { client: bobWs } = await RawClient.connect(server.wsUrl, bob.token);
    sockets.push(bobWs);
    const page = await signedIn(ann, `/c/${encodeURIComponent(dm)}`);
    await page.locator('[data-testid=presence][data-online=true]').waitFor();
    await bobWs.request({ type: 'read', conv: dm, seq: 1 });
    await page.getByTestId('read-receipt').waitFor();
    await bobWs.request({ type: 'typing', conv: dm });
    assert.match((await page.getByTestId('typing').textContent()) ?? '', /Bob is typing/);
    bobWs.close();
    await page.locator('[data-testid=presence][data-online=false]').waitFor();
    assert.match((await page.getByTestId('presence').textContent()) ?? '', /last seen/);
    await page.context().close();
  });

  it('group: "2 unread" opens the lists; falls as members read; the notification level is saved', async () => {
    const page = await signedIn(ann, `/c/${encodeURIComponent(group)}`);
    const badge = page.getByTestId('unread-count');
    await page.locator('[data-testid=unread-count][data-unread="2"]').waitFor();
    assert.equal((await badge.textContent())?.trim(), '2 unread');
    const { client: catWs } = await RawClient.connect(server.wsUrl, cat.token);
    sockets.push(catWs);
    await catWs.request({ type: 'read', conv: group, seq: 2 });
    await page.locator('[data-testid=unread-count][data-unread="1"]').waitFor();
    await badge.click();
    await page.getByTestId('receipt-lists').waitFor();
    assert.deepEqual(await page.getByTestId('read-list').locator('li').allTextContents(), ['Cat']);
    assert.deepEqual(await page.getByTestId('unread-list').locator('li').allTextContents(), ['Bob']);
    await page.getByTestId('group-info').click();
    const select = page.getByTestId('notify-level');
    await select.waitFor();
    assert.equal(await select.inputValue(), 'all');
    await select.selectOption('mentions');
    await page.waitForFunction(() => (document.querySelector('[data-testid=notify-level]') as HTMLSelectElement | null)?.value === 'mentions');
    const list = await api<{ settings: { conv: string; level: string }[] }>(server.url, 'GET', '/api/me/notify', undefined, ann.token);
    assert.deepEqual(list.body.settings.map((s) => [s.conv, s.level]), [[group, 'mentions']]);
    await page.context().close();
  });
});
