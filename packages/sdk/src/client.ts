import type { ConvEntry } from '@magpie/protocol';
import { systemClock, type Clock } from './clock.ts';
import { ConnectionManager, connectionOptions } from './connection-manager.ts';
import { TypedEmitter, type Listener } from './emitter.ts';
import { MagpieClientError } from './errors.ts';
import type { AppState } from './heartbeat.ts';
import type { HistoryQuery, LocalMessage, MessageWindow } from './history.ts';
import { randomId, timeOrderedId } from './ids.ts';
import { MemoryStore, type LocalStore, type OutgoingRecord } from './local-store.ts';
import { Replica } from './replica.ts';
import { RestApi, restApiOf, type LoginInput, type LoginResult, type RegisterInput, type RestOptions } from './rest.ts';
import type { SendTarget } from './send-queue.ts';
import { Session, appOf, type SessionLoginInput } from './session.ts';
import type { WebSocketFactory, WebSocketLike } from './transport/websocket.ts';
import { ConnectTelemetry, telemetryVersion } from './telemetry.ts';
import type { RequestFrame, RequestResults, RequestType, WelcomeResult } from './wire.ts';
import type { Instruction } from './instructions.ts';
import { FrameRouter } from './frame-router.ts';
import type { DeliveredCountsEvent, DeliveredEvent } from './delivered.ts';

import type { ClientState, StateEvent, OfflineReason, ConnectionInfo, ConversationEvent, KickedEvent, MagpieClientEvents, MagpieClientOptions, SendInput, ConversationPatch } from './client-types.ts';
export type { DeliveredEvent, DeliveredCountsEvent, ClientState, StateEvent, OfflineReason, ConnectionInfo, ConversationEvent, KickedEvent, MagpieClientEvents, MagpieClientOptions, SendInput, ConversationPatch };

/**
 * The Magpie client: one authenticated long connection per device with heartbeats and
 * reconnects, the ordered inbound queue (push + pull), the conversation list, local
 * history with hole tracking, and the send queue. Everything the app needs to know comes
 * through typed events (`on`).
 *
 * A facade over three parts with one job each: ConnectionManager (socket, hello, heartbeats,
 * reconnects, close codes, state), Session (token, user, device, instructions) and Replica
 * (the local data and its sync). Frames go transport → ConnectionManager → FrameRouter → the
 * part that owns their type; only the welcome is composed here.
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
  /** Connect telemetry of the first 30 s (telemetry.ts). */
  readonly telemetry: ConnectTelemetry;
  private readonly emitter: TypedEmitter<MagpieClientEvents>;
  private readonly session: Session;
  private readonly conn: ConnectionManager;
  private readonly data: Replica;
  /** Transport → router → the part that owns the frame type. */
  private readonly router: FrameRouter;
  private initPromise: Promise<void> | null = null;

  constructor(options: MagpieClientOptions = {}) {
    const clock: Clock = options.clock ?? systemClock;
    this.store = options.store ?? new MemoryStore();
    const emitter = (this.emitter = new TypedEmitter<MagpieClientEvents>(options.onListenerError));
    const emit = emitter.emit.bind(emitter);
    const rest = restApiOf(options);
    const app = appOf(options);
    const session = (this.session = new Session(this.store, rest, options.newId ?? randomId, app, options.token ?? null));
    this.telemetry = new ConnectTelemetry(
      clock,
      { platform: app.platform, appVersion: telemetryVersion(app.version) },
      (report) => (rest ? rest.telemetryConnect(report, session.token ?? undefined) : Promise.resolve()),
      { ...options.telemetry, enabled: (options.telemetry?.enabled ?? true) && rest !== null },
    );
    this.conn = new ConnectionManager(
      connectionOptions(options, { url: options.url ?? (options.baseUrl ? wsUrlOf(options.baseUrl) : null), factory: options.webSocketFactory ?? defaultWebSocketFactory(), clock, app, telemetry: this.telemetry }),
      {
        hello: () => (session.token ? { token: session.token, inboxSeq: this.data.engine.inboxSeq } : null),
        welcomed: (gen, welcome, helloInboxSeq) => this.onWelcome(gen, welcome, helloInboxSeq),
        frame: (f) => this.router.route(f),
        detached: () => this.router.hold(),
        started: () => this.data.start(),
        stopped: () => this.data.stop(),
        rtt: (ms) => this.data.engine.noteRtt(ms),
        rttBound: () => this.data.engine.rttBound,
        emit,
      },
    );
    const conn = this.conn;
    this.data = new Replica(
      {
        store: this.store,
        clock,
        newId: options.newId ?? timeOrderedId,
        link: { generation: () => conn.generation, ready: () => conn.isReady, request: (f, o) => conn.request(f, o), notify: (f) => conn.notify(f) },
        userId: () => session.userId,
        emit,
      },
      options,
    );
    this.router = new FrameRouter({
      ...this.data.handlers,
      kicked: (k) => conn.noteKick(k),
      instruction: (i) => void this.onLiveInstruction(conn.generation, i),
      error: (e) => emit('error', e),
      other: (f) => emit('frame', f),
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
    return this.conn.state;
  }

  get userId(): string | null {
    return this.session.userId;
  }

  get deviceId(): string | null {
    return this.session.deviceId;
  }

  /** The stored inbox position. */
  get inboxSeq(): number {
    return this.data.engine.inboxSeq;
  }

  get conversationListVersion(): number {
    return this.data.convSync.listVersion;
  }

  /** The last welcome (server limits, heartbeat, time). */
  get welcome(): WelcomeResult | null {
    return this.session.welcome;
  }

  /** Configuration values set by the server (`set_config` instructions). */
  get remoteConfig(): Record<string, unknown> {
    return this.session.remoteConfig;
  }

  /** Generation of the current socket (grows with every connection attempt). */
  get connectionGeneration(): number {
    return this.conn.generation;
  }

  /** Inbound-queue counters (merged, duplicates, pulls by reason, full syncs). */
  get syncStats() {
    return this.data.engine.stats;
  }

  /** Resolves when the inbound queue and the conversation list have processed everything received so far. */
  async idle(): Promise<void> {
    await this.data.engine.idle();
    await this.data.convSync.idle();
  }

  /** What a connection banner shows: state, why offline, when the next attempt is. */
  get connection(): ConnectionInfo {
    return this.conn.info;
  }

  // ---------------------------------------------------------------- lifecycle

  /** Load the local store (called by connect(); call it early to read local data before connecting). */
  init(): Promise<void> {
    this.initPromise ??= (async () => {
      await this.session.load();
      await this.data.init();
    })();
    return this.initPromise;
  }

  setToken(token: string): void {
    this.session.token = token;
  }

  /** Log in over REST and keep the token (deviceId defaults to the stored one, or a new one). */
  async login(input: SessionLoginInput): Promise<LoginResult> {
    await this.init();
    return this.session.login(input);
  }

  /**
   * Start connecting and resolve once online. Rejects when the client ends logged out or
   * kicked, is closed before it got online, or when `reconnect.maxFailures` attempts in a row
   * failed (code `network`; the client keeps trying every `reconnect.slowIntervalMs`).
   */
  async connect(): Promise<void> {
    if (!this.session.token) throw new MagpieClientError('unauthorized', 'no token: log in first or pass `token`');
    if (!this.conn.canOpen) throw new MagpieClientError('not_connected', 'no WebSocket: pass `url`/`baseUrl` and a `webSocketFactory`');
    await this.init();
    return this.conn.connect();
  }

  /** connect() without waiting; failures show up as `state` and `error` events. */
  start(): void {
    this.connect().catch(() => undefined);
  }

  /** Close the connection and stop reconnecting. Local data stays. */
  close(): void {
    this.data.engine.flushAck();
    this.conn.shutdown('offline', new MagpieClientError('closed', 'the client was closed'));
  }

  /**
   * Log this device out (or all devices with `all`): the connection is closed first, then
   * the server session is revoked. `clearLocalData` forgets the stored user data.
   */
  async logout(opts: { all?: boolean; clearLocalData?: boolean } = {}): Promise<void> {
    this.data.engine.flushAck();
    this.conn.shutdown('logged_out', new MagpieClientError('closed', 'logged out'));
    await this.session.logout(opts.all === true, () => (opts.clearLocalData ? this.clearLocalData() : Promise.resolve()));
  }

  /** Tell the SDK whether the app is visible. Foreground: a probe ping, a pull and (if offline) a reconnect. */
  setAppState(state: AppState): void {
    if (this.conn.setAppState(state) && this.conn.isReady) this.data.engine.pullQuietly('foreground');
  }

  /** Tell the SDK about the network. Online: probe the socket it has (or reconnect soon). */
  setNetworkOnline(online: boolean): void {
    this.conn.setNetworkOnline(online);
  }

  /** Pull the inbox and the conversation list now (or reconnect if offline). */
  async refresh(): Promise<void> {
    if (!this.conn.isReady) {
      this.conn.wake('manual');
      return;
    }
    await Promise.all([this.data.engine.pull('manual'), this.data.convSync.sync()]);
  }

  // ---------------------------------------------------------------- messages

  /** Queue a message; resolves with it in state `sending` (follow `message` events or waitForSend). */
  async send(input: SendInput): Promise<LocalMessage> {
    await this.init();
    return this.data.send(input);
  }

  sendText(target: SendTarget, text: string): Promise<LocalMessage> {
    return this.send({ ...target, kind: 'text', body: { text } });
  }

  /** Re-queue a failed message (same clientMsgId). */
  async retry(clientMsgId: string): Promise<LocalMessage> {
    return this.data.history.fromRecord(await this.data.sendQueue.retry(clientMsgId));
  }

  /** Resolves when the message is sent or failed (undefined when the id is unknown). */
  async waitForSend(clientMsgId: string): Promise<LocalMessage | undefined> {
    const r = await this.data.sendQueue.wait(clientMsgId);
    return r ? this.data.history.fromRecord(r) : undefined;
  }

  /** Outgoing messages not yet replaced by their stored copy. */
  outgoing(): LocalMessage[] {
    return this.data.sendQueue.list().map((r) => this.data.history.fromRecord(r));
  }

  /**
   * Normal groups: read the newest page of a conversation (or the page below `before`) from
   * the server again, to learn the current delivered counts of own messages held locally —
   * a device that was offline missed the live `delivered.counts` frames. Changed counts come
   * as `deliveredCounts` and `message` events. Other conversations: nothing to do.
   */
  async refreshDeliveredCounts(conv: string, q: { before?: number; limit?: number } = {}): Promise<void> {
    await this.init();
    await this.data.refreshDeliveredCounts(conv, q);
  }

  /** Local history of a conversation: one contiguous run, with gap flags. */
  async getMessages(conv: string, q: HistoryQuery = {}): Promise<MessageWindow> {
    await this.init();
    return this.data.history.window(conv, q);
  }

  /** History paging: served locally when complete there, otherwise loaded from the server (filling the hole). */
  async loadHistory(conv: string, q: HistoryQuery = {}): Promise<MessageWindow & { fromServer: boolean }> {
    await this.init();
    return this.data.load(conv, q);
  }

  /**
   * The messages around `seq` (jump to a search hit or a quoted message): a window of up to
   * `before` messages below it, the message itself and up to `after` above it, oldest first,
   * served locally when complete there and otherwise loaded from the server (filling holes).
   * Messages the user may not read (before their join, cleared) are simply not in the window.
   */
  async historyAround(conv: string, seq: number, q: { before?: number; after?: number } = {}): Promise<MessageWindow & { fromServer: boolean }> {
    await this.init();
    return this.data.historyAround(conv, seq, q);
  }

  // ---------------------------------------------------------------- conversations

  /** The visible conversation list: pinned first, then by latest activity. */
  async getConversations(): Promise<ConvEntry[]> {
    await this.init();
    return this.data.conversations();
  }

  async getConversation(conv: string): Promise<ConvEntry | undefined> {
    await this.init();
    return this.data.conversation(conv);
  }

  /** Mark read up to seq (shared with the user's other devices). */
  markRead(conv: string, seq: number): Promise<ConvEntry> {
    return this.data.updateEntry({ type: 'read', conv, seq });
  }

  /** Pin, mute, set a draft, or delete (for oneself) a conversation. */
  updateConversation(conv: string, patch: ConversationPatch): Promise<ConvEntry> {
    return this.data.updateEntry({ type: 'conv.update', conv, ...patch });
  }

  /** Send any request on the current authenticated connection. */
  request<T extends RequestType>(frame: Extract<RequestFrame, { type: T }>, opts?: { timeoutMs?: number }): Promise<RequestResults[T]> {
    return this.conn.request(frame, opts);
  }

  // ---------------------------------------------------------------- the welcome and instructions

  /**
   * A socket was welcomed: take the user and device (another user's local data is forgotten
   * first), apply the instructions pending at login before any sync (so history never shows
   * data the server has asked the device to drop), then sync and go online.
   */
  private async onWelcome(gen: number, welcome: WelcomeResult, helloInboxSeq: number): Promise<void> {
    let effective = welcome;
    if (this.session.isOtherUser(welcome)) {
      await this.clearLocalData();
      effective = { ...welcome, sync: 'full' };
    }
    await this.session.adopt(welcome);
    let forcedFull = false;
    for (const i of welcome.instructions ?? []) {
      if (gen !== this.conn.generation) return;
      const r = await this.runInstruction(i);
      if (r && (i.kind === 'force_full_sync' || i.kind === 'clear_cache')) forcedFull = true;
    }
    if (forcedFull) effective = { ...effective, sync: 'full' };
    if (gen !== this.conn.generation) return;
    for (const sg of welcome.supers ?? []) this.data.delivered.setKind(sg.conv, 'super');
    this.conn.markReady(gen);
    await this.data.welcomed(welcome, effective, helloInboxSeq, () => this.router.release());
    if (gen !== this.conn.generation || !this.conn.isReady) return;
    this.conn.markOnline(gen);
    this.emitter.emit('syncProgress', { phase: 'done', received: 0, inboxSeq: this.data.engine.inboxSeq });
  }

  private runInstruction(i: Instruction): Promise<boolean> {
    return this.session.runInstruction(i, {
      clearLocalData: () => this.clearLocalData(),
      diagnostics: async () => ({
        userId: this.session.userId,
        deviceId: this.session.deviceId,
        state: this.conn.state,
        ...(await this.data.diagnostics()),
        app: this.session.app,
      }),
      report: (instr, ok, result) => this.conn.requestNow({ type: 'instruction.result', instructionId: instr.instructionId, ok, result: (result ?? null) as never }),
      executed: (e) => this.emitter.emit('instruction', e),
    });
  }

  /** A live instruction: data resets restart the sync from scratch on a fresh connection. */
  private async onLiveInstruction(gen: number, i: Instruction): Promise<void> {
    const ok = await this.runInstruction(i);
    if (ok && gen === this.conn.generation && (i.kind === 'force_full_sync' || i.kind === 'clear_cache')) this.conn.drop('instruction', true);
  }

  private async clearLocalData(): Promise<void> {
    await this.data.clear();
    this.session.userId = null;
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
