import type { ConvEntry, ConversationKind, InboxItem, Message } from '@magpie/protocol';
import { usernameKey } from '@magpie/protocol/core';
import type { Queryable, SqlEngine, TransactionOptions } from '../db/engine.ts';
import { retryTransaction } from '../db/retry.ts';
import { PIPELINE_FLUSH, forUpdate, inList, isUniqueViolation, locksRows } from '../db/dialect.ts';
import {
  StoreConflictError,
  StoreNotFoundError,
  type AppendOutcome,
  type AppendRequest,
  type AckOutcome,
  type ConversationRecord,
  type DeliveredUpdate,
  type DeviceAck,
  type EffectResult,
  type EntryPatch,
  type GroupEffect,
  type GroupRecord,
  type GroupRole,
  type HelloState,
  type JoinRequestRecord,
  type MemberRecord,
  type NewSession,
  type NewUser,
  type SessionRecord,
  type Store,
  type StoreOptions,
  type UserRecord,
} from './store.ts';
import {
  GROUP_SELECT,
  entryFromRow,
  groupFromRow,
  joinRequestFromRow,
  memberFromRow,
  mergeSearch,
  messageFromRow,
  sessionFromRow,
  userFromRow,
  type EntryRow,
  type GroupRow,
  type JoinRequestRow,
  type MemberRow,
  type MessageRow,
} from './rows.ts';
import { checkEffect, checkPost, effectTargets } from './group-rules.ts';
import type { IndexLag } from '../search/search-indexer.ts';
import { LocalSearchIndex, type SearchIndex } from '../search/sqlite-search-db.ts';
import { ThreadSearchIndex } from '../search/search-index-thread.ts';
import type { SqliteEngine } from '../db/sqlite-engine.ts';
import { AppendWriter, PG_FLUSH_NOOPS, type ConvState, type SearchText, type UserState } from './append-writer.ts';
import { warm, type NoopStatement } from '../db/prepared.ts';
import { ENTRY_STATE_SQL, EVENT_KINDS_SQL, entrySelect } from './entry-sql.ts';
import { splitAcksByUsers, writeAcksPostgres, writeAcksSqlite } from './ack-writer.ts';
import { RecentPointers, type PointerRow } from './recent-pointers.ts';
import { PG_WARMUP_DEFAULTS, warmUpPostgres, type PgWarmUpOptions, type PgWarmUpResult } from './pg-warmup.ts';

export interface SqlStoreOptions extends StoreOptions {
  /** PostgreSQL: how long a transaction retries while no connection can be had. Default 2000 ms. */
  unavailableWaitMs?: number;
  /** Close the engine with the store (a store opened on its own); default false: the engine belongs to the server. */
  ownsEngine?: boolean;
  /**
   * The indexable text of a message body ('' = none): when set, the store keeps the search
   * index (migration 0008-search) in step with new messages. PostgreSQL: each document is
   * written in the message's own transaction (the group commit). SQLite: by the deferred
   * indexer (search/search-indexer.ts) in batches of its own after the commit, within
   * `searchIndexDelayMs`, into the search file (search/sqlite-search-db.ts) — on a thread of
   * its own for a database file (search/search-index-thread.ts); `syncSearchIndex` catches it
   * up at once. The server passes search/extract.ts's searchableText; without it nothing is
   * indexed here.
   */
  searchText?: SearchText;
  /** SQLite: the longest a committed message waits for the deferred indexer (ms). Default 100. */
  searchIndexDelayMs?: number;
  /** SQLite with searchText: the search index to use instead of the store's own (tests). */
  searchIndex?: SearchIndex;
  /**
   * SQLite: the writer thread (store/sqlite-writer.ts) that runs appendMessages, recordAcks
   * and markDelivered on its own connection; closed with the store.
   */
  writer?: StoreWriter;
}

/** Where the store's hot write transactions run when not on the event loop (SqliteWriterThread). */
export interface StoreWriter {
  appendMessages(batch: AppendRequest[]): Promise<AppendOutcome[]>;
  recordAcks(acks: DeviceAck[]): Promise<AckOutcome>;
  markDelivered(userId: string, inboxSeq: number): Promise<DeliveredUpdate[]>;
  close(): Promise<void>;
}


type EntryState = {
  read_seq: number | string;
  last_seq: number | string;
  unread: number | string;
  mentions: number | string;
  pinned: number;
  muted: number;
  draft: string;
  deleted: number;
  cleared_seq: number | string;
  conv_kind: string;
  eff_last: number | string;
};

type Mark = { id: string; inbox_seq: number | string; delivered_inbox_seq: number | string };

const ENTRY_CHANGES_SQL = entrySelect('e.user_id = ? AND e.version > ?', 'ORDER BY e.version LIMIT ?');
const ENTRY_ONE_SQL = entrySelect('e.user_id = ? AND e.conv_id = ?');

/** Wake the deferred search indexer after a commit that stored messages; returns the outcomes. */
function kickIfStored(index: SearchIndex | undefined, out: AppendOutcome[]): AppendOutcome[] {
  if (index && out.some((o) => o.ok && !o.duplicate)) index.kick();
  return out;
}

/** Group-name prefix search: a range of the groups_name index, in index order (see migration 0004). */
const GROUP_SEARCH = {
  sqlite: `${GROUP_SELECT}
    WHERE lower(g.name) >= lower(?) AND lower(g.name) < lower(?) || char(1114111)
      AND substr(lower(g.name), 1, length(lower(?))) = lower(?) AND g.dismissed = 0
    ORDER BY lower(g.name), g.conv_id LIMIT ?`,
  postgres: `${GROUP_SELECT}
    WHERE lower(g.name) ~>=~ lower(?::text) AND lower(g.name) ~<~ (lower(?::text) || chr(1114111))
      AND starts_with(lower(g.name), lower(?::text)) AND lower(?::text) IS NOT NULL AND g.dismissed = 0
    ORDER BY lower(g.name) USING ~<~, g.conv_id LIMIT ?`,
};

/** Store.getSessionAndUser: the live session, and its user's row (u_id null when gone). */
const SESSION_AND_USER_SQL = `
  SELECT s.*, u.id AS u_id, u.deleted_at AS u_deleted_at, u.disabled_at AS u_disabled_at
  FROM sessions s LEFT JOIN users u ON u.id = s.user_id
  WHERE s.token_hash = ? AND s.revoked_at IS NULL AND s.expires_at > ?`;

type SessionAndUserRow = Record<string, unknown> & { u_id: string | null; u_deleted_at: number | string | null; u_disabled_at: number | string | null };

function sessionAndUserFromRow(row: SessionAndUserRow | undefined): { session: SessionRecord; user: { deletedAt: number | null; disabledAt: number | null } | null } | null {
  if (!row) return null;
  const user = row.u_id == null ? null : { deletedAt: row.u_deleted_at == null ? null : Number(row.u_deleted_at), disabledAt: row.u_disabled_at == null ? null : Number(row.u_disabled_at) };
  return { session: sessionFromRow(row), user };
}

/** Store.userExists: the account row exists (deleted accounts keep theirs). */
const USER_EXISTS_SQL = 'SELECT 1 AS x FROM users WHERE id = ?';
/** Store.isMember / isMemberNow: an active membership row exists. */
const IS_MEMBER_SQL = 'SELECT 1 AS x FROM members WHERE conv_id = ? AND user_id = ? AND left_seq IS NULL';

/** Store.helloState: one row of scalar subqueries (each the statement it replaces). */
const HELLO_STATE_SQL = `
  SELECT
    (SELECT inbox_seq FROM users WHERE id = ?) AS inbox_seq,
    (SELECT purged_inbox_seq FROM inbox_purge WHERE user_id = ?) AS purged,
    (SELECT expires_at FROM sessions WHERE token_hash = ? AND revoked_at IS NULL AND expires_at > ?) AS expires_at,
    CASE WHEN EXISTS (SELECT 1 FROM members m JOIN conversations c ON c.id = m.conv_id
                      WHERE m.user_id = ? AND m.left_seq IS NULL AND c.kind = 'super') THEN 1 ELSE 0 END AS supers,
    CASE WHEN EXISTS (SELECT 1 FROM instruction_targets
                      WHERE user_id = ? AND device_id = ? AND status IN ('pending', 'delivered')) THEN 1 ELSE 0 END AS instructions`;

/** A refusal from checkEffect (never null where it is used). */
function refusal(r: ReturnType<typeof checkEffect>): AppendOutcome {
  return r ? { ok: false, ...r } : { ok: false, error: 'invalid' };
}

const isRow = (row: unknown): boolean => row !== undefined;

const byId = (x: string, y: string): number => (x < y ? -1 : x > y ? 1 : 0);

/**
 * The Store, written once on the shared engine (db/engine.ts): SQLite (the process's one
 * connection) or PostgreSQL (the process's one pool). Tables: migration 0004-core.
 *
 * `appendMessages` is one transaction per batch. It locks the conversations (in id order;
 * SQLite: BEGIN IMMEDIATE excludes every other writer), decides each request in memory
 * (seq, inboxSeq and list-version offsets), then writes (AppendWriter.flush), bumping the
 * member user rows in id order, so concurrent batches on several nodes cannot deadlock and
 * seq/inboxSeq stay gap-free. On PostgreSQL a batch of plain posts first tries the fast path:
 * the same without the conversation lock, which its write pipeline takes itself
 * (appendPostgresOrLocked).
 */
export class SqlStore implements Store {
  readonly kind: 'sqlite' | 'postgres';
  private readonly ring: number;
  private readonly unavailableWaitMs: number;
  private readonly ownsEngine: boolean;
  private readonly searchText: SearchText | undefined;
  private readonly writer: StoreWriter | undefined;
  /** SQLite with searchText: the search file and its deferred indexer (search/sqlite-search-db.ts). */
  readonly searchIndex: SearchIndex | undefined;
  private closed = false;
  /**
   * SQLite appends: the member rows of direct conversations as read by an earlier append, by
   * conversation. A direct chat's members never change (they are written once, with its first
   * message, and no effect applies to a direct chat), so a batch reads only the member rows of
   * the direct chats it has not seen yet (DIRECT_MEMBERS_CAP bounds it; a full cache starts over).
   */
  private readonly directMembers = new Map<string, Map<string, MemberRecord>>();
  /**
   * SQLite: the inbox pointers this store's appends committed last, per user; an ACK flush
   * counts what a range covers from them instead of reading `inbox` when it can
   * (store/recent-pointers.ts, writeAcksSqlite). Only meaningful on the connection that appends
   * (the writer thread's, or the only one).
   */
  private readonly recent = new RecentPointers();

  constructor(
    /** The database (shared with the server's other stores unless `ownsEngine`). */
    readonly db: SqlEngine,
    opts: SqlStoreOptions,
  ) {
    this.kind = db.dialect;
    this.ring = opts.ringCapacity;
    this.unavailableWaitMs = opts.unavailableWaitMs ?? 2000;
    this.ownsEngine = opts.ownsEngine ?? false;
    this.searchText = opts.searchText;
    this.writer = opts.writer;
    if (db.dialect === 'sqlite' && opts.searchText && 'defineFunction' in db) {
      const engine = db as SqliteEngine;
      const delay = opts.searchIndexDelayMs ?? 100;
      this.searchIndex = opts.searchIndex ?? (engine.path === '' ? new LocalSearchIndex(engine, opts.searchText, delay) : new ThreadSearchIndex(engine.path, delay));
    }
  }

  /** Whether this store keeps the search index in step with new messages itself (see SqlStoreOptions.searchText). */
  get indexesSearch(): boolean {
    return this.searchText !== undefined;
  }

  /**
   * SQLite: one batch of the deferred search indexer (on the search index thread for a
   * database file); true when more messages wait. False at once when there is no deferred
   * indexer. `targetMs`: how long its transaction should take (SearchIndexer.runBatch).
   */
  indexSearchBatch(targetMs?: number): Promise<boolean> {
    return this.searchIndex ? this.searchIndex.runBatch(targetMs) : Promise.resolve(false);
  }

  /**
   * SQLite: index every message committed before this call (the deferred indexer, run now
   * until it has caught up). A search calls it first, so it never misses a committed message;
   * the server calls it at start (catch-up after a crash) and at shutdown. PostgreSQL: nothing
   * to do (documents are written in the message commit).
   */
  async syncSearchIndex(): Promise<void> {
    await this.searchIndex?.sync();
  }

  /**
   * SQLite with the deferred search indexer: how far the index is behind the committed
   * messages (read on the search index's reader). Null when this store has no deferred
   * indexer (PostgreSQL indexes in the commit).
   */
  searchIndexLag(now: number = Date.now()): Promise<IndexLag> | null {
    return this.searchIndex ? this.searchIndex.lag(now) : null;
  }

  /** SQLite with searchText: the search documents are written after the commit, by the deferred indexer. */
  get indexesSearchLater(): boolean {
    return this.searchText !== undefined && this.db.dialect === 'sqlite';
  }

  /** Bring the database to the current schema (the server does this when it opens the database; safe to repeat). */
  async migrate(): Promise<void> {
    // Loaded on use: the migration tool (umzug) is ~19 MB of heap the SQLite writer thread,
    // which runs this class but never migrates, would otherwise carry.
    const [{ migrate }, { MIGRATIONS }] = await Promise.all([import('../db/migrate.ts'), import('../db/migrations/index.ts')]);
    await migrate(this.db, MIGRATIONS);
  }

  /**
   * PostgreSQL: warm the pool's connections and the append / ACK-flush code up in rollback-only
   * transactions on made-up rows (store/pg-warmup.ts); nothing is committed. Never throws: a
   * failure only leaves the node cold (reported through `warn`). SQLite: nothing (its writer
   * thread has a warm-up of its own). Resolves with how long it took.
   */
  async warmUp(opts: Partial<PgWarmUpOptions> & { warn?: (msg: string, err: unknown) => void } = {}): Promise<PgWarmUpResult & { ms: number }> {
    const started = performance.now();
    if (this.kind !== 'postgres' || this.writer) return { messages: 0, ackFlushes: 0, failed: [], ms: 0 };
    let result: PgWarmUpResult = { messages: 0, ackFlushes: 0, failed: [] };
    try {
      result = await warmUpPostgres(this.db, (tx, batch, fast) => this.appendTx(tx, batch, fast), { ...PG_WARMUP_DEFAULTS, ...opts });
      if (result.failed.length > 0) opts.warn?.(`PostgreSQL warm-up: ${result.failed.length} of its transactions failed (the node starts colder)`, result.failed[0]);
    } catch (err) {
      opts.warn?.('PostgreSQL warm-up failed (the node starts colder)', err);
      result.failed.push(err);
    }
    return { ...result, ms: performance.now() - started };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.writer?.close();
    await this.searchIndex?.close();
    if (this.ownsEngine) await this.db.close();
  }

  /**
   * Run `fn` in a transaction; retry it on serialization failures, deadlocks and idempotency
   * races, and — for up to unavailableWaitMs — while no connection can be had.
   */
  private tx<T>(fn: (tx: Queryable) => Promise<T>, opts: TransactionOptions = {}): Promise<T> {
    return retryTransaction(this.db, fn, { ...opts, retryIf: (err) => isUniqueViolation(err, 'messages_idem'), unavailableWaitMs: this.unavailableWaitMs, stopped: () => this.closed });
  }

  // --- accounts ---

  async createUser(user: NewUser): Promise<UserRecord> {
    try {
      await this.db.run('INSERT INTO users (id, username, username_key, password_hash, nickname, created_at) VALUES (?, ?, ?, ?, ?, ?)', [
        user.id,
        user.username,
        usernameKey(user.username),
        user.passwordHash,
        user.nickname,
        user.createdAt,
      ]);
    } catch (err) {
      if (isUniqueViolation(err)) throw new StoreConflictError(`user ${user.username}`);
      throw err;
    }
    return { ...user, inboxSeq: 0, disabledAt: null, deletedAt: null };
  }

  async getUser(id: string): Promise<UserRecord | null> {
    const row = await this.db.get('SELECT * FROM users WHERE id = ?', [id]);
    return row ? userFromRow(row) : null;
  }

  userExists(id: string): Promise<boolean> {
    return this.db.getBatched<{ x: number }>(USER_EXISTS_SQL, [id]).then((r) => r !== undefined);
  }

  async getUserByUsername(username: string): Promise<UserRecord | null> {
    // The normalized key, or (accounts from before the key whose key was taken) the exact spelling.
    const row = await this.db.get('SELECT * FROM users WHERE username_key = ? OR username = ? ORDER BY CASE WHEN username = ? THEN 0 ELSE 1 END LIMIT 1', [
      usernameKey(username),
      username,
      username,
    ]);
    return row ? userFromRow(row) : null;
  }

  async setPasswordHash(userId: string, passwordHash: string): Promise<boolean> {
    return (await this.db.run('UPDATE users SET password_hash = ? WHERE id = ? AND deleted_at IS NULL', [passwordHash, userId])) > 0;
  }

  async setUserDisabled(userId: string, at: number | null): Promise<UserRecord | null> {
    const row = await this.db.get('UPDATE users SET disabled_at = ? WHERE id = ? RETURNING *', [at, userId]);
    return row ? userFromRow(row) : null;
  }

  async markUserDeleted(userId: string, at: number, tombstoneNickname: string): Promise<UserRecord | null> {
    const row = await this.db.get("UPDATE users SET deleted_at = ?, password_hash = '', nickname = ? WHERE id = ? AND deleted_at IS NULL RETURNING *", [at, tombstoneNickname, userId]);
    return row ? userFromRow(row) : null;
  }

  async existingUsers(ids: string[]): Promise<Set<string>> {
    if (ids.length === 0) return new Set();
    const l = inList(this.db, ids);
    const rows = await this.db.all<{ id: string }>(`SELECT id FROM users WHERE id IN ${l.sql} AND deleted_at IS NULL`, l.params);
    return new Set(rows.map((r) => r.id));
  }

  // --- sessions ---

  async createSession(s: NewSession): Promise<void> {
    await this.db.run('INSERT INTO sessions (token_hash, user_id, device_id, platform, app_version, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)', [
      s.tokenHash,
      s.userId,
      s.deviceId,
      s.platform,
      s.appVersion,
      s.createdAt,
      s.expiresAt,
    ]);
  }

  async getSession(tokenHash: string, now: number): Promise<SessionRecord | null> {
    const row = await this.db.getBatched('SELECT * FROM sessions WHERE token_hash = ? AND revoked_at IS NULL AND expires_at > ?', [tokenHash, now]);
    return row ? sessionFromRow(row) : null;
  }

  getSessionAndUser(tokenHash: string, now: number): Promise<{ session: SessionRecord; user: { deletedAt: number | null; disabledAt: number | null } | null } | null> {
    // Not an async function: it runs on every authenticated request (one promise fewer; issue 16).
    return this.db.getBatched<SessionAndUserRow>(SESSION_AND_USER_SQL, [tokenHash, now]).then(sessionAndUserFromRow);
  }

  async helloState(userId: string, deviceId: string, tokenHash: string, now: number): Promise<HelloState> {
    const r = await this.db.getBatched<{ inbox_seq: unknown; purged: unknown; expires_at: unknown; supers: unknown; instructions: unknown }>(HELLO_STATE_SQL, [userId, userId, tokenHash, now, userId, userId, deviceId]);
    const latest = r?.inbox_seq == null ? 0 : Number(r.inbox_seq);
    return {
      latest,
      ringStart: Math.max(1, latest - this.ring + 1),
      purgedInboxSeq: r?.purged == null ? 0 : Number(r.purged),
      sessionExpiresAt: r?.expires_at == null ? null : Number(r.expires_at),
      inSuperGroups: Number(r?.supers ?? 0) === 1,
      pendingInstructions: Number(r?.instructions ?? 0) === 1,
    };
  }

  async listSessions(userId: string, now: number): Promise<SessionRecord[]> {
    const rows = await this.db.all('SELECT * FROM sessions WHERE user_id = ? AND revoked_at IS NULL AND expires_at > ? ORDER BY created_at, token_hash', [userId, now]);
    return rows.map(sessionFromRow);
  }

  async knownDevice(userId: string, deviceId: string): Promise<boolean> {
    return (await this.db.get('SELECT 1 AS x FROM sessions WHERE user_id = ? AND device_id = ? LIMIT 1', [userId, deviceId])) !== undefined;
  }

  async revokeSessions(tokenHashes: string[], now: number): Promise<SessionRecord[]> {
    if (tokenHashes.length === 0) return [];
    const l = inList(this.db, tokenHashes);
    const rows = await this.db.all(`UPDATE sessions SET revoked_at = ? WHERE token_hash IN ${l.sql} AND revoked_at IS NULL AND expires_at > ? RETURNING *`, [now, ...l.params, now]);
    return rows.map(sessionFromRow);
  }

  async setDeviceAck(userId: string, deviceId: string, inboxSeq: number): Promise<void> {
    await setDeviceAckIn(this.db, userId, deviceId, inboxSeq);
  }

  // --- messages ---

  async appendMessages(batch: AppendRequest[]): Promise<AppendOutcome[]> {
    if (batch.length === 0) return [];
    // SQLite: the documents of the new messages are written by the deferred indexer.
    const index = this.searchIndex;
    if (this.writer) return index ? this.writer.appendMessages(batch).then((out) => kickIfStored(index, out)) : this.writer.appendMessages(batch);
    return kickIfStored(index, await this.appendPostgresOrLocked(batch));
  }

  /**
   * PostgreSQL: a batch of plain posts (no group effect) takes the fast path first — its
   * conversations are read without a lock and their seq bumped by the write pipeline itself,
   * which fails (SQLSTATE MG001) when a group effect committed since the read; the batch then
   * reruns on the locking path, as does any batch with an effect. SQLite: the locking path
   * (BEGIN IMMEDIATE already excludes every other writer).
   */
  private async appendPostgresOrLocked(batch: AppendRequest[]): Promise<AppendOutcome[]> {
    if (this.db.dialect === 'postgres' && batch.every((r) => !r.effect)) {
      try {
        return await this.tx((tx) => this.appendTx(tx, batch, true));
      } catch (err) {
        if (!isStaleAppend(err)) throw err;
        this.staleAppends++;
      }
    }
    if (this.db.dialect !== 'sqlite') return this.tx((tx) => this.appendTx(tx, batch));
    // SQLite: the pointers of the run that committed (a rerun replaces an earlier run's) are
    // remembered for the ACK flushes (RecentPointers), only once the COMMIT succeeded.
    let written: PointerRow[] = [];
    const out = await this.tx((tx) => this.appendTx(tx, batch, false, (rows) => (written = rows)));
    if (written.length > 0) this.recent.record(written);
    return out;
  }

  /** Fast-path batches that found their conversation changed and reran on the locking path (tests, /metrics). */
  staleAppends = 0;

  /**
   * One transaction for the batch. Locks: the conversations (in id order) before any other
   * write; the member user rows are bumped in id order at the end (flush). Each request is
   * decided in order against in-memory state (seq, inboxSeq and version offsets, member
   * lists); effects write their group/member rows at once; messages, pointers and entries
   * are written by the flush. Statements that do not depend on each other's results are
   * issued together (PostgreSQL pipelines them on the transaction's connection).
   */
  private async appendTx(tx: Queryable, batch: AppendRequest[], fast = false, onPointers?: (rows: PointerRow[]) => void): Promise<AppendOutcome[]> {
    // 1. Lock the conversations in id order. Then create the missing direct conversations and
    //    the conversations of group creations (in id order): a concurrent creator makes us wait
    //    for its commit, after which ON CONFLICT does nothing, and they are locked in turn. A
    //    group conversation whose creation is refused is deleted again below.
    const convIds = [...new Set(batch.map((r) => r.conv))].sort(byId);
    // PostgreSQL: the reads of steps 2–4 go in the same pipeline as the lock (each statement
    // starts after the one before it, so they read what committed before the lock was granted):
    // the conversation rows are then held for one round trip to this node, not four.
    warm(tx, APPEND_NOOPS);
    // Fast path (PostgreSQL, plain posts): the same reads, without the lock (see appendPostgresOrLocked).
    const locking = fast ? readConvs(tx, convIds) : lockConvs(tx, convIds);
    const early = tx.dialect === 'postgres' ? prefetch(tx, batch, convIds) : null;
    early?.catch(() => {}); // awaited below, or dropped when conversations are created
    // The lock and the reads leave together now, not at the end of the node's turn (db/dialect.ts).
    if (early) tx.run(PIPELINE_FLUSH).catch(() => {});
    let convRows = await locking;
    let toCreate = conversationsToCreate(batch, convRows);
    let relocked = false;
    if (fast && toCreate.size > 0) {
      // A conversation to create (a first direct message): the locking path, in this transaction.
      fast = false;
      relocked = true;
      convRows = await lockConvs(tx, convIds);
      toCreate = conversationsToCreate(batch, convRows);
    }
    const pending = new Set<string>();
    if (toCreate.size > 0) {
      const ids = [...toCreate.keys()].sort(byId);
      const created = await Promise.all(
        ids.map((id) => tx.get<{ id: string }>('INSERT INTO conversations (id, kind, last_seq, created_at) VALUES (?, ?, 0, ?) ON CONFLICT (id) DO NOTHING RETURNING id', [id, toCreate.get(id)!.kind, toCreate.get(id)!.time])),
      );
      const joins: Promise<number>[] = [];
      for (const row of created) {
        if (!row) continue;
        const c = toCreate.get(row.id)!;
        if (c.kind !== 'direct') {
          pending.add(row.id);
          continue;
        }
        for (const m of new Set(c.members)) joins.push(tx.run('INSERT INTO members (conv_id, user_id, joined_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING', [row.id, m, c.time]));
      }
      await Promise.all(joins);
      convRows.push(...(await lockConvs(tx, ids)));
    }

    // 2. Read the groups and, for direct chats and normal groups, their active members.
    //    Super groups' member lists are never loaded.
    const convs = new Map<string, ConvState>();
    for (const c of convRows) {
      const lastSeq = Number(c.last_seq);
      const epoch = Number(c.member_epoch);
      const effectSeq = Number(c.effect_seq ?? 0);
      convs.set(c.id, { id: c.id, kind: c.kind, lastSeq, startSeq: lastSeq, epoch, startEpoch: epoch, effectSeq, startEffectSeq: effectSeq, group: null, members: null, cache: new Map(), pending: pending.has(c.id) });
    }
    // This array and `abandoned` below are built by loops, not filter().map(): V8's inlined
    // map() makes a holey array where the builtin made a packed one, so the optimized append
    // deoptimized ("wrong map") at its first run, and was compiled again (issue 23).
    const groupIds: string[] = [];
    for (const c of convs.values()) if (c.kind !== 'direct' && !c.pending) groupIds.push(c.id);
    // SQLite: a direct chat whose members an earlier append read needs no read (directMembers).
    const known = tx.dialect === 'sqlite' ? this.directMembers : null;
    const listed: ConvState[] = [];
    for (const c of convs.values()) {
      if (c.kind === 'super' || c.pending) continue;
      const cached = c.kind === 'direct' ? known?.get(c.id) : undefined;
      if (cached) c.members = cached;
      else {
        c.members = new Map();
        listed.push(c);
      }
    }
    // The prefetched reads hold for conversations that existed at the lock (none created here).
    // (Read before the lock when the fast path found a conversation to create: read again.)
    const pre = early && toCreate.size === 0 && !relocked ? await early : null;
    const gl = inList(tx, groupIds);
    const ml = inList(tx, listed.map((c) => c.id));
    const [groupRows, memberRows] = pre
      ? [pre.groups, pre.members]
      : await Promise.all([
          groupIds.length > 0 ? tx.all<GroupRow>(`${GROUP_SELECT} WHERE g.conv_id IN ${gl.sql}`, gl.params) : [],
          listed.length > 0 ? tx.all<MemberRow>(`SELECT * FROM members WHERE conv_id IN ${ml.sql} AND left_seq IS NULL ORDER BY conv_id, user_id`, ml.params) : [],
        ]);
    for (const g of groupRows) convs.get(g.conv_id)!.group = groupFromRow(g);
    for (const m of memberRows) convs.get(m.conv_id)!.members!.set(m.user_id, memberFromRow(m));
    if (known) {
      // Only conversations that existed before this transaction (one created here may still roll back).
      for (const c of listed) {
        if (c.kind !== 'direct' || toCreate.has(c.id) || c.members!.size === 0) continue;
        if (known.size >= DIRECT_MEMBERS_CAP) known.clear();
        known.set(c.id, c.members!);
      }
    }
    // Member rows that requests into super groups will look at: senders, targets, mentioned.
    const wanted: Promise<void>[] = [];
    for (const r of batch) {
      const c = convs.get(r.conv);
      if (!c || c.kind !== 'super' || c.pending) continue;
      const users = new Set([r.sender, ...(r.effect ? effectTargets(r.effect) : []), ...(Array.isArray(r.mentions) ? r.mentions : [])]);
      for (const u of users) {
        if (c.cache.has(u)) continue;
        c.cache.set(u, null);
        wanted.push(
          tx.get<MemberRow>('SELECT * FROM members WHERE conv_id = ? AND user_id = ? AND left_seq IS NULL', [c.id, u]).then((m) => {
            if (m) c.cache.set(u, memberFromRow(m));
          }),
        );
      }
    }

    // 3. Messages already stored for these (sender, clientMsgId) pairs. Read after the
    //    conversation locks, so a concurrent retry into the same conversation is seen here;
    //    any other race ends in a messages_idem violation and a retry of the transaction.
    const idemKey = (sender: string, cid: string) => `${sender}\u0000${cid}`;
    const existing = new Map<string, MessageRow>();
    const seen = new Set<string>();
    if (pre) for (const row of pre.existing) existing.set(idemKey(row.sender_id, row.client_msg_id), row);
    // SQLite: one statement per up to 512 requests (sqliteExisting), not one per request: a
    // statement and a promise each cost ~2.5 µs per message of CPU, ~0.8 µs so (a micro-benchmark).
    const oneRead = !pre && tx.dialect === 'sqlite';
    if (oneRead) {
      const pairs: [string, string][] = [];
      for (const r of batch) {
        const key = idemKey(r.sender, r.clientMsgId);
        if (seen.has(key)) continue;
        seen.add(key);
        pairs.push([r.sender, r.clientMsgId]);
      }
      for (const read of sqliteExisting(tx, pairs)) {
        wanted.push(
          read.then((rows) => {
            for (const row of rows) existing.set(idemKey(row.sender_id, row.client_msg_id), row);
          }),
        );
      }
    }
    for (const r of pre || oneRead ? [] : batch) {
      const key = idemKey(r.sender, r.clientMsgId);
      if (seen.has(key)) continue;
      seen.add(key);
      wanted.push(
        tx.get<MessageRow>('SELECT * FROM messages WHERE sender_id = ? AND client_msg_id = ?', [r.sender, r.clientMsgId]).then((row) => {
          if (row) existing.set(key, row);
        }),
      );
    }
    await Promise.all(wanted);

    // 4. Every user whose inbox or entry any request may move (over-approximated), and of
    //    them those that exist (rows are never deleted). No lock yet: inboxSeq and versions
    //    are assigned as offsets from 1 and become absolute in flush, which bumps the user rows.
    const userIds = new Set<string>();
    for (const r of batch) {
      if (existing.has(idemKey(r.sender, r.clientMsgId))) continue;
      const c = convs.get(r.conv);
      if (!c) continue;
      userIds.add(r.sender);
      if (c.members) for (const m of c.members.keys()) userIds.add(m);
      const e = r.effect;
      if (e?.op === 'create') for (const u of e.members) userIds.add(u);
      if (e?.op === 'add' || e?.op === 'remove') for (const u of e.users) userIds.add(u);
    }
    const users = new Map<string, UserState>();
    if (userIds.size > 0) {
      const ul = inList(tx, [...userIds]);
      // SQLite: conv_version too, exact under its one writer (AppendWriter.flush writes absolute values from it).
      const rows: { id: string; inbox_seq: number | string; conv_version?: number | string }[] = pre
        ? pre.users.filter((u) => userIds.has(u.id))
        : await tx.all<{ id: string; inbox_seq: number | string; conv_version?: number | string }>(`SELECT id, inbox_seq${tx.dialect === 'sqlite' ? ', conv_version' : ''} FROM users WHERE id IN ${ul.sql}`, ul.params);
      for (const u of rows) users.set(u.id, { inboxSeq: 0, version: 0, seen: Number(u.inbox_seq), ...(u.conv_version !== undefined ? { seenVersion: Number(u.conv_version) } : {}) });
    }

    // 5. Decide each request in order; assign seq (the conversation rows are locked) and
    //    inboxSeq/version offsets in memory.
    // PostgreSQL writes the search documents in this transaction; SQLite defers them (SearchIndexer).
    const w = new AppendWriter(users, tx.dialect === 'postgres' ? this.searchText : undefined);
    const outcomes: AppendOutcome[] = [];
    const firstInBatch = new Map<string, number>();
    for (let i = 0; i < batch.length; i++) {
      const r = batch[i]!;
      const key = idemKey(r.sender, r.clientMsgId);
      const row = existing.get(key);
      if (row) {
        const own = Number(row.sender_inbox_seq);
        outcomes.push({ ok: true, duplicate: true, message: messageFromRow(row), pointers: own > 0 ? [{ userId: row.sender_id, inboxSeq: own }] : [] });
        continue;
      }
      const first = firstInBatch.get(key);
      if (first !== undefined) {
        const o = outcomes[first] as Extract<AppendOutcome, { ok: true }>;
        const own = o.pointers.find((p) => p.userId === r.sender);
        outcomes.push({ ok: true, duplicate: true, message: o.message, pointers: own ? [own] : [] });
        continue;
      }
      const c = convs.get(r.conv);
      const out: AppendOutcome = c
        ? await this.decide(tx, w, c, r)
        : r.effect
          ? { ok: false, error: 'not_found', reason: 'no such group' }
          : { ok: false, error: r.directMembers ? 'forbidden' : 'not_found' };
      if (out.ok && c) {
        firstInBatch.set(key, i);
        const e = out.effect;
        if (e && (e.joined.length > 0 || e.left.length > 0 || e.becameSuper)) c.epoch = out.message.seq;
        if (e) c.effectSeq = out.message.seq;
        if (c.kind === 'super') out.epoch = c.epoch;
      }
      outcomes.push(out);
    }

    // 6. Write.
    const abandoned: string[] = [];
    for (const c of convs.values()) if (c.pending) abandoned.push(c.id);
    if (abandoned.length > 0) {
      const al = inList(tx, abandoned);
      await tx.run(`DELETE FROM conversations WHERE id IN ${al.sql}`, al.params);
    }
    await w.flush(tx, this.ring, convs, fast);
    onPointers?.(w.pointerRows);
    return outcomes;
  }

  /** Decide one new request against the locked conversation `c`, applying its effect. */
  private async decide(tx: Queryable, w: AppendWriter, c: ConvState, r: AppendRequest): Promise<AppendOutcome> {
    const effect = r.effect;
    if (effect?.op === 'create') {
      if (!c.pending) {
        return c.group ? refusal(checkEffect(effect, c.group, r.sender, null, new Map(), r.time)) : { ok: false, error: 'invalid', reason: 'conversation exists' };
      }
      const denied = checkEffect(effect, null, r.sender, null, new Map(), r.time);
      if (denied) return { ok: false, ...denied };
      return this.createGroup(tx, w, c, r, effect);
    }
    if (c.pending) return { ok: false, error: 'not_found', reason: 'no such group' };
    if (c.kind === 'direct') {
      if (effect) return refusal(checkEffect(effect, null, r.sender, null, new Map(), r.time));
      if (!c.members?.has(r.sender)) return { ok: false, error: 'forbidden' };
      return w.post(c, r, await this.mentioned(tx, c, r));
    }
    const group = c.group;
    if (!group) return { ok: false, error: 'not_found', reason: 'no such group' };
    const actor = await this.memberOf(tx, c, r.sender);
    if (!effect) {
      const denied = checkPost(group, actor, r.time);
      if (denied) return { ok: false, ...denied };
      return w.post(c, r, await this.mentioned(tx, c, r));
    }
    const targets = new Map<string, MemberRecord>();
    for (const u of effectTargets(effect)) {
      const m = await this.memberOf(tx, c, u);
      if (m) targets.set(u, m);
    }
    const denied = checkEffect(effect, group, r.sender, actor, targets, r.time);
    if (denied) return { ok: false, ...denied };
    return this.applyEffect(tx, w, c, group, r, effect, targets);
  }

  private async memberOf(tx: Queryable, c: ConvState, userId: string): Promise<MemberRecord | null> {
    if (c.members) return c.members.get(userId) ?? null;
    const hit = c.cache.get(userId);
    if (hit !== undefined) return hit;
    const row = await tx.get<MemberRow>('SELECT * FROM members WHERE conv_id = ? AND user_id = ? AND left_seq IS NULL', [c.id, userId]);
    const m = row ? memberFromRow(row) : null;
    c.cache.set(userId, m);
    return m;
  }

  private setMember(c: ConvState, m: MemberRecord): void {
    if (c.members) c.members.set(m.userId, m);
    else c.cache.set(m.userId, m);
  }

  private dropMember(c: ConvState, userId: string): void {
    if (c.members) c.members.delete(userId);
    else c.cache.set(userId, null);
  }

  /** Explicitly mentioned active members other than the sender. */
  private async mentioned(tx: Queryable, c: ConvState, r: AppendRequest): Promise<Set<string>> {
    const out = new Set<string>();
    if (!Array.isArray(r.mentions)) return out;
    for (const u of r.mentions) if (u !== r.sender && !out.has(u) && (await this.memberOf(tx, c, u))) out.add(u);
    return out;
  }

  private async createGroup(tx: Queryable, w: AppendWriter, c: ConvState, r: AppendRequest, effect: Extract<GroupEffect, { op: 'create' }>): Promise<AppendOutcome> {
    const members = [...new Set([r.sender, ...effect.members])];
    const kind = members.length > effect.group.superThreshold ? 'super' : 'group';
    if (kind !== c.kind) await tx.run('UPDATE conversations SET kind = ? WHERE id = ?', [kind, c.id]);
    const g = effect.group;
    await tx.run(
      `INSERT INTO groups (conv_id, name, avatar, announcement, owner, join_policy, invite_needs_approval, mute_all, dismissed, member_count, max_members, created_at, history_visibility)
       VALUES (?, ?, ?, '', ?, ?, ?, 0, 0, ?, ?, ?, ?)`,
      [c.id, g.name, g.avatar, r.sender, g.joinPolicy, g.inviteNeedsApproval ? 1 : 0, members.length, g.maxMembers, r.time, g.historyVisibility],
    );
    c.pending = false;
    c.kind = kind;
    c.members = kind === 'super' ? null : new Map();
    c.group = {
      conv: c.id,
      kind,
      name: g.name,
      avatar: g.avatar,
      announcement: '',
      owner: r.sender,
      joinPolicy: g.joinPolicy,
      inviteNeedsApproval: g.inviteNeedsApproval,
      muteAll: false,
      historyVisibility: g.historyVisibility,
      dismissed: false,
      memberCount: members.length,
      maxMembers: g.maxMembers,
      lastSeq: 0,
      createdAt: r.time,
    };
    const seq = ++c.lastSeq;
    await this.join(tx, w, c, members, (u) => (u === r.sender ? 'owner' : 'member'), seq, r.time);
    const { message, pointers } = w.fanOut(c, r, seq, await this.mentioned(tx, c, r));
    return { ok: true, duplicate: false, message, pointers, effect: { joined: members, left: [], kind, becameSuper: false } };
  }

  /** (Re)activate members at `seq`; their entries start just before it. */
  private async join(tx: Queryable, w: AppendWriter, c: ConvState, userIds: string[], role: (u: string) => GroupRole, seq: number, time: number): Promise<void> {
    if (userIds.length === 0) return;
    const roles = userIds.map(role);
    await Promise.all(
      userIds.map((u, i) =>
        tx.run(
          `INSERT INTO members (conv_id, user_id, joined_at, role, muted_until, joined_seq, left_seq) VALUES (?, ?, ?, ?, 0, ?, NULL)
           ON CONFLICT (conv_id, user_id) DO UPDATE SET
             joined_at = excluded.joined_at, role = excluded.role, muted_until = 0, joined_seq = excluded.joined_seq, left_seq = NULL`,
          [c.id, u, time, roles[i], seq],
        ),
      ),
    );
    userIds.forEach((u, i) => {
      this.setMember(c, { conv: c.id, userId: u, role: roles[i]!, mutedUntil: 0, joinedAt: time, joinedSeq: seq });
      w.resetEntry(u, c.id, seq - 1);
    });
  }

  private async leave(tx: Queryable, conv: string, seq: number, users: string[] | null): Promise<string[]> {
    if (users === null) return (await tx.all<{ user_id: string }>('UPDATE members SET left_seq = ? WHERE conv_id = ? AND left_seq IS NULL RETURNING user_id', [seq, conv])).map((x) => x.user_id);
    const l = inList(tx, users);
    const rows = await tx.all<{ user_id: string }>(`UPDATE members SET left_seq = ? WHERE conv_id = ? AND user_id IN ${l.sql} AND left_seq IS NULL RETURNING user_id`, [seq, conv, ...l.params]);
    return rows.map((x) => x.user_id);
  }

  private async applyEffect(
    tx: Queryable,
    w: AppendWriter,
    c: ConvState,
    group: GroupRecord,
    r: AppendRequest,
    effect: Exclude<GroupEffect, { op: 'create' }>,
    targets: Map<string, MemberRecord>,
  ): Promise<AppendOutcome> {
    const g = { ...group };
    const result: EffectResult = { joined: [], left: [], kind: c.kind === 'super' ? 'super' : 'group', becameSuper: false };
    const seq = ++c.lastSeq;
    // Before the notice: changes whose subjects receive it.
    switch (effect.op) {
      case 'add': {
        const fresh = [...new Set(effect.users)].filter((u) => !targets.has(u));
        await this.join(tx, w, c, fresh, () => 'member', seq, r.time);
        g.memberCount += fresh.length;
        result.joined = fresh;
        break;
      }
      case 'role':
        await tx.run('UPDATE members SET role = ? WHERE conv_id = ? AND user_id = ?', [effect.role, c.id, effect.user]);
        this.setMember(c, { ...targets.get(effect.user)!, role: effect.role });
        break;
      case 'transfer': {
        await tx.run("UPDATE members SET role = CASE WHEN user_id = ? THEN 'owner' ELSE 'admin' END WHERE conv_id = ? AND user_id IN (?, ?)", [effect.to, c.id, r.sender, effect.to]);
        const actor = await this.memberOf(tx, c, r.sender);
        if (actor) this.setMember(c, { ...actor, role: 'admin' });
        this.setMember(c, { ...targets.get(effect.to)!, role: 'owner' });
        g.owner = effect.to;
        break;
      }
      case 'mute':
        await tx.run('UPDATE members SET muted_until = ? WHERE conv_id = ? AND user_id = ?', [effect.until, c.id, effect.user]);
        this.setMember(c, { ...targets.get(effect.user)!, mutedUntil: effect.until });
        break;
      case 'update': {
        const p = effect.patch;
        if (p.name !== undefined) g.name = p.name;
        if (p.avatar !== undefined) g.avatar = p.avatar;
        if (p.announcement !== undefined) g.announcement = p.announcement;
        if (p.joinPolicy !== undefined) g.joinPolicy = p.joinPolicy;
        if (p.inviteNeedsApproval !== undefined) g.inviteNeedsApproval = p.inviteNeedsApproval;
        if (p.muteAll !== undefined) g.muteAll = p.muteAll;
        if (p.historyVisibility !== undefined) g.historyVisibility = p.historyVisibility;
        break;
      }
      default:
        break;
    }
    const { message, pointers } = w.fanOut(c, r, seq, await this.mentioned(tx, c, r));
    // After the notice: those who leave received it; now they are gone.
    switch (effect.op) {
      case 'remove':
      case 'leave': {
        const leaving = effect.op === 'leave' ? [r.sender] : [...new Set(effect.users)];
        const gone = new Set(await this.leave(tx, c.id, seq, leaving));
        result.left = leaving.filter((u) => gone.has(u));
        for (const u of result.left) {
          this.dropMember(c, u);
          if (c.kind === 'super') w.freezeEntry(u, c.id, seq);
        }
        g.memberCount -= result.left.length;
        break;
      }
      case 'dismiss': {
        result.left = (await this.leave(tx, c.id, seq, null)).sort(byId);
        if (c.members) c.members.clear();
        c.cache.clear();
        g.memberCount = 0;
        g.dismissed = true;
        break;
      }
      case 'add':
        if (c.kind === 'group' && g.memberCount > effect.superThreshold) {
          await tx.run("UPDATE conversations SET kind = 'super' WHERE id = ?", [c.id]);
          c.kind = 'super';
          // From here on the members are looked up one by one, never listed.
          if (c.members) for (const [u, m] of c.members) c.cache.set(u, m);
          c.members = null;
          result.becameSuper = true;
        }
        break;
      default:
        break;
    }
    result.kind = c.kind === 'super' ? 'super' : 'group';
    g.kind = result.kind;
    await tx.run(
      `UPDATE groups SET name = ?, avatar = ?, announcement = ?, owner = ?, join_policy = ?, invite_needs_approval = ?, mute_all = ?, dismissed = ?,
         member_count = ?, history_visibility = ?
       WHERE conv_id = ?`,
      [g.name, g.avatar, g.announcement, g.owner, g.joinPolicy, g.inviteNeedsApproval ? 1 : 0, g.muteAll ? 1 : 0, g.dismissed ? 1 : 0, g.memberCount, g.historyVisibility, c.id],
    );
    c.group = g;
    return { ok: true, duplicate: false, message, pointers, effect: result };
  }

  async inboxState(userId: string): Promise<{ latest: number; ringStart: number }> {
    const row = await this.db.get<{ inbox_seq: number | string }>('SELECT inbox_seq FROM users WHERE id = ?', [userId]);
    const latest = row ? Number(row.inbox_seq) : 0;
    return { latest, ringStart: Math.max(1, latest - this.ring + 1) };
  }

  async readInbox(userId: string, after: number, limit: number): Promise<InboxItem[]> {
    const rows = await this.db.all<MessageRow & { inbox_seq: number | string }>(
      `SELECT i.inbox_seq, m.* FROM inbox i JOIN messages m ON m.conv_id = i.conv_id AND m.seq = i.seq
       WHERE i.user_id = ? AND i.inbox_seq > ? ORDER BY i.inbox_seq LIMIT ?`,
      [userId, after, limit],
    );
    return rows.map((r) => ({ inboxSeq: Number(r.inbox_seq), message: messageFromRow(r, userId) }));
  }

  async inboxPurgedSeq(userId: string): Promise<number> {
    const row = await this.db.getBatched<{ s: number | string }>('SELECT purged_inbox_seq AS s FROM inbox_purge WHERE user_id = ?', [userId]);
    return row ? Number(row.s) : 0;
  }

  async purgedSeq(conv: string): Promise<number> {
    const row = await this.db.getBatched<{ s: number | string }>('SELECT purged_seq AS s FROM conv_purge WHERE conv_id = ?', [conv]);
    return row ? Number(row.s) : 0;
  }

  async messageById(id: string): Promise<Message | null> {
    const row = await this.db.get<MessageRow>('SELECT * FROM messages WHERE id = ?', [id]);
    return row ? messageFromRow(row) : null;
  }

  async readHistory(conv: string, q: { before?: number; after?: number; limit: number; viewer?: string }): Promise<Message[]> {
    const rows =
      q.after !== undefined
        ? await this.db.all<MessageRow>('SELECT * FROM messages WHERE conv_id = ? AND seq > ? ORDER BY seq ASC LIMIT ?', [conv, q.after, q.limit])
        : await this.db.all<MessageRow>('SELECT * FROM messages WHERE conv_id = ? AND seq < ? ORDER BY seq DESC LIMIT ?', [conv, q.before ?? Number.MAX_SAFE_INTEGER, q.limit]);
    return rows.map((r) => messageFromRow(r, q.viewer));
  }

  async getConversation(conv: string): Promise<ConversationRecord | null> {
    const row = await this.db.get<{ id: string; kind: ConversationRecord['kind']; last_seq: number | string; created_at: number | string; member_epoch: number | string }>(
      'SELECT id, kind, last_seq, created_at, member_epoch FROM conversations WHERE id = ?',
      [conv],
    );
    return row ? { id: row.id, kind: row.kind, lastSeq: Number(row.last_seq), createdAt: Number(row.created_at), memberEpoch: Number(row.member_epoch) } : null;
  }

  async isMember(conv: string, userId: string): Promise<boolean> {
    return (await this.db.getBatched(IS_MEMBER_SQL, [conv, userId])) !== undefined;
  }

  isMemberNow(conv: string, userId: string): Promise<boolean> {
    // Not an async function: it runs on every red-packet open (issue 16).
    return this.db.get(IS_MEMBER_SQL, [conv, userId]).then(isRow);
  }

  async members(conv: string): Promise<string[]> {
    return (await this.db.all<{ user_id: string }>('SELECT user_id FROM members WHERE conv_id = ? AND left_seq IS NULL ORDER BY user_id', [conv])).map((r) => r.user_id);
  }

  // --- groups ---

  async getGroup(conv: string): Promise<GroupRecord | null> {
    const row = await this.db.get<GroupRow>(`${GROUP_SELECT} WHERE g.conv_id = ?`, [conv]);
    return row ? groupFromRow(row) : null;
  }

  async getMember(conv: string, userId: string): Promise<MemberRecord | null> {
    const row = await this.db.get<MemberRow>('SELECT * FROM members WHERE conv_id = ? AND user_id = ? AND left_seq IS NULL', [conv, userId]);
    return row ? memberFromRow(row) : null;
  }

  async listMembers(conv: string, after: string, limit: number): Promise<MemberRecord[]> {
    const rows = await this.db.all<MemberRow>('SELECT * FROM members WHERE conv_id = ? AND user_id > ? AND left_seq IS NULL ORDER BY user_id LIMIT ?', [conv, after, limit]);
    return rows.map(memberFromRow);
  }

  async searchGroups(prefix: string, limit: number): Promise<GroupRecord[]> {
    if (prefix === '' || limit <= 0) return [];
    const exact = await this.getGroup(prefix);
    const rows = await this.db.all<GroupRow>(GROUP_SEARCH[this.db.dialect], [prefix, prefix, prefix, prefix, limit]);
    return mergeSearch(exact && !exact.dismissed ? exact : null, rows.map(groupFromRow), limit);
  }

  async superGroupsOf(userId: string): Promise<{ conv: string; lastSeq: number }[]> {
    const rows = await this.db.all<{ conv: string; last_seq: number | string }>(
      `SELECT m.conv_id AS conv, c.last_seq AS last_seq FROM members m JOIN conversations c ON c.id = m.conv_id
       WHERE m.user_id = ? AND m.left_seq IS NULL AND c.kind = 'super' ORDER BY m.conv_id`,
      [userId],
    );
    return rows.map((r) => ({ conv: r.conv, lastSeq: Number(r.last_seq) }));
  }

  async membership(conv: string, userId: string): Promise<{ joinedSeq: number; leftSeq: number | null } | null> {
    const row = await this.db.get<{ joined_seq: number | string; left_seq: number | string | null }>('SELECT joined_seq, left_seq FROM members WHERE conv_id = ? AND user_id = ?', [conv, userId]);
    return row ? { joinedSeq: Number(row.joined_seq), leftSeq: row.left_seq == null ? null : Number(row.left_seq) } : null;
  }

  async formerMemberLimit(conv: string, userId: string): Promise<number | null> {
    return (await this.membership(conv, userId))?.leftSeq ?? null;
  }

  async listJoinRequests(conv: string): Promise<JoinRequestRecord[]> {
    return (await this.db.all<JoinRequestRow>('SELECT * FROM join_requests WHERE conv_id = ? ORDER BY created_at, user_id', [conv])).map(joinRequestFromRow);
  }

  async putJoinRequest(req: JoinRequestRecord): Promise<void> {
    await this.db.run(
      `INSERT INTO join_requests (conv_id, user_id, inviter, message, created_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (conv_id, user_id) DO UPDATE SET inviter = excluded.inviter, message = excluded.message, created_at = excluded.created_at`,
      [req.conv, req.userId, req.inviter, req.message, req.createdAt],
    );
  }

  async takeJoinRequest(conv: string, userId: string): Promise<JoinRequestRecord | null> {
    const row = await this.db.get<JoinRequestRow>('DELETE FROM join_requests WHERE conv_id = ? AND user_id = ? RETURNING *', [conv, userId]);
    return row ? joinRequestFromRow(row) : null;
  }

  // --- conversation list ---

  async conversationChanges(userId: string, since: number, limit: number): Promise<{ version: number; entries: ConvEntry[] }> {
    return this.tx(async (tx) => {
      if (tx.dialect === 'postgres') await tx.run('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY');
      const user = await tx.get<{ conv_version: number | string }>('SELECT conv_version FROM users WHERE id = ?', [userId]);
      const rows = await tx.all<EntryRow>(ENTRY_CHANGES_SQL, [userId, since, limit]);
      return { version: user ? Number(user.conv_version) : 0, entries: rows.map(entryFromRow) };
    });
  }

  async getEntry(userId: string, conv: string): Promise<ConvEntry | null> {
    return entryIn(this.db, userId, conv);
  }

  async touchLastMessage(conv: string, seq: number): Promise<string[]> {
    return this.tx(async (tx) => {
      const rows = await tx.all<{ user_id: string }>(
        `SELECT e.user_id FROM entries e JOIN conversations c ON c.id = e.conv_id
         WHERE e.conv_id = ? AND c.kind <> 'super' AND e.last_seq >= ? AND e.cleared_seq < ?
           AND NOT EXISTS (SELECT 1 FROM messages l WHERE l.conv_id = e.conv_id AND l.seq > ? AND l.seq <= e.last_seq AND l.kind NOT IN ${EVENT_KINDS_SQL})
         ORDER BY e.user_id`,
        [conv, seq, seq, seq],
      );
      const users = rows.map((r) => r.user_id);
      if (users.length === 0) return [];
      // Lock order as in appendMessages: user rows in id order, then the entries.
      await lockUsers(tx, users);
      for (const u of users) {
        const version = await bumpVersion(tx, u);
        if (version !== null) await tx.run('UPDATE entries SET version = ? WHERE user_id = ? AND conv_id = ?', [version, u, conv]);
      }
      return users;
    });
  }

  async markRead(userId: string, conv: string, seq: number): Promise<ConvEntry> {
    return this.tx(async (tx) => {
      // Lock order as in appendMessages: the user row, then the entry.
      if (locksRows(tx.dialect)) await tx.get(`SELECT id FROM users WHERE id = ? FOR UPDATE`, [userId]);
      const e = await entryState(tx, userId, conv);
      if (!e) throw new StoreNotFoundError(`conversation ${conv} for ${userId}`);
      const last = Number(e.eff_last);
      const target = Math.min(seq, last);
      if (target > Number(e.read_seq)) {
        const version = await bumpVersion(tx, userId);
        if (version === null) throw new StoreNotFoundError(`user ${userId}`);
        await tx.run(
          `UPDATE entries SET read_seq = ?, version = ?,
             unread = (SELECT COUNT(*) FROM messages WHERE conv_id = ? AND seq > ? AND seq <= ? AND sender_id <> ? AND kind NOT IN ${EVENT_KINDS_SQL}),
             mentions = (SELECT COUNT(*) FROM message_mentions WHERE user_id = ? AND conv_id = ? AND seq > ? AND seq <= ?)
               + (SELECT COUNT(*) FROM messages WHERE conv_id = ? AND mention_all = 1 AND seq > ? AND seq <= ? AND sender_id <> ? AND kind NOT IN ${EVENT_KINDS_SQL})
           WHERE user_id = ? AND conv_id = ?`,
          [target, version, conv, target, last, userId, userId, conv, target, last, conv, target, last, userId, userId, conv],
        );
      }
      return (await entryIn(tx, userId, conv))!;
    });
  }

  async updateEntry(userId: string, conv: string, patch: EntryPatch): Promise<ConvEntry> {
    return this.tx(async (tx) => {
      const version = await bumpVersion(tx, userId);
      const e = await entryState(tx, userId, conv);
      if (version === null || !e) throw new StoreNotFoundError(`conversation ${conv} for ${userId}`);
      const del = patch.deleted === true;
      await tx.run(
        `UPDATE entries SET pinned = ?, muted = ?, draft = ?, deleted = ?, cleared_seq = ?, read_seq = ?, unread = ?, mentions = ?, version = ?
         WHERE user_id = ? AND conv_id = ?`,
        [
          patch.pinned === undefined ? Number(e.pinned) : patch.pinned ? 1 : 0,
          patch.muted === undefined ? Number(e.muted) : patch.muted ? 1 : 0,
          patch.draft ?? e.draft,
          del ? 1 : Number(e.deleted),
          del ? Number(e.eff_last) : Number(e.cleared_seq),
          del ? Math.max(Number(e.read_seq), Number(e.eff_last)) : Number(e.read_seq),
          del ? 0 : Number(e.unread),
          del ? 0 : Number(e.mentions),
          version,
          userId,
          conv,
        ],
      );
      return (await entryIn(tx, userId, conv))!;
    });
  }

  /**
   * ACK flushes commit without an fsync of their own on SQLite (TransactionOptions.relaxedSync):
   * delivered marks, device cursors and delivered counts are advisory, a lost flush is redone by
   * the device's next cumulative ACK, and the next message commit's fsync covers it anyway. It
   * was a second fsync on the event loop next to every group commit.
   */
  async recordAcks(acks: DeviceAck[]): Promise<AckOutcome> {
    if (acks.length === 0) return { delivered: [], counts: [] };
    if (this.writer) return this.writer.recordAcks(acks);
    if (this.kind !== 'postgres') return this.tx((tx) => writeAcksSqlite(tx, acks, { devices: true, recent: this.recent, ring: this.ring }), ACK_TX);
    // PostgreSQL: one advisory claim per user (store/ack-writer.ts); at most ACK_CLAIMS_PER_FLUSH users per transaction.
    const out: AckOutcome = { delivered: [], counts: [] };
    for (const part of splitAcksByUsers(acks)) {
      const o = await this.tx((tx) => writeAcksPostgres(tx, part), ACK_TX);
      out.delivered.push(...o.delivered);
      out.counts.push(...o.counts);
    }
    return out;
  }

  async markDelivered(userId: string, inboxSeq: number): Promise<DeliveredUpdate[]> {
    if (this.writer) return this.writer.markDelivered(userId, inboxSeq);
    const acks = [{ userId, deviceId: '', inboxSeq }];
    const { delivered } = await this.tx((tx) =>
      this.kind === 'postgres' ? writeAcksPostgres(tx, acks, { devices: false }) : writeAcksSqlite(tx, acks, { devices: false, recent: this.recent, ring: this.ring }),
    );
    return delivered.map(({ conv, seq, sender }) => ({ conv, seq, sender }));
  }
}

const ACK_TX: TransactionOptions = { relaxedSync: true };

type ConvRow = { id: string; kind: ConversationKind; last_seq: number | string; member_epoch: number | string; effect_seq?: number | string };

/**
 * Direct conversations whose member rows an SQLite store keeps (SqlStore.directMembers): ~800
 * bytes each (the Map and two MemberRecords with their strings), so at most ~16 MB.
 */
export const DIRECT_MEMBERS_CAP = 20_000;

/** The batch's conversations that do not exist yet and that a request creates (a group creation, a first direct message). */
function conversationsToCreate(batch: AppendRequest[], convRows: ConvRow[]): Map<string, { kind: 'direct' | 'group' | 'super'; members: string[]; time: number }> {
  const toCreate = new Map<string, { kind: 'direct' | 'group' | 'super'; members: string[]; time: number }>();
  const have = new Set(convRows.map((c) => c.id));
  for (const r of batch) {
    if (toCreate.has(r.conv) || have.has(r.conv)) continue;
    if (r.effect?.op === 'create') {
      const n = new Set([r.sender, ...r.effect.members]).size;
      toCreate.set(r.conv, { kind: n > r.effect.group.superThreshold ? 'super' : 'group', members: [], time: r.time });
    } else if (!r.effect && r.directMembers && r.directMembers.includes(r.sender)) {
      toCreate.set(r.conv, { kind: 'direct', members: r.directMembers, time: r.time });
    }
  }
  return toCreate;
}

/** Most (sender, clientMsgId) pairs one sqliteExisting statement takes. */
const EXISTING_MAX = 512;
const existingTexts = new Map<number, string>();

/**
 * SQLite: messages already stored for these (sender, clientMsgId) pairs, one messages_idem
 * lookup per pair, in statements of up to EXISTING_MAX pairs padded with NULL pairs (which
 * match nothing) to a power of two, so there are at most ~10 prepared texts. Measured cheaper
 * than one json_each statement of the pairs (~0.8 vs ~1.3 µs per pair).
 */
function sqliteExisting(tx: Queryable, pairs: [string, string][]): Promise<MessageRow[]>[] {
  const out: Promise<MessageRow[]>[] = [];
  for (let from = 0; from < pairs.length; from += EXISTING_MAX) {
    const count = Math.min(EXISTING_MAX, pairs.length - from);
    let n = 1;
    while (n < count) n *= 2;
    const params: unknown[] = [];
    for (let k = from; k < from + count; k++) params.push(pairs[k]![0], pairs[k]![1]);
    for (let k = count; k < n; k++) params.push(null, null);
    let sql = existingTexts.get(n);
    if (!sql) {
      sql = `SELECT m.* FROM (VALUES ${Array.from({ length: n }, () => '(?, ?)').join(', ')}) v JOIN messages m ON m.sender_id = v.column1 AND m.client_msg_id = v.column2`;
      existingTexts.set(n, sql);
    }
    out.push(tx.all<MessageRow>(sql, params));
  }
  return out;
}

/** PostgreSQL, the fast path's conversation read: no lock (the write pipeline bumps and checks the row, AppendWriter). */
const READ_CONVS = 'SELECT id, kind, last_seq, member_epoch, effect_seq FROM conversations WHERE id = ANY(?::text[]) ORDER BY id';

function readConvs(tx: Queryable, ids: string[]): Promise<ConvRow[]> {
  return tx.all<ConvRow>(READ_CONVS, [ids]);
}

/** The fast path's write pipeline found its conversation changed since it read it (migration 0020's magpie_stale_append). */
export function isStaleAppend(err: unknown): boolean {
  return (err as { code?: unknown } | null)?.code === 'MG001';
}

const LISTED_MEMBERS = `SELECT m.* FROM members m JOIN conversations c ON c.id = m.conv_id
  WHERE m.conv_id = ANY(?::text[]) AND c.kind <> 'super' AND m.left_seq IS NULL`;
const PREFETCH = {
  groups: `${GROUP_SELECT} WHERE g.conv_id = ANY(?::text[])`,
  members: `${LISTED_MEMBERS} ORDER BY m.conv_id, m.user_id`,
  existing: 'SELECT m.* FROM messages m JOIN unnest(?::text[], ?::text[]) AS x(s, c) ON m.sender_id = x.s AND m.client_msg_id = x.c',
  users: `SELECT id, inbox_seq FROM users WHERE id = ANY(?::text[]) OR id IN (SELECT user_id FROM (${LISTED_MEMBERS}) lm)`,
};

/** Statements of the locked part of an append with no-op parameters, prepared before the lock (db/prepared.ts). */
const APPEND_NOOPS: NoopStatement[] = [
  [READ_CONVS, [[]]],
  [PREFETCH.groups, [[]]],
  [PREFETCH.members, [[]]],
  [PREFETCH.existing, [[], []]],
  [PREFETCH.users, [[], []]],
  ...PG_FLUSH_NOOPS,
];

interface Prefetched {
  groups: GroupRow[];
  /** Active members of the batch's direct chats and normal groups (not super groups). */
  members: MemberRow[];
  /** Messages already stored for the batch's (sender, clientMsgId) pairs. */
  existing: MessageRow[];
  /** id and inbox_seq of the batch's senders and effect users, and of those members. */
  users: { id: string; inbox_seq: number | string }[];
}

/**
 * PostgreSQL: what appendTx reads after the conversation lock, issued right behind it in one
 * pipeline (set-based, one statement each, fixed texts). Holds for conversations that existed
 * when the lock was granted.
 */
function prefetch(tx: Queryable, batch: AppendRequest[], convIds: string[]): Promise<Prefetched> {
  const known = new Set<string>();
  for (const r of batch) {
    known.add(r.sender);
    const e = r.effect;
    if (e?.op === 'create') for (const u of e.members) known.add(u);
    if (e?.op === 'add' || e?.op === 'remove') for (const u of e.users) known.add(u);
  }
  return Promise.all([
    tx.all<GroupRow>(PREFETCH.groups, [convIds]),
    tx.all<MemberRow>(PREFETCH.members, [convIds]),
    tx.all<MessageRow>(PREFETCH.existing, [batch.map((r) => r.sender), batch.map((r) => r.clientMsgId)]),
    tx.all<{ id: string; inbox_seq: number | string }>(PREFETCH.users, [[...known], convIds]),
  ]).then(([groups, members, existing, users]) => ({ groups, members, existing, users }));
}

function lockConvs(tx: Queryable, ids: string[]): Promise<ConvRow[]> {
  const l = inList(tx, ids);
  return tx.all<ConvRow>(`SELECT id, kind, last_seq, member_epoch${tx.dialect === 'postgres' ? ', effect_seq' : ''} FROM conversations WHERE id IN ${l.sql} ORDER BY id${forUpdate(tx.dialect)}`, l.params);
}

async function setDeviceAckIn(db: Queryable, userId: string, deviceId: string, inboxSeq: number): Promise<void> {
  await db.run(
    `INSERT INTO devices (user_id, device_id, acked_inbox_seq) VALUES (?, ?, ?)
     ON CONFLICT (user_id, device_id) DO UPDATE SET acked_inbox_seq = CASE WHEN excluded.acked_inbox_seq > devices.acked_inbox_seq THEN excluded.acked_inbox_seq ELSE devices.acked_inbox_seq END`,
    [userId, deviceId, inboxSeq],
  );
}

/** Lock user rows in id order (PostgreSQL; on SQLite the transaction already excludes other writers). */
async function lockUsers(tx: Queryable, ids: string[]): Promise<Mark[]> {
  const l = inList(tx, [...ids].sort(byId));
  return tx.all<Mark>(`SELECT id, inbox_seq, delivered_inbox_seq FROM users WHERE id IN ${l.sql} ORDER BY id${forUpdate(tx.dialect)}`, l.params);
}

async function bumpVersion(tx: Queryable, userId: string): Promise<number | null> {
  const v = await tx.get<{ conv_version: number | string }>('UPDATE users SET conv_version = conv_version + 1 WHERE id = ? RETURNING conv_version', [userId]);
  return v ? Number(v.conv_version) : null;
}

async function entryIn(db: Queryable, userId: string, conv: string): Promise<ConvEntry | null> {
  const row = await db.get<EntryRow>(ENTRY_ONE_SQL, [userId, conv]);
  return row ? entryFromRow(row) : null;
}

function entryState(tx: Queryable, userId: string, conv: string): Promise<EntryState | undefined> {
  return tx.get<EntryState>(`${ENTRY_STATE_SQL} WHERE e.user_id = ? AND e.conv_id = ?`, [userId, conv]);
}

