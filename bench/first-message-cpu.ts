/**
 * What the first message of a 1:1 conversation costs the SQLite writer thread against a plain
 * append, in-process (issue 23: the open loop's first seconds). The first message of a pair
 * creates its conversation and its two member rows inside the same group commit as the plain
 * appends (store/sql-store.ts appendTx, step 1); this measures what that adds.
 *
 *   node --import tsx bench/first-message-cpu.ts [--root DIR] [--users 60000] [--batch 2000]
 *
 * Half the pairs get their conversation (and three more rounds of messages) as warm-up; then
 * batches of B first messages into fresh pairs of the other half alternate with batches of B
 * plain messages into B distinct existing pairs. Every batch is followed by the deferred search
 * indexer's catch-up (both kinds index the same number of documents). Per-thread CPU
 * (utime+stime from /proc/self/task, 10 ms ticks) is summed per kind of batch.
 * Then the event loop's reads for a first message (the recipient's user row, the pair's relation),
 * once per user and pair of the measured half, on the main thread.
 * --root: a checkout whose compiled server to load (as in bench/writer-thread-cpu.ts).
 */
import { rmSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { benchUid, openWriterBench, threadTicks } from './lib/writer-bench.ts';

const { values: a } = parseArgs({
  options: {
    root: { type: 'string', default: new URL('..', import.meta.url).pathname },
    batch: { type: 'string', default: '2000' },
    users: { type: 'string', default: '60000' },
  },
});
const root = a.root!;
const B = Number(a.batch);
const U = Number(a.users);
const P = U / 2;
const { server, store, dir } = await openWriterBench(root, 'magpie-first-cpu-', U);
const uid = benchUid;

const ticks = threadTicks;

let n = 0;
/** One batch: a message from each pair in `pairs` (alternating direction). */
async function send(pairs: number[]): Promise<void> {
  const batch = [];
  for (const p of pairs) {
    const s = 2 * p;
    const [from, to] = n % 2 === 0 ? [uid(s), uid(s + 1)] : [uid(s + 1), uid(s)];
    const body = { text: `hello ${n} some text of a typical chat message` };
    batch.push({ sender: from, clientMsgId: `c${String(n).padStart(9, '0')}`, conv: `d:${uid(s)}:${uid(s + 1)}`, directMembers: [from, to], kind: 'text', body, bodyJson: JSON.stringify(body), time: Date.now(), id: `m${String(n).padStart(9, '0')}` });
    n++;
  }
  const out = (await store.appendMessages(batch)) as { ok: boolean }[];
  if (!out.every((o) => o.ok)) throw new Error('an append failed');
  if (typeof store.syncSearchIndex === 'function') await store.syncSearchIndex();
}

const shuffled = (xs: number[]) => {
  const v = xs.slice();
  for (let i = v.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [v[i], v[j]] = [v[j]!, v[i]!];
  }
  return v;
};
const half = Math.floor(P / 2);
const warm = Array.from({ length: half }, (_, i) => i);
const fresh = shuffled(Array.from({ length: P - half }, (_, i) => half + i));
// Warm-up: the first half's conversations, then three rounds of plain messages to them. Its
// rounds are reported too: the first is first messages on a cold thread (JIT, caches, a small
// database), the later ones show how fast the thread warms up.
const main = String(process.pid);
const warmup: string[] = [];
for (let round = 0; round < 4; round++) {
  const order = shuffled(warm);
  for (let i = 0; i < order.length; i += B) {
    const t0 = ticks();
    await send(order.slice(i, i + B));
    const t1 = ticks();
    if (i < 4 * B || i + B >= order.length) {
      const w = [...t1].filter(([t]) => t !== main).map(([t, v]) => v - (t0.get(t) ?? 0)).sort((x, y) => y - x)[0]!;
      warmup.push(`${round === 0 ? 'first' : 'plain'} r${round + 1} b${i / B + 1} ${((w * 10_000) / Math.min(B, order.length - i)).toFixed(0)}`);
    }
  }
}

const cpu = { first: new Map<string, number>(), plain: new Map<string, number>() };
const msgs = { first: 0, plain: 0 };
const add = (into: Map<string, number>, t0: Map<string, number>, t1: Map<string, number>) => {
  for (const [t, v] of t1) into.set(t, (into.get(t) ?? 0) + v - (t0.get(t) ?? 0));
};
for (let i = 0; i + B <= fresh.length; i += B) {
  // Alternate which kind goes first, so a drift of the machine does not favour one.
  const kinds: ('first' | 'plain')[] = (i / B) % 2 === 0 ? ['first', 'plain'] : ['plain', 'first'];
  for (const kind of kinds) {
    const pairs = kind === 'first' ? fresh.slice(i, i + B) : shuffled(warm).slice(0, B);
    const t0 = ticks();
    await send(pairs);
    add(cpu[kind], t0, ticks());
    msgs[kind] += pairs.length;
  }
}
const writerTid = [...cpu.plain].filter(([t]) => t !== main).sort((x, y) => y[1] - x[1])[0]![0];
const us = (kind: 'first' | 'plain', pick: (t: string) => boolean) => ([...cpu[kind]].filter(([t]) => pick(t)).reduce((x, [, v]) => x + v, 0) * 10_000) / msgs[kind];
console.log(`${root}: ${U} users, batches of ${B}; measured ${msgs.first} first messages and ${msgs.plain} plain ones`);
console.log(`warm-up, the busiest non-main thread's µs/msg per batch (round r, batch b; 10 ms ticks): ${warmup.join(', ')}`);
for (const kind of ['first', 'plain'] as const) {
  console.log(`${kind.padEnd(5)}  writer thread ${us(kind, (t) => t === writerTid).toFixed(1)} µs/msg, event loop ${us(kind, (t) => t === main).toFixed(1)}, all threads ${us(kind, () => true).toFixed(1)}`);
}

// The event loop's share of a first message (services/message-service.ts, social/direct-gate.ts):
// a sender's first direct message reads the recipient's user row (MessagingService.userExists,
// then cached) and the pair's relation (SocialStore.directCheck, then cached by the DirectGate).
// The same reads here, one per user and one per pair of the measured half, on this thread.
const social = new server.SqlSocialStore(store.db);
const mainTicks = () => ticks().get(main)!;
let t = mainTicks();
// getUser on the first user of each pair, userExists (if any) on the second: distinct rows, both read once.
for (const p of fresh) await store.getUser(uid(2 * p));
const userUs = ((mainTicks() - t) * 10_000) / fresh.length;
// Since this branch: the send path asks only whether the row exists (batched per turn); older builds have no userExists.
let existsUs = NaN;
if (typeof store.userExists === 'function') {
  t = mainTicks();
  // As the send path calls it: one per message, many in a turn (they join one batched read).
  await Promise.all(fresh.map((p) => store.userExists(uid(2 * p + 1))));
  existsUs = ((mainTicks() - t) * 10_000) / fresh.length;
}
t = mainTicks();
await Promise.all(fresh.map((p) => social.directCheck(uid(2 * p), uid(2 * p + 1))));
const pairUs = ((mainTicks() - t) * 10_000) / fresh.length;
const user = Number.isFinite(existsUs) ? existsUs : userUs;
console.log(`event loop, once per user: the user row read (getUser) ${userUs.toFixed(1)} µs, the batched existence read (userExists) ${existsUs.toFixed(1)} µs; once per pair: the relation read ${pairUs.toFixed(1)} µs (${fresh.length} pairs)`);
console.log(`=> a pair's first two messages add ~${(2 * user + pairUs).toFixed(0)} µs on the event loop, ~${((2 * user + pairUs) / 2).toFixed(0)} µs per first message`);
await store.close();
rmSync(dir, { recursive: true, force: true });
