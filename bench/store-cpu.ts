/**
 * Store CPU per message, through the server's public entry point (`openStore`): direct
 * messages between pairs of users and messages into a normal group, appended in batches the
 * way the send path batches them (one transaction per event-loop tick). Prints the process's
 * CPU time (user + system) per message; runs on SQLite (synchronous=normal: the fsync wait is
 * not CPU) unless --store is a postgres:// URL.
 *
 *   node --conditions=magpie-source --import tsx bench/store-cpu.ts [--messages 20000] [--batch 8] [--pairs 200] [--group 50] [--rounds 3]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir, loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { directConversationId, loadConfig, openStore, type AppendRequest, type Store } from '@magpie/server';

const { values: a } = parseArgs({
  options: {
    messages: { type: 'string', default: '20000' },
    batch: { type: 'string', default: '8' },
    pairs: { type: 'string', default: '200' },
    group: { type: 'string', default: '50' },
    rounds: { type: 'string', default: '3' },
    store: { type: 'string', default: 'sqlite' },
  },
});
const N = Number(a.messages);
const B = Number(a.batch);
const PAIRS = Number(a.pairs);
const G = Number(a.group);
const ROUNDS = Number(a.rounds);

let n = 0;
const uid = (i: number) => `u${i}`;

async function seed(store: Store, users: number): Promise<void> {
  const now = Date.now();
  for (let i = 0; i < users; i++) await store.createUser({ id: uid(i), username: uid(i), passwordHash: 'x', nickname: uid(i), createdAt: now });
}

function cpuUs(): number {
  const c = process.cpuUsage();
  return c.user + c.system;
}

async function run(store: Store, make: (i: number) => AppendRequest, count: number): Promise<number> {
  const start = cpuUs();
  for (let i = 0; i < count; i += B) {
    const batch: AppendRequest[] = [];
    for (let k = i; k < Math.min(count, i + B); k++) batch.push(make(k));
    const out = await store.appendMessages(batch);
    if (out.some((o) => !o.ok)) throw new Error(`append refused: ${JSON.stringify(out.find((o) => !o.ok))}`);
  }
  return (cpuUs() - start) / count;
}

const direct = (k: number): AppendRequest => {
  const p = k % PAIRS;
  const [s, r] = k % 2 === 0 ? [uid(2 * p), uid(2 * p + 1)] : [uid(2 * p + 1), uid(2 * p)];
  return { sender: s, clientMsgId: `c${++n}`, conv: directConversationId(s, r), directMembers: [s, r], kind: 'text', body: { text: `hello ${k}` }, time: Date.now(), id: `m${n}` };
};

const dir = mkdtempSync(join(tmpdir(), 'magpie-store-cpu-'));
const store = await openStore(loadConfig({}, { dataDir: dir, sqliteSynchronous: 'normal', store: a.store, ringCapacity: 5000 }));
try {
  await seed(store, 2 * PAIRS);
  const members = Array.from({ length: G - 1 }, (_, i) => uid(i + 1));
  const conv = `g:bench${Date.now()}`;
  const [created] = await store.appendMessages([
    {
      sender: uid(0),
      clientMsgId: `c${++n}`,
      conv,
      kind: 'system',
      body: {},
      time: Date.now(),
      id: `m${n}`,
      effect: { op: 'create', group: { name: 'bench', avatar: '', joinPolicy: 'open', inviteNeedsApproval: false, historyVisibility: 'since_join', maxMembers: 10_000, superThreshold: 10_000 }, members },
    },
  ]);
  if (!created?.ok) throw new Error('group creation refused');
  const group = (k: number): AppendRequest => ({ sender: uid(k % G), clientMsgId: `c${++n}`, conv, kind: 'text', body: { text: `hi ${k}` }, time: Date.now(), id: `m${n}` });
  await run(store, direct, Math.min(N, 2000)); // warm-up
  const d: number[] = [];
  const g: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    d.push(await run(store, direct, N));
    g.push(await run(store, group, Math.max(1, Math.floor(N / G))));
  }
  const med = (x: number[]) => [...x].sort((p, q) => p - q)[Math.floor(x.length / 2)]!;
  console.log(`store-cpu (${store.kind}): batch ${B}, load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  console.log(`  direct: ${med(d).toFixed(1)} µs CPU per message (rounds: ${d.map((x) => x.toFixed(1)).join(', ')})`);
  console.log(`  group of ${G}: ${med(g).toFixed(1)} µs CPU per message (rounds: ${g.map((x) => x.toFixed(1)).join(', ')})`);
} finally {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
}
