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
  /** Own messages: sending → sent → delivered, or failed. Others' messages: received. */
  state: MessageState;
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
        list,
        list.map((m) => ({ from: m.seq, to: m.seq })),
      );
    }
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
    await this.deps.store.putMessages(conv, page.messages, [coverageOf(page, query)].filter((r): r is SeqRange => r !== null));
    const view = await this.window(conv, { ...q, limit });
    return { ...view, fromServer: true };
  }

  toLocal(m: Message): LocalMessage {
    const own = m.sender === this.deps.userId();
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
      state: own ? (m.seq <= this.deps.deliveredSeq(m.conv) ? 'delivered' : 'sent') : 'received',
      own,
      error: null,
    };
  }

  fromRecord(r: OutgoingRecord): LocalMessage {
    const m = r.message;
    const conv = m?.conv ?? r.conv;
    let state: MessageState = r.state;
    if (r.state === 'sent' && m && m.seq <= this.deps.deliveredSeq(m.conv)) state = 'delivered';
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
