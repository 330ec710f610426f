import type { ConversationKind, Message } from '@magpie/protocol';
import type { LocalMessage } from './history.ts';
import type { LocalStore, OutgoingRecord } from './local-store.ts';

export interface DeliveredEvent {
  conv: string;
  seq: number;
  by: string;
}

/** Group delivered counts of own messages rose (live `delivered.counts`, or a refresh). */
export interface DeliveredCountsEvent {
  conv: string;
  /** Only the messages whose count rose, ascending by seq. */
  counts: { seq: number; count: number }[];
}

/** What the tracker reads; it never calls back into the client. */
export interface DeliveredDeps {
  store: LocalStore;
  userId(): string | null;
  /** The send queue's records (sent ones not yet replaced by their stored copy change state too). */
  outgoing(): OutgoingRecord[];
  toLocal(m: Message): LocalMessage;
  fromRecord(r: OutgoingRecord): LocalMessage;
}

/** What the tracker tells: the client forwards these as its events of the same names. */
export interface DeliveredSink {
  delivered(e: DeliveredEvent): void;
  deliveredCounts(e: DeliveredCountsEvent): void;
  message(m: LocalMessage): void;
}

/** Live group counts kept in memory per conversation (older ones live on in the stored messages). */
export const MAX_LIVE_COUNTS = 2000;

/**
 * Delivery state of own messages: the delivered mark per conversation (1:1, `delivered`
 * frames and the entries' `deliveredSeq`) and, in normal groups, how many members' devices
 * stored each message (`delivered.counts`). It owns the conversation kinds it needs to tell
 * a normal group from a super group, and it writes what it learns into the local store
 * before it tells anyone.
 */
export class DeliveredTracker {
  private readonly marks = new Map<string, number>();
  /** Group delivered counts learned live, per conversation and seq (the highest seen). */
  private readonly liveCounts = new Map<string, Map<number, number>>();
  /** Conversation kinds known from the entries and the welcome's super groups. */
  private readonly kinds = new Map<string, ConversationKind>();
  /** Count updates are applied one after another (each reads and writes stored messages). */
  private countsChain: Promise<void> = Promise.resolve();

  constructor(
    private readonly deps: DeliveredDeps,
    private readonly sink: DeliveredSink,
  ) {}

  /** Load the kinds and delivered marks of the stored entries. */
  async init(): Promise<void> {
    const { store } = this.deps;
    for (const e of await store.listEntries()) {
      this.kinds.set(e.conv, e.kind);
      this.marks.set(e.conv, Math.max(e.deliveredSeq, await store.getDeliveredSeq(e.conv)));
    }
  }

  /** Forget everything held in memory (local data cleared). */
  reset(): void {
    this.marks.clear();
    this.liveCounts.clear();
    this.kinds.clear();
  }

  setKind(conv: string, kind: ConversationKind): void {
    this.kinds.set(conv, kind);
  }

  /** The delivered mark of a conversation (0 when none). */
  deliveredSeq(conv: string): number {
    return this.marks.get(conv) ?? 0;
  }

  /** Whether delivered counts are kept for a conversation: normal groups (`g:`, not super). */
  counted(conv: string): boolean {
    return conv.startsWith('g:') && this.kinds.get(conv) !== 'super';
  }

  /** The highest count seen live for a message, if any. */
  liveCount(conv: string, seq: number): number | undefined {
    return this.liveCounts.get(conv)?.get(seq);
  }

  /** A `delivered` frame: told at once, then the mark moves forward. */
  async onFrame(d: DeliveredEvent): Promise<void> {
    this.sink.delivered({ conv: d.conv, seq: d.seq, by: d.by });
    await this.advance(d.conv, d.seq);
  }

  /** Move the delivered mark forward; own messages up to it are told again (now delivered). */
  async advance(conv: string, seq: number): Promise<void> {
    const { store } = this.deps;
    const old = this.marks.get(conv) ?? (await store.getDeliveredSeq(conv));
    if (seq <= old) return;
    this.marks.set(conv, seq);
    await store.setDeliveredSeq(conv, seq);
    const me = this.deps.userId();
    for (const m of await store.getMessages(conv, old + 1, seq)) {
      if (m.sender === me) this.sink.message(this.deps.toLocal(m));
    }
    for (const r of this.deps.outgoing()) {
      const m = r.message;
      if (r.state === 'sent' && m && m.conv === conv && m.seq > old && m.seq <= seq) this.sink.message(this.deps.fromRecord(r));
    }
  }

  /**
   * New delivered counts of own messages in a normal group: remembered (highest per seq)
   * before anything is awaited — so a copy of the message stored meanwhile keeps it — then,
   * in arrival order, written into the stored messages and told as `deliveredCounts` and
   * `message` events.
   */
  applyCounts(conv: string, pairs: [number, number][]): Promise<void> {
    if (pairs.length === 0 || !this.counted(conv)) return Promise.resolve();
    let live = this.liveCounts.get(conv);
    if (!live) this.liveCounts.set(conv, (live = new Map()));
    const sorted = [...pairs].sort((x, y) => x[0] - y[0]);
    const before = new Map<number, number>();
    for (const [seq, count] of sorted) {
      const had = live.get(seq) ?? 0;
      before.set(seq, Math.max(before.get(seq) ?? 0, had));
      if (count > had) live.set(seq, count);
    }
    // Bound memory: the oldest live counts go (they are kept in the stored messages).
    if (live.size > MAX_LIVE_COUNTS) for (const seq of [...live.keys()].sort((x, y) => x - y).slice(0, live.size - MAX_LIVE_COUNTS)) live.delete(seq);
    const run = this.countsChain.then(() => this.storeCounts(conv, sorted, before, live));
    this.countsChain = run.catch(() => undefined);
    return run;
  }

  private async storeCounts(conv: string, sorted: [number, number][], before: Map<number, number>, live: Map<number, number>): Promise<void> {
    const { store } = this.deps;
    const me = this.deps.userId();
    const stored = (await store.getMessages(conv, sorted[0]![0], sorted[sorted.length - 1]![0])).filter((m) => m.sender === me);
    const storedBySeq = new Map(stored.map((m) => [m.seq, m]));
    const raised: { seq: number; count: number }[] = [];
    const latest = new Map(sorted.map(([seq, count]) => [seq, Math.max(count, live.get(seq) ?? 0)]));
    for (const [seq, count] of latest) {
      if (count > Math.max(before.get(seq) ?? 0, storedBySeq.get(seq)?.deliveredCount ?? 0)) raised.push({ seq, count });
    }
    const changed = stored.filter((m) => latest.has(m.seq) && (m.deliveredCount ?? 0) < latest.get(m.seq)!).map((m) => ({ ...m, deliveredCount: latest.get(m.seq)! }));
    if (changed.length > 0) await store.putMessages(conv, changed, []);
    if (raised.length === 0) return;
    this.sink.deliveredCounts({ conv, counts: raised });
    const up = new Set(raised.map((r) => r.seq));
    for (const m of changed) if (up.has(m.seq)) this.sink.message(this.deps.toLocal(m));
    for (const r of this.deps.outgoing()) {
      const m = r.message;
      if (r.state === 'sent' && m && m.conv === conv && up.has(m.seq) && !storedBySeq.has(m.seq)) this.sink.message(this.deps.fromRecord(r));
    }
  }
}
