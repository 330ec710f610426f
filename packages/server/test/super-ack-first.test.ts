/**
 * Issue 23: a super-group sender's ACK is not queued behind the fan-out of its own message.
 *
 * The ACK (the `send` reply) means "durably stored"; it used to be written only after the
 * live `advanced` frame had been written to every online follower (the sender's connection
 * joined the flush list after the thousands of followers its message had just put there:
 * ACK p50 85–94 ms against 14–22 ms for the first member in bench:groups --scenario super).
 *
 * Deterministic, in process: the server-side sockets of every connection are wrapped, so the
 * order in which the server hands bytes to them is recorded exactly; the sender's ACK must be
 * written before the first follower's frame of that message. Every follower still gets the
 * message exactly once, and the order holds for several messages in a row.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { loadConfig } from '../src/config/config.ts';
import { createMagpieServer, type MagpieServer } from '../src/app.ts';
import { hashToken } from '../src/util/ids.ts';
import type { Connection } from '../src/gateway/connection.ts';

const MEMBERS = 300;
const userId = (i: number) => `sa${String(i).padStart(5, '0')}`;
const tokenOf = (i: number) => `sat-token-${i}`;

interface Client {
  ws: WebSocket;
  user: string;
  /** `advanced` seqs received, in order. */
  advanced: number[];
  replies: Map<number, any>;
}

async function connect(wsUrl: string, i: number): Promise<Client> {
  const ws = new WebSocket(wsUrl, { perMessageDeflate: false });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  const c: Client = { ws, user: userId(i), advanced: [], replies: new Map() };
  ws.on('message', (data) => {
    const parsed = JSON.parse(data.toString());
    for (const f of Array.isArray(parsed) ? parsed : [parsed]) {
      if (f.type === 'reply' || f.type === 'error') c.replies.set(f.id, f);
      else if (f.type === 'advanced') c.advanced.push(f.seq);
    }
  });
  ws.send(JSON.stringify({ type: 'hello', id: 1, versions: [1], token: tokenOf(i), inboxSeq: 0, caps: ['batch'] }));
  await until(() => c.replies.has(1), 10_000);
  assert.equal(c.replies.get(1)?.type, 'reply', JSON.stringify(c.replies.get(1)));
  return c;
}

async function until(pred: () => boolean, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('super group: the sender ACK is written before the fan-out of its message', () => {
  let dir: string;
  let server: MagpieServer;
  let clients: Client[] = [];
  let conv: string;
  /** Every write the server made to a client socket, in order: [user, text of the write]. */
  const writes: [string, string][] = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'magpie-super-ack-'));
    server = await createMagpieServer(
      loadConfig({}, { dataDir: dir, logLevel: 'silent', heartbeatMs: 600_000, groups: { superThreshold: 50 }, limits: { ipRate: 100_000, ipBurst: 100_000, maxConnectionsPerIp: 0, userRate: 1000, userBurst: 1000 } } as never),
    );
    const url = await server.start();
    const now = Date.now();
    for (let i = 0; i < MEMBERS; i++) {
      await server.store.createUser({ id: userId(i), username: userId(i), passwordHash: 'seeded-no-login', nickname: userId(i), createdAt: now });
      await server.store.createSession({ tokenHash: hashToken(tokenOf(i)), userId: userId(i), deviceId: 'd1', platform: 'other', appVersion: 'test', createdAt: now, expiresAt: now + 3600_000 });
    }
    const created = await server.http.inject({
      method: 'POST',
      url: '/api/groups',
      headers: { authorization: `Bearer ${tokenOf(0)}` },
      payload: { name: 'ack first', members: Array.from({ length: MEMBERS - 1 }, (_, i) => userId(i + 1)) },
    });
    assert.equal(created.statusCode, 201, created.body);
    conv = created.json().group.conv;
    const info = await server.http.inject({ method: 'GET', url: `/api/groups/${encodeURIComponent(conv)}`, headers: { authorization: `Bearer ${tokenOf(0)}` } });
    assert.equal(info.json().group?.kind ?? info.json().kind, 'super', info.body);
    const wsUrl = `${url.replace('http', 'ws').replace('localhost', '127.0.0.1')}/ws`;
    clients = [];
    for (let k = 0; k < MEMBERS; k += 50) clients.push(...(await Promise.all(Array.from({ length: Math.min(50, MEMBERS - k) }, (_, j) => connect(wsUrl, k + j)))));
    // Wrap each server-side socket's libuv handle, where both the connection's direct writes
    // and the stream's writes arrive: record what is written to it, in order over all sockets.
    for (const conn of server.gateway.registry.all() as Iterable<Connection>) {
      const user = conn.principal!.userId;
      type Handle = Record<'writeBuffer' | 'writeUtf8String' | 'writeLatin1String' | 'writev', (...a: unknown[]) => number>;
      const handle = (conn as unknown as { raw: { _handle: Handle } }).raw._handle;
      const textOf = (chunk: unknown): string => (Buffer.isBuffer(chunk) ? chunk.toString('latin1') : typeof chunk === 'string' ? chunk : '');
      for (const name of ['writeBuffer', 'writeUtf8String', 'writeLatin1String', 'writev'] as const) {
        const write = handle[name].bind(handle);
        handle[name] = (...a: unknown[]) => {
          const text = name === 'writev' ? (a[1] as unknown[]).map(textOf).join('') : textOf(a[1]);
          if (text.length > 0) writes.push([user, text]);
          return write(...a);
        };
      }
    }
  });

  after(async () => {
    for (const c of clients) c.ws.terminate();
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('ACK first, then every follower exactly once, for several messages in a row', async () => {
    const sender = clients[0]!;
    const followers = clients.slice(1);
    for (let n = 0; n < 3; n++) {
      writes.length = 0;
      const id = 100 + n;
      sender.ws.send(JSON.stringify({ type: 'send', id, clientMsgId: `ack-first-${n}`, conv, kind: 'text', body: { text: `hello ${n}` } }));
      await until(() => sender.replies.has(id), 10_000);
      const reply = sender.replies.get(id);
      assert.equal(reply.type, 'reply', JSON.stringify(reply));
      const seq: number = reply.result.message.seq;
      assert.equal(reply.result.inboxSeq, 0, 'read diffusion: no inbox pointer');
      await until(() => followers.every((c) => c.advanced.includes(seq)), 10_000);
      const ackAt = writes.findIndex(([u, t]) => u === sender.user && t.includes(`"type":"reply","id":${id}`));
      const firstFollower = writes.findIndex(([u, t]) => u !== sender.user && t.includes(`"type":"advanced"`) && t.includes(`"seq":${seq},`));
      assert.ok(ackAt >= 0, 'the ACK was written');
      assert.ok(firstFollower >= 0, 'the followers were written to');
      assert.ok(ackAt < firstFollower, `message ${n}: the ACK was write #${ackAt}, after the fan-out's first write (#${firstFollower}) of ${writes.length}`);
      // The fan-out itself is unchanged: each follower once, the sender never.
      for (const c of followers) assert.equal(c.advanced.filter((s) => s === seq).length, 1, `${c.user} got seq ${seq} once`);
      assert.equal(sender.advanced.includes(seq), false, 'the sender gets its reply, not an advanced frame');
    }
    for (const c of followers) {
      const mine = c.advanced;
      assert.deepEqual(mine, [...mine].sort((x, y) => x - y), `${c.user}: in order`);
    }
  });
});
