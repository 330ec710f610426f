import type { ConversationKind, Message } from '@magpie/protocol';
import { LIFECYCLE_EVENT_KINDS } from '@magpie/protocol/core';
import type { Queryable } from '../db/engine.ts';
import { PIPELINE_COMMIT } from '../db/dialect.ts';
import type { NoopStatement } from '../db/prepared.ts';
import type { AppendOutcome, AppendRequest, GroupRecord, InboxPointer, MemberRecord } from './store.ts';
import { toMessage } from './rows.ts';
import type { PointerRow } from './recent-pointers.ts';

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
  /**
   * PostgreSQL: the seq of the conversation's last group effect (`conversations.effect_seq`,
   * migration 0020), as it moves in this transaction; the fast path's bump checks it.
   */
  effectSeq: number;
  startEffectSeq: number;
}

/** Offsets within this transaction: how many inbox pointers / entry versions a user gains. */
export interface UserState {
  inboxSeq: number;
  version: number;
  /** The user's inboxSeq as read before the bump (for the ring trim only). */
  seen: number;
  /**
   * SQLite only: the user's conv_version as read in this transaction. SQLite has one writer
   * and nothing else in the append writes users rows, so `seen` and this are exact: the
   * flush writes absolute values (no users lookup per pointer and entry).
   */
  seenVersion?: number;
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
  /** A message (not only events) arrived: a deleted entry shows again. */
  revive: boolean;
}

/** The inbox ring is trimmed lazily, whenever a user's inboxSeq crosses a multiple of this. */
const TRIM_EVERY = 64;

/** SQLite flush statements run one row at a time (see SQLITE_ROWS for the multi-row ones). */
const SQL = {
  bumpUser: 'UPDATE users SET inbox_seq = inbox_seq + ?, conv_version = conv_version + ? WHERE id = ? RETURNING inbox_seq, conv_version',
  trimTo: 'DELETE FROM inbox WHERE user_id = ? AND inbox_seq <= ?',
};

/** A multi-row statement: `head` + ` (…), (…)` + `tail`, `width` values per row (an INSERT's VALUES, or an UPDATE … FROM (VALUES …)). */
export interface RowsSql {
  head: string;
  width: number;
  tail: string;
}

const ENTRY_HEAD = 'INSERT OR FAIL INTO entries (user_id, conv_id, read_seq, unread, mentions, last_seq, version) VALUES';

/**
 * SQLite flush statements that take many rows at once, every value absolute (the user rows
 * were bumped first). Entries: a reset (a join: read up to the join or the own message,
 * counters since then), a delta (read_seq carries the own seq, 0: none in this batch;
 * unread/mentions the counts since then), and an event-only delta (a deleted entry stays deleted).
 */
const SQLITE_ROWS = {
  mentions: { head: 'INSERT OR FAIL INTO message_mentions (user_id, conv_id, seq) VALUES', width: 3, tail: ' ON CONFLICT DO NOTHING' },
  /** The user rows read in this transaction (UserState.seenVersion), set to absolute values: [id, inbox_seq, conv_version]. */
  users: { head: 'UPDATE OR FAIL users SET inbox_seq = x.column2, conv_version = x.column3 FROM (VALUES', width: 3, tail: ') AS x WHERE users.id = x.column1' },
  /** The moved conversation rows: [id, last_seq, member_epoch]. */
  convs: { head: 'UPDATE OR FAIL conversations SET last_seq = x.column2, member_epoch = x.column3 FROM (VALUES', width: 3, tail: ') AS x WHERE conversations.id = x.column1' },
  messages: { head: 'INSERT OR FAIL INTO messages (conv_id, seq, id, sender_id, client_msg_id, kind, body, time, sender_inbox_seq, mention_all) VALUES', width: 10, tail: '' },
  pointers: { head: 'INSERT OR FAIL INTO inbox (user_id, inbox_seq, conv_id, seq, mine) VALUES', width: 5, tail: '' },
  reset: {
    head: ENTRY_HEAD,
    width: 7,
    tail: ` ON CONFLICT (user_id, conv_id) DO UPDATE SET
      read_seq = excluded.read_seq, unread = excluded.unread, mentions = excluded.mentions,
      last_seq = excluded.last_seq, deleted = 0, version = excluded.version`,
  },
  delta: {
    head: ENTRY_HEAD,
    width: 7,
    tail: ` ON CONFLICT (user_id, conv_id) DO UPDATE SET
      read_seq = CASE WHEN excluded.read_seq > entries.read_seq THEN excluded.read_seq ELSE entries.read_seq END,
      unread = CASE WHEN excluded.read_seq > 0 THEN excluded.unread ELSE entries.unread + excluded.unread END,
      mentions = CASE WHEN excluded.read_seq > 0 THEN excluded.mentions ELSE entries.mentions + excluded.mentions END,
      last_seq = CASE WHEN excluded.last_seq > entries.last_seq THEN excluded.last_seq ELSE entries.last_seq END,
      deleted = 0,
      version = excluded.version`,
  },
  eventDelta: {
    head: ENTRY_HEAD,
    width: 7,
    tail: ` ON CONFLICT (user_id, conv_id) DO UPDATE SET
      last_seq = CASE WHEN excluded.last_seq > entries.last_seq THEN excluded.last_seq ELSE entries.last_seq END,
      version = excluded.version`,
  },
} satisfies Record<string, RowsSql>;

/** Rows per statement: a batch is cut into these fixed lengths, so each table has at most four prepared texts. */
const CHUNKS = [64, 16, 4, 1];
const texts = new Map<RowsSql, Map<number, string>>();

export function rowsSql(s: RowsSql, n: number): string {
  let byLength = texts.get(s);
  if (!byLength) texts.set(s, (byLength = new Map()));
  let sql = byLength.get(n);
  if (!sql) {
    const row = `(${Array.from({ length: s.width }, () => '?').join(', ')})`;
    sql = `${s.head} ${Array.from({ length: n }, () => row).join(', ')}${s.tail}`;
    byLength.set(n, sql);
  }
  return sql;
}

/** Queue `rows` as multi-row statements of 64/16/4/1 rows (SQLite; one row never repeats a key within a statement). */
export function insertRows(tx: Queryable, s: RowsSql, rows: unknown[][], writes: Promise<unknown>[]): void {
  let i = 0;
  for (const n of CHUNKS) {
    for (; rows.length - i >= n; i += n) {
      const params: unknown[] = [];
      for (let k = i; k < i + n; k++) for (const v of rows[k]!) params.push(v);
      writes.push(tx.run(rowsSql(s, n), params));
    }
  }
}

/** The indexable text of a message body ('' = not indexed); see SqlStoreOptions.searchText. */
export type SearchText = (kind: string, body: unknown) => string;

/**
 * The writes of one append transaction, collected in memory (seq, and inboxSeq/version
 * offsets, are assigned while the conversation rows are locked) and written by `flush`.
 */
export class AppendWriter {
  private readonly msgs: unknown[][] = [];
  /** [user, offset inboxSeq, conv, seq, mine: 1 when the user sent it (SQLite's `inbox.mine`, migration 0024)] */
  private readonly inbox: [string, number, string, number, number][] = [];
  private readonly mentions: [string, string, number][] = [];
  private readonly entries = new Map<string, EntryAgg>();
  /** Every pointer handed out, with an offset inboxSeq until flush makes it absolute. */
  private readonly pointers: InboxPointer[] = [];
  /** [conv, seq, sender, kind, time, text]: search documents committed with their messages (PostgreSQL only; SQLite indexes later, search/search-indexer.ts). */
  private readonly docs: unknown[][] = [];
  /** The new messages handed out (their seq is made absolute after a fast-path flush). */
  private readonly made: Message[] = [];
  /**
   * SQLite: the inbox pointer rows the flush wrote, absolute, each user's in ascending inboxSeq
   * (for the store's RecentPointers once the transaction committed).
   */
  pointerRows: PointerRow[] = [];

  constructor(
    private readonly users: Map<string, UserState>,
    private readonly searchText?: SearchText,
  ) {}

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
    if (!e) this.entries.set(key, (e = { user, conv, reset: false, ownSeq: 0, unreadDelta: 0, mentionDelta: 0, lastSeq: 0, version, revive: false }));
    e.version = version;
    return e;
  }

  /** A member joins: the entry restarts just before the join notice (earlier changes in this batch are superseded). */
  resetEntry(user: string, conv: string, base: number): void {
    const version = this.version(user);
    if (version === null) return;
    this.entries.set(`${user}\u0000${conv}`, { user, conv, reset: true, ownSeq: base, unreadDelta: 0, mentionDelta: 0, lastSeq: base, version, revive: true });
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
   * Lifecycle events (recall, edit, reaction) move every entry's lastSeq and version (the
   * list re-syncs it) but count as no one's unread or mention, mark nothing read for their
   * sender, and bring no deleted entry back.
   */
  fanOut(c: ConvState, r: AppendRequest, seq: number, mentioned: Set<string>): { message: Message; pointers: InboxPointer[] } {
    const event = LIFECYCLE_EVENT_KINDS.has(r.kind);
    const all = r.mentions === 'all' && !event;
    const pointers: InboxPointer[] = [];
    let senderInbox = 0;
    if (c.kind === 'super') {
      // An event changes nothing in the sender's own super-group entry.
      if (event) return this.queueRow(c, r, seq, senderInbox, all, pointers);
      const version = this.version(r.sender);
      if (version !== null) {
        const e = this.entry(r.sender, c.id, version);
        e.lastSeq = seq;
        e.ownSeq = seq;
        e.unreadDelta = 0;
        e.mentionDelta = 0;
        e.revive = true;
      }
    } else {
      for (const m of c.members?.keys() ?? []) {
        const u = this.users.get(m);
        if (!u) continue; // a member without an account row gets no pointer
        const inboxSeq = ++u.inboxSeq;
        const version = ++u.version;
        this.inbox.push([m, inboxSeq, c.id, seq, m === r.sender ? 1 : 0]);
        const e = this.entry(m, c.id, version);
        e.lastSeq = seq;
        if (m === r.sender) senderInbox = inboxSeq;
        if (event) {
          // lastSeq and version only
        } else if (m === r.sender) {
          e.revive = true;
          e.ownSeq = seq;
          e.unreadDelta = 0;
          e.mentionDelta = 0;
        } else {
          e.revive = true;
          e.unreadDelta++;
          if (all || mentioned.has(m)) e.mentionDelta++;
        }
        const p = { userId: m, inboxSeq };
        pointers.push(p);
        this.pointers.push(p);
      }
    }
    return this.queueRow(c, r, seq, senderInbox, all, pointers, event ? new Set() : mentioned);
  }

  /** Queue the message row (and its mention rows). */
  private queueRow(c: ConvState, r: AppendRequest, seq: number, senderInbox: number, all: boolean, pointers: InboxPointer[], mentioned: Set<string> = new Set()): { message: Message; pointers: InboxPointer[] } {
    for (const u of mentioned) this.mentions.push([u, c.id, seq]);
    // The send path serialized the body once already (AppendRequest.bodyJson).
    const bodyJson = r.bodyJson ?? JSON.stringify(r.body);
    const row: unknown[] = [c.id, seq, r.id, r.sender, r.clientMsgId, r.kind, bodyJson, r.time, senderInbox, all ? 1 : 0];
    this.msgs.push(row);
    const text = this.searchText?.(r.kind, r.body) ?? '';
    if (text !== '') this.docs.push([c.id, seq, r.sender, r.kind, r.time, text]);
    // The request's body object itself: the send path reuses the JSON it made of it.
    const message = toMessage(r, seq);
    this.made.push(message);
    return { message, pointers };
  }

  /**
   * Write the batch: the mentions, the conversations' seq and epoch, the bump of every moved
   * user row (in id order, like every other locker of users rows), then the messages,
   * pointers, entries and ring trims (on PostgreSQL also the messages' search documents; on
   * SQLite they are written later by the deferred indexer, search/search-indexer.ts). Pointers in the outcomes are made
   * absolute from the bumps' results.
   *
   * SQLite runs every statement at once (synchronously, each a cached prepared statement), so
   * the bumps come first and everything after them carries absolute inboxSeqs and versions:
   * rows go in multi-row INSERTs (SQLITE_ROWS), not one statement and one users lookup per row.
   * PostgreSQL (flushPostgres) issues everything at once, pipelined.
   */
  async flush(tx: Queryable, ring: number, convs: Map<string, ConvState>, fast = false): Promise<void> {
    if (tx.dialect === 'postgres') return this.flushPostgres(tx, ring, convs, fast);
    const writes: Promise<unknown>[] = [];
    if (this.mentions.length > 0) insertRows(tx, SQLITE_ROWS.mentions, this.mentions, writes);
    const convRows: unknown[][] = [];
    for (const c of convs.values()) if (c.lastSeq > c.startSeq || c.epoch !== c.startEpoch) convRows.push([c.id, c.lastSeq, c.epoch]);
    if (convRows.length > 0) insertRows(tx, SQLITE_ROWS.convs, convRows, writes);
    const moved = [...this.users.entries()].filter(([, u]) => u.inboxSeq > 0 || u.version > 0).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0));
    // Absolute = the value before this batch + the offset. On SQLite the append read every
    // user row in this transaction (one writer: nothing moved them since), so the rows are set
    // to known values; otherwise one prepared bump per row returns them (both measured cheaper
    // than one json_each statement for all).
    const inboxBase = new Map<string, number>();
    const versionBase = new Map<string, number>();
    if (moved.every(([, u]) => u.seenVersion !== undefined)) {
      const rows: unknown[][] = [];
      for (const [id, u] of moved) {
        rows.push([id, u.seen + u.inboxSeq, u.seenVersion! + u.version]);
        inboxBase.set(id, u.seen);
        versionBase.set(id, u.seenVersion!);
      }
      if (rows.length > 0) insertRows(tx, SQLITE_ROWS.users, rows, writes);
    } else {
      const got = await Promise.all(moved.map(([id, u]) => tx.get<{ inbox_seq: number | string; conv_version: number | string }>(SQL.bumpUser, [u.inboxSeq, u.version, id])));
      moved.forEach(([id, u], i) => {
        const row = got[i];
        if (!row) return;
        inboxBase.set(id, Number(row.inbox_seq) - u.inboxSeq);
        versionBase.set(id, Number(row.conv_version) - u.version);
      });
    }
    if (this.msgs.length > 0) {
      const rows = this.msgs.map((row) => {
        const own = row[8] as number;
        if (own <= 0) return row;
        const out = row.slice();
        out[8] = inboxBase.get(row[3] as string)! + own;
        return out;
      });
      insertRows(tx, SQLITE_ROWS.messages, rows, writes);
    }
    if (this.inbox.length > 0) {
      // In key order (user, then inboxSeq: `moved` is sorted by id), not message by message: a
      // user's pointers of the batch go into the same b-tree page one after the other, instead of
      // every row of a message landing on another member's page (issue 23: ~10–15 % of a
      // 500-member group's append CPU at 32 messages per commit).
      const byUser = new Map<string, PointerRow[]>();
      for (const [user, off, conv, seq, mine] of this.inbox) {
        const row: PointerRow = [user, inboxBase.get(user)! + off, conv, seq, mine];
        const list = byUser.get(user);
        if (list) list.push(row);
        else byUser.set(user, [row]);
      }
      const rows: PointerRow[] = [];
      for (const [id] of moved) for (const row of byUser.get(id) ?? []) rows.push(row);
      if (rows.length !== this.inbox.length) throw new Error('append: an inbox pointer of a user whose row does not move');
      insertRows(tx, SQLITE_ROWS.pointers, rows, writes);
      this.pointerRows = rows;
    }
    const byKind: [RowsSql, unknown[][]][] = [
      [SQLITE_ROWS.reset, []],
      [SQLITE_ROWS.delta, []],
      [SQLITE_ROWS.eventDelta, []],
    ];
    for (const e of this.entries.values()) {
      byKind[e.reset ? 0 : e.revive ? 1 : 2]![1].push([e.user, e.conv, e.ownSeq, e.unreadDelta, e.mentionDelta, e.lastSeq, versionBase.get(e.user)! + e.version]);
    }
    for (const [sql, rows] of byKind) if (rows.length > 0) insertRows(tx, sql, rows, writes);
    // The ring: whenever a user's inboxSeq crosses a multiple of TRIM_EVERY, drop what fell out of it.
    for (const [id, u] of moved) {
      const top = u.seen + u.inboxSeq;
      const base = inboxBase.get(id);
      if (base !== undefined && u.inboxSeq > 0 && top > ring && Math.floor(top / TRIM_EVERY) > Math.floor(u.seen / TRIM_EVERY)) writes.push(tx.run(SQL.trimTo, [id, base + u.inboxSeq - ring]));
    }
    await Promise.all(writes);
    for (const p of this.pointers) p.inboxSeq += inboxBase.get(p.userId) ?? 0;
  }

  /** Pointers handed out become absolute: offset + (bumped inbox_seq − the user's total bump). */
  private absolute(bumped: [string, UserState, number | string | undefined][]): void {
    const base = new Map<string, number>();
    for (const [id, u, top] of bumped) if (top !== undefined) base.set(id, Number(top) - u.inboxSeq);
    for (const p of this.pointers) p.inboxSeq += base.get(p.userId) ?? 0;
  }

  /**
   * PostgreSQL: the same writes as a handful of set-based statements (one per table, rows as
   * arrays through unnest), all pipelined and ending in the COMMIT (PIPELINE_COMMIT). The
   * conversation rows come first, then the user rows, locked in id order, so a 90-member
   * group's append is ~10 statements, not ~280 (postgres.js pipelines at most max_pipeline, and
   * every statement costs the server a round of executor start-up). Every text is fixed (no
   * per-length variants) and so prepared once per connection.
   *
   * Every seq is written relative to the conversation row's last_seq as this pipeline left it
   * (`c.last_seq - back`, back = the batch's last seq in memory − the seq). On the locking
   * path the row was locked and read, and the first statement sets it; on the fast path
   * (`fast`: the row was read without a lock) the first statements lock the rows in id order
   * and bump them by the batch's count, failing with SQLSTATE MG001 (migration 0020) when a
   * group effect or membership change committed since the read; the new messages' seqs are
   * then made absolute from the bumped rows.
   */
  private async flushPostgres(tx: Queryable, ring: number, convs: Map<string, ConvState>, fast: boolean): Promise<void> {
    const writes: Promise<unknown>[] = [];
    const changed = [...convs.values()].filter((c) => c.lastSeq > c.startSeq || c.epoch !== c.startEpoch || c.effectSeq !== c.startEffectSeq).sort((x, y) => (x.id < y.id ? -1 : x.id > y.id ? 1 : 0));
    let bumped: Promise<{ id: string; last_seq: number | string }[]> = Promise.resolve([]);
    if (changed.length > 0) {
      const ids = changed.map((c) => c.id);
      if (fast) {
        writes.push(tx.run(PG.lockConvs, [ids]));
        bumped = tx.all(PG.bumpConvs, [ids, changed.map((c) => c.lastSeq - c.startSeq), changed.map((c) => c.startEpoch), changed.map((c) => c.startEffectSeq)]);
      } else {
        writes.push(tx.run(PG.convs, [ids, changed.map((c) => c.lastSeq), changed.map((c) => c.epoch), changed.map((c) => c.effectSeq)]));
      }
    }
    /** A seq as written: relative to the conversation row's last_seq after this pipeline's bump (0 stays 0). */
    const back = (conv: string, seq: number): number => (seq > 0 ? convs.get(conv)!.lastSeq - seq : -1);
    const moved = [...this.users.entries()].filter(([, u]) => u.inboxSeq > 0 || u.version > 0).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0));
    const ids = moved.map(([id]) => id);
    let tops: Promise<{ id: string; inbox_seq: number | string }[]> = Promise.resolve([]);
    if (moved.length > 0) {
      writes.push(tx.run(PG.lockUsers, [ids]));
      tops = tx.all(PG.bumpUsers, [ids, moved.map(([, u]) => u.inboxSeq), moved.map(([, u]) => u.version)]);
    }
    if (this.mentions.length > 0) writes.push(tx.run(PG.mentions, columns(this.mentions.map(([u, conv, seq]) => [u, conv, back(conv, seq)]), 3)));
    if (this.msgs.length > 0) {
      // sender_inbox_seq: the offset of the sender's pointer, made absolute from the bumped row (0: none).
      const rows = this.msgs.map((r) => {
        const own = r[8] as number;
        return [r[0], back(r[0] as string, r[1] as number), ...r.slice(2, 8), own > 0 ? this.users.get(r[3] as string)!.inboxSeq - own : -1, r[9]];
      });
      writes.push(tx.run(PG.messages, columns(rows, 10)));
    }
    if (this.inbox.length > 0) {
      writes.push(tx.run(PG.pointers, columns(this.inbox.map(([user, off, conv, seq]) => [user, this.users.get(user)!.inboxSeq - off, conv, back(conv, seq)]), 4)));
    }
    if (this.docs.length > 0) writes.push(tx.run(PG.searchDocs, columns(this.docs.map((d) => [d[0], back(d[0] as string, d[1] as number), ...d.slice(2)]), 6)));
    // Three kinds of entry writes, as on SQLite: a reset, a delta that revives a deleted entry
    // (a message), and a delta of entries that only saw events (a deleted entry stays deleted).
    for (const sql of [PG.reset, PG.delta, PG.eventDelta]) {
      const es = [...this.entries.values()].filter((e) => (e.reset ? PG.reset : e.revive ? PG.delta : PG.eventDelta) === sql);
      if (es.length === 0) continue;
      const rows = es.map((e) => [e.user, e.conv, back(e.conv, e.ownSeq), e.unreadDelta, e.mentionDelta, back(e.conv, e.lastSeq), this.users.get(e.user)!.version - e.version]);
      writes.push(tx.run(sql, columns(rows, 7)));
    }
    const trims = moved.filter(([, u]) => {
      const top = u.seen + u.inboxSeq;
      return u.inboxSeq > 0 && top > ring && Math.floor(top / TRIM_EVERY) > Math.floor(u.seen / TRIM_EVERY);
    });
    if (trims.length > 0) writes.push(tx.run(PG.trim, [trims.map(([id]) => id), ring]));
    writes.push(tx.run(PIPELINE_COMMIT));
    const [got, lasts] = await Promise.all([tops, bumped, Promise.all(writes)]);
    const top = new Map(got.map((r) => [r.id, r.inbox_seq]));
    this.absolute(moved.map(([id, u]) => [id, u, top.get(id)]));
    if (fast) {
      // The seqs decided in memory started at the last_seq read without a lock; the bump says where they landed.
      const shift = new Map<string, number>();
      for (const r of lasts) shift.set(r.id, Number(r.last_seq) - convs.get(r.id)!.lastSeq);
      for (const m of this.made) m.seq += shift.get(m.conv) ?? 0;
      for (const r of lasts) {
        const c = convs.get(r.id)!;
        c.lastSeq = Number(r.last_seq);
      }
    }
  }
}

/** Rows → one array per column (unnest's parameters). */
function columns(rows: unknown[][], n: number): unknown[][] {
  const out: unknown[][] = Array.from({ length: n }, () => []);
  for (const r of rows) for (let i = 0; i < n; i++) out[i]!.push(r[i]);
  return out;
}

/** A seq written relative to its conversation row `c` as bumped earlier in the pipeline (AppendWriter.flushPostgres; negative: 0). */
const SEQ = (back: string): string => `CASE WHEN ${back} < 0 THEN 0 ELSE c.last_seq - ${back} END`;

/**
 * PostgreSQL flush statements: arrays of rows via unnest. Offsets are made absolute from the
 * user rows bumped earlier in the same pipeline (`u.inbox_seq - off`, `u.conv_version - off`).
 */
const PG = {
  lockUsers: 'SELECT id FROM users WHERE id = ANY(?::text[]) ORDER BY id FOR UPDATE',
  bumpUsers: `UPDATE users u SET inbox_seq = u.inbox_seq + x.n, conv_version = u.conv_version + x.v
    FROM unnest(?::text[], ?::bigint[], ?::bigint[]) AS x(id, n, v) WHERE u.id = x.id RETURNING u.id, u.inbox_seq`,
  convs: `UPDATE conversations c SET last_seq = x.s, member_epoch = x.e, effect_seq = x.r
    FROM unnest(?::text[], ?::bigint[], ?::bigint[], ?::bigint[]) AS x(id, s, e, r) WHERE c.id = x.id`,
  /** The fast path: the conversation rows, locked in id order (before any user row, as on the locking path). */
  lockConvs: 'SELECT id FROM conversations WHERE id = ANY(?::text[]) ORDER BY id FOR UPDATE',
  /**
   * The fast path: bump each row by the batch's count, provided neither its member epoch nor its
   * last effect moved since the unlocked read (checked on the row as locked: READ COMMITTED
   * re-reads it after a wait); otherwise fail the pipeline (migration 0020).
   */
  bumpConvs: `UPDATE conversations c SET last_seq = CASE WHEN c.member_epoch = x.e AND c.effect_seq = x.r THEN c.last_seq + x.n ELSE magpie_stale_append(c.id) END
    FROM unnest(?::text[], ?::bigint[], ?::bigint[], ?::bigint[]) AS x(id, n, e, r) WHERE c.id = x.id RETURNING c.id, c.last_seq`,
  mentions: `INSERT INTO message_mentions (user_id, conv_id, seq)
    SELECT x.id, x.conv, ${SEQ('x.back')} FROM unnest(?::text[], ?::text[], ?::bigint[]) AS x(id, conv, back) JOIN conversations c ON c.id = x.conv ON CONFLICT DO NOTHING`,
  messages: `INSERT INTO messages (conv_id, seq, id, sender_id, client_msg_id, kind, body, time, sender_inbox_seq, mention_all)
    SELECT x.conv, ${SEQ('x.back')}, x.id, x.sender, x.cid, x.kind, x.body, x.time,
      CASE WHEN x.own < 0 THEN 0 ELSE (SELECT u.inbox_seq - x.own FROM users u WHERE u.id = x.sender) END, x.mall
    FROM unnest(?::text[], ?::bigint[], ?::text[], ?::text[], ?::text[], ?::text[], ?::text[], ?::bigint[], ?::bigint[], ?::smallint[])
      WITH ORDINALITY AS x(conv, back, id, sender, cid, kind, body, time, own, mall, ord) JOIN conversations c ON c.id = x.conv ORDER BY x.ord`,
  pointers: `INSERT INTO inbox (user_id, inbox_seq, conv_id, seq)
    SELECT u.id, u.inbox_seq - x.off, x.conv, ${SEQ('x.back')} FROM unnest(?::text[], ?::bigint[], ?::text[], ?::bigint[]) AS x(id, off, conv, back)
      JOIN users u ON u.id = x.id JOIN conversations c ON c.id = x.conv`,
  trim: `DELETE FROM inbox i USING users u WHERE u.id = ANY(?::text[]) AND i.user_id = u.id AND i.inbox_seq <= u.inbox_seq - ?`,
  reset: `INSERT INTO entries (user_id, conv_id, read_seq, unread, mentions, last_seq, version)
    SELECT u.id, x.conv, ${SEQ('x.own')}, x.unread, x.mentions, ${SEQ('x.last')}, u.conv_version - x.off
    FROM unnest(?::text[], ?::text[], ?::bigint[], ?::bigint[], ?::bigint[], ?::bigint[], ?::bigint[]) AS x(id, conv, own, unread, mentions, last, off)
      JOIN users u ON u.id = x.id JOIN conversations c ON c.id = x.conv
    ON CONFLICT (user_id, conv_id) DO UPDATE SET
      read_seq = excluded.read_seq, unread = excluded.unread, mentions = excluded.mentions,
      last_seq = excluded.last_seq, deleted = 0, version = excluded.version`,
  delta: `INSERT INTO entries (user_id, conv_id, read_seq, unread, mentions, last_seq, version)
    SELECT u.id, x.conv, ${SEQ('x.own')}, x.unread, x.mentions, ${SEQ('x.last')}, u.conv_version - x.off
    FROM unnest(?::text[], ?::text[], ?::bigint[], ?::bigint[], ?::bigint[], ?::bigint[], ?::bigint[]) AS x(id, conv, own, unread, mentions, last, off)
      JOIN users u ON u.id = x.id JOIN conversations c ON c.id = x.conv
    ON CONFLICT (user_id, conv_id) DO UPDATE SET
      read_seq = CASE WHEN excluded.read_seq > entries.read_seq THEN excluded.read_seq ELSE entries.read_seq END,
      unread = CASE WHEN excluded.read_seq > 0 THEN excluded.unread ELSE entries.unread + excluded.unread END,
      mentions = CASE WHEN excluded.read_seq > 0 THEN excluded.mentions ELSE entries.mentions + excluded.mentions END,
      last_seq = CASE WHEN excluded.last_seq > entries.last_seq THEN excluded.last_seq ELSE entries.last_seq END,
      deleted = 0,
      version = excluded.version`,
  /** As delta, for entries that only saw events in this batch: a deleted entry stays deleted. */
  eventDelta: `INSERT INTO entries (user_id, conv_id, read_seq, unread, mentions, last_seq, version)
    SELECT u.id, x.conv, ${SEQ('x.own')}, x.unread, x.mentions, ${SEQ('x.last')}, u.conv_version - x.off
    FROM unnest(?::text[], ?::text[], ?::bigint[], ?::bigint[], ?::bigint[], ?::bigint[], ?::bigint[]) AS x(id, conv, own, unread, mentions, last, off)
      JOIN users u ON u.id = x.id JOIN conversations c ON c.id = x.conv
    ON CONFLICT (user_id, conv_id) DO UPDATE SET
      last_seq = CASE WHEN excluded.last_seq > entries.last_seq THEN excluded.last_seq ELSE entries.last_seq END,
      version = excluded.version`,
  /** The messages' search documents (migration 0008-search), written with the messages. */
  searchDocs: `INSERT INTO search_docs (conv_id, seq, sender_id, kind, time, body)
    SELECT x.conv, ${SEQ('x.back')}, x.sender, x.kind, x.time, x.body FROM unnest(?::text[], ?::bigint[], ?::text[], ?::text[], ?::bigint[], ?::text[]) AS x(conv, back, sender, kind, time, body)
      JOIN conversations c ON c.id = x.conv
    ON CONFLICT (conv_id, seq) DO UPDATE SET body = excluded.body, kind = excluded.kind`,
};

/** The PostgreSQL flush statements with no-op parameters (db/prepared.ts warms them before the locks). */
export const PG_FLUSH_NOOPS: NoopStatement[] = [
  [PG.lockUsers, [[]]],
  [PG.bumpUsers, [[], [], []]],
  [PG.convs, [[], [], [], []]],
  [PG.lockConvs, [[]]],
  [PG.bumpConvs, [[], [], [], []]],
  [PG.mentions, [[], [], []]],
  [PG.messages, [[], [], [], [], [], [], [], [], [], []]],
  [PG.pointers, [[], [], [], []]],
  [PG.trim, [[], 0]],
  [PG.reset, [[], [], [], [], [], [], []]],
  [PG.delta, [[], [], [], [], [], [], []]],
  [PG.eventDelta, [[], [], [], [], [], [], []]],
  [PG.searchDocs, [[], [], [], [], [], []]],
];
