import { sharedLoopLag } from '../util/loop-lag.ts';

/**
 * Bulk work yields to live chat: watches this process's event-loop delay and turns it into
 * a factor in (0, 1] for the bulk lane's rate and the campaign intake. When the loop lags
 * beyond `lagMs` the factor halves (down to `floor`); when it is healthy again it climbs
 * back by a tenth per sample (AIMD, sampled every `sampleMs`).
 */
export class LoopGuard {
  private readonly timer: NodeJS.Timeout;
  factor = 1;
  lastLagMs = 0;

  constructor(
    private readonly lagMs: number,
    sampleMs = 200,
    private readonly floor = 0.05,
    private readonly probe: LagProbe = loopDelayProbe(),
  ) {
    this.timer = setInterval(() => this.sample(), sampleMs);
    this.timer.unref();
  }

  /** One sample (the timer takes one every `sampleMs`): the worst lag since the last one moves the factor. */
  sample(): void {
    this.lastLagMs = this.probe.maxLagMs();
    if (this.lastLagMs > this.lagMs) this.factor = Math.max(this.floor, this.factor / 2);
    else this.factor = Math.min(1, this.factor + 0.1);
  }

  /** A pause for bulk intake between slices: none when healthy, up to ~100 ms when throttled hard. */
  pauseMs(): number {
    return this.factor >= 1 ? 0 : Math.round(100 * (1 - this.factor));
  }

  stop(): void {
    clearInterval(this.timer);
    this.probe.stop();
  }
}

/** Where a LoopGuard reads the lag: the worst event-loop delay (ms) since the last read. */
export interface LagProbe {
  maxLagMs(): number;
  stop(): void;
}

/**
 * This process's event-loop lag: the worst drift past schedule since the last read, from the
 * process's one shared lag sampler (util/loop-lag.ts sharedLoopLag, 20 ms ticks; the retry
 * queue's hold reads the same one) instead of a perf_hooks monitor of its own waking the loop
 * every 10 ms on every node.
 */
export function loopDelayProbe(): LagProbe {
  const lag = sharedLoopLag();
  return {
    maxLagMs: () => lag.maxSinceLastRead(),
    stop: () => lag.stop(),
  };
}
