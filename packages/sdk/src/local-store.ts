import type { ConvEntry, Message } from '@magpie/protocol';
import { addRanges, removeUpTo, type SeqRange } from './seq-ranges.ts';

/** Positions and identity the SDK persists. */
export interface StoreMeta {
  /** The user the stored data belongs to; another user's welcome clears the store. */
  userId: string | null;
  /** This installation's device id (kept across logouts). */
  deviceId: string | null;
  /** Every inbox item up to here is stored (the value sent in `hello` and acknowledged). */
  inboxSeq: number;
  /** Conversation-list version the stored entries are complete up to. */
  convVersion: number;
}

export type OutgoingState = 'sending' | 'sent' | 'failed';

/** A message of this device on its way to the server (kept until the stored copy replaces it). */
export interface OutgoingRecord {
  clientMsgId: string;
  /** Target: a conversation, or a user for a direct chat whose conversation id is not known yet. */
  conv: string | null;
  to: string | null;
  kind: string;
  body: unknown;
  createdAt: number;
  /** When it was (re)queued; the age limit counts from here. */
  queuedAt: number;
  /** Frames written to a socket for it. */
  attempts: number;
  state: OutgoingState;
  error: { code: string; message: string } | null;
  /** Set once the server accepted it. */
  message: Message | null;
  inboxSeq: number | null;
  /** Group messages: the mentioned user ids, or 'all'. */
  mentions?: string[] | 'all';
}

/**
 * The SDK's persistence layer. Implementations: MemoryStore (here); IndexedDB in the web
 * package. Every method must be safe to call again with the same data (idempotent).
 *
 * Message history is kept per conversation together with its coverage: the seq ranges
 * the store holds completely. Whatever lies outside the ranges is a hole and must be
 * loaded from the server before it is shown as complete.
 */
export interface LocalStore {
  loadMeta(): Promise<StoreMeta>;
  saveMeta(patch: Partial<StoreMeta>): Promise<void>;
  /** Forget the user's data (entries, messages, outgoing, positions); the deviceId stays. */
  clear(): Promise<void>;

  /** All entries, deleted ones (tombstones) included. */
  listEntries(): Promise<ConvEntry[]>;
  getEntry(conv: string): Promise<ConvEntry | undefined>;
  putEntries(entries: ConvEntry[]): Promise<void>;
  /** Replace the whole list (full sync). */
  replaceEntries(entries: ConvEntry[]): Promise<void>;

  /** Store messages and mark `covered` as held completely. Messages at or below the conversation's cleared seq are ignored. */
  putMessages(conv: string, messages: Message[], covered: SeqRange[]): Promise<void>;
  /** Stored messages with from ≤ seq ≤ to, oldest first. */
  getMessages(conv: string, from: number, to: number): Promise<Message[]>;
  getRanges(conv: string): Promise<SeqRange[]>;
  /** Drop messages and coverage at or below seq (the history was cleared/deleted up to there). */
  clearHistoryUpTo(conv: string, seq: number): Promise<void>;
  /** The cleared seq of a conversation (0 when nothing was cleared). */
  getClearedSeq(conv: string): Promise<number>;

  /** Highest seq of this user's messages in conv that a recipient's device stored. */
  getDeliveredSeq(conv: string): Promise<number>;
  setDeliveredSeq(conv: string, seq: number): Promise<void>;

  listOutgoing(): Promise<OutgoingRecord[]>;
  putOutgoing(record: OutgoingRecord): Promise<void>;
  deleteOutgoing(clientMsgId: string): Promise<void>;
}

interface ConvHistory {
  messages: Map<number, Message>;
  /** Sorted seqs of `messages`. */
  seqs: number[];
  ranges: SeqRange[];
  cleared: number;
}

const clone: <T>(x: T) => T = (x) => structuredClone(x);

/** In-memory LocalStore (tests, Node bots, and browsers without persistence). */
export class MemoryStore implements LocalStore {
  private meta: StoreMeta = { userId: null, deviceId: null, inboxSeq: 0, convVersion: 0 };
  private entries = new Map<string, ConvEntry>();
  private histories = new Map<string, ConvHistory>();
  private delivered = new Map<string, number>();
  private outgoing = new Map<string, OutgoingRecord>();

  async loadMeta(): Promise<StoreMeta> {
    return { ...this.meta };
  }

  async saveMeta(patch: Partial<StoreMeta>): Promise<void> {
    this.meta = { ...this.meta, ...patch };
  }

  async clear(): Promise<void> {
    this.meta = { userId: null, deviceId: this.meta.deviceId, inboxSeq: 0, convVersion: 0 };
    this.entries.clear();
    this.histories.clear();
    this.delivered.clear();
    this.outgoing.clear();
  }

  async listEntries(): Promise<ConvEntry[]> {
    return [...this.entries.values()].map(clone);
  }

  async getEntry(conv: string): Promise<ConvEntry | undefined> {
    const e = this.entries.get(conv);
    return e ? clone(e) : undefined;
  }

  async putEntries(entries: ConvEntry[]): Promise<void> {
    for (const e of entries) this.entries.set(e.conv, clone(e));
  }

  async replaceEntries(entries: ConvEntry[]): Promise<void> {
    this.entries.clear();
    await this.putEntries(entries);
  }

  private history(conv: string): ConvHistory {
    let h = this.histories.get(conv);
    if (!h) {
      h = { messages: new Map(), seqs: [], ranges: [], cleared: 0 };
      this.histories.set(conv, h);
    }
    return h;
  }

  async putMessages(conv: string, messages: Message[], covered: SeqRange[]): Promise<void> {
    const h = this.history(conv);
    for (const m of messages) {
      if (m.conv !== conv || m.seq <= h.cleared) continue;
      if (!h.messages.has(m.seq)) insertSorted(h.seqs, m.seq);
      h.messages.set(m.seq, clone(m));
    }
    h.ranges = removeUpTo(addRanges(h.ranges, covered), h.cleared);
  }

  async getMessages(conv: string, from: number, to: number): Promise<Message[]> {
    const h = this.histories.get(conv);
    if (!h || to < from) return [];
    const out: Message[] = [];
    for (let i = lowerBound(h.seqs, from); i < h.seqs.length; i++) {
      const seq = h.seqs[i]!;
      if (seq > to) break;
      out.push(clone(h.messages.get(seq)!));
    }
    return out;
  }

  async getRanges(conv: string): Promise<SeqRange[]> {
    return (this.histories.get(conv)?.ranges ?? []).map((r) => ({ ...r }));
  }

  async clearHistoryUpTo(conv: string, seq: number): Promise<void> {
    const h = this.history(conv);
    if (seq <= h.cleared) return;
    h.cleared = seq;
    const cut = lowerBound(h.seqs, seq + 1);
    for (const s of h.seqs.slice(0, cut)) h.messages.delete(s);
    h.seqs = h.seqs.slice(cut);
    h.ranges = removeUpTo(h.ranges, seq);
  }

  async getClearedSeq(conv: string): Promise<number> {
    return this.histories.get(conv)?.cleared ?? 0;
  }

  async getDeliveredSeq(conv: string): Promise<number> {
    return this.delivered.get(conv) ?? 0;
  }

  async setDeliveredSeq(conv: string, seq: number): Promise<void> {
    this.delivered.set(conv, seq);
  }

  async listOutgoing(): Promise<OutgoingRecord[]> {
    return [...this.outgoing.values()].map(clone);
  }

  async putOutgoing(record: OutgoingRecord): Promise<void> {
    this.outgoing.set(record.clientMsgId, clone(record));
  }

  async deleteOutgoing(clientMsgId: string): Promise<void> {
    this.outgoing.delete(clientMsgId);
  }
}

function lowerBound(a: number[], x: number): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid]! < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function insertSorted(a: number[], x: number): void {
  const i = lowerBound(a, x);
  if (a[i] !== x) a.splice(i, 0, x);
}
