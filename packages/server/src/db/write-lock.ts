/**
 * The write lock of one SQLite file shared by the event loop and the writer thread
 * (store/sqlite-writer.ts): two connections of one process write the file, and SQLite's own
 * file lock would make a waiting connection sleep in its busy handler (1 ms and more, on the
 * event loop). This lock lives in a SharedArrayBuffer instead: the writer thread waits for it
 * with Atomics.wait (it has nothing else to do), the event loop with Atomics.waitAsync (it
 * keeps serving sockets). Whoever holds it is the only writer of the file in this process, so
 * BEGIN IMMEDIATE never waits inside SQLite (other processes — backup, tools — still go
 * through busy_timeout).
 *
 * Fairness: the event loop announces that it waits; the writer thread then leaves the lock to
 * it at the end of its current transaction instead of taking it again for its next job.
 */

/** Atomics.waitAsync (Node ≥ 16; not yet in this TypeScript target's lib). */
const waitAsync = (Atomics as unknown as {
  waitAsync(a: Int32Array, index: number, value: number, timeoutMs?: number): { async: false; value: 'not-equal' | 'timed-out' } | { async: true; value: Promise<'ok' | 'timed-out'> };
}).waitAsync.bind(Atomics);

/** Int32 slots of the shared buffer. */
const HOLDER = 0;
const LOOP_WAITING = 1;

const FREE = 0;
const WRITER = 1;
const LOOP = 2;

/** The shared buffer to hand to the writer thread (workerData); both sides wrap it. */
export function newWriteLockBuffer(): SharedArrayBuffer {
  return new SharedArrayBuffer(8);
}

/** How the engine that owns a connection takes the process's write lock around each write. */
export interface WriteGate {
  /** Resolves (or returns) once this side holds the lock. */
  enter(): Promise<void> | void;
  leave(): void;
}

/** The event loop's side: waits without blocking. */
export class LoopWriteGate implements WriteGate {
  private readonly slots: Int32Array;

  constructor(buffer: SharedArrayBuffer) {
    this.slots = new Int32Array(buffer);
  }

  enter(): Promise<void> | void {
    if (Atomics.compareExchange(this.slots, HOLDER, FREE, LOOP) === FREE) return;
    return this.wait();
  }

  private async wait(): Promise<void> {
    Atomics.add(this.slots, LOOP_WAITING, 1);
    try {
      for (;;) {
        const held = Atomics.compareExchange(this.slots, HOLDER, FREE, LOOP);
        if (held === FREE) return;
        const w = waitAsync(this.slots, HOLDER, held, 1000);
        if (w.async) await w.value;
      }
    } finally {
      Atomics.sub(this.slots, LOOP_WAITING, 1);
    }
  }

  leave(): void {
    Atomics.store(this.slots, HOLDER, FREE);
    Atomics.notify(this.slots, HOLDER);
  }

  /** The writer thread died while holding the lock (its transaction was rolled back with its connection): free it. */
  breakWriterHold(): void {
    if (Atomics.compareExchange(this.slots, HOLDER, WRITER, FREE) === WRITER) Atomics.notify(this.slots, HOLDER);
  }
}

/** The writer thread's side: blocks its thread until the lock is free and the event loop does not want it. */
export class ThreadWriteGate implements WriteGate {
  private readonly slots: Int32Array;

  constructor(buffer: SharedArrayBuffer) {
    this.slots = new Int32Array(buffer);
  }

  enter(): void {
    for (;;) {
      if (Atomics.load(this.slots, LOOP_WAITING) === 0 && Atomics.compareExchange(this.slots, HOLDER, FREE, WRITER) === FREE) return;
      const held = Atomics.load(this.slots, HOLDER);
      // Free but wanted by the event loop: it takes it within a turn; look again shortly.
      Atomics.wait(this.slots, HOLDER, held, held === FREE ? 1 : 1000);
    }
  }

  leave(): void {
    Atomics.store(this.slots, HOLDER, FREE);
    Atomics.notify(this.slots, HOLDER);
  }
}
