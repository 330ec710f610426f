import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Histogram, Registry } from 'prom-client';
import { TalliedHistogram } from '../src/tallied-histogram.ts';

const BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300];

function pair() {
  const plainReg = new Registry();
  const talliedReg = new Registry();
  const cfg = { name: 'x_seconds', help: 'h', labelNames: ['via'] as const, buckets: BUCKETS };
  const plain = new Histogram({ ...cfg, registers: [plainReg] });
  const tallied = new TalliedHistogram({ ...cfg, registers: [talliedReg] });
  return { plainReg, talliedReg, plain, tallied };
}

describe('TalliedHistogram (a tally per hot label set, added at collection)', () => {
  it('exports exactly what prom-client exports for the same observations, tallied and direct label sets mixed', async () => {
    const { plainReg, talliedReg, plain, tallied } = pair();
    plain.zero({ via: 'ack' });
    const ack = tallied.tally({ via: 'ack' });
    let seed = 3;
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    // Values on every side of every bound, the bounds themselves included (le is inclusive).
    const values = [...BUCKETS, 0, 1e6, ...Array.from({ length: 2000 }, () => random() ** 3 * 400)];
    for (const v of values) {
      plain.observe({ via: 'ack' }, v);
      ack.observe(v);
      plain.observe({ via: 'retry' }, v * 2);
      tallied.observe({ via: 'retry' }, v * 2);
    }
    assert.equal(await talliedReg.metrics(), await plainReg.metrics());
    assert.deepEqual(await tallied.get(), await plain.get());
  });

  it('a tallied label set is exported (at zero) before its first observation, and reset clears it', async () => {
    const { talliedReg, tallied } = pair();
    const ack = tallied.tally({ via: 'ack' });
    assert.match(await talliedReg.metrics(), /x_seconds_count\{via="ack"\} 0/);
    ack.observe(0.02);
    ack.observe(3);
    const text = await talliedReg.metrics();
    assert.match(text, /x_seconds_bucket\{le="0.01",via="ack"\} 0/);
    assert.match(text, /x_seconds_bucket\{le="0.05",via="ack"\} 1/);
    assert.match(text, /x_seconds_bucket\{le="5",via="ack"\} 2/);
    assert.match(text, /x_seconds_bucket\{le="\+Inf",via="ack"\} 2/);
    assert.match(text, /x_seconds_sum\{via="ack"\} 3.02/);
    tallied.reset();
    assert.match(await talliedReg.metrics(), /x_seconds_count\{via="ack"\} 0/);
  });

  it('a value that is not a number is refused, as by prom-client', () => {
    const { tallied } = pair();
    assert.throws(() => tallied.tally({ via: 'ack' }).observe(NaN), TypeError);
  });
});
