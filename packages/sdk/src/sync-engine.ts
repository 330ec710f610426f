import type { InboxItem } from '@magpie/protocol';
import { Timer, type Clock } from './clock.ts';
import { MagpieClientError, toClientError } from './errors.ts';
import type { LocalStore } from './local-store.ts';
import { SerialQueue } from './serial.ts';
import type { SyncResult, WelcomeResult } from './wire.ts';

export interface SyncEngineOptions {
  /** How long a pushed item beyond a gap waits for the missing ones before a pull. */
  gapWaitMs: number;
  /** `limit` of each sync page. */
  pageSize: number;
  /** ACKs are batched: at most one per this many ms. */
  ackDelayMs: number;
}

export const defaultSyncEngineOptions: SyncEngineOptions = { gapWaitMs: 500, pageSize: 200, ackDelayMs: 100 };

/** What the engine needs from the connection layer. */
export interface SyncLink {
  /** Generation of the current socket; results from an older one are dropped. */
  generation(): number;
  /** True while there is an authenticated connection. */
  ready(): boolean;
  sync(since: number, limit: number): Promise<SyncResult>;
  /** Send a cumulative ACK; false when it could not be written. */
  ack(inboxSeq: number): boolean;
}

export type SyncPhase = 'inbox' | 'full' | 'conversations' | 'done';
export interface SyncProgress {
  phase: SyncPhase;
  /** Items (or entries) received so far in this run. */
  received: number;
  inboxSeq: number;
}

export interface SyncEngineHooks {
  /** Store these items' messages (oldest first). Runs inside the ordered queue. */
  merge(items: InboxItem[]): Promise<void>;
  /** The server asked for a full sync: reload the conversation list. Runs inside the queue. */
  fullSync(): Promise<void>;
  progress(p: SyncProgress): void;
  error(err: MagpieClientError): void;
}

/** Where an inbox item came from. Pulled pages are authoritative and never wait for a gap. */
export type InboxSource = 'push' | 'pull' | 'send';

export type PullReason = 'connect' | 'gap' | 'pong' | 'foreground' | 'manual';

export interface SyncEngineStats {
  merged: number;
  duplicates: number;
  pulls: Record<PullReason, number>;
  fullSyncs: number;
}

/**
 * The one ordered inbound queue. Pushed `msg` items, pulled `sync` pages, own-send results
 * and full syncs all run through it one at a time, so merging never races. The local
 * inboxSeq only moves forward by gap-free steps (or by a pulled page / a full sync), is
 * persisted after the messages are stored, and is acknowledged in batches after that.
 */
export class SyncEngine {
  private readonly queue = new SerialQueue();
  private readonly gapTimer: Timer;
  private readonly ackTimer: Timer;
  private local = 0;
  private highest = 0;
  private lastAcked = 0;
  private readonly buffer = new Map<number, InboxItem>();
  private pullWaiting: Promise<void> | null = null;
  readonly stats: SyncEngineStats = {
    merged: 0,
    duplicates: 0,
    pulls: { connect: 0, gap: 0, pong: 0, foreground: 0, manual: 0 },
    fullSyncs: 0,
  };

  constructor(
    private readonly store: LocalStore,
    private readonly clock: Clock,
    private readonly link: SyncLink,
    private readonly hooks: SyncEngineHooks,
    readonly options: SyncEngineOptions = defaultSyncEngineOptions,
  ) {
    this.gapTimer = new Timer(clock);
    this.ackTimer = new Timer(clock);
  }

  async init(): Promise<void> {
    const meta = await this.store.loadMeta();
    this.local = meta.inboxSeq;
    this.highest = meta.inboxSeq;
    this.lastAcked = meta.inboxSeq;
  }

  /** Every inbox item up to here is stored locally. */
  get inboxSeq(): number {
    return this.local;
  }

  /** The highest inboxSeq received or stored (a pong at or below it needs no pull). */
  get highestSeen(): number {
    return Math.max(this.local, this.highest);
  }

  /** Items waiting behind a gap. */
  get buffered(): number {
    return this.buffer.size;
  }

  /** Resolves when everything queued so far has been processed. */
  idle(): Promise<void> {
    return this.queue.idle();
  }

  /** A pushed item or the inbox position of an own send: merged in order. */
  push(item: InboxItem, source: Exclude<InboxSource, 'pull'> = 'push'): Promise<void> {
    if (item.inboxSeq > this.highest) this.highest = item.inboxSeq;
    return this.queue.run(() => this.apply([item], source)).catch((err) => this.hooks.error(toClientError(err)));
  }

  /**
   * Pull from the local inboxSeq until the server has no more. Coalesced: a pull that has
   * not started yet serves every request made before it starts. Rejects on failure.
   */
  pull(reason: PullReason): Promise<void> {
    if (this.pullWaiting) return this.pullWaiting;
    const p = this.queue.run(async () => {
      this.pullWaiting = null;
      await this.runPull(reason);
    });
    this.pullWaiting = p;
    return p;
  }

  /** Like pull(), for background triggers: failures are reported, lost connections ignored. */
  pullQuietly(reason: PullReason): void {
    this.pull(reason).catch((err) => this.report(err));
  }

  /**
   * A connection was authenticated. `helloInboxSeq` is what the hello frame presented.
   * Runs the sync the welcome asks for; resolves when it is done.
   */
  connected(welcome: WelcomeResult, helloInboxSeq: number): Promise<void> {
    this.lastAcked = helloInboxSeq;
    this.scheduleAck();
    return this.queue.run(async () => {
      // A server behind what this client presented lost its inbox: rebuild.
      if (welcome.sync === 'full' || welcome.inboxSeq < helloInboxSeq) {
        await this.runFull(welcome.inboxSeq);
      } else if (welcome.sync === 'incremental' || welcome.inboxSeq > this.local) {
        this.stats.pulls.connect++;
        await this.runPullPages();
      }
    });
  }

  /** Forget positions (another user's data was cleared). */
  reset(): void {
    this.local = 0;
    this.highest = 0;
    this.lastAcked = 0;
    this.buffer.clear();
    this.gapTimer.stop();
    this.ackTimer.stop();
  }

  stop(): void {
    this.gapTimer.stop();
    this.ackTimer.stop();
  }

  /** Send the pending ACK now (if any). */
  flushAck(): void {
    this.ackTimer.stop();
    if (this.local > this.lastAcked && this.link.ready() && this.link.ack(this.local)) this.lastAcked = this.local;
  }

  private report(err: unknown): void {
    const e = toClientError(err);
    if (e.code === 'disconnected' || e.code === 'not_connected') return; // the next connection pulls
    this.hooks.error(e);
  }

  private async runPull(reason: PullReason): Promise<void> {
    if (!this.link.ready()) return; // the next connection pulls from the stored inboxSeq
    this.stats.pulls[reason]++;
    await this.runPullPages();
  }

  private async runPullPages(): Promise<void> {
    const gen = this.link.generation();
    let received = 0;
    for (;;) {
      const page = await this.link.sync(this.local, this.options.pageSize);
      if (this.link.generation() !== gen) return; // the socket was replaced: drop its data
      if (page.full) {
        await this.runFull(page.inboxSeq);
        return;
      }
      received += page.items.length;
      await this.apply(page.items, 'pull');
      this.hooks.progress({ phase: 'inbox', received, inboxSeq: this.local });
      if (!page.more || page.items.length === 0) return;
    }
  }

  private async runFull(inboxSeq: number): Promise<void> {
    this.stats.fullSyncs++;
    this.hooks.progress({ phase: 'full', received: 0, inboxSeq: this.local });
    await this.hooks.fullSync();
    this.local = inboxSeq;
    this.highest = Math.max(inboxSeq, ...this.buffer.keys());
    this.lastAcked = Math.min(this.lastAcked, inboxSeq);
    await this.store.saveMeta({ inboxSeq });
    this.hooks.progress({ phase: 'full', received: 0, inboxSeq });
    // Items pushed beyond the new position may already be waiting.
    await this.apply([], 'pull');
    this.scheduleAck();
  }

  private async apply(items: InboxItem[], source: InboxSource): Promise<void> {
    const sorted = items.length > 1 ? [...items].sort((a, b) => a.inboxSeq - b.inboxSeq) : items;
    let next = this.local;
    const merge: InboxItem[] = [];
    for (const item of sorted) {
      if (item.inboxSeq <= next) {
        this.stats.duplicates++;
        continue;
      }
      if (item.inboxSeq === next + 1 || source === 'pull') {
        merge.push(item);
        next = item.inboxSeq;
      } else {
        this.buffer.set(item.inboxSeq, item);
      }
    }
    for (let b = this.buffer.get(next + 1); b; b = this.buffer.get(next + 1)) {
      this.buffer.delete(b.inboxSeq);
      merge.push(b);
      next = b.inboxSeq;
    }
    for (const k of this.buffer.keys()) if (k <= next) this.buffer.delete(k);
    if (merge.length > 0) {
      await this.hooks.merge(merge);
      this.local = next;
      this.stats.merged += merge.length;
      await this.store.saveMeta({ inboxSeq: next });
      this.scheduleAck();
    }
    if (this.buffer.size === 0) this.gapTimer.stop();
    else if (!this.gapTimer.active) this.gapTimer.start(this.options.gapWaitMs, () => this.pullQuietly('gap'));
  }

  private scheduleAck(): void {
    if (this.local <= this.lastAcked || this.ackTimer.active) return;
    this.ackTimer.start(this.options.ackDelayMs, () => this.flushAck());
  }
}
