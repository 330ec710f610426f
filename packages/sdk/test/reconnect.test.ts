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

test('exhausted after 6 consecutive failures', () => {
  const p = new ReconnectPolicy();
  for (let i = 0; i < 5; i++) p.recordFailure();
  assert.equal(p.exhausted, false);
  p.recordFailure();
  assert.equal(p.exhausted, true);
  p.reset();
  assert.equal(p.exhausted, false);
});

// ---- through the client

test('client: growing delays between failed attempts, stop after 6, resume on network-online', async () => {
  const h = harness();
  await connectOnline(h);
  h.server.connectMode = 'refuse';
  h.server.last.drop();
  await flush();
  assert.equal(h.client.state, 'offline');
  await h.clock.advance(200_000);
  // attempts after the drop: 6 refused, then nothing more
  const attempts = h.server.sockets.slice(1);
  assert.equal(attempts.length, 6);
  assert.equal(h.client.state, 'waiting_for_network');
  await h.clock.advance(3_600_000);
  assert.equal(h.server.sockets.length, 7, 'no attempts while waiting for the network');
  // the network comes back: a quick attempt, which now succeeds
  h.server.connectMode = 'open';
  const t = h.clock.now();
  h.client.setNetworkOnline(true);
  await h.clock.advanceUntil(() => h.client.state === 'online', 2_000, 10);
  assert.ok(h.clock.now() - t <= defaultReconnectOptions.onlineDelayMs + 50);
  assert.equal(h.server.sockets.length, 8);
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
  // delays 500, 1000, 2000, 4000, 8000, 16000 (random fixed at 0.5: no jitter)
  assert.deepEqual(rel, [500, 1_500, 3_500, 7_500, 15_500, 31_500]);
  assert.equal(h.client.state, 'waiting_for_network');
});

test('client: in the background the delays are longer; foreground resumes after giving up', async () => {
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
  assert.equal(h.client.state, 'waiting_for_network');
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
