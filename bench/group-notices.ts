/**
 * Bytes pushed while a big group is built with everyone online (issue 23).
 *
 *   npm run bench:group-notices -- --members 5000
 *
 * 1. a fresh data dir with `--members` users and sessions (seeded, no scrypt);
 * 2. the real server; every user connects (hello with caps ack, batch) and ACKs what it gets;
 * 3. the owner creates the group with 999 others and invites the rest 1 000 at a time (the
 *    API's largest request), as bench/lib/group-setup.ts makeGroup does;
 * 4. then sends one text message and waits until every member's connection has received a
 *    frame after it (the notices must not delay the first messages);
 * 5. prints the WebSocket bytes received by all clients from the first request until things
 *    settle (no bytes for 2 s), per member, the build time, and how long the message took to
 *    reach the last member, with the load average.
 *
 * Options (defaults): --members 5000 --connect-concurrency 200 --quiet-wait 0
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import WebSocket from 'ws';
import { fmt, gitDescribe, log, makeGroup, mb, seedUsers, startBenchServer, waitQuiet } from './lib/group-setup.ts';
import { benchToken, benchUserId } from './lib/users.ts';

const { values: a } = parseArgs({
  options: {
    members: { type: 'string', default: '5000' },
    'connect-concurrency': { type: 'string', default: '200' },
    'quiet-wait': { type: 'string', default: '0' },
  },
  strict: true,
});
const N = Number(a.members);
if (!(N >= 2 && N <= 19_000)) throw new Error('--members must be 2..19000 (one process holds the sockets)');

interface Member {
  ws: WebSocket;
  bytes: number;
  lastFrameAt: number;
  inbox: number;
}

async function connect(wsUrl: string, nonce: string, i: number): Promise<Member> {
  const ws = new WebSocket(wsUrl, { perMessageDeflate: false, skipUTF8Validation: true });
  const m: Member = { ws, bytes: 0, lastFrameAt: 0, inbox: 0 };
  await new Promise<void>((res, rej) => {
    ws.once('open', () => ws.send(JSON.stringify({ type: 'hello', id: 0, versions: [1], token: benchToken(nonce, i), inboxSeq: 0, caps: ['ack', 'batch'], app: { platform: 'other', version: 'bench' } })));
    ws.once('error', rej);
    ws.once('message', () => res());
  });
  ws.on('message', (raw: Buffer) => {
    m.bytes += raw.length;
    m.lastFrameAt = performance.now();
    // ACK what arrives (cumulatively) so the server's retry queue does not resend it.
    const text = raw.toString();
    let max = 0;
    for (const hit of text.matchAll(/"inboxSeq":(\d+)/g)) max = Math.max(max, Number(hit[1]));
    if (max > m.inbox) {
      m.inbox = max;
      ws.send(`{"type":"ack","inboxSeq":${max}}`);
    }
  });
  return m;
}

async function main(): Promise<void> {
  await waitQuiet(Number(a['quiet-wait']));
  const nonce = randomBytes(4).toString('hex');
  const dataDir = mkdtempSync(join(tmpdir(), 'magpie-notices-'));
  log(`server code: ${gitDescribe()}; ${N} members, everyone online`);
  await seedUsers(join(dataDir, 'magpie.db'), 0, N, nonce);
  const server = await startBenchServer({ dataDir });
  try {
    const members: Member[] = new Array(N);
    let next = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: Number(a['connect-concurrency']) }, async () => {
        while (next < N) {
          const i = next++;
          members[i] = await connect(server.wsUrl, nonce, i);
        }
      }),
    );
    log(`${N} connected in ${fmt((performance.now() - t0) / 1000, 1)} s`);
    await sleep(1000);
    for (const m of members) m.bytes = 0;

    const tBuild = performance.now();
    const others = Array.from({ length: N - 1 }, (_, i) => benchUserId(i + 1));
    const conv = await makeGroup(server.url, benchToken(nonce, 0), 'notices', others);
    const buildMs = performance.now() - tBuild;
    // The first message after the build: how long until every member has had a frame after it.
    const tSend = performance.now();
    members[0]!.ws.send(JSON.stringify({ type: 'send', id: 1, clientMsgId: `n-${nonce}`, conv, kind: 'text', body: { text: 'first' } }));
    const deadline = performance.now() + 60_000;
    while (members.some((m, i) => i > 0 && m.lastFrameAt < tSend) && performance.now() < deadline) await sleep(20);
    const reachedMs = Math.max(...members.slice(1).map((m) => m.lastFrameAt)) - tSend;
    const missing = members.filter((m, i) => i > 0 && m.lastFrameAt < tSend).length;
    // Settle: no bytes anywhere for 2 s.
    let total = -1;
    for (;;) {
      const now = members.reduce((s, m) => s + m.bytes, 0);
      if (now === total) break;
      total = now;
      await sleep(2000);
    }
    const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
    console.log('');
    console.log(`=== group notices: ${N}-member group built by create + invites of 1 000, everyone online ===`);
    console.log(`bytes pushed      ${mb(total)} to all members (${fmt(total / N / 1024, 1)} KB per member)`);
    console.log(`build time        ${fmt(buildMs / 1000, 2)} s (create + ${Math.ceil((N - 1000) / 1000)} invites)`);
    console.log(`first message     reached the last member ${fmt(reachedMs, 0)} ms after it was sent${missing ? ` (${missing} members got nothing within 60 s)` : ''}`);
    console.log(`load average      ${load}${Number(load.split(' ')[0]) > 1.5 ? ' — a loaded machine' : ''}`);
    for (const m of members) m.ws.terminate();
  } finally {
    await server.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

await main();
process.exit(0);
