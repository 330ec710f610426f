import type { Platform } from '@magpie/protocol';
import { CLOSE_DRAINING, CLOSE_KICKED, CLOSE_TOKEN_REVOKED, CLOSE_UNAUTHORIZED, CLOSE_UNSUPPORTED_VERSION, PROTOCOL_VERSIONS, drainDelay, shouldReconnect } from './protocol-constants.ts';
import { Timer, type Clock } from './clock.ts';
import { MagpieClientError, toClientError } from './errors.ts';
import { Heartbeat, defaultHeartbeatOptions, type AppState, type HeartbeatDeathReason, type HeartbeatOptions } from './heartbeat.ts';
import { ReconnectPolicy, defaultReconnectOptions, type ReconnectOptions } from './reconnect.ts';
import { Connection, type RawFrame } from './transport/connection.ts';
import type { WebSocketFactory } from './transport/websocket.ts';
import { NO_ATTEMPT, type ConnectAttempt, type ConnectTelemetry } from './telemetry.ts';
import type { KickedFrame, RequestFrame, RequestResults, RequestType, WelcomeResult } from './wire.ts';
import type { ClientState, ConnectionInfo, MagpieClientEvents, MagpieClientOptions, OfflineReason } from './client-types.ts';

/** The events the connection manager reports (a subset of the client's). */
export type ConnectionEvents = Pick<MagpieClientEvents, 'state' | 'connection' | 'kicked' | 'error'>;

/** What the connection manager needs from the rest of the client. */
export interface ConnectionHost {
  /** Token and inbox position for the hello of a new socket; null when there is no token. */
  hello(): { token: string; inboxSeq: number } | null;
  /** The current socket was welcomed: the host calls markReady() and then markOnline() with `gen`. */
  welcomed(gen: number, welcome: WelcomeResult, helloInboxSeq: number): Promise<void>;
  /** A frame of the current socket. */
  frame(f: RawFrame): void;
  /** The socket is gone or being replaced: data frames wait for the next welcome. */
  detached(): void;
  /** connect() started the client / the client stopped for good (close, logout, fatal close). */
  started(): void;
  stopped(): void;
  /** A ping's round trip; and the bound the heartbeat may wait for a probe on a slow link. */
  rtt(ms: number): void;
  rttBound(): number | null;
  emit<K extends keyof ConnectionEvents>(event: K, payload: ConnectionEvents[K]): void;
}

export interface ConnectionManagerOptions {
  url: string | null;
  factory: WebSocketFactory | null;
  clock: Clock;
  requestTimeoutMs: number;
  app: { version?: string; platform: Platform };
  heartbeat: HeartbeatOptions;
  reconnect: ReconnectOptions;
  random: () => number;
  appState: AppState;
  networkOnline: boolean;
  telemetry: ConnectTelemetry;
}

/** The manager's options from the client's (defaults filled in) and what the client resolved itself. */
export function connectionOptions(
  o: MagpieClientOptions,
  resolved: Pick<ConnectionManagerOptions, 'url' | 'factory' | 'clock' | 'app' | 'telemetry'>,
): ConnectionManagerOptions {
  return {
    ...resolved,
    requestTimeoutMs: o.requestTimeoutMs ?? 15_000,
    heartbeat: { ...defaultHeartbeatOptions, ...o.heartbeat },
    reconnect: { ...defaultReconnectOptions, ...o.reconnect },
    random: o.random ?? Math.random,
    appState: o.appState ?? 'foreground',
    networkOnline: o.networkOnline ?? true,
  };
}

/**
 * The socket's life: open, hello, welcome, heartbeats, stalled-request probes, close codes
 * (fatal ones, 4506 drain with its retry moment), reconnects with backoff, and the client
 * state a banner shows. One socket at a time; each has a generation, and everything from an
 * abandoned one is ignored.
 */
export class ConnectionManager {
  private readonly heartbeat: Heartbeat;
  private readonly policy: ReconnectPolicy;
  private readonly reconnectTimer: Timer;
  private readonly connectTimer: Timer;
  /** Watches unanswered requests for a half-open link (heartbeat.requestProbeAfterMs). */
  private readonly stallTimer: Timer;
  private readonly clock: Clock;
  private conn: Connection | null = null;
  private gen = 0;
  private ready = false;
  private started = false;
  private appState: AppState;
  private networkOnline: boolean;
  private _state: ClientState = 'offline';
  private offlineReason: OfflineReason | null = null;
  private nextRetryAt: number | null = null;
  private lastInfo = '';
  private pendingKick: KickedFrame | null = null;
  private attempt: ConnectAttempt = NO_ATTEMPT;
  private waiters: { resolve(): void; reject(err: MagpieClientError): void }[] = [];

  constructor(
    private readonly opts: ConnectionManagerOptions,
    private readonly host: ConnectionHost,
  ) {
    this.clock = opts.clock;
    this.appState = opts.appState;
    this.networkOnline = opts.networkOnline;
    this.reconnectTimer = new Timer(this.clock);
    this.connectTimer = new Timer(this.clock);
    this.stallTimer = new Timer(this.clock);
    this.heartbeat = new Heartbeat(this.clock, { ping: (interval, timeout) => this.ping(interval, timeout), onDead: (reason) => this.onHeartbeatDead(reason) }, opts.heartbeat);
    this.heartbeat.setAppState(this.appState);
    this.policy = new ReconnectPolicy(opts.reconnect, opts.random);
  }

  get state(): ClientState {
    return this._state;
  }

  get generation(): number {
    return this.gen;
  }

  /** Welcomed and not torn down: requests may be sent. */
  get isReady(): boolean {
    return this.ready;
  }

  get canOpen(): boolean {
    return !!this.opts.url && !!this.opts.factory;
  }

  get info(): ConnectionInfo {
    return { state: this._state, offlineReason: this.offlineReason, nextRetryAt: this.nextRetryAt, failures: this.policy.failures };
  }

  /** A `kicked` frame: its reason is reported with the close that follows. */
  noteKick(k: KickedFrame): void {
    this.pendingKick = k;
  }

  /** Start (or wake) and resolve once online; see MagpieClient.connect. */
  connect(): Promise<void> {
    if (this._state === 'online') return Promise.resolve();
    const done = new Promise<void>((resolve, reject) => this.waiters.push({ resolve, reject }));
    if (!this.started) {
      this.started = true;
      this.opts.telemetry.start();
      this.host.started();
      this.policy.reset();
      this.open();
    } else if (!this.conn) {
      this.wake('manual');
    }
    return done;
  }

  /** Close the socket, stop reconnecting and end in `state`; connect() callers get `err`. */
  shutdown(state: 'offline' | 'logged_out', err: MagpieClientError): void {
    this.stopAll();
    this.setState(state);
    this.rejectWaiters(err);
  }

  /** The app's visibility; true when it just came to the foreground. */
  setAppState(state: AppState): boolean {
    const previous = this.appState;
    this.appState = state;
    this.heartbeat.setAppState(state);
    if (state !== 'foreground' || previous === 'foreground') return false;
    this.wake('foreground');
    return true;
  }

  setNetworkOnline(online: boolean): void {
    this.networkOnline = online;
    if (online) this.wake('network');
    else if (this.started && !this.conn) this.setState(this.offlineState());
    else this.emitConnection();
  }

  /** Network back, foreground, or a manual refresh: probe the socket, or reconnect soon. */
  wake(_kind: 'network' | 'foreground' | 'manual'): void {
    if (!this.started) return;
    if (this.conn && this.ready) {
      this.heartbeat.probe();
      return;
    }
    if (this.conn) return; // an attempt is under way; its connect timeout guards it
    this.policy.reset();
    this.scheduleReconnect(true);
  }

  /** The welcome is processed up to the sync: requests may go, heartbeats start. */
  markReady(gen: number): void {
    if (gen !== this.gen) return;
    this.ready = true;
    this.setState('syncing');
    this.heartbeat.start();
  }

  markOnline(gen: number): void {
    if (gen === this.gen && this.ready) this.setState('online');
  }

  /** Abandon the socket at once (no close handshake) and reconnect (soon when `wake`). */
  drop(reason: string, wake: boolean): void {
    const wasReady = this.ready;
    this.conn?.abandon(reason);
    this.teardown();
    if (!wasReady) this.policy.recordFailure();
    this.scheduleReconnect(wake);
  }

  /** Send a request on the current authenticated connection. */
  request<T extends RequestType>(frame: Extract<RequestFrame, { type: T }>, opts?: { timeoutMs?: number }): Promise<RequestResults[T]> {
    const conn = this.conn;
    if (!conn || !this.ready) return Promise.reject(new MagpieClientError('not_connected', `cannot send ${frame.type}: not connected`));
    const p = conn.request(frame, opts);
    this.watchStall();
    return p;
  }

  /** A request on the socket even before it is ready (instruction results during the welcome); null without a socket. */
  requestNow<T extends RequestType>(frame: Extract<RequestFrame, { type: T }>): Promise<RequestResults[T]> | null {
    return this.conn ? this.conn.request(frame) : null;
  }

  notify(frame: { type: 'ack'; inboxSeq: number }): boolean {
    return this.ready && this.conn ? this.conn.notify(frame) : false;
  }

  // ---------------------------------------------------------------- state

  private setState(next: ClientState): void {
    if (next !== 'offline' && next !== 'waiting_for_network') {
      this.offlineReason = null;
      this.nextRetryAt = null;
    }
    if (next !== this._state) {
      const previous = this._state;
      this._state = next;
      this.host.emit('state', { state: next, previous });
      if (next === 'online') this.settleWaiters();
    }
    this.emitConnection();
  }

  private emitConnection(): void {
    const info = this.info;
    const key = `${info.state}|${info.offlineReason}|${info.nextRetryAt}|${info.failures}`;
    if (key === this.lastInfo) return;
    this.lastInfo = key;
    this.host.emit('connection', info);
  }

  /** `waiting_for_network` while the platform says the network is down, else `offline`. */
  private offlineState(): ClientState {
    if (!this.networkOnline) this.offlineReason = 'no_network';
    return this.networkOnline ? 'offline' : 'waiting_for_network';
  }

  private settleWaiters(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w.resolve();
  }

  private rejectWaiters(err: MagpieClientError): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w.reject(err);
  }

  // ---------------------------------------------------------------- socket

  private open(): void {
    this.reconnectTimer.stop();
    const { url, factory } = this.opts;
    if (!this.started || !url || !factory) return;
    const gen = ++this.gen;
    this.ready = false;
    this.pendingKick = null;
    this.host.detached();
    this.setState('connecting');
    const attempt = (this.attempt = this.opts.telemetry.attempt());
    const conn = new Connection({
      url,
      webSocketFactory: factory,
      clock: this.clock,
      requestTimeoutMs: this.opts.requestTimeoutMs,
      generation: gen,
      handlers: {
        onOpen: () => {
          if (gen === this.gen) attempt.opened(conn.tlsMs);
          this.onOpen(gen);
        },
        // Data from an abandoned socket is never merged.
        onFrame: (f) => {
          if (gen === this.gen) this.host.frame(f);
        },
        onClose: (info) => this.onClose(gen, info.code, info.reason),
        onProtocolError: (e) => {
          if (gen === this.gen) this.host.emit('error', e);
        },
      },
    });
    this.conn = conn;
    this.connectTimer.start(this.policy.options.connectTimeoutMs, () => {
      if (gen !== this.gen || this.ready) return;
      attempt.failed('timeout');
      this.drop('connect_timeout', false);
    });
    conn.open();
  }

  private onOpen(gen: number): void {
    const conn = this.conn;
    const hello = this.host.hello();
    if (gen !== this.gen || !conn || !hello) return;
    this.setState('authenticating');
    conn
      .request(
        { type: 'hello', versions: [...PROTOCOL_VERSIONS], token: hello.token, inboxSeq: hello.inboxSeq, app: this.opts.app, caps: ['ack', 'batch'] },
        { timeoutMs: this.policy.options.connectTimeoutMs },
      )
      .then(
        (welcome) => {
          if (gen !== this.gen) return;
          this.attempt.firstFrame();
          this.connectTimer.stop();
          this.policy.recordSuccess();
          return this.host.welcomed(gen, welcome, hello.inboxSeq);
        },
        (err) => this.onHelloFailed(gen, toClientError(err)),
      );
  }

  private onHelloFailed(gen: number, err: MagpieClientError): void {
    if (gen !== this.gen) return;
    if (err.code === 'disconnected' || err.code === 'not_connected') return; // the close handler decides
    this.attempt.failed('rejected');
    if (err.code === 'unauthorized') {
      this.enterTerminal('logged_out', err);
      return;
    }
    if (err.code === 'unsupported_version') {
      this.enterStopped(err);
      return;
    }
    this.host.emit('error', err);
    this.drop('hello_failed', false);
  }

  private onClose(gen: number, code: number, reason: string): void {
    if (gen !== this.gen) return;
    const wasReady = this.ready;
    if (!wasReady) this.attempt.failed('closed');
    this.teardown();
    if (!shouldReconnect(code)) {
      this.onFatalClose(code, reason);
      return;
    }
    // A draining node names the (jittered) moment to come back; the new connection lands on
    // another node through the load balancer. Not a failure: the backoff does not grow.
    const drain = code === CLOSE_DRAINING ? drainDelay(reason) : null;
    if (drain !== null) {
      this.scheduleReconnect(false, drain);
      return;
    }
    if (!wasReady) this.policy.recordFailure();
    this.scheduleReconnect(false);
  }

  private onFatalClose(code: number, reason: string): void {
    const kick = this.pendingKick;
    this.pendingKick = null;
    if (code === CLOSE_KICKED || code === CLOSE_TOKEN_REVOKED || kick) {
      this.host.emit('kicked', { reason: kick?.reason ?? 'unknown', message: kick?.message ?? reason, code });
    }
    if (code === CLOSE_KICKED) this.enterTerminal('kicked');
    else if (code === CLOSE_TOKEN_REVOKED) this.enterTerminal('logged_out');
    else if (code === CLOSE_UNAUTHORIZED) this.enterTerminal('logged_out', new MagpieClientError('unauthorized', reason || undefined));
    else this.enterStopped(new MagpieClientError(code === CLOSE_UNSUPPORTED_VERSION ? 'unsupported_version' : 'closed', `closed by the server with ${code}${reason ? `: ${reason}` : ''}`));
  }

  private onHeartbeatDead(reason: HeartbeatDeathReason): void {
    if (!this.conn) return;
    // A probe after network-online / foreground that got no pong: reconnect right away.
    this.drop(reason, reason === 'probe_timeout');
  }

  private teardown(): void {
    this.conn = null;
    this.ready = false;
    this.host.detached();
    this.stallTimer.stop();
    this.heartbeat.stop();
    this.connectTimer.stop();
  }

  /**
   * Never gives up on its own: after `maxFailures` failures in a row the attempts slow down
   * to `slowIntervalMs` (a server outage produces no network event to wait for), and
   * connect() callers learn that the server is unreachable.
   */
  private scheduleReconnect(wake: boolean, delayMs?: number): void {
    if (!this.started) return;
    const failures = this.policy.failures;
    if (failures === this.policy.options.maxFailures) {
      this.rejectWaiters(
        new MagpieClientError('network', `${this.networkOnline ? 'server unreachable' : 'no network'} after ${failures} attempts; still retrying every ~${Math.round(this.policy.options.slowIntervalMs / 1000)} s`),
      );
    }
    const delay = delayMs ?? this.policy.nextDelay({ appState: this.appState, networkOnline: this.networkOnline, wake });
    this.offlineReason = !this.networkOnline ? 'no_network' : failures > 0 ? 'server_unreachable' : 'connection_lost';
    this.nextRetryAt = this.clock.now() + delay;
    this.reconnectTimer.start(delay, () => this.open());
    this.setState(this.offlineState());
  }

  private ping(interval: number, timeoutMs: number): Promise<boolean> {
    const conn = this.conn;
    if (!conn || !this.ready) return Promise.resolve(true);
    const sent = this.clock.now();
    return conn.request({ type: 'ping', interval }, { timeoutMs }).then(
      () => {
        this.host.rtt(this.clock.now() - sent);
        return true;
      },
      (err) => toClientError(err).code !== 'timeout',
    );
  }

  /**
   * While a request waits for its answer and nothing at all arrives on the socket, a probe
   * ping decides soon whether the link is half-open (see heartbeat.requestProbeAfterMs); the
   * heartbeat abandons the socket when its pong does not come.
   */
  private watchStall(): void {
    const after = this.heartbeat.options.requestProbeAfterMs;
    if (after > 0 && !this.stallTimer.active) this.stallTimer.start(after, () => this.stallCheck());
  }

  private stallCheck(): void {
    const conn = this.conn;
    if (!conn || !this.ready) return;
    const since = conn.oldestPendingSince(['ping']);
    if (since === null) return;
    const after = this.heartbeat.options.requestProbeAfterMs;
    // Quiet = no answer to the oldest request and no data of any kind for `after` ms.
    const quietSince = Math.max(since, conn.lastReceivedAt);
    const wait = quietSince + after - this.clock.now();
    // The pong may take longer than probeTimeoutMs on a link (or a device) measured to be slow.
    if (wait <= 0) this.heartbeat.probe(this.host.rttBound() ?? 0);
    // Keep watching while anything waits: at most one probe per interval.
    this.stallTimer.start(wait > 0 ? wait : after, () => this.stallCheck());
  }

  private stopAll(): void {
    this.started = false;
    this.offlineReason = null;
    this.nextRetryAt = null;
    this.reconnectTimer.stop();
    this.conn?.close(1000, 'client closed');
    this.teardown();
    this.host.stopped();
    this.opts.telemetry.stop();
  }

  private enterTerminal(state: 'kicked' | 'logged_out', err?: MagpieClientError): void {
    this.stopAll();
    this.setState(state);
    if (err) this.host.emit('error', err);
    this.rejectWaiters(err ?? new MagpieClientError('closed', state === 'kicked' ? 'kicked by the server' : 'logged out'));
  }

  /** A close that must not be retried automatically but is not a logout (e.g. unsupported version). */
  private enterStopped(err: MagpieClientError): void {
    this.stopAll();
    this.setState('offline');
    this.host.emit('error', err);
    this.rejectWaiters(err);
  }
}
