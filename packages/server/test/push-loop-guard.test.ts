import { it } from 'node:test';
import assert from 'node:assert/strict';
import { LoopGuard } from '../src/push/loop-guard.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

it('bulk work yields while the event loop lags, and recovers after', async () => {
  const g = new LoopGuard(25, 50);
  try {
    await sleep(120);
    assert.equal(g.factor, 1);
    assert.equal(g.pauseMs(), 0);
    const until = Date.now() + 80;
    while (Date.now() < until); // a blocked loop, as a long synchronous job would cause
    let min = 1;
    let pause = 0;
    for (let i = 0; i < 30; i++) {
      await sleep(5);
      min = Math.min(min, g.factor);
      pause = Math.max(pause, g.pauseMs());
    }
    assert.ok(min <= 0.5, `factor ${min} after an 80 ms stall`);
    assert.ok(pause > 0);
    await sleep(800);
    assert.equal(g.factor, 1, 'back to full rate once the loop is healthy');
  } finally {
    g.stop();
  }
});
