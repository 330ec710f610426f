import type { Clock, TimerHandle } from '../../src/clock.ts';

/** Let every pending promise continuation run (the SDK does no real I/O under a fake clock). */
export async function flush(rounds = 3): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise<void>((r) => setImmediate(r));
}

interface FakeTimer {
  id: number;
  due: number;
  fn: () => void;
}

/** A controllable clock: time moves only in advance(); due timers run in order. */
export class FakeClock implements Clock {
  private t: number;
  private nextId = 1;
  private readonly timers = new Map<number, FakeTimer>();

  constructor(start = 1_700_000_000_000) {
    this.t = start;
  }

  now(): number {
    return this.t;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const id = this.nextId++;
    this.timers.set(id, { id, due: this.t + Math.max(0, ms), fn });
    return id;
  }

  clearTimeout(handle: TimerHandle): void {
    this.timers.delete(handle as number);
  }

  get pendingTimers(): number {
    return this.timers.size;
  }

  /** Move time forward by ms, running every timer that falls due (and the work it causes). */
  async advance(ms: number): Promise<void> {
    const target = this.t + ms;
    for (;;) {
      await flush();
      let next: FakeTimer | undefined;
      for (const x of this.timers.values()) {
        if (x.due <= target && (!next || x.due < next.due || (x.due === next.due && x.id < next.id))) next = x;
      }
      if (!next) break;
      this.timers.delete(next.id);
      this.t = next.due;
      next.fn();
    }
    this.t = target;
    await flush();
  }

  /** Advance in steps until cond() holds (or maxMs passed); returns the time it took. */
  async advanceUntil(cond: () => boolean, maxMs: number, stepMs = 10): Promise<number> {
    const start = this.t;
    while (!cond()) {
      if (this.t - start >= maxMs) throw new Error(`condition not met within ${maxMs} ms of fake time`);
      await this.advance(stepMs);
    }
    return this.t - start;
  }
}
