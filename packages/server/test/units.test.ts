import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { RateLimiter } from '../src/util/rate-limiter.ts';
import { GroupCommitter } from '../src/services/group-commit.ts';
import { hashPassword, verifyPassword } from '../src/util/passwords.ts';
import { loadConfig } from '../src/config/config.ts';

describe('RateLimiter', () => {
  it('allows a burst, then refills at the rate, and reports the wait', () => {
    let now = 0;
    const rl = new RateLimiter(10, 3, () => now);
    assert.deepEqual([rl.take('a'), rl.take('a'), rl.take('a')], [0, 0, 0]);
    const wait = rl.take('a');
    assert.equal(wait, 100);
    assert.equal(rl.take('b'), 0, 'keys are independent');
    now += 100;
    assert.equal(rl.take('a'), 0);
    assert.ok(rl.take('a') > 0);
  });
  it('sweeps full buckets so memory stays bounded', () => {
    let now = 0;
    const rl = new RateLimiter(10, 3, () => now);
    for (let i = 0; i < 1000; i++) rl.take(`ip${i}`);
    assert.equal(rl.size, 1000);
    now += 1000;
    rl.sweep();
    assert.equal(rl.size, 0);
  });
});

describe('GroupCommitter', () => {
  it('batches what is submitted in one turn into one write, in order', async () => {
    const batches: number[][] = [];
    const gc = new GroupCommitter<number, number>(async (b) => {
      batches.push(b);
      return b.map((x) => x * 2);
    }, { delayMs: 0, maxBatch: 100 });
    const results = await Promise.all(Array.from({ length: 250 }, (_, i) => gc.submit(i)));
    assert.deepEqual(results, Array.from({ length: 250 }, (_, i) => i * 2));
    assert.deepEqual(batches.map((b) => b.length), [100, 100, 50]);
    assert.deepEqual(batches.flat(), Array.from({ length: 250 }, (_, i) => i));
  });
  it('one bad request fails alone: a failed batch is retried one by one', async () => {
    let writes = 0;
    const gc = new GroupCommitter<number, number>(async (b) => {
      writes++;
      if (b.includes(13)) throw new Error('poison');
      return b;
    }, { delayMs: 0, maxBatch: 100 });
    const settled = await Promise.allSettled([11, 12, 13, 14].map((x) => gc.submit(x)));
    assert.deepEqual(settled.map((s) => s.status), ['fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
    assert.equal(writes, 5, 'one batch attempt + four single retries');
  });
  it('requests arriving during a slow write form the next batch', async () => {
    const batches: number[][] = [];
    const gc = new GroupCommitter<number, number>(async (b) => {
      batches.push(b);
      await new Promise((r) => setTimeout(r, 20));
      return b;
    }, { delayMs: 0, maxBatch: 100 });
    const first = gc.submit(1);
    await new Promise((r) => setImmediate(r));
    const later = [gc.submit(2), gc.submit(3)];
    await Promise.all([first, ...later]);
    assert.deepEqual(batches, [[1], [2, 3]]);
  });
});

describe('passwords', () => {
  it('scrypt hashes verify, wrong passwords and malformed hashes do not', async () => {
    const h = await hashPassword('correct horse');
    assert.match(h, /^scrypt\$16384\$8\$1\$/);
    assert.equal(await verifyPassword('correct horse', h), true);
    assert.equal(await verifyPassword('wrong horse', h), false);
    assert.equal(await verifyPassword('x', 'md5$abc'), false);
    assert.notEqual(await hashPassword('correct horse'), h, 'salted');
  });
});

describe('config', () => {
  it('reads env over defaults and rejects bad values with a clear message', () => {
    const c = loadConfig({ MAGPIE_PORT: '9000', MAGPIE_USER_RATE: '7', MAGPIE_CONFIG: '' } as NodeJS.ProcessEnv);
    assert.equal(c.port, 9000);
    assert.equal(c.limits.userRate, 7);
    assert.equal(c.limits.userBurst, 200);
    assert.throws(() => loadConfig({ MAGPIE_PORT: 'eighty' } as NodeJS.ProcessEnv), /invalid configuration:\n {2}port/);
  });
});

it('coalesced reaction events are split to fit the message size limit, in order', async () => {
  const { reactionParts } = await import('../src/lifecycle/lifecycle-service.ts');
  const changes = Array.from({ length: 1500 }, (_, i) => ({ seq: 7, emoji: '👍', user: `u${String(i).padStart(20, '0')}`, on: true, count: i + 1 }));
  const parts = reactionParts(changes, 16_384);
  assert.ok(parts.length > 1);
  for (const p of parts) assert.ok(Buffer.byteLength(JSON.stringify({ changes: p })) <= 16_384 && p.length <= 1000);
  assert.deepEqual(parts.flat(), changes, 'nothing lost, order kept');
  assert.deepEqual(reactionParts([], 16_384), []);
});
