import type { ConvEntry, InboxItem, Message, Platform } from '@magpie/protocol';
import { CLOSE_DRAINING, CLOSE_KICKED, CLOSE_TOKEN_REVOKED, CLOSE_UNAUTHORIZED, CLOSE_UNSUPPORTED_VERSION, PROTOCOL_VERSIONS, drainDelay, shouldReconnect } from './protocol-constants.ts';
import { systemClock, Timer, type Clock } from './clock.ts';
import { ConversationSync } from './conv-sync.ts';
import { TypedEmitter, type Listener } from './emitter.ts';
import { MagpieClientError, toClientError } from './errors.ts';
import { Heartbeat, defaultHeartbeatOptions, type AppState, type HeartbeatDeathReason, type HeartbeatOptions } from './heartbeat.ts';
import { History, type HistoryQuery, type LocalMessage, type MessageWindow } from './history.ts';
import { randomId } from './ids.ts';
import { MemoryStore, type LocalStore, type OutgoingRecord } from './local-store.ts';
import { maxCovered } from './seq-ranges.ts';
import { ReconnectPolicy, defaultReconnectOptions, type ReconnectOptions } from './reconnect.ts';
import { RestApi, type FetchLike, type LoginInput, type LoginResult, type RegisterInput, type RestOptions } from './rest.ts';
import { SendQueue, defaultSendQueueOptions, type SendQueueOptions, type SendTarget } from './send-queue.ts';
import { SyncEngine, defaultSyncEngineOptions, type SyncEngineOptions, type SyncProgress } from './sync-engine.ts';
import { Connection, type RawFrame } from './transport/connection.ts';
import type { WebSocketFactory, WebSocketLike } from './transport/websocket.ts';
import { ConnectTelemetry, NO_ATTEMPT, telemetryVersion, type ConnectAttempt, type ConnectTelemetryOptions } from './telemetry.ts';
import type { KickedFrame, RequestFrame, RequestResults, RequestType, WelcomeResult } from './wire.ts';
import { executeInstruction, type Instruction } from './instructions.ts';
import { FrameRouter } from './frame-router.ts';
import { DeliveredTracker, type DeliveredCountsEvent, type DeliveredEvent } from './delivered.ts';

import type { ClientState, StateEvent, OfflineReason, ConnectionInfo, ConversationEvent, KickedEvent, MagpieClientEvents, MagpieClientOptions, SendInput, ConversationPatch } from './client-types.ts';
export type { DeliveredEvent, DeliveredCountsEvent, ClientState, StateEvent, OfflineReason, ConnectionInfo, ConversationEvent, KickedEvent, MagpieClientEvents, MagpieClientOptions, SendInput, ConversationPatch };

const TERMINAL: ReadonlySet<ClientState> = new Set(['kicked', 'logged_out']);

/**
 * The Magpie client: one authenticated long connection per device with heartbeats and
 * reconnects, the ordered inbound queue (push + pull), the conversation list, local
 * history with hole tracking, and the send queue. Everything the app needs to know comes
 * through typed events (`on`).
 */
export class MagpieClient {
  /** Register over REST. */
  static register(opts: RestOptions, input: RegisterInput) {
    return new RestApi(opts).register(input);
  }

  /** Log in over REST; pass the token to a client (or use the instance login()). */
  static login(opts: RestOptions, input: LoginInput): Promise<LoginResult> {
    return new RestApi(opts).login(input);
  }

  readonly store: LocalStore;
  private readonly emitter: TypedEmitter<MagpieClientEvents>;
  private readonly clock: Clock;
  private readonly newId: () => string;
  private readonly url: string | null;
  private readonly factory: WebSocketFactory | null;
  private readonly rest: RestApi | null;
  private readonly requestTimeoutMs: number;
  private readonly app: { version?: string; platform: Platform };
  private readonly heartbeat: Heartbeat;
  private readonly policy: ReconnectPolicy;
  /** Connect telemetry of the first 30 s (telemetry.ts) and the attempt being measured. */
  readonly telemetry: ConnectTelemetry;
  private connectAttempt: ConnectAttempt = NO_ATTEMPT;
  private readonly engine: SyncEngine;
  private readonly convSync: ConversationSync;
  private readonly sendQueue: SendQueue;
  private readonly history: History;
  private readonly reconnectTimer: Timer;
  private readonly connectTimer: Timer;
  private readonly convRefreshTimer: Timer;
  /** Watches unanswered requests for a half-open link (heartbeat.requestProbeAfterMs). */
  private readonly stallTimer: Timer;
  private readonly delivered: DeliveredTracker;

  private token: string | null;
  private _state: ClientState = 'offline';
  private conn: Connection | null = null;
  private gen = 0;
  private ready = false;
  private started = false;
  private appState: AppState;
  private networkOnline: boolean;
  private _userId: string | null = null;
  private _deviceId: string | null = null;
  private _welcome: WelcomeResult | null = null;
  /** Configuration values set by the server (`set_config` instructions). */
  readonly remoteConfig: Record<string, unknown> = {};
  private pendingKick: KickedFrame | null = null;
  /** Transport → router → the part that owns the frame type. */
  private readonly router: FrameRouter;
  private initPromise: Promise<void> | null = null;
  private connectWaiters: { resolve(): void; reject(err: MagpieClientError): void }[] = [];
  private offlineReason: OfflineReason | null = null;
  private nextRetryAt: number | null = null;
  private lastInfo = '';

  constructor(options: MagpieClientOptions = {}) {
    this.clock = options.clock ?? systemClock;
    this.newId = options.newId ?? randomId;
    this.store = options.store ?? new MemoryStore();
    this.emitter = new TypedEmitter<MagpieClientEvents>(options.onListenerError);
    this.token = options.token ?? null;
    this.url = options.url ?? (options.baseUrl ? wsUrlOf(options.baseUrl) : null);
    this.factory = options.webSocketFactory ?? defaultWebSocketFactory();
    const restOpts: RestOptions | null = options.baseUrl ? { baseUrl: options.baseUrl } : null;
    if (restOpts && options.fetch) restOpts.fetch = options.fetch;
    this.rest = restOpts && (options.fetch || (globalThis as { fetch?: unknown }).fetch) ? new RestApi(restOpts) : null;
    this.requestTimeoutMs = options.requestTimeoutMs ?? 15_000;
    this.app = { platform: options.app?.platform ?? 'other', ...(options.app?.version !== undefined ? { version: options.app.version.slice(0, 32) } : {}) };
    this.appState = options.appState ?? 'foreground';
    this.networkOnline = options.networkOnline ?? true;
    this.reconnectTimer = new Timer(this.clock);
    this.connectTimer = new Timer(this.clock);
    this.convRefreshTimer = new Timer(this.clock);
    this.stallTimer = new Timer(this.clock);

    this.heartbeat = new Heartbeat(
      this.clock,
      {
        ping: (interval, timeout) => this.ping(interval, timeout),
        onDead: (reason) => this.onHeartbeatDead(reason),
      },
      { ...defaultHeartbeatOptions, ...options.heartbeat },
    );
    this.heartbeat.setAppState(this.appState);
    this.policy = new ReconnectPolicy({ ...defaultReconnectOptions, ...options.reconnect }, options.random ?? Math.random);
    const rest = this.rest;
    this.telemetry = new ConnectTelemetry(
      this.clock,
      { platform: this.app.platform, appVersion: telemetryVersion(this.app.version) },
      (report) => (rest ? rest.telemetryConnect(report, this.token ?? undefined) : Promise.resolve()),
      { ...options.telemetry, enabled: (options.telemetry?.enabled ?? true) && rest !== null },
    );

    const link = {
      generation: () => this.gen,
      ready: () => this.ready,
    };
    this.engine = new SyncEngine(
      this.store,
      this.clock,
      {
        ...link,
        sync: (since, limit, timeoutMs, have) => this.request({ type: 'sync', since, limit, ...(have.length > 0 ? { have } : {}) }, { timeoutMs }),
        ack: (inboxSeq) => (this.ready && this.conn ? this.conn.notify({ type: 'ack', inboxSeq }) : false),
      },
      {
        merge: (items) => this.mergeInbox(items),
        fullSync: () => this.convSync.reload(),
        progress: (p) => this.emitter.emit('syncProgress', p),
        error: (e) => this.emitter.emit('error', e),
      },
      { ...defaultSyncEngineOptions, ...options.sync },
    );
    this.convSync = new ConversationSync(
      this.store,
      { ...link, convs: (since, limit) => this.request({ type: 'convs', since, limit }) },
      {
        changed: (conv, entry, previous) => this.onEntryChanged(conv, entry, previous),
        progress: (received) => this.emitter.emit('syncProgress', { phase: 'conversations', received, inboxSeq: this.engine.inboxSeq }),
        error: (e) => this.emitter.emit('error', e),
      },
      options.convPageSize ?? 200,
    );
    this.sendQueue = new SendQueue(
      this.store,
      this.clock,
      { ready: () => this.ready, send: (frame, timeoutMs) => this.request(frame, { timeoutMs }) },
      {
        changed: (r) => this.emitter.emit('message', this.history.fromRecord(r)),
        accepted: (_r, result) => void this.engine.push({ inboxSeq: result.inboxSeq, message: result.message }, 'send'),
      },
      this.newId,
      { ...defaultSendQueueOptions, ...options.sendQueue },
    );
    this.delivered = new DeliveredTracker(
      {
        store: this.store,
        userId: () => this._userId,
        outgoing: () => this.sendQueue.list(),
        toLocal: (m) => this.history.toLocal(m),
        fromRecord: (r) => this.history.fromRecord(r),
      },
      {
        delivered: (e) => this.emitter.emit('delivered', e),
        deliveredCounts: (e) => this.emitter.emit('deliveredCounts', e),
        message: (m) => this.emitter.emit('message', m),
      },
    );
    this.history = new History({
      store: this.store,
      userId: () => this._userId,
      deliveredSeq: (conv) => this.delivered.deliveredSeq(conv),
      counted: (conv) => this.delivered.counted(conv),
      liveCount: (conv, seq) => this.delivered.liveCount(conv, seq),
      outgoing: () => this.sendQueue.list(),
      fetch: (conv, q) => this.request({ type: 'history', conv, ...q }),
    });
    this.router = new FrameRouter({
      msg: (item) => void this.engine.push(item, 'push'),
      // Super group: stored by conversation seq; a missing seq before it stays a hole that history paging fills.
      advanced: (message) => void this.onAdvanced(message),
      conv: (entry) => this.convSync.pushed(entry),
      delivered: (d) => void this.delivered.onFrame(d),
      deliveredCounts: (conv, pairs) => void this.delivered.applyCounts(conv, pairs).catch((err) => this.emitter.emit('error', toClientError(err))),
      pong: (inboxSeq) => {
        if (this.ready && inboxSeq > this.engine.highestSeen) this.engine.pullQuietly('pong');
      },
      kicked: (k) => {
        this.pendingKick = k;
      },
      instruction: (i) => void this.onLiveInstruction(this.gen, i),
      error: (e) => this.emitter.emit('error', e),
      other: (f) => this.emitter.emit('frame', f),
    });
  }

  // ---------------------------------------------------------------- events & state

  on<K extends keyof MagpieClientEvents>(event: K, fn: Listener<MagpieClientEvents[K]>): () => void {
    return this.emitter.on(event, fn);
  }

  once<K extends keyof MagpieClientEvents>(event: K, fn: Listener<MagpieClientEvents[K]>): () => void {
    return this.emitter.once(event, fn);
  }

  off<K extends keyof MagpieClientEvents>(event: K, fn: Listener<MagpieClientEvents[K]>): void {
    this.emitter.off(event, fn);
  }

  get state(): ClientState {
    return this._state;
  }

  get userId(): string | null {
    return this._userId;
  }

  get deviceId(): string | null {
    return this._deviceId;
  }

  /** The stored inbox position. */
  get inboxSeq(): number {
    return this.engine.inboxSeq;
  }

  get conversationListVersion(): number {
    return this.convSync.listVersion;
  }

  /** The last welcome (server limits, heartbeat, time). */
  get welcome(): WelcomeResult | null {
    return this._welcome;
  }

  /** Generation of the current socket (grows with every connection attempt). */
  get connectionGeneration(): number {
    return this.gen;
  }

  /** Inbound-queue counters (merged, duplicates, pulls by reason, full syncs). */
  get syncStats() {
    return this.engine.stats;
  }

  /** Resolves when the inbound queue and the conversation list have processed everything received so far. */
  async idle(): Promise<void> {
    await this.engine.idle();
    await this.convSync.idle();
  }

  /** What a connection banner shows: state, why offline, when the next attempt is. */
  get connection(): ConnectionInfo {
    return { state: this._state, offlineReason: this.offlineReason, nextRetryAt: this.nextRetryAt, failures: this.policy.failures };
  }

  private setState(next: ClientState): void {
    if (next !== 'offline' && next !== 'waiting_for_network') {
      this.offlineReason = null;
      this.nextRetryAt = null;
    }
    if (next !== this._state) {
      const previous = this._state;
      this._state = next;
      this.emitter.emit('state', { state: next, previous });
      if (next === 'online') this.settleConnectWaiters();
    }
    this.emitConnection();
  }

  private emitConnection(): void {
    const info = this.connection;
    const key = `${info.state}|${info.offlineReason}|${info.nextRetryAt}|${info.failures}`;
    if (key === this.lastInfo) return;
    this.lastInfo = key;
    this.emitter.emit('connection', info);
  }

  // ---------------------------------------------------------------- lifecycle

  /** Load the local store (called by connect(); call it early to read local data before connecting). */
  init(): Promise<void> {
    this.initPromise ??= (async () => {
      const meta = await this.store.loadMeta();
      this._userId = meta.userId;
      this._deviceId = meta.deviceId;
      await this.engine.init();
      await this.convSync.init();
      await this.sendQueue.init();
      await this.delivered.init();
    })();
    return this.initPromise;
  }

  setToken(token: string): void {
    this.token = token;
  }

  /** Log in over REST and keep the token (deviceId defaults to the stored one, or a new one). */
  async login(input: Omit<LoginInput, 'deviceId' | 'platform'> & { deviceId?: string; platform?: Platform }): Promise<LoginResult> {
    if (!this.rest) throw new MagpieClientError('network', 'login needs `baseUrl` (and a fetch implementation)');
    await this.init();
    const deviceId = input.deviceId ?? this._deviceId ?? this.newId();
    const req: LoginInput = { username: input.username, password: input.password, deviceId, platform: input.platform ?? this.app.platform ?? 'other' };
    const appVersion = input.appVersion ?? this.app.version;
    if (appVersion !== undefined) req.appVersion = appVersion;
    const result = await this.rest.login(req);
    this.token = result.token;
    this._deviceId = result.deviceId;
    await this.store.saveMeta({ deviceId: result.deviceId });
    return result;
  }

  /**
   * Start connecting and resolve once online. Rejects when the client ends logged out or
   * kicked, is closed before it got online, or when `reconnect.maxFailures` attempts in a row
   * failed (code `network`; the client keeps trying every `reconnect.slowIntervalMs`).
   */
  async connect(): Promise<void> {
    if (!this.token) throw new MagpieClientError('unauthorized', 'no token: log in first or pass `token`');
    if (!this.url || !this.factory) throw new MagpieClientError('not_connected', 'no WebSocket: pass `url`/`baseUrl` and a `webSocketFactory`');
    await this.init();
    if (this._state === 'online') return;
    const done = new Promise<void>((resolve, reject) => this.connectWaiters.push({ resolve, reject }));
    if (!this.started) {
      this.started = true;
      this.telemetry.start();
      this.sendQueue.start();
      this.policy.reset();
      this.openConnection();
    } else if (!this.conn) {
      this.wake('manual');
    }
    return done;
  }

  /** connect() without waiting; failures show up as `state` and `error` events. */
  start(): void {
    this.connect().catch(() => undefined);
  }

  /** Close the connection and stop reconnecting. Local data stays. */
  close(): void {
    this.engine.flushAck();
    this.stopAll();
    this.setState('offline');
    this.rejectConnectWaiters(new MagpieClientError('closed', 'the client was closed'));
  }

  /**
   * Log this device out (or all devices with `all`): the connection is closed first, then
   * the server session is revoked. `clearLocalData` forgets the stored user data.
   */
  async logout(opts: { all?: boolean; clearLocalData?: boolean } = {}): Promise<void> {
    const token = this.token;
    this.engine.flushAck();
    this.stopAll();
    this.token = null;
    this.setState('logged_out');
    this.rejectConnectWaiters(new MagpieClientError('closed', 'logged out'));
    if (opts.clearLocalData) await this.clearLocalData();
    if (token && this.rest) {
      if (opts.all) await this.rest.logoutAll(token);
      else await this.rest.logout(token);
    }
  }

  /** Tell the SDK whether the app is visible. Foreground: a probe ping, a pull and (if offline) a reconnect. */
  setAppState(state: AppState): void {
    const previous = this.appState;
    this.appState = state;
    this.heartbeat.setAppState(state);
    if (state === 'foreground' && previous !== 'foreground') {
      this.wake('foreground');
      if (this.ready) this.engine.pullQuietly('foreground');
    }
  }

  /** Tell the SDK about the network. Online: probe the socket it has (or reconnect soon). */
  setNetworkOnline(online: boolean): void {
    this.networkOnline = online;
    if (online) this.wake('network');
    else if (this.started && !this.conn) this.setState(this.offlineState());
    else this.emitConnection();
  }

  /** Pull the inbox and the conversation list now (or reconnect if offline). */
  async refresh(): Promise<void> {
    if (!this.ready) {
      this.wake('manual');
      return;
    }
    await Promise.all([this.engine.pull('manual'), this.convSync.sync()]);
  }

  // ---------------------------------------------------------------- messages

  /** Queue a message; resolves with it in state `sending` (follow `message` events or waitForSend). */
  async send(input: SendInput): Promise<LocalMessage> {
    await this.init();
    const target: SendTarget = {};
    if (input.conv !== undefined) target.conv = input.conv;
    if (input.to !== undefined) target.to = input.to;
    const r = await this.sendQueue.enqueue(target, input.kind ?? 'text', input.body, input.mentions);
    return this.history.fromRecord(r);
  }

  sendText(target: SendTarget, text: string): Promise<LocalMessage> {
    return this.send({ ...target, kind: 'text', body: { text } });
  }

  /** Re-queue a failed message (same clientMsgId). */
  async retry(clientMsgId: string): Promise<LocalMessage> {
    return this.history.fromRecord(await this.sendQueue.retry(clientMsgId));
  }

  /** Resolves when the message is sent or failed (undefined when the id is unknown). */
  async waitForSend(clientMsgId: string): Promise<LocalMessage | undefined> {
    const r = await this.sendQueue.wait(clientMsgId);
    return r ? this.history.fromRecord(r) : undefined;
  }

  /** Outgoing messages not yet replaced by their stored copy. */
  outgoing(): LocalMessage[] {
    return this.sendQueue.list().map((r) => this.history.fromRecord(r));
  }

  /**
   * Normal groups: read the newest page of a conversation (or the page below `before`) from
   * the server again, to learn the current delivered counts of own messages held locally —
   * a device that was offline missed the live `delivered.counts` frames. Changed counts come
   * as `deliveredCounts` and `message` events. Other conversations: nothing to do.
   */
  async refreshDeliveredCounts(conv: string, q: { before?: number; limit?: number } = {}): Promise<void> {
    await this.init();
    if (!this.delivered.counted(conv)) return;
    const query: { before?: number; limit: number } = { limit: Math.max(1, Math.min(q.limit ?? 30, 200)) };
    if (q.before !== undefined) query.before = q.before;
    const page = await this.request({ type: 'history', conv, ...query });
    const me = this._userId;
    const pairs = page.messages.filter((m) => m.sender === me && m.deliveredCount !== undefined).map((m): [number, number] => [m.seq, m.deliveredCount!]);
    await this.delivered.applyCounts(conv, pairs);
    await this.history.storePage(conv, page, query);
  }

  /** Local history of a conversation: one contiguous run, with gap flags. */
  async getMessages(conv: string, q: HistoryQuery = {}): Promise<MessageWindow> {
    await this.init();
    return this.history.window(conv, q);
  }

  /** History paging: served locally when complete there, otherwise loaded from the server (filling the hole). */
  async loadHistory(conv: string, q: HistoryQuery = {}): Promise<MessageWindow & { fromServer: boolean }> {
    await this.init();
    return this.history.load(conv, q);
  }

  /**
   * The messages around `seq` (jump to a search hit or a quoted message): a window of up to
   * `before` messages below it, the message itself and up to `after` above it, oldest first,
   * served locally when complete there and otherwise loaded from the server (filling holes).
   * Messages the user may not read (before their join, cleared) are simply not in the window.
   */
  async historyAround(conv: string, seq: number, q: { before?: number; after?: number } = {}): Promise<MessageWindow & { fromServer: boolean }> {
    await this.init();
    const below = Math.max(0, Math.min(q.before ?? 20, 100));
    const above = Math.max(0, Math.min(q.after ?? 20, 99));
    const start = Math.max(0, seq - 1 - below);
    return this.history.load(conv, { after: start, limit: seq - start + above });
  }

  // ---------------------------------------------------------------- conversations

  /** The visible conversation list: pinned first, then by latest activity. */
  async getConversations(): Promise<ConvEntry[]> {
    await this.init();
    const list = (await this.store.listEntries()).filter((e) => !e.deleted);
    return list.sort((a, b) => Number(b.pinned) - Number(a.pinned) || (b.lastMessage?.time ?? 0) - (a.lastMessage?.time ?? 0) || b.version - a.version);
  }

  async getConversation(conv: string): Promise<ConvEntry | undefined> {
    await this.init();
    const e = await this.store.getEntry(conv);
    return e && !e.deleted ? e : undefined;
  }

  /** Mark read up to seq (shared with the user's other devices). */
  async markRead(conv: string, seq: number): Promise<ConvEntry> {
    const { entry } = await this.request({ type: 'read', conv, seq });
    await this.convSync.apply(entry);
    return entry;
  }

  /** Pin, mute, set a draft, or delete (for oneself) a conversation. */
  async updateConversation(conv: string, patch: ConversationPatch): Promise<ConvEntry> {
    const { entry } = await this.request({ type: 'conv.update', conv, ...patch });
    await this.convSync.apply(entry);
    return entry;
  }

  /** Send any request on the current authenticated connection. */
  request<T extends RequestType>(frame: Extract<RequestFrame, { type: T }>, opts?: { timeoutMs?: number }): Promise<RequestResults[T]> {
    const conn = this.conn;
    if (!conn || !this.ready) return Promise.reject(new MagpieClientError('not_connected', `cannot send ${frame.type}: not connected`));
    const p = conn.request(frame, opts);
    this.watchStall();
    return p;
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
    if (wait <= 0) this.heartbeat.probe(this.engine.rttBound ?? 0);
    // Keep watching while anything waits: at most one probe per interval.
    this.stallTimer.start(wait > 0 ? wait : after, () => this.stallCheck());
  }

  // ---------------------------------------------------------------- connection

  private openConnection(): void {
    this.reconnectTimer.stop();
    if (!this.started || !this.url || !this.factory) return;
    const gen = ++this.gen;
    this.ready = false;
    this.pendingKick = null;
    this.router.hold();
    this.setState('connecting');
    const attempt = (this.connectAttempt = this.telemetry.attempt());
    const conn = new Connection({
      url: this.url,
      webSocketFactory: this.factory,
      clock: this.clock,
      requestTimeoutMs: this.requestTimeoutMs,
      generation: gen,
      handlers: {
        onOpen: () => {
          if (gen === this.gen) attempt.opened(conn.tlsMs);
          this.onOpen(gen);
        },
        onFrame: (f) => this.onFrame(gen, f),
        onClose: (info) => this.onClose(gen, info.code, info.reason),
        onProtocolError: (e) => {
          if (gen === this.gen) this.emitter.emit('error', e);
        },
      },
    });
    this.conn = conn;
    this.connectTimer.start(this.policy.options.connectTimeoutMs, () => {
      if (gen !== this.gen || this.ready) return;
      attempt.failed('timeout');
      this.dropConnection('connect_timeout', false);
    });
    conn.open();
  }

  private onOpen(gen: number): void {
    const conn = this.conn;
    if (gen !== this.gen || !conn || !this.token) return;
    this.setState('authenticating');
    const inboxSeq = this.engine.inboxSeq;
    conn
      .request(
        {
          type: 'hello',
          versions: [...PROTOCOL_VERSIONS],
          token: this.token,
          inboxSeq,
          app: this.app,
          caps: ['ack', 'batch'],
        },
        { timeoutMs: this.policy.options.connectTimeoutMs },
      )
      .then(
        (welcome) => {
          if (gen === this.gen) this.connectAttempt.firstFrame();
          return this.onWelcome(gen, welcome, inboxSeq);
        },
        (err) => this.onHelloFailed(gen, toClientError(err)),
      );
  }

  private onHelloFailed(gen: number, err: MagpieClientError): void {
    if (gen !== this.gen) return;
    if (err.code === 'disconnected' || err.code === 'not_connected') return; // the close handler decides
    this.connectAttempt.failed('rejected');
    if (err.code === 'unauthorized') {
      this.enterTerminal('logged_out', err);
      return;
    }
    if (err.code === 'unsupported_version') {
      this.enterStopped(err);
      return;
    }
    this.emitter.emit('error', err);
    this.dropConnection('hello_failed', false);
  }

  private async onWelcome(gen: number, welcome: WelcomeResult, helloInboxSeq: number): Promise<void> {
    if (gen !== this.gen) return;
    this.connectTimer.stop();
    this.policy.recordSuccess();
    this._welcome = welcome;
    let effective = welcome;
    if (this._userId !== null && this._userId !== welcome.userId) {
      // Another user's data: forget it and rebuild from the server.
      await this.clearLocalData();
      effective = { ...welcome, sync: 'full' };
    }
    if (this._userId !== welcome.userId || this._deviceId !== welcome.deviceId) {
      this._userId = welcome.userId;
      this._deviceId = welcome.deviceId;
      await this.store.saveMeta({ userId: welcome.userId, deviceId: welcome.deviceId });
    }
    // Instructions pending at login are applied before any sync, so history never shows
    // data the server has asked the device to drop.
    let forcedFull = false;
    for (const i of welcome.instructions ?? []) {
      if (gen !== this.gen) return;
      const r = await this.runInstruction(i);
      if (r && (i.kind === 'force_full_sync' || i.kind === 'clear_cache')) forcedFull = true;
    }
    if (forcedFull) effective = { ...effective, sync: 'full' };
    if (gen !== this.gen) return;
    for (const sg of welcome.supers ?? []) this.delivered.setKind(sg.conv, 'super');
    this.ready = true;
    this.setState('syncing');
    this.heartbeat.start();
    // The welcome's sync is queued first; pushes that came with or right after it follow.
    const synced = this.engine.connected(effective, helloInboxSeq);
    this.router.release();
    this.sendQueue.kick();
    try {
      await synced;
      if (gen !== this.gen || !this.ready) return;
      await this.convSync.sync();
      if (gen !== this.gen || !this.ready) return;
      await this.syncSupers(gen, welcome.supers ?? []);
    } catch (err) {
      const e = toClientError(err);
      if (gen !== this.gen || !this.ready || e.code === 'disconnected' || e.code === 'not_connected') return;
      this.emitter.emit('error', e);
    }
    if (gen !== this.gen || !this.ready) return;
    this.setState('online');
    this.emitter.emit('syncProgress', { phase: 'done', received: 0, inboxSeq: this.engine.inboxSeq });
  }

  private onFrame(gen: number, f: RawFrame): void {
    if (gen !== this.gen) return; // data from an abandoned socket is never merged
    this.router.route(f);
  }

  private onClose(gen: number, code: number, reason: string): void {
    if (gen !== this.gen) return;
    const wasReady = this.ready;
    if (!wasReady) this.connectAttempt.failed('closed');
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
      this.emitter.emit('kicked', { reason: kick?.reason ?? 'unknown', message: kick?.message ?? reason, code });
    }
    if (code === CLOSE_KICKED) this.enterTerminal('kicked');
    else if (code === CLOSE_TOKEN_REVOKED) this.enterTerminal('logged_out');
    else if (code === CLOSE_UNAUTHORIZED) this.enterTerminal('logged_out', new MagpieClientError('unauthorized', reason || undefined));
    else this.enterStopped(new MagpieClientError(code === CLOSE_UNSUPPORTED_VERSION ? 'unsupported_version' : 'closed', `closed by the server with ${code}${reason ? `: ${reason}` : ''}`));
  }

  /** Abandon the socket at once (no close handshake) and reconnect. */
  private dropConnection(reason: string, wake: boolean): void {
    const wasReady = this.ready;
    this.conn?.abandon(reason);
    this.teardown();
    if (!wasReady) this.policy.recordFailure();
    this.scheduleReconnect(wake);
  }

  private onHeartbeatDead(reason: HeartbeatDeathReason): void {
    if (!this.conn) return;
    // A probe after network-online / foreground that got no pong: reconnect right away.
    this.dropConnection(reason, reason === 'probe_timeout');
  }

  private teardown(): void {
    this.conn = null;
    this.ready = false;
    this.router.hold();
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
      this.rejectConnectWaiters(
        new MagpieClientError('network', `${this.networkOnline ? 'server unreachable' : 'no network'} after ${failures} attempts; still retrying every ~${Math.round(this.policy.options.slowIntervalMs / 1000)} s`),
      );
    }
    const delay = delayMs ?? this.policy.nextDelay({ appState: this.appState, networkOnline: this.networkOnline, wake });
    this.offlineReason = !this.networkOnline ? 'no_network' : failures > 0 ? 'server_unreachable' : 'connection_lost';
    this.nextRetryAt = this.clock.now() + delay;
    this.reconnectTimer.start(delay, () => this.openConnection());
    this.setState(this.offlineState());
  }

  /** `waiting_for_network` while the platform says the network is down, else `offline`. */
  private offlineState(): ClientState {
    if (!this.networkOnline) this.offlineReason = 'no_network';
    return this.networkOnline ? 'offline' : 'waiting_for_network';
  }

  /** Network back, foreground, or a manual refresh. */
  private wake(_kind: 'network' | 'foreground' | 'manual'): void {
    if (!this.started) return;
    if (this.conn && this.ready) {
      this.heartbeat.probe();
      return;
    }
    if (this.conn) return; // an attempt is under way; its connect timeout guards it
    this.policy.reset();
    this.scheduleReconnect(true);
  }

  private ping(interval: number, timeoutMs: number): Promise<boolean> {
    const conn = this.conn;
    if (!conn || !this.ready) return Promise.resolve(true);
    const sent = this.clock.now();
    return conn.request({ type: 'ping', interval }, { timeoutMs }).then(
      () => {
        this.engine.noteRtt(this.clock.now() - sent);
        return true;
      },
      (err) => toClientError(err).code !== 'timeout',
    );
  }

  private stopAll(): void {
    this.started = false;
    this.offlineReason = null;
    this.nextRetryAt = null;
    this.reconnectTimer.stop();
    this.convRefreshTimer.stop();
    this.conn?.close(1000, 'client closed');
    this.teardown();
    this.engine.stop();
    this.sendQueue.stop();
    this.telemetry.stop();
  }

  private enterTerminal(state: 'kicked' | 'logged_out', err?: MagpieClientError): void {
    this.stopAll();
    this.setState(state);
    if (err) this.emitter.emit('error', err);
    this.rejectConnectWaiters(err ?? new MagpieClientError('closed', state === 'kicked' ? 'kicked by the server' : 'logged out'));
  }

  /** A close that must not be retried automatically but is not a logout (e.g. unsupported version). */
  private enterStopped(err: MagpieClientError): void {
    this.stopAll();
    this.setState('offline');
    this.emitter.emit('error', err);
    this.rejectConnectWaiters(err);
  }

  private settleConnectWaiters(): void {
    const waiters = this.connectWaiters;
    this.connectWaiters = [];
    for (const w of waiters) w.resolve();
  }

  private rejectConnectWaiters(err: MagpieClientError): void {
    const waiters = this.connectWaiters;
    this.connectWaiters = [];
    for (const w of waiters) w.reject(err);
  }

  /** Execute an instruction and report the outcome; false when it could not be reported. */
  private async runInstruction(i: Instruction): Promise<boolean> {
    const { ok, result } = await executeInstruction(i, {
      resetLocalData: async () => {
        const userId = this._userId;
        await this.clearLocalData();
        this._userId = userId;
      },
      diagnostics: async () => ({
        userId: this._userId,
        deviceId: this._deviceId,
        state: this._state,
        inboxSeq: this.engine.inboxSeq,
        conversationListVersion: this.convSync.listVersion,
        conversations: (await this.store.listEntries()).length,
        outgoing: (await this.store.listOutgoing()).length,
        sync: this.engine.stats,
        app: this.app,
      }),
      setConfig: (key, value) => {
        this.remoteConfig[key] = value;
      },
    });
    this.emitter.emit('instruction', { instruction: i, ok, result });
    const conn = this.conn;
    if (!conn) return ok;
    await conn.request({ type: 'instruction.result', instructionId: i.instructionId, ok, result: (result ?? null) as never }).catch(() => undefined);
    return ok;
  }

  /** A live instruction: data resets restart the sync from scratch on a fresh connection. */
  private async onLiveInstruction(gen: number, i: Instruction): Promise<void> {
    const ok = await this.runInstruction(i);
    if (ok && gen === this.gen && (i.kind === 'force_full_sync' || i.kind === 'clear_cache')) this.dropConnection('instruction', true);
  }

  private async clearLocalData(): Promise<void> {
    await this.store.clear();
    this.engine.reset();
    this.convSync.reset();
    this.delivered.reset();
    await this.sendQueue.init();
    this._userId = null;
  }

  // ---------------------------------------------------------------- inbound data

  /** Runs inside the ordered queue: store, settle own outgoing copies, tell the app. */
  private async mergeInbox(items: InboxItem[]): Promise<void> {
    await this.history.storeInbox(items);
    for (const { message } of items) {
      if (message.sender === this._userId) await this.sendQueue.settle(message);
      this.emitter.emit('message', this.history.toLocal(message));
    }
    await this.noteMessages(items.map((i) => i.message));
  }

  private async onAdvanced(message: Message): Promise<void> {
    try {
      await this.history.storeMessages([message]);
      if (message.sender === this._userId) await this.sendQueue.settle(message);
      this.emitter.emit('message', this.history.toLocal(message));
      await this.noteMessages([message]);
    } catch (err) {
      this.emitter.emit('error', toClientError(err));
    }
  }

  /** Move the local conversation entries forward; fetch the server's copies soon when only it knows (new conversation, mentions). */
  private async noteMessages(messages: Message[]): Promise<void> {
    if (messages.length === 0) return;
    const needServer = await this.convSync.noteMessages(messages, this._userId);
    if (needServer && !this.convRefreshTimer.active) {
      this.convRefreshTimer.start(250, () => {
        if (this.ready) this.convSync.syncQuietly();
      });
    }
  }

  /**
   * Super groups (read diffusion) have no inbox pointers: after the welcome, each one whose
   * last seq is beyond what is held locally is pulled by conversation seq. A long gap loads
   * only the newest page; the hole below it stays marked and history paging fills it.
   */
  private async syncSupers(gen: number, supers: { conv: string; lastSeq: number }[]): Promise<void> {
    const page = 100;
    for (const { conv, lastSeq } of supers) {
      const local = maxCovered(await this.store.getRanges(conv));
      if (lastSeq <= local) continue;
      const got: LocalMessage[] = [];
      // From the server, not the local window: the local entry's lastSeq may be behind (a
      // super-group entry moves with no list version), so the window would see no gap.
      if (local === 0 || lastSeq - local > page * 5) {
        const w = await this.history.pull(conv, { limit: page });
        got.push(...w.filter((m) => m.seq !== null && m.seq > local));
      } else {
        let after = local;
        for (let i = 0; i < 5 && after < lastSeq; i++) {
          const w = await this.history.pull(conv, { after, limit: page });
          const fresh = w.filter((m) => m.seq !== null && m.seq > after);
          if (fresh.length === 0) break;
          got.push(...fresh);
          after = fresh[fresh.length - 1]!.seq!;
        }
      }
      if (gen !== this.gen) return;
      const stored = await this.store.getMessages(conv, local + 1, lastSeq);
      for (const m of got) this.emitter.emit('message', m);
      await this.noteMessages(stored);
    }
  }

  private async onEntryChanged(conv: string, entry: ConvEntry | null, previous: ConvEntry | undefined): Promise<void> {
    if (entry) this.delivered.setKind(conv, entry.kind);
    this.emitter.emit('conversation', { conv, entry, previous: previous && !previous.deleted ? previous : null });
    if (entry && entry.deliveredSeq > this.delivered.deliveredSeq(conv)) await this.delivered.advance(conv, entry.deliveredSeq);
  }
}

/** `http(s)://host/base` → `ws(s)://host/base/ws`. */
export function wsUrlOf(baseUrl: string): string {
  return `${baseUrl.replace(/\/+$/, '').replace(/^http/i, 'ws')}/ws`;
}

function defaultWebSocketFactory(): WebSocketFactory | null {
  const WS = (globalThis as { WebSocket?: new (url: string) => WebSocketLike }).WebSocket;
  return WS ? (url) => new WS(url) : null;
}

export type { OutgoingRecord };
