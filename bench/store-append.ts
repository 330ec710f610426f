/**
 * Micro-benchmark of the store's write path without network: Store.appendMessages (SQLite)
 * (1:1 messages between pairs of U users) and recordAcks, in batches like the group commit.
 *
 *   node --import tsx bench/store-append.ts [--users 10000] [--messages 50000] [--batch 50] [--sync full|normal]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { directConversationId, loadConfig, openStore, type AppendRequest } from '@magpie/server';
import { ensureBuilt } from './lib/server.ts';
import { benchUserId, partnerOf } from './lib/users.ts';

const { values: a } = parseArgs({
  options: {
    users: { type: 'string', default: '10000' },
    messages: { type: 'string', default: '50000' },
    batch: { type: 'string', default: '50' },
    sync: { type: 'string', default: 'full' },
  },
});
const U = Number(a.users);
const N = Number(a.messages);
const B = Number(a.batch);
const dir = mkdtempSync(join(tmpdir(), 'magpie-store-bench-'));
ensureBuilt();
const store = await openStore(loadConfig({}, { dataDir: dir, ringCapacity: 5000, sqliteSynchronous: a.sync === 'normal' ? 'normal' : 'full' }));
const now = Date.now();
for (let i = 0; i < U; i++) await store.createUser({ id: benchUserId(i), username: benchUserId(i), passwordHash: 'x', nickname: 'x', createdAt: now });

const inbox = new Map<string, number>();
let sent = 0;
let appendMs = 0;
let ackMs = 0;
let getUserMs = 0;
const t0 = performance.now();
while (sent < N) {
  const batch: AppendRequest[] = [];
  for (let j = 0; j < B && sent < N; j++, sent++) {
    const s = sent % U;
    const from = benchUserId(s);
    const to = benchUserId(partnerOf(s));
    const g = performance.now();
    await store.getUser(to);
    getUserMs += performance.now() - g;
    batch.push({ sender: from, clientMsgId: `c${sent}`, conv: directConversationId(from, to), directMembers: [from, to], kind: 'text', body: { text: `${performance.now()}` }, time: Date.now(), id: `m${sent}` });
  }
  const t = performance.now();
  const out = await store.appendMessages(batch);
  appendMs += performance.now() - t;
  const acks = [];
  for (const o of out) if (o.ok) for (const p of o.pointers) if (p.userId !== o.message.sender) inbox.set(p.userId, p.inboxSeq);
  for (const [userId, inboxSeq] of inbox) acks.push({ userId, deviceId: 'bench', inboxSeq });
  inbox.clear();
  const ta = performance.now();
  await store.recordAcks(acks);
  ackMs += performance.now() - ta;
}
const total = performance.now() - t0;
console.log(`${N} messages, ${U} users, batch ${B}, synchronous=${a.sync}:`);
console.log(`  appendMessages ${((appendMs * 1000) / N).toFixed(1)} µs/msg, recordAcks ${((ackMs * 1000) / N).toFixed(1)} µs/msg, getUser ${((getUserMs * 1000) / N).toFixed(1)} µs/msg; ${(N / (total / 1000)).toFixed(0)} msg/s overall`);
await store.close();
rmSync(dir, { recursive: true, force: true });
