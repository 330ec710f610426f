import { it } from 'node:test';
import assert from 'node:assert/strict';
import { LoopGuard, type LagProbe } from '../src/push/loop-guard.ts';
import { countIntervals } from './count-intervals.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A probe whose lag the test sets (the guard's own timer is slowed to an hour: the test takes every sample). */
function fakeProbe(): LagProbe & { lag: number } {
  return { lag: 0, maxLagMs() { return this.lag; }, stop() {} };
}

it('bulk work halves its rate per lagging sample down to the floor, and climbs back by a tenth per healthy one', () => {
  const probe = fakeProbe();
  const g = new LoopGuard(25, 3_600_000, 0.05, probe);
  try {
    g.sample();
    assert.equal(g.factor, 1);
    assert.equal(g.pauseMs(), 0);
    probe.lag = 80; // a blocked loop, as a long synchronous job would cause
    g.sample();
    assert.equal(g.factor, 0.5);
    assert.equal(g.lastLagMs, 80);
    assert.equal(g.pauseMs(), 50);
    for (let i = 0; i < 10; i++) g.sample();
    assert.equal(g.factor, 0.05, 'never below the floor');
    assert.equal(g.pauseMs(), 95);
    probe.lag = 25; // at the threshold is healthy
    const climb: number[] = [];
    for (let i = 0; i < 10; i++) {
      g.sample();
      climb.push(g.factor);
    }
    assert.ok(climb.every((f, i) => i === 0 || f > climb[i - 1]! || f === 1), `climbs steadily: ${climb}`);
    assert.equal(g.factor, 1, 'back to full rate once the loop is healthy');
    assert.equal(g.pauseMs(), 0);
  } finally {
    g.stop();
  }
});

it('a real stall of the event loop during bulk work is seen by the default probe', async () => {
  const g = new LoopGuard(25, 50);
  try {
    g.busy(); // bulk work going on (the bulk lane claimed jobs): the guard samples
    await sleep(120);
    const until = Date.now() + 80;
    while (Date.now() < until); // a blocked loop
    let min = 1;
    let pause = 0;
    for (let i = 0; i < 30; i++) {
      await sleep(5);
      min = Math.min(min, g.factor);
      pause = Math.max(pause, g.pauseMs());
    }
    assert.ok(min <= 0.5, `factor ${min} after an 80 ms stall`);
    assert.ok(pause > 0);
  } finally {
    g.stop();
  }
});

// Issue 15: an idle node wakes for nothing. The guard samples only while bulk work goes on.
it('the guard sleeps (no timer, probe not wanted) until bulk work, and again idleAfterMs after it', () => {
  let t = 0;
  const wants: boolean[] = [];
  const probe = { ...fakeProbe(), want: (on: boolean) => wants.push(on) };
  const intervals = countIntervals();
  const g = new LoopGuard(25, 200, 0.05, probe, 1000, () => t);
  try {
    assert.equal(g.awake, false);
    assert.equal(g.factor, 1);
    assert.equal(intervals.n, 0, 'no timer while idle');
    g.busy();
    assert.equal(g.awake, true);
    assert.deepEqual(wants, [true]);
    assert.equal(intervals.n, 1);
    g.busy();
    assert.equal(intervals.n, 1, 'one timer while busy');
    for (t = 200; t < 1000; t += 200) g.sample();
    assert.equal(g.awake, true, 'busy for idleAfterMs');
    g.sample(); // t = 1000: idle for idleAfterMs
    assert.equal(g.awake, false);
    assert.deepEqual(wants, [true, false]);
  } finally {
    intervals.restore();
    g.stop();
  }
});

it('asleep, the factor catches up on the skipped samples: a tenth back per healthy one, one halving for a lag seen meanwhile', () => {
  let t = 0;
  const probe = fakeProbe();
  const g = new LoopGuard(25, 200, 0.05, probe, 1000, () => t);
  try {
    probe.lag = 80;
    g.sample();
    g.sample();
    assert.equal(g.factor, 0.25);
    probe.lag = 0;
    t = 100;
    assert.equal(g.factor, 0.25, 'no sample skipped yet');
    t = 1000; // 5 samples skipped, the loop healthy
    assert.ok(Math.abs(g.factor - 0.75) < 1e-9, `${g.factor}`);
    t = 5000;
    assert.equal(g.factor, 1);
    probe.lag = 300; // the shared sampler ran for another reader and saw a stall
    t = 5400;
    assert.equal(g.factor, 0.5);
    assert.equal(g.lastLagMs, 300);
  } finally {
    g.stop();
  }
});

