import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import postgres from 'postgres';
import { randomBytes } from 'node:crypto';
import { PG_URL, pgUnavailable } from './pg-test-helpers.ts';
import { NATS_URL, natsUnavailable } from './nats-test-helpers.ts';
import { startServer, registerAndLogin, RawClient, api, sleep, type ServerProcess, type Account } from './harness.ts';

/**
 * Issue 15: correctness of a cluster on PostgreSQL + NATS (two node processes, one
 * database, the shared NATS). Needs PostgreSQL and NATS; skips without them.
 */
const skip = (await pgUnavailable()) ?? (await natsUnavailable());

describe('cluster correctness (PostgreSQL + NATS, two nodes)', { skip: skip ?? false }, () => {
  const dbName = `magpie_i15_${randomBytes(4).toString('hex')}`;
  const admin = postgres(PG_URL, { max: 1, onnotice: () => {} });
  let n1: ServerProcess;
  let n2: ServerProcess;
  before(async () => {
    await admin.unsafe(`CREATE DATABASE "${dbName}"`);
    const url = new URL(PG_URL);
    url.pathname = `/${dbName}`;
    const env = {
      MAGPIE_STORE: url.toString(),
      MAGPIE_NATS: NATS_URL,
      MAGPIE_USER_RATE: '5000',
      MAGPIE_USER_BURST: '5000',
      MAGPIE_SUPER_GROUP_THRESHOLD: '3',
    };
    n1 = await startServer({ env });
    n2 = await startServer({ env });
  });
  after(async () => {
    await Promise.all([n1?.stop(), n2?.stop()]);
    await admin.unsafe(`DROP DATABASE IF EXISTS "${dbName}" WITH (FORCE)`);
    await admin.end({ timeout: 2 });
  });

  const clients: RawClient[] = [];
  async function connect(node: ServerProcess, who: Account): Promise<RawClient> {
    const { client } = await RawClient.connect(node.wsUrl, who.token);
    clients.push(client);
    return client;
  }
  after(() => {
    assert.deepEqual(clients.flatMap((c) => c.schemaErrors), []);
    for (const c of clients) c.close();
  });

  it('pipelined direct messages of one sender are stored in the order they were sent (block/stranger checks finish in any order)', async () => {
    const a = await registerAndLogin(n1.url);
    const b = await registerAndLogin(n2.url);
    const ca = await connect(n1, a);
    const cb = await connect(n2, b);
    const total = 200;
    // Raw bursts of 8 frames written at once, without waiting for replies in between.
    for (let burst = 0; burst < total / 8; burst++) {
      for (let i = 0; i < 8; i++) {
        const n = burst * 8 + i;
        ca.send({ type: 'send', id: 10_000 + n, clientMsgId: `o${n}`, to: b.userId, kind: 'text', body: { text: `${n}` } });
      }
      await sleep(2);
    }
    await ca.waitFor(() => ca.frames.filter((f) => f.type === 'reply' && f.id >= 10_000).length === total, 20_000);
    const seqOf = new Map<number, number>(ca.frames.filter((f) => f.type === 'reply' && f.id >= 10_000).map((f) => [f.id - 10_000, f.result.message.seq]));
    const seqs = Array.from({ length: total }, (_, n) => seqOf.get(n));
    assert.deepEqual(seqs, Array.from({ length: total }, (_, n) => n + 1), 'seq follows send order');
    await cb.waitFor(() => cb.messages().length === total, 20_000);
    assert.deepEqual(cb.messages().map((m) => Number(m.message.body.text)), Array.from({ length: total }, (_, n) => n), 'the peer sees them in send order');
  });
});
