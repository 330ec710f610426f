/**
 * The chat view model's media path against the real server, through a TCP proxy the test can
 * cut: an upload shows at once with the local file and progress, becomes an own message
 * (sending → sent) once uploaded and sent; a network loss leaves the upload waiting (paused,
 * stalled) instead of failing it, and the reconnect resumes it from the server's offset.
 * Locations and cards are sent without an upload.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { ChatViewModel, Directory, GroupsApi, MediaApi, RestApi, SocialApi, type ChatUploadItem, type MagpieClient } from '@magpie/sdk';
import { startServer, registerAndLogin, type ServerProcess, type Account } from './harness.ts';
import { sdkClient, eventually } from './sdk-client.ts';
import { png } from './media-fixtures.ts';

/** A TCP proxy to the server that can be cut (every socket dropped, new ones refused) and restored. */
class CuttableProxy {
  private server: Server | null = null;
  private sockets = new Set<Socket>();
  port = 0;
  constructor(private readonly target: number) {}
  async up(): Promise<void> {
    this.server = createServer((c) => {
      const s = connect(this.target, '127.0.0.1');
      this.sockets.add(c).add(s);
      c.pipe(s).pipe(c);
      const drop = () => (c.destroy(), s.destroy(), this.sockets.delete(c), this.sockets.delete(s));
      c.on('error', drop).on('close', drop);
      s.on('error', drop).on('close', drop);
    });
    await new Promise<void>((r) => this.server!.listen(this.port, '127.0.0.1', r));
    this.port = (this.server.address() as { port: number }).port;
  }
  async down(): Promise<void> {
    const s = this.server;
    this.server = null;
    for (const x of this.sockets) x.destroy();
    this.sockets.clear();
    await new Promise<void>((r) => (s ? s.close(() => r()) : r()));
  }
}

describe('chat view model: media messages, uploads that survive a network loss', () => {
  let srv: ServerProcess;
  let proxy: CuttableProxy;
  let a: Account;
  let b: Account;
  let ca: MagpieClient;
  let cb: MagpieClient;
  let vm: ChatViewModel;
  before(async () => {
    srv = await startServer({ startTimeoutMs: 60_000, env: { MAGPIE_USER_BURST: '5000', MAGPIE_USER_RATE: '5000', MAGPIE_IP_BURST: '5000', MAGPIE_IP_RATE: '5000' } });
    proxy = new CuttableProxy(Number(new URL(srv.url).port));
    await proxy.up();
    const base = `http://127.0.0.1:${proxy.port}`;
    [a, b] = await Promise.all([registerAndLogin(srv.url), registerAndLogin(srv.url)]);
    ca = sdkClient({ baseUrl: base, token: a.token });
    cb = sdkClient({ baseUrl: srv.url, token: b.token });
    await Promise.all([ca.connect(), cb.connect()]);
    const rest = new RestApi({ baseUrl: base });
    const directory = new Directory({ social: new SocialApi(rest, () => a.token), groups: new GroupsApi(rest, () => a.token) });
    // Small chunks and quick retries, so a cut lands mid-upload and the retries run out fast.
    const media = new MediaApi({ baseUrl: base, token: () => a.token, send: (i) => ca.send(i), waitForSend: (id) => ca.waitForSend(id), chunkSize: 64 * 1024, retryDelays: [50, 100], keepOnNetworkError: true });
    vm = new ChatViewModel({ client: ca, directory, media }, { peer: b.userId });
    await vm.start();
  });
  after(async () => {
    vm?.dispose();
    await ca?.close();
    await cb?.close();
    await proxy?.down();
    await srv?.stop();
  });

  const uploadItem = () => vm.getSnapshot().items.find((i): i is ChatUploadItem => i.type === 'upload');
  const messageOf = (kind: string) => vm.getSnapshot().items.flatMap((i) => (i.type === 'message' && i.message.kind === kind ? [i] : []));

  it('an image shows at once from the local file, with progress, then as a sent message', async () => {
    const file = new Blob([new Uint8Array(await png(800, 600))], { type: 'image/png' });
    const item = vm.sendMedia({ file, kind: 'image', name: 'sky.png' }, 30 * 1024 * 1024);
    assert.ok(item);
    const shown = uploadItem();
    assert.equal(shown?.name, 'sky.png');
    assert.match(shown?.localUrl ?? '', /^blob:/, 'the picked file shows at once');
    await eventually(() => messageOf('image').some((m) => m.message.state === 'sent' || m.message.state === 'delivered'), 'the image is sent');
    assert.equal(uploadItem(), undefined, 'the upload item gave way to the message');
    const m = messageOf('image')[0]!;
    assert.equal(m.localUrl, shown!.localUrl, 'the sent message still shows the local file until the thumbnail loads');
    await eventually(async () => (await cb.getMessages(m.message.conv!)).messages.some((x) => x.id === m.message.id && (x.body as { placeholder?: string }).placeholder), 'the recipient has it with a placeholder');
  });

  it('a file over the limit is refused before any byte is sent', () => {
    const r = vm.sendMedia({ file: new Blob([new Uint8Array(2000)]), kind: 'file', name: 'big.bin' }, 1000);
    assert.equal(r, null);
    assert.match(vm.getSnapshot().error ?? '', /too large \(2\.0 KB; at most 1\.0 KB\)/);
    assert.equal(uploadItem(), undefined);
  });

  it('a network loss mid-upload leaves it waiting; the reconnect resumes it from the server’s offset', async () => {
    const data = randomBytes(3_000_000);
    vm.sendMedia({ file: new Blob([new Uint8Array(data)]), kind: 'file', name: 'big.bin' });
    await eventually(() => (uploadItem()?.sent ?? 0) >= 256 * 1024, 'some chunks sent');
    await proxy.down();
    await eventually(() => uploadItem()?.state === 'paused' && uploadItem()?.stalled === true, 'stalled, not failed', 15_000);
    const at = uploadItem()!.sent;
    assert.ok(at < data.length);
    await proxy.up();
    await eventually(() => messageOf('file').some((m) => m.message.state === 'sent' || m.message.state === 'delivered'), 'resumed and sent after the reconnect', 30_000);
    const m = messageOf('file').at(-1)!;
    assert.equal((m.message.body as { size: number }).size, data.length);
    assert.equal((m.message.body as { name: string }).name, 'big.bin');
  });

  it('a cancelled upload disappears and is deleted on the server', async () => {
    vm.sendMedia({ file: new Blob([new Uint8Array(randomBytes(2_000_000))]), kind: 'file', name: 'doomed.bin' });
    await eventually(() => (uploadItem()?.sent ?? 0) > 0, 'started');
    const before = messageOf('file').length;
    await vm.cancelUpload(uploadItem()!.key);
    assert.equal(uploadItem(), undefined);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(messageOf('file').length, before, 'no message was sent');
  });

  it('locations and cards are sent without an upload', async () => {
    await vm.sendLocation({ lat: 31.2304, lng: 121.4737, label: 'People’s Square' });
    await vm.sendCard({ card: 'user', id: b.userId, name: 'Bob' });
    await eventually(() => messageOf('location').length === 1 && messageOf('card').length === 1, 'both shown');
    const loc = messageOf('location')[0]!;
    assert.deepEqual(loc.message.body, { fallback: '[Location] People’s Square', lat: 31.2304, lng: 121.4737, label: 'People’s Square' });
    assert.equal(messageOf('card')[0]!.text, '[Contact card] Bob');
  });
});
