import type { ConvEntry, InboxItem, Message } from '@magpie/protocol';
import { Timer, type Clock } from './clock.ts';
import { ConversationSync } from './conv-sync.ts';
import { DeliveredTracker } from './delivered.ts';
import { toClientError } from './errors.ts';
import { History, type HistoryQuery, type LocalMessage, type MessageWindow } from './history.ts';
import type { LocalStore } from './local-store.ts';
import { coveredUpTo } from './seq-ranges.ts';
import { SendQueue, defaultSendQueueOptions, type SendTarget } from './send-queue.ts';
import { SyncEngine, defaultSyncEngineOptions } from './sync-engine.ts';
import type { FrameHandlers } from './frame-router.ts';
import type { RequestFrame, RequestResults, RequestType, WelcomeResult } from './wire.ts';
import type { MagpieClientEvents, MagpieClientOptions, SendInput } from './client-types.ts';

/** The connection as the local data needs it: requests, ACKs, and which socket is current. */
export interface ReplicaLink {
  generation(): number;
  ready(): boolean;
  request<T extends RequestType>(frame: Extract<RequestFrame, { type: T }>, opts?: { timeoutMs?: number }): Promise<RequestResults[T]>;
  notify(frame: { type: 'ack'; inboxSeq: number }): boolean;
}

export type ReplicaEvents = Pick<MagpieClientEvents, 'message' | 'conversation' | 'delivered' | 'deliveredCounts' | 'syncProgress' | 'error'>;

export interface ReplicaDeps {
  store: LocalStore;
  clock: Clock;
  newId: () => string;
  link: ReplicaLink;
  /** The signed-in user (own messages settle the send queue). */
  userId(): string | null;
  emit<K extends keyof ReplicaEvents>(event: K, payload: ReplicaEvents[K]): void;
}

/** The data frames the replica handles (see FrameRouter). */
export type DataFrameHandlers = Pick<FrameHandlers, 'msg' | 'advanced' | 'conv' | 'delivered' | 'deliveredCounts' | 'pong'>;

/**
 * The local replica of the user's data: the ordered inbound queue (sync-engine), the
 * conversation list (conv-sync), local history with holes, the send queue and delivered
 * state. It sees the connection only through ReplicaLink and reports through events.
 */
export class Replica {
  readonly engine: SyncEngine;
  readonly convSync: ConversationSync;
  readonly sendQueue: SendQueue;
  readonly history: History;
  readonly delivered: DeliveredTracker;
  /** Handlers of the data frames, for the frame router. */
  readonly handlers: DataFrameHandlers;
  private readonly convRefreshTimer: Timer;
  private readonly store: LocalStore;

  constructor(
    private readonly deps: ReplicaDeps,
    options: Pick<MagpieClientOptions, 'sync' | 'sendQueue' | 'convPageSize'>,
  ) {
    const { store, clock, link, emit } = deps;
    this.store = store;
    this.convRefreshTimer = new Timer(clock);
    const gen = { generation: () => link.generation(), ready: () => link.ready() };
    this.engine = new SyncEngine(
      store,
      clock,
      {
        ...gen,
        sync: (since, limit, timeoutMs, have) => link.request({ type: 'sync', since, limit, ...(have.length > 0 ? { have } : {}) }, { timeoutMs }),
        ack: (inboxSeq) => link.notify({ type: 'ack', inboxSeq }),
      },
      {
        merge: (items) => this.mergeInbox(items),
        fullSync: () => this.convSync.reload(),
        progress: (p) => emit('syncProgress', p),
        error: (e) => emit('error', e),
      },
      { ...defaultSyncEngineOptions, ...options.sync },
    );
    this.convSync = new ConversationSync(
      store,
      { ...gen, convs: (since, limit) => link.request({ type: 'convs', since, limit }) },
      {
        changed: (conv, entry, previous) => this.onEntryChanged(conv, entry, previous),
        progress: (received) => emit('syncProgress', { phase: 'conversations', received, inboxSeq: this.engine.inboxSeq }),
        error: (e) => emit('error', e),
      },
      options.convPageSize ?? 200,
    );
    this.sendQueue = new SendQueue(
      store,
      clock,
      { ready: () => link.ready(), send: (frame, timeoutMs) => link.request(frame, { timeoutMs }) },
      {
        changed: (r) => emit('message', this.history.fromRecord(r)),
        accepted: (_r, result) => void this.engine.push({ inboxSeq: result.inboxSeq, message: result.message }, 'send'),
      },
      deps.newId,
      { ...defaultSendQueueOptions, ...options.sendQueue },
    );
    this.delivered = new DeliveredTracker(
      { store, userId: deps.userId, outgoing: () => this.sendQueue.list(), toLocal: (m) => this.history.toLocal(m), fromRecord: (r) => this.history.fromRecord(r) },
      { delivered: (e) => emit('delivered', e), deliveredCounts: (e) => emit('deliveredCounts', e), message: (m) => emit('message', m) },
    );
    this.history = new History({
      store,
      userId: deps.userId,
      deliveredSeq: (conv) => this.delivered.deliveredSeq(conv),
      counted: (conv) => this.delivered.counted(conv),
      liveCount: (conv, seq) => this.delivered.liveCount(conv, seq),
      outgoing: () => this.sendQueue.list(),
      fetch: (conv, q) => link.request({ type: 'history', conv, ...q }),
    });
    this.handlers = {
      msg: (item) => void this.engine.push(item, 'push'),
      // Super group: stored by conversation seq; a missing seq before it stays a hole that history paging fills.
      advanced: (message) => void this.onAdvanced(message),
      conv: (entry) => this.convSync.pushed(entry),
      delivered: (d) => void this.delivered.onFrame(d),
      deliveredCounts: (conv, pairs) => void this.delivered.applyCounts(conv, pairs).catch((err) => emit('error', toClientError(err))),
      pong: (inboxSeq) => {
        if (link.ready() && inboxSeq > this.engine.highestSeen) this.engine.pullQuietly('pong');
      },
    };
  }

  async init(): Promise<void> {
    await this.engine.init();
    await this.convSync.init();
    await this.sendQueue.init();
    await this.delivered.init();
  }

  start(): void {
    this.sendQueue.start();
  }

  stop(): void {
    this.convRefreshTimer.stop();
    this.engine.stop();
    this.sendQueue.stop();
  }

  /** Forget everything stored locally; the next sync is a full one. */
  async clear(): Promise<void> {
    await this.store.clear();
    this.engine.reset();
    this.convSync.reset();
    this.delivered.reset();
    await this.sendQueue.init();
  }

  /**
   * A socket was welcomed and is ready: queue the welcome's sync first (`release` then lets
   * the data frames held since the socket opened follow it), send what waits, then bring the
   * conversation list and the super groups up to date.
   */
  async welcomed(welcome: WelcomeResult, effective: WelcomeResult, helloInboxSeq: number, release: () => void): Promise<void> {
    const gen = this.deps.link.generation();
    const current = () => gen === this.deps.link.generation() && this.deps.link.ready();
    const synced = this.engine.connected(effective, helloInboxSeq);
    release();
    this.sendQueue.kick();
    try {
      await synced;
      if (!current()) return;
      await this.convSync.sync();
      if (!current()) return;
      await this.syncSupers(gen, welcome.supers ?? []);
    } catch (err) {
      const e = toClientError(err);
      if (!current() || e.code === 'disconnected' || e.code === 'not_connected') return;
      this.deps.emit('error', e);
    }
  }

  /** The replica's part of `upload_diagnostics`. */
  async diagnostics(): Promise<Record<string, unknown>> {
    return {
      inboxSeq: this.engine.inboxSeq,
      conversationListVersion: this.convSync.listVersion,
      conversations: (await this.store.listEntries()).length,
      outgoing: (await this.store.listOutgoing()).length,
      sync: this.engine.stats,
    };
  }

  // ---------------------------------------------------------------- reads and writes for the facade

  async send(input: SendInput): Promise<LocalMessage> {
    const target: SendTarget = {};
    if (input.conv !== undefined) target.conv = input.conv;
    if (input.to !== undefined) target.to = input.to;
    const r = await this.sendQueue.enqueue(target, input.kind ?? 'text', input.body, input.mentions);
    return this.history.fromRecord(r);
  }

  /** See MagpieClient.refreshDeliveredCounts. */
  async refreshDeliveredCounts(conv: string, q: { before?: number; limit?: number }): Promise<void> {
    if (!this.delivered.counted(conv)) return;
    const query: { before?: number; limit: number } = { limit: Math.max(1, Math.min(q.limit ?? 30, 200)) };
    if (q.before !== undefined) query.before = q.before;
    const page = await this.deps.link.request({ type: 'history', conv, ...query });
    const me = this.deps.userId();
    const pairs = page.messages.filter((m) => m.sender === me && m.deliveredCount !== undefined).map((m): [number, number] => [m.seq, m.deliveredCount!]);
    await this.delivered.applyCounts(conv, pairs);
    await this.history.storePage(conv, page, query);
  }

  /** See MagpieClient.historyAround. */
  historyAround(conv: string, seq: number, q: { before?: number; after?: number }): Promise<MessageWindow & { fromServer: boolean }> {
    const below = Math.max(0, Math.min(q.before ?? 20, 100));
    const above = Math.max(0, Math.min(q.after ?? 20, 99));
    const start = Math.max(0, seq - 1 - below);
    return this.history.load(conv, { after: start, limit: seq - start + above });
  }

  load(conv: string, q: HistoryQuery): Promise<MessageWindow & { fromServer: boolean }> {
    return this.history.load(conv, q);
  }

  /** The visible conversation list: pinned first, then by latest activity. */
  async conversations(): Promise<ConvEntry[]> {
    const list = (await this.store.listEntries()).filter((e) => !e.deleted);
    return list.sort((a, b) => Number(b.pinned) - Number(a.pinned) || (b.lastMessage?.time ?? 0) - (a.lastMessage?.time ?? 0) || b.version - a.version);
  }

  async conversation(conv: string): Promise<ConvEntry | undefined> {
    const e = await this.store.getEntry(conv);
    return e && !e.deleted ? e : undefined;
  }

  /** A read mark or conversation update: applied locally as the server answered it. */
  async updateEntry(frame: Extract<RequestFrame, { type: 'read' | 'conv.update' }>): Promise<ConvEntry> {
    const { entry } = await this.deps.link.request(frame);
    await this.convSync.apply(entry);
    return entry;
  }

  // ---------------------------------------------------------------- inbound data

  /** Runs inside the ordered queue: store, settle own outgoing copies, tell the app. */
  private async mergeInbox(items: InboxItem[]): Promise<void> {
    await this.history.storeInbox(items);
    for (const { message } of items) {
      if (message.sender === this.deps.userId()) await this.sendQueue.settle(message);
      this.deps.emit('message', this.history.toLocal(message));
    }
    await this.noteMessages(items.map((i) => i.message));
  }

  private async onAdvanced(message: Message): Promise<void> {
    try {
      await this.history.storeMessages([message]);
      if (message.sender === this.deps.userId()) await this.sendQueue.settle(message);
      this.deps.emit('message', this.history.toLocal(message));
      await this.noteMessages([message]);
    } catch (err) {
      this.deps.emit('error', toClientError(err));
    }
  }

  /** Move the local conversation entries forward; fetch the server's copies soon when only it knows (new conversation, mentions). */
  private async noteMessages(messages: Message[]): Promise<void> {
    if (messages.length === 0) return;
    const needServer = await this.convSync.noteMessages(messages, this.deps.userId());
    if (needServer && !this.convRefreshTimer.active) {
      this.convRefreshTimer.start(250, () => {
        if (this.deps.link.ready()) this.convSync.syncQuietly();
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
      // Held up to the welcome's position; a message that arrived live since (above lastSeq)
      // does not count, or it would hide the gap below it (and the events in it, a recall of
      // the last message among them, would never reach the entry).
      const local = coveredUpTo(await this.store.getRanges(conv), lastSeq);
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
      if (gen !== this.deps.link.generation()) return;
      const stored = await this.store.getMessages(conv, local + 1, lastSeq);
      for (const m of got) this.deps.emit('message', m);
      await this.noteMessages(stored);
    }
  }

  private async onEntryChanged(conv: string, entry: ConvEntry | null, previous: ConvEntry | undefined): Promise<void> {
    if (entry) this.delivered.setKind(conv, entry.kind);
    this.deps.emit('conversation', { conv, entry, previous: previous && !previous.deleted ? previous : null });
    if (entry && entry.deliveredSeq > this.delivered.deliveredSeq(conv)) await this.delivered.advance(conv, entry.deliveredSeq);
  }
}
