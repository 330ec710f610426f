/**
 * Media benchmark: upload throughput, thumbnails per second, server memory under 20 large
 * concurrent uploads. Public entry points only: the compiled server (`npm start`'s
 * dist/main.js) and @magpie/sdk's MediaApi (tus-js-client) as the clients.
 *
 *   npm run bench:media -- --size 100 --clients 20 --images 40
 *
 * 1. a fresh data dir; the real server as a child process (local disk storage, SQLite);
 * 2. single: one client uploads one --size MB file → MB/s;
 * 3. concurrent: --clients clients upload a --size MB file each at once → aggregate MB/s,
 *    and the server's peak RSS sampled every 50 ms (must stay bounded: uploads stream to
 *    disk, hashing and storing stream from disk);
 * 4. thumbnails: --images 2400×1600 JPEGs uploaded 4 at a time; each gets two WebP
 *    thumbnails and a ThumbHash before its upload completes → images/s.
 * Prints the machine's load average before and after: the machine is shared.
 */
import { fork } from 'node:child_process';
import { createReadStream, mkdtempSync, rmSync, openSync, writeSync, closeSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { MediaApi, type UploadSource } from '@magpie/sdk';
import { ensureBuilt, SERVER_MAIN, serverEnv, serverExecArgv } from './lib/server.ts';
import { rssOf } from './lib/proc.ts';

const { values: a } = parseArgs({
  options: {
    size: { type: 'string', default: '100' },
    clients: { type: 'string', default: '20' },
    images: { type: 'string', default: '40' },
    chunk: { type: 'string', default: '8' },
  },
});
const MB = 1024 * 1024;
const size = Number(a.size) * MB;
const clients = Number(a.clients);
const chunkSize = Number(a.chunk) * MB;

ensureBuilt();
const dataDir = mkdtempSync(join(tmpdir(), 'magpie-bench-media-'));
const files = mkdtempSync(join(tmpdir(), 'magpie-bench-files-'));
const proc = fork(SERVER_MAIN, [], {
  execArgv: serverExecArgv(),
  env: serverEnv({ MAGPIE_PORT: '0', MAGPIE_HOST: '127.0.0.1', MAGPIE_DATA_DIR: dataDir, MAGPIE_LOG_LEVEL: 'warn', MAGPIE_IP_RATE: '100000', MAGPIE_IP_BURST: '100000' }),
  stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
});
const base = await new Promise<string>((resolve) => proc.on('message', (m: { ready?: string }) => m.ready && resolve(m.ready.replace('localhost', '127.0.0.1'))));
const load0 = loadavg();

async function account(i: number): Promise<string> {
  const username = `bench${randomBytes(4).toString('hex')}${i}`;
  const post = (path: string, body: unknown) => fetch(base + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  await post('/api/register', { username, password: 'correct horse' });
  const r = (await (await post('/api/login', { username, password: 'correct horse', deviceId: 'bench', platform: 'other' })).json()) as { token: string };
  return r.token;
}

/** A file of random bytes, written in 8 MB pieces (never all in memory). */
function bigFile(name: string, bytes: number): string {
  const path = join(files, name);
  const fd = openSync(path, 'w');
  const piece = randomBytes(8 * MB);
  for (let done = 0; done < bytes; done += piece.length) writeSync(fd, piece, 0, Math.min(piece.length, bytes - done));
  closeSync(fd);
  return path;
}

const tokens = await Promise.all(Array.from({ length: Math.max(clients, 4) }, (_, i) => account(i)));
const apis = tokens.map((t) => new MediaApi({ baseUrl: base, token: () => t, chunkSize }));

// The same content twice would be stored once: every client gets its own bytes.
const paths = Array.from({ length: clients }, (_, i) => bigFile(`f${i}.bin`, size));

const upload = (i: number, path: string) => apis[i]!.upload(createReadStream(path) as unknown as UploadSource, 'file').done;

let t = performance.now();
await upload(0, paths[0]!);
const single = size / MB / ((performance.now() - t) / 1000);

// Fresh content for the concurrent round (the first file is stored already).
for (let i = 0; i < 1; i++) rmSync(paths[i]!), (paths[i] = bigFile(`g${i}.bin`, size));
const rss0 = rssOf(proc.pid!);
let peak = rss0;
const sampler = setInterval(() => (peak = Math.max(peak, rssOf(proc.pid!))), 50);
t = performance.now();
await Promise.all(paths.map((p, i) => upload(i, p)));
const concurrentSecs = (performance.now() - t) / 1000;
clearInterval(sampler);
const concurrent = (clients * size) / MB / concurrentSecs;

// Thumbnails: distinct photos-like JPEGs (noise, so they do not compress to nothing).
const images = Number(a.images);
const jpegs = await Promise.all(
  Array.from({ length: Math.min(images, 8) }, async (_, i) =>
    sharp(randomBytes(600 * 400 * 3), { raw: { width: 600, height: 400, channels: 3 } }).resize(2400, 1600).modulate({ hue: i * 40 }).jpeg({ quality: 85 }).toBuffer(),
  ),
);
t = performance.now();
let next = 0;
await Promise.all(
  Array.from({ length: 4 }, async (_, w) => {
    while (next < images) {
      const i = next++;
      // A distinct byte at the end keeps every upload distinct content (no dedup shortcut).
      const img = Buffer.concat([jpegs[i % jpegs.length]!, Buffer.from([i & 255, i >> 8])]);
      await apis[w]!.upload(img, 'image').done;
    }
  }),
);
const thumbsPerSec = images / ((performance.now() - t) / 1000);
const load1 = loadavg();

const out = {
  fileMB: size / MB,
  singleMBps: Math.round(single),
  concurrentClients: clients,
  concurrentMBps: Math.round(concurrent),
  concurrentSeconds: Math.round(concurrentSecs * 10) / 10,
  serverRssBeforeMB: Math.round(rss0 / MB),
  serverRssPeakMB: Math.round(peak / MB),
  imagesPerSec: Math.round(thumbsPerSec * 10) / 10,
  loadavgBefore: load0.map((x) => x.toFixed(1)).join(' '),
  loadavgAfter: load1.map((x) => x.toFixed(1)).join(' '),
};
console.log(JSON.stringify(out, null, 2));
proc.kill('SIGTERM');
await new Promise((r) => proc.on('exit', r));
rmSync(dataDir, { recursive: true, force: true });
rmSync(files, { recursive: true, force: true });

