import type { ConvEntry, InboxItem, Message } from '@magpie/protocol';
import type { LocalStore, OutgoingRecord } from './local-store.ts';
import { covers, maxCovered, rangeContaining, type SeqRange } from './seq-ranges.ts';
import type { HistoryResult } from './wire.ts';

export type MessageState = 'sending' | 'sent' | 'delivered' | 'failed' | 'received';

/** A message as the app shows it: stored messages and this device's outgoing ones alike. */
export interface LocalMessage {
  clientMsgId: string;
  /** Server id; null until the server accepted it. */
  id: string | null;
  /** Null only for a message to a user whose direct conversation is not known yet. */
  conv: string | null;
  /** Target user of an outgoing direct message. */
  to: string | null;
  /** Conversation seq; null until the server accepted it. */
  seq: number | null;
  sender: string;
  kind: string;
  body: unknown;
  time: number;
  /**
   * Own messages: sending → sent → delivered, or failed. Others' messages: received.
   * In a normal group an own message is delivered once `deliveredCount` ≥ 1.
   */
  state: MessageState;
  /**
   * Own (non-system) messages in a normal group, once sent: how many other members have a
   * device that stored it (0 until one has). Null for direct chats, others' messages, super
   * groups (they keep no count) and messages not yet accepted by the server.
   */
  deliveredCount: number | null;
  own: boolean;
  error: { code: string; message: string } | null;
}

/**
 * A contiguous run of a conversation's history: the SDK never returns messages across a
 * hole. `hasGapBefore` / `hasGapAfter`: older / newer messages exist that are not held
 * locally right next to this run (load them with loadHistory). `moreBefore` /
 * `moreAfter`: older / newer messages exist at all (locally or on the server).
 */
export interface MessageWindow {
  conv: string;
  messages: LocalMessage[];
  hasGapBefore: boolean;
  hasGapAfter: boolean;
  moreBefore: boolean;
  moreAfter: boolean;
}

export interface HistoryQuery {
  /** Messages below this seq (newest end of the window just below it). Default: the newest. */
  before?: number;
  /** Messages above this seq, oldest first (use oldestUnreadSeq - 1 to jump to the first unread). */
  after?: number;
  limit?: number;
}

export interface HistoryDeps {
  store: LocalStore;
  userId(): string | null;
  deliveredSeq(conv: string): number;
  /** Whether the conversation keeps delivered counts (a normal group). */
  counted(conv: string): boolean;
  /** The highest delivered count learned live for an own message, if any. */
  liveCount(conv: string, seq: number): number | undefined;
  /** Outgoing records not yet replaced by their stored copy. */
  outgoing(): OutgoingRecord[];
  /** Fetch a page from the server. */
  fetch(conv: string, q: HistoryQuery & { limit: number }): Promise<HistoryResult>;
}

export const DEFAULT_WINDOW = 50;
export const DEFAULT_PAGE = 30;

/** Local history views with hole tracking, and filling holes from the server. */
export class History {
  constructor(private readonly deps: HistoryDeps) {}

  /** Store inbox items' messages: each covers exactly its own seq. */
  storeInbox(items: InboxItem[]): Promise<void> {
    return this.storeMessages(items.map((i) => i.message));
  }

  /** Store live messages: each covers exactly its own seq (gaps around it stay holes). */
  async storeMessages(messages: Message[]): Promise<void> {
    const byConv = new Map<string, Message[]>();
    for (const message of messages) {
      const list = byConv.get(message.conv) ?? [];
      list.push(message);
      byConv.set(message.conv, list);
    }
    for (const [conv, list] of byConv) {
      await this.deps.store.putMessages(
        conv,
        await this.keepCounts(conv, list),
        list.map((m) => ({ from: m.seq, to: m.seq })),
      );
    }
  }

  /**
   * Own group messages about to be stored keep the highest delivered count known (the stored
   * copy's, the incoming one's, the live one's): a copy without a count (a live `msg`, the
   * send reply) never erases one, and a page read just before a live update never lowers it.
   */
  async keepCounts(conv: string, list: Message[]): Promise<Message[]> {
    const me = this.deps.userId();
    const own = (m: Message) => m.sender === me && m.kind !== 'system';
    if (!this.deps.counted(conv) || !list.some(own)) return list;
    const seqs = list.filter(own).map((m) => m.seq);
    const stored = new Map((await this.deps.store.getMessages(conv, Math.min(...seqs), Math.max(...seqs))).map((m) => [m.seq, m.deliveredCount]));
    return list.map((m) => {
      if (!own(m)) return m;
      const best = Math.max(m.deliveredCount ?? -1, stored.get(m.seq) ?? -1, this.deps.liveCount(conv, m.seq) ?? -1);
      return best >= 0 && best !== m.deliveredCount ? { ...m, deliveredCount: best } : m;
    });
  }

  /** Store a page read from the server (it proves its seq range complete). */
  async storePage(conv: string, page: HistoryResult, query: { before?: number; after?: number }): Promise<void> {
    await this.deps.store.putMessages(conv, await this.keepCounts(conv, page.messages), [coverageOf(page, query)].filter((r): r is SeqRange => r !== null));
  }

  /** A view of what is stored locally (never across a hole). */
  async window(conv: string, q: HistoryQuery = {}): Promise<MessageWindow> {
    const { store } = this.deps;
    const limit = Math.max(1, q.limit ?? DEFAULT_WINDOW);
    const [entry, ranges, clearedLocal] = await Promise.all([store.getEntry(conv), store.getRanges(conv), store.getClearedSeq(conv)]);
    const floor = Math.max(clearedLocal, entry?.clearedSeq ?? 0) + 1; // first visible seq
    const known = Math.max(entry?.lastSeq ?? 0, maxCovered(ranges));
    let messages: Message[] = [];
    let lo: number;
    let hi: number;
    if (q.after !== undefined) {
      const start = Math.max(q.after + 1, floor);
      const run = rangeContaining(ranges, start);
      if (!run) {
        lo = start;
        hi = start - 1;
      } else {
        const all = await store.getMessages(conv, start, run.to);
        messages = all.slice(0, limit);
        lo = start;
        hi = all.length > limit ? messages[messages.length - 1]!.seq : run.to;
      }
    } else {
      const top = q.before !== undefined ? Math.min(q.before - 1, known) : known;
      const run = top >= floor ? rangeContaining(ranges, top) : undefined;
      if (!run) {
        lo = top + 1;
        hi = top;
      } else {
        const all = await store.getMessages(conv, Math.max(run.from, floor), top);
        messages = all.slice(-limit);
        lo = all.length > limit ? messages[0]!.seq : Math.max(run.from, floor);
        hi = top;
      }
    }
    const moreBefore = lo > floor;
    const moreAfter = hi < known;
    const window: MessageWindow = {
      conv,
      messages: messages.map((m) => this.toLocal(m)),
      hasGapBefore: moreBefore && !covers(ranges, lo - 1, lo - 1),
      hasGapAfter: moreAfter && !covers(ranges, hi + 1, hi + 1),
      moreBefore,
      moreAfter,
    };
    if (!moreAfter && q.after === undefined && q.before === undefined) window.messages.push(...this.pending(conv, entry, window.messages));
    else if (!moreAfter && q.after !== undefined) window.messages.push(...this.pending(conv, entry, window.messages));
    return window;
  }

  /**
   * Like window(), but fills a hole in the requested direction from the server first.
   * `fromServer` tells whether the server was asked.
   */
  async load(conv: string, q: HistoryQuery = {}): Promise<MessageWindow & { fromServer: boolean }> {
    const limit = Math.max(1, q.limit ?? DEFAULT_PAGE);
    const local = await this.window(conv, { ...q, limit });
    const held = local.messages.filter((m) => m.seq !== null).length;
    const enough = held >= limit || (q.after !== undefined ? !local.hasGapAfter : !local.hasGapBefore);
    if (enough) return { ...local, fromServer: false };

    const query: HistoryQuery & { limit: number } = { limit };
    if (q.after !== undefined) query.after = q.after;
    else if (q.before !== undefined) query.before = q.before;
    const page = await this.deps.fetch(conv, query);
    await this.storePage(conv, page, query);
    const view = await this.window(conv, { ...q, limit });
    return { ...view, fromServer: true };
  }

  /**
   * Ask the server whatever is held locally and store the page: for a conversation known to
   * have moved past what the local entry says (a super group's `lastSeq` in the welcome; its
   * list entry carries no per-message version, so it may be behind).
   */
  async pull(conv: string, q: { after?: number; limit: number }): Promise<LocalMessage[]> {
    const query: HistoryQuery & { limit: number } = q.after !== undefined ? { after: q.after, limit: q.limit } : { limit: q.limit };
    const page = await this.deps.fetch(conv, query);
    await this.storePage(conv, page, query);
    return page.messages.map((m) => this.toLocal(m));
  }

  toLocal(m: Message): LocalMessage {
    const own = m.sender === this.deps.userId();
    const deliveredCount = own ? this.countOf(m) : null;
    return {
      clientMsgId: m.clientMsgId,
      id: m.id,
      conv: m.conv,
      to: null,
      seq: m.seq,
      sender: m.sender,
      kind: m.kind,
      body: m.body,
      time: m.time,
      state: own ? (this.isDelivered(m, deliveredCount) ? 'delivered' : 'sent') : 'received',
      deliveredCount,
      own,
      error: null,
    };
  }

  /** An own message's delivered count: null where none is kept. */
  private countOf(m: Message): number | null {
    if (m.kind === 'system' || !this.deps.counted(m.conv)) return null;
    return Math.max(m.deliveredCount ?? 0, this.deps.liveCount(m.conv, m.seq) ?? 0);
  }

  /**
   * Delivered: a count ≥ 1, or (as in direct chats) the seq is at or below the sender's
   * delivered mark, which the first recipient's ACK moves — so a message whose count was
   * never learned (a lost frame, local data from before counts) still shows delivered.
   */
  private isDelivered(m: Message, count: number | null): boolean {
    return (count ?? 0) >= 1 || m.seq <= this.deps.deliveredSeq(m.conv);
  }

  fromRecord(r: OutgoingRecord): LocalMessage {
    const m = r.message;
    const conv = m?.conv ?? r.conv;
    let state: MessageState = r.state;
    const deliveredCount = m && r.state === 'sent' ? this.countOf(m) : null;
    if (r.state === 'sent' && m && this.isDelivered(m, deliveredCount)) state = 'delivered';
    return {
      clientMsgId: r.clientMsgId,
      id: m?.id ?? null,
      conv,
      to: r.to,
      seq: m?.seq ?? null,
      sender: m?.sender ?? this.deps.userId() ?? '',
      kind: r.kind,
      body: r.body,
      time: m?.time ?? r.createdAt,
      state,
      deliveredCount,
      own: true,
      error: r.error,
    };
  }

  /** Outgoing messages that belong after the newest stored message of conv. */
  private pending(conv: string, entry: ConvEntry | undefined, shown: LocalMessage[]): LocalMessage[] {
    const ids = new Set(shown.map((m) => m.clientMsgId));
    return this.deps
      .outgoing()
      .filter((r) => !ids.has(r.clientMsgId))
      .filter((r) => (r.message?.conv ?? r.conv) === conv || (r.conv === null && r.to !== null && entry?.kind === 'direct' && entry.peer === r.to))
      .sort((a, b) => a.createdAt - b.createdAt)
      .map((r) => this.fromRecord(r));
  }
}

/** The seq range a history page proves complete. */
export function coverageOf(page: HistoryResult, q: { before?: number; after?: number }): SeqRange | null {
  const seqs = page.messages.map((m) => m.seq);
  if (q.after !== undefined) {
    const from = q.after + 1;
    const to = page.more ? Math.max(q.after, ...seqs) : Math.max(page.lastSeq, ...seqs);
    return to >= from ? { from, to } : null;
  }
  const newest = Math.max(page.lastSeq, ...seqs);
  const to = q.before !== undefined ? Math.min(q.before - 1, newest) : newest;
  const from = page.more ? Math.min(to + 1, ...seqs) : 1;
  return to >= from ? { from, to } : null;
}
