/**
 * The web client in a real browser (playwright-core driving Debian's chromium) against the
 * real server started as a child process and serving the built client.
 *
 * Three users in three browser contexts (ann and cat at desktop width, bob at phone width):
 * register, become friends and chat (sending → sent → delivered), a group of three with
 * system notices, mentions, "Delivered to N", unread counts, admin actions (role, mute → failed send → retry,
 * announcement, kick), a reload that keeps the state, and a context taken offline that
 * catches up when it returns. Screenshots of the main screens at both widths go to
 * test-artifacts/web/ (not committed). Skips when /usr/bin/chromium is missing unless
 * MAGPIE_REQUIRE_SERVICES=1.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { api, startServer, type ServerProcess } from '../../server/test/harness.ts';

const CHROMIUM = '/usr/bin/chromium';
const ROOT = new URL('../../../', import.meta.url).pathname;
const ARTIFACTS = join(ROOT, 'test-artifacts/web');
const required = process.env.MAGPIE_REQUIRE_SERVICES === '1';
const haveChromium = existsSync(CHROMIUM);
const skip = !haveChromium && !required ? `chromium not found at ${CHROMIUM} (apt-get install -y chromium); set MAGPIE_REQUIRE_SERVICES=1 to fail instead` : false;
if (skip) console.log(`# web e2e skipped: ${skip}`);

const PHONE = { width: 390, height: 844 };
const DESKTOP = { width: 1280, height: 800 };
const PASSWORD = 'correct horse battery';
const T = 15_000;

/** Browser messages that are the network's doing while a context is offline, not the app's. */
const NETWORK_NOISE = /net::ERR_INTERNET_DISCONNECTED|net::ERR_NETWORK_CHANGED|WebSocket connection to .* failed|Failed to load resource/;

interface User {
  name: string;
  username: string;
  ctx: BrowserContext;
  page: Page;
  errors: string[];
  phone: boolean;
}

describe('web client in chromium', { skip, timeout: 240_000 }, () => {
  let server: ServerProcess;
  let browser: Browser;
  const suffix = randomBytes(3).toString('hex');
  let ann: User;
  let bob: User;
  let cat: User;
  let group = '';

  before(async () => {
    if (!haveChromium) throw new Error(`MAGPIE_REQUIRE_SERVICES=1 but ${CHROMIUM} is missing`);
    const build = spawnSync(process.execPath, [join(ROOT, 'scripts/build-web.mjs'), '--if-stale'], { stdio: 'inherit' });
    assert.equal(build.status, 0, 'web client build');
    assert.ok(existsSync(join(ROOT, 'packages/web/dist/index.html')), 'packages/web/dist was built');
    mkdirSync(ARTIFACTS, { recursive: true });
    server = await startServer({ env: { MAGPIE_IP_RATE: '2000', MAGPIE_IP_BURST: '5000', MAGPIE_USER_RATE: '500', MAGPIE_USER_BURST: '2000' } });
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-quic', '--no-first-run'],
    });
    ann = await open('Ann', `ann_${suffix}`, false);
    bob = await open('Bob', `bob_${suffix}`, true);
    cat = await open('Cat', `cat_${suffix}`, false);
  });

  after(async () => {
    await browser?.close().catch(() => undefined);
    await server?.stop();
  });

  async function open(name: string, username: string, phone: boolean): Promise<User> {
    const ctx = await browser.newContext({ viewport: phone ? PHONE : DESKTOP, ...(phone ? { isMobile: true, hasTouch: true, deviceScaleFactor: 2 } : {}) });
    const page = await ctx.newPage();
    page.setDefaultTimeout(T);
    const u: User = { name, username, ctx, page, errors: [], phone };
    page.on('console', (m) => {
      if ((m.type() === 'error' || m.type() === 'warning') && !NETWORK_NOISE.test(m.text())) u.errors.push(`${m.type()}: ${m.text()}`);
    });
    page.on('pageerror', (e) => u.errors.push(`pageerror: ${e.message}`));
    await page.goto(server.url + '/');
    return u;
  }

  async function shot(u: User, name: string): Promise<void> {
    await u.page.screenshot({ path: join(ARTIFACTS, `${name}-${u.phone ? 'phone' : 'desktop'}.png`) });
  }

  const row = (u: User, title: string) => u.page.locator(`[data-testid=conversation-row][data-title="${title}"]`);

  async function goChats(u: User): Promise<void> {
    for (let i = 0; i < 3 && !(await u.page.getByTestId('tab-chats').isVisible()); i++) await u.page.locator('.pane-header .back').click();
    await u.page.getByTestId('tab-chats').click();
    await u.page.getByTestId('conversation-list').waitFor();
  }

  async function openChat(u: User, title: string): Promise<void> {
    if (u.phone && !(await u.page.getByTestId('conversation-list').isVisible())) await u.page.locator('.pane-header .back').click();
    await row(u, title).locator('a.row-link').click();
    await u.page.getByTestId('chat').waitFor();
    await u.page.getByTestId('chat').locator('h2', { hasText: title }).waitFor();
  }

  async function send(u: User, text: string): Promise<void> {
    await u.page.getByTestId('composer').fill(text);
    await u.page.getByTestId('composer').press('Enter');
    await message(u, text).waitFor();
  }

  const message = (u: User, text: string) => u.page.getByTestId('message').filter({ hasText: text });
  /** A message whose text is exactly `text`. */
  const exactly = (u: User, text: string) => u.page.getByTestId('message').filter({ has: u.page.locator('.msg-text').getByText(text, { exact: true }) });

  async function badge(u: User, title: string): Promise<number> {
    // allTextContents does not wait: a badge removed between a count and a read (cleared to 0)
    // must read as 0, not block until the action timeout.
    const texts = await row(u, title).getByTestId('unread-badge').allTextContents();
    return texts.length ? Number(texts[0]) : 0;
  }

  async function waitBadge(u: User, title: string, want: number): Promise<void> {
    const deadline = Date.now() + T;
    let got = -1;
    while (Date.now() < deadline) {
      got = await badge(u, title).catch(() => -1);
      if (got === want) return;
      await u.page.waitForTimeout(100);
    }
    assert.equal(got, want, `${u.name}: unread badge of “${title}”`);
  }

  async function searchAndAdd(u: User, who: string): Promise<void> {
    await u.page.getByTestId('tab-contacts').click();
    await u.page.getByTestId('add-friends').click();
    await u.page.getByTestId('search-input').fill(who);
    const r = u.page.locator(`[data-testid=search-result][data-user="${who}"]`);
    await r.getByTestId('add-friend').click();
    await r.getByTestId('request-pending').waitFor();
  }

  async function acceptFrom(u: User, who: string): Promise<void> {
    await u.page.getByTestId('tab-contacts').click();
    await u.page.locator(`[data-testid=incoming-request][data-user="${who}"]`).getByTestId('accept').click();
    await u.page.locator(`[data-testid=friend][data-user="${who}"]`).waitFor();
  }

  it('registers three users (and signs one in by keyboard)', async () => {
    for (const u of [ann, bob, cat]) {
      await u.page.waitForURL(/\/login$|\/$/);
      await u.page.getByTestId('login-form').waitFor();
    }
    await shot(ann, 'login');
    await shot(bob, 'login');
    for (const u of [ann, bob, cat]) {
      await u.page.getByRole('link', { name: 'Create an account' }).click();
      await u.page.getByTestId('register-form').waitFor();
      await u.page.locator('input[name=username]').fill(u.username);
      await u.page.locator('input[name=nickname]').fill(u.name);
      await u.page.locator('input[name=password]').fill(PASSWORD);
      if (u === bob) await shot(bob, 'register');
      await u.page.getByRole('button', { name: 'Create account' }).click();
      await u.page.getByTestId('conversation-list').waitFor();
      await u.page.locator('[data-testid=connection][data-status=online]').waitFor({ state: 'attached' });
    }
    // Log out and back in with the keyboard only.
    await cat.page.getByTestId('tab-settings').click();
    await cat.page.getByTestId('logout').click();
    await cat.page.getByTestId('login-form').waitFor();
    await cat.page.locator('input[name=username]').focus();
    await cat.page.keyboard.type(cat.username);
    await cat.page.keyboard.press('Tab');
    await cat.page.keyboard.type(PASSWORD);
    await cat.page.keyboard.press('Enter');
    await cat.page.getByTestId('conversation-list').waitFor();
  });

  it('two users become friends through search and a request', async () => {
    await searchAndAdd(ann, bob.username);
    await shot(ann, 'search');
    // Bob sees the request live (relation frame) on the contacts tab.
    await bob.page.getByTestId('tab-contacts').locator('.badge').waitFor();
    await bob.page.getByTestId('tab-contacts').click();
    await bob.page.locator(`[data-testid=incoming-request][data-user="${ann.username}"]`).waitFor();
    await shot(bob, 'contacts');
    await acceptFrom(bob, ann.username);
    await ann.page.getByTestId('tab-contacts').click();
    await ann.page.locator(`[data-testid=friend][data-user="${bob.username}"]`).waitFor();
    await shot(ann, 'contacts');
    // Cat befriends both.
    await searchAndAdd(cat, ann.username);
    await searchAndAdd(cat, bob.username);
    await acceptFrom(ann, cat.username);
    await acceptFrom(bob, cat.username);
  });

  it('chat: sending → sent → delivered, unread badge, reply', async () => {
    await ann.page.locator(`[data-testid=friend][data-user="${bob.username}"] a`).click();
    await ann.page.getByTestId('chat').waitFor();
    await send(ann, 'Hello Bob');
    // Bob is online: his device stores and ACKs the message, Ann sees "Delivered".
    await message(ann, 'Hello Bob').locator('[data-testid=msg-state][data-state=delivered]').waitFor();
    await goChats(bob);
    await waitBadge(bob, 'Ann', 1);
    await send(ann, 'Are you there?');
    await waitBadge(bob, 'Ann', 2);
    assert.match((await row(bob, 'Ann').locator('.row-preview').textContent()) ?? '', /Are you there\?/);
    await shot(bob, 'chats');
    await openChat(bob, 'Ann');
    await message(bob, 'Hello Bob').waitFor();
    await bob.page.getByTestId('day-separator').first().waitFor();
    await send(bob, 'Hi Ann!');
    await message(bob, 'Hi Ann!').locator('[data-testid=msg-state][data-state=delivered]').waitFor();
    await message(ann, 'Hi Ann!').waitFor();
    // Read on open: Bob's badge is gone once he is back on the list.
    await bob.page.locator('.pane-header .back').click();
    await waitBadge(bob, 'Ann', 0);
    await shot(ann, 'chat');
    await shot(bob, 'chat-list-after');
  });

  it('a third user joins a group: notices, unread counts, mentions', async () => {
    await ann.page.getByTestId('tab-chats').click();
    await ann.page.getByTestId('new-group').click();
    await ann.page.getByTestId('group-name').fill('Trio');
    await ann.page.locator(`[data-testid=pick-member][data-user="${bob.username}"]`).check();
    await ann.page.locator(`[data-testid=pick-member][data-user="${cat.username}"]`).check();
    await shot(ann, 'new-group');
    await ann.page.getByTestId('create-group').click();
    await ann.page.getByTestId('chat').locator('h2', { hasText: 'Trio' }).waitFor();
    group = (await ann.page.getByTestId('chat').getAttribute('data-conv')) ?? '';
    assert.match(group, /^g:/);
    await ann.page.getByTestId('system-notice').filter({ hasText: 'created the group “Trio”' }).waitFor();

    // Cat (desktop) and Bob (phone, on the list) see the group arrive.
    await goChats(cat);
    await row(cat, 'Trio').waitFor();
    await row(bob, 'Trio').waitFor();
    const before = await badge(bob, 'Trio');
    await openChat(cat, 'Trio');
    await cat.page.getByTestId('system-notice').filter({ hasText: 'created the group' }).waitFor();
    await send(cat, 'hi all');
    await waitBadge(bob, 'Trio', before + 1);
    // Ann has the group open: no unread for her; a mention of Bob marks his row.
    await message(ann, 'hi all').waitFor();
    // Mention by picking from the member suggestions with the keyboard.
    await ann.page.getByTestId('composer').fill('@bo');
    await ann.page.getByTestId('mention-suggestions').getByRole('option', { name: new RegExp(bob.username) }).waitFor();
    await ann.page.getByTestId('composer').press('Tab');
    // The display name is inserted; the mention carries Bob's id.
    assert.equal(await ann.page.getByTestId('composer').inputValue(), '@Bob ');
    await ann.page.getByTestId('composer').pressSequentially('look at this');
    await ann.page.getByTestId('composer').press('Enter');
    await message(ann, 'look at this').waitFor();
    // Both members' browsers stored Ann's group message: it shows how many.
    const annState = message(ann, 'look at this').getByTestId('msg-state');
    await message(ann, 'look at this').locator('[data-testid=msg-state][data-state=delivered][data-delivered-count="2"]').waitFor();
    assert.match((await annState.textContent()) ?? '', /Delivered to 2/);
    await message(cat, 'hi all').locator('[data-testid=msg-state][data-delivered-count="2"]').waitFor();
    await waitBadge(bob, 'Trio', before + 2);
    await row(bob, 'Trio').getByTestId('mention-marker').waitFor();
    await shot(bob, 'chats-group');
    await openChat(bob, 'Trio');
    await message(bob, 'look at this').waitFor();
    assert.ok(await message(bob, 'look at this').evaluate((el) => el.classList.contains('mentions-me')), 'the mention is highlighted');
    await bob.page.locator('.pane-header .back').click();
    await waitBadge(bob, 'Trio', 0);
    assert.equal(await row(bob, 'Trio').getByTestId('mention-marker').count(), 0);
  });

  it('pin and mute from the list, by keyboard', async () => {
    await row(ann, 'Bob').getByTestId('row-menu').focus();
    await ann.page.keyboard.press('Enter');
    await ann.page.getByRole('menuitem', { name: 'Pin to top' }).press('Enter');
    await row(ann, 'Bob').getByTestId('pinned').waitFor();
    assert.equal(await ann.page.getByTestId('conversation-row').first().getAttribute('data-title'), 'Bob', 'the pinned chat is first');
    await row(ann, 'Trio').getByTestId('row-menu').click();
    await ann.page.getByRole('menuitem', { name: 'Mute notifications' }).click();
    await row(ann, 'Trio').getByTestId('muted').waitFor();
    // Another message in the muted group still counts, with a quiet badge, and not in the tab total.
    await openChat(ann, 'Bob');
    await send(cat, 'quiet please');
    await waitBadge(ann, 'Trio', 1);
    assert.ok(await row(ann, 'Trio').getByTestId('unread-badge').evaluate((el) => el.classList.contains('quiet')));
    assert.equal(await ann.page.getByTestId('total-unread').count(), 0);
    await shot(ann, 'chats');
  });

  it('admin actions: role, announcement (banner and notice), mute disables the composer with the reason', async () => {
    await openChat(ann, 'Trio');
    await ann.page.getByTestId('group-info').click();
    await ann.page.getByTestId('group-info-screen').waitFor();
    await ann.page.locator(`[data-testid=member][data-user="${bob.username}"]`).getByTestId('toggle-admin').click();
    await ann.page.locator(`[data-testid=member][data-user="${bob.username}"][data-role=admin]`).waitFor();
    await ann.page.getByTestId('edit-announcement').click();
    await ann.page.getByTestId('announcement-input').fill('Be nice. Lunch on Friday.');
    await ann.page.getByTestId('save-announcement').click();
    await ann.page.getByTestId('announcement').filter({ hasText: 'Lunch on Friday' }).waitFor();
    await ann.page.locator(`[data-testid=member][data-user="${cat.username}"]`).getByTestId('toggle-mute').click();
    await ann.page.locator(`[data-testid=member][data-user="${cat.username}"]`).filter({ hasText: 'muted' }).waitFor();
    await shot(ann, 'group-info');

    // Cat sees the notices in order, the announcement pinned on top of the chat, and while
    // muted no composer: the reason in words instead (no UTC timestamp, nothing to retry).
    await cat.page.getByTestId('system-notice').filter({ hasText: 'made Bob an admin' }).waitFor();
    await cat.page.getByTestId('system-notice').filter({ hasText: 'updated the announcement: “Be nice. Lunch on Friday.”' }).waitFor();
    await cat.page.getByTestId('announcement-banner').filter({ hasText: 'Lunch on Friday' }).waitFor();
    await cat.page.getByTestId('system-notice').filter({ hasText: 'Ann muted you' }).waitFor();
    await cat.page.getByTestId('send-blocked').filter({ hasText: 'You are muted for 60 min.' }).waitFor();
    assert.equal(await cat.page.getByTestId('composer').count(), 0, 'no composer while muted');
    await shot(cat, 'chat-muted');
    await ann.page.locator(`[data-testid=member][data-user="${cat.username}"]`).getByTestId('toggle-mute').click();
    await cat.page.getByTestId('system-notice').filter({ hasText: 'Ann unmuted you' }).waitFor();
    await send(cat, 'can I talk?');
    await message(cat, 'can I talk?').locator('[data-testid=msg-state][data-state=sent], [data-testid=msg-state][data-state=delivered]').waitFor();
    // A message over the server's size limit is refused before it is sent, with the reason.
    await cat.page.getByTestId('composer').fill('x'.repeat(17 * 1024));
    await cat.page.getByTestId('too-long').filter({ hasText: 'too long' }).waitFor();
    assert.equal(await cat.page.getByTestId('send').isDisabled(), true);
    await cat.page.getByTestId('composer').fill('');
    // Only admins may send: Cat (a member) is told so; Bob (an admin) still can.
    const adminsOnly = ann.page.getByLabel('Only admins can send messages');
    await adminsOnly.click();
    await ann.page.getByLabel('Only admins can send messages').and(ann.page.locator(':checked')).waitFor();
    await cat.page.getByTestId('send-blocked').filter({ hasText: 'Only admins can send messages in this group.' }).waitFor();
    await adminsOnly.click();
    await ann.page.getByLabel('Only admins can send messages').and(ann.page.locator(':not(:checked)')).waitFor();
    await cat.page.getByTestId('composer').waitFor();

    // Bob (phone) views the group info as an admin.
    await goChats(bob);
    await openChat(bob, 'Trio');
    await bob.page.getByTestId('group-info').click();
    await bob.page.getByTestId('announcement').filter({ hasText: 'Lunch on Friday' }).waitFor();
    await shot(bob, 'group-info');
    await bob.page.locator('.pane-header .back').click();
    await bob.page.getByTestId('chat').waitFor();
    await shot(bob, 'chat');
  });

  it('links are links: safe schemes only, opened without an opener', async () => {
    await goChats(ann);
    await openChat(ann, 'Bob');
    await send(ann, 'see https://example.com/a?b=1 and javascript:alert(1)');
    const m = message(ann, 'see https://example.com');
    const link = m.locator('a[href="https://example.com/a?b=1"]');
    await link.waitFor();
    assert.equal(await link.getAttribute('target'), '_blank');
    assert.equal(await link.getAttribute('rel'), 'noopener noreferrer');
    assert.equal(await m.locator('a[href^="javascript"]').count(), 0, 'never a javascript: link');
    await message(bob, 'see https://example.com').locator('a[href="https://example.com/a?b=1"]').waitFor({ state: 'attached' }).catch(() => undefined);
  });

  it('drafts stay: across chat switches, in the list, after a reload', async () => {
    await openChat(ann, 'Bob');
    await ann.page.getByTestId('composer').fill('half a thought');
    await openChat(ann, 'Trio');
    assert.equal(await ann.page.getByTestId('composer').inputValue(), '');
    await row(ann, 'Bob').locator('.row-preview', { hasText: 'Draft: half a thought' }).waitFor();
    await openChat(ann, 'Bob');
    assert.equal(await ann.page.getByTestId('composer').inputValue(), 'half a thought', 'reopening the chat shows the draft');
    await ann.page.getByTestId('composer').fill('half a thought, longer');
    await ann.page.waitForTimeout(1_000); // saved while typing (debounced)
    await ann.page.reload();
    await ann.page.getByTestId('chat').locator('h2', { hasText: 'Bob' }).waitFor();
    await ann.page.locator('[data-testid=composer]').waitFor();
    assert.equal(await ann.page.getByTestId('composer').inputValue(), 'half a thought, longer', 'the draft survives a reload');
    await ann.page.getByTestId('composer').press('Enter');
    await message(ann, 'half a thought, longer').waitFor();
    await openChat(ann, 'Trio');
    await openChat(ann, 'Bob');
    assert.equal(await ann.page.getByTestId('composer').inputValue(), '', 'a sent draft is gone');
    await ann.page.waitForTimeout(300);
    assert.doesNotMatch((await row(ann, 'Bob').locator('.row-preview').textContent()) ?? '', /Draft:/);
  });

  it('two tabs of one browser show the same data (one leads, the other follows)', async () => {
    const tab2 = await ann.ctx.newPage();
    tab2.setDefaultTimeout(T);
    const errors: string[] = [];
    tab2.on('pageerror', (e) => errors.push(e.message));
    await tab2.goto(server.url + '/');
    await tab2.getByTestId('conversation-list').waitFor();
    await tab2.locator('[data-testid=connection][data-status=online]').waitFor({ state: 'attached' });
    const row2 = (title: string) => tab2.locator(`[data-testid=conversation-row][data-title="${title}"]`);
    await row2('Bob').waitFor();
    // A message sent in the second tab shows in the first (open chat and list preview), and back.
    await row2('Bob').locator('a.row-link').click();
    await tab2.getByTestId('composer').fill('from the second tab');
    await tab2.getByTestId('composer').press('Enter');
    await tab2.getByTestId('message').filter({ hasText: 'from the second tab' }).waitFor();
    await openChat(ann, 'Bob');
    await message(ann, 'from the second tab').waitFor();
    await send(ann, 'from the first tab');
    await tab2.getByTestId('message').filter({ hasText: 'from the first tab' }).waitFor();
    // Unread badges agree: Bob writes, the first tab reads it, the second tab's badge clears too.
    await openChat(ann, 'Trio');
    await tab2.locator('.pane-header .back').click().catch(() => undefined);
    await tab2.getByTestId('tab-chats').click();
    await goChats(bob);
    await openChat(bob, 'Ann');
    await send(bob, 'one for both tabs');
    await row(ann, 'Bob').getByTestId('unread-badge').waitFor();
    await row2('Bob').getByTestId('unread-badge').waitFor();
    await openChat(ann, 'Bob');
    await message(ann, 'one for both tabs').waitFor();
    await row2('Bob').getByTestId('unread-badge').waitFor({ state: 'detached' });
    // Pinning in one tab pins in the other.
    const pinned = await row(ann, 'Bob').getByTestId('pinned').count();
    await ann.page.getByTestId('pin').click();
    await row2('Bob').getByTestId('pinned').waitFor({ state: pinned ? 'detached' : 'attached' });
    await ann.page.getByTestId('pin').click();
    await row2('Bob').getByTestId('pinned').waitFor({ state: pinned ? 'attached' : 'detached' });
    assert.equal(await row2('Bob').locator('.row-preview').textContent(), await row(ann, 'Bob').locator('.row-preview').textContent());
    await tab2.close();
    assert.deepEqual(errors, []);
    await bob.page.locator('.pane-header .back').click();
  });

  it('on a phone, the back button counts new messages in other chats', async () => {
    await openChat(bob, 'Ann');
    const count = async () => Number((await bob.page.getByTestId('back-unread').allTextContents())[0] ?? 0);
    const before = await count();
    await openChat(cat, 'Trio');
    await send(cat, 'while Bob reads another chat');
    await bob.page.getByTestId('back-unread').waitFor();
    const deadline = Date.now() + T;
    while ((await count()) <= before && Date.now() < deadline) await bob.page.waitForTimeout(100);
    assert.equal(await count(), before + 1, 'the back button counts the new message');
    await shot(bob, 'chat-back-unread');
    await bob.page.locator('.pane-header .back').click();
    await openChat(bob, 'Trio');
    await message(bob, 'while Bob reads another chat').waitFor();
    await bob.page.locator('.pane-header .back').click();
  });

  it('search on Chats finds conversations by name and messages held on this device', async () => {
    await goChats(ann);
    await ann.page.getByTestId('chat-search').fill('tri');
    await ann.page.getByTestId('chat-search-results').locator('[data-testid=conversation-row][data-title="Trio"]').waitFor();
    await ann.page.getByTestId('chat-search').fill('look at');
    await ann.page.getByTestId('message-hit').filter({ hasText: 'look at this' }).waitFor();
    await shot(ann, 'chat-search');
    await ann.page.getByTestId('message-hit').filter({ hasText: 'look at this' }).locator('a').click();
    await ann.page.getByTestId('chat').locator('h2', { hasText: 'Trio' }).waitFor();
    await ann.page.getByTestId('chat-search').fill('');
    await ann.page.getByTestId('chat-search-results').waitFor({ state: 'detached' });
  });

  it('a reload keeps the state: the list shows from IndexedDB, history too', async () => {
    await goChats(bob);
    await bob.page.reload();
    // The rows come from the local store; they must be there without waiting for the server.
    await row(bob, 'Trio').waitFor({ timeout: 5_000 });
    await row(bob, 'Ann').waitFor({ timeout: 5_000 });
    await openChat(bob, 'Trio');
    await message(bob, 'look at this').waitFor();
    await bob.page.locator('[data-testid=connection][data-status=online]').waitFor({ state: 'attached' });
    await send(bob, 'back after a reload');
    await message(ann, 'back after a reload').waitFor({ state: 'attached' }).catch(() => undefined);
  });

  it('a context taken offline catches up when it returns', async () => {
    await goChats(bob);
    await bob.ctx.setOffline(true);
    await bob.page.locator('[data-testid=connection][data-status=waiting_for_network], [data-testid=connection][data-status=offline]').first().waitFor();
    await shot(bob, 'offline');
    await openChat(ann, 'Bob');
    await send(ann, 'sent while you were offline 1');
    await send(ann, 'sent while you were offline 2');
    await openChat(cat, 'Trio');
    await send(cat, 'group message while Bob is offline');
    await bob.page.waitForTimeout(500);
    await bob.ctx.setOffline(false);
    await bob.page.locator('[data-testid=connection][data-status=online]').waitFor({ state: 'attached', timeout: 30_000 });
    await waitBadge(bob, 'Ann', 2);
    await waitBadge(bob, 'Trio', 1);
    await openChat(bob, 'Ann');
    await message(bob, 'sent while you were offline 2').waitFor();
    // The "new messages" divider sits right above the first of them.
    const afterDivider = bob.page.locator('[data-testid=unread-divider] + [data-testid=message]');
    assert.match((await afterDivider.textContent()) ?? '', /sent while you were offline 1/);
    // Bob's device stored them: Ann's messages turn delivered.
    await message(ann, 'sent while you were offline 2').locator('[data-testid=msg-state][data-state=delivered]').waitFor();
  });

  it('a long unread run: the chat opens at the newest page and jumps to the oldest unread', async () => {
    const conv = (await ann.page.getByTestId('chat').getAttribute('data-conv')) ?? '';
    assert.match(conv, /^d:/);
    // Ann's second device (a script) sends 40 messages while Bob looks at his list.
    const annCli = (await api<{ token: string }>(server.url, 'POST', '/api/login', { username: ann.username, password: PASSWORD, deviceId: 'script', platform: 'desktop' })).body;
    await goChats(bob);
    for (let i = 1; i <= 40; i++) {
      const r = await api(server.url, 'POST', '/api/messages', { clientMsgId: `bulk-${i}`, conv, kind: 'text', body: { text: `bulk ${i}` } }, annCli.token);
      assert.equal(r.status, 200);
    }
    await waitBadge(bob, 'Ann', 40);
    await openChat(bob, 'Ann');
    await exactly(bob, 'bulk 40').waitFor();
    assert.equal(await exactly(bob, 'bulk 1').count(), 0, 'only the newest page is shown');
    await bob.page.getByTestId('jump-unread').click();
    await exactly(bob, 'bulk 1').waitFor();
    assert.equal(await bob.page.locator('[data-testid=unread-divider] + [data-testid=message] .msg-text').textContent(), 'bulk 1');
    await shot(bob, 'chat-jump-unread');
    // Back down: reaching the bottom pages the newer messages in (or the "latest" button jumps there).
    await bob.page.getByTestId('jump-latest').waitFor({ state: 'attached' });
    await bob.page.getByTestId('messages').evaluate((el) => el.scrollTo(0, el.scrollHeight));
    await exactly(bob, 'bulk 40').waitFor();
    await bob.page.locator('.pane-header .back').click();
    await waitBadge(bob, 'Ann', 0);
  });

  it('an admin removes a member: the member sees the notice, then nothing more', async () => {
    await openChat(ann, 'Trio');
    await ann.page.getByTestId('group-info').click();
    ann.page.once('dialog', (d) => void d.accept());
    await ann.page.locator(`[data-testid=member][data-user="${cat.username}"]`).getByTestId('kick').click();
    await ann.page.locator(`[data-testid=member][data-user="${cat.username}"]`).waitFor({ state: 'detached' });
    await cat.page.getByTestId('system-notice').filter({ hasText: 'Ann removed you' }).waitFor();
    await ann.page.locator('.pane-header .back').click();
  });

  it('settings and logout; the desktop chat screen for the docs', async () => {
    await ann.page.getByTestId('tab-settings').click();
    await ann.page.getByTestId('notifications-settings').waitFor();
    await shot(ann, 'settings');
    await bob.page.locator('.pane-header .back').click().catch(() => undefined);
    await bob.page.getByTestId('tab-settings').click();
    await bob.page.getByTestId('notifications-settings').waitFor();
    await shot(bob, 'settings');
    await ann.page.getByTestId('tab-chats').click();
    await openChat(ann, 'Trio');
    await message(ann, 'group message while Bob is offline').waitFor();
    // The notification offer (shown after the first message sent here) can be put off.
    await ann.page.getByTestId('push-offer').getByRole('button', { name: 'Not now' }).click();
    await ann.page.getByTestId('push-offer').waitFor({ state: 'detached' });
    await shot(ann, 'chat-group');
    // The service worker is active; a notification click it handled moves an open window to the conversation.
    assert.equal(await ann.page.evaluate(() => navigator.serviceWorker.ready.then((r) => !!r.active)), true);
    await openChat(ann, 'Bob');
    await ann.page.evaluate((url) => navigator.serviceWorker.dispatchEvent(new MessageEvent('message', { data: { type: 'magpie.open', url } })), `/c/${encodeURIComponent(group)}`);
    await ann.page.getByTestId('chat').locator('h2', { hasText: 'Trio' }).waitFor();
    if (process.env.MAGPIE_WRITE_DOCS_IMAGES === '1') await ann.page.screenshot({ path: join(ROOT, 'docs/images/chat.png') });
    // Logging out clears the device: the login form shows and a reload stays signed out.
    await bob.page.getByTestId('logout').click();
    await bob.page.getByTestId('login-form').waitFor();
    await bob.page.reload();
    await bob.page.getByTestId('login-form').waitFor();
  });

  it('join requests reach an admin live, with badges; approving adds the member', async () => {
    await cat.page.getByTestId('tab-contacts').click();
    await cat.page.getByTestId('add-friends').click();
    await cat.page.getByTestId('search-input').fill('Trio');
    await cat.page.getByTestId('group-result').getByRole('button', { name: 'Join' }).click();
    await cat.page.getByText('Asked to join “Trio”').waitFor();
    await goChats(ann);
    await row(ann, 'Trio').getByTestId('row-join-requests').waitFor({ timeout: 25_000 });
    await openChat(ann, 'Trio');
    await ann.page.getByTestId('join-request-badge').waitFor();
    await shot(ann, 'chats-join-request');
    await ann.page.getByTestId('group-info').click();
    await ann.page.getByTestId('join-request').getByTestId('approve-request').click();
    await ann.page.locator(`[data-testid=member][data-user="${cat.username}"]`).waitFor();
    await row(ann, 'Trio').getByTestId('row-join-requests').waitFor({ state: 'detached' });
    await ann.page.locator('.pane-header .back').click();
  });

  it('deleting a chat asks first; contacts can be blocked, unblocked and removed', async () => {
    await cat.page.getByTestId('tab-contacts').click();
    await cat.page.locator(`[data-testid=friend][data-user="${ann.username}"] a`).click();
    await cat.page.getByTestId('chat').waitFor();
    await send(cat, 'a chat to delete');
    await goChats(cat);
    cat.page.once('dialog', (d) => void d.dismiss());
    await row(cat, 'Ann').getByTestId('row-menu').click();
    await cat.page.getByTestId('delete-chat').click();
    await cat.page.waitForTimeout(300);
    assert.equal(await row(cat, 'Ann').count(), 1, 'cancelled: the chat stays');
    cat.page.once('dialog', (d) => void d.accept());
    await row(cat, 'Ann').getByTestId('row-menu').click();
    await cat.page.getByTestId('delete-chat').click();
    await row(cat, 'Ann').waitFor({ state: 'detached' });

    await cat.page.getByTestId('tab-contacts').click();
    const friend = (who: string) => cat.page.locator(`[data-testid=friend][data-user="${who}"]`);
    cat.page.once('dialog', (d) => void d.accept());
    await friend(bob.username).getByTestId('friend-menu').click();
    await cat.page.getByTestId('block-user').click();
    await cat.page.locator(`[data-testid=blocked-user][data-user="${bob.username}"]`).waitFor();
    await friend(bob.username).waitFor({ state: 'detached' });
    await shot(cat, 'contacts-blocked');
    await cat.page.locator(`[data-testid=blocked-user][data-user="${bob.username}"]`).getByTestId('unblock').click();
    await cat.page.locator(`[data-testid=blocked-user][data-user="${bob.username}"]`).waitFor({ state: 'detached' });
    cat.page.once('dialog', (d) => void d.accept());
    await friend(ann.username).getByTestId('friend-menu').click();
    await cat.page.getByTestId('remove-friend').click();
    await friend(ann.username).waitFor({ state: 'detached' });
  });

  it('settings: a picture, a password change, log out everywhere', async () => {
    await cat.page.getByTestId('tab-settings').click();
    await cat.page.getByTestId('change-avatar').click();
    await cat.page.getByTestId('avatar-url').fill(`${server.url}/icon.svg`);
    await cat.page.getByTestId('save-avatar').click();
    await cat.page.getByTestId('avatar-settings').getByTestId('avatar-image').waitFor();
    await shot(cat, 'settings');
    await cat.page.getByTestId('current-password').fill(PASSWORD);
    await cat.page.getByTestId('new-password').fill('a new password 1');
    await cat.page.getByTestId('repeat-password').fill('a new password 1');
    await cat.page.getByTestId('change-password').click();
    const outcome = cat.page.getByTestId('password-settings').locator('.notice, .error');
    await outcome.waitFor();
    assert.equal(((await outcome.textContent()) ?? '').trim(), 'Password changed.');
    cat.page.once('dialog', (d) => void d.accept());
    await cat.page.getByTestId('logout-all').click();
    await cat.page.getByTestId('login-form').waitFor();
    // The new password is the one that works now.
    await cat.page.locator('input[name=username]').fill(cat.username);
    await cat.page.locator('input[name=password]').fill('a new password 1');
    await cat.page.locator('[data-testid=login-form] button[type=submit]').click();
    await cat.page.getByTestId('conversation-list').waitFor();
  });

  it('no console errors in any context', () => {
    for (const u of [ann, bob, cat]) assert.deepEqual(u.errors, [], `${u.name}'s console`);
  });
});
