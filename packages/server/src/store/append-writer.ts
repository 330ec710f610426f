import type { ConversationKind, Message } from '@magpie/protocol';
import type { Queryable } from '../db/engine.ts';
import type { AppendOutcome, AppendRequest, GroupRecord, InboxPointer, MemberRecord } from './store.ts';
import { toMessage } from './rows.ts';

/** A conversation of an append batch, locked for the transaction, as it moves in memory. */
export interface ConvState {
  id: string;
  kind: ConversationKind;
  lastSeq: number;
  startSeq: number;
  group: GroupRecord | null;
  /** All active members: direct chats and normal groups only. */
  members: Map<string, MemberRecord> | null;
  /** Super groups: member rows looked up one by one (null: not an active member). */
  cache: Map<string, MemberRecord | null>;
  /** Inserted by a group creation in this transaction that has not (yet) succeeded. */
  pending: boolean;
  /** The member epoch (seq of the last membership change), as it moves in this transaction. */
  epoch: number;
  startEpoch: number;
}

/** Offsets within this transaction: how many inbox pointers / entry versions a user gains. */
export interface UserState {
  inboxSeq: number;
  version: number;
}

interface EntryAgg {
  user: string;
  conv: string;
  /** true: the row is (re)initialised (a join); read_seq = ownSeq, counters absolute. */
  reset: boolean;
  ownSeq: number;
  unreadDelta: number;
  mentionDelta: number;
  lastSeq: number;
  version: number;
}

/** The inbox ring is trimmed lazily, whenever a user's inboxSeq crosses a multiple of this. */
const TRIM_EVERY = 64;

const SQL = {
  mention: 'INSERT INTO message_mentions (user_id, conv_id, seq) VALUES (?, ?, ?) ON CONFLICT DO NOTHING',
  conv: 'UPDATE conversations SET last_seq = ?, member_epoch = ? WHERE id = ?',
  bumpUser: 'UPDATE users SET inbox_seq = inbox_seq + ?, conv_version = conv_version + ? WHERE id = ? RETURNING inbox_seq, conv_version',
  message: `INSERT INTO messages (conv_id, seq, id, sender_id, client_msg_id, kind, body, time, sender_inbox_seq, mention_all)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  pointer: 'INSERT INTO inbox (user_id, inbox_seq, conv_id, seq) VALUES (?, ?, ?, ?)',
  trim: 'DELETE FROM inbox WHERE user_id = ? AND inbox_seq <= ?',
  /** Absolute state: read up to the join (or the own message), counters since then. */
  reset: `INSERT INTO entries (user_id, conv_id, read_seq, unread, mentions, last_seq, version) VALUES (?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (user_id, conv_id) DO UPDATE SET
      read_seq = excluded.read_seq, unread = excluded.unread, mentions = excluded.mentions,
      last_seq = excluded.last_seq, deleted = 0, version = excluded.version`,
  /** read_seq carries the own seq (0: none in this batch); unread/mentions the counts since then. */
  delta: `INSERT INTO entries (user_id, conv_id, read_seq, unread, mentions, last_seq, version) VALUES (?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (user_id, conv_id) DO UPDATE SET
      read_seq = CASE WHEN excluded.read_seq > entries.read_seq THEN excluded.read_seq ELSE entries.read_seq END,
      unread = CASE WHEN excluded.read_seq > 0 THEN excluded.unread ELSE entries.unread + excluded.unread END,
      mentions = CASE WHEN excluded.read_seq > 0 THEN excluded.mentions ELSE entries.mentions + excluded.mentions END,
      last_seq = CASE WHEN excluded.last_seq > entries.last_seq THEN excluded.last_seq ELSE entries.last_seq END,
      deleted = 0,
      version = excluded.version`,
};

/**
 * The writes of one append transaction, collected in memory (seq, and inboxSeq/version
 * offsets, are assigned while the conversation rows are locked) and written by `flush`.
 */
export class AppendWriter {
  private readonly msgs: unknown[][] = [];
  /** [user, offset inboxSeq, conv, seq] */
  private readonly inbox: [string, number, string, number][] = [];
  private readonly mentions: [string, string, number][] = [];
  private readonly entries = new Map<string, EntryAgg>();
  /** Every pointer handed out, with an offset inboxSeq until flush makes it absolute. */
  private readonly pointers: InboxPointer[] = [];
  /** Messages whose sender_inbox_seq (index 8) is an offset of the sender's. */
  private readonly senderOffsets: { row: unknown[]; user: string }[] = [];

  constructor(private readonly users: Map<string, UserState>) {}

  post(c: ConvState, r: AppendRequest, mentioned: Set<string>): AppendOutcome {
    const seq = ++c.lastSeq;
    const { message, pointers } = this.fanOut(c, r, seq, mentioned);
    return { ok: true, duplicate: false, message, pointers };
  }

  private version(user: string): number | null {
    const u = this.users.get(user);
    return u ? ++u.version : null;
  }

  private entry(user: string, conv: string, version: number): EntryAgg {
    const key = `${user}\u0000${conv}`;
    let e = this.entries.get(key);
    if (!e) this.entries.set(key, (e = { user, conv, reset: false, ownSeq: 0, unreadDelta: 0, mentionDelta: 0, lastSeq: 0, version }));
    e.version = version;
    return e;
  }

  /** A member joins: the entry restarts just before the join notice (earlier changes in this batch are superseded). */
  resetEntry(user: string, conv: string, base: number): void {
    const version = this.version(user);
    if (version === null) return;
    this.entries.set(`${user}\u0000${conv}`, { user, conv, reset: true, ownSeq: base, unreadDelta: 0, mentionDelta: 0, lastSeq: base, version });
  }

  /** A member left a super group: the entry stops at the notice. */
  freezeEntry(user: string, conv: string, seq: number): void {
    const version = this.version(user);
    if (version === null) return;
    this.entry(user, conv, version).lastSeq = seq;
  }

  /**
   * Store the message at `seq`. Direct chats and normal groups: a pointer and an entry
   * change per active member. Super groups: only the sender's own entry reads up to it.
   */
  fanOut(c: ConvState, r: AppendRequest, seq: number, mentioned: Set<string>): { message: Message; pointers: InboxPointer[] } {
    const all = r.mentions === 'all';
    const pointers: InboxPointer[] = [];
    let senderInbox = 0;
    if (c.kind === 'super') {
      const version = this.version(r.sender);
      if (version !== null) {
        const e = this.entry(r.sender, c.id, version);
        e.lastSeq = seq;
        e.ownSeq = seq;
        e.unreadDelta = 0;
        e.mentionDelta = 0;
      }
    } else {
      for (const m of c.members?.keys() ?? []) {
        const u = this.users.get(m);
        if (!u) continue; // a member without an account row gets no pointer
        const inboxSeq = ++u.inboxSeq;
        const version = ++u.version;
        this.inbox.push([m, inboxSeq, c.id, seq]);
        const e = this.entry(m, c.id, version);
        e.lastSeq = seq;
        if (m === r.sender) {
          senderInbox = inboxSeq;
          e.ownSeq = seq;
          e.unreadDelta = 0;
          e.mentionDelta = 0;
        } else {
          e.unreadDelta++;
          if (all || mentioned.has(m)) e.mentionDelta++;
        }
        const p = { userId: m, inboxSeq };
        pointers.push(p);
        this.pointers.push(p);
      }
    }
    for (const u of mentioned) this.mentions.push([u, c.id, seq]);
    const bodyJson = JSON.stringify(r.body);
    const row: unknown[] = [c.id, seq, r.id, r.sender, r.clientMsgId, r.kind, bodyJson, r.time, senderInbox, all ? 1 : 0];
    this.msgs.push(row);
    if (senderInbox > 0) this.senderOffsets.push({ row, user: r.sender });
    return { message: toMessage(r, seq, JSON.parse(bodyJson) as unknown), pointers };
  }

  /**
   * Write the batch in two steps. First the mentions, the conversations' seq and epoch, and
   * the bump of every moved user row (in id order, like every other locker of users rows),
   * which returns each user's new inboxSeq and list version: the offsets become absolute.
   * Then the messages, pointers, entries and ring trims. Each step's statements are issued
   * together: on PostgreSQL they are pipelined (one round trip per step, the second ending in
   * COMMIT AND CHAIN so the user rows are not held across another round trip); on SQLite they
   * run at once, each a cached prepared statement.
   */
  async flush(tx: Queryable, ring: number, convs: Map<string, ConvState>): Promise<void> {
    const first: Promise<unknown>[] = [];
    for (const m of this.mentions) first.push(tx.run(SQL.mention, m));
    for (const c of convs.values()) if (c.lastSeq > c.startSeq || c.epoch !== c.startEpoch) first.push(tx.run(SQL.conv, [c.lastSeq, c.epoch, c.id]));
    const moved = [...this.users.entries()].filter(([, u]) => u.inboxSeq > 0 || u.version > 0).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0));
    const tops = moved.map(([id, u]) => tx.get<{ inbox_seq: number | string; conv_version: number | string }>(SQL.bumpUser, [u.inboxSeq, u.version, id]));
    const [, got] = await Promise.all([Promise.all(first), Promise.all(tops)]);
    const bases = new Map<string, { ib: number; vb: number }>();
    const second: Promise<unknown>[] = [];
    moved.forEach(([id, u], i) => {
      const t = got[i];
      if (!t) return;
      const top = Number(t.inbox_seq);
      const ib = top - u.inboxSeq;
      bases.set(id, { ib, vb: Number(t.conv_version) - u.version });
      if (top > ring && Math.floor(top / TRIM_EVERY) > Math.floor(ib / TRIM_EVERY)) second.push(tx.run(SQL.trim, [id, top - ring]));
    });
    for (const s of this.senderOffsets) s.row[8] = (s.row[8] as number) + (bases.get(s.user)?.ib ?? 0);
    for (const row of this.msgs) second.push(tx.run(SQL.message, row));
    for (const [user, off, conv, seq] of this.inbox) {
      const b = bases.get(user);
      if (b) second.push(tx.run(SQL.pointer, [user, b.ib + off, conv, seq]));
    }
    for (const e of this.entries.values()) {
      const b = bases.get(e.user);
      if (b) second.push(tx.run(e.reset ? SQL.reset : SQL.delta, [e.user, e.conv, e.ownSeq, e.unreadDelta, e.mentionDelta, e.lastSeq, b.vb + e.version]));
    }
    if (tx.dialect === 'postgres') second.push(tx.run('COMMIT AND CHAIN'));
    await Promise.all(second);
    for (const p of this.pointers) p.inboxSeq += bases.get(p.userId)?.ib ?? 0;
  }
}
