import { it } from 'node:test';
import assert from 'node:assert/strict';
import { LoopGuard } from '../src/push/loop-guard.ts';
import { createRetryQueue } from '../src/delivery/retry-metrics.ts';
import { ConfigSchema } from '../src/config/config.ts';
import { createMetrics } from '../src/metrics.ts';
import { loopLagSamplers, sharedLoopLag } from '../src/util/loop-lag.ts';

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
