/**
 * Rich messages in a real browser (playwright-core driving Debian's chromium) against the real
 * server process serving the built client, with real files: a PNG and a JPEG made by sharp, a
 * CSV, a voice note recorded by MediaRecorder from chromium's fake microphone fed a WAV this
 * test writes, the browser's geolocation, and contact/group cards.
 *
 * Ann (desktop) sends; Bob (phone) receives: the image shows from the local file at once with
 * upload progress and becomes "sent"; Bob sees the ThumbHash placeholder then the thumbnail,
 * opens the lightbox (zoom, next/prev), downloads the file, plays the voice note at 1.5×,
 * follows the location's map link (the operator's template; no map tiles), and adds a friend /
 * joins a group from cards. Uploads can be cancelled. No console errors (a CSP violation for
 * blob: media would be one). Screenshots go to test-artifacts/web/. Skips without chromium
 * unless MAGPIE_REQUIRE_SERVICES=1.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import sharp from 'sharp';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { api, startServer, type ServerProcess } from '../../server/test/harness.ts';

const CHROMIUM = '/usr/bin/chromium';
const ROOT = new URL('../../../', import.meta.url).pathname;
const ARTIFACTS = join(ROOT, 'test-artifacts/web');
const required = process.env.MAGPIE_REQUIRE_SERVICES === '1';
const haveChromium = existsSync(CHROMIUM);
const skip = !haveChromium && !required ? `chromium not found at ${CHROMIUM} (apt-get install -y chromium); set MAGPIE_REQUIRE_SERVICES=1 to fail instead` : false;
if (skip) console.log(`# web media e2e skipped: ${skip}`);

const PHONE = { width: 390, height: 844 };
const DESKTOP = { width: 1280, height: 800 };
const PASSWORD = 'correct horse battery';
const T = 20_000;
const MAP = 'https://maps.example.test/?q={lat},{lng}&name={label}';
const NETWORK_NOISE = /net::ERR_|Failed to load resource/;

/** A 16-bit mono PCM WAV of a tone that swells and fades (a real file for the fake microphone). */
function wav(seconds: number, rate = 16_000): Buffer {
  const n = Math.floor(seconds * rate);
  const buf = Buffer.alloc(44 + n * 2);
  buf.write('RIFF', 0);
  buf.writeUInt32LE(36 + n * 2, 4);
  buf.write('WAVEfmt ', 8);
  buf.writeUInt32LE(16, 16);
  buf.writeUInt16LE(1, 20);
  buf.writeUInt16LE(1, 22);
  buf.writeUInt32LE(rate, 24);
  buf.writeUInt32LE(rate * 2, 28);
  buf.writeUInt16LE(2, 32);
  buf.writeUInt16LE(16, 34);
  buf.write('data', 36);
  buf.writeUInt32LE(n * 2, 40);
  for (let i = 0; i < n; i++) {
    const env = Math.abs(Math.sin((Math.PI * i) / rate)); // loud and quiet once a second
    buf.writeInt16LE(Math.round(Math.sin((2 * Math.PI * 440 * i) / rate) * env * 20_000), 44 + i * 2);
  }
  return buf;
}

interface User {
  name: string;
  username: string;
  userId: string;
  token: string;
  ctx: BrowserContext;
  page: Page;
  errors: string[];
  phone: boolean;
}

describe('web client: rich messages in chromium', { skip, timeout: 300_000 }, () => {
  let server: ServerProcess;
  let browser: Browser;
  const suffix = randomBytes(3).toString('hex');
  const dir = mkdtempSync(join(tmpdir(), 'magpie-web-media-'));
  let ann: User;
  let bob: User;
  let cat: { userId: string; username: string; token: string };
  let group = '';

  before(async () => {
    if (!haveChromium) throw new Error(`MAGPIE_REQUIRE_SERVICES=1 but ${CHROMIUM} is missing`);
    const build = spawnSync(process.execPath, [join(ROOT, 'scripts/build-web.mjs'), '--if-stale'], { stdio: 'inherit' });
    assert.equal(build.status, 0, 'web client build');
    mkdirSync(ARTIFACTS, { recursive: true });
    writeFileSync(join(dir, 'voice.wav'), wav(6));
    server = await startServer({ env: { MAGPIE_IP_RATE: '2000', MAGPIE_IP_BURST: '5000', MAGPIE_USER_RATE: '500', MAGPIE_USER_BURST: '2000', MAGPIE_MAP_URL_TEMPLATE: MAP } });
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--disable-quic',
        '--no-first-run',
        '--use-fake-ui-for-media-stream',
        '--use-fake-device-for-media-stream',
        `--use-file-for-fake-audio-capture=${join(dir, 'voice.wav')}`,
        '--autoplay-policy=no-user-gesture-required',
      ],
    });
    // Accounts and friendships through the API (the UI for those has its own tests); sign-in through the UI.
    const reg = async (name: string) => {
      const username = `${name.toLowerCase()}_m${suffix}`;
      assert.equal((await api(server.url, 'POST', '/api/register', { username, password: PASSWORD, nickname: name })).status, 201);
      const l = await api(server.url, 'POST', '/api/login', { username, password: PASSWORD, deviceId: 'setup', platform: 'web' });
      return { username, userId: l.body.userId as string, token: l.body.token as string };
    };
    const a = await reg('Ann');
    const b = await reg('Bob');
    cat = await reg('Cat');
    assert.equal((await api(server.url, 'POST', '/api/friends/requests', { to: b.userId }, a.token)).status, 200);
    assert.equal((await api(server.url, 'POST', `/api/friends/requests/${a.userId}/accept`, undefined, b.token)).status, 200);
    assert.equal((await api(server.url, 'POST', '/api/friends/requests', { to: cat.userId }, a.token)).status, 200);
    assert.equal((await api(server.url, 'POST', `/api/friends/requests/${a.userId}/accept`, undefined, cat.token)).status, 200);
    const g = await api(server.url, 'POST', '/api/groups', { name: `Hikers ${suffix}`, members: [cat.userId], joinPolicy: 'open' }, a.token);
    assert.equal(g.status, 201, JSON.stringify(g.body));
    group = g.body.group.conv;
    ann = await open('Ann', a, false);
    bob = await open('Bob', b, true);
  });

  after(async () => {
    await browser?.close().catch(() => undefined);
    await server?.stop();
  });

  async function open(name: string, acc: { username: string; userId: string; token: string }, phone: boolean): Promise<User> {
    const ctx = await browser.newContext({
      viewport: phone ? PHONE : DESKTOP,
      ...(phone ? { isMobile: true, hasTouch: true, deviceScaleFactor: 2 } : {}),
      permissions: ['geolocation', 'microphone'],
      geolocation: { latitude: 31.2304, longitude: 121.4737, accuracy: 20 },
      acceptDownloads: true,
    });
    const page = await ctx.newPage();
    page.setDefaultTimeout(T);
    const u: User = { name, ...acc, ctx, page, errors: [], phone };
    page.on('console', (m) => {
      if ((m.type() === 'error' || m.type() === 'warning') && !NETWORK_NOISE.test(m.text())) u.errors.push(`${m.type()}: ${m.text()}`);
    });
    page.on('pageerror', (e) => u.errors.push(`pageerror: ${e.message}`));
    await page.goto(server.url + '/');
    await page.getByTestId('login-form').waitFor();
    await page.locator('input[name=username]').fill(acc.username);
    await page.locator('input[name=password]').fill(PASSWORD);
    await page.locator('input[name=password]').press('Enter');
    await page.getByTestId('conversation-list').waitFor();
    await page.locator('[data-testid=connection][data-status=online]').waitFor({ state: 'attached' });
    return u;
  }

  const shot = (u: User, name: string) => u.page.screenshot({ path: join(ARTIFACTS, `${name}-${u.phone ? 'phone' : 'desktop'}.png`) });
  const msgs = (u: User, kind: string) => u.page.locator(`[data-testid=message][data-kind=${kind}]`);

  async function openDm(u: User, peer: string): Promise<void> {
    await u.page.getByTestId('tab-contacts').click();
    await u.page.locator(`[data-testid=friend][data-user="${peer}"] a`).click();
    await u.page.getByTestId('chat').waitFor();
    await u.page.getByTestId('composer').waitFor();
  }

  /** Drop files on the chat as a drag from the desktop would (a DataTransfer built in the page). */
  async function drop(u: User, files: { name: string; type: string; data: Buffer }[]): Promise<void> {
    const dt = await u.page.evaluateHandle((fs) => {
      const d = new DataTransfer();
      for (const f of fs) d.items.add(new File([Uint8Array.from(atob(f.b64), (c) => c.charCodeAt(0))], f.name, { type: f.type }));
      return d;
    }, files.map((f) => ({ name: f.name, type: f.type, b64: f.data.toString('base64') })));
    const chat = u.page.getByTestId('chat');
    await chat.dispatchEvent('dragenter', { dataTransfer: dt });
    await chat.dispatchEvent('dragover', { dataTransfer: dt });
    await chat.dispatchEvent('drop', { dataTransfer: dt });
  }

  it('an image shows at once from the local file with progress, then is sent; the recipient sees the placeholder, then the thumbnail', async () => {
    await openDm(ann, bob.username);
    await openDm(bob, ann.username);
    const png = await sharp({ create: { width: 1600, height: 1000, channels: 3, background: { r: 30, g: 140, b: 90 } } })
      .composite([{ input: Buffer.from('<svg width="1600" height="1000"><circle cx="800" cy="500" r="300" fill="#f5c542"/></svg>'), top: 0, left: 0 }])
      .png()
      .toBuffer();
    // Hold the upload's PATCH until the local preview has been seen.
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    await ann.page.route(/\/api\/uploads\/up_/, async (route) => {
      if (route.request().method() === 'PATCH') await gate;
      await route.continue().catch(() => undefined);
    });
    await ann.page.getByTestId('attach').click();
    const chooser = ann.page.waitForEvent('filechooser');
    await ann.page.getByTestId('attach-file').click();
    await (await chooser).setFiles({ name: 'meadow.png', mimeType: 'image/png', buffer: png });
    const up = ann.page.locator('[data-testid=upload][data-kind=image]');
    await up.waitFor();
    assert.match((await up.getByTestId('upload-preview').getAttribute('src')) ?? '', /^blob:/, 'the picked image shows at once from the local blob');
    await up.getByTestId('upload-progress').waitFor();
    await shot(ann, 'media-uploading');
    release();
    await ann.page.unroute(/\/api\/uploads\/up_/);
    const sent = msgs(ann, 'image').last();
    await sent.locator('[data-testid=msg-state][data-state=delivered]').waitFor();
    assert.equal(await up.count(), 0, 'the upload bubble gave way to the message');

    const got = msgs(bob, 'image').last();
    await got.getByTestId('image').waitFor();
    assert.equal(await got.getByTestId('image').getAttribute('data-placeholder'), 'yes', 'a ThumbHash placeholder is drawn before the thumbnail');
    const thumb = got.locator('[data-testid=image-thumb][data-loaded=yes]');
    await thumb.waitFor();
    const natural = await thumb.evaluate((img: HTMLImageElement) => [img.naturalWidth, img.naturalHeight, img.currentSrc]);
    assert.deepEqual(natural.slice(0, 2), [320, 200], 'the small thumbnail (320 px), not the original');
    assert.match(String(natural[2]), /variant=small/);
  });

  it('drag-and-drop and paste send more pictures; the lightbox zooms and steps through the chat’s images', async () => {
    const jpeg = await sharp({ create: { width: 900, height: 1200, channels: 3, background: { r: 200, g: 60, b: 60 } } }).jpeg().toBuffer();
    await drop(ann, [{ name: 'portrait.jpg', type: 'image/jpeg', data: jpeg }]);
    await msgs(ann, 'image').nth(1).locator('[data-testid=msg-state][data-state=delivered]').waitFor();
    const pasted = await sharp({ create: { width: 600, height: 600, channels: 4, background: { r: 60, g: 60, b: 220, alpha: 1 } } }).webp().toBuffer();
    await ann.page.getByTestId('composer').evaluate((el, b64) => {
      const d = new DataTransfer();
      d.items.add(new File([Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))], 'clip.webp', { type: 'image/webp' }));
      el.dispatchEvent(new ClipboardEvent('paste', { clipboardData: d, bubbles: true, cancelable: true }));
    }, pasted.toString('base64'));
    await msgs(ann, 'image').nth(2).locator('[data-testid=msg-state][data-state=delivered]').waitFor();
    await msgs(bob, 'image').nth(2).locator('[data-testid=image-thumb][data-loaded=yes]').waitFor();
    await shot(bob, 'media-images');

    await msgs(bob, 'image').nth(1).getByTestId('image').click();
    const box = bob.page.getByTestId('lightbox');
    await box.waitFor();
    assert.equal(await box.getByTestId('lightbox-count').textContent(), '2 / 3');
    const big = box.getByTestId('lightbox-image');
    await big.waitFor();
    await bob.page.waitForFunction(() => (document.querySelector('[data-testid=lightbox-image]') as HTMLImageElement | null)?.naturalWidth === 900);
    assert.match((await big.getAttribute('src')) ?? '', /variant=large/, 'the large thumbnail in the viewer');
    await box.getByTestId('zoom-in').click();
    assert.equal(await big.getAttribute('data-zoom'), '2');
    await shot(bob, 'media-lightbox');
    await box.getByTestId('lightbox-next').click();
    assert.equal(await box.getByTestId('lightbox-count').textContent(), '3 / 3');
    assert.equal(await box.getByTestId('lightbox-image').getAttribute('data-zoom'), '1', 'a new image starts unzoomed');
    assert.equal(await box.getByTestId('lightbox-next').isDisabled(), true);
    await bob.page.keyboard.press('ArrowLeft');
    await bob.page.keyboard.press('ArrowLeft');
    assert.equal(await box.getByTestId('lightbox-count').textContent(), '1 / 3');
    await bob.page.keyboard.press('Escape');
    await box.waitFor({ state: 'detached' });
  });

  it('a file card shows name and size, and the download gives the same bytes', async () => {
    const csv = Buffer.from('city,lat,lng\nShanghai,31.2304,121.4737\nParis,48.8566,2.3522\n'.repeat(200));
    await ann.page.getByTestId('attach').click();
    const chooser = ann.page.waitForEvent('filechooser');
    await ann.page.getByTestId('attach-file').click();
    await (await chooser).setFiles({ name: 'cities.csv', mimeType: 'text/csv', buffer: csv });
    await msgs(ann, 'file').last().locator('[data-testid=msg-state][data-state=delivered]').waitFor();
    const card = msgs(bob, 'file').last().getByTestId('file-card');
    await card.waitFor();
    assert.match((await card.textContent()) ?? '', /cities\.csv.*12\.0 KB/s);
    const link = card.getByTestId('file-download');
    await link.waitFor();
    const [download] = await Promise.all([bob.page.waitForEvent('download'), link.click()]);
    assert.equal(download.suggestedFilename(), 'cities.csv');
    const path = await download.path();
    const { readFileSync } = await import('node:fs');
    assert.deepEqual(readFileSync(path), csv, 'the downloaded bytes are the sent file');
  });

  it('a voice note recorded by tapping, and one by holding; the recipient plays it at 1.5×', async () => {
    const rec = ann.page.getByTestId('record');
    await rec.click(); // tap: starts
    await ann.page.getByTestId('recording').waitFor();
    await ann.page.waitForTimeout(1600);
    await shot(ann, 'media-recording');
    await rec.click(); // tap again: stops and sends
    await ann.page.getByTestId('recording').waitFor({ state: 'detached' });
    await msgs(ann, 'voice').first().locator('[data-testid=msg-state][data-state=delivered]').waitFor({ timeout: 30_000 });
    // Hold to record, release to send.
    await rec.hover();
    await ann.page.mouse.down();
    await ann.page.getByTestId('recording').waitFor();
    await ann.page.waitForTimeout(1200);
    await ann.page.mouse.up();
    await msgs(ann, 'voice').nth(1).locator('[data-testid=msg-state][data-state=delivered]').waitFor({ timeout: 30_000 });

    const voice = msgs(bob, 'voice').first().getByTestId('voice-player');
    await voice.waitFor();
    const bars = await voice.locator('.waveform .bar').evaluateAll((els) => els.map((e) => parseFloat((e as HTMLElement).style.height)));
    assert.ok(bars.length > 0 && Math.max(...bars) > Math.min(...bars), `the waveform has loud and quiet parts (${bars.join(',')})`);
    assert.match((await voice.getByTestId('voice-time').textContent()) ?? '', /^0:0\d$/, 'the duration shows');
    await voice.getByTestId('voice-speed').click();
    assert.equal(await voice.getByTestId('voice-speed').getAttribute('data-speed'), '1.5');
    await voice.getByTestId('voice-play').click();
    await bob.page.waitForFunction(() => {
      const a = document.querySelector('[data-testid=voice-audio]') as HTMLAudioElement | null;
      return !!a && a.currentTime > 0.2 && a.playbackRate === 1.5;
    });
    await shot(bob, 'media-voice');
  });

  it('a location from the browser’s geolocation: coordinates, label and the operator’s map link, no map tiles', async () => {
    await ann.page.getByTestId('attach').click();
    await ann.page.getByTestId('attach-location').click();
    await ann.page.getByTestId('location-found').waitFor();
    assert.match((await ann.page.getByTestId('location-found').textContent()) ?? '', /31\.23040, 121\.47370/);
    await ann.page.getByTestId('location-label').fill('People’s Square');
    await ann.page.getByTestId('location-send').click();
    const card = msgs(bob, 'location').last().getByTestId('location-card');
    await card.waitFor();
    assert.match((await card.textContent()) ?? '', /People’s Square/);
    assert.equal(await card.getByTestId('location-coords').textContent(), '31.23040, 121.47370');
    const href = await card.getByTestId('location-link').getAttribute('href');
    assert.equal(href, 'https://maps.example.test/?q=31.2304,121.4737&name=People%E2%80%99s%20Square');
    assert.equal(await card.locator('img, iframe').count(), 0, 'no map tiles or embeds');
  });

  it('contact and group cards: the recipient adds the friend and joins the group from them', async () => {
    await ann.page.getByTestId('attach').click();
    await ann.page.getByTestId('attach-card').click();
    await ann.page.locator(`[data-testid=card-friend][data-user="${cat.userId}"]`).click();
    await ann.page.getByTestId('attach').click();
    await ann.page.getByTestId('attach-card').click();
    await ann.page.locator(`[data-testid=card-group][data-conv="${group}"]`).click();
    const userCard = bob.page.locator('[data-testid=contact-card][data-card=user]').last();
    await userCard.waitFor();
    assert.match((await userCard.textContent()) ?? '', /Cat/);
    await shot(bob, 'media-cards');
    // The pointer rests on the next message (the group card): its action toolbar shows, in its
    // own row, and this card's button at the bottom of its message stays clickable (the toolbar
    // used to sit above the next bubble, over this button: a click waited 20 s behind it in CI).
    // On a phone the toolbar comes with a long press (a right click here), not with hover.
    const next = bob.page.locator('[data-testid=message]', { has: bob.page.locator('[data-testid=contact-card][data-card=group]') }).last();
    await next.hover({ position: { x: 8, y: 8 } });
    if (bob.phone) await next.click({ button: 'right', position: { x: 8, y: 8 } });
    await next.getByTestId('msg-actions').waitFor();
    const uncovered = await userCard.getByTestId('card-action').evaluate((b) => {
      const r = b.getBoundingClientRect();
      return [[0.5, 0.5], [0.1, 0.9], [0.9, 0.9], [0.1, 0.1], [0.9, 0.1]].every(([x, y]) => b.contains(document.elementFromPoint(r.left + r.width * x!, r.top + r.height * y!)));
    });
    assert.ok(uncovered, 'the next message’s toolbar leaves the card’s button uncovered');
    await userCard.getByTestId('card-action').click({ timeout: 5000 });
    await userCard.getByTestId('card-note').waitFor();
    const reqs = await api(server.url, 'GET', '/api/friends/requests?direction=incoming', undefined, cat.token);
    assert.ok(reqs.body.items.some((r: { user: { id: string } }) => r.user.id === bob.userId), 'Cat got Bob’s friend request');
    const groupCard = bob.page.locator('[data-testid=contact-card][data-card=group]').last();
    await groupCard.getByTestId('card-action').click();
    await bob.page.waitForURL(new RegExp(`/c/${encodeURIComponent(group)}$`));
    await bob.page.getByTestId('chat').locator('h2', { hasText: 'Hikers' }).waitFor();
  });

  it('an upload can be cancelled: nothing is sent', async () => {
    await openDm(ann, bob.username);
    const before = await msgs(ann, 'file').count();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    await ann.page.route(/\/api\/uploads\/up_/, async (route) => {
      if (route.request().method() === 'PATCH') await gate;
      await route.continue().catch(() => undefined);
    });
    await ann.page.getByTestId('attach').click();
    const chooser = ann.page.waitForEvent('filechooser');
    await ann.page.getByTestId('attach-file').click();
    await (await chooser).setFiles({ name: 'big.bin', mimeType: 'application/octet-stream', buffer: randomBytes(3 * 1024 * 1024) });
    const up = ann.page.locator('[data-testid=upload]');
    await up.waitFor();
    await up.getByTestId('upload-cancel').click();
    await up.waitFor({ state: 'detached' });
    release();
    await ann.page.unroute(/\/api\/uploads\/up_/);
    await ann.page.waitForTimeout(500);
    assert.equal(await msgs(ann, 'file').count(), before);
  });

  it('media previews in the list read in the UI language; no console errors', async () => {
    const rowText = async (u: User) => {
      await u.page.getByTestId('tab-chats').click().catch(() => undefined);
      return (await u.page.locator('[data-testid=conversation-row][data-title="Ann"] .row-preview').textContent().catch(() => '')) ?? '';
    };
    if (!bob.phone) assert.match(await rowText(bob), /\[/);
    for (const u of [ann, bob]) assert.deepEqual(u.errors, [], `${u.name}: console errors`);
  });
});
