import postgres from 'postgres';
import { usernameKey, type ConvEntry, type ConversationKind, type InboxItem, type Message } from '@magpie/protocol';
import {
  StoreConflictError,
  StoreNotFoundError,
  type AppendOutcome,
  type AppendRequest,
  type AckOutcome,
  type ConversationRecord,
  type DeliveredCount,
  type DeliveredUpdate,
  type DeviceAck,
  type EffectResult,
  type EntryPatch,
  type GroupEffect,
  type GroupRecord,
  type GroupRole,
  type InboxPointer,
  type JoinRequestRecord,
  type MemberRecord,
  type NewSession,
  type NewUser,
  type SessionRecord,
  type Store,
  type StoreOptions,
  type UserRecord,
} from './store.ts';
import { ADDED_COLUMNS, ENTRY_STATE_SQL, INDEX_SQL_POSTGRES, SCHEMA_SQL, USERNAME_KEY_INDEX_SQL, addColumnsPostgres, entrySelect, usernameKeyBackfill } from './schema.ts';
import {
  GROUP_SELECT,
  entryFromRow,
  isGroupConv,
  groupFromRow,
  joinRequestFromRow,
  memberFromRow,
  mergeSearch,
  messageFromRow,
  sessionFromRow,
  toMessage,
  userFromRow,
  type EntryRow,
  type GroupRow,
  type JoinRequestRow,
  type MemberRow,
  type MessageRow,
} from './rows.ts';
import { checkEffect, checkPost, effectTargets } from './group-rules.ts';
import { isStoreUnavailable } from '../util/store-unavailable.ts';

export interface PostgresStoreOptions extends StoreOptions {
  /** postgres://user:pass@host:port/db */
  url: string;
  /** Connection pool size (default 10). */
  max?: number;
  /** Seconds an idle connection stays open (0: forever). Default 30. */
  idleTimeoutS?: number;
  /** Schema to keep the tables in (created by migrate()); default: the server's search_path. */
  schema?: string;
  /** How long a transaction retries while the database is unavailable (no connection to be had). Default 2000 ms. */
  unavailableWaitMs?: number;
}

/** BIGINT columns come back as JS numbers (all our values are far below 2^53). */
type Types = { bigint: number };
type Sql = postgres.Sql<Types>;
type Tx = postgres.TransactionSql<Types>;

const ENTRY_CHANGES_SQL = entrySelect('e.user_id = $1 AND e.version > $2', 'ORDER BY e.version LIMIT $3');
const ENTRY_ONE_SQL = entrySelect('e.user_id = $1 AND e.conv_id = $2');

/** serialization_failure, deadlock_detected: retry the whole transaction. */
const RETRYABLE = new Set(['40001', '40P01']);
const MAX_ATTEMPTS = 6;
/** Key of the advisory lock that serializes concurrent migrate() calls of several nodes. */
const MIGRATE_LOCK = 0x6d61677069;
/** The inbox ring is trimmed lazily, whenever a user's inboxSeq crosses a multiple of this. */
const TRIM_EVERY = 64;

interface PgError {
  code?: string;
  constraint_name?: string;
}

type EntryState = {
  read_seq: number;
  last_seq: number;
  unread: number;
  mentions: number;
  pinned: number;
  muted: number;
  draft: string;
  deleted: number;
  cleared_seq: number;
  conv_kind: string;
  eff_last: number;
};

type Mark = { id: string; inbox_seq: number; delivered_inbox_seq: number };

/** A newly acknowledged inbox range (user, from exclusive, to inclusive) whose group messages gain a delivered count. */
type CountRange = [string, number, number];

interface ConvState {
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
interface UserState {
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

/**
 * Store on PostgreSQL (postgres.js). Safe for several server nodes on one database:
 * `appendMessages` takes row locks on the conversations and then on the member users
 * (each in id order), so seq and inboxSeq stay gap-free across concurrent transactions.
 */
export class PostgresStore implements Store {
  readonly kind = 'postgres' as const;
  private readonly sql: Sql;
  private readonly ring: number;
  private readonly schema: string | undefined;
  private closed = false;
  private readonly unavailableWaitMs: number;

  constructor(opts: PostgresStoreOptions) {
    if (opts.schema !== undefined && !/^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(opts.schema)) {
      throw new Error(`invalid schema name: ${opts.schema}`);
    }
    this.ring = opts.ringCapacity;
    this.unavailableWaitMs = opts.unavailableWaitMs ?? 2000;
    this.schema = opts.schema;
    this.sql = postgres(opts.url, {
      max: opts.max ?? 10,
      // Idle connections are closed (the pool reopens on demand): a quiet node holds few.
      idle_timeout: opts.idleTimeoutS ?? 30,
      onnotice: () => {},
      types: {
        bigint: { to: 20, from: [20], serialize: (v: number) => String(v), parse: (v: string) => Number(v) },
      },
      ...(opts.schema ? { connection: { search_path: opts.schema } } : {}),
    });
  }

  async migrate(): Promise<void> {
    await this.sql.begin(async (tx) => {
      await tx`SELECT pg_advisory_xact_lock(${MIGRATE_LOCK}::bigint)`;
      if (this.schema) await tx`CREATE SCHEMA IF NOT EXISTS ${tx(this.schema)}`;
      await tx.unsafe(SCHEMA_SQL).simple();
      // Add only the missing columns: ALTER TABLE locks the table even when there is nothing to do.
      const have = await tx<{ t: string; c: string }[]>`
        SELECT table_name AS t, column_name AS c FROM information_schema.columns WHERE table_schema = current_schema()`;
      const missing = ADDED_COLUMNS.filter((x) => !have.some((h) => h.t === x.table && h.c === x.column));
      if (missing.length > 0) await tx.unsafe(addColumnsPostgres(missing)).simple();
      const pending = await tx<{ id: string; username: string }[]>`SELECT id, username FROM users WHERE username_key IS NULL ORDER BY created_at, id`;
      if (pending.length > 0) {
        const taken = await tx<{ k: string }[]>`SELECT username_key AS k FROM users WHERE username_key IS NOT NULL`;
        const keys = usernameKeyBackfill(pending, taken.map((r) => r.k));
        await tx`UPDATE users SET username_key = x.k FROM unnest(${keys.map((k) => k.id)}::text[], ${keys.map((k) => k.key)}::text[]) AS x(id, k) WHERE users.id = x.id`;
      }
      await tx.unsafe(USERNAME_KEY_INDEX_SQL).simple();
      await tx.unsafe(INDEX_SQL_POSTGRES).simple();
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.sql.end({ timeout: 5 });
  }

  /**
   * Run `fn` in a transaction; retry it on serialization failures, deadlocks and idempotency
   * races, and — for up to unavailableWaitMs — while no connection can be had (the pool's
   * budget exceeds what the database grants, or it restarts).
   */
  private async tx<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    const started = Date.now();
    for (let attempt = 1; ; attempt++) {
      try {
        return (await this.sql.begin(fn)) as T;
      } catch (err) {
        const e = err as PgError;
        if (isStoreUnavailable(err) && !this.closed && Date.now() - started < this.unavailableWaitMs) {
          await new Promise((r) => setTimeout(r, 25 + Math.random() * 50 * Math.min(attempt, 8)));
          continue;
        }
        const retry =
          (e.code !== undefined && RETRYABLE.has(e.code)) || (e.code === '23505' && e.constraint_name === 'messages_idem');
        if (!retry || attempt >= MAX_ATTEMPTS || this.closed) throw err;
        await new Promise((r) => setTimeout(r, Math.random() * 5 * attempt));
      }
    }
  }

  // --- accounts ---

  async createUser(user: NewUser): Promise<UserRecord> {
    try {
      await this.sql`
        INSERT INTO users (id, username, username_key, password_hash, nickname, created_at)
        VALUES (${user.id}, ${user.username}, ${usernameKey(user.username)}, ${user.passwordHash}, ${user.nickname}, ${user.createdAt})`;
    } catch (err) {
      if ((err as PgError).code === '23505') throw new StoreConflictError(`user ${user.username}`);
      throw err;
    }
    return { ...user, inboxSeq: 0, disabledAt: null, deletedAt: null };
  }

  async getUser(id: string): Promise<UserRecord | null> {
    const [row] = await this.sql`SELECT * FROM users WHERE id = ${id}`;
    return row ? userFromRow(row) : null;
  }

  async getUserByUsername(username: string): Promise<UserRecord | null> {
    const [row] = await this.sql`
      SELECT * FROM users WHERE username_key = ${usernameKey(username)} OR username = ${username}
      ORDER BY (username = ${username}) DESC LIMIT 1`;
    return row ? userFromRow(row) : null;
  }

  async setPasswordHash(userId: string, passwordHash: string): Promise<boolean> {
    const r = await this.sql`UPDATE users SET password_hash = ${passwordHash} WHERE id = ${userId} AND deleted_at IS NULL`;
    return r.count > 0;
  }

  async setUserDisabled(userId: string, at: number | null): Promise<UserRecord | null> {
    const [row] = await this.sql`UPDATE users SET disabled_at = ${at} WHERE id = ${userId} RETURNING *`;
    return row ? userFromRow(row) : null;
  }

  async markUserDeleted(userId: string, at: number, tombstoneNickname: string): Promise<UserRecord | null> {
    const [row] = await this.sql`
      UPDATE users SET deleted_at = ${at}, password_hash = '', nickname = ${tombstoneNickname}
      WHERE id = ${userId} AND deleted_at IS NULL RETURNING *`;
    return row ? userFromRow(row) : null;
  }

  async existingUsers(ids: string[]): Promise<Set<string>> {
    if (ids.length === 0) return new Set();
    const rows = await this.sql<{ id: string }[]>`SELECT id FROM users WHERE id = ANY(${ids}::text[]) AND deleted_at IS NULL`;
    return new Set(rows.map((r) => r.id));
  }

  // --- sessions ---

  async createSession(s: NewSession): Promise<void> {
    await this.sql`
      INSERT INTO sessions (token_hash, user_id, device_id, platform, app_version, created_at, expires_at)
      VALUES (${s.tokenHash}, ${s.userId}, ${s.deviceId}, ${s.platform}, ${s.appVersion}, ${s.createdAt}, ${s.expiresAt})`;
  }

  async getSession(tokenHash: string, now: number): Promise<SessionRecord | null> {
    const [row] = await this.sql`
      SELECT * FROM sessions WHERE token_hash = ${tokenHash} AND revoked_at IS NULL AND expires_at > ${now}`;
    return row ? sessionFromRow(row) : null;
  }

  async listSessions(userId: string, now: number): Promise<SessionRecord[]> {
    const rows = await this.sql`
      SELECT * FROM sessions WHERE user_id = ${userId} AND revoked_at IS NULL AND expires_at > ${now}
      ORDER BY created_at, token_hash`;
    return rows.map(sessionFromRow);
  }

  async knownDevice(userId: string, deviceId: string): Promise<boolean> {
    const rows = await this.sql`SELECT 1 FROM sessions WHERE user_id = ${userId} AND device_id = ${deviceId} LIMIT 1`;
    return rows.length > 0;
  }

  async revokeSessions(tokenHashes: string[], now: number): Promise<SessionRecord[]> {
    if (tokenHashes.length === 0) return [];
    const rows = await this.sql`
      UPDATE sessions SET revoked_at = ${now}
      WHERE token_hash = ANY(${tokenHashes}::text[]) AND revoked_at IS NULL AND expires_at > ${now}
      RETURNING *`;
    return rows.map(sessionFromRow);
  }

  async setDeviceAck(userId: string, deviceId: string, inboxSeq: number): Promise<void> {
    await this.setDeviceAckIn(this.sql, userId, deviceId, inboxSeq);
  }

  private async setDeviceAckIn(sql: Sql | Tx, userId: string, deviceId: string, inboxSeq: number): Promise<void> {
    await sql`
      INSERT INTO devices (user_id, device_id, acked_inbox_seq) VALUES (${userId}, ${deviceId}, ${inboxSeq})
      ON CONFLICT (user_id, device_id) DO UPDATE SET acked_inbox_seq = GREATEST(devices.acked_inbox_seq, excluded.acked_inbox_seq)`;
  }

  // --- messages ---

  async appendMessages(batch: AppendRequest[]): Promise<AppendOutcome[]> {
    if (batch.length === 0) return [];
    return this.tx((tx) => this.appendTx(tx, batch));
  }

  /**
   * One transaction for the batch. Locks: the conversations (in id order), then every user
   * whose inbox or entry may move (in id order); both before any other write, so concurrent
   * batches cannot deadlock. Then each request is decided in order against in-memory state
   * (seq, inboxSeq, versions, member lists), effects write their group/member rows at once,
   * and messages, pointers and entries are written in bulk at the end.
   */
  private async appendTx(tx: Tx, batch: AppendRequest[]): Promise<AppendOutcome[]> {
    // 1. Create missing direct conversations, and the conversations of group creations (in id
    //    order). A concurrent creator makes us wait for its commit, after which ON CONFLICT
    //    does nothing. A group conversation whose creation is refused is deleted again below.
    const toCreate = new Map<string, { kind: 'direct' | 'group' | 'super'; members: string[]; time: number }>();
    for (const r of batch) {
      if (toCreate.has(r.conv)) continue;
      if (r.effect?.op === 'create') {
        const n = new Set([r.sender, ...r.effect.members]).size;
        toCreate.set(r.conv, { kind: n > r.effect.group.superThreshold ? 'super' : 'group', members: [], time: r.time });
      } else if (!r.effect && r.directMembers && r.directMembers.includes(r.sender)) {
        toCreate.set(r.conv, { kind: 'direct', members: r.directMembers, time: r.time });
      }
    }
    const pending = new Set<string>();
    if (toCreate.size > 0) {
      const ids = [...toCreate.keys()].sort();
      const created = await tx<{ id: string }[]>`
        INSERT INTO conversations (id, kind, last_seq, created_at)
        SELECT x.id, x.k, 0, x.t FROM unnest(${ids}::text[], ${ids.map((id) => toCreate.get(id)!.kind)}::text[], ${ids.map((id) => toCreate.get(id)!.time)}::bigint[]) AS x(id, k, t)
        ORDER BY x.id
        ON CONFLICT (id) DO NOTHING
        RETURNING id`;
      const mc: string[] = [];
      const mu: string[] = [];
      const mt: number[] = [];
      for (const { id } of created) {
        const c = toCreate.get(id)!;
        if (c.kind !== 'direct') {
          pending.add(id);
          continue;
        }
        for (const m of new Set(c.members)) {
          mc.push(id);
          mu.push(m);
          mt.push(c.time);
        }
      }
      if (mc.length > 0) {
        await tx`
          INSERT INTO members (conv_id, user_id, joined_at)
          SELECT * FROM unnest(${mc}::text[], ${mu}::text[], ${mt}::bigint[])
          ON CONFLICT DO NOTHING`;
      }
    }

    // 2. Lock the conversations in id order; then read their groups and, for direct chats and
    //    normal groups, their active members. Super groups' member lists are never loaded.
    const convIds = [...new Set(batch.map((r) => r.conv))].sort();
    const convRows = await tx<{ id: string; kind: ConversationKind; last_seq: number; member_epoch: number }[]>`
      SELECT id, kind, last_seq, member_epoch FROM conversations WHERE id = ANY(${convIds}::text[]) ORDER BY id FOR UPDATE`;
    const convs = new Map<string, ConvState>();
    for (const c of convRows) {
      const lastSeq = Number(c.last_seq);
      const epoch = Number(c.member_epoch);
      convs.set(c.id, { id: c.id, kind: c.kind, lastSeq, startSeq: lastSeq, epoch, startEpoch: epoch, group: null, members: null, cache: new Map(), pending: pending.has(c.id) });
    }
    const groupIds = [...convs.values()].filter((c) => c.kind !== 'direct' && !c.pending).map((c) => c.id);
    if (groupIds.length > 0) {
      const rows = await tx.unsafe<GroupRow[]>(`${GROUP_SELECT} WHERE g.conv_id = ANY($1::text[])`, [groupIds]);
      for (const g of rows) convs.get(g.conv_id)!.group = groupFromRow(g);
    }
    const listed = [...convs.values()].filter((c) => c.kind !== 'super' && !c.pending);
    for (const c of listed) c.members = new Map();
    if (listed.length > 0) {
      const memberRows = await tx<MemberRow[]>`
        SELECT * FROM members WHERE conv_id = ANY(${listed.map((c) => c.id)}::text[]) AND left_seq IS NULL ORDER BY conv_id, user_id`;
      for (const m of memberRows) convs.get(m.conv_id)!.members!.set(m.user_id, memberFromRow(m));
    }
    // Member rows that requests into super groups will look at: senders, targets, mentioned.
    const wanted = { conv: [] as string[], user: [] as string[] };
    for (const r of batch) {
      const c = convs.get(r.conv);
      if (!c || c.kind !== 'super' || c.pending) continue;
      const users = new Set([r.sender, ...(r.effect ? effectTargets(r.effect) : []), ...(Array.isArray(r.mentions) ? r.mentions : [])]);
      for (const u of users) {
        if (c.cache.has(u)) continue;
        c.cache.set(u, null);
        wanted.conv.push(c.id);
        wanted.user.push(u);
      }
    }
    if (wanted.conv.length > 0) {
      const rows = await tx<MemberRow[]>`
        SELECT m.* FROM members m JOIN unnest(${wanted.conv}::text[], ${wanted.user}::text[]) AS k(c, u) ON m.conv_id = k.c AND m.user_id = k.u
        WHERE m.left_seq IS NULL`;
      for (const m of rows) convs.get(m.conv_id)!.cache.set(m.user_id, memberFromRow(m));
    }

    // 3. Messages already stored for these (sender, clientMsgId) pairs. Read after the
    //    conversation locks, so a concurrent retry into the same conversation is seen here;
    //    any other race ends in a messages_idem violation and a retry of the transaction.
    const idemKey = (sender: string, cid: string) => `${sender}\u0000${cid}`;
    const existing = new Map<string, MessageRow>();
    const existingRows = await tx<MessageRow[]>`
      SELECT m.* FROM messages m
      JOIN unnest(${batch.map((r) => r.sender)}::text[], ${batch.map((r) => r.clientMsgId)}::text[]) AS k(s, c)
        ON m.sender_id = k.s AND m.client_msg_id = k.c`;
    for (const row of existingRows) existing.set(idemKey(row.sender_id, row.client_msg_id), row);

    // 4. Every user whose inbox or entry any request may move (over-approximated).
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

    // 5. The users that exist (rows are never deleted). No lock yet: inboxSeq and versions are
    //    assigned as offsets from 1 and become absolute in flush's last statement, which locks
    //    and bumps the user rows, so member rows are held for one statement, not the transaction.
    const users = new Map<string, UserState>();
    if (userIds.size > 0) {
      const userRows = await tx<{ id: string }[]>`SELECT id FROM users WHERE id = ANY(${[...userIds]}::text[])`;
      for (const u of userRows) users.set(u.id, { inboxSeq: 0, version: 0 });
    }

    // 6. Decide each request in order; assign seq (the conversation rows are locked) and
    //    inboxSeq/version offsets in memory.
    const w = new AppendWriter(users);
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
        if (c.kind === 'super') out.epoch = c.epoch;
      }
      outcomes.push(out);
    }

    // 7. Write in bulk.
    const abandoned = [...convs.values()].filter((c) => c.pending).map((c) => c.id);
    if (abandoned.length > 0) await tx`DELETE FROM conversations WHERE id = ANY(${abandoned}::text[])`;
    await w.flush(tx, this.ring, convs);
    return outcomes;
  }

  /** Decide one new request against the locked conversation `c`, applying its effect. */
  private async decide(tx: Tx, w: AppendWriter, c: ConvState, r: AppendRequest): Promise<AppendOutcome> {
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

  private async memberOf(tx: Tx, c: ConvState, userId: string): Promise<MemberRecord | null> {
    if (c.members) return c.members.get(userId) ?? null;
    const hit = c.cache.get(userId);
    if (hit !== undefined) return hit;
    const [row] = await tx<MemberRow[]>`SELECT * FROM members WHERE conv_id = ${c.id} AND user_id = ${userId} AND left_seq IS NULL`;
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
  private async mentioned(tx: Tx, c: ConvState, r: AppendRequest): Promise<Set<string>> {
    const out = new Set<string>();
    if (!Array.isArray(r.mentions)) return out;
    for (const u of r.mentions) if (u !== r.sender && !out.has(u) && (await this.memberOf(tx, c, u))) out.add(u);
    return out;
  }

  private async createGroup(tx: Tx, w: AppendWriter, c: ConvState, r: AppendRequest, effect: Extract<GroupEffect, { op: 'create' }>): Promise<AppendOutcome> {
    const members = [...new Set([r.sender, ...effect.members])];
    const kind = members.length > effect.group.superThreshold ? 'super' : 'group';
    if (kind !== c.kind) await tx`UPDATE conversations SET kind = ${kind} WHERE id = ${c.id}`;
    await tx`
      INSERT INTO groups (conv_id, name, avatar, announcement, owner, join_policy, invite_needs_approval, mute_all, dismissed, member_count, max_members, created_at, history_visibility)
      VALUES (${c.id}, ${effect.group.name}, ${effect.group.avatar}, '', ${r.sender}, ${effect.group.joinPolicy}, ${effect.group.inviteNeedsApproval ? 1 : 0},
              0, 0, ${members.length}, ${effect.group.maxMembers}, ${r.time}, ${effect.group.historyVisibility})`;
    c.pending = false;
    c.kind = kind;
    c.members = kind === 'super' ? null : new Map();
    c.group = {
      conv: c.id,
      kind,
      name: effect.group.name,
      avatar: effect.group.avatar,
      announcement: '',
      owner: r.sender,
      joinPolicy: effect.group.joinPolicy,
      inviteNeedsApproval: effect.group.inviteNeedsApproval,
      muteAll: false,
      historyVisibility: effect.group.historyVisibility,
      dismissed: false,
      memberCount: members.length,
      maxMembers: effect.group.maxMembers,
      lastSeq: 0,
      createdAt: r.time,
    };
    const seq = ++c.lastSeq;
    await this.join(tx, w, c, members, (u) => (u === r.sender ? 'owner' : 'member'), seq, r.time);
    const { message, pointers } = w.fanOut(c, r, seq, await this.mentioned(tx, c, r));
    return { ok: true, duplicate: false, message, pointers, effect: { joined: members, left: [], kind, becameSuper: false } };
  }

  /** (Re)activate members at `seq`; their entries start just before it. */
  private async join(tx: Tx, w: AppendWriter, c: ConvState, userIds: string[], role: (u: string) => GroupRole, seq: number, time: number): Promise<void> {
    if (userIds.length === 0) return;
    const roles = userIds.map(role);
    await tx`
      INSERT INTO members (conv_id, user_id, joined_at, role, muted_until, joined_seq, left_seq)
      SELECT ${c.id}, x.u, ${time}, x.r, 0, ${seq}, NULL FROM unnest(${userIds}::text[], ${roles}::text[]) AS x(u, r)
      ON CONFLICT (conv_id, user_id) DO UPDATE SET
        joined_at = excluded.joined_at, role = excluded.role, muted_until = 0, joined_seq = excluded.joined_seq, left_seq = NULL`;
    userIds.forEach((u, i) => {
      this.setMember(c, { conv: c.id, userId: u, role: roles[i]!, mutedUntil: 0, joinedAt: time, joinedSeq: seq });
      w.resetEntry(u, c.id, seq - 1);
    });
  }

  private async applyEffect(
    tx: Tx,
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
        await tx`UPDATE members SET role = ${effect.role} WHERE conv_id = ${c.id} AND user_id = ${effect.user}`;
        this.setMember(c, { ...targets.get(effect.user)!, role: effect.role });
        break;
      case 'transfer': {
        await tx`
          UPDATE members SET role = CASE WHEN user_id = ${effect.to} THEN 'owner' ELSE 'admin' END
          WHERE conv_id = ${c.id} AND user_id IN (${r.sender}, ${effect.to})`;
        const actor = await this.memberOf(tx, c, r.sender);
        if (actor) this.setMember(c, { ...actor, role: 'admin' });
        this.setMember(c, { ...targets.get(effect.to)!, role: 'owner' });
        g.owner = effect.to;
        break;
      }
      case 'mute':
        await tx`UPDATE members SET muted_until = ${effect.until} WHERE conv_id = ${c.id} AND user_id = ${effect.user}`;
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
        const rows = await tx<{ user_id: string }[]>`
          UPDATE members SET left_seq = ${seq} WHERE conv_id = ${c.id} AND user_id = ANY(${leaving}::text[]) AND left_seq IS NULL RETURNING user_id`;
        const gone = new Set(rows.map((x) => x.user_id));
        result.left = leaving.filter((u) => gone.has(u));
        for (const u of result.left) {
          this.dropMember(c, u);
          if (c.kind === 'super') w.freezeEntry(u, c.id, seq);
        }
        g.memberCount -= result.left.length;
        break;
      }
      case 'dismiss': {
        const rows = await tx<{ user_id: string }[]>`
          UPDATE members SET left_seq = ${seq} WHERE conv_id = ${c.id} AND left_seq IS NULL RETURNING user_id`;
        result.left = rows.map((x) => x.user_id).sort();
        if (c.members) c.members.clear();
        c.cache.clear();
        g.memberCount = 0;
        g.dismissed = true;
        break;
      }
      case 'add':
        if (c.kind === 'group' && g.memberCount > effect.superThreshold) {
          await tx`UPDATE conversations SET kind = 'super' WHERE id = ${c.id}`;
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
    await tx`
      UPDATE groups SET name = ${g.name}, avatar = ${g.avatar}, announcement = ${g.announcement}, owner = ${g.owner}, join_policy = ${g.joinPolicy},
        invite_needs_approval = ${g.inviteNeedsApproval ? 1 : 0}, mute_all = ${g.muteAll ? 1 : 0}, dismissed = ${g.dismissed ? 1 : 0},
        member_count = ${g.memberCount}, history_visibility = ${g.historyVisibility}
      WHERE conv_id = ${c.id}`;
    c.group = g;
    return { ok: true, duplicate: false, message, pointers, effect: result };
  }

  async inboxState(userId: string): Promise<{ latest: number; ringStart: number }> {
    const [row] = await this.sql<{ inbox_seq: number }[]>`SELECT inbox_seq FROM users WHERE id = ${userId}`;
    const latest = row ? Number(row.inbox_seq) : 0;
    return { latest, ringStart: Math.max(1, latest - this.ring + 1) };
  }

  async readInbox(userId: string, after: number, limit: number): Promise<InboxItem[]> {
    const rows = await this.sql<(MessageRow & { inbox_seq: number })[]>`
      SELECT i.inbox_seq, m.* FROM inbox i JOIN messages m ON m.conv_id = i.conv_id AND m.seq = i.seq
      WHERE i.user_id = ${userId} AND i.inbox_seq > ${after} ORDER BY i.inbox_seq LIMIT ${limit}`;
    return rows.map((r) => ({ inboxSeq: Number(r.inbox_seq), message: messageFromRow(r, userId) }));
  }

  async readHistory(conv: string, q: { before?: number; after?: number; limit: number; viewer?: string }): Promise<Message[]> {
    const rows =
      q.after !== undefined
        ? await this.sql<MessageRow[]>`SELECT * FROM messages WHERE conv_id = ${conv} AND seq > ${q.after} ORDER BY seq ASC LIMIT ${q.limit}`
        : await this.sql<MessageRow[]>`
            SELECT * FROM messages WHERE conv_id = ${conv} AND seq < ${q.before ?? Number.MAX_SAFE_INTEGER} ORDER BY seq DESC LIMIT ${q.limit}`;
    return rows.map((r) => messageFromRow(r, q.viewer));
  }

  async getConversation(conv: string): Promise<ConversationRecord | null> {
    const [row] = await this.sql<{ id: string; kind: ConversationRecord['kind']; last_seq: number; created_at: number; member_epoch: number }[]>`
      SELECT id, kind, last_seq, created_at, member_epoch FROM conversations WHERE id = ${conv}`;
    return row ? { id: row.id, kind: row.kind, lastSeq: Number(row.last_seq), createdAt: Number(row.created_at), memberEpoch: Number(row.member_epoch) } : null;
  }

  async isMember(conv: string, userId: string): Promise<boolean> {
    const rows = await this.sql`SELECT 1 FROM members WHERE conv_id = ${conv} AND user_id = ${userId} AND left_seq IS NULL`;
    return rows.length > 0;
  }

  async members(conv: string): Promise<string[]> {
    const rows = await this.sql<{ user_id: string }[]>`SELECT user_id FROM members WHERE conv_id = ${conv} AND left_seq IS NULL ORDER BY user_id`;
    return rows.map((r) => r.user_id);
  }

  // --- groups ---

  async getGroup(conv: string): Promise<GroupRecord | null> {
    const [row] = await this.sql.unsafe<GroupRow[]>(`${GROUP_SELECT} WHERE g.conv_id = $1`, [conv]);
    return row ? groupFromRow(row) : null;
  }

  async getMember(conv: string, userId: string): Promise<MemberRecord | null> {
    const [row] = await this.sql<MemberRow[]>`SELECT * FROM members WHERE conv_id = ${conv} AND user_id = ${userId} AND left_seq IS NULL`;
    return row ? memberFromRow(row) : null;
  }

  async listMembers(conv: string, after: string, limit: number): Promise<MemberRecord[]> {
    const rows = await this.sql<MemberRow[]>`
      SELECT * FROM members WHERE conv_id = ${conv} AND user_id > ${after} AND left_seq IS NULL ORDER BY user_id LIMIT ${limit}`;
    return rows.map(memberFromRow);
  }

  async searchGroups(prefix: string, limit: number): Promise<GroupRecord[]> {
    if (prefix === '' || limit <= 0) return [];
    const exact = await this.getGroup(prefix);
    // A range of the groups_name index (text_pattern_ops), in index order.
    const rows = await this.sql.unsafe<GroupRow[]>(
      `${GROUP_SELECT}
       WHERE lower(g.name) ~>=~ lower($1::text) AND lower(g.name) ~<~ (lower($1::text) || chr(1114111))
         AND starts_with(lower(g.name), lower($1::text)) AND g.dismissed = 0
       ORDER BY lower(g.name) USING ~<~, g.conv_id LIMIT $2`,
      [prefix, limit],
    );
    return mergeSearch(exact && !exact.dismissed ? exact : null, rows.map(groupFromRow), limit);
  }

  async superGroupsOf(userId: string): Promise<{ conv: string; lastSeq: number }[]> {
    const rows = await this.sql<{ conv: string; last_seq: number }[]>`
      SELECT m.conv_id AS conv, c.last_seq FROM members m JOIN conversations c ON c.id = m.conv_id
      WHERE m.user_id = ${userId} AND m.left_seq IS NULL AND c.kind = 'super' ORDER BY m.conv_id`;
    return rows.map((r) => ({ conv: r.conv, lastSeq: Number(r.last_seq) }));
  }

  async membership(conv: string, userId: string): Promise<{ joinedSeq: number; leftSeq: number | null } | null> {
    const [row] = await this.sql<{ joined_seq: number; left_seq: number | null }[]>`SELECT joined_seq, left_seq FROM members WHERE conv_id = ${conv} AND user_id = ${userId}`;
    return row ? { joinedSeq: Number(row.joined_seq), leftSeq: row.left_seq == null ? null : Number(row.left_seq) } : null;
  }

  async formerMemberLimit(conv: string, userId: string): Promise<number | null> {
    const [row] = await this.sql<{ left_seq: number | null }[]>`SELECT left_seq FROM members WHERE conv_id = ${conv} AND user_id = ${userId}`;
    return row?.left_seq == null ? null : Number(row.left_seq);
  }

  async listJoinRequests(conv: string): Promise<JoinRequestRecord[]> {
    const rows = await this.sql<JoinRequestRow[]>`SELECT * FROM join_requests WHERE conv_id = ${conv} ORDER BY created_at, user_id`;
    return rows.map(joinRequestFromRow);
  }

  async putJoinRequest(req: JoinRequestRecord): Promise<void> {
    await this.sql`
      INSERT INTO join_requests (conv_id, user_id, inviter, message, created_at)
      VALUES (${req.conv}, ${req.userId}, ${req.inviter}, ${req.message}, ${req.createdAt})
      ON CONFLICT (conv_id, user_id) DO UPDATE SET inviter = excluded.inviter, message = excluded.message, created_at = excluded.created_at`;
  }

  async takeJoinRequest(conv: string, userId: string): Promise<JoinRequestRecord | null> {
    const [row] = await this.sql<JoinRequestRow[]>`DELETE FROM join_requests WHERE conv_id = ${conv} AND user_id = ${userId} RETURNING *`;
    return row ? joinRequestFromRow(row) : null;
  }

  // --- conversation list ---

  async conversationChanges(userId: string, since: number, limit: number): Promise<{ version: number; entries: ConvEntry[] }> {
    return this.tx(async (tx) => {
      await tx`SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY`;
      const [user] = await tx<{ conv_version: number }[]>`SELECT conv_version FROM users WHERE id = ${userId}`;
      const rows = await tx.unsafe<EntryRow[]>(ENTRY_CHANGES_SQL, [userId, since, limit]);
      return { version: user ? Number(user.conv_version) : 0, entries: rows.map(entryFromRow) };
    });
  }

  async getEntry(userId: string, conv: string): Promise<ConvEntry | null> {
    return this.entryIn(this.sql, userId, conv);
  }

  private async entryIn(sql: Sql | Tx, userId: string, conv: string): Promise<ConvEntry | null> {
    const [row] = await sql.unsafe<EntryRow[]>(ENTRY_ONE_SQL, [userId, conv]);
    return row ? entryFromRow(row) : null;
  }

  async markRead(userId: string, conv: string, seq: number): Promise<ConvEntry> {
    return this.tx(async (tx) => {
      // Lock order as in appendMessages: the user row, then the entry.
      await tx`SELECT 1 FROM users WHERE id = ${userId} FOR UPDATE`;
      const e = await this.entryState(tx, userId, conv);
      if (!e) throw new StoreNotFoundError(`conversation ${conv} for ${userId}`);
      const last = Number(e.eff_last);
      const target = Math.min(seq, last);
      if (target > Number(e.read_seq)) {
        const [v] = await tx<{ conv_version: number }[]>`
          UPDATE users SET conv_version = conv_version + 1 WHERE id = ${userId} RETURNING conv_version`;
        if (!v) throw new StoreNotFoundError(`user ${userId}`);
        await tx`
          UPDATE entries SET read_seq = ${target}, version = ${v.conv_version},
            unread = (SELECT COUNT(*) FROM messages WHERE conv_id = ${conv} AND seq > ${target} AND seq <= ${last} AND sender_id <> ${userId}),
            mentions = (SELECT COUNT(*) FROM message_mentions WHERE user_id = ${userId} AND conv_id = ${conv} AND seq > ${target} AND seq <= ${last})
              + (SELECT COUNT(*) FROM messages WHERE conv_id = ${conv} AND mention_all = 1 AND seq > ${target} AND seq <= ${last} AND sender_id <> ${userId})
          WHERE user_id = ${userId} AND conv_id = ${conv}`;
      }
      return (await this.entryIn(tx, userId, conv))!;
    });
  }

  async updateEntry(userId: string, conv: string, patch: EntryPatch): Promise<ConvEntry> {
    return this.tx(async (tx) => {
      const [v] = await tx<{ conv_version: number }[]>`
        UPDATE users SET conv_version = conv_version + 1 WHERE id = ${userId} RETURNING conv_version`;
      const e = await this.entryState(tx, userId, conv);
      if (!v || !e) throw new StoreNotFoundError(`conversation ${conv} for ${userId}`);
      const del = patch.deleted === true;
      await tx`
        UPDATE entries SET
          pinned = ${patch.pinned === undefined ? Number(e.pinned) : patch.pinned ? 1 : 0},
          muted = ${patch.muted === undefined ? Number(e.muted) : patch.muted ? 1 : 0},
          draft = ${patch.draft ?? e.draft},
          deleted = ${del ? 1 : Number(e.deleted)},
          cleared_seq = ${del ? Number(e.eff_last) : Number(e.cleared_seq)},
          read_seq = ${del ? Math.max(Number(e.read_seq), Number(e.eff_last)) : Number(e.read_seq)},
          unread = ${del ? 0 : Number(e.unread)},
          mentions = ${del ? 0 : Number(e.mentions)},
          version = ${v.conv_version}
        WHERE user_id = ${userId} AND conv_id = ${conv}`;
      return (await this.entryIn(tx, userId, conv))!;
    });
  }

  private async entryState(tx: Tx, userId: string, conv: string): Promise<EntryState | undefined> {
    const [e] = await tx.unsafe<EntryState[]>(`${ENTRY_STATE_SQL} WHERE e.user_id = $1 AND e.conv_id = $2`, [userId, conv]);
    return e;
  }

  async recordAcks(acks: DeviceAck[]): Promise<AckOutcome> {
    if (acks.length === 0) return { delivered: [], counts: [] };
    // A consistent order keeps concurrent flushes from locking the same rows crosswise.
    const sorted = [...acks].sort((x, y) => (x.userId < y.userId ? -1 : x.userId > y.userId ? 1 : x.deviceId < y.deviceId ? -1 : x.deviceId > y.deviceId ? 1 : 0));
    return this.tx(async (tx) => {
      // Lock every user this flush may touch (the acknowledging users and the senders of
      // what they acknowledge) at once, in id order, so flushes and sends cannot deadlock.
      const lockIds = new Set<string>();
      const segments = (a: DeviceAck) => a.segments ?? [{ from: 0, to: a.inboxSeq }];
      for (const a of sorted) {
        lockIds.add(a.userId);
        const top = Math.max(0, ...segments(a).map((x) => x.to));
        for (const r of (await this.deliveredCandidates(tx, a.userId, top)).rows) lockIds.add(r.sender);
      }
      await tx`SELECT 1 FROM users WHERE id = ANY(${[...lockIds].sort()}::text[]) ORDER BY id FOR UPDATE`;
      for (const a of sorted) await this.setDeviceAckIn(tx, a.userId, a.deviceId, a.inboxSeq);
      const out: AckOutcome = { delivered: [], counts: [] };
      const ranges: CountRange[] = [];
      for (const a of sorted) {
        for (const seg of segments(a)) {
          // Items the device never obtained (a full sync's gap): the mark moves over them, raising nothing.
          if (seg.from > 0) {
            await tx`UPDATE users SET delivered_inbox_seq = LEAST(${seg.from}, inbox_seq) WHERE id = ${a.userId} AND delivered_inbox_seq < LEAST(${seg.from}, inbox_seq)`;
          }
          for (const u of await this.markDeliveredIn(tx, a.userId, seg.to, ranges)) out.delivered.push({ ...u, by: a.userId });
        }
      }
      out.counts = await this.raiseCounts(tx, ranges);
      return out;
    });
  }

  async markDelivered(userId: string, inboxSeq: number): Promise<DeliveredUpdate[]> {
    return this.tx(async (tx) => {
      const ranges: CountRange[] = [];
      const out = await this.markDeliveredIn(tx, userId, inboxSeq, ranges);
      await this.raiseCounts(tx, ranges);
      return out;
    });
  }

  /**
   * Group delivered counts, set-based: one statement for all the newly acknowledged inbox
   * ranges of a flush. Every other member's non-system group message the ranges' pointers
   * point at gains the number of ranges covering it (distinct users: one user's ranges never
   * overlap); returns the new counts, one row per message. Concurrent flushes raising the same
   * message are serialized by the sender's user row, which recordAcks locks first.
   */
  private async raiseCounts(tx: Tx, ranges: CountRange[]): Promise<DeliveredCount[]> {
    if (ranges.length === 0) return [];
    const rows = await tx<DeliveredCount[]>`
      UPDATE messages m SET delivered_count = m.delivered_count + x.n
      FROM (
        SELECT i.conv_id, i.seq, COUNT(*) AS n
        FROM unnest(${ranges.map((r) => r[0])}::text[], ${ranges.map((r) => r[1])}::bigint[], ${ranges.map((r) => r[2])}::bigint[]) AS r(user_id, lo, hi)
        JOIN inbox i ON i.user_id = r.user_id AND i.inbox_seq > r.lo AND i.inbox_seq <= r.hi
        JOIN messages mm ON mm.conv_id = i.conv_id AND mm.seq = i.seq
        WHERE substr(i.conv_id, 1, 2) = 'g:' AND mm.sender_id <> i.user_id AND mm.kind <> 'system'
        GROUP BY i.conv_id, i.seq
      ) x
      WHERE m.conv_id = x.conv_id AND m.seq = x.seq
      RETURNING m.conv_id AS conv, m.seq AS seq, m.sender_id AS sender, m.delivered_count AS count`;
    return rows.map((c) => ({ conv: c.conv, seq: Number(c.seq), sender: c.sender, count: Number(c.count) }));
  }

  /** Newest seq per (conversation, sender) in the user's unacknowledged inbox range up to `inboxSeq` (no locks). */
  private async deliveredCandidates(tx: Tx, userId: string, inboxSeq: number): Promise<{ from: number; upTo: number; rows: DeliveredUpdate[] }> {
    const [mark] = await tx<Mark[]>`SELECT id, inbox_seq, delivered_inbox_seq FROM users WHERE id = ${userId}`;
    if (!mark) return { from: 0, upTo: 0, rows: [] };
    const upTo = Math.min(inboxSeq, Number(mark.inbox_seq));
    const from = Number(mark.delivered_inbox_seq);
    return { from, upTo, rows: upTo > from ? await this.deliveredRange(tx, userId, from, upTo) : [] };
  }

  private deliveredRange(tx: Tx, userId: string, from: number, upTo: number) {
    return tx<DeliveredUpdate[]>`
      SELECT i.conv_id AS conv, m.sender_id AS sender, MAX(i.seq) AS seq
      FROM inbox i JOIN messages m ON m.conv_id = i.conv_id AND m.seq = i.seq
      WHERE i.user_id = ${userId} AND i.inbox_seq > ${from} AND i.inbox_seq <= ${upTo} AND m.sender_id <> ${userId}
      GROUP BY i.conv_id, m.sender_id ORDER BY i.conv_id, m.sender_id`;
  }

  /**
   * Move the user's delivered mark. When the newly covered inbox range holds other members'
   * group messages, it is appended to `ranges` for the caller's `raiseCounts`; ACKs of direct
   * messages never add one.
   */
  private async markDeliveredIn(tx: Tx, userId: string, inboxSeq: number, ranges: CountRange[]): Promise<DeliveredUpdate[]> {
    const pre = await this.deliveredCandidates(tx, userId, inboxSeq);
    if (pre.upTo <= pre.from) return [];
    // Lock the acknowledging user and the senders together, in id order (as appendMessages
    // does); then re-read the mark under the lock. Rows already locked by this transaction
    // (recordAcks) are re-locked at no cost.
    const lockIds = [...new Set([userId, ...pre.rows.map((r) => r.sender)])].sort();
    const locked = await tx<Mark[]>`
      SELECT id, inbox_seq, delivered_inbox_seq FROM users WHERE id = ANY(${lockIds}::text[]) ORDER BY id FOR UPDATE`;
    const mark = locked.find((r) => r.id === userId);
    if (!mark) return [];
    const upTo = Math.min(inboxSeq, Number(mark.inbox_seq));
    const from = Number(mark.delivered_inbox_seq);
    if (upTo <= from) return [];
    const rows = from === pre.from && upTo === pre.upTo ? pre.rows : await this.deliveredRange(tx, userId, from, upTo);
    await tx`UPDATE users SET delivered_inbox_seq = ${upTo} WHERE id = ${userId}`;
    if (rows.some((r) => isGroupConv(r.conv))) ranges.push([userId, from, upTo]);
    const out: DeliveredUpdate[] = [];
    for (const r of rows) {
      const seq = Number(r.seq);
      const [entry] = await tx<{ delivered_seq: number }[]>`
        SELECT delivered_seq FROM entries WHERE user_id = ${r.sender} AND conv_id = ${r.conv}`;
      if (!entry || Number(entry.delivered_seq) >= seq) continue;
      const [v] = await tx<{ conv_version: number }[]>`
        UPDATE users SET conv_version = conv_version + 1 WHERE id = ${r.sender} RETURNING conv_version`;
      if (!v) continue;
      await tx`
        UPDATE entries SET delivered_seq = ${seq}, version = ${v.conv_version}
        WHERE user_id = ${r.sender} AND conv_id = ${r.conv} AND delivered_seq < ${seq}`;
      out.push({ conv: r.conv, seq, sender: r.sender });
    }
    return out;
  }
}

/** A refusal from checkEffect (never null where it is used). */
function refusal(r: ReturnType<typeof checkEffect>): AppendOutcome {
  return r ? { ok: false, ...r } : { ok: false, error: 'invalid' };
}

/**
 * The writes of one append transaction, collected in memory (seq, inboxSeq and versions are
 * assigned here while the rows are locked) and written in bulk by `flush`.
 */
class AppendWriter {
  private readonly msg = {
    conv: [] as string[],
    seq: [] as number[],
    id: [] as string[],
    sender: [] as string[],
    cid: [] as string[],
    kind: [] as string[],
    body: [] as string[],
    time: [] as number[],
    senderInbox: [] as number[],
    all: [] as number[],
  };
  private readonly inbox = { user: [] as string[], inboxSeq: [] as number[], conv: [] as string[], seq: [] as number[] };
  private readonly mentions = { user: [] as string[], conv: [] as string[], seq: [] as number[] };
  private readonly entries = new Map<string, EntryAgg>();
  /** Every pointer handed out, with an offset inboxSeq until flush makes it absolute. */
  private readonly pointers: InboxPointer[] = [];

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
        this.inbox.user.push(m);
        this.inbox.inboxSeq.push(inboxSeq);
        this.inbox.conv.push(c.id);
        this.inbox.seq.push(seq);
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
    for (const u of mentioned) {
      this.mentions.user.push(u);
      this.mentions.conv.push(c.id);
      this.mentions.seq.push(seq);
    }
    const bodyJson = JSON.stringify(r.body);
    const m = this.msg;
    m.conv.push(c.id);
    m.seq.push(seq);
    m.id.push(r.id);
    m.sender.push(r.sender);
    m.cid.push(r.clientMsgId);
    m.kind.push(r.kind);
    m.body.push(bodyJson);
    m.time.push(r.time);
    m.senderInbox.push(senderInbox);
    m.all.push(all ? 1 : 0);
    return { message: toMessage(r, seq, JSON.parse(bodyJson) as unknown), pointers };
  }

  /**
   * Write the batch in one pipelined round trip ending in COMMIT AND CHAIN (the caller's own
   * COMMIT then closes an empty transaction): the mentions and conversation rows first, then
   * the member user rows are locked in id order and bumped by one statement that also writes
   * the messages, pointers and entries with the absolute inboxSeq/versions it returns. The
   * user rows are thus held for that statement only, never across a client round trip, so
   * appends to groups sharing members (and ACK flushes) no longer queue behind each other's
   * event loops. Pointers in the outcomes are made absolute afterwards.
   */
  async flush(tx: Tx, ring: number, convs: Map<string, ConvState>): Promise<void> {
    const writes: Promise<unknown>[] = [];
    const mm = this.mentions;
    if (mm.user.length > 0) {
      writes.push(tx`
        INSERT INTO message_mentions (user_id, conv_id, seq)
        SELECT * FROM unnest(${mm.user}::text[], ${mm.conv}::text[], ${mm.seq}::bigint[])
        ON CONFLICT DO NOTHING`);
    }
    const movedConvs = [...convs.values()].filter((c) => c.lastSeq > c.startSeq || c.epoch !== c.startEpoch);
    if (movedConvs.length > 0) {
      writes.push(tx`
        UPDATE conversations c SET last_seq = x.s, member_epoch = x.e
        FROM unnest(${movedConvs.map((c) => c.id)}::text[], ${movedConvs.map((c) => c.lastSeq)}::bigint[], ${movedConvs.map((c) => c.epoch)}::bigint[]) AS x(id, s, e)
        WHERE c.id = x.id`);
    }
    const moved = [...this.users.entries()].filter(([, u]) => u.inboxSeq > 0 || u.version > 0).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0));
    const ids = moved.map(([id]) => id);
    if (ids.length > 0) {
      // Lock in id order (the statement below joins in any order), like every other locker of users rows.
      writes.push(tx`SELECT 1 FROM users WHERE id = ANY(${ids}::text[]) ORDER BY id FOR UPDATE`);
    }
    const m = this.msg;
    const ib = this.inbox;
    const all = [...this.entries.values()];
    const resets = all.filter((e) => e.reset);
    const deltas = all.filter((e) => !e.reset);
    const bases = m.conv.length > 0 || ids.length > 0
      ? tx<{ id: string; ib: number }[]>`
      WITH u AS (
        UPDATE users u SET inbox_seq = u.inbox_seq + x.i, conv_version = u.conv_version + x.v
        FROM unnest(${ids}::text[], ${moved.map(([, u]) => u.inboxSeq)}::bigint[], ${moved.map(([, u]) => u.version)}::bigint[]) AS x(id, i, v)
        WHERE u.id = x.id
        RETURNING u.id, u.inbox_seq - x.i AS ib, u.conv_version - x.v AS vb, u.inbox_seq AS top
      ), msg AS (
        INSERT INTO messages (conv_id, seq, id, sender_id, client_msg_id, kind, body, time, sender_inbox_seq, mention_all)
        SELECT x.c, x.s, x.id, x.snd, x.cid, x.k, x.b, x.t, CASE WHEN x.si > 0 THEN u.ib + x.si ELSE 0 END, x.a
        FROM unnest(${m.conv}::text[], ${m.seq}::bigint[], ${m.id}::text[], ${m.sender}::text[], ${m.cid}::text[],
                    ${m.kind}::text[], ${m.body}::text[], ${m.time}::bigint[], ${m.senderInbox}::bigint[], ${m.all}::smallint[])
             AS x(c, s, id, snd, cid, k, b, t, si, a)
        LEFT JOIN u ON u.id = x.snd
      ), pointers AS (
        INSERT INTO inbox (user_id, inbox_seq, conv_id, seq)
        SELECT x.usr, u.ib + x.i, x.c, x.s
        FROM unnest(${ib.user}::text[], ${ib.inboxSeq}::bigint[], ${ib.conv}::text[], ${ib.seq}::bigint[]) AS x(usr, i, c, s)
        JOIN u ON u.id = x.usr
      ), resets AS (
        -- Absolute state: read up to the join (or the own message), counters since then.
        INSERT INTO entries (user_id, conv_id, read_seq, unread, mentions, last_seq, version)
        SELECT x.usr, x.c, x.r, x.n, x.mn, x.l, u.vb + x.v
        FROM unnest(${resets.map((e) => e.user)}::text[], ${resets.map((e) => e.conv)}::text[], ${resets.map((e) => e.ownSeq)}::bigint[],
                    ${resets.map((e) => e.unreadDelta)}::bigint[], ${resets.map((e) => e.mentionDelta)}::bigint[],
                    ${resets.map((e) => e.lastSeq)}::bigint[], ${resets.map((e) => e.version)}::bigint[]) AS x(usr, c, r, n, mn, l, v)
        JOIN u ON u.id = x.usr
        ON CONFLICT (user_id, conv_id) DO UPDATE SET
          read_seq = excluded.read_seq, unread = excluded.unread, mentions = excluded.mentions,
          last_seq = excluded.last_seq, deleted = 0, version = excluded.version
      ), deltas AS (
        -- read_seq carries the own seq (0: none in this batch); unread/mentions the counts since then.
        INSERT INTO entries (user_id, conv_id, read_seq, unread, mentions, last_seq, version)
        SELECT x.usr, x.c, x.r, x.n, x.mn, x.l, u.vb + x.v
        FROM unnest(${deltas.map((e) => e.user)}::text[], ${deltas.map((e) => e.conv)}::text[], ${deltas.map((e) => e.ownSeq)}::bigint[],
                    ${deltas.map((e) => e.unreadDelta)}::bigint[], ${deltas.map((e) => e.mentionDelta)}::bigint[],
                    ${deltas.map((e) => e.lastSeq)}::bigint[], ${deltas.map((e) => e.version)}::bigint[]) AS x(usr, c, r, n, mn, l, v)
        JOIN u ON u.id = x.usr
        ON CONFLICT (user_id, conv_id) DO UPDATE SET
          read_seq = CASE WHEN excluded.read_seq > 0 THEN GREATEST(entries.read_seq, excluded.read_seq) ELSE entries.read_seq END,
          unread = CASE WHEN excluded.read_seq > 0 THEN excluded.unread ELSE entries.unread + excluded.unread END,
          mentions = CASE WHEN excluded.read_seq > 0 THEN excluded.mentions ELSE entries.mentions + excluded.mentions END,
          last_seq = GREATEST(entries.last_seq, excluded.last_seq),
          deleted = 0,
          version = excluded.version
      ), trimmed AS (
        -- The inbox ring: every TRIM_EVERY pointers, drop what fell out of it.
        DELETE FROM inbox i USING u
        WHERE i.user_id = u.id AND u.top > ${ring} AND u.top / ${TRIM_EVERY} > u.ib / ${TRIM_EVERY} AND i.inbox_seq <= u.top - ${ring}
      )
      SELECT id, ib FROM u`
      : Promise.resolve([]);
    writes.push(bases);
    writes.push(tx`COMMIT AND CHAIN`);
    await Promise.all(writes);
    const base = new Map<string, number>();
    for (const r of await bases) base.set(r.id, Number(r.ib));
    for (const p of this.pointers) p.inboxSeq += base.get(p.userId) ?? 0;
  }
}
