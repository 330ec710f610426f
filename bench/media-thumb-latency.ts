/**
 * Time from "send" of a picture to the recipient having its thumbnail to draw, through the
 * public entry points: the compiled server, two @magpie/sdk MagpieClients over WebSocket and
 * the SDK's MediaApi — the same calls the web client makes (sendMedia: tus upload with
 * processing → send; the recipient's `message` event → signed URL of the `small` thumbnail →
 * GET of its bytes, decoded by sharp here as the browser would decode them).
 *
 *   npm run bench:media-latency -- --n 30 --size 2400x1600
 *
 * Each picture is a distinct JPEG (the server makes two WebP thumbnails and a ThumbHash before
 * the upload completes). Prints median/p90/max and the split: upload+processing, send→delivery,
 * thumbnail fetch. Prints the machine's load average: the machine is shared.
 */
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import WebSocket from 'ws';
import { MagpieClient, MediaApi, MemoryStore, type LocalMessage, type WebSocketLike } from '@magpie/sdk';
import { ensureBuilt, SERVER_MAIN, serverEnv, serverExecArgv } from './lib/server.ts';

const { values: a } = parseArgs({ options: { n: { type: 'string', default: '30' }, size: { type: 'string', default: '2400x1600' } } });
const n = Number(a.n);
const [w, h] = a.size!.split('x').map(Number) as [number, number];

ensureBuilt();
const dataDir = mkdtempSync(join(tmpdir(), 'magpie-bench-thumb-'));
const proc = fork(SERVER_MAIN, [], {
  execArgv: serverExecArgv(),
  env: serverEnv({ MAGPIE_PORT: '0', MAGPIE_HOST: '127.0.0.1', MAGPIE_DATA_DIR: dataDir, MAGPIE_LOG_LEVEL: 'warn', MAGPIE_IP_RATE: '100000', MAGPIE_IP_BURST: '100000', MAGPIE_USER_RATE: '100000', MAGPIE_USER_BURST: '100000' }),
  stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
});
const base = await new Promise<string>((resolve) => proc.on('message', (m: { ready?: string }) => m.ready && resolve(m.ready.replace('localhost', '127.0.0.1'))));
const load0 = loadavg();

const post = (path: string, body: unknown, token?: string) =>
  fetch(base + path, { method: 'POST', headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) }, body: body === undefined ? undefined : JSON.stringify(body) });
async function account(name: string): Promise<{ token: string; userId: string }> {
  const username = `${name}_${Date.now().toString(36)}`;
  await post('/api/register', { username, password: 'correct horse' });
  return (await (await post('/api/login', { username, password: 'correct horse', deviceId: 'bench', platform: 'desktop' })).json()) as { token: string; userId: string };
}
const ann = await account('ann');
const bob = await account('bob');
await post('/api/friends/requests', { to: bob.userId }, ann.token);
await post(`/api/friends/requests/${ann.userId}/accept`, undefined, bob.token);
const client = (token: string) =>
  new MagpieClient({ baseUrl: base, token, store: new MemoryStore(), webSocketFactory: (url) => new WebSocket(url) as unknown as WebSocketLike, app: { platform: 'desktop', version: 'bench' } });
const ca = client(ann.token);
const cb = client(bob.token);
await Promise.all([ca.connect(), cb.connect()]);
const media = new MediaApi({ baseUrl: base, token: () => ann.token, send: (i) => ca.send(i) });
const bobMedia = new MediaApi({ baseUrl: base, token: () => bob.token });

const arrived = new Map<string, (m: LocalMessage) => void>();
cb.on('message', (m) => {
  const up = (m.body as { upload?: string } | null)?.upload;
  if (m.kind === 'image' && up) arrived.get(up)?.(m);
});

const total: number[] = [];
const parts = { upload: [] as number[], deliver: [] as number[], thumb: [] as number[] };
for (let i = 0; i < n; i++) {
  const jpeg = await sharp({ create: { width: w, height: h, channels: 3, background: { r: (i * 37) % 256, g: (i * 91) % 256, b: 120 } } })
    .composite([{ input: Buffer.from(`<svg width="${w}" height="${h}"><circle cx="${w / 2}" cy="${h / 2}" r="${h / 3}" fill="#f5c542"/><text x="40" y="200" font-size="160">${i}</text></svg>`), top: 0, left: 0 }])
    .jpeg({ quality: 85 })
    .toBuffer();
  const t0 = performance.now();
  const pending = media.sendMedia({ to: bob.userId }, { kind: 'image', file: jpeg, filename: `p${i}.jpg` });
  const info = await pending.upload.done;
  const t1 = performance.now();
  const msg = await new Promise<LocalMessage>((resolve) => arrived.set(info.id, resolve));
  const t2 = performance.now();
  const { url } = await bobMedia.url(info.id, 'small');
  const bytes = Buffer.from(await (await fetch(url)).arrayBuffer());
  const meta = await sharp(bytes).raw().toBuffer({ resolveWithObject: true });
  const t3 = performance.now();
  if (!msg || meta.info.width !== 320) throw new Error(`unexpected thumbnail ${meta.info.width}`);
  parts.upload.push(t1 - t0);
  parts.deliver.push(t2 - t1);
  parts.thumb.push(t3 - t2);
  total.push(t3 - t0);
  await pending.message;
}
const q = (xs: number[], p: number) => [...xs].sort((x, y) => x - y)[Math.min(xs.length - 1, Math.floor(p * xs.length))]!;
const f = (x: number) => `${x.toFixed(0)} ms`;
console.log(`media thumbnail latency: ${n} pictures ${w}×${h} JPEG (${a.size}), one after another`);
console.log(`  send → recipient has the decoded thumbnail: median ${f(q(total, 0.5))}, p90 ${f(q(total, 0.9))}, max ${f(Math.max(...total))}`);
console.log(`  of which upload + processing (2 WebP thumbnails + ThumbHash): median ${f(q(parts.upload, 0.5))}`);
console.log(`           send → message event at the recipient: median ${f(q(parts.deliver, 0.5))}`);
console.log(`           signed URL + GET + decode of the 320 px thumbnail: median ${f(q(parts.thumb, 0.5))}`);
console.log(`  load average: ${load0.map((x) => x.toFixed(1)).join(' ')} → ${loadavg().map((x) => x.toFixed(1)).join(' ')}`);
await ca.close();
await cb.close();
proc.kill('SIGTERM');
rmSync(dataDir, { recursive: true, force: true });
