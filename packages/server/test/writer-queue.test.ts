/**
 * The SQLite writer thread's job order (store/writer-queue.ts): appends before waiting ACK
 * flushes and delivered marks, arrival order within each, and no flush passed over twice in a row.
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { WriterQueue } from '../src/store/writer-queue.ts';

const drain = (q: WriterQueue<{ job: string; n: number }>): string[] => {
  const out: string[] = [];
  for (let j = q.shift(); j; j = q.shift()) out.push(`${j.job}${j.n}`);
  return out;
};

it('an append waiting behind an ACK flush runs first; appends keep their order, and so do the other jobs', () => {
  const q = new WriterQueue<{ job: string; n: number }>();
  q.push({ job: 'acks', n: 1 });
  q.push({ job: 'append', n: 1 });
  assert.equal(q.size, 2);
  assert.equal(q.appendsWaiting, 1);
  assert.deepEqual(drain(q), ['append1', 'acks1']);
  assert.equal(q.appendsWaiting, 0);
  q.push({ job: 'acks', n: 2 });
  q.push({ job: 'delivered', n: 3 });
  q.push({ job: 'append', n: 2 });
  q.push({ job: 'close', n: 4 });
  assert.deepEqual(drain(q), ['append2', 'acks2', 'delivered3', 'close4']);
  assert.equal(q.shift(), undefined);
});

it('under sustained appends a waiting flush is passed over at most once in a row', () => {
  const q = new WriterQueue<{ job: string; n: number }>();
  q.push({ job: 'acks', n: 1 });
  q.push({ job: 'append', n: 1 });
  q.push({ job: 'append', n: 2 });
  q.push({ job: 'acks', n: 2 });
  q.push({ job: 'append', n: 3 });
  assert.deepEqual(drain(q), ['append1', 'acks1', 'append2', 'acks2', 'append3']);
});

it('with nothing else waiting, jobs run in arrival order', () => {
  const q = new WriterQueue<{ job: string; n: number }>();
  for (let n = 1; n <= 3; n++) q.push({ job: 'append', n });
  assert.deepEqual(drain(q), ['append1', 'append2', 'append3']);
  q.push({ job: 'acks', n: 1 });
  q.push({ job: 'acks', n: 2 });
  assert.deepEqual(drain(q), ['acks1', 'acks2']);
});
