import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ReconnectPolicy, defaultReconnectOptions } from '../src/reconnect.ts';
import { harness, connectOnline } from './helpers/setup.ts';
import { flush } from './helpers/fake-clock.ts';

const fg = { appState: 'foreground', networkOnline: true } as const;

test('backoff grows by the factor per failure and is capped', () => {
  const p = new ReconnectPolicy({ ...defaultReconnectOptions, maxFailures: 20 }, () => 0.5);
  const seen: number[] = [];
  for (let i = 0; i < 9; i++) {
    seen.push(p.nextDelay(fg));
    p.recordFailure();
  }
  assert.deepEqual(seen, [500, 1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000]);
  p.recordSuccess();
  assert.equal(p.nextDelay(fg), 500, 'a success starts over');
});

test('jitter stays within [1 - j, 1 + j] of the base delay and actually varies', () => {
  const values = [0, 0.25, 0.5, 0.999999, 1];
  for (const r of values) {
    const p = new ReconnectPolicy(defaultReconnectOptions, () => r);
    p.recordFailure();
    p.recordFailure(); // base 2000
    const d = p.nextDelay(fg);
    assert.ok(d >= 2_000 * 0.7 && d <= 2_000 * 1.3, `random ${r} gave ${d}`);
  }
  assert.equal(new ReconnectPolicy(defaultReconnectOptions, () => 0).nextDelay(fg), 350);
  assert.equal(new ReconnectPolicy(defaultReconnectOptions, () => 1).nextDelay(fg), 650);
  let seed = 42;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const p = new ReconnectPolicy(defaultReconnectOptions, rnd);
  const samples = new Set(Array.from({ length: 50 }, () => p.nextDelay(fg)));
  assert.ok(samples.size > 10, 'jittered delays differ between clients/attempts');
});

test('shorter right after the network returns, longer in the background and while offline', () => {
  const p = new ReconnectPolicy(defaultReconnectOptions, () => 0.5);
  p.recordFailure();
  p.recordFailure();
  p.recordFailure(); // base 4000
  assert.equal(p.nextDelay(fg), 4_000);
  assert.equal(p.nextDelay({ ...fg, wake: true }), defaultReconnectOptions.onlineDelayMs);
  assert.equal(p.nextDelay({ appState: 'background', networkOnline: true }), 16_000);
  assert.equal(p.nextDelay({ appState: 'foreground', networkOnline: false }), 16_000);
  assert.equal(p.nextDelay({ appState: 'background', networkOnline: false }), 64_000);
  for (let i = 0; i < 5; i++) p.recordFailure();
  assert.equal(p.nextDelay({ appState: 'background', networkOnline: false }), defaultReconnectOptions.maxSlowDelayMs, 'capped');
  assert.ok(p.nextDelay({ appState: 'background', networkOnline: true }) > p.nextDelay(fg));
});

test('after 6 consecutive failures the policy slows down to the long interval, never stops', () => {
  const p = new ReconnectPolicy(defaultReconnectOptions, () => 0.5);
  for (let i = 0; i < 5; i++) p.recordFailure();
  assert.equal(p.slowedDown, false);
  p.recordFailure();
  assert.equal(p.slowedDown, true);
  assert.equal(p.nextDelay(fg), defaultReconnectOptions.slowIntervalMs);
  for (let i = 0; i < 100; i++) p.recordFailure();
  assert.equal(p.nextDelay(fg), 60_000, 'a minute, forever');
  assert.equal(p.nextDelay({ appState: 'background', networkOnline: true }), 120_000, 'twice as long in the background (within maxSlowDelayMs)');
  assert.equal(p.nextDelay({ ...fg, wake: true }), defaultReconnectOptions.onlineDelayMs, 'network-online / foreground: at once');
  const lo = new ReconnectPolicy(defaultReconnectOptions, () => 0);
  const hi = new ReconnectPolicy(defaultReconnectOptions, () => 1);
  for (let i = 0; i < 6; i++) (lo.recordFailure(), hi.recordFailure());
  assert.deepEqual([lo.nextDelay(fg), hi.nextDelay(fg)], [42_000, 78_000], 'jittered like every other delay');
  p.reset();
  assert.equal(p.slowedDown, false);
});

// ---- through the client

test('client: growing delays between failed attempts, then one a minute; network-online tries at once', async () => {
  const h = harness();
  await connectOnline(h);
  h.server.connectMode = 'refuse';
  h.server.last.drop();
  await flush();
  assert.equal(h.client.state, 'offline');
  await h.clock.advance(200_000);
  // attempts after the drop: 6 in the first 31.5 s, then one a minute (91.5 s, 151.5 s)
  assert.equal(h.server.sockets.length - 1, 8);
  assert.equal(h.client.state, 'offline');
  assert.equal(h.client.connection.offlineReason, 'server_unreachable');
  h.client.setNetworkOnline(false);
  assert.equal(h.client.state, 'waiting_for_network');
  assert.equal(h.client.connection.offlineReason, 'no_network');
  // the network comes back: a quick attempt, which now succeeds
  h.server.connectMode = 'open';
  const t = h.clock.now();
  h.client.setNetworkOnline(true);
  await h.clock.advanceUntil(() => h.client.state === 'online', 2_000, 10);
  assert.ok(h.clock.now() - t <= defaultReconnectOptions.onlineDelayMs + 50);
  assert.equal(h.server.sockets.length, 10);
});

test('client: the recorded gaps between attempts grow (first retry quick)', async () => {
  const h = harness();
  await connectOnline(h);
  h.server.connectMode = 'refuse';
  const times: number[] = [];
  const origFactory = h.server.factory;
  // record attempt times through the state events
  h.client.on('state', (e) => {
    if (e.state === 'connecting') times.push(h.clock.now());
  });
  void origFactory;
  const dropAt = h.clock.now();
  h.server.last.drop();
  await h.clock.advance(100_000);
  const rel = times.map((x) => x - dropAt);
  // delays 500, 1000, 2000, 4000, 8000, 16000, then 60 000 (random fixed at 0.5: no jitter)
  assert.deepEqual(rel, [500, 1_500, 3_500, 7_500, 15_500, 31_500, 91_500]);
  assert.equal(h.client.state, 'offline');
});

test('client: in the background the delays are longer; foreground tries at once', async () => {
  const h = harness({ appState: 'background' });
  await connectOnline(h);
  h.server.connectMode = 'refuse';
  const times: number[] = [];
  h.client.on('state', (e) => {
    if (e.state === 'connecting') times.push(h.clock.now());
  });
  const dropAt = h.clock.now();
  h.server.last.drop();
  await h.clock.advance(1_000_000);
  assert.deepEqual(times.map((x) => x - dropAt).slice(0, 3), [2_000, 6_000, 14_000]);
  assert.equal(h.client.state, 'offline');
  h.server.connectMode = 'open';
  h.client.setAppState('foreground');
  await h.clock.advanceUntil(() => h.client.state === 'online', 2_000, 10);
});

test('client: an attempt that never opens counts as failed after the connect timeout', async () => {
  const h = harness({ reconnect: { connectTimeoutMs: 5_000 } });
  await connectOnline(h);
  h.server.connectMode = 'hang';
  h.server.last.drop();
  await h.clock.advance(600); // first attempt starts at 500
  assert.equal(h.server.sockets.length, 2);
  assert.equal(h.client.state, 'connecting');
  await h.clock.advance(5_000);
  assert.equal(h.client.state, 'offline');
  assert.ok(h.server.sockets[1]!.closedByClient, 'the hanging socket was abandoned');
  h.server.connectMode = 'open';
  await h.clock.advanceUntil(() => h.client.state === 'online', 5_000, 10);
  assert.equal(h.server.sockets.length, 3);
});

test('client: the new connection resumes from the stored inboxSeq', async () => {
  const h = harness();
  await connectOnline(h);
  h.server.incoming('g', 'bob', 'a');
  h.server.incoming('g', 'bob', 'b');
  await h.clock.advance(200);
  assert.equal(h.client.inboxSeq, 2);
  h.server.last.drop();
  await flush();
  assert.equal(h.client.state, 'offline');
  h.server.incoming('g', 'bob', 'c'); // while offline: no push
  await h.clock.advanceUntil(() => h.client.state === 'online', 5_000, 10);
  const hello = h.server.last.framesOfType('hello')[0]!;
  assert.equal(hello.inboxSeq, 2);
  assert.deepEqual(hello.versions, [1]);
  assert.deepEqual(hello.caps, ['ack', 'batch']);
  assert.equal(h.client.inboxSeq, 3, 'incremental sync pulled the missed item');
});

// Issue 14: after an outage longer than ~30 s, 20 of 20 clients were still offline 125 s after
// the server came back — they waited for a network event that a server outage never produces.
test('regression: a client survives a 10-minute server outage and reconnects by itself within a slow interval', async () => {
  const h = harness({ random: Math.random });
  await connectOnline(h);
  const infos: { reason: string | null; next: number | null }[] = [];
  h.client.on('connection', (c) => infos.push({ reason: c.offlineReason, next: c.nextRetryAt }));
  h.server.connectMode = 'refuse';
  h.server.last.drop();
  await h.clock.advance(600_000);
  assert.equal(h.client.state, 'offline', 'not waiting for a network event');
  const info = h.client.connection;
  assert.equal(info.offlineReason, 'server_unreachable');
  assert.ok(info.nextRetryAt !== null && info.nextRetryAt > h.clock.now() && info.nextRetryAt <= h.clock.now() + 78_000, 'tells when it retries');
  assert.ok(infos.some((i) => i.reason === 'connection_lost'), 'right after the drop: connection lost');
  const attempts = h.server.sockets.length;
  assert.ok(attempts >= 6 + 8 && attempts <= 6 + 15, `kept trying about once a minute (${attempts})`);
  // The server is back; no network or foreground event comes.
  h.server.connectMode = 'open';
  const back = h.clock.now();
  await h.clock.advanceUntil(() => h.client.state === 'online', 80_000, 100);
  assert.ok(h.clock.now() - back <= 78_000);
  assert.deepEqual(h.client.connection, { state: 'online', offlineReason: null, nextRetryAt: null, failures: 0 });
});

test('client: a short configured slow interval (reconnect.slowIntervalMs)', async () => {
  const h = harness({ reconnect: { maxFailures: 2, slowIntervalMs: 5_000, jitter: 0 } });
  await connectOnline(h);
  h.server.connectMode = 'refuse';
  const times: number[] = [];
  h.client.on('state', (e) => {
    if (e.state === 'connecting') times.push(h.clock.now());
  });
  const dropAt = h.clock.now();
  h.server.last.drop();
  await h.clock.advance(20_000);
  assert.deepEqual(times.map((x) => x - dropAt), [500, 1_500, 6_500, 11_500, 16_500]);
  h.server.connectMode = 'open';
  await h.clock.advanceUntil(() => h.client.state === 'online', 5_000, 10);
});
