import { sharedLoopLag } from '../util/loop-lag.ts';

/**
 * Bulk work yields to live chat: watches this process's event-loop delay and turns it into
 * a factor in (0, 1] for the bulk lane's rate and the campaign intake. When the loop lags
 * beyond `lagMs` the factor halves (down to `floor`); when it is healthy again it climbs
 * back by a tenth per sample (AIMD, sampled every `sampleMs`).
 *
 * It samples only while bulk work is going on: `busy()` (the bulk lane claimed jobs, a
 * campaign is being taken in) keeps it — and the lag sampler it reads — running for
 * `idleAfterMs` more; then it sleeps, no timer at all, and an idle node does not wake for it.
 * Read while asleep (or on waking), `factor` first catches up on the samples it skipped: the
 * worst lag its probe saw meanwhile (the shared sampler may have run for the retry queue)
 * halves it once, otherwise it climbs a tenth per skipped sample.
 */
export class LoopGuard {
  private timer: NodeJS.Timeout | null = null;
  private f = 1;
  lastLagMs = 0;
  /** When the last sample was taken (or accounted for by catching up), performance.now(). */
  private sampledAt: number;
  private busyUntil = -Infinity;

  constructor(
    private readonly lagMs: number,
    private readonly sampleMs = 200,
    private readonly floor = 0.05,
    private readonly probe: LagProbe = loopDelayProbe(),
    private readonly idleAfterMs = 2000,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.sampledAt = this.now();
  }

  /** The bulk rate factor now (caught up first if the guard was asleep). */
  get factor(): number {
    if (!this.timer) this.catchUp();
    return this.f;
  }

  /** Whether the guard is sampling now (its timer runs). */
  get awake(): boolean {
    return this.timer !== null;
  }

  /** Bulk work is going on: sample (wake if asleep) for at least `idleAfterMs` more. */
  busy(): void {
    this.busyUntil = this.now() + this.idleAfterMs;
    if (this.timer) return;
    this.catchUp();
    this.probe.want?.(true);
    this.timer = setInterval(() => this.sample(), this.sampleMs);
    this.timer.unref();
  }

  /** One sample (the timer takes one every `sampleMs` while awake): the worst lag since the last one moves the factor. */
  sample(): void {
    this.lastLagMs = this.probe.maxLagMs();
    if (this.lastLagMs > this.lagMs) this.f = Math.max(this.floor, this.f / 2);
    else this.f = Math.min(1, this.f + 0.1);
    const now = this.now();
    this.sampledAt = now;
    if (this.timer && now >= this.busyUntil) this.sleep();
  }

  /** Asleep: account for the samples skipped since the last one (one halving for a lag seen meanwhile, else a tenth back per sample). */
  private catchUp(): void {
    const skipped = Math.floor((this.now() - this.sampledAt) / this.sampleMs);
    if (skipped <= 0) return;
    this.sampledAt += skipped * this.sampleMs;
    this.lastLagMs = this.probe.maxLagMs();
    if (this.lastLagMs > this.lagMs) this.f = Math.max(this.floor, this.f / 2);
    else this.f = Math.min(1, this.f + 0.1 * skipped);
  }

  private sleep(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.probe.want?.(false);
  }

  /** A pause for bulk intake between slices: none when healthy, up to ~100 ms when throttled hard. */
  pauseMs(): number {
    this.busy();
    const f = this.factor;
    return f >= 1 ? 0 : Math.round(100 * (1 - f));
  }

  stop(): void {
    this.sleep();
    this.probe.stop();
  }
}

/** Where a LoopGuard reads the lag: the worst event-loop delay (ms) since the last read; `want` while the guard samples. */
export interface LagProbe {
  maxLagMs(): number;
  stop(): void;
  want?(on: boolean): void;
}

/**
 * This process's event-loop lag: the worst drift past schedule since the last read, from the
 * process's one shared lag sampler (util/loop-lag.ts sharedLoopLag, 20 ms ticks; the retry
 * queue's hold reads the same one) instead of a perf_hooks monitor of its own waking the loop
 * every 10 ms on every node. Wanted only while the guard samples.
 */
export function loopDelayProbe(): LagProbe {
  const lag = sharedLoopLag();
  return {
    maxLagMs: () => lag.maxSinceLastRead(),
    stop: () => lag.stop(),
    want: (on) => lag.want(on),
  };
}
