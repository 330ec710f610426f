#!/usr/bin/env node
/**
 * CPU of the send path in one process, without sockets: MessagingService over SQLite
 * (synchronous=normal), the journal tracer (default settings, no OTLP), the social
 * direct-message policy (blocks, strangers) as a single node runs it, an in-process Bus whose
 * consumer journals each delivery and its ACK as the gateway does. 100 pairs, 32 sends in
 * flight, N measured messages after a 1 000-message warm-up; prints the process CPU per message.
 * It loads a tree's compiled server, so two trees (e.g. bench/alternate.mjs's cached ones) can
 * be compared alternately in the same window:
 *
 *   node bench/send-path-cpu.mjs /tmp/magpie-alternate/<sha> 3000
 *
 * Also usable under `valgrind --tool=callgrind` (instruction counts do not depend on load).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { importFromTree } from './lib/tree.mjs';
const [tree, nArg = '3000'] = process.argv.slice(2);
if (!tree) throw new Error('usage: node bench/send-path-cpu.mjs TREE [N]');
const server = await importFromTree(tree, '@magpie/server');
const { MemoryBus, MessageTracer, MessagingService, createMetrics, loadConfig, openStore } = server;
const N = Number(nArg), PAIRS = 100, INFLIGHT = 32;
const dir = mkdtempSync(join(tmpdir(), 'magpie-ir-'));
const store = await openStore(loadConfig({}, { dataDir: dir, sqliteSynchronous: 'normal', ringCapacity: 5000 }));
const now = Date.now();
for (let i = 0; i < 2 * PAIRS; i++) await store.createUser({ id: `u${i}`, username: `u${i}`, passwordHash: 'x', nickname: `u${i}`, createdAt: now });
const principal = (i) => ({ userId: `u${i}`, deviceId: 'd', platform: 'web', tokenHash: `t${i}`, appVersion: '1' });
const bus = new MemoryBus();
const tracer = await MessageTracer.create('bench', { journalSize: 10_000, sampleRatio: 1, serviceName: 'x' });
let delivered = 0;
bus.subscribe((ev) => {
  if (ev.type !== 'deliver' || ev.inboxSeq === undefined) return;
  delivered++;
  tracer.delivered(ev.msgId, ev.userId, 'd', ev.inboxSeq, true, ev.tp);
  queueMicrotask(() => tracer.ended(ev.msgId, ev.userId, 'd', ev.inboxSeq, 'ack', 0));
});
const messaging = new MessagingService(store, bus, createMetrics(), { ringCapacity: 5000, syncGapThreshold: 2000, syncPageSize: 200, maxMessageBytes: 16_384, commitDelayMs: 0, maxBatch: 100, tracer });
// The direct-message policy as the server installs it (social/index.ts). A tree that does not
// export the social service gets the policy it had then: one SocialStore.directCheck read per send.
if (server.SocialService && server.SqlSocialStore) {
  const socialStore = new server.SqlSocialStore(store.db, { changeLogCapacity: 100 });
  await socialStore.migrate();
  const social = new server.SocialService(socialStore, bus, { strangerMessages: 'allow', maxExtraBytes: 1000, cacheDirectPolicy: true });
  messaging.addDirectPolicy(social.directPolicy);
} else if (store.db?.getBatched) {
  const DIRECT = `SELECT
  EXISTS (SELECT 1 FROM social_blocks WHERE user_id = ? AND peer_id = ?) AS by_recipient,
  EXISTS (SELECT 1 FROM social_blocks WHERE user_id = ? AND peer_id = ?) AS by_sender,
  EXISTS (SELECT 1 FROM social_friends WHERE user_id = ? AND peer_id = ?) AS friends`;
  messaging.addDirectPolicy(async (sender, recipient) => {
    const r = await store.db.getBatched(DIRECT, [recipient, sender, sender, recipient, sender, recipient]);
    if (r.by_recipient || r.by_sender) throw new Error('blocked');
  });
}
// What the gateway calls: `sendWithJson` where the tree has it (the reply reuses the fan-out's JSON), else `send`.
const send = (messaging.sendWithJson ?? messaging.send).bind(messaging);
let seq = 0;
async function round(count) {
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const k = next++;
      const p = k % PAIRS;
      const [s, r] = k % 2 === 0 ? [2 * p, 2 * p + 1] : [2 * p + 1, 2 * p];
      await send(principal(s), { clientMsgId: `c${++seq}`, to: `u${r}`, kind: 'text', body: { text: `hello ${k}` } });
    }
  };
  await Promise.all(Array.from({ length: INFLIGHT }, worker));
}
await round(1000);
const c0 = process.cpuUsage();
await round(N);
const c = process.cpuUsage(c0);
console.log(`${tree} N=${N} cpu µs/msg ${((c.user + c.system) / N).toFixed(1)} delivered ${delivered}`);
await store.close?.();
rmSync(dir, { recursive: true, force: true });
process.exit(0);
