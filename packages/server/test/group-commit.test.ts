/**
 * GroupCommitter (services/group-commit.ts): one write at a time in submit order, one-by-one
 * retries of a failed batch before the next batch starts.
 * By default the written batch's callers resume before the next batch is handed over; with
 * `overlap` (a writer thread) the next batch goes first, so the writer is not idle while the
 * event loop answers the previous one.
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { GroupCommitter } from '../src/services/group-commit.ts';

const tick = () => new Promise((r) => setImmediate(r));

/** A store stand-in whose writes finish when the test says so. */
function controlledWrites(fail?: (batch: number[]) => boolean) {
  const log: string[] = [];
  const open: { batch: number[]; finish: () => void }[] = [];
  let writing = 0;
  let maxWriting = 0;
  const write = (batch: number[]): Promise<number[]> => {
    writing++;
    maxWriting = Math.max(maxWriting, writing);
    log.push(`write ${batch.join(',')}`);
    return new Promise((resolve, reject) => {
      open.push({
        batch,
        finish: () => {
          writing--;
          if (fail?.(batch)) reject(new Error(`bad batch ${batch.join(',')}`));
          else resolve(batch.map((x) => x * 10));
        },
      });
    });
  };
  return { write, log, open, maxWriting: () => maxWriting };
}

it('a failed batch is retried one by one before the next batch starts; order is submit order', async () => {
  const w = controlledWrites((batch) => batch.length > 1 && batch.includes(2));
  const c = new GroupCommitter<number, number>(w.write, { delayMs: 0, maxBatch: 100 });
  const results: Promise<number>[] = [c.submit(1), c.submit(2)];
  await tick();
  results.push(c.submit(3));
  await tick();
  const auto = setInterval(() => w.open.shift()?.finish(), 1);
  try {
    assert.deepEqual(await Promise.all(results), [10, 20, 30]);
  } finally {
    clearInterval(auto);
  }
  assert.deepEqual(w.log, ['write 1,2', 'write 1', 'write 2', 'write 3']);
  assert.equal(w.maxWriting(), 1);
});

it('a request that fails alone is rejected; its neighbours are written', async () => {
  const c = new GroupCommitter<number, number>(
    async (batch) => {
      if (batch.includes(2)) throw new Error('two is bad');
      return batch.map((x) => x + 1);
    },
    { delayMs: 0, maxBatch: 100 },
  );
  const [a, b, d] = await Promise.allSettled([c.submit(1), c.submit(2), c.submit(3)]);
  assert.deepEqual(a, { status: 'fulfilled', value: 2 });
  assert.equal(b!.status, 'rejected');
  assert.deepEqual(d, { status: 'fulfilled', value: 4 });
});

/** Submits 1 and 2 in one turn, 3 while they are written; reports what was written when 1's caller resumed. */
async function resumeOrder(overlap: boolean, fail?: (batch: number[]) => boolean) {
  const w = controlledWrites(fail);
  const c = new GroupCommitter<number, number>(w.write, { delayMs: 0, maxBatch: 100, overlap });
  let seenByFirst: string[] = [];
  const results: Promise<number>[] = [c.submit(1).then((v) => ((seenByFirst = [...w.log]), v)), c.submit(2)];
  await tick();
  results.push(c.submit(3), c.submit(4));
  await tick();
  const auto = setInterval(() => w.open.shift()?.finish(), 1);
  try {
    const settled = await Promise.allSettled(results);
    return { settled, seenByFirst, log: w.log, maxWriting: w.maxWriting() };
  } finally {
    clearInterval(auto);
  }
}

it("without overlap, the written batch's callers resume before the next batch is handed over", async () => {
  const r = await resumeOrder(false);
  assert.deepEqual(r.seenByFirst, ['write 1,2']);
  assert.deepEqual(r.log, ['write 1,2', 'write 3,4']);
});

it("with overlap, the next batch is handed over before the written batch's callers resume; one write at a time", async () => {
  const r = await resumeOrder(true);
  assert.deepEqual(r.seenByFirst, ['write 1,2', 'write 3,4']);
  assert.deepEqual(r.settled.map((s) => (s.status === 'fulfilled' ? s.value : 'rejected')), [10, 20, 30, 40]);
  assert.deepEqual(r.log, ['write 1,2', 'write 3,4']);
  assert.equal(r.maxWriting, 1);
});

it('with overlap, a failed batch is retried one by one before the batch after it is handed over', async () => {
  const r = await resumeOrder(true, (batch) => batch.length > 1 && batch.includes(2));
  assert.deepEqual(r.settled.map((s) => (s.status === 'fulfilled' ? s.value : 'rejected')), [10, 20, 30, 40]);
  assert.deepEqual(r.log, ['write 1,2', 'write 1', 'write 2', 'write 3,4']);
  assert.equal(r.maxWriting, 1);
});

it('with overlap, a batch that fails whole is rejected before the next batch is written', async () => {
  const w = controlledWrites((batch) => batch.includes(1));
  const c = new GroupCommitter<number, number>(w.write, { delayMs: 0, maxBatch: 100, overlap: true, whole: () => true });
  const first = [c.submit(1), c.submit(2)];
  await tick();
  const second = c.submit(3);
  await tick();
  const auto = setInterval(() => w.open.shift()?.finish(), 1);
  try {
    const s = await Promise.allSettled([...first, second]);
    assert.deepEqual(s.map((x) => x.status), ['rejected', 'rejected', 'fulfilled']);
  } finally {
    clearInterval(auto);
  }
  assert.deepEqual(w.log, ['write 1,2', 'write 3']);
});

it('with overlap and gather, a trickle waits for the end of the turn and takes in what arrives meanwhile', async () => {
  const w = controlledWrites();
  const c = new GroupCommitter<number, number>(w.write, { delayMs: 0, maxBatch: 100, overlap: true, gather: 0.5 });
  const results: Promise<number>[] = [1, 2, 3, 4].map((x) => c.submit(x));
  await tick();
  assert.deepEqual(w.log, ['write 1,2,3,4']);
  // One request waits when the batch of four commits: less than half of it, so not handed over at once…
  results.push(c.submit(5));
  w.open.shift()!.finish();
  await Promise.resolve();
  await Promise.resolve();
  assert.deepEqual(w.log, ['write 1,2,3,4']);
  // …the first batch's callers resume and more arrive in the same turn; the next batch takes them all.
  assert.equal(await results[0], 10);
  results.push(c.submit(6), c.submit(7));
  await tick();
  assert.deepEqual(w.log, ['write 1,2,3,4', 'write 5,6,7']);
  // Two waiting after a batch of three (≥ half): handed over before the callers resume.
  results.push(c.submit(8), c.submit(9));
  let seenByFive: string[] = [];
  const five = results[4]!.then((v) => ((seenByFive = [...w.log]), v));
  w.open.shift()!.finish();
  assert.equal(await five, 50);
  assert.deepEqual(seenByFive, ['write 1,2,3,4', 'write 5,6,7', 'write 8,9']);
  w.open.shift()!.finish();
  assert.deepEqual(await Promise.all(results), [10, 20, 30, 40, 50, 60, 70, 80, 90]);
  assert.equal(w.maxWriting(), 1);
});

it('with gather above 1, as many as were just written wait for the end of the turn, but a full batch goes at once', async () => {
  const w = controlledWrites();
  const c = new GroupCommitter<number, number>(w.write, { delayMs: 0, maxBatch: 3, overlap: true, gather: 1.5 });
  const results: Promise<number>[] = [1, 2].map((x) => c.submit(x));
  await tick();
  assert.deepEqual(w.log, ['write 1,2']);
  // Two wait after a batch of two (< 1.5 × 2): not handed over at once…
  results.push(c.submit(3), c.submit(4));
  w.open.shift()!.finish();
  await Promise.resolve();
  await Promise.resolve();
  assert.deepEqual(w.log, ['write 1,2']);
  // …but at the end of the turn, with what arrived meanwhile (cut at maxBatch).
  assert.equal(await results[0], 10);
  results.push(c.submit(5));
  await tick();
  assert.deepEqual(w.log, ['write 1,2', 'write 3,4,5']);
  // A full batch (maxBatch, below 1.5 × 3) waiting goes before the callers resume.
  results.push(c.submit(6), c.submit(7), c.submit(8));
  let seenByThree: string[] = [];
  const three = results[2]!.then((v) => ((seenByThree = [...w.log]), v));
  w.open.shift()!.finish();
  assert.equal(await three, 30);
  assert.deepEqual(seenByThree, ['write 1,2', 'write 3,4,5', 'write 6,7,8']);
  w.open.shift()!.finish();
  assert.deepEqual(await Promise.all(results), [10, 20, 30, 40, 50, 60, 70, 80]);
  assert.equal(w.maxWriting(), 1);
});
