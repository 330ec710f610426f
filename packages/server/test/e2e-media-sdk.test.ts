import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { MediaApi, type MagpieClient } from '@magpie/sdk';
import { startServer, registerAndLogin, type ServerProcess, type Account } from './harness.ts';
import { sdkClient, eventually } from './sdk-client.ts';
import { png } from './media-fixtures.ts';

describe('SDK media: uploads and media messages against the real server', () => {
  let srv: ServerProcess;
  let a: Account;
  let b: Account;
  let ca: MagpieClient;
  let cb: MagpieClient;
  before(async () => {
    srv = await startServer({ startTimeoutMs: 60_000, env: { MAGPIE_USER_BURST: '5000', MAGPIE_USER_RATE: '5000' } });
    [a, b] = await Promise.all([registerAndLogin(srv.url), registerAndLogin(srv.url)]);
    ca = sdkClient({ baseUrl: srv.url, token: a.token });
    cb = sdkClient({ baseUrl: srv.url, token: b.token });
    await Promise.all([ca.connect(), cb.connect()]);
  });
  after(async () => {
    await ca?.close();
    await cb?.close();
    await srv.stop();
  });

  const api = (token: string, extra: Partial<ConstructorParameters<typeof MediaApi>[0]> = {}) => new MediaApi({ baseUrl: srv.url, token: () => token, ...extra });

  it('upload reports progress and ends with the server’s measurements', async () => {
    const media = api(a.token, { chunkSize: 256 * 1024 });
    const up = media.upload(randomBytes(1_000_000), 'file', { filename: 'data.bin' });
    const progress: number[] = [];
    up.on('progress', (p) => progress.push(p.sent));
    const info = await up.done;
    assert.equal(info.state, 'ready');
    assert.equal(info.size, 1_000_000);
    assert.equal(info.name, 'data.bin');
    assert.ok(progress.length >= 4, `several progress events (${progress.length})`);
    assert.equal(progress.at(-1), 1_000_000);
    assert.equal(up.state, 'done');
  });

  it('pause and resume continue from the server’s offset; cancel deletes the upload', async () => {
    const media = api(a.token, { chunkSize: 64 * 1024 });
    const data = randomBytes(2_000_000);
    const up = media.upload(data, 'file');
    await eventually(() => up.sent >= 128 * 1024, 'some chunks sent');
    up.pause();
    const at = up.sent;
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(up.state, 'paused');
    assert.ok(up.sent <= at + 64 * 1024, 'nothing more is sent while paused');
    up.resume();
    const info = await up.done;
    assert.equal(info.size, data.length);

    const doomed = media.upload(randomBytes(2_000_000), 'file');
    await eventually(() => doomed.id !== null && doomed.sent > 0, 'created');
    const id = doomed.id!;
    await doomed.cancel();
    await assert.rejects(doomed.done, /cancelled/);
    const head = await fetch(`${srv.url}/api/uploads/${id}`, { method: 'HEAD', headers: { authorization: `Bearer ${a.token}`, 'tus-resumable': '1.0.0' } });
    assert.ok(head.status === 404 || head.status === 410, `gone after cancel (${head.status})`);
  });

  it('an upload resumes from its URL in a new session (after a reconnect or an app restart)', async () => {
    const media = api(a.token, { chunkSize: 64 * 1024 });
    const data = randomBytes(1_500_000);
    const up = media.upload(data, 'file');
    await eventually(() => up.sent >= 256 * 1024, 'some chunks sent');
    up.pause();
    // A new upload object from the saved URL, as after an app restart.
    const url = up.url!;
    const again = media.upload(data, 'file', { resumeUrl: url });
    const first = await new Promise<number>((r) => again.on('progress', (p) => r(p.sent)));
    assert.ok(first > 256 * 1024 - 64 * 1024, `resumed from the server’s offset, not from 0 (first progress ${first})`);
    const info = await again.done;
    assert.equal(info.id, up.id);
    assert.equal(info.size, data.length);
  });

  it('sendMedia: pending at once, then uploaded and sent; the recipient gets an image with a placeholder', async () => {
    const media = api(a.token, { send: (i) => ca.send(i), waitForSend: (id) => ca.waitForSend(id) });
    // A Blob, as a browser's file picker gives: the pending message has a local blob: URL at once.
    const file = new Blob([new Uint8Array(await png(640, 480))], { type: 'image/png' });
    const pending = media.sendMedia({ to: b.userId }, { kind: 'image', file, body: { caption: 'sky' } });
    assert.equal(pending.state(), 'uploading');
    assert.match(pending.localId, /^local-/);
    assert.match(pending.localUrl ?? '', /^blob:/, 'shown at once from the local blob');
    const msg = await pending.message;
    assert.equal(pending.state(), 'sent');
    assert.equal(msg.kind, 'image');
    assert.deepEqual([(msg.body as { fallback: string }).fallback, (msg.body as { caption: string }).caption], ['[Image]', 'sky']);
    let got: { body: unknown } | undefined;
    await eventually(async () => {
      got = (await cb.getMessages(msg.conv!)).messages.find((m) => m.id === msg.id);
      return got !== undefined;
    }, 'B has the message');
    const body = got!.body as { upload: string; width: number; height: number; fallback: string; caption: string; placeholder: string };
    assert.deepEqual([body.width, body.height, body.fallback, body.caption], [640, 480, '[Image]', 'sky'], 'the recipient sees the server’s measurements');
    assert.ok(body.placeholder);
    const bm = api(b.token);
    const { url } = await bm.url(body.upload, 'small');
    const res = await fetch(url);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'image/webp');
  });

  it('a refused upload fails the pending message with the server’s error code', async () => {
    const media = api(a.token, { send: (i) => ca.send(i) });
    const pending = media.sendMedia({ to: b.userId }, { kind: 'image', file: Buffer.from('not an image at all') });
    await assert.rejects(pending.message, (err: { code?: string }) => err.code === 'invalid');
    assert.equal(pending.state(), 'failed');
  });
});
