/**
 * Message lifecycle (issue 18): how fast a recall reaches every online device, and what a
 * reaction costs in a 10 000-member (super) group.
 *
 *   npm run bench:lifecycle
 *   npm run bench:lifecycle -- --members 10000 --online 200 --recalls 20 --reactions 2000 --concurrency 20
 *   npm run bench:lifecycle -- --members 400 --online 50 --reactions 400 --coalesce-ms 0     # normal group, one event per reaction (before issue 18's fix)
 *   npm run bench:lifecycle -- --members 400 --online 50 --reactions 400 --coalesce-ms 500   # normal group, coalesced
 *
 * Setup as in bench/group-fanout.ts: users and sessions seeded through SqliteStore, the group
 * made through the REST API, the real (built) server as a child process on SQLite.
 * - Recall: the owner sends a message, then recalls it over REST; time from the recall request
 *   until the LAST of the online members' sockets got the `recall` event (p50/p99 over --recalls).
 * - Reactions: --reactions PUTs by distinct members (--concurrency at a time): requests/s, the
 *   server's CPU per reaction, reaction events each online member received (coalesced), and
 *   rows written per reaction: messages and inbox rows inserted, list entries updated (each a
 *   list-version bump of one member).
 * --coalesce-ms sets the server's reaction window (MAGPIE_REACTION_COALESCE_MS; 0: one event per
 *   reaction, as normal groups had before they were coalesced too).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import WebSocket from 'ws';
import Database from 'better-sqlite3';
import { Histogram } from './lib/hist.ts';
import { cpuMsOf } from './lib/proc.ts';
import { benchToken, benchUserId } from './lib/users.ts';
import { api, fmt, log, machineLoad, makeGroup, rowCounts, seedUsers, startBenchServer } from './lib/group-setup.ts';

const { values: a } = parseArgs({
  options: {
    members: { type: 'string', default: '10000' },
    online: { type: 'string', default: '200' },
    recalls: { type: 'string', default: '20' },
    reactions: { type: 'string', default: '2000' },
    concurrency: { type: 'string', default: '20' },
    'coalesce-ms': { type: 'string' },
  },
  strict: true,
});
const MEMBERS = Number(a.members);
const ONLINE = Math.min(Number(a.online), MEMBERS);
const RECALLS = Number(a.recalls);
const REACTIONS = Math.min(Number(a.reactions), MEMBERS - 1);
const CONC = Number(a.concurrency);
const COALESCE = a['coalesce-ms'];

/** List-entry updates so far: every entry write bumps its user's list version by one. */
function entryUpdates(dbPath: string): number {
  const db = new Database(dbPath, { readonly: true, fileMustExist: true });
  try {
    return Number((db.prepare('SELECT COALESCE(SUM(conv_version), 0) AS n FROM users').get() as { n: number }).n);
  } finally {
    db.close();
  }
}

interface Member {
  ws: WebSocket;
  frames: { kind: string; seq: number; at: number; body: any }[];
}

async function connect(wsUrl: string, token: string): Promise<Member> {
  const ws = new WebSocket(wsUrl);
  await new Promise<void>((res, rej) => {
    ws.once('open', () => res());
    ws.once('error', rej);
  });
  const m: Member = { ws, frames: [] };
  const welcomed = new Promise<void>((res) => {
    ws.on('message', (data) => {
      const parsed = JSON.parse(String(data));
      for (const f of Array.isArray(parsed) ? parsed : [parsed]) {
        if (f.type === 'reply' && f.id === 1) res();
        const msg = f.type === 'advanced' || f.type === 'msg' ? f.message : null;
        if (msg) m.frames.push({ kind: msg.kind, seq: msg.seq, at: performance.now(), body: msg.body });
      }
    });
  });
  ws.send(JSON.stringify({ type: 'hello', id: 1, versions: [1], token, inboxSeq: 0, caps: ['ack', 'batch'] }));
  await welcomed;
  // Heartbeats: the server drops a socket silent for 2 intervals (a slow run on a loaded machine lasts longer than that).
  const ping = setInterval(() => ws.readyState === WebSocket.OPEN && ws.send(JSON.stringify({ type: 'ping', interval: 20_000 })), 15_000);
  ws.on('close', () => clearInterval(ping));
  return m;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'magpie-bench-lifecycle-'));
  const nonce = randomBytes(4).toString('hex');
  const dbPath = join(dir, 'magpie.db');
  try {
    log(`seeding ${MEMBERS} users`);
    await seedUsers(dbPath, 0, MEMBERS, nonce);
    const srv = await startBenchServer({ dataDir: dir, env: { MAGPIE_GROUP_MAX_MEMBERS: String(MEMBERS + 10), ...(COALESCE !== undefined ? { MAGPIE_REACTION_COALESCE_MS: COALESCE } : {}) } });
    const owner = benchToken(nonce, 0);
    const conv = await makeGroup(srv.url, owner, 'lifecycle bench', Array.from({ length: MEMBERS - 1 }, (_, i) => benchUserId(i + 1)));
    log(`group ${conv} with ${MEMBERS} members; connecting ${ONLINE} members`);
    const online: Member[] = [];
    for (let i = 0; i < ONLINE; i += 50) online.push(...(await Promise.all(Array.from({ length: Math.min(50, ONLINE - i) }, (_, k) => connect(srv.wsUrl, benchToken(nonce, i + k))))));
    const load = await machineLoad();

    // Recall: time to the last online member.
    const reach = new Histogram();
    let missed = 0;
    for (let r = 0; r < RECALLS; r++) {
      const sent = await api(srv.url, 'POST', '/api/messages', { clientMsgId: `rc${r}`, conv, kind: 'text', body: { text: `recall me ${r}` } }, owner);
      const seq = sent.body.message.seq as number;
      await sleep(50);
      const t0 = performance.now();
      const res = await api(srv.url, 'POST', `/api/conversations/${encodeURIComponent(conv)}/messages/${seq}/recall`, undefined, owner);
      if (res.status !== 200) throw new Error(`recall: ${res.status} ${JSON.stringify(res.body)}`);
      // The recalling session itself gets the REST answer, not the live event: watch the others.
      const watchers = online.slice(1);
      for (;;) {
        const got = watchers.filter((m) => m.frames.some((f) => f.kind === 'recall' && f.body.seq === seq));
        if (got.length === watchers.length) {
          reach.record(Math.max(...watchers.map((m) => m.frames.find((f) => f.kind === 'recall' && f.body.seq === seq)!.at)) - t0);
          break;
        }
        if (performance.now() - t0 > 10_000) {
          // A live frame a member missed (a slow socket's frames may be dropped): a real client pulls on the next gap.
          missed += watchers.length - got.length;
          break;
        }
        await sleep(2);
      }
    }
    const rs = reach.summary();

    // Reactions.
    const target = (await api(srv.url, 'POST', '/api/messages', { clientMsgId: 'react-target', conv, kind: 'text', body: { text: 'react to me' } }, owner)).body.message.seq as number;
    await sleep(300);
    const rows0 = rowCounts(dbPath, conv);
    const entries0 = entryUpdates(dbPath);
    // Distinct events (by seq): the bench's sockets do not ACK, so normal-group `msg` frames may be re-sent.
    const reactionSeqs = (m: Member) => new Set(m.frames.filter((f) => f.kind === 'reaction').map((f) => f.seq));
    const framesBefore = online.map((m) => reactionSeqs(m).size);
    const cpu0 = cpuMsOf(srv.proc.pid!);
    const lat = new Histogram();
    const t0 = performance.now();
    let next = 1;
    await Promise.all(
      Array.from({ length: CONC }, async () => {
        while (next <= REACTIONS) {
          const i = next++;
          const s = performance.now();
          const r = await api(srv.url, 'PUT', `/api/conversations/${encodeURIComponent(conv)}/messages/${target}/reactions/${encodeURIComponent(i % 3 === 0 ? '❤️' : '👍')}`, undefined, benchToken(nonce, i));
          if (r.status !== 200) throw new Error(`react: ${r.status} ${JSON.stringify(r.body)}`);
          lat.record(performance.now() - s);
        }
      }),
    );
    const wall = performance.now() - t0;
    await sleep(1500); // the last coalescing window
    const cpu = cpuMsOf(srv.proc.pid!) - cpu0;
    const rows1 = rowCounts(dbPath, conv);
    const entries1 = entryUpdates(dbPath);
    const events = online.map((m, k) => reactionSeqs(m).size - framesBefore[k]!);
    const lastCounts = online[0]!.frames
      .filter((f) => f.kind === 'reaction')
      .sort((x, y) => x.seq - y.seq)
      .flatMap((f) => f.body.changes as { emoji: string; count: number }[]);
    const final = new Map<string, number>();
    for (const c of lastCounts) final.set(c.emoji, c.count);
    const ls = lat.summary();
    console.log(`\nMessage lifecycle bench — ${new Date().toISOString()}`);
    console.log(`machine: ${load}`);
    console.log(`group: ${MEMBERS} members (${MEMBERS >= 500 ? "super group, read diffusion: recall events reach online members as `advanced` notices they pull" : "normal group, write diffusion"}), ${ONLINE} online sockets, SQLite`);
    console.log(`recall → all ${ONLINE - 1} other online members: p50 ${fmt(rs.p50)} ms, p99 ${fmt(rs.p99)} ms, max ${fmt(rs.max)} ms (${RECALLS} recalls; ${missed} live deliveries missed, left to sync)`);
    console.log(`reactions: ${REACTIONS} by distinct members, ${CONC} concurrent: ${fmt(REACTIONS / (wall / 1000), 0)}/s, request p50 ${fmt(ls.p50)} ms p99 ${fmt(ls.p99)} ms`);
    console.log(`  server CPU per reaction: ${fmt(cpu / REACTIONS, 3)} ms (incl. HTTP and auth)`);
    console.log(`  reaction events per online member: ${Math.min(...events)}–${Math.max(...events)} for ${REACTIONS} reactions (coalesced); final counts seen live: ${JSON.stringify(Object.fromEntries(final))}`);
    console.log(`  reaction window: ${COALESCE ?? 'server default (500)'} ms`);
    console.log(`  messages rows per reaction: ${fmt((rows1.messages - rows0.messages) / REACTIONS, 4)}; inbox rows per reaction: ${fmt((rows1.inbox - rows0.inbox) / REACTIONS, 4)}; list entry updates per reaction: ${fmt((entries1 - entries0) / REACTIONS, 4)}`);
    for (const m of online) m.ws.close();
    await srv.stop();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
