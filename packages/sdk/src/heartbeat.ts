import { Timer, type Clock } from './clock.ts';

export type AppState = 'foreground' | 'background';

export interface HeartbeatOptions {
  /** Quick pings right after a connection is established. */
  quickCount: number;
  /** Delay before and between the quick pings. */
  quickIntervalMs: number;
  /** Regular interval while the app is in the foreground. */
  foregroundIntervalMs: number;
  /** First interval in the background; grows by backgroundStepMs after each pong, up to backgroundMaxIntervalMs. */
  backgroundIntervalMs: number;
  backgroundStepMs: number;
  backgroundMaxIntervalMs: number;
  /** Interval after a missed pong (kept across the reconnect) until `stableAfter` pongs came back. */
  shortIntervalMs: number;
  stableAfter: number;
  /** A regular ping without a pong within this time counts as missed: the socket is abandoned. */
  pongTimeoutMs: number;
  /** Timeout of the extra ping on foreground / network-online / a stalled request. */
  probeTimeoutMs: number;
  /**
   * A request (send, sync, …) unanswered this long while nothing at all arrived on the socket
   * triggers a probe ping: a half-open link (no FIN, no RST, nothing arrives) is then given up
   * after requestProbeAfterMs + probeTimeoutMs instead of at the next regular ping. 0 = off.
   */
  requestProbeAfterMs: number;
}

export const defaultHeartbeatOptions: HeartbeatOptions = {
  quickCount: 3,
  quickIntervalMs: 2_000,
  foregroundIntervalMs: 40_000,
  backgroundIntervalMs: 60_000,
  backgroundStepMs: 20_000,
  backgroundMaxIntervalMs: 120_000,
  shortIntervalMs: 10_000,
  stableAfter: 3,
  pongTimeoutMs: 10_000,
  probeTimeoutMs: 3_000,
  requestProbeAfterMs: 3_000,
};

export type HeartbeatDeathReason = 'missed_pong' | 'probe_timeout';

export interface HeartbeatIo {
  /**
   * Send a ping announcing `intervalMs` (the server closes after 2 silent intervals);
   * resolve true when the pong came within `timeoutMs`, false when it did not.
   */
  ping(intervalMs: number, timeoutMs: number): Promise<boolean>;
  /** The link is dead: abandon the socket. */
  onDead(reason: HeartbeatDeathReason): void;
}

const MIN_ANNOUNCED = 1_000;
const MAX_ANNOUNCED = 600_000;

/**
 * Heartbeat schedule for one connection at a time: `quickCount` quick pings after
 * start(), then a regular interval by app state (foreground; background growing while
 * stable), a short interval after a miss, and an extra probe on demand (foreground,
 * network-online). The app state and the "recently missed" memory survive restarts.
 */
export class Heartbeat {
  private readonly timer: Timer;
  private run = 0;
  private running = false;
  private quickLeft = 0;
  private appState: AppState = 'foreground';
  private backgroundInterval: number;
  private shortLeft = 0;
  private lastRegularAnswered = false;
  private probing = false;

  constructor(
    clock: Clock,
    private readonly io: HeartbeatIo,
    readonly options: HeartbeatOptions = defaultHeartbeatOptions,
  ) {
    this.timer = new Timer(clock);
    this.backgroundInterval = options.backgroundIntervalMs;
  }

  /** A new connection is up. */
  start(): void {
    this.run++;
    this.running = true;
    this.probing = false;
    this.lastRegularAnswered = false;
    this.quickLeft = this.options.quickCount;
    this.schedule(this.quickLeft > 0 ? this.options.quickIntervalMs : this.interval());
  }

  stop(): void {
    this.run++;
    this.running = false;
    this.probing = false;
    this.timer.stop();
  }

  get isRunning(): boolean {
    return this.running;
  }

  setAppState(state: AppState): void {
    if (state === this.appState) return;
    this.appState = state;
    this.backgroundInterval = this.options.backgroundIntervalMs;
    this.lastRegularAnswered = false;
    // Going to the background keeps the pending (sooner) ping; coming to the foreground
    // is followed by a probe() from the client, which reschedules.
  }

  get state(): AppState {
    return this.appState;
  }

  /** The regular interval now in force. */
  interval(): number {
    if (this.shortLeft > 0) return this.options.shortIntervalMs;
    return this.appState === 'foreground' ? this.options.foregroundIntervalMs : this.backgroundInterval;
  }

  /** Milliseconds until the next scheduled ping, or null. */
  nextPingIn(): number | null {
    return this.timer.remaining();
  }

  /** Extra ping with the short probe timeout (or a longer one given), one at a time; the regular schedule restarts after it. */
  probe(timeoutMs = this.options.probeTimeoutMs): void {
    if (!this.running || this.probing) return;
    this.probing = true;
    this.ping(Math.max(this.options.probeTimeoutMs, timeoutMs), 'probe_timeout', false);
    if (this.quickLeft === 0) this.schedule(this.interval());
  }

  /** A probe ping is waiting for its pong. */
  get isProbing(): boolean {
    return this.probing;
  }

  private schedule(ms: number): void {
    this.timer.start(ms, () => this.tick());
  }

  private tick(): void {
    if (!this.running) return;
    const quick = this.quickLeft > 0;
    if (quick) {
      this.quickLeft--;
    } else if (this.appState === 'background' && this.lastRegularAnswered && this.shortLeft === 0) {
      // Stable in the background: stretch the interval step by step.
      this.backgroundInterval = Math.min(this.options.backgroundMaxIntervalMs, this.backgroundInterval + this.options.backgroundStepMs);
    }
    this.ping(this.options.pongTimeoutMs, 'missed_pong', quick);
    this.schedule(this.quickLeft > 0 ? this.options.quickIntervalMs : this.interval());
  }

  private ping(timeoutMs: number, reason: HeartbeatDeathReason, quick: boolean): void {
    const run = this.run;
    if (!quick) this.lastRegularAnswered = false;
    // Announce the regular interval: never shorter than the real gap to the next ping.
    const announced = Math.min(MAX_ANNOUNCED, Math.max(MIN_ANNOUNCED, this.interval()));
    const probe = reason === 'probe_timeout';
    this.io.ping(announced, timeoutMs).then(
      (ok) => {
        if (run !== this.run) return;
        if (probe) this.probing = false;
        if (ok) this.onPong(quick);
        else this.onMiss(reason);
      },
      () => {
        if (probe && run === this.run) this.probing = false;
        // A ping that could not be sent: the connection is going away and the owner
        // learns that from the socket itself.
      },
    );
  }

  private onPong(quick: boolean): void {
    // Quick pings only probe a fresh link; stability is judged on regular pings.
    if (quick) return;
    this.lastRegularAnswered = true;
    if (this.shortLeft > 0) this.shortLeft--;
  }

  private onMiss(reason: HeartbeatDeathReason): void {
    this.shortLeft = this.options.stableAfter;
    this.backgroundInterval = this.options.backgroundIntervalMs;
    this.stop();
    this.io.onDead(reason);
  }
}
