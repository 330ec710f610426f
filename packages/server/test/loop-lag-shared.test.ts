import { it } from 'node:test';
import assert from 'node:assert/strict';
import { LoopGuard } from '../src/push/loop-guard.ts';
import { createRetryQueue } from '../src/delivery/retry-metrics.ts';
import { ConfigSchema } from '../src/config/config.ts';
import { createMetrics } from '../src/metrics.ts';
import { loopLagSamplerRunning, loopLagSamplers, sharedLoopLag } from '../src/util/loop-lag.ts';
import { RetryQueue } from '../src/delivery/retry-queue.ts';
import { AdaptiveRetryTiming } from '../src/delivery/retry-policy.ts';
import { countIntervals } from './count-intervals.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// Issue 15: every idle wake-up is per-node fixed work in a cluster. The retry queue's hold
// (retry.holdLagMs) and the push lane's LoopGuard (lanes.bulkYieldLagMs), both on by default,
// read one lag sampler per process instead of running one each.
it("the retry queue's hold and the push guard share the process's one lag sampler, which stops with its last reader", () => {
  assert.equal(loopLagSamplers(), 0);
  const config = ConfigSchema.parse({});
  assert.ok(config.retry.holdLagMs > 0);
  const q = createRetryQueue(config, createMetrics({ processMetrics: false }), { offline: () => {} } as never);
  const g = new LoopGuard(25);
  try {
    assert.equal(loopLagSamplers(), 1);
  } finally {
    q.stop();
    assert.equal(loopLagSamplers(), 1, 'the guard still reads it');
    g.stop();
  }
  assert.equal(loopLagSamplers(), 0);
});

it('each reader of the shared sampler sees a stall once, and the recent lag until it ages out', async () => {
  const a = sharedLoopLag();
  const b = sharedLoopLag();
  a.want(true);
  try {
    await sleep(60);
    a.maxSinceLastRead();
    b.maxSinceLastRead();
    const until = Date.now() + 80;
    while (Date.now() < until); // a blocked loop
    await sleep(30);
    assert.ok(a.maxSinceLastRead() >= 40, 'a sees the stall');
    assert.ok(a.maxSinceLastRead() < 40, 'read once');
    assert.ok(b.maxSinceLastRead() >= 40, 'b sees it too');
    assert.ok(a.lagMs() >= 40, 'recent lag');
    await sleep(200);
    assert.ok(a.lagMs() < 40, 'aged out');
  } finally {
    a.stop();
    b.stop();
    a.stop();
  }
  assert.equal(loopLagSamplers(), 0);
});

// Issue 15: an idle node woke 50 times a second for this sampler (~5 ms of CPU a second per
// node on this machine) with no reading pending. It now sleeps while nobody wants it.
it('an idle process schedules no sampler ticks: a retry queue with nothing tracked and a guard with no bulk work', async () => {
  const intervals = countIntervals();
  const q = createRetryQueue(ConfigSchema.parse({}), createMetrics({ processMetrics: false }), { offline: () => {} } as never);
  const g = new LoopGuard(25);
  try {
    await sleep(60);
    assert.equal(g.factor, 1);
    assert.equal(intervals.n, 0, 'no interval started');
    assert.equal(loopLagSamplerRunning(), false);
  } finally {
    intervals.restore();
    q.stop();
    g.stop();
  }
  assert.equal(loopLagSamplers(), 0);
});

it('the retry queue wants the sampler while a delivery is tracked and lets it sleep once the queue drains', async () => {
  const lag = sharedLoopLag();
  const q = new RetryQueue(new AdaptiveRetryTiming({ probeDelayMs: 30, probeCount: 4, steppedStartMs: 5000, stepMs: 3000, maxDelayMs: 15_000, maxAttempts: 10, rememberCapacity: 100 }), () => {}, () => {}, { perDeviceCap: 64, totalCap: 100, holdLagMs: 100, loopLag: lag });
  try {
    assert.equal(loopLagSamplerRunning(), false);
    q.track('u', 'd', { isAlive: () => true, send: () => {} }, 1, 'f1');
    assert.equal(loopLagSamplerRunning(), true, 'a delivery is tracked: its retry will read the lag');
    q.ack('u', 'd', 1);
    await sleep(150); // the device's heap entry comes up and retires
    assert.equal(q.heapEntries, 0);
    assert.equal(loopLagSamplerRunning(), false, 'nothing pending: asleep');
  } finally {
    q.stop();
  }
  assert.equal(loopLagSamplers(), 0);
});

it('after sleeping, the sampler still holds a retry that comes due right after a stall of the loop', async () => {
  const spin = (ms: number) => {
    const end = performance.now() + ms;
    while (performance.now() < end);
  };
  const run = async (holdLagMs: number) => {
    const lag = sharedLoopLag();
    let sends = 0;
    let held = 0;
    const q = new RetryQueue(new AdaptiveRetryTiming({ probeDelayMs: 200, probeCount: 4, steppedStartMs: 5000, stepMs: 3000, maxDelayMs: 15_000, maxAttempts: 10, rememberCapacity: 100 }), () => {}, () => {}, { perDeviceCap: 64, totalCap: 100, holdLagMs, loopLag: lag, onHeld: (n) => (held += n) });
    try {
      assert.equal(loopLagSamplerRunning(), false);
      q.track('u', 'd', { isAlive: () => true, send: () => sends++ }, 1, 'f1');
      await sleep(90);
      spin(100); // the loop stalls and is free again before the retry is due: only the sampler saw it
      await sleep(5);
      assert.ok(lag.lagMs() >= 60, `the stall reads as lag: ${lag.lagMs()} ms`);
      await sleep(60); // the retry comes due (~200 ms) while the stall is in the sampler's window
    } finally {
      q.stop();
    }
    return { sends, held };
  };
  const r = await run(50);
  assert.equal(r.held, 1, 'held: the retry came due within the lagging window');
  assert.equal(r.sends, 0);
});
