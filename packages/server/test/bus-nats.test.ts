import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { createConnection, createServer, type AddressInfo } from 'node:net';
import type { BusEvent } from '../src/bus/bus.ts';
import { describe, it } from 'node:test';
import { NatsBus, token } from '../src/bus/nats-bus.ts';
import { connect } from '@nats-io/transport-node';
import { msgFrame } from '../src/delivery/msg-frame.ts';
import { runBusContract } from './bus-contract.ts';
import { NATS_URL, natsUnavailable } from './nats-test-helpers.ts';

/**
 * The NATS Bus: each open() is one node with its own connection, as separate processes
 * would be. A random subject prefix keeps this run apart from others on the same server.
 */
const skip = await natsUnavailable();

/** Waits (3 s at most) until `bus` sees `count` live nodes, itself included. */
async function seesNodes(bus: NatsBus, count: number): Promise<void> {
  const until = Date.now() + 3000;
  while (bus.nodes.live().nodes.length < count) {
    if (Date.now() > until) throw new Error('nodes did not see each other');
    await new Promise((r) => setTimeout(r, 10));
  }
}
if (skip === null) {
  const prefix = `magpietest_${randomBytes(4).toString('hex')}`;
  runBusContract('nats (two nodes)', { cluster: true, open: () => NatsBus.connect({ servers: NATS_URL, prefix, name: 'magpie-bus-test' }) });
} else {
  describe('Bus contract: nats', () => {
    it('needs a NATS server', { skip }, () => {});
  });
}

/**
 * Reconnects: a private nats-server on a free port is stopped and started again; the
 * client reconnects and restores its subscriptions (watches made before the outage work
 * after it). Skips without the nats-server binary.
 */
const NATS_BIN = process.env.MAGPIE_NATS_SERVER_BIN ?? '/usr/sbin/nats-server';
describe('NatsBus across a NATS restart', { skip: !existsSync(NATS_BIN) && `no ${NATS_BIN}` }, () => {
  it('re-subscribes after the server comes back', async () => {
    const port = await freePort();
    const servers = `nats://127.0.0.1:${port}`;
    let server = await startNats(port);
    const a = await NatsBus.connect({ servers });
    const b = await NatsBus.connect({ servers });
    try {
      const got: BusEvent[] = [];
      b.subscribe((e) => got.push(e));
      await b.watchUser('u:1');
      a.nodes.join('s', 200);
      b.nodes.join('s', 200);
      await until(() => b.nodes.pushDevicesTold!() && b.nodes.live().nodes.length === 2);
      let changes = 0;
      let toldWhenChanged: boolean[] = [];
      b.nodes.onChange!(() => {
        changes++;
        toldWhenChanged.push(b.nodes.pushDevicesTold!());
      });
      a.publish({ type: 'deliver', userId: 'u:1', frame: '{"n":1}' });
      await until(() => got.length === 1);
      server.kill('SIGKILL');
      await once(server, 'exit');
      // The connection lost: b may miss other nodes' tells (a push-device registration) from now on.
      await until(() => changes >= 1);
      assert.equal(toldWhenChanged[0], false);
      assert.equal(b.nodes.pushDevicesTold!(), false);
      toldWhenChanged = [];
      server = await startNats(port);
      // Both clients reconnect (reconnectTimeWait 1 s) and resend their SUBs.
      await until(() => {
        a.publish({ type: 'deliver', userId: 'u:1', frame: '{"n":2}' });
        return got.some((e) => e.type === 'deliver' && e.frame === '{"n":2}');
      }, 10_000);
      // Back, and a seen again: changed again (b forgets what it learnt while cut off), told again.
      await until(() => b.nodes.pushDevicesTold!() && b.nodes.live().nodes.length === 2, 5000);
      assert.ok(toldWhenChanged.length >= 1);
    } finally {
      await Promise.all([a.close(), b.close()]);
      server.kill('SIGKILL');
    }
  });
});

function startNats(port: number): Promise<ChildProcess> {
  const proc = spawn(NATS_BIN, ['-a', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' });
  return until(() => new Promise<boolean>((resolve) => {
    const s = createConnection(port, '127.0.0.1', () => (s.end(), resolve(true)));
    s.on('error', () => resolve(false));
  })).then(() => proc);
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = createServer().listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

async function until(pred: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await pred())) {
    if (Date.now() > end) throw new Error(`condition not met in ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * NodeLink (group routing, issue 15): nodes of one scope see each other by heartbeats, nodes
 * of another scope on the same broker are ignored, a node that leaves is gone at once and
 * requests to it fail at once, requests reach the node they name.
 */
describe('NatsBus NodeLink', { skip: skip ?? false }, () => {
  it('heartbeats per scope, goodbye, request/reply to one node', async () => {
    const prefix = `magpietest_${randomBytes(4).toString('hex')}`;
    const open = () => NatsBus.connect({ servers: NATS_URL, prefix, name: 'magpie-nodelink-test' });
    const [a, b, c] = await Promise.all([open(), open(), open()]);
    try {
      const [la, lb, lc] = [a.nodes, b.nodes, c.nodes];
      // Serve before join, as app.ts does: one connection's SUB reaches the broker before its
      // first heartbeat, so no node that has seen b can ask it before b listens. (Served after
      // the join, a request right away raced the subscription: "no responders", now and then.)
      lb.serve('echo', async (q) => `b:${q}`);
      la.join('db1', 200);
      lb.join('db1', 200);
      lc.join('db2', 200);
      const until = Date.now() + 3000;
      while (la.live().nodes.length < 2 || lb.live().nodes.length < 2) {
        if (Date.now() > until) throw new Error('nodes did not see each other');
        await new Promise((r) => setTimeout(r, 10));
      }
      assert.deepEqual(la.live().nodes, [la.self, lb.self].sort());
      assert.deepEqual(lb.live().nodes, la.live().nodes);
      assert.deepEqual(lc.live().nodes, [lc.self], 'another scope is not seen');
      assert.equal(await la.request(lb.self, 'echo', 'hi', 1000), 'b:hi');
      // Still there after a few heartbeats.
      await new Promise((r) => setTimeout(r, 700));
      assert.equal(la.live().nodes.length, 2);
      const v = la.live().version;
      lb.leave();
      const gone = Date.now() + 1000;
      while (la.live().nodes.length !== 1) {
        if (Date.now() > gone) throw new Error('the goodbye was not heard');
        await new Promise((r) => setTimeout(r, 5));
      }
      assert.ok(la.live().version > v);
      const t0 = Date.now();
      await assert.rejects(la.request(lb.self, 'echo', 'hi', 5000));
      assert.ok(Date.now() - t0 < 2000, 'a node that left answers "no responders" at once, not after the timeout');
    } finally {
      await Promise.all([a.close(), b.close(), c.close()]);
    }
  });

  it('a node unheard for 3 heartbeats is gone', async () => {
    const prefix = `magpietest_${randomBytes(4).toString('hex')}`;
    const a = await NatsBus.connect({ servers: NATS_URL, prefix });
    const b = await NatsBus.connect({ servers: NATS_URL, prefix });
    try {
      a.nodes.join('s', 100);
      b.nodes.join('s', 100);
      await seesNodes(a, 2);
      // b stops beating without a goodbye (as a process that hangs or dies uncleanly would).
      clearInterval((b.nodes as unknown as { timer: NodeJS.Timeout }).timer);
      await new Promise((r) => setTimeout(r, 600));
      assert.deepEqual(a.nodes.live().nodes, [a.nodes.self]);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('tellAll reaches every node and resolves once the live ones confirmed (their handler ran); an unanswering live node is named; pushDevicesTold and onChange follow the peers', async () => {
    const prefix = `magpietest_${randomBytes(4).toString('hex')}`;
    const a = await NatsBus.connect({ servers: NATS_URL, prefix });
    const b = await NatsBus.connect({ servers: NATS_URL, prefix });
    const other = await connect({ servers: NATS_URL });
    const beats: NodeJS.Timeout[] = [];
    try {
      const heard: string[] = [];
      let changes = 0;
      a.nodes.onChange!(() => changes++);
      a.nodes.hear!('t', () => assert.fail('a never hears its own tell'));
      b.nodes.hear!('t', (p) => void heard.push(p));
      assert.equal(a.nodes.pushDevicesTold!(), false, 'not before joining a scope');
      a.nodes.join('s', 100);
      b.nodes.join('s', 100);
      await seesNodes(a, 2);
      assert.ok(changes >= 1, 'b joining changed the nodes');
      assert.equal(a.nodes.pushDevicesTold!(), true);
      let t0 = Date.now();
      assert.deepEqual(await a.nodes.tellAll!('t', 'x', 3000), []);
      assert.deepEqual(heard, ['x'], "b's handler ran before the confirmation");
      assert.ok(Date.now() - t0 < 1000, 'resolved on the confirmation, not the timeout');
      // A live node of this release that does not answer (hung): named after the timeout.
      const hb = `${prefix}.hb.${token('s')}`;
      beats.push(setInterval(() => other.publish(hb, JSON.stringify({ id: 'hung-node', many: 1, pd: 1 })), 50));
      while (a.nodes.live().nodes.length < 3) await new Promise((r) => setTimeout(r, 10));
      assert.equal(a.nodes.pushDevicesTold!(), true);
      t0 = Date.now();
      assert.deepEqual(await a.nodes.tellAll!('t', 'y', 300), ['hung-node']);
      assert.ok(Date.now() - t0 >= 250);
      assert.deepEqual(heard, ['x', 'y']);
      // A node of an earlier release (no `pd`): nobody may remember; tells do not wait for it.
      const before = changes;
      beats.push(setInterval(() => other.publish(hb, JSON.stringify({ id: 'old-node', many: 1 })), 50));
      while (a.nodes.live().nodes.length < 4) await new Promise((r) => setTimeout(r, 10));
      assert.ok(changes > before);
      assert.equal(a.nodes.pushDevicesTold!(), false);
      assert.deepEqual(await a.nodes.tellAll!('t', 'z', 300), ['hung-node']);
      // Leaving: this node may miss tells from now on.
      const left = changes;
      a.nodes.leave();
      assert.ok(changes > left);
      assert.equal(a.nodes.pushDevicesTold!(), false);
    } finally {
      for (const t of beats) clearInterval(t);
      await Promise.all([a.close(), b.close(), other.close()]);
    }
  });

  it('a big fan-out goes as one event only while every live node reads that form (rolling upgrade)', async () => {
    const prefix = `magpietest_${randomBytes(4).toString('hex')}`;
    const a = await NatsBus.connect({ servers: NATS_URL, prefix });
    // An earlier release's node: heartbeats without `many`, and it reads its users' subjects only.
    const old = await connect({ servers: NATS_URL });
    try {
      const hb = `${prefix}.hb.${token('s')}`;
      const users = Array.from({ length: 20 }, (_, i) => `u:${i}`);
      const seen: string[] = [];
      old.subscribe(`${prefix}.u.${token(users[5]!)}`, { callback: (_e, m) => void seen.push(m.string()) });
      old.subscribe(`${prefix}.all`, { callback: (_e, m) => void seen.push(m.string().slice(0, 1)) });
      await old.flush();
      a.nodes.join('s', 100);
      const beat = setInterval(() => old.publish(hb, JSON.stringify({ id: 'old-node' })), 50);
      const fan = (n: number) => users.map((u, i) => ({ type: 'deliver' as const, userId: u, frame: msgFrame(n * 100 + i, '{"id":"m"}'), inboxSeq: n * 100 + i, msgId: 'm', body: '{"id":"m"}' }));
      try {
        const until = Date.now() + 3000;
        while (a.nodes.live().nodes.length < 2) {
          if (Date.now() > until) throw new Error('a did not see the old node');
          await new Promise((r) => setTimeout(r, 10));
        }
        a.publishDeliveries(fan(1));
        await a.check();
        await old.flush();
        await until2(() => seen.length >= 1);
        assert.equal(seen.length, 1, 'per user while an old node is live: nothing batched on .all');
        assert.match(seen[0]!, /"inboxSeq":105/);
      } finally {
        clearInterval(beat);
      }
      old.publish(hb, JSON.stringify({ id: 'old-node', bye: true }));
      const until = Date.now() + 3000;
      while (a.nodes.live().nodes.length > 1) {
        if (Date.now() > until) throw new Error('the old node did not leave');
        await new Promise((r) => setTimeout(r, 10));
      }
      a.publishDeliveries(fan(2));
      await until2(() => seen.length >= 2);
      await new Promise((r) => setTimeout(r, 100));
      assert.deepEqual(seen.slice(1), ['M'], 'alone with nodes that read it: one batched event, nothing per user');
    } finally {
      await a.close();
      await old.close();
    }
  });

  it("a batched fan-out's deliveries name the node that published it (`via`: where their ACKs go), its own do not", async () => {
    const prefix = `magpietest_${randomBytes(4).toString('hex')}`;
    const a = await NatsBus.connect({ servers: NATS_URL, prefix });
    const b = await NatsBus.connect({ servers: NATS_URL, prefix });
    try {
      a.nodes.join('s', 100);
      b.nodes.join('s', 100);
      await until2(() => a.nodes.live().nodes.length === 2 && b.nodes.live().nodes.length === 2);
      const users = Array.from({ length: 12 }, (_, i) => `u:${i}`);
      const atB: BusEvent[] = [];
      const atA: BusEvent[] = [];
      b.subscribe((e) => atB.push(e));
      a.subscribe((e) => atA.push(e));
      for (const u of users.slice(0, 6)) await b.watchUser(u);
      for (const u of users.slice(6)) await a.watchUser(u);
      a.publishDeliveries(users.map((u, i) => ({ type: 'deliver' as const, userId: u, frame: msgFrame(i + 1, '{"id":"m"}'), inboxSeq: i + 1, msgId: 'm', body: '{"id":"m"}' })));
      await until2(() => atB.length >= 6);
      assert.deepEqual(atB.map((e) => (e.type === 'deliver' ? `${e.userId}:${e.via}` : '')), users.slice(0, 6).map((u) => `${u}:${a.nodes.self}`));
      assert.equal(atA.length, 6);
      assert.ok(atA.every((e) => e.type === 'deliver' && e.via === undefined), 'the publisher hands its own deliveries over without via');
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });
});

/**
 * Another process on the broker (a separate event loop, as another node is): it beats as a node
 * of scope `s` that reads batched fan-outs and prints `<ms since epoch> <subject kind>` for
 * every message it gets.
 */
async function peerProcess(prefix: string): Promise<{ lines: string[]; stop: () => Promise<void> }> {
  const script = `
    const { connect } = require('@nats-io/transport-node');
    const tok = (s) => Buffer.from(s, 'utf8').toString('base64url');
    (async () => {
      const nc = await connect({ servers: ${JSON.stringify(NATS_URL)} });
      const seen = (kind) => () => { process.stdout.write(Date.now() + ' ' + kind + '\\n'); };
      nc.subscribe('${prefix}.all', { callback: seen('all') });
      nc.subscribe('${prefix}.u.>', { callback: seen('user') });
      const hb = () => nc.publish('${prefix}.hb.' + tok('s'), JSON.stringify({ id: 'peer', many: 1, pd: 1 }));
      hb();
      setInterval(hb, 50);
      await nc.flush();
      process.stdout.write('ready\\n');
    })();
  `;
  const child = spawn(process.execPath, ['-e', script], { cwd: import.meta.dirname, stdio: ['ignore', 'pipe', 'inherit'] });
  const lines: string[] = [];
  let buf = '';
  child.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      lines.push(buf.slice(0, nl));
      buf = buf.slice(nl + 1);
    }
  });
  await until2(() => lines.includes('ready'), 10_000);
  lines.length = 0;
  return {
    lines,
    stop: async () => {
      child.kill();
      await once(child, 'exit');
    },
  };
}

/** Busy for `ms`: the event loop does nothing else meanwhile. */
function block(ms: number): void {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    // spin
  }
}

describe('NatsBus: a batched fan-out leaves before local work', { skip: skip ?? false }, () => {
  it("a batched fan-out is on its way to the other nodes before the publisher's own handlers run, which still get every event once, in publish order", async () => {
    const prefix = `magpietest_${randomBytes(4).toString('hex')}`;
    const peer = await peerProcess(prefix);
    const a = await NatsBus.connect({ servers: NATS_URL, prefix });
    try {
      const local: string[] = [];
      let handlerAt = 0;
      a.subscribe((e) => {
        local.push(e.type === 'deliver' ? `${e.userId}:${e.inboxSeq}` : e.type);
        if (handlerAt === 0) {
          // The first local delivery takes 300 ms of synchronous work (a big local fan-out).
          handlerAt = Date.now();
          block(300);
        }
      });
      for (const u of ['u:0', 'u:5', 'u:11']) await a.watchUser(u);
      const users = Array.from({ length: 12 }, (_, i) => `u:${i}`);
      const fan = (n: number) => users.map((u, i) => ({ type: 'deliver' as const, userId: u, frame: msgFrame(n * 100 + i, '{"id":"m"}'), inboxSeq: n * 100 + i, msgId: 'm', body: '{"id":"m"}' }));

      // In a scope with a node that reads batched fan-outs: one event on .all.
      a.nodes.join('s', 100);
      await until2(() => a.nodes.live().nodes.length === 2);
      await a.check();
      peer.lines.length = 0;
      a.publishDeliveries(fan(2));
      a.publish({ type: 'supers', conv: 'g:1', add: [], remove: ['u:9'] });
      await until2(() => peer.lines.filter((l) => l.endsWith(' all')).length >= 2);
      const batched = Number(peer.lines.find((l) => l.endsWith(' all'))!.split(' ')[0]);
      assert.ok(handlerAt > 0, 'the local handler ran');
      assert.ok(batched < handlerAt + 150, `batched fan-out reached the other process ${batched - handlerAt} ms after the local handler started (it blocks 300 ms)`);
      assert.deepEqual(local, ['u:0:200', 'u:5:205', 'u:11:211', 'supers'], 'own events: once each, in publish order');
    } finally {
      await a.close();
      await peer.stop();
    }
  });
});

async function until2(ok: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}
