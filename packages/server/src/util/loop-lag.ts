import { performance } from 'node:perf_hooks';

/** How late this process's event loop runs, in ms (0 when healthy). */
export interface LoopLag {
  lagMs(): number;
  stop(): void;
}

/**
 * Samples event-loop lag with one unref'd interval: each tick measures how late it ran
 * (drift past its schedule). `lagMs()` is the largest drift of the last `windowTicks` ticks,
 * or the time the loop has been gone since the last tick when that is larger — so a loop
 * that just came out of a long synchronous stretch reads as lagging even before the next
 * tick has run.
 */
export class IntervalLoopLag implements LoopLag {
  private readonly timer: NodeJS.Timeout;
  private readonly recent: number[];
  private last = performance.now();
  private i = 0;

  constructor(
    private readonly intervalMs = 20,
    windowTicks = 5,
  ) {
    this.recent = new Array<number>(windowTicks).fill(0);
    this.timer = setInterval(() => this.tick(), intervalMs);
    this.timer.unref();
  }

  private tick(): void {
    const now = performance.now();
    this.recent[this.i] = Math.max(0, now - this.last - this.intervalMs);
    this.i = (this.i + 1) % this.recent.length;
    this.last = now;
  }

  lagMs(): number {
    const gone = performance.now() - this.last - this.intervalMs;
    let max = gone > 0 ? gone : 0;
    for (const r of this.recent) if (r > max) max = r;
    return max;
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
