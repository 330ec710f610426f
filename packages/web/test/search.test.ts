/**
 * Message search in the web client (issue 18) in chromium against the real server: the
 * list's search finds messages this device never loaded (server search, CJK), a hit opens the
 * chat at that message (history around its seq, highlighted), in-chat search jumps within a
 * conversation, and a subject conversation shows its subject in the list and the chat header.
 * Skips when /usr/bin/chromium is missing unless MAGPIE_REQUIRE_SERVICES=1.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Browser, Page } from 'playwright-core';
import { api, login, startServer, type Account, type ServerProcess } from '../../server/test/harness.ts';

const CHROMIUM = '/usr/bin/chromium';
const ROOT = new URL('../../../', import.meta.url).pathname;
const required = process.env.MAGPIE_REQUIRE_SERVICES === '1';
const haveChromium = existsSync(CHROMIUM);
const skip = !haveChromium && !required ? `chromium not found at ${CHROMIUM}; set MAGPIE_REQUIRE_SERVICES=1 to fail instead` : false;
const PASSWORD = 'correct horse';
const ADMIN = 'web-search-admin-token-0123456789';

describe('web client: message search, jump to a message, subject conversations', { skip, timeout: 300_000 }, () => {
  let server: ServerProcess;
  let browser: Browser;
  const suffix = randomBytes(3).toString('hex');
  let ann: Account;
  let bob: Account;
  let direct = '';
  let subjectConv = '';

  before(async () => {
    if (!haveChromium) throw new Error(`MAGPIE_REQUIRE_SERVICES=1 but ${CHROMIUM} is missing`);
    const build = spawnSync(process.execPath, [join(ROOT, 'scripts/build-web.mjs'), '--if-stale'], { stdio: 'inherit' });
    assert.equal(build.status, 0, 'web client build');
    server = await startServer({ env: { MAGPIE_ADMIN_TOKEN: ADMIN, MAGPIE_IP_RATE: '5000', MAGPIE_IP_BURST: '5000', MAGPIE_USER_RATE: '2000', MAGPIE_USER_BURST: '5000' } });
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'] });
    const reg = async (name: string, nickname: string) => {
      const username = `${name}_${suffix}`;
      assert.equal((await api(server.url, 'POST', '/api/register', { username, password: PASSWORD, nickname })).status, 201);
      return login(server.url, username, 'script', 'desktop');
    };
    ann = await reg('ann', 'Ann');
    bob = await reg('bob', 'Bob');
    // An old message far back in the history (the browser loads only the newest page), then 120 newer ones.
    const send = async (text: string, i: number) => {
      const r = await api(server.url, 'POST', '/api/messages', { clientMsgId: `s${i}`, to: ann.userId, kind: 'text', body: { text } }, bob.token);
      assert.equal(r.status, 200, JSON.stringify(r.body));
      return r.body.message as { conv: string; seq: number };
    };
    direct = (await send('周末去爬山，带上登山杖', 0)).conv;
    for (let i = 1; i <= 120; i++) await send(`chatter ${i}`, i);
    const attach = await fetch(`${server.url}/api/admin/subjects`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${ADMIN}` },
      body: JSON.stringify({ users: [ann.userId, bob.userId], type: 'item', id: 'cam-1', title: 'Canon AE-1 相机' }),
    });
    assert.equal(attach.status, 200);
    subjectConv = ((await attach.json()) as { subject: { conv: string } }).subject.conv;
    assert.equal((await api(server.url, 'POST', '/api/messages', { clientMsgId: 'subj1', conv: subjectConv, kind: 'text', body: { text: 'Is the camera still available?' } }, bob.token)).status, 200);
  });
  after(async () => {
    await browser?.close().catch(() => undefined);
    await server?.stop();
  });

  async function signedIn(): Promise<Page> {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await ctx.newPage();
    page.setDefaultTimeout(20_000);
    await page.goto(server.url + '/');
    await page.getByTestId('login-form').waitFor();
    await page.locator('input[name=username]').fill(ann.username);
    await page.locator('input[name=password]').fill(PASSWORD);
    await page.locator('[data-testid=login-form] button[type=submit]').click();
    await page.getByTestId('conversation-list').waitFor();
    return page;
  }

  it('the list search finds an old message on the server; the hit opens the chat at it', async () => {
    const page = await signedIn();
    await page.getByTestId('chat-search').fill('爬山');
    const hit = page.locator(`[data-testid=message-hit][data-conv="${direct}"][data-seq="1"]`);
    await hit.waitFor();
    await hit.locator('a').click();
    const target = page.locator('[data-testid=message][data-seq="1"][data-highlight]');
    await target.waitFor();
    assert.match(await target.innerText(), /周末去爬山/);
    assert.ok(await target.isVisible());
    assert.match(page.url(), /\?seq=1$/);
    // The window is the history around it, not the newest page.
    assert.equal(await page.locator('[data-testid=message][data-seq="120"]').count(), 0);
    await page.context().close();
  });

  it('in-chat search jumps within the conversation', async () => {
    const page = await signedIn();
    await page.goto(`${server.url}/c/${encodeURIComponent(direct)}`);
    await page.locator('[data-testid=message][data-seq="121"]').waitFor();
    await page.getByTestId('in-chat-search-toggle').click();
    await page.getByTestId('in-chat-search-input').fill('chatter 11');
    // Both terms must occur: "chatter 11" and "chatter 110".."chatter 119", 11 hits.
    await page.locator('[data-testid=in-chat-hit]').nth(10).waitFor();
    assert.equal(await page.locator('[data-testid=in-chat-hit]').count(), 11);
    await page.locator('[data-testid=in-chat-hit][data-seq="12"]').click();
    const target = page.locator('[data-testid=message][data-seq="12"][data-highlight]');
    await target.waitFor();
    assert.match(await target.innerText(), /chatter 11\b/);
    assert.ok(await target.isVisible());
    await page.context().close();
  });

  it('a subject conversation shows its subject in the list and the chat header', async () => {
    const page = await signedIn();
    const row = page.locator(`[data-testid=conversation-row][data-conv="${subjectConv}"]`);
    await row.locator('[data-testid=row-subject]').waitFor();
    assert.equal(await row.locator('[data-testid=row-subject]').innerText(), 'Canon AE-1 相机');
    await row.locator('a').first().click();
    await page.getByTestId('chat-subject').waitFor();
    assert.match(await page.getByTestId('chat-subject').innerText(), /Canon AE-1 相机/);
    await page.getByTestId('system-notice').filter({ hasText: 'Canon AE-1 相机' }).waitFor();
    await page.getByTestId('message').filter({ hasText: 'Is the camera still available?' }).waitFor();
    await page.context().close();
  });
});
