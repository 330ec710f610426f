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
  /** Called with each tick's drift in ms (the shared sampler's readers keep their worst). */
  onTick: ((driftMs: number) => void) | null = null;

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
    const drift = Math.max(0, now - this.last - this.intervalMs);
    this.recent[this.i] = drift;
    this.i = (this.i + 1) % this.recent.length;
    this.last = now;
    this.onTick?.(drift);
  }

  /** How long the loop has been gone past the next tick's schedule, in ms (0 when on time). */
  gone(): number {
    const g = performance.now() - this.last - this.intervalMs;
    return g > 0 ? g : 0;
  }

  lagMs(): number {
    let max = this.gone();
    for (const r of this.recent) if (r > max) max = r;
    return max;
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

/**
 * The process's one event-loop lag sampler, shared by whoever asks for it (the retry queue's
 * hold, the push lane's LoopGuard): one unref'd 20 ms interval per process instead of one
 * per user. Every idle wake-up of a node costs CPU (a 10 ms perf_hooks monitor alone ~6 ms of
 * CPU per second on this project's machine); a cluster pays it once per node, so each sampler
 * less is per-node fixed work less (issue 15: three nodes on two cores).
 *
 * Each handle reads `lagMs()` (as IntervalLoopLag: the recent worst drift, or how long the loop
 * has been gone) and `maxSinceLastRead()` (the worst drift since this handle's previous call,
 * or the time gone now when larger: LoopGuard's "worst since the last sample"). `stop()` ends the
 * handle; the interval stops with the last one.
 */
export interface SharedLoopLag extends LoopLag {
  maxSinceLastRead(): number;
}

const SHARED_INTERVAL_MS = 20;
const SHARED_WINDOW_TICKS = 5;

/** The shared sampler: one IntervalLoopLag, and each handle's worst drift since its last read. */
interface SharedSampler {
  lag: IntervalLoopLag;
  handles: Set<{ max: number }>;
}

function startShared(): SharedSampler {
  const lag = new IntervalLoopLag(SHARED_INTERVAL_MS, SHARED_WINDOW_TICKS);
  const handles = new Set<{ max: number }>();
  lag.onTick = (drift) => {
    for (const h of handles) if (drift > h.max) h.max = drift;
  };
  return { lag, handles };
}

let shared: SharedSampler | null = null;

/** A handle on the process's shared lag sampler (started with the first handle, stopped with the last). */
export function sharedLoopLag(): SharedLoopLag {
  const s = (shared ??= startShared());
  const h = { max: 0 };
  s.handles.add(h);
  let stopped = false;
  return {
    lagMs: () => s.lag.lagMs(),
    maxSinceLastRead() {
      const m = Math.max(h.max, s.lag.gone());
      h.max = 0;
      return m;
    },
    stop() {
      if (stopped) return;
      stopped = true;
      s.handles.delete(h);
      if (s.handles.size === 0) {
        s.lag.stop();
        if (shared === s) shared = null;
      }
    },
  };
}

/** How many event-loop lag samplers this module runs now (0 or 1: they are shared). For tests. */
export function loopLagSamplers(): number {
  return shared ? 1 : 0;
}
