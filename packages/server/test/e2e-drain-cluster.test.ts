import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { MagpieClient, LocalMessage } from '@magpie/sdk';
import { TcpProxy } from '../src/testing/tcp-proxy.ts';
import { pgUnavailable, testDatabase } from './pg-test-helpers.ts';
import { NATS_URL, natsUnavailable } from './nats-test-helpers.ts';
import { startServer, registerAndLogin, api, sleep, type ServerProcess, type Account } from './harness.ts';
import { sdkClient, eventually } from './sdk-client.ts';

/**
 * Drain one node of two under load (PostgreSQL + NATS, a TCP proxy in front that health-checks
 * /api/ready like HAProxy): SDK clients spread over both nodes keep sending; node 1 gets
 * SIGTERM. Every message is ACKed exactly once, each receiver holds every message once with
 * gap-free seqs, and every client ends up connected through node 2.
 * Needs PostgreSQL and NATS; skips without them unless MAGPIE_REQUIRE_SERVICES=1.
 */
const skip = (await pgUnavailable()) ?? (await natsUnavailable());

const PAIRS = 4;
const PER_SENDER = 60;

describe('draining one node of two behind a proxy (PostgreSQL + NATS)', { skip: skip ?? false }, () => {
  const db = testDatabase('magpie_drain');
  let n1: ServerProcess;
  let n2: ServerProcess;
  let proxy: TcpProxy;
  let base: string;
  const clients: MagpieClient[] = [];
  before(async () => {
    const url = await db.create();
    const env = {
      MAGPIE_STORE: url.toString(),
      MAGPIE_NATS: NATS_URL,
      MAGPIE_USER_RATE: '5000',
      MAGPIE_USER_BURST: '5000',
      MAGPIE_IP_RATE: '5000',
      MAGPIE_IP_BURST: '5000',
      MAGPIE_DRAIN_DELAY_MS: '400',
      MAGPIE_DRAIN_RECONNECT_MIN_MS: '100',
      MAGPIE_DRAIN_RECONNECT_MAX_MS: '1000',
    };
    n1 = await startServer({ env: { ...env, MAGPIE_NODE_ID: 'n1' } });
    n2 = await startServer({ env: { ...env, MAGPIE_NODE_ID: 'n2' } });
    const backend = (s: ServerProcess) => ({ host: '127.0.0.1', port: Number(new URL(s.url).port) });
    proxy = new TcpProxy({ backends: [backend(n1), backend(n2)], healthPath: '/api/ready', healthIntervalMs: 100 });
    base = await proxy.listen();
  });
  after(async () => {
    for (const c of clients) c.close();
    await proxy?.close();
    await Promise.all([n1?.stop(), n2?.stop()]);
    await db.drop();
  });

  it('SIGTERM on node 1 under load: nothing lost or duplicated, clients land on node 2', async () => {
    const senders: Account[] = [];
    const receivers: Account[] = [];
    for (let i = 0; i < PAIRS; i++) {
      senders.push(await registerAndLogin(n2.url));
      receivers.push(await registerAndLogin(n2.url));
    }
    const open = (who: Account) => {
      const c = sdkClient({ baseUrl: base, token: who.token });
      clients.push(c);
      return c;
    };
    const tx = senders.map(open);
    const rx = receivers.map(open);
    await Promise.all([...tx, ...rx].map((c) => c.connect()));
    // Round-robin: both nodes hold some of the clients before the drain.
    assert.ok(proxy.isHealthy(0) && proxy.isHealthy(1), 'both nodes ready (PostgreSQL and NATS checks pass)');
    const before = proxy.openCounts();
    assert.ok(before[0]! > 0 && before[1]! > 0, `connections per node before: ${before}`);

    // Load: each sender sends PER_SENDER messages, one every few ms, without waiting for ACKs.
    let drained: Promise<void> | undefined;
    const ids: string[][] = tx.map(() => []);
    const sending = tx.map(async (c, i) => {
      for (let k = 0; k < PER_SENDER; k++) {
        ids[i]!.push((await c.sendText({ to: receivers[i]!.userId }, `m${i}-${k}`)).clientMsgId);
        if (i === 0 && k === PER_SENDER / 3) drained = n1.kill('SIGTERM');
        await sleep(15);
      }
    });
    await Promise.all(sending);
    await drained;
    assert.equal(n1.proc.exitCode, 0, 'node 1 exited cleanly after draining');

    const acked = await Promise.all(tx.map((c, i) => Promise.all(ids[i]!.map((id) => c.waitForSend(id)))));
    for (const list of acked) for (const m of list) assert.ok(m && (m.state === 'sent' || m.state === 'delivered'), `ACKed: ${m?.clientMsgId} ${m?.state}`);
    const all = async (i: number): Promise<LocalMessage[]> => (await rx[i]!.getMessages(acked[i]![0]!.conv!, { after: 0, limit: 10_000 })).messages;
    for (let i = 0; i < PAIRS; i++) {
      await eventually(async () => (await all(i)).length >= PER_SENDER, `receiver ${i} has all ${PER_SENDER}`, 30_000);
      const got = await all(i);
      assert.deepEqual(got.map((m) => m.seq), Array.from({ length: PER_SENDER }, (_, k) => k + 1), `receiver ${i}: seqs 1..${PER_SENDER}, no gap, no duplicate`);
      assert.deepEqual(got.map((m) => (m.body as { text: string }).text), Array.from({ length: PER_SENDER }, (_, k) => `m${i}-${k}`), `receiver ${i}: every message once, in order`);
      const sentSeqs = acked[i]!.map((m) => m!.seq);
      assert.deepEqual(sentSeqs, got.map((m) => m.seq), `sender ${i}: ACKed once each with the stored seqs`);
    }
    // Every client reconnected, through the proxy, to node 2.
    await eventually(() => [...tx, ...rx].every((c) => c.state === 'online'), 'every client online again', 20_000);
    const after = proxy.openCounts();
    assert.equal(after[0], 0, `no connection left on node 1: ${after}`);
    assert.ok(after[1]! >= 2 * PAIRS, `every client on node 2: ${after}`);
    const ready = await api(base, 'GET', '/api/ready');
    assert.equal(ready.body?.node, 'n2', JSON.stringify(ready));
  });
});
