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
 * Fairness: the event loop announces that it waits (and since when). The writer thread then
 * leaves the free lock to it for a short courtesy window (COURTESY_MS: an event loop that is
 * not busy takes it within a fraction of a millisecond) and otherwise goes on with its next
 * job; once the event loop has waited STRICT_AFTER_MS, the writer leaves the lock to it until
 * it has had it. (Leaving it every time until the event loop took it stalled the writer thread
 * — every group commit and ACK flush — for as long as the event loop took to get round to the
 * resolved wait: on a busy server 100–400 ms per write of the event loop, several times a
 * second, for writes of the event loop that hold the lock ~10 ms; issue 23.)
 */

/** Atomics.waitAsync (Node ≥ 16; not yet in this TypeScript target's lib). */
const waitAsync = (Atomics as unknown as {
  waitAsync(a: Int32Array, index: number, value: number, timeoutMs?: number): { async: false; value: 'not-equal' | 'timed-out' } | { async: true; value: Promise<'ok' | 'timed-out'> };
}).waitAsync.bind(Atomics);

/** Int32 slots of the shared buffer. */
const HOLDER = 0;
const LOOP_WAITING = 1;
/** When the event loop began to wait (clockMs()), valid while LOOP_WAITING > 0. */
const LOOP_SINCE = 2;

/** How long the writer thread leaves the free lock to a waiting event loop before its next job (ms). */
export const COURTESY_MS = 2;
/** A waiting event loop gets the lock before the writer's next job once it has waited this long (ms). */
export const STRICT_AFTER_MS = 50;

/** Milliseconds on a clock both threads share (each thread's performance.now() has its own origin), in 31 bits. */
function clockMs(): number {
  return Math.floor(performance.timeOrigin + performance.now()) % 0x8000_0000;
}

/** Milliseconds since `since` (a clockMs() value), wrap-around included. */
function msSince(since: number): number {
  return (clockMs() - since + 0x8000_0000) % 0x8000_0000;
}

const FREE = 0;
const WRITER = 1;
const LOOP = 2;

/** The shared buffer to hand to the writer thread (workerData); both sides wrap it. */
export function newWriteLockBuffer(): SharedArrayBuffer {
  return new SharedArrayBuffer(12);
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
    // The first waiter stamps the time (the engine runs one write at a time: there is one).
    if (Atomics.load(this.slots, LOOP_WAITING) === 0) Atomics.store(this.slots, LOOP_SINCE, clockMs());
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
  private readonly courtesyMs: number;
  private readonly strictAfterMs: number;

  constructor(buffer: SharedArrayBuffer, opts: { courtesyMs?: number; strictAfterMs?: number } = {}) {
    this.slots = new Int32Array(buffer);
    this.courtesyMs = opts.courtesyMs ?? COURTESY_MS;
    this.strictAfterMs = opts.strictAfterMs ?? STRICT_AFTER_MS;
  }

  enter(): void {
    /** When this call first saw the lock free and the event loop waiting (clockMs()), −1: not yet. */
    let courtesyFrom = -1;
    for (;;) {
      if (Atomics.load(this.slots, LOOP_WAITING) === 0 || !this.yieldsTo(courtesyFrom)) {
        if (Atomics.compareExchange(this.slots, HOLDER, FREE, WRITER) === FREE) return;
      }
      const held = Atomics.load(this.slots, HOLDER);
      // Free but wanted by the event loop: it may take it within a turn; look again shortly.
      if (held === FREE && courtesyFrom < 0) courtesyFrom = clockMs();
      Atomics.wait(this.slots, HOLDER, held, held === FREE ? 1 : 1000);
    }
  }

  /** The event loop waits: leave it the free lock (its courtesy window, or it has waited long enough to insist). */
  private yieldsTo(courtesyFrom: number): boolean {
    if (courtesyFrom < 0 || msSince(courtesyFrom) < this.courtesyMs) return true;
    return msSince(Atomics.load(this.slots, LOOP_SINCE)) >= this.strictAfterMs;
  }

  leave(): void {
    Atomics.store(this.slots, HOLDER, FREE);
    Atomics.notify(this.slots, HOLDER);
  }
}
