import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Heartbeat, defaultHeartbeatOptions, type HeartbeatDeathReason } from '../src/heartbeat.ts';
import { FakeClock } from './helpers/fake-clock.ts';
import { harness, connectOnline } from './helpers/setup.ts';

function unit(answer: (n: number) => boolean | 'never' = () => true) {
  const clock = new FakeClock();
  const t0 = clock.now();
  const pings: { at: number; interval: number; timeout: number }[] = [];
  const deaths: { at: number; reason: HeartbeatDeathReason }[] = [];
  const hb = new Heartbeat(clock, {
    ping: (interval, timeout) => {
      pings.push({ at: clock.now() - t0, interval, timeout });
      const a = answer(pings.length);
      if (a === 'never') return new Promise<boolean>((r) => clock.setTimeout(() => r(false), timeout));
      return Promise.resolve(a);
    },
    onDead: (reason) => deaths.push({ at: clock.now() - t0, reason }),
  });
  return { clock, hb, pings, deaths, t0 };
}

const gaps = (xs: { at: number }[]) => xs.slice(1).map((x, i) => x.at - xs[i]!.at);

test('3 quick pings 2 s apart after connect, then the foreground interval of 40 s', async () => {
  const u = unit();
  u.hb.start();
  await u.clock.advance(170_000);
  assert.deepEqual(u.pings.map((p) => p.at), [2_000, 4_000, 6_000, 46_000, 86_000, 126_000, 166_000]);
  assert.ok(u.pings.every((p) => p.timeout === defaultHeartbeatOptions.pongTimeoutMs));
  // the announced interval is never shorter than the real gap to the next ping
  assert.ok(u.pings.every((p) => p.interval === 40_000));
  assert.deepEqual(u.deaths, []);
});

test('background: starts at 60 s and grows while stable up to 120 s; announced interval matches the gap', async () => {
  const u = unit();
  u.hb.setAppState('background');
  u.hb.start();
  await u.clock.advance(700_000);
  const regular = u.pings.slice(3);
  assert.deepEqual(u.pings.slice(0, 3).map((p) => p.at), [2_000, 4_000, 6_000]);
  assert.deepEqual(gaps([{ at: 6_000 }, ...regular]), [60_000, 60_000, 80_000, 100_000, 120_000, 120_000, 120_000]);
  for (let i = 0; i < regular.length - 1; i++) {
    assert.ok(regular[i]!.interval >= regular[i + 1]!.at - regular[i]!.at, `ping ${i} announced ${regular[i]!.interval}`);
  }
});

test('foreground after background returns to the 40 s interval (after the client probe)', async () => {
  const u = unit();
  u.hb.setAppState('background');
  u.hb.start();
  await u.clock.advance(200_000); // stable in background for a while
  u.hb.setAppState('foreground');
  u.hb.probe();
  const probeAt = u.pings[u.pings.length - 1]!;
  assert.equal(probeAt.at, 200_000);
  assert.equal(probeAt.timeout, defaultHeartbeatOptions.probeTimeoutMs);
  await u.clock.advance(81_000);
  assert.deepEqual(u.pings.slice(-3).map((p) => p.at), [200_000, 240_000, 280_000]);
});

test('a missed pong reports the link dead; after the restart the interval is short until stable', async () => {
  // ping #4 (the first regular one) is never answered
  const u = unit((n) => (n === 4 ? 'never' : true));
  u.hb.start();
  await u.clock.advance(56_000);
  assert.deepEqual(u.deaths, [{ at: 56_000, reason: 'missed_pong' }]);
  assert.equal(u.hb.isRunning, false, 'stopped on a miss');
  const before = u.pings.length;
  await u.clock.advance(60_000);
  assert.equal(u.pings.length, before, 'no pings while stopped');
  // the client reconnects and starts the heartbeat again
  u.hb.start();
  const restart = u.clock.now() - u.t0;
  await u.clock.advance(130_000);
  const after = u.pings.slice(before).map((p) => p.at - restart);
  assert.deepEqual(after.slice(0, 3), [2_000, 4_000, 6_000], 'quick pings again');
  assert.deepEqual(gaps(after.slice(2).map((at) => ({ at }))).slice(0, 5), [10_000, 10_000, 10_000, 10_000, 40_000], 'short interval until 3 pongs came back');
});

test('probe(): an extra ping with the short timeout; no pong in time reports probe_timeout', async () => {
  const u = unit((n) => (n === 5 ? 'never' : true));
  u.hb.start();
  await u.clock.advance(10_000);
  assert.equal(u.pings.length, 3);
  u.hb.probe();
  await u.clock.advance(1);
  assert.equal(u.pings.length, 4);
  assert.deepEqual(u.deaths, []);
  u.hb.probe();
  await u.clock.advance(2_999);
  assert.deepEqual(u.deaths, []);
  await u.clock.advance(1);
  assert.deepEqual(u.deaths, [{ at: 13_001, reason: 'probe_timeout' }]); // probe sent at 10 001
});

test('results of a stopped run are ignored', async () => {
  const u = unit(() => 'never');
  u.hb.start();
  await u.clock.advance(2_000);
  u.hb.stop();
  u.hb.start();
  await u.clock.advance(9_000);
  assert.deepEqual(u.deaths, [], 'the first run\'s miss must not kill the new run');
  await u.clock.advance(5_000);
  assert.equal(u.deaths.length, 1);
});

// ---- through the client and the fake server

test('client: quick pings after connect carry `interval`, then 40 s; pongs keep the socket', async () => {
  const h = harness();
  await connectOnline(h);
  const sock = h.server.last;
  await h.clock.advance(90_000);
  const pings = sock.framesOfType('ping');
  assert.equal(pings.length, 5); // 2, 4, 6, 46, 86 s
  assert.ok(pings.every((p) => p.interval === 40_000 && typeof p.id === 'number'));
  assert.equal(h.server.sockets.length, 1);
  assert.equal(h.client.state, 'online');
});

test('client: one extra ping on foreground and on network-online', async () => {
  const h = harness({ appState: 'background' });
  await connectOnline(h);
  const sock = h.server.last;
  await h.clock.advance(20_000);
  const base = sock.framesOfType('ping').length;
  assert.equal(base, 3);
  h.client.setAppState('foreground');
  await h.clock.advance(100);
  assert.equal(sock.framesOfType('ping').length, base + 1);
  h.client.setAppState('foreground'); // no change, no ping
  await h.clock.advance(100);
  assert.equal(sock.framesOfType('ping').length, base + 1);
  h.client.setNetworkOnline(true);
  await h.clock.advance(100);
  assert.equal(sock.framesOfType('ping').length, base + 2);
  assert.equal(h.server.sockets.length, 1, 'the live socket is kept');
});

test('client: a missed heartbeat pong abandons the socket at once and reconnects', async () => {
  const h = harness();
  await connectOnline(h);
  const first = h.server.last;
  await h.clock.advance(7_000); // quick phase done
  first.dead = true; // the link dies silently
  await h.clock.advance(39_000 + 9_999); // ping at 46 s, no pong yet
  assert.equal(h.server.sockets.length, 1);
  await h.clock.advance(1); // pong timeout
  assert.ok(first.closedByClient, 'abandoned');
  assert.equal(first.readyState, 2, 'without waiting for the close handshake');
  await h.clock.advanceUntil(() => h.client.state === 'online', 5_000, 10);
  assert.equal(h.server.sockets.length, 2);
  assert.ok(h.client.connectionGeneration >= 2);
});
