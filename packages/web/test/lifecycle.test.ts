/**
 * The message lifecycle in a real browser (playwright-core driving Debian's chromium) against
 * the real server process: Bob's web client shows reactions as chips (and toggles his own),
 * a recall by Ann as a notice, an edit with its "edited" mark, a reply with its quote, delete
 * for me, and forwards a selection merged into a chat-history card. Skips when
 * /usr/bin/chromium is missing unless MAGPIE_REQUIRE_SERVICES=1.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Browser, Page } from 'playwright-core';
import { api, startServer, type ServerProcess } from '../../server/test/harness.ts';
import { png, tusUpload } from '../../server/test/media-fixtures.ts';

const CHROMIUM = '/usr/bin/chromium';
const ROOT = new URL('../../../', import.meta.url).pathname;
const required = process.env.MAGPIE_REQUIRE_SERVICES === '1';
const haveChromium = existsSync(CHROMIUM);
const skip = !haveChromium && !required ? `chromium not found at ${CHROMIUM}` : false;
const PASSWORD = 'correct horse battery';
const T = 15_000;

describe('web client: message lifecycle in chromium', { skip, timeout: 180_000 }, () => {
  let server: ServerProcess;
  let browser: Browser;
  let page: Page;
  const errors: string[] = [];

  before(async () => {
    const build = spawnSync(process.execPath, [join(ROOT, 'scripts/build-web.mjs'), '--if-stale'], { stdio: 'inherit' });
    assert.equal(build.status, 0, 'web client build');
    server = await startServer({ env: { MAGPIE_IP_RATE: '2000', MAGPIE_IP_BURST: '5000', MAGPIE_USER_RATE: '500', MAGPIE_USER_BURST: '2000' } });
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'] });
  });

  after(async () => {
    await browser?.close().catch(() => undefined);
    await server?.stop();
  });

  it('reactions, recall, edit, reply, delete for me and merged forward', async () => {
    const suffix = randomBytes(3).toString('hex');
    const reg = async (username: string) => {
      await api(server.url, 'POST', '/api/register', { username, password: PASSWORD });
      return (await api(server.url, 'POST', '/api/login', { username, password: PASSWORD, deviceId: 'script', platform: 'desktop' })).body as { token: string; userId: string };
    };
    const ann = await reg(`ann_${suffix}`);
    const bob = await reg(`bob_${suffix}`);
    const send = async (text: string) => (await api(server.url, 'POST', '/api/messages', { clientMsgId: `w${text}`, to: bob.userId, kind: 'text', body: { text } }, ann.token)).body.message;
    const m1 = await send('react here');
    await send('recall me');
    await send('edit me');
    const conv = m1.conv as string;
    const group = (await api(server.url, 'POST', '/api/groups', { name: `Fwd ${suffix}`, members: [bob.userId] }, ann.token)).body.group.conv as string;

    const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    page = await ctx.newPage();
    page.setDefaultTimeout(T);
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('dialog', (d) => void d.accept());
    await page.goto(server.url + '/');
    await page.getByTestId('login-form').waitFor();
    await page.locator('input[name=username]').fill(`bob_${suffix}`);
    await page.locator('input[name=password]').fill(PASSWORD);
    await page.locator('input[name=password]').press('Enter');
    await page.getByTestId('conversation-list').waitFor();
    await page.goto(`${server.url}/c/${encodeURIComponent(conv)}`);
    const msg = (seq: number) => page.locator(`[data-testid=message][data-seq="${seq}"]`);
    await msg(3).waitFor();

    // React from the hover actions; Ann's reaction arrives live; clicking the chip toggles Bob's off.
    await msg(1).hover();
    await msg(1).locator('[data-testid=react][data-emoji="👍"]').click();
    await msg(1).locator('[data-testid=reaction][data-emoji="👍"][aria-pressed=true]').waitFor();
    await api(server.url, 'PUT', `/api/conversations/${encodeURIComponent(conv)}/messages/1/reactions/${encodeURIComponent('👍')}`, undefined, ann.token);
    await page.waitForFunction(() => document.querySelector('[data-testid=message][data-seq="1"] [data-testid=reaction]')?.textContent?.includes('2'));
    await msg(1).locator('[data-testid=reaction][data-emoji="👍"]').click();
    await page.waitForFunction(() => {
      const chip = document.querySelector('[data-testid=message][data-seq="1"] [data-testid=reaction]');
      return chip?.getAttribute('aria-pressed') === 'false' && chip.textContent?.includes('1');
    });

    // Ann recalls and edits: the bubble becomes a notice; the edit shows with its mark.
    assert.equal((await api(server.url, 'POST', `/api/conversations/${encodeURIComponent(conv)}/messages/2/recall`, undefined, ann.token)).status, 200);
    await msg(2).locator('[data-testid=recalled]').waitFor();
    assert.equal(await msg(2).locator('.msg-text').textContent(), 'Message recalled');
    assert.equal((await api(server.url, 'POST', `/api/conversations/${encodeURIComponent(conv)}/messages/3/edit`, { text: 'edited text' }, ann.token)).status, 200);
    await msg(3).locator('[data-testid=edited]').waitFor();
    await msg(3).getByText('edited text').waitFor();
    // Event messages show no bubble of their own.
    assert.equal(await page.locator('[data-testid=message][data-kind=recall], [data-testid=message][data-kind=edit], [data-testid=message][data-kind=reaction]').count(), 0);

    // Reply to the edited message: the quote shows its current text.
    await msg(3).hover();
    await msg(3).getByTestId('action-reply').click();
    await page.getByTestId('reply-bar').waitFor();
    await page.getByTestId('composer').fill('my answer');
    await page.getByTestId('composer').press('Enter');
    const answer = page.getByTestId('message').filter({ hasText: 'my answer' });
    await answer.getByTestId('quote').waitFor();
    assert.match((await answer.getByTestId('quote').textContent()) ?? '', /edited text/);

    // Bob edits his own answer from the actions (a prompt).
    // Under load the answer may still be sending (no seq yet): wait for the server's answer.
    let answerSeq = 0;
    for (let i = 0; i < 150 && !answerSeq; i++) {
      answerSeq = Number(await answer.getAttribute('data-seq'));
      if (!answerSeq) await page.waitForTimeout(100);
    }
    assert.ok(answerSeq > 0, 'the answer was stored');
    await answer.hover();
    page.removeAllListeners('dialog');
    page.once('dialog', (d) => void d.accept('my better answer'));
    await answer.getByTestId('action-edit').click();
    await msg(answerSeq).getByText('my better answer').waitFor();

    // Selection mode: forward two messages merged into the group.
    await msg(1).hover();
    await msg(1).getByTestId('action-forward').click();
    // Known issue: in headless chromium this pointer click does not always reach the button
    // (the hover-only action bar); the click event itself starts selection mode.
    if (!(await page.getByTestId('selection-bar').isVisible())) await msg(1).getByTestId('action-forward').dispatchEvent('click');
    await page.getByTestId('selection-bar').waitFor();
    await msg(3).locator('[data-testid=select-message]').check();
    await page.getByTestId('forward-merged').click();
    await page.locator(`[data-testid=forward-target][data-conv="${group}"]`).click();
    await page.getByTestId('selection-bar').waitFor({ state: 'detached' });
    const gh = await api(server.url, 'GET', `/api/conversations/${encodeURIComponent(group)}/messages`, undefined, ann.token);
    const bundle = gh.body.messages.find((m: { kind: string }) => m.kind === 'bundle');
    assert.ok(bundle, 'the group got a chat-history card');
    assert.deepEqual(bundle.body.items.map((i: { body: { text: string } }) => i.body.text), ['react here', 'edited text']);

    // Delete for me: gone from Bob's view, still in Ann's history.
    await msg(1).hover();
    await msg(1).getByTestId('action-delete').click();
    await msg(1).waitFor({ state: 'detached' });
    const annView = await api(server.url, 'GET', `/api/conversations/${encodeURIComponent(conv)}/messages?after=0&limit=1`, undefined, ann.token);
    assert.equal(annView.body.messages[0].seq, 1);
    assert.deepEqual(errors, []);
    await ctx.close();
  });

  it('a merged-forward card opens as a screen (nested cards too, media loads); the list preview follows an edit and a recall without counting them', async () => {
    const suffix = randomBytes(3).toString('hex');
    const reg = async (username: string) => {
      await api(server.url, 'POST', '/api/register', { username, password: PASSWORD });
      return (await api(server.url, 'POST', '/api/login', { username, password: PASSWORD, deviceId: 'script', platform: 'desktop' })).body as { token: string; userId: string };
    };
    const ann = await reg(`ann_${suffix}`);
    const bob = await reg(`bob_${suffix}`);
    const cid = (x: string) => `${x}-${suffix}`;
    const { id: upload, res } = await tusUpload(server.url, ann.token, await png(60, 40), { kind: 'image' });
    assert.equal(res.status, 204);
    const text = (await api(server.url, 'POST', '/api/messages', { clientMsgId: cid('t'), to: bob.userId, kind: 'text', body: { text: 'look at this' } }, ann.token)).body.message;
    const img = await api(server.url, 'POST', '/api/messages', { clientMsgId: cid('i'), to: bob.userId, kind: 'image', body: { fallback: '[Image]', upload, width: 1, height: 1 } }, ann.token);
    assert.equal(img.status, 200, JSON.stringify(img.body));
    const direct = text.conv as string;
    // Ann bundles both into a group with Cid, then forwards that card (nested) to Bob.
    const cid2 = await reg(`cid_${suffix}`);
    const group = (await api(server.url, 'POST', '/api/groups', { name: `Hist ${suffix}`, members: [cid2.userId] }, ann.token)).body.group.conv as string;
    const first = await api(server.url, 'POST', '/api/forward', { from: direct, seqs: [text.seq, img.body.message.seq], conv: group, merged: true, title: 'Holiday', clientMsgId: cid('f1') }, ann.token);
    assert.equal(first.status, 200, JSON.stringify(first.body));
    const outer = await api(server.url, 'POST', '/api/forward', { from: group, seqs: [first.body.messages[0].seq], to: bob.userId, merged: true, title: 'From the group', clientMsgId: cid('f2') }, ann.token);
    assert.equal(outer.status, 200, JSON.stringify(outer.body));
    const cardSeq = outer.body.messages[0].seq as number;

    const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    page = await ctx.newPage();
    page.setDefaultTimeout(T);
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(server.url + '/');
    await page.getByTestId('login-form').waitFor();
    await page.locator('input[name=username]').fill(`bob_${suffix}`);
    await page.locator('input[name=password]').fill(PASSWORD);
    await page.locator('input[name=password]').press('Enter');
    await page.getByTestId('conversation-list').waitFor();
    const row = page.locator(`[data-testid=conversation-row][data-conv="${direct}"]`);
    await row.waitFor();
    const badge = async () => Number((await row.getByTestId('unread-badge').textContent()) ?? 0);
    await page.waitForFunction((c) => document.querySelector(`[data-testid=conversation-row][data-conv="${c}"] [data-testid=unread-badge]`)?.textContent === '3', direct);

    // The list: an edit and a recall of the last message show in its preview and count nothing.
    const last = (await api(server.url, 'POST', '/api/messages', { clientMsgId: cid('l'), to: bob.userId, kind: 'text', body: { text: 'final words' } }, ann.token)).body.message;
    await row.locator('.row-preview', { hasText: 'final words' }).waitFor();
    assert.equal(await badge(), 4);
    assert.equal((await api(server.url, 'POST', `/api/conversations/${encodeURIComponent(direct)}/messages/${last.seq}/edit`, { text: 'final words, edited' }, ann.token)).status, 200);
    await row.locator('.row-preview', { hasText: 'final words, edited' }).waitFor();
    await api(server.url, 'PUT', `/api/conversations/${encodeURIComponent(direct)}/messages/${last.seq}/reactions/${encodeURIComponent('👍')}`, undefined, ann.token);
    assert.equal((await api(server.url, 'POST', `/api/conversations/${encodeURIComponent(direct)}/messages/${last.seq}/recall`, undefined, ann.token)).status, 200);
    await row.locator('.row-preview', { hasText: 'Message recalled' }).waitFor();
    await page.waitForTimeout(300);
    assert.equal(await badge(), 4, 'the edit, reaction and recall events are not unread messages');

    // The card opens as a screen; the nested card opens one level deeper with sender, time and the image.
    await row.locator('.row-link').click();
    const card = page.locator(`[data-testid=message][data-seq="${cardSeq}"] [data-testid=bundle]`);
    await card.click();
    const screen = page.locator('[data-testid=bundle-screen][data-depth="0"]');
    await screen.waitFor();
    assert.match((await screen.locator('h1').textContent()) ?? '', /From the group/);
    assert.equal(await screen.getByTestId('bundle-item').count(), 1);
    await screen.getByTestId('bundle-nested').click();
    const nested = page.locator('[data-testid=bundle-screen][data-depth="1"]');
    await nested.waitFor();
    assert.match((await nested.locator('h1').textContent()) ?? '', /Holiday/);
    const items = nested.getByTestId('bundle-item');
    assert.equal(await items.count(), 2);
    assert.equal(await items.nth(0).getByTestId('bundle-sender').textContent(), `ann_${suffix}`);
    assert.match((await items.nth(0).textContent()) ?? '', /look at this/);
    assert.ok(((await items.nth(0).getByTestId('bundle-time').getAttribute('datetime')) ?? '').startsWith(new Date(text.time).toISOString().slice(0, 10)));
    // The image loads through the card's re-authorization (Bob never saw the group it came through).
    await nested.locator('[data-testid=bundle-item][data-kind=image] [data-testid=image-thumb][data-loaded=yes]').waitFor();
    assert.match(page.url(), new RegExp(`/bundle/${cardSeq}\\?in=0$`));
    // Back: the outer card, then the chat.
    await page.goBack();
    await screen.waitFor();
    assert.deepEqual(errors, []);
    await ctx.close();
  });
});
