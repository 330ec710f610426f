import type { AppState } from './heartbeat.ts';

export interface ReconnectOptions {
  /** Delay before the first reconnect after a working connection dropped. */
  initialDelayMs: number;
  /** Growth per consecutive failed attempt. */
  factor: number;
  /** Cap of the foreground delay. */
  maxDelayMs: number;
  /** Each delay is multiplied by a random factor in [1 - jitter, 1 + jitter]. */
  jitter: number;
  /** Delay right after the network came back (or the app came to the foreground). */
  onlineDelayMs: number;
  /** Multiplier while the app is in the background. */
  backgroundFactor: number;
  /** Multiplier while the app says the network is down. */
  offlineFactor: number;
  /** Cap of the delay in the background or while the network is down. */
  maxSlowDelayMs: number;
  /**
   * After this many consecutive failed attempts the client slows down to `slowIntervalMs`
   * (jittered) and keeps trying; network-online and foreground still try at once.
   */
  maxFailures: number;
  /** The interval between attempts once `maxFailures` attempts in a row have failed (order of a minute). */
  slowIntervalMs: number;
  /** An attempt that is not authenticated within this time counts as failed. */
  connectTimeoutMs: number;
}

export const defaultReconnectOptions: ReconnectOptions = {
  initialDelayMs: 500,
  factor: 2,
  maxDelayMs: 30_000,
  jitter: 0.3,
  onlineDelayMs: 100,
  backgroundFactor: 4,
  offlineFactor: 4,
  maxSlowDelayMs: 120_000,
  maxFailures: 6,
  slowIntervalMs: 60_000,
  connectTimeoutMs: 10_000,
};

export interface ReconnectContext {
  appState: AppState;
  networkOnline: boolean;
  /** The network just came back (or the app came to the foreground): use the short delay. */
  wake?: boolean;
}

/**
 * Backoff policy: growing, jittered delays; short right after the network returns; longer
 * in the background or while the network is down. After `maxFailures` consecutive failed
 * attempts it slows down to `slowIntervalMs` but never stops: a server outage produces no
 * network event, so waiting for one would leave the client offline for good.
 */
export class ReconnectPolicy {
  private failuresInARow = 0;

  constructor(
    readonly options: ReconnectOptions = defaultReconnectOptions,
    private readonly random: () => number = Math.random,
  ) {}

  get failures(): number {
    return this.failuresInARow;
  }

  /** `maxFailures` attempts in a row failed: attempts now come every `slowIntervalMs`. */
  get slowedDown(): boolean {
    return this.failuresInARow >= this.options.maxFailures;
  }

  /** An attempt failed before it was authenticated. */
  recordFailure(): void {
    this.failuresInARow++;
  }

  /** An attempt got through (welcome received). */
  recordSuccess(): void {
    this.failuresInARow = 0;
  }

  /** Start over (network back, app in the foreground, manual connect). */
  reset(): void {
    this.failuresInARow = 0;
  }

  /** The delay before the next attempt, without jitter. */
  baseDelay(ctx: ReconnectContext): number {
    const o = this.options;
    if (ctx.wake && ctx.networkOnline) return o.onlineDelayMs;
    if (this.slowedDown) {
      // Background or no network: half as often, within the slow cap.
      const slower = ctx.appState === 'background' || !ctx.networkOnline;
      return slower ? Math.max(o.slowIntervalMs, Math.min(o.maxSlowDelayMs, o.slowIntervalMs * 2)) : o.slowIntervalMs;
    }
    let d = Math.min(o.maxDelayMs, o.initialDelayMs * o.factor ** this.failuresInARow);
    let slow = 1;
    if (ctx.appState === 'background') slow *= o.backgroundFactor;
    if (!ctx.networkOnline) slow *= o.offlineFactor;
    if (slow > 1) d = Math.min(o.maxSlowDelayMs, d * slow);
    return d;
  }

  /** The jittered delay before the next attempt. */
  nextDelay(ctx: ReconnectContext): number {
    const base = this.baseDelay(ctx);
    const j = Math.max(0, Math.min(1, this.options.jitter));
    return Math.round(base * (1 - j + 2 * j * this.random()));
  }
}
