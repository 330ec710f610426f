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
  /**
   * How long a `sync` reply may be late before the request is sent again, adapted to the
   * measured round trip (2 × smoothed RTT + 4 × its deviation + 1 s) within
   * [pullTimeoutMinMs, pullTimeoutMaxMs]; doubled for each further request of the same page
   * (still within the max). A lost reply costs seconds, not the 15 s request timeout.
   */
  pullTimeoutMinMs: number;
  pullTimeoutMaxMs: number;
  /** Requests for one page before the pull fails (the next gap, pong or reconnect pulls again). */
  pullAttempts: number;
  /** How long each of those requests stays valid (a late page is still used when it comes first). */
  pullRequestTimeoutMs: number;
}

export const defaultSyncEngineOptions: SyncEngineOptions = {
  gapWaitMs: 500,
  pageSize: 200,
  ackDelayMs: 100,
  pullTimeoutMinMs: 2_000,
  pullTimeoutMaxMs: 6_000,
  pullAttempts: 4,
  pullRequestTimeoutMs: 15_000,
};

/** What the engine needs from the connection layer. */
export interface SyncLink {
  /** Generation of the current socket; results from an older one are dropped. */
  generation(): number;
  /** True while there is an authenticated connection. */
  ready(): boolean;
  /** `have`: inboxSeqs above `since` already received (for the server's metrics). */
  sync(since: number, limit: number, timeoutMs: number, have: number[]): Promise<SyncResult>;
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
  /** `sync` requests that got no reply within their (short) timeout and were sent again. */
  pullTimeouts: number;
}

/**
 * The one ordered inbound queue. Pushed `msg` items, pulled `sync` pages, own-send results
 * and full syncs all run through it one at a time, so merging never races. The local
 * inboxSeq only moves forward by gap-free steps (or by a pulled page / a full sync), is
 * persisted after the messages are stored, and is acknowledged in batches after that.
 *
 * A pull waits for its page outside the queue: live items keep merging (or wait in the gap
 * buffer) while a `sync` request is on the wire, and a page is merged in the queue when it
 * comes. A page whose reply is late is asked for again after a short, RTT-adapted timeout.
 */
export class SyncEngine {
  private readonly queue = new SerialQueue();
  private readonly gapTimer: Timer;
  private readonly ackTimer: Timer;
  private local = 0;
  private highest = 0;
  private lastAcked = 0;
  private readonly buffer = new Map<number, InboxItem>();
  /** The running pull loop; callers while it runs join it (and ask for one more round). */
  private pullLoop: Promise<void> | null = null;
  private pullAgain = false;
  /** Smoothed round trip and its deviation (RFC 6298 style); null before the first sample. */
  private srtt: number | null = null;
  private rttvar = 0;
  readonly stats: SyncEngineStats = {
    merged: 0,
    duplicates: 0,
    pulls: { connect: 0, gap: 0, pong: 0, foreground: 0, manual: 0 },
    fullSyncs: 0,
    pullTimeouts: 0,
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
   * Pull from the local inboxSeq until the server has no more. Coalesced: while a pull runs,
   * a new request joins it and one more round runs after it (a gap needs none: the running
   * pull covers it, and a gap still open afterwards re-arms the gap wait). Rejects on failure.
   */
  pull(reason: PullReason): Promise<void> {
    if (!this.link.ready()) return Promise.resolve(); // the next connection pulls from the stored inboxSeq
    if (this.pullLoop) {
      if (reason !== 'gap' && !this.pullAgain) {
        this.pullAgain = true;
        this.stats.pulls[reason]++;
      }
      return this.pullLoop;
    }
    this.stats.pulls[reason]++;
    const loop = (async () => {
      try {
        for (;;) {
          this.pullAgain = false;
          try {
            await this.runPullPages();
          } catch (err) {
            // A pull asked for meanwhile (e.g. by a new connection) still runs.
            if (!this.pullAgain || !this.link.ready()) throw err;
            continue;
          }
          if (!this.pullAgain || !this.link.ready()) return;
        }
      } finally {
        this.pullLoop = null;
        // A failed pull leaves the gap open: try again after the gap wait, not at the next pong.
        if (this.buffer.size > 0 && !this.gapTimer.active && this.link.ready()) this.gapTimer.start(this.options.gapWaitMs, () => this.pullQuietly('gap'));
      }
    })();
    this.pullLoop = loop;
    return loop;
  }

  /** Like pull(), for background triggers: failures are reported, lost connections ignored. */
  pullQuietly(reason: PullReason): void {
    this.pull(reason).catch((err) => this.report(err));
  }

  /** A measured round trip on the connection (ping → pong, sync → reply). */
  noteRtt(ms: number): void {
    if (!(ms >= 0)) return;
    if (this.srtt === null) {
      this.srtt = ms;
      this.rttvar = ms / 2;
    } else {
      this.rttvar = 0.75 * this.rttvar + 0.25 * Math.abs(this.srtt - ms);
      this.srtt = 0.875 * this.srtt + 0.125 * ms;
    }
  }

  /** A generous bound on one round trip (4 × smoothed RTT + 4 × deviation); null before the first sample. */
  get rttBound(): number | null {
    return this.srtt === null ? null : Math.round(4 * this.srtt + 4 * this.rttvar);
  }

  /** Timeout of a `sync` request: adapted to the RTT, doubled per retry, within the configured bounds. */
  pullTimeout(attempt = 0): number {
    const o = this.options;
    const base = this.srtt === null ? (o.pullTimeoutMinMs + o.pullTimeoutMaxMs) / 2 : 2 * this.srtt + 4 * this.rttvar + 1_000;
    return Math.round(Math.min(o.pullTimeoutMaxMs, Math.max(o.pullTimeoutMinMs, base) * 2 ** attempt));
  }

  /**
   * A connection was authenticated. `helloInboxSeq` is what the hello frame presented.
   * Runs the sync the welcome asks for; resolves when it is done.
   */
  connected(welcome: WelcomeResult, helloInboxSeq: number): Promise<void> {
    this.lastAcked = helloInboxSeq;
    this.scheduleAck();
    // A server behind what this client presented lost its inbox: rebuild.
    if (welcome.sync === 'full' || welcome.inboxSeq < helloInboxSeq) return this.queue.run(() => this.runFull(welcome.inboxSeq));
    if (welcome.sync === 'incremental' || welcome.inboxSeq > this.local) return this.pull('connect');
    return Promise.resolve();
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

  private async runPullPages(): Promise<void> {
    const gen = this.link.generation();
    let received = 0;
    for (;;) {
      const page = await this.fetchPage();
      if (this.link.generation() !== gen) return; // the socket was replaced: drop its data
      if (page.full) {
        await this.queue.run(() => this.runFull(page.inboxSeq));
        return;
      }
      received += page.items.length;
      await this.queue.run(async () => {
        await this.apply(page.items, 'pull');
        this.hooks.progress({ phase: 'inbox', received, inboxSeq: this.local });
      });
      if (!page.more || page.items.length === 0) return;
    }
  }

  /** InboxSeqs received live and waiting behind a gap (at most 1000, the lowest). */
  private held(): number[] {
    const seqs = [...this.buffer.keys()].filter((k) => k > this.local).sort((a, b) => a - b);
    return seqs.length > 1000 ? seqs.slice(0, 1000) : seqs;
  }

  /**
   * One page from the local position. A reply that is late after pullTimeout() (lost on a
   * lossy link, or a slow server) gets the request sent again, up to `pullAttempts` requests;
   * the earlier ones stay valid, and the first page to come back is used.
   */
  private fetchPage(): Promise<SyncResult> {
    const gen = this.link.generation();
    return new Promise<SyncResult>((resolve, reject) => {
      let settled = false;
      let sent = 0;
      let outstanding = 0;
      const timer = new Timer(this.clock);
      const finish = (fn: () => void) => {
        if (settled) return;
        settled = true;
        timer.stop();
        fn();
      };
      const send = () => {
        if (settled || sent >= this.options.pullAttempts) return;
        const attempt = sent++;
        outstanding++;
        const started = this.clock.now();
        this.link.sync(this.local, this.options.pageSize, this.options.pullRequestTimeoutMs, this.held()).then(
          (page) => {
            outstanding--;
            if (attempt === 0 && sent === 1) this.noteRtt(this.clock.now() - started); // Karn: only unambiguous samples
            finish(() => resolve(page));
          },
          (err) => {
            outstanding--;
            const e = toClientError(err);
            if (e.code !== 'timeout' || this.link.generation() !== gen || !this.link.ready()) finish(() => reject(e));
            else if (outstanding === 0 && sent >= this.options.pullAttempts) finish(() => reject(e));
            else if (outstanding === 0) send();
          },
        );
        if (sent < this.options.pullAttempts) {
          timer.start(this.pullTimeout(attempt), () => {
            this.stats.pullTimeouts++;
            send();
          });
        }
      };
      send();
    });
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
