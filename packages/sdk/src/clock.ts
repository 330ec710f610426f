/**
 * The clock the SDK runs on. Everything time-based (request timeouts, heartbeats, backoff,
 * gap waits, ACK batching) goes through it, so tests can drive the SDK with a fake clock.
 */
export type TimerHandle = unknown;

export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
  clearTimeout: (handle) => globalThis.clearTimeout(handle as ReturnType<typeof globalThis.setTimeout>),
};

/** A restartable one-shot timer on a Clock. */
export class Timer {
  private handle: TimerHandle | null = null;
  private due = 0;
  constructor(private readonly clock: Clock) {}

  /** (Re)start: any pending run is cancelled first. */
  start(ms: number, fn: () => void): void {
    this.stop();
    this.due = this.clock.now() + ms;
    this.handle = this.clock.setTimeout(() => {
      this.handle = null;
      fn();
    }, ms);
  }

  stop(): void {
    if (this.handle !== null) {
      this.clock.clearTimeout(this.handle);
      this.handle = null;
    }
  }

  get active(): boolean {
    return this.handle !== null;
  }

  /** Milliseconds until the pending run, or null when idle. */
  remaining(): number | null {
    return this.handle === null ? null : Math.max(0, this.due - this.clock.now());
  }
}
