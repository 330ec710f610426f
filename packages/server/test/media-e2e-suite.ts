import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import sharp from 'sharp';
import { startServer, registerAndLogin, api, RawClient, type ServerProcess, type Account } from './harness.ts';
import { animatedGif, hasFfmpeg, jpegWithExif, mp4, oggVoice, png, tusCreate, tusPatch, tusUpload } from './media-fixtures.ts';

export const get = (base: string, path: string, token?: string, headers: Record<string, string> = {}) =>
  fetch(base + path, { headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...headers } });

/** Media end to end against the real server process; `env` picks the storage backend and database. */
export function runMediaE2E(name: string, env: () => Promise<{ env: Record<string, string>; cleanup(): Promise<void> }>): void {
  describe(`media end to end: ${name}`, () => {
    let srv: ServerProcess;
    let cleanup: () => Promise<void>;
    let a: Account;
    let b: Account;
    let c: Account;
    before(async () => {
      const e = await env();
      cleanup = e.cleanup;
      srv = await startServer({ startTimeoutMs: 60_000, env: { MAGPIE_USER_BURST: '5000', MAGPIE_USER_RATE: '5000', MAGPIE_MEDIA_MAX_VOICE_BYTES: '200000', ...e.env } });
      [a, b, c] = await Promise.all([registerAndLogin(srv.url), registerAndLogin(srv.url), registerAndLogin(srv.url)]);
    });
    after(async () => {
      await srv.stop();
      await cleanup();
    });

    it('an image: EXIF stripped, orientation applied, two thumbnails and a ThumbHash; sent and read by the recipient only', async () => {
      const { id, res } = await tusUpload(srv.url, a.token, await jpegWithExif(400, 200), { kind: 'image', filename: 'holiday.jpg' });
      assert.equal(res.status, 204, await res.clone().text());
      const info = (await api(srv.url, 'GET', `/api/uploads/${id}`, undefined, a.token)).body.upload;
      assert.equal(info.state, 'ready');
      assert.equal(info.mime, 'image/jpeg');
      assert.deepEqual([info.width, info.height], [200, 400], 'orientation 6 applied: width and height swapped');
      assert.ok(info.placeholder && Buffer.from(info.placeholder, 'base64').length > 5);
      assert.deepEqual(info.variants.map((v: any) => v.name), ['small', 'large']);
      assert.equal(Math.max(info.variants[0].width, info.variants[0].height), 320);

      // Not sent yet: only the uploader may read it.
      assert.equal((await get(srv.url, `/api/media/${id}`, b.token)).status, 404);
      const orig = await get(srv.url, `/api/media/${id}`, a.token);
      assert.equal(orig.status, 200);
      const bytes = Buffer.from(await orig.arrayBuffer());
      const meta = await sharp(bytes).metadata();
      assert.equal(meta.exif, undefined, 'no EXIF (GPS) in the stored original');
      assert.deepEqual([meta.width, meta.height, meta.orientation ?? 1], [200, 400, 1]);

      const sent = await api(srv.url, 'POST', '/api/messages', { clientMsgId: 'img1', to: b.userId, kind: 'image', body: { fallback: '[Image]', upload: id, width: 1, height: 1 } }, a.token);
      assert.equal(sent.status, 200, JSON.stringify(sent.body));
      const body = sent.body.message.body;
      assert.deepEqual([body.width, body.height, body.mime], [200, 400, 'image/jpeg'], 'the server overwrote the client-sent dimensions');
      assert.equal(body.placeholder, info.placeholder);

      const got = await get(srv.url, `/api/media/${id}?variant=small`, b.token);
      assert.equal(got.status, 200);
      assert.equal(got.headers.get('content-type'), 'image/webp');
      assert.match(got.headers.get('cache-control')!, /private, max-age=\d+/);
      const etag = got.headers.get('etag')!;
      assert.equal((await get(srv.url, `/api/media/${id}?variant=small`, b.token, { 'if-none-match': etag })).status, 304);
      assert.equal((await get(srv.url, `/api/media/${id}`, c.token)).status, 404, 'a stranger cannot read it');
      assert.equal((await get(srv.url, `/api/media/${id}`)).status, 401);

      // A signed URL works without the header until it expires; a forged one does not.
      const signed = (await api(srv.url, 'GET', `/api/media/${id}/url?variant=large`, undefined, b.token)).body;
      assert.ok(signed.expiresAt > Date.now());
      assert.equal((await get(srv.url, signed.url)).status, 200);
      assert.equal((await get(srv.url, signed.url.replace('variant=large', 'variant=original'))).status, 403);
      assert.equal((await api(srv.url, 'GET', `/api/media/${id}/url`, undefined, c.token)).status, 404);
    });

    it('the same content uploaded twice is stored once', async () => {
      const data = await png(50, 50);
      const x = await tusUpload(srv.url, a.token, data, { kind: 'image' });
      const y = await tusUpload(srv.url, b.token, data, { kind: 'image' });
      const ex = await get(srv.url, `/api/media/${x.id}`, a.token);
      const ey = await get(srv.url, `/api/media/${y.id}`, b.token);
      assert.equal(ex.headers.get('etag'), ey.headers.get('etag'), 'one object (same SHA-256)');
    });

    it('an animated GIF stays animated, thumbnails too', async () => {
      const { id, res } = await tusUpload(srv.url, a.token, await animatedGif(), { kind: 'image' });
      assert.equal(res.status, 204);
      const info = (await api(srv.url, 'GET', `/api/uploads/${id}`, undefined, a.token)).body.upload;
      assert.equal(info.animated, true);
      assert.deepEqual([info.width, info.height], [64, 48]);
      const small = Buffer.from(await (await get(srv.url, `/api/media/${id}?variant=small`, a.token)).arrayBuffer());
      assert.equal((await sharp(small, { animated: true }).metadata()).pages, 3);
    });

    it('an upload resumes after the connection dropped (HEAD gives the offset)', async () => {
      const data = randomBytes(200_000);
      const created = await tusCreate(srv.url, a.token, data.length, { kind: 'file', filename: 'blob.bin' });
      assert.equal(created.status, 201);
      const loc = created.headers.get('location')!;
      assert.equal((await tusPatch(srv.url, a.token, loc, 0, data.subarray(0, 70_000))).status, 204);
      // A new connection: ask where to go on.
      const head = await fetch(new URL(loc, srv.url), { method: 'HEAD', headers: { authorization: `Bearer ${a.token}`, 'tus-resumable': '1.0.0' } });
      assert.equal(head.headers.get('upload-offset'), '70000');
      assert.equal((await fetch(new URL(loc, srv.url), { method: 'HEAD', headers: { authorization: `Bearer ${b.token}`, 'tus-resumable': '1.0.0' } })).status, 404, 'only the uploader sees it');
      assert.equal((await tusPatch(srv.url, a.token, loc, 70_000, data.subarray(70_000))).status, 204);
      const id = loc.split('/').pop()!;
      const info = (await api(srv.url, 'GET', `/api/uploads/${id}`, undefined, a.token)).body.upload;
      assert.deepEqual([info.state, info.size, info.mime, info.name], ['ready', 200_000, 'application/octet-stream', 'blob.bin']);
      assert.deepEqual(Buffer.from(await (await get(srv.url, `/api/media/${id}`, a.token)).arrayBuffer()), data);
      const disp = (await get(srv.url, `/api/media/${id}`, a.token)).headers.get('content-disposition');
      assert.equal(disp, "attachment; filename*=UTF-8''blob.bin");
    });

    it('uploads need a token, a kind, and stay within the kind’s size limit; the MIME comes from the content', async () => {
      const r0 = await fetch(`${srv.url}/api/uploads`, { method: 'POST', headers: { 'tus-resumable': '1.0.0', 'upload-length': '10' } });
      assert.equal(r0.status, 401);
      assert.equal((await tusCreate(srv.url, a.token, 10, { kind: 'sticker' })).status, 400);
      const big = await tusCreate(srv.url, a.token, 300_000, { kind: 'voice' });
      assert.equal(big.status, 413);
      // A text file named .png and declared an image: refused when its content is seen.
      const fake = await tusUpload(srv.url, a.token, Buffer.from('just some text, not a picture'), { kind: 'image', filename: 'cat.png' });
      assert.equal(fake.res.status, 400);
      assert.equal((await fake.res.json()).error.code, 'invalid');
      const send = await api(srv.url, 'POST', '/api/messages', { clientMsgId: 'bad1', to: b.userId, kind: 'image', body: { fallback: '[Image]', upload: fake.id } }, a.token);
      assert.equal(send.status, 400);
    });

    it('send checks the upload: it exists, is complete, matches the kind, and the sender may use it', async () => {
      const f = await tusUpload(srv.url, a.token, randomBytes(1000), { kind: 'file', filename: 'x.bin' });
      const send = (clientMsgId: string, kind: string, body: unknown, who = a) => api(srv.url, 'POST', '/api/messages', { clientMsgId, to: who === a ? b.userId : a.userId, kind, body }, who.token);
      assert.equal((await send('k1', 'image', { fallback: '[Image]', upload: f.id })).status, 400, 'a file is not an image');
      assert.equal((await send('k2', 'file', { fallback: '[File]', upload: 'up_doesnotexist00' })).status, 404);
      const c2 = await api(srv.url, 'POST', '/api/messages', { clientMsgId: 'k3', to: b.userId, kind: 'file', body: { fallback: '[File]', upload: f.id } }, c.token);
      assert.equal(c2.status, 404, 'another user’s upload they cannot read');
      const partial = await tusCreate(srv.url, a.token, 100, { kind: 'file' });
      const pid = partial.headers.get('location')!.split('/').pop()!;
      assert.equal((await send('k4', 'file', { fallback: '[File]', upload: pid })).status, 400, 'not complete');
      const ok = await send('k5', 'file', { fallback: '[File]', upload: f.id });
      assert.equal(ok.status, 200);
      assert.equal(ok.body.message.body.name, 'x.bin');
      assert.equal(ok.body.message.body.size, 1000);
      // Forwarding: B received it, so B may send it on.
      const fwd = await send('k6', 'file', { fallback: '[File]', upload: f.id }, b);
      assert.equal(fwd.status, 200);
    });

    it('location and card messages; unknown fields refused', async () => {
      const { client } = await RawClient.connect(srv.wsUrl, a.token);
      const loc = await client.request({ type: 'send', clientMsgId: 'loc1', to: b.userId, kind: 'location', body: { fallback: '[Location] Lab', lat: 48.85, lng: 2.35, label: 'Lab' } });
      assert.equal(loc.message.kind, 'location');
      const card = await client.request({ type: 'send', clientMsgId: 'card1', to: b.userId, kind: 'card', body: { fallback: '[Contact card]', card: 'user', id: c.userId, name: 'C' } });
      assert.equal(card.message.body.card, 'user');
      const bad = await api(srv.url, 'POST', '/api/messages', { clientMsgId: 'loc2', to: b.userId, kind: 'location', body: { fallback: 'x', lat: 91, lng: 0 } }, a.token);
      assert.equal(bad.status, 400);
      assert.deepEqual(client.schemaErrors, []);
      client.close();
    });

    it('video: poster and duration with ffmpeg, HTTP Range; voice: duration', { skip: hasFfmpeg() ? false : 'ffmpeg is not installed (apt-get install -y ffmpeg)' }, async () => {
      const video = mp4()!;
      const v = await tusUpload(srv.url, a.token, video, { kind: 'video', filename: 'clip.mp4' });
      assert.equal(v.res.status, 204);
      const info = (await api(srv.url, 'GET', `/api/uploads/${v.id}`, undefined, a.token)).body.upload;
      assert.equal(info.mime, 'video/mp4');
      assert.ok(Math.abs(info.duration - 2) < 0.2, `duration ${info.duration}`);
      assert.deepEqual([info.width, info.height], [320, 240]);
      assert.equal(info.variants[0].name, 'poster');
      const part = await get(srv.url, `/api/media/${v.id}`, a.token, { range: 'bytes=100-199' });
      assert.equal(part.status, 206);
      assert.equal(part.headers.get('content-range'), `bytes 100-199/${video.length}`);
      assert.deepEqual(Buffer.from(await part.arrayBuffer()), video.subarray(100, 200));
      const tail = await get(srv.url, `/api/media/${v.id}`, a.token, { range: 'bytes=-10' });
      assert.deepEqual(Buffer.from(await tail.arrayBuffer()), video.subarray(video.length - 10));
      assert.equal((await get(srv.url, `/api/media/${v.id}`, a.token, { range: `bytes=${video.length}-` })).status, 416);
      assert.equal((await get(srv.url, `/api/media/${v.id}?variant=poster`, a.token)).headers.get('content-type'), 'image/webp');

      const voice = await tusUpload(srv.url, a.token, oggVoice()!, { kind: 'voice' });
      assert.equal(voice.res.status, 204);
      const sent = await api(srv.url, 'POST', '/api/messages', { clientMsgId: 'voice1', to: b.userId, kind: 'voice', body: { fallback: '[Voice]', upload: voice.id, waveform: [1, 200, 30] } }, a.token);
      assert.equal(sent.status, 200, JSON.stringify(sent.body));
      assert.match(sent.body.message.body.mime, /^audio\/ogg/);
      assert.ok(Math.abs(sent.body.message.body.duration - 1.5) < 0.2);
    });
  });
}

