/**
 * Downlink retry timing (Xianyu "timeliness", as amended by issue 9).
 *
 * Every new message to a device first gets `probeCount` retries at the fixed short delay N
 * (probing the device's network). Only when those fail does the stepped phase begin: from
 * the delay remembered for that device (or `steppedStartMs` when none), then +M each retry,
 * up to MAX. The delay of each stepped retry is remembered for the device; an ACK for a
 * message still in its probe phase clears the remembered delay. The remembered delay is
 * never used for the first attempts of a new message. At most `maxAttempts` retries.
 */
export interface RetryTiming {
  /** Delay before retry `attempt` (1-based), given the previous delay; null = give up. */
  delayFor(deviceKey: string, attempt: number, prevDelayMs: number): number | null;
  /** Retry `attempt` was just sent after waiting `delayMs`. */
  retried(deviceKey: string, attempt: number, delayMs: number): void;
  /** The device ACKed a message after `attempts` retries. */
  acked(deviceKey: string, attempts: number): void;
  readonly name: string;
}

export interface AdaptiveRetryConfig {
  probeDelayMs: number;
  probeCount: number;
  steppedStartMs: number;
  stepMs: number;
  maxDelayMs: number;
  maxAttempts: number;
  /** Devices whose remembered delay is kept (least recently used dropped beyond it). */
  rememberCapacity: number;
}

export const DEFAULT_ADAPTIVE_RETRY: AdaptiveRetryConfig = {
  probeDelayMs: 2000,
  probeCount: 4,
  steppedStartMs: 5000,
  stepMs: 5000,
  maxDelayMs: 60_000,
  maxAttempts: 12,
  rememberCapacity: 100_000,
};

export class AdaptiveRetryTiming implements RetryTiming {
  readonly name = 'adaptive';
  private readonly remembered = new Map<string, number>();

  constructor(private readonly cfg: AdaptiveRetryConfig = DEFAULT_ADAPTIVE_RETRY) {}

  delayFor(deviceKey: string, attempt: number, prevDelayMs: number): number | null {
    const c = this.cfg;
    if (attempt > c.maxAttempts) return null;
    if (attempt <= c.probeCount) return c.probeDelayMs;
    return attempt === c.probeCount + 1 ? (this.remembered.get(deviceKey) ?? c.steppedStartMs) : Math.min(prevDelayMs + c.stepMs, c.maxDelayMs);
  }

  retried(deviceKey: string, attempt: number, delayMs: number): void {
    if (attempt > this.cfg.probeCount) this.remember(deviceKey, delayMs);
  }

  acked(deviceKey: string, attempts: number): void {
    // Called for every ACKed delivery: no lookup while nothing is remembered (the usual case).
    if (attempts <= this.cfg.probeCount && this.remembered.size > 0) this.remembered.delete(deviceKey);
  }

  /** The remembered delay for a device (for tests and diagnostics). */
  rememberedDelay(deviceKey: string): number | undefined {
    return this.remembered.get(deviceKey);
  }

  private remember(deviceKey: string, delay: number): void {
    this.remembered.delete(deviceKey);
    this.remembered.set(deviceKey, delay);
    if (this.remembered.size > this.cfg.rememberCapacity) {
      const oldest = this.remembered.keys().next().value;
      if (oldest !== undefined) this.remembered.delete(oldest);
    }
  }
}

/** The baseline the write-up measured: a fixed delay, a fixed number of times. */
export class FixedRetryTiming implements RetryTiming {
  readonly name = 'fixed';
  constructor(
    private readonly delayMs: number,
    private readonly maxAttempts: number,
  ) {}
  delayFor(_deviceKey: string, attempt: number): number | null {
    return attempt > this.maxAttempts ? null : this.delayMs;
  }
  retried(): void {}
  acked(): void {}
}
