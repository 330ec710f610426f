/**
 * Group fan-out at scale, against the real server as a child process (harness.ts):
 *
 * 1. A 10 000-member super group with 2 000 members online: several senders send N
 *    messages; every online member gets every message exactly once as an `advanced` frame
 *    (the sender's own connection excepted: it has the reply), a sample pulls `history` and
 *    finds the seq range gap-free, and storage per message does not grow with the members:
 *    messages +N, inbox +0, entries +0 (row counts read from the server's SQLite file).
 * 2. A group that grows past MAGPIE_SUPER_GROUP_THRESHOLD (20 here) while several members
 *    keep sending: every member reads history 1..S gap-free, and live delivery loses and
 *    duplicates nothing — messages up to the switch arrive as `msg` (inbox pointers),
 *    later ones as `advanced`.
 *
 * Seeding: users and session tokens are written through the store before the server starts
 * (no scrypt per user); the groups themselves are made through the REST API (create + invite
 * in chunks of 1000), so membership goes through the real code path.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import Database from 'better-sqlite3';
import WebSocket from 'ws';
import { openSqliteStore } from '../src/store/open.ts';
import { hashToken } from '../src/util/ids.ts';
import { api, startServer, sleep, RawClient, type ServerProcess } from './harness.ts';

const FAST_ENV = {
  // 2 000 connections from 127.0.0.1 in a few seconds, and senders faster than a human.
  MAGPIE_IP_RATE: '100000',
  MAGPIE_IP_BURST: '100000',
  MAGPIE_MAX_CONNECTIONS_PER_IP: '0',
  MAGPIE_USER_RATE: '1000',
  MAGPIE_USER_BURST: '1000',
  // The clients of this test do not ping; the test is shorter than this.
  MAGPIE_HEARTBEAT_MS: '600000',
};

const userId = (i: number) => `sg${String(i).padStart(6, '0')}`;
const tokenOf = (nonce: string, i: number) => `sgt-${nonce}-${i}`;

/** Users 0..n-1 with one session each, straight into the store (the server is not running yet). */
async function seedUsers(dataDir: string, n: number, nonce: string): Promise<void> {
  const store = await openSqliteStore({ path: join(dataDir, 'magpie.db'), ringCapacity: 5000, synchronous: 'normal' });
  const now = Date.now();
  for (let i = 0; i < n; i++) {
    const id = userId(i);
    await store.createUser({ id, username: id, passwordHash: 'seeded-no-login', nickname: id, createdAt: now });
    await store.createSession({ tokenHash: hashToken(tokenOf(nonce, i)), userId: id, deviceId: 'd1', platform: 'other', appVersion: 'test', createdAt: now, expiresAt: now + 24 * 3600 * 1000 });
  }
  await store.close();
}

interface Live {
  kind: 'msg' | 'advanced';
  conv: string;
  seq: number;
  at: number;
}

/** A light protocol client (2 000 of them share this process): keeps only what the test checks. */
class Lite {
  readonly live: Live[] = [];
  welcome: any;
  closeCode: number | undefined;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (r: any) => void; reject: (e: Error) => void }>();

  private constructor(readonly ws: WebSocket, readonly user: string) {
    ws.on('message', (data) => {
      const at = performance.now();
      const parsed = JSON.parse(data.toString());
      for (const f of Array.isArray(parsed) ? parsed : [parsed]) this.onFrame(f, at);
    });
    ws.on('close', (code) => {
      this.closeCode = code;
      for (const p of this.pending.values()) p.reject(new Error(`closed ${code}`));
      this.pending.clear();
    });
  }

  static async connect(wsUrl: string, user: string, token: string): Promise<Lite> {
    const ws = new WebSocket(wsUrl, { perMessageDeflate: false });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    const c = new Lite(ws, user);
    c.welcome = await c.request({ type: 'hello', versions: [1], token, inboxSeq: 0, caps: ['batch'] });
    return c;
  }

  private onFrame(f: any, at: number): void {
    if (f.type === 'reply' || f.type === 'error') {
      const p = this.pending.get(f.id);
      if (!p) return;
      this.pending.delete(f.id);
      if (f.type === 'reply') p.resolve(f.result);
      else p.reject(Object.assign(new Error(`${f.code}: ${f.message}`), { frame: f }));
    } else if (f.type === 'advanced') {
      this.live.push({ kind: 'advanced', conv: f.conv, seq: f.seq, at });
    } else if (f.type === 'msg') {
      this.live.push({ kind: 'msg', conv: f.message.conv, seq: f.message.seq, at });
    }
  }

  request(frame: Record<string, unknown>, timeoutMs = 20_000): Promise<any> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`no reply to ${String(frame.type)} in ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, {
        resolve: (r) => {
          clearTimeout(t);
          resolve(r);
        },
        reject: (e) => {
          clearTimeout(t);
          reject(e);
        },
      });
      this.ws.send(JSON.stringify({ ...frame, id }));
    });
  }

  seqs(conv: string, kind?: Live['kind']): number[] {
    return this.live.filter((l) => l.conv === conv && (kind === undefined || l.kind === kind)).map((l) => l.seq);
  }

  close(): void {
    this.ws.terminate();
  }
}

/** Connect many clients with bounded concurrency. */
async function connectAll(wsUrl: string, nonce: string, indices: number[], concurrency = 100): Promise<Lite[]> {
  const out: Lite[] = new Array(indices.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < indices.length) {
        const k = next++;
        out[k] = await Lite.connect(wsUrl, userId(indices[k]!), tokenOf(nonce, indices[k]!));
      }
    }),
  );
  return out;
}

/** Make a group through the REST API: create with up to 999 others, then invite the rest in chunks of 1000. */
async function makeGroup(base: string, ownerToken: string, name: string, others: string[]): Promise<string> {
  const created = await api(base, 'POST', '/api/groups', { name, members: others.slice(0, 999), joinPolicy: 'approval' }, ownerToken);
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const conv: string = created.body.group.conv;
  for (let k = 999; k < others.length; k += 1000) {
    const r = await api(base, 'POST', `/api/groups/${encodeURIComponent(conv)}/invite`, { users: others.slice(k, k + 1000) }, ownerToken);
    assert.equal(r.status, 200, JSON.stringify(r.body));
  }
  return conv;
}

/** Read the whole readable history after `after`, oldest first. */
async function historyAfter(c: Lite, conv: string, after: number): Promise<any[]> {
  const out: any[] = [];
  let cursor = after;
  for (;;) {
    const page = await c.request({ type: 'history', conv, after: cursor, limit: 200 });
    out.push(...page.messages);
    if (page.messages.length === 0 || !page.more) return out;
    cursor = page.messages.at(-1).seq;
  }
}

function rowCounts(dataDir: string, conv: string): { messages: number; inbox: number; entries: number; members: number } {
  const db = new Database(join(dataDir, 'magpie.db'), { readonly: true, fileMustExist: true });
  try {
    const n = (sql: string, ...args: unknown[]) => (db.prepare(sql).get(...args) as { n: number }).n;
    return {
      messages: n('SELECT COUNT(*) AS n FROM messages'),
      inbox: n('SELECT COUNT(*) AS n FROM inbox'),
      entries: n('SELECT COUNT(*) AS n FROM entries'),
      members: n('SELECT COUNT(*) AS n FROM members WHERE conv_id = ? AND left_seq IS NULL', conv),
    };
  } finally {
    db.close();
  }
}

/** Wait until `pred` holds or the time is up (the assertions that follow then say what is missing). */
async function waitUntil(pred: () => boolean, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!pred() && Date.now() < until) await sleep(50);
}

function pct(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] ?? NaN;
}

describe('super group: 10 000 members, 2 000 online', () => {
  const MEMBERS = 10_000;
  const ONLINE = 2_000;
  const SENDERS = 5;
  const PER_SENDER = 10;
  const N = SENDERS * PER_SENDER;
  const nonce = Math.random().toString(36).slice(2, 10);
  let dataDir: string;
  let server: ServerProcess;
  let clients: Lite[] = [];

  before(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'magpie-supergroup-'));
    // Users 0..MEMBERS-1 are members (0 owns the group); user MEMBERS is an outsider.
    await seedUsers(dataDir, MEMBERS + 1, nonce);
    server = await startServer({ dataDir, env: FAST_ENV });
  });

  after(async () => {
    for (const c of clients) c.close();
    await server?.stop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it('every online member gets every message exactly once; messages +N, inbox +0, entries +0', async (t) => {
    const ownerToken = tokenOf(nonce, 0);
    const t0 = Date.now();
    const others = Array.from({ length: MEMBERS - 1 }, (_, i) => userId(i + 1));
    const conv = await makeGroup(server.url, ownerToken, 'ten thousand', others);
    const info = await api(server.url, 'GET', `/api/groups/${encodeURIComponent(conv)}`, undefined, ownerToken);
    assert.equal(info.body.group.kind, 'super');
    assert.equal(info.body.group.memberCount, MEMBERS);
    t.diagnostic(`group of ${MEMBERS} made through the REST API (create + ${Math.ceil((MEMBERS - 1000) / 1000)} invites) in ${Date.now() - t0} ms`);

    // Online: members 0..ONLINE-1 (spread would not matter: the index is per connection).
    const t1 = Date.now();
    clients = await connectAll(server.wsUrl, nonce, Array.from({ length: ONLINE }, (_, i) => i));
    t.diagnostic(`${ONLINE} members connected in ${Date.now() - t1} ms`);
    const startSeq: number = info.body.group.lastSeq;
    for (const c of clients) assert.deepEqual(c.welcome.supers, [{ conv, lastSeq: startSeq }], `${c.user} follows the super group from its welcome`);

    // One client checks every frame it gets against the protocol schema.
    const { client: checker } = await RawClient.connect(server.wsUrl, tokenOf(nonce, ONLINE));

    const before = rowCounts(server.dataDir, conv);

    // Several senders (spread over the online members), each sending PER_SENDER messages, interleaved.
    const senders = Array.from({ length: SENDERS }, (_, k) => clients[Math.floor((k * ONLINE) / SENDERS) + 7]!);
    const sentAt = new Map<number, number>();
    const ownSeqs = new Map<Lite, Set<number>>();
    const t2 = Date.now();
    await Promise.all(
      senders.map(async (s, k) => {
        const own = new Set<number>();
        ownSeqs.set(s, own);
        for (let j = 0; j < PER_SENDER; j++) {
          const at = performance.now();
          const r = await s.request({ type: 'send', clientMsgId: `sg-${k}-${j}`, conv, kind: 'text', body: { text: `message ${j} from sender ${k}` } });
          sentAt.set(r.message.seq, at);
          own.add(r.message.seq);
          await sleep(5 + k);
        }
      }),
    );
    const expectedAll = Array.from({ length: N }, (_, i) => startSeq + i + 1);
    assert.deepEqual([...sentAt.keys()].sort((x, y) => x - y), expectedAll, 'the N sends took seqs startSeq+1..startSeq+N');

    const expectedFor = (c: Lite) => expectedAll.filter((s) => !ownSeqs.get(c)?.has(s));
    await waitUntil(
      () => clients.every((c) => c.seqs(conv).length >= expectedFor(c).length),
      30_000,
    );
    await sleep(300); // let any duplicate arrive
    const sendMs = Date.now() - t2;

    let deliveries = 0;
    for (const c of clients) {
      assert.equal(c.closeCode, undefined, `${c.user} was not cut off`);
      const got = c.seqs(conv);
      assert.deepEqual(c.seqs(conv, 'msg'), [], `${c.user}: no inbox pointers in a super group`);
      assert.deepEqual([...got].sort((x, y) => x - y), expectedFor(c), `${c.user}: every message exactly once`);
      deliveries += got.length;
    }
    assert.deepEqual(checker.schemaErrors, []);
    assert.deepEqual(
      checker.frames.filter((f) => f.type === 'advanced').map((f) => f.seq),
      expectedAll,
      'a member connected with the reference client gets every seq in order',
    );

    // A sample pulls the seq range: gap-free, exactly the N messages.
    for (const c of clients.filter((_, i) => i % 100 === 3)) {
      const msgs = await historyAfter(c, conv, startSeq);
      assert.deepEqual(
        msgs.map((m) => m.seq),
        expectedAll,
        `${c.user}: history after ${startSeq} is gap-free`,
      );
    }

    // An offline member connects later: its welcome says where the group is; history fills the rest.
    const late = await Lite.connect(server.wsUrl, userId(MEMBERS - 1), tokenOf(nonce, MEMBERS - 1));
    assert.deepEqual(late.welcome.supers, [{ conv, lastSeq: startSeq + N }]);
    assert.deepEqual((await historyAfter(late, conv, startSeq)).map((m) => m.seq), expectedAll);
    late.close();
    checker.close();

    const afterRows = rowCounts(server.dataDir, conv);
    t.diagnostic(`rows before ${N} messages: ${JSON.stringify(before)}`);
    t.diagnostic(`rows after  ${N} messages: ${JSON.stringify(afterRows)}`);
    assert.equal(afterRows.messages - before.messages, N, 'one message row per message');
    assert.equal(afterRows.inbox - before.inbox, 0, 'no inbox pointer per member');
    assert.equal(afterRows.entries - before.entries, 0, 'no entry row per member');
    assert.equal(afterRows.members, MEMBERS);

    // Time from send to the last online member's delivery (same process, one clock).
    const lastDelivery = new Map<number, number>();
    for (const c of clients) for (const l of c.live) if (l.conv === conv) lastDelivery.set(l.seq, Math.max(lastDelivery.get(l.seq) ?? 0, l.at));
    const lat = [...sentAt].map(([seq, at]) => lastDelivery.get(seq)! - at).sort((x, y) => x - y);
    t.diagnostic(
      `${deliveries} deliveries of ${N} messages to ${ONLINE} online members in ${sendMs} ms; send → last online member: ` +
        `p50 ${pct(lat, 0.5).toFixed(1)} ms, p99 ${pct(lat, 0.99).toFixed(1)} ms, max ${lat.at(-1)!.toFixed(1)} ms (test process shares the CPU with the server)`,
    );
  });
});

describe('a group that grows past the super-group threshold', () => {
  const THRESHOLD = 20;
  const USERS = 34; // 0 owns the group; 1..9 are members from the start; 10..33 join in chunks
  const nonce = Math.random().toString(36).slice(2, 10);
  let dataDir: string;
  let server: ServerProcess;
  let clients: Lite[] = [];

  before(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'magpie-switch-'));
    await seedUsers(dataDir, USERS, nonce);
    server = await startServer({ dataDir, env: { ...FAST_ENV, MAGPIE_SUPER_GROUP_THRESHOLD: String(THRESHOLD) } });
  });

  after(async () => {
    for (const c of clients) c.close();
    await server?.stop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it('switches over under concurrent sends without losing or duplicating a message', async (t) => {
    clients = await connectAll(server.wsUrl, nonce, Array.from({ length: USERS }, (_, i) => i), 20);
    const ownerToken = tokenOf(nonce, 0);
    const created = await api(server.url, 'POST', '/api/groups', { name: 'growing', members: Array.from({ length: 9 }, (_, i) => userId(i + 1)) }, ownerToken);
    assert.equal(created.status, 201);
    const conv: string = created.body.group.conv;
    assert.equal(created.body.group.kind, 'group');

    // Senders keep sending (no pause between a reply and the next send) while the group grows.
    const senders = [clients[1]!, clients[2]!, clients[3]!, clients[4]!];
    const own = new Map<Lite, Set<number>>(senders.map((s) => [s, new Set<number>()]));
    let stop = false;
    const sending = senders.map(async (s, k) => {
      for (let j = 0; !stop; j++) {
        const r = await s.request({ type: 'send', clientMsgId: `sw-${k}-${j}`, conv, kind: 'text', body: { text: `${k}/${j}` } });
        own.get(s)!.add(r.message.seq);
        if (j % 8 === 7) await sleep(1);
      }
    });
    // Joins: 10 → 14 → 18 → 22 (passes 20: switch) → 26 → 30 → 34, each while messages flow.
    const joinedAt = new Map<string, number>(); // user → seq of the notice that added them
    for (let first = 10; first < USERS; first += 4) {
      await sleep(40);
      const users = Array.from({ length: Math.min(4, USERS - first) }, (_, i) => userId(first + i));
      const r = await api(server.url, 'POST', `/api/groups/${encodeURIComponent(conv)}/invite`, { users }, ownerToken);
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.deepEqual(r.body.added, users);
    }
    await sleep(60);
    stop = true;
    await Promise.all(sending);

    const info = await api(server.url, 'GET', `/api/groups/${encodeURIComponent(conv)}`, undefined, ownerToken);
    assert.equal(info.body.group.kind, 'super');
    assert.equal(info.body.group.memberCount, USERS);
    const S: number = info.body.group.lastSeq;

    // History 1..S, gap-free, as read by the owner (a member from the start).
    const history = await historyAfter(clients[0]!, conv, 0);
    assert.deepEqual(history.map((m) => m.seq), Array.from({ length: S }, (_, i) => i + 1), 'history 1..S is gap-free');
    for (const m of history) {
      if (m.kind !== 'system' || m.body.event !== 'members_invited') continue;
      // The notice names the first 3 of `count`; the whole list is fetched on demand (issue 23).
      const listed = await api(server.url, 'GET', `/api/groups/${encodeURIComponent(conv)}/changes/${m.seq}/users?limit=1000`, undefined, ownerToken);
      assert.equal(listed.body.users.length, m.body.data.count);
      for (const u of listed.body.users as string[]) joinedAt.set(u, m.seq);
    }
    // The notice that took the member count past the threshold: the last seq with inbox pointers.
    let count = 10;
    let switchSeq = 0;
    for (const m of history) {
      if (m.kind === 'system' && m.body.event === 'members_invited') count += m.body.data.count as number;
      if (count > THRESHOLD) {
        switchSeq = m.seq;
        break;
      }
    }
    assert.ok(switchSeq > 0);
    const messagesBefore = history.filter((m) => m.seq < switchSeq && m.kind === 'text').length;
    const messagesAfter = history.filter((m) => m.seq > switchSeq && m.kind === 'text').length;
    t.diagnostic(`S = ${S}; switch at seq ${switchSeq}; ${messagesBefore} text messages before it, ${messagesAfter} after`);
    assert.ok(messagesBefore > 0 && messagesAfter > 0, 'messages flowed on both sides of the switch');

    // Every member, live: each seq from its join notice to S exactly once (its own sends excepted),
    // via `msg` up to the switch and via `advanced` after it.
    await waitUntil(
      () => clients.every((c) => c.seqs(conv).length >= S - (joinedAt.get(c.user) ?? 1) + 1 - (own.get(c)?.size ?? 0)),
      10_000,
    );
    await sleep(200);
    for (const c of clients) {
      const from = joinedAt.get(c.user) ?? 1;
      const expected = Array.from({ length: S - from + 1 }, (_, i) => from + i).filter((s) => !own.get(c)?.has(s));
      const got = c.seqs(conv);
      assert.deepEqual([...got].sort((x, y) => x - y), expected, `${c.user} (joined at ${from}): every seq exactly once`);
      const viaMsg = c.seqs(conv, 'msg');
      const viaAdvanced = c.seqs(conv, 'advanced');
      assert.ok(viaMsg.every((s) => s <= switchSeq), `${c.user}: inbox pointers only up to the switch`);
      assert.ok(viaAdvanced.every((s) => s > switchSeq), `${c.user}: advanced frames only after the switch`);
    }
    // A member who joined after the switch reads the same history from where it joined.
    const lateJoiner = clients[USERS - 1]!;
    const from = joinedAt.get(lateJoiner.user)!;
    assert.ok(from > switchSeq);
    assert.deepEqual((await historyAfter(lateJoiner, conv, from - 1)).map((m) => m.seq), Array.from({ length: S - from + 1 }, (_, i) => from + i));
  });
});

describe('super-group fan-out: coalesced writes, slow consumer cut off', () => {
  const nonce = Math.random().toString(36).slice(2, 10);
  let dataDir: string;
  let server: ServerProcess;
  let clients: Lite[] = [];

  before(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'magpie-fanout-'));
    await seedUsers(dataDir, 4, nonce);
    // Threshold 2: a group of 4 is a super group from its creation.
    server = await startServer({ dataDir, env: { ...FAST_ENV, MAGPIE_SUPER_GROUP_THRESHOLD: '2' } });
  });

  after(async () => {
    for (const c of clients) c.close();
    await server?.stop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it('messages committed together reach a batch client as one write; a reader that stops reading is closed 4501, the others get everything', async (t) => {
    clients = await connectAll(server.wsUrl, nonce, [0, 1, 2, 3], 4);
    const [sender, fast, slow, counter] = clients as [Lite, Lite, Lite, Lite];
    const created = await api(server.url, 'POST', '/api/groups', { name: 'fan-out', members: [userId(1), userId(2), userId(3)] }, tokenOf(nonce, 0));
    assert.equal(created.body.group.kind, 'super');
    const conv: string = created.body.group.conv;
    await waitUntil(() => fast.seqs(conv).length >= 1, 5000); // the creation notice

    // Coalescing: 20 sends pipelined in one go are group-committed together and published in
    // the same turn, so the `batch` client gets them in fewer WebSocket messages than frames.
    let wsMessages = 0;
    counter.ws.on('message', () => wsMessages++);
    const replies = await Promise.all(Array.from({ length: 20 }, (_, j) => sender.request({ type: 'send', clientMsgId: `co-${j}`, conv, kind: 'text', body: { text: `m${j}` } })));
    const last = Math.max(...replies.map((r) => r.message.seq));
    await waitUntil(() => counter.seqs(conv).includes(last), 5000);
    assert.equal(counter.seqs(conv).filter((s) => s > 1).length, 20);
    const coalesced = wsMessages;
    assert.ok(coalesced < 20, `20 frames arrived in ${coalesced} WebSocket messages (coalesced)`);

    // Slow consumer: `slow` stops reading its socket; the server's buffered output for it passes
    // the 4 MiB cap (after the kernel buffers fill) and it is closed with slow_consumer (4501).
    const slowSocket = (slow.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket;
    slowSocket.pause();
    const text = 'x'.repeat(15_000);
    const start = Math.max(...fast.seqs(conv));
    let sent = 0;
    const closedSlow = async () => /magpie_closes_total\{reason="slow_consumer"\} [1-9]/.test(await (await fetch(`${server.url}/metrics`)).text());
    while (sent < 3000 && !(sent % 100 === 0 && sent > 0 && (await closedSlow()))) {
      await Promise.all(Array.from({ length: 50 }, (_, j) => sender.request({ type: 'send', clientMsgId: `big-${sent + j}`, conv, kind: 'text', body: { text } })));
      sent += 50;
    }
    assert.ok(await closedSlow(), `the server closed the slow reader with slow_consumer after ${sent} messages of 15 KB`);
    t.diagnostic(`20 pipelined sends arrived in ${coalesced} WebSocket message(s); the paused reader was closed (slow_consumer) within ${sent} messages of 15 KB`);
    // Reading again, it finds its connection ended (the close frame sat behind the capped
    // output, so the socket may be gone before the frame: 4501 or 1006).
    slowSocket.resume();
    await waitUntil(() => slow.closeCode !== undefined, 10_000);
    assert.ok(slow.closeCode === 4501 || slow.closeCode === 1006, `slow reader closed with ${slow.closeCode}`);
    // The readers that keep up got every message, in order, once.
    await waitUntil(() => fast.seqs(conv).filter((s) => s > start).length >= sent, 15_000);
    assert.deepEqual(fast.seqs(conv).filter((s) => s > start), Array.from({ length: sent }, (_, i) => start + 1 + i));
    assert.equal(fast.closeCode, undefined);
  });
});
