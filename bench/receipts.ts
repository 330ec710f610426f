/**
 * Read receipts benchmark (issue 19), in process, on the real receipt store and service:
 *
 *   npm run bench:receipts -- [--store sqlite|postgres] [--readers 10000] [--super 100000]
 *
 * 1. Storage: one member snapshot + one bitmap per message (the 52im design) against naive
 *    per-message receiver and read lists, for 1 024 messages (the write-up's case) and per
 *    1 000 messages, at 640 and 10 000 members. Logical bytes (what the rows hold) and the
 *    SQLite file growth.
 * 2. Read reports on one hot group message: R members report "read up to S" at once; the
 *    service stores each report, then sets the bits in batches (one conditional update per
 *    message per batch). Reports/s from the first report to the last bit written.
 * 3. Offline-push targets of a 100 000-member super group: messages with 3 @mentions and a
 *    reply, 50 members at level `all`; targets computed per second (never scanning members).
 */
import { mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir, loadavg, cpus } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { Message } from '@magpie/protocol';
import { GroupPush, MemoryBus, ReceiptService, SqlReceiptStore, emptyBitmap, loadConfig, openDatabase, withBits, type SqlEngine, type Store } from '@magpie/server';

const { values: a } = parseArgs({
  options: {
    store: { type: 'string', default: 'sqlite' },
    readers: { type: 'string', default: '10000' },
    super: { type: 'string', default: '100000' },
    seconds: { type: 'string', default: '3' },
  },
});

const dir = mkdtempSync(join(tmpdir(), 'magpie-bench-receipts-'));
async function openDb(name: string): Promise<SqlEngine> {
  if (a.store === 'postgres') {
    const store = process.env.MAGPIE_BENCH_PG ?? 'postgres://postgres@127.0.0.1:5432/test';
    return openDatabase(loadConfig({}, { dataDir: dir, store, pg: { pools: { shared: 8 } } }), { schema: `bench_${name}_${process.pid}` });
  }
  mkdirSync(join(dir, name), { recursive: true });
  return openDatabase(loadConfig({}, { dataDir: join(dir, name), store: 'sqlite', sqliteCheckpointMs: 0 }));
}
const ids = (n: number) => Array.from({ length: n }, (_, i) => `u${i.toString(36).padStart(19, '0')}`); // 20-char ids like the server's
const fileSize = (name: string) => ['', '-wal'].reduce((s, x) => s + (() => { try { return statSync(join(dir, name, `magpie.db${x}`)).size; } catch { return 0; } })(), 0);

console.log(`# receipts benchmark, store ${a.store}, ${cpus().length} cores, load average ${loadavg().map((x) => x.toFixed(1)).join(' ')}`);

// 1. Storage.
for (const members of [640, 10_000]) {
  for (const messages of [1024, 1000]) {
    const name = `storage_${members}_${messages}`;
    const db = await openDb(name);
    const store = new SqlReceiptStore(db);
    const before = a.store === 'sqlite' ? fileSize(name) : 0;
    const m = ids(members);
    await store.putSnapshot({ conv: 'g:bench', epoch: 0, members: m }, Date.now());
    const rows = Array.from({ length: messages }, (_, i) => ({ conv: 'g:bench', seq: i + 1, sender: m[i % members]!, epoch: 0, bitmap: withBits(emptyBitmap(members), [i % members]).bitmap, readCount: 1 }));
    for (let i = 0; i < rows.length; i += 500) await store.track(rows.slice(i, i + 500));
    // Half the members read everything.
    await store.setRead(rows.map((r) => ({ conv: r.conv, seq: r.seq, indices: Array.from({ length: members / 2 }, (_, k) => k) })));
    await db.exec(a.store === 'sqlite' ? 'PRAGMA wal_checkpoint(TRUNCATE)' : 'SELECT 1');
    const bitmaps = messages * Math.ceil(members / 8);
    const snapshot = JSON.stringify(m).length;
    const naiveInt = messages * members * 4 * 2; // receiver list + read list, 4-byte ids (the write-up's 2.5–5 MB)
    const naiveIntOne = messages * members * 4;
    const naiveText = messages * members * 20 * 2;
    const grown = a.store === 'sqlite' ? fileSize(name) - before : NaN;
    console.log(
      `storage members=${members} messages=${messages}: bitmaps ${(bitmaps / 1024).toFixed(1)} KiB + one snapshot ${(snapshot / 1024).toFixed(1)} KiB` +
        ` | naive lists (4-byte ids) ${(naiveIntOne / 1048576).toFixed(2)}–${(naiveInt / 1048576).toFixed(2)} MiB, (20-char ids) ${(naiveText / 1048576).toFixed(1)} MiB` +
        (a.store === 'sqlite' ? ` | sqlite file ${(grown / 1024).toFixed(0)} KiB` : ''),
    );
    await db.close();
  }
}

// 2. Read reports on one hot message.
{
  const readers = Number(a.readers);
  const db = await openDb('hot');
  const rstore = new SqlReceiptStore(db);
  const m = ids(readers + 1);
  const conv = 'g:hot';
  const fakeStore = {
    getConversation: async () => ({ id: conv, kind: 'group', lastSeq: 1, createdAt: 0, memberEpoch: 0 }),
    members: async () => m,
  } as unknown as Store;
  const bus = new MemoryBus();
  let notices = 0;
  bus.subscribe((ev) => {
    if (ev.type === 'deliver' && ev.frame.startsWith('{"type":"read.counts"')) notices++;
  });
  const service = new ReceiptService(fakeStore, rstore, bus, { groupsDefault: true, maxGroupMembers: 100_000, flushMs: 50, presenceDefault: 'friends', notifyDefaults: { group: 'all', super: 'mentions' } });
  const msg = { id: 'm1', conv, seq: 1, sender: m[0]!, kind: 'text', body: { text: 'x' }, time: 0, clientMsgId: 'c1' } as Message;
  service.onCommitted(msg, [{ userId: m[0]!, inboxSeq: 1 }] as never);
  await service.drain();
  const t0 = performance.now();
  await Promise.all(m.slice(1).map((u) => service.onRead(u, conv, 1)));
  const stored = performance.now();
  await service.drain();
  const t1 = performance.now();
  const [c] = await rstore.counts(conv, [1]);
  console.log(
    `hot message: ${readers} read reports in ${(t1 - t0).toFixed(0)} ms = ${Math.round(readers / ((t1 - t0) / 1000))} reports/s` +
      ` (reports stored ${(stored - t0).toFixed(0)} ms; ${service.stats.flushes - 1} batches, ${service.stats.marks} bitmap updates, ${notices} read.counts notices to the sender); read=${c!.read}/${c!.total}`,
  );
  await db.close();
}

// 3. Push targets for a 100 000-member super group.
{
  const size = Number(a.super);
  const db = await openDb('push');
  const rstore = new SqlReceiptStore(db);
  const conv = 'g:super';
  const m = ids(size);
  for (let i = 0; i < 50; i++) await rstore.setNotify(m[(i * 997) % m.length]!, conv, 'all');
  for (let i = 0; i < 50; i++) await rstore.setNotify(m[(i * 991 + 5) % m.length]!, conv, 'none');
  const fakeStore = {
    isMember: async () => true,
    getMember: async () => ({ role: 'member' }),
    readHistory: async (_c: string, q: { after: number }) => [{ seq: q.after + 1, sender: m[(q.after * 31) % size]! }],
    listMembers: async () => {
      throw new Error('super-group targets must not scan members');
    },
  } as unknown as Store;
  let pushed = 0;
  const gp = new GroupPush(fakeStore, rstore, { onCommitted: () => {}, pushTo: (_m, u) => void (pushed += u.length) }, () => undefined, { defaults: { group: 'all', super: 'mentions' }, pageSize: 1000 });
  const end = performance.now() + Number(a.seconds) * 1000;
  let n = 0;
  const t0 = performance.now();
  while (performance.now() < end) {
    const seq = n + 10;
    const msg = { id: `m${n}`, conv, seq, sender: m[n % size]!, kind: 'text', body: { text: 'x' }, time: 0, clientMsgId: `c${n}` } as Message;
    const t = await gp.superTargets(msg, { mentions: [m[(n * 7) % size]!, m[(n * 13) % size]!, m[(n * 17) % size]!], replyTo: seq - 1 });
    pushed += t.direct.length;
    n++;
  }
  const secs = (performance.now() - t0) / 1000;
  console.log(`super group of ${size}: push targets for ${n} messages (3 mentions + a reply + 50 members at level all) in ${secs.toFixed(2)} s = ${Math.round(n / secs)} messages/s, ${Math.round(pushed / n)} targets each, members scanned: 0`);
  await db.close();
}
rmSync(dir, { recursive: true, force: true });
console.log(`# load average after: ${loadavg().map((x) => x.toFixed(1)).join(' ')}`);
