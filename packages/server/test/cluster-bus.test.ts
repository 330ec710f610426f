import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { existsSync } from 'node:fs';
import { pgUnavailable, testDatabase } from './pg-test-helpers.ts';
import { NATS_URL, natsUnavailable } from './nats-test-helpers.ts';
import { loadConfig } from '../src/config/config.ts';
import { createMagpieServer, type MagpieServer } from '../src/app.ts';
import { api, registerAndLogin, RawClient, sleep, startServer, type ServerProcess } from './harness.ts';
import { apnsToken } from '../src/testing/apns-server.ts';
import { fakeProviderConfig, startFakes, stopFakes, type Fakes } from './push-harness.ts';

/**
 * Issue 15, the cluster Bus: presence for push decisions is cluster-wide, clients are told
 * to pull when NATS comes back, and a node without NATS says so in one line. Runs real
 * nodes on PostgreSQL; the outage test starts its OWN nats-server on a spare port (the
 * shared one stays untouched). Skips without PostgreSQL/NATS.
 */
const NATS_BIN = '/usr/sbin/nats-server';
const skip = (await pgUnavailable()) ?? (await natsUnavailable());

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

describe('cluster Bus: presence, outage, start without NATS', { skip: skip ?? false }, () => {
  const db = testDatabase('magpie_i15b');
  let dbUrl: string;
  /** `count` nodes on one database and NATS with the fake push providers (not started); their data dirs go into `dirs`, the nodes into `nodes` (for the caller's cleanup). */
  const pushNodes = async (count: number, prefix: string, fakes: Fakes, dirs: string[], nodes: MagpieServer[]): Promise<void> => {
    for (let i = 0; i < count; i++) {
      const dataDir = mkdtempSync(join(tmpdir(), prefix));
      dirs.push(dataDir);
      const config = loadConfig({}, {
        host: '127.0.0.1',
        port: 0,
        dataDir,
        store: dbUrl,
        nats: NATS_URL,
        logLevel: 'warn',
        limits: { userRate: 1000, userBurst: 1000, ipRate: 1000, ipBurst: 1000 },
        push: { ...fakeProviderConfig(fakes), collapseWindowMs: 0, quietHours: null },
      });
      nodes.push(await createMagpieServer(config));
    }
  };
  before(async () => {
    const url = await db.create();
    dbUrl = url.toString();
  });
  after(async () => {
    await db.drop();
  });

  it('a user online on node 2 gets no offline push for a message sent through node 1', async () => {
    const fakes: Fakes = await startFakes();
    const dirs: string[] = [];
    const nodes: MagpieServer[] = [];
    try {
      await pushNodes(2, 'magpie-i15-push-', fakes, dirs, nodes);
      const [u1, u2] = await Promise.all(nodes.map(async (n) => (await n.start()).replace('localhost', '127.0.0.1')));
      const a = await registerAndLogin(u1!);
      const b = await registerAndLogin(u2!, { deviceId: 'b-phone', platform: 'ios' });
      const tok = apnsToken();
      assert.equal((await api(u2!, 'PUT', '/api/push/device', { provider: 'apns', token: tok, locale: 'en', timeZone: 'UTC' }, b.token)).status, 200);
      const { client: cb } = await RawClient.connect(u2!.replace('http', 'ws') + '/ws', b.token);
      const { client: ca } = await RawClient.connect(u1!.replace('http', 'ws') + '/ws', a.token);
      for (let i = 0; i < 5; i++) await ca.request({ type: 'send', clientMsgId: `p${i}`, to: b.userId, kind: 'text', body: { text: `hi ${i}` } });
      await cb.waitFor(() => cb.firstArrivals().length === 5);
      for (const n of nodes) {
        await n.push.service.drained();
        await n.push.dispatcher.idle();
      }
      await sleep(300);
      assert.equal(fakes.apns.received.count((x) => x.token === tok), 0, 'B is online on node 2: no push');
      // Offline everywhere: now the push goes out (the check is not simply "never push").
      cb.close();
      await cb.waitClose();
      for (let i = 0; i < 100 && nodes[1]!.gateway.isOnline(b.userId); i++) await sleep(10);
      await ca.request({ type: 'send', clientMsgId: 'gone', to: b.userId, kind: 'text', body: { text: 'are you there?' } });
      for (let i = 0; i < 200 && fakes.apns.received.count((x) => x.token === tok) === 0; i++) await sleep(25);
      assert.equal(fakes.apns.received.count((x) => x.token === tok), 1, 'B offline: one push');
      ca.close();
    } finally {
      for (const n of nodes) await n.stop();
      await stopFakes(fakes);
      for (const d of dirs) rmSync(d, { recursive: true, force: true });
    }
  });

  it('a node remembers users without a push device (one push_devices read, not one per message); a registration through another node reaches it before it is answered; nodes changing make it forget', async () => {
    const fakes: Fakes = await startFakes();
    const dirs: string[] = [];
    const nodes: MagpieServer[] = [];
    try {
      await pushNodes(3, 'magpie-i15-devless-', fakes, dirs, nodes);
      const [u1, u2, u3] = await Promise.all(nodes.map(async (n) => (await n.start()).replace('localhost', '127.0.0.1')));
      for (let i = 0; i < 200 && nodes.some((n) => n.bus.nodes!.live().nodes.length < 3); i++) await sleep(25);
      assert.ok(nodes.every((n) => n.bus.nodes!.live().nodes.length === 3), 'the three nodes see each other');
      const a = await registerAndLogin(u1!);
      const b = await registerAndLogin(u2!, { deviceId: 'b-phone', platform: 'ios' });
      const c = await registerAndLogin(u3!);
      // Node 1's push_devices reads, per user asked about.
      const store = nodes[0]!.push.store;
      const devicesOf = store.devicesOf.bind(store);
      const asked = new Map<string, number>();
      store.devicesOf = (userIds: string[]) => {
        for (const u of userIds) asked.set(u, (asked.get(u) ?? 0) + 1);
        return devicesOf(userIds);
      };
      const drained = async () => {
        for (const n of nodes) await n.push.service.drained();
      };
      const { client: ca } = await RawClient.connect(u1!.replace('http', 'ws') + '/ws', a.token);
      // b and c are offline and have no push device: node 1 reads that once, then remembers.
      for (let i = 0; i < 5; i++) {
        await ca.request({ type: 'send', clientMsgId: `b${i}`, to: b.userId, kind: 'text', body: { text: `hi ${i}` } });
        await ca.request({ type: 'send', clientMsgId: `c${i}`, to: c.userId, kind: 'text', body: { text: `hi ${i}` } });
        await drained();
      }
      assert.equal(asked.get(b.userId), 1, 'one push_devices read for b over 5 messages');
      assert.equal(asked.get(c.userId), 1, 'one push_devices read for c over 5 messages');
      // b registers a device through node 2: once that is answered, node 1 pushes b's next message.
      const tok = apnsToken();
      assert.equal((await api(u2!, 'PUT', '/api/push/device', { provider: 'apns', token: tok, locale: 'en', timeZone: 'UTC' }, b.token)).status, 200);
      await ca.request({ type: 'send', clientMsgId: 'after', to: b.userId, kind: 'text', body: { text: 'now with a phone' } });
      for (let i = 0; i < 200 && fakes.apns.received.count((x) => x.token === tok) === 0; i++) await sleep(25);
      assert.equal(fakes.apns.received.count((x) => x.token === tok), 1, 'b offline with a device registered through node 2: one push from node 1');
      assert.equal(asked.get(b.userId), 2, 'node 1 read b again after the registration');
      // c is still remembered; a node leaving (the nodes changed) makes node 1 forget everyone.
      await ca.request({ type: 'send', clientMsgId: 'c5', to: c.userId, kind: 'text', body: { text: 'still here' } });
      await drained();
      assert.equal(asked.get(c.userId), 1);
      await nodes.pop()!.stop();
      for (let i = 0; i < 200 && nodes[0]!.bus.nodes!.live().nodes.length > 2; i++) await sleep(25);
      await ca.request({ type: 'send', clientMsgId: 'c6', to: c.userId, kind: 'text', body: { text: 'one node less' } });
      await drained();
      assert.equal(asked.get(c.userId), 2, 'read again after the nodes changed');
      ca.close();
    } finally {
      for (const n of nodes) await n.stop();
      await stopFakes(fakes);
      for (const d of dirs) rmSync(d, { recursive: true, force: true });
    }
  });

  it('when NATS comes back after an outage, nodes tell their clients to pull (an unsolicited pong)', { skip: existsSync(NATS_BIN) ? false : `no ${NATS_BIN}` }, async () => {
    const port = await freePort();
    const startNats = (): ChildProcess => spawn(NATS_BIN, ['-a', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' });
    let nats = startNats();
    const stopNats = async (p: ChildProcess) => {
      const exited = new Promise((r) => p.once('exit', r));
      p.kill('SIGKILL');
      await exited;
    };
    const env = { MAGPIE_STORE: dbUrl, MAGPIE_NATS: `nats://127.0.0.1:${port}`, MAGPIE_USER_RATE: '1000', MAGPIE_USER_BURST: '1000' };
    let n1: ServerProcess | undefined;
    let n2: ServerProcess | undefined;
    try {
      await sleep(300);
      n1 = await startServer({ env });
      n2 = await startServer({ env });
      const a = await registerAndLogin(n1.url);
      const b = await registerAndLogin(n2.url);
      const { client: ca } = await RawClient.connect(n1.wsUrl, a.token);
      const { client: cb } = await RawClient.connect(n2.wsUrl, b.token);
      await ca.request({ type: 'send', clientMsgId: 'before', to: b.userId, kind: 'text', body: { text: 'before' } });
      await cb.waitFor((f) => f.type === 'msg' && f.message.clientMsgId === 'before');
      await stopNats(nats);
      await sleep(200);
      const during = await ca.request({ type: 'send', clientMsgId: 'during', to: b.userId, kind: 'text', body: { text: 'during the outage' } });
      const from = cb.frames.length;
      nats = startNats();
      // Either the live frame made it after all, or the client is told how far its inbox is.
      const told = await cb.waitFor((f) => f.type === 'pong' && f.id === undefined && f.inboxSeq >= 2, 10_000, from);
      assert.ok(told.inboxSeq >= 2);
      assert.ok(during.message.seq === 2);
      ca.close();
      cb.close();
    } finally {
      await Promise.all([n1?.stop(), n2?.stop()]);
      await stopNats(nats).catch(() => undefined);
    }
  });

  it('a node started without reachable NATS exits non-zero with one clear line', async () => {
    const port = await freePort();
    const main = new URL('../src/main.ts', import.meta.url).pathname;
    const dataDir = mkdtempSync(join(tmpdir(), 'magpie-i15-nonats-'));
    const child = spawn(process.execPath, ['--import', 'tsx', main], {
      env: { ...process.env, MAGPIE_PORT: '0', MAGPIE_HOST: '127.0.0.1', MAGPIE_DATA_DIR: dataDir, MAGPIE_LOG_LEVEL: 'warn', MAGPIE_STORE: dbUrl, MAGPIE_NATS: `nats://127.0.0.1:${port}` },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
    rmSync(dataDir, { recursive: true, force: true });
    assert.notEqual(code, 0);
    const lines = stderr.trim().split('\n');
    assert.equal(lines.length, 1, `one line, got:\n${stderr}`);
    assert.match(lines[0]!, /^magpie: cannot start: NATS unreachable at nats:\/\/127\.0\.0\.1:\d+/);
  });
});
