import { performance } from 'node:perf_hooks';

/** How late this process's event loop runs, in ms (0 when healthy). */
export interface LoopLag {
  lagMs(): number;
  stop(): void;
  /**
   * Whether this reader has something pending that will consult `lagMs()` (the retry queue:
   * while its timer is armed). A sampler may sleep — no timer, no wake-ups — while no reader
   * wants it; it restarts on demand, and readings taken then cover the time since it restarted.
   */
  want?(on: boolean): void;
}

/**
 * Samples event-loop lag with one unref'd interval: each tick measures how late it ran
 * (drift past its schedule). `lagMs()` is the largest drift of the last `windowTicks` ticks,
 * or the time the loop has been gone since the last tick when that is larger — so a loop
 * that just came out of a long synchronous stretch reads as lagging even before the next
 * tick has run.
 */
export class IntervalLoopLag implements LoopLag {
  private timer: NodeJS.Timeout | null = null;
  private readonly recent: number[];
  private last = performance.now();
  private i = 0;
  /** Called with each tick's drift in ms (the shared sampler's readers keep their worst). */
  onTick: ((driftMs: number) => void) | null = null;

  constructor(
    private readonly intervalMs = 20,
    windowTicks = 5,
    /** Start the interval now (else at `start()`). */
    running = true,
  ) {
    this.recent = new Array<number>(windowTicks).fill(0);
    if (running) this.start();
  }

  /** Whether the interval runs (false after `stop()` until `start()`). */
  get running(): boolean {
    return this.timer !== null;
  }

  /**
   * (Re)start the interval: the window starts empty and "gone" counts from now — nothing is
   * known about the time it slept, and a loop blocked right after the restart reads as lagging.
   */
  start(): void {
    if (this.timer) return;
    this.recent.fill(0);
    this.last = performance.now();
    this.timer = setInterval(() => this.tick(), this.intervalMs);
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

  /** How long the loop has been gone past the next tick's schedule, in ms (0 when on time, or stopped). */
  gone(): number {
    if (!this.timer) return 0;
    const g = performance.now() - this.last - this.intervalMs;
    return g > 0 ? g : 0;
  }

  lagMs(): number {
    let max = this.gone();
    for (const r of this.recent) if (r > max) max = r;
    return max;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}

/**
 * The process's one event-loop lag sampler, shared by whoever asks for it (the retry queue's
 * hold, the push lane's LoopGuard): one unref'd 20 ms interval per process instead of one
 * per user. Every idle wake-up of a node costs CPU (a 10 ms perf_hooks monitor alone ~6 ms of
 * CPU per second on this project's machine); a cluster pays it once per node, so each sampler
 * less is per-node fixed work less (issue 15: three nodes on two cores).
 *
 * It runs only while some handle wants it (`want(true)`: the retry queue while its timer is
 * armed, the LoopGuard while bulk push work is going on) and sleeps — no timer at all —
 * otherwise: an idle node no longer wakes 50 times a second for readings nobody takes. On
 * restart its window starts empty and "gone" counts from the restart (nothing is known about
 * the time it slept; a loop blocked right after the restart reads as lagging).
 *
 * Each handle reads `lagMs()` (as IntervalLoopLag: the recent worst drift, or how long the loop
 * has been gone; 0 while the sampler sleeps) and `maxSinceLastRead()` (the worst drift since
 * this handle's previous call, or the time gone now when larger: LoopGuard's "worst since the
 * last sample"). `stop()` ends the handle (and its want); the sampler is dropped with the last one.
 */
export interface SharedLoopLag extends LoopLag {
  maxSinceLastRead(): number;
  want(on: boolean): void;
}

const SHARED_INTERVAL_MS = 20;
const SHARED_WINDOW_TICKS = 5;

/** The shared sampler: one IntervalLoopLag, each handle's worst drift since its last read, and how many handles want it running. */
interface SharedSampler {
  lag: IntervalLoopLag;
  handles: Set<{ max: number }>;
  wanted: number;
}

function startShared(): SharedSampler {
  const lag = new IntervalLoopLag(SHARED_INTERVAL_MS, SHARED_WINDOW_TICKS, false); // asleep until a handle wants it
  const handles = new Set<{ max: number }>();
  lag.onTick = (drift) => {
    for (const h of handles) if (drift > h.max) h.max = drift;
  };
  return { lag, handles, wanted: 0 };
}

let shared: SharedSampler | null = null;

/** A handle on the process's shared lag sampler (the sampler runs while any handle wants it; dropped with the last handle). */
export function sharedLoopLag(): SharedLoopLag {
  const s = (shared ??= startShared());
  const h = { max: 0 };
  s.handles.add(h);
  let stopped = false;
  let wants = false;
  const want = (on: boolean): void => {
    if (stopped || on === wants) return;
    wants = on;
    s.wanted += on ? 1 : -1;
    if (s.wanted > 0) s.lag.start();
    else s.lag.stop();
  };
  return {
    lagMs: () => (s.lag.running ? s.lag.lagMs() : 0),
    maxSinceLastRead() {
      const m = Math.max(h.max, s.lag.gone());
      h.max = 0;
      return m;
    },
    want,
    stop() {
      if (stopped) return;
      want(false);
      stopped = true;
      s.handles.delete(h);
      if (s.handles.size === 0) {
        s.lag.stop();
        if (shared === s) shared = null;
      }
    },
  };
}

/** How many event-loop lag samplers this module has now (0 or 1: they are shared), and whether its timer runs. For tests. */
export function loopLagSamplers(): number {
  return shared ? 1 : 0;
}

/** Whether the shared sampler's timer runs now (it sleeps while no handle wants it). For tests. */
export function loopLagSamplerRunning(): boolean {
  return shared?.lag.running ?? false;
}
