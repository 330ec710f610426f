/**
 * The process write lock of a SQLite file (db/write-lock.ts) between the event loop and the
 * writer thread, with the writer side in a real worker thread: a waiting event loop that does
 * not get round to taking the free lock (busy with other callbacks) no longer stalls the
 * writer's next job beyond the courtesy window, until it has waited strictAfterMs; after
 * that the writer leaves the lock to it.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { COURTESY_MS, LoopWriteGate, newWriteLockBuffer } from '../src/db/write-lock.ts';

const LOCK = new URL('../src/db/write-lock.ts', import.meta.url).href;
const WORKER = `
  const { parentPort, workerData } = await import('node:worker_threads');
  (await import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))})).register();
  const { ThreadWriteGate } = await import(${JSON.stringify(LOCK)});
  const gate = new ThreadWriteGate(workerData.buffer, { strictAfterMs: workerData.strictAfterMs });
  parentPort.on('message', (cmd) => {
    const t0 = performance.now();
    if (cmd === 'enter') gate.enter();
    else gate.leave();
    parentPort.postMessage({ cmd, ms: performance.now() - t0 });
  });
  parentPort.postMessage({ cmd: 'ready', ms: 0 });
`;

/** Block this thread (its event loop: a busy one) for `ms`. */
const blockFor = (ms: number): void => void Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

const HOLDER = 0;
const FREE = 0;
const WRITER = 1;

/** A write lock with its writer side in a worker thread that enters and leaves on command. */
function harness(strictAfterMs: number) {
  const buffer = newWriteLockBuffer();
  const slots = new Int32Array(buffer);
  const loop = new LoopWriteGate(buffer);
  const worker = new Worker(WORKER, { eval: true, workerData: { buffer, strictAfterMs } });
  const replies: { cmd: string; ms: number }[] = [];
  let waiting: ((r: { cmd: string; ms: number }) => void) | null = null;
  worker.on('message', (r: { cmd: string; ms: number }) => {
    if (waiting) {
      const w = waiting;
      waiting = null;
      w(r);
    } else replies.push(r);
  });
  const reply = (): Promise<{ cmd: string; ms: number }> => (replies.length > 0 ? Promise.resolve(replies.shift()!) : new Promise((r) => (waiting = r)));
  const writer = async (cmd: 'enter' | 'leave') => {
    worker.postMessage(cmd);
    return reply();
  };
  return { slots, loop, worker, replies, reply, writer };
}

describe('the SQLite write lock between the event loop and the writer thread', () => {
  const workers: Worker[] = [];
  after(() => Promise.all(workers.map((w) => w.terminate())));

  it('the writer goes on after the courtesy window while a busy event loop has waited less than strictAfterMs', async () => {
    const { slots, loop, worker, reply, writer } = harness(10_000);
    workers.push(worker);
    assert.equal((await reply()).cmd, 'ready');
    await writer('enter');
    const wanted = loop.enter();
    assert.ok(wanted instanceof Promise, 'held by the writer: the event loop waits');
    // The writer ends its transaction and starts the next while this event loop is busy.
    worker.postMessage('leave');
    worker.postMessage('enter');
    blockFor(300);
    assert.equal(Atomics.load(slots, HOLDER), WRITER, 'the writer took the lock again without waiting for the busy event loop');
    assert.equal((await reply()).cmd, 'leave');
    const entered = await reply();
    assert.ok(entered.ms >= COURTESY_MS - 1 && entered.ms < 250, `it left the lock to the event loop for the courtesy window only (${entered.ms.toFixed(1)} ms)`);
    await writer('leave');
    await wanted;
    loop.leave();
  });

  it('after strictAfterMs of waiting the event loop gets the lock before the writer’s next job', async () => {
    const { slots, loop, worker, replies, reply, writer } = harness(50);
    workers.push(worker);
    assert.equal((await reply()).cmd, 'ready');
    await writer('enter');
    const wanted = loop.enter();
    assert.ok(wanted instanceof Promise);
    blockFor(60);
    worker.postMessage('leave');
    worker.postMessage('enter');
    blockFor(100);
    assert.equal(Atomics.load(slots, HOLDER), FREE, 'the writer leaves the free lock to the event loop');
    assert.equal((await reply()).cmd, 'leave');
    await wanted;
    // The event loop holds it; the writer's enter still waits.
    blockFor(20);
    assert.equal(replies.length, 0, 'the writer waits while the event loop holds the lock');
    loop.leave();
    assert.equal((await reply()).cmd, 'enter');
    await writer('leave');
  });

  it('with no event loop waiting the writer takes the free lock at once; the event loop gets it when the writer leaves', async () => {
    const { loop, worker, reply, writer } = harness(50);
    workers.push(worker);
    assert.equal((await reply()).cmd, 'ready');
    const r = await writer('enter');
    assert.ok(r.ms < 100, `${r.ms} ms`);
    const wanted = loop.enter();
    assert.ok(wanted instanceof Promise);
    await writer('leave');
    await wanted;
    loop.leave();
  });
});
