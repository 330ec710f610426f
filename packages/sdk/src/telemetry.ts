import type { ConnectSample, Platform, TelemetryReport } from '@magpie/protocol';
import { Timer, type Clock } from './clock.ts';

export type ConnectFailure = NonNullable<ConnectSample['failure']>;

export interface ConnectTelemetryOptions {
  /** Default true; false: nothing is measured or sent. */
  enabled: boolean;
  /** Only connect attempts that start this long after `start()` are measured (the write-up's first 30 s). */
  windowMs: number;
  /** After the first successful connect, wait this long for more samples before sending the batch. */
  batchDelayMs: number;
  /** Samples kept (and sent in one report) at most. */
  maxSamples: number;
}

export const defaultTelemetryOptions: ConnectTelemetryOptions = { enabled: true, windowMs: 30_000, batchDelayMs: 2_000, maxSamples: 50 };

/** One connect attempt being measured: the client calls these as the attempt goes. */
export interface ConnectAttempt {
  /** The WebSocket is open; `tlsMs` when the socket knows its TLS handshake time. */
  opened(tlsMs?: number): void;
  /** The server's first frame (the hello answer) arrived: the attempt succeeded. */
  firstFrame(): void;
  failed(reason: ConnectFailure): void;
}

export const NO_ATTEMPT: ConnectAttempt = { opened() {}, firstFrame() {}, failed() {} };

/**
 * Connect telemetry as the client sees it (Mobile Taobao's gateway write-up: the server cannot
 * see a failed or slow connect): time to an open socket, TLS time where the socket reports it,
 * time from open to the first server frame, and each attempt's success or failure reason.
 * Attempts in the first `windowMs` after start are collected and sent in one batch shortly
 * after the first success (or when the window ends), to POST /api/telemetry/connect. A report
 * that cannot be sent is kept and tried again with the next batch; it is best effort and never
 * affects the connection.
 */
export class ConnectTelemetry {
  private readonly opts: ConnectTelemetryOptions;
  private startedAt: number | null = null;
  private samples: ConnectSample[] = [];
  private readonly batchTimer: Timer;
  private readonly windowTimer: Timer;
  private sending: Promise<void> | null = null;

  constructor(
    private readonly clock: Clock,
    private readonly app: { platform: Platform; appVersion: string },
    private readonly send: (report: TelemetryReport) => Promise<unknown>,
    opts: Partial<ConnectTelemetryOptions> = {},
  ) {
    this.opts = { ...defaultTelemetryOptions, ...opts };
    this.batchTimer = new Timer(clock);
    this.windowTimer = new Timer(clock);
  }

  /** The client started (first connect()); the window starts now. Later calls do nothing. */
  start(): void {
    if (!this.opts.enabled || this.startedAt !== null) return;
    this.startedAt = this.clock.now();
    this.windowTimer.start(this.opts.windowMs, () => void this.flush());
  }

  /** A connect attempt starts now: measured while inside the window. */
  attempt(): ConnectAttempt {
    if (this.startedAt === null) return NO_ATTEMPT;
    const begun = this.clock.now();
    const sinceStartMs = begun - this.startedAt;
    if (sinceStartMs > this.opts.windowMs) return NO_ATTEMPT;
    let openedAt: number | null = null;
    let tls: number | undefined;
    let done = false;
    const finish = (sample: ConnectSample): void => {
      if (done) return;
      done = true;
      if (this.samples.length < this.opts.maxSamples) this.samples.push(sample);
    };
    return {
      opened: (tlsMs) => {
        if (openedAt !== null) return;
        openedAt = this.clock.now();
        if (typeof tlsMs === 'number' && Number.isFinite(tlsMs) && tlsMs >= 0) tls = tlsMs;
      },
      firstFrame: () => {
        if (openedAt === null) return;
        const now = this.clock.now();
        finish({ sinceStartMs, ok: true, connectMs: openedAt - begun, firstPacketMs: now - openedAt, ...(tls !== undefined ? { tlsMs: tls } : {}) });
        // The first success starts the batch timer; later ones ride along.
        if (!this.batchTimer.active) this.batchTimer.start(this.opts.batchDelayMs, () => void this.flush());
      },
      // A socket that closed before it ever opened was refused (or unreachable).
      failed: (reason) => finish({ sinceStartMs, ok: false, failure: reason === 'closed' && openedAt === null ? 'refused' : reason, ...(openedAt !== null ? { connectMs: openedAt - begun } : {}) }),
    };
  }

  /** Samples not sent yet. */
  get pending(): readonly ConnectSample[] {
    return this.samples;
  }

  /** Send what was collected (one report); on failure the samples stay for the next try. */
  async flush(): Promise<void> {
    this.batchTimer.stop();
    if (this.sending) await this.sending;
    if (this.samples.length === 0) return;
    const batch = this.samples;
    this.samples = [];
    this.sending = this.send({ platform: this.app.platform, appVersion: this.app.appVersion, samples: batch })
      .then(() => undefined)
      .catch(() => {
        this.samples = [...batch, ...this.samples].slice(0, this.opts.maxSamples);
      })
      .finally(() => {
        this.sending = null;
      });
    await this.sending;
  }

  stop(): void {
    this.batchTimer.stop();
    this.windowTimer.stop();
  }
}

/** An app version as the telemetry schema takes it (letters, digits, `.`, `-`, `+`; 1–32 characters). */
export function telemetryVersion(version: string | undefined): string {
  const v = (version ?? '').replace(/[^0-9A-Za-z.+-]/g, '-').slice(0, 32);
  return v.length > 0 ? v : 'unknown';
}
