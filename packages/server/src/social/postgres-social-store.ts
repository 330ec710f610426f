import postgres from 'postgres';
import { usernameKey, type BlockEntry, type FriendEntry, type FriendRequestEntry, type Profile, type ProfileSummary, type RelationChange, type RelationState } from '@magpie/protocol';
import { planAction, stateOf, type PairState, type PlanWrite, type PlannedChange, type RelationAction } from './relations.ts';
import { SOCIAL_SCHEMA_POSTGRES } from './social-schema.ts';
import { changeFromRow, pairFromRow, profileFromRow, summaryFromRow, trimFloor, type ChangeRow, type EntryRow, type PairRow, type ProfileRow } from './social-rows.ts';
import {
  DEFAULT_CHANGE_LOG_CAPACITY,
  type ApplyOutcome,
  type DirectCheck,
  type ListPage,
  type NickSearchRow,
  type ProfilePatch,
  type SocialStore,
  type UserChange,
} from './social-store.ts';

export interface PostgresSocialStoreOptions {
  url: string;
  /** Schema to use (created by `migrate`); the connection's search_path. Its `users` table must exist. */
  schema?: string;
  max?: number;
  /** Seconds an idle connection stays open (0: forever). Default 30. */
  idleTimeoutS?: number;
  changeLogCapacity?: number;
}

type Sql = postgres.Sql;
type Tx = postgres.TransactionSql;

const RETRYABLE = new Set(['40P01', '40001']); // deadlock detected, serialization failure
const MAX_ATTEMPTS = 8;

/**
 * SocialStore on PostgreSQL (postgres.js). Each action is one READ COMMITTED transaction
 * that first takes a transaction-scoped advisory lock on the pair of users, so actions on
 * the same pair from any number of nodes run one after the other; versions are bumped with
 * row-locking upserts in user-id order (no lock cycles between pairs). Deadlocks and
 * serialization failures rerun the transaction.
 */
export class PostgresSocialStore implements SocialStore {
  readonly kind = 'postgres' as const;
  private readonly sql: Sql;
  private readonly schema: string | undefined;
  private readonly capacity: number;

  constructor(opts: PostgresSocialStoreOptions) {
    if (opts.schema !== undefined && !/^[a-z_][a-z0-9_]{0,62}$/.test(opts.schema)) throw new Error(`bad schema name: ${opts.schema}`);
    this.schema = opts.schema;
    this.capacity = opts.changeLogCapacity ?? DEFAULT_CHANGE_LOG_CAPACITY;
    this.sql = postgres(opts.url, {
      max: opts.max ?? 10,
      // Idle connections are closed (the pool reopens on demand): a quiet node holds few.
      idle_timeout: opts.idleTimeoutS ?? 30,
      onnotice: () => {},
      ...(opts.schema ? { connection: { search_path: opts.schema } } : {}),
      types: { bigint: { to: 20, from: [20], serialize: (x: number) => String(x), parse: (x: string) => Number(x) } },
    });
  }

  async migrate(): Promise<void> {
    await this.sql.begin(async (tx) => {
      await tx`SELECT pg_advisory_xact_lock(hashtext('magpie_social_migrate'))`;
      if (this.schema) await tx.unsafe(`CREATE SCHEMA IF NOT EXISTS "${this.schema}"`);
      await tx.unsafe(SOCIAL_SCHEMA_POSTGRES);
    });
  }

  async close(): Promise<void> {
    await this.sql.end({ timeout: 5 });
  }

  private async tx<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return (await this.sql.begin(fn)) as T;
      } catch (err) {
        const code = (err as { code?: string }).code;
        if (code === undefined || !RETRYABLE.has(code) || attempt >= MAX_ATTEMPTS) throw err;
        await new Promise((r) => setTimeout(r, Math.random() * 5 * attempt));
      }
    }
  }

  async getProfile(userId: string): Promise<Profile | null> {
    const [r] = await this.sql<ProfileRow[]>`
      SELECT u.id, u.username, u.nickname, p.avatar, p.extra FROM users u LEFT JOIN social_profiles p ON p.user_id = u.id WHERE u.id = ${userId}`;
    return r ? profileFromRow(r) : null;
  }

  async updateProfile(userId: string, patch: ProfilePatch, now: number): Promise<Profile | null> {
    return this.tx(async (tx) => {
      const [u] = await tx`SELECT 1 FROM users WHERE id = ${userId} FOR UPDATE`;
      if (!u) return null;
      if (patch.nickname !== undefined) await tx`UPDATE users SET nickname = ${patch.nickname} WHERE id = ${userId}`;
      if (patch.avatar !== undefined || patch.extraJson !== undefined) {
        await tx`
          INSERT INTO social_profiles (user_id, avatar, extra, updated_at) VALUES (${userId}, ${patch.avatar ?? null}, ${patch.extraJson ?? '{}'}, ${now})
          ON CONFLICT (user_id) DO UPDATE SET
            avatar = CASE WHEN ${patch.avatar !== undefined}::boolean THEN excluded.avatar ELSE social_profiles.avatar END,
            extra = CASE WHEN ${patch.extraJson !== undefined}::boolean THEN excluded.extra ELSE social_profiles.extra END,
            updated_at = excluded.updated_at`;
      }
      const [r] = await tx<ProfileRow[]>`
        SELECT u.id, u.username, u.nickname, p.avatar, p.extra FROM users u LEFT JOIN social_profiles p ON p.user_id = u.id WHERE u.id = ${userId}`;
      return profileFromRow(r!);
    });
  }

  async findExact(q: string): Promise<ProfileSummary[]> {
    const rows = await this.sql<ProfileRow[]>`
      SELECT u.id, u.username, u.nickname, p.avatar FROM users u LEFT JOIN social_profiles p ON p.user_id = u.id WHERE u.id = ${q}
      UNION ALL
      SELECT u.id, u.username, u.nickname, p.avatar FROM users u LEFT JOIN social_profiles p ON p.user_id = u.id WHERE (u.username_key = ${usernameKey(q)} OR u.username = ${q}) AND u.id <> ${q}`;
    return rows.map(summaryFromRow);
  }

  async searchNickname(prefix: string, after: { key: string; id: string } | null, limit: number): Promise<NickSearchRow[]> {
    const rows = await this.sql<(ProfileRow & { key: string })[]>`${this.nickQuery(prefix, after, limit)}`;
    return rows.map((r) => ({ ...summaryFromRow(r), key: r.key }));
  }

  private nickQuery(prefix: string, after: { key: string; id: string } | null, limit: number) {
    const sql = this.sql;
    return sql`
      SELECT u.id, u.username, u.nickname, p.avatar, lower(u.nickname) AS key
      FROM users u LEFT JOIN social_profiles p ON p.user_id = u.id
      WHERE lower(u.nickname) ~>=~ ${after ? sql`${after.key}::text` : sql`lower(${prefix}::text)`}
        AND lower(u.nickname) ~<~ (lower(${prefix}::text) || chr(1114111))
        AND starts_with(lower(u.nickname), lower(${prefix}::text))
        ${after ? sql`AND (lower(u.nickname) ~>~ ${after.key}::text OR u.id > ${after.id}::text)` : sql``}
      ORDER BY lower(u.nickname) USING ~<~, u.id
      LIMIT ${limit}`;
  }

  /** The plan of a nickname search with sequential scans disabled (tests assert that the index can serve it). */
  async explainNicknameSearch(): Promise<string> {
    return this.sql.begin(async (tx) => {
      await tx`SET LOCAL enable_seqscan = off`;
      const rows = await tx.unsafe<{ 'QUERY PLAN': string }[]>(
        `EXPLAIN SELECT u.id FROM users u
         WHERE lower(u.nickname) ~>=~ lower('ab') AND lower(u.nickname) ~<~ (lower('ab') || chr(1114111)) AND starts_with(lower(u.nickname), lower('ab'))
         ORDER BY lower(u.nickname) USING ~<~, u.id LIMIT 10`,
      );
      return rows.map((r) => r['QUERY PLAN']).join('\n');
    }) as Promise<string>;
  }

  private async pair(sql: Sql | Tx, a: string, b: string): Promise<PairState> {
    const [r] = await sql<PairRow[]>`
      SELECT
        EXISTS (SELECT 1 FROM users WHERE id = ${b}) AS peer_exists,
        EXISTS (SELECT 1 FROM users WHERE id = ${b} AND deleted_at IS NOT NULL) AS peer_deleted,
        EXISTS (SELECT 1 FROM social_friends WHERE user_id = ${a} AND peer_id = ${b}) AS friends,
        (SELECT greeting FROM social_requests WHERE from_id = ${a} AND to_id = ${b}) AS out_greeting,
        (SELECT greeting FROM social_requests WHERE from_id = ${b} AND to_id = ${a}) AS in_greeting,
        EXISTS (SELECT 1 FROM social_blocks WHERE user_id = ${a} AND peer_id = ${b}) AS blocking,
        EXISTS (SELECT 1 FROM social_blocks WHERE user_id = ${b} AND peer_id = ${a}) AS blocked_by`;
    return pairFromRow(r!);
  }

  async relationOf(userId: string, peer: string): Promise<RelationState> {
    return stateOf(await this.pair(this.sql, userId, peer));
  }

  async directCheck(sender: string, recipient: string): Promise<DirectCheck> {
    const [r] = await this.sql<{ by_recipient: boolean; by_sender: boolean; friends: boolean }[]>`
      SELECT
        EXISTS (SELECT 1 FROM social_blocks WHERE user_id = ${recipient} AND peer_id = ${sender}) AS by_recipient,
        EXISTS (SELECT 1 FROM social_blocks WHERE user_id = ${sender} AND peer_id = ${recipient}) AS by_sender,
        EXISTS (SELECT 1 FROM social_friends WHERE user_id = ${sender} AND peer_id = ${recipient}) AS friends`;
    return { blockedByRecipient: r!.by_recipient, blockedBySender: r!.by_sender, friends: r!.friends };
  }

  async apply(actor: string, peer: string, action: RelationAction, now: number): Promise<ApplyOutcome> {
    const lockKey = actor < peer ? `social:${actor}:${peer}` : `social:${peer}:${actor}`;
    return this.tx(async (tx): Promise<ApplyOutcome> => {
      await tx`SELECT pg_advisory_xact_lock(hashtext(${lockKey}))`;
      const plan = planAction(action, await this.pair(tx, actor, peer));
      if (!plan.ok) return plan;
      for (const w of plan.writes) await this.write(tx, actor, peer, w, now);
      const changes = await this.log(tx, actor, peer, plan.changes, now);
      let version = changes.find((c) => c.userId === actor)?.change.version;
      if (version === undefined) {
        const [v] = await tx<{ version: number }[]>`SELECT version FROM social_versions WHERE user_id = ${actor}`;
        version = Number(v?.version ?? 0);
      }
      return { ok: true, state: plan.state, version, duplicate: plan.duplicate, changes };
    });
  }

  private async write(tx: Tx, a: string, b: string, w: PlanWrite, now: number): Promise<void> {
    switch (w.op) {
      case 'addFriends':
        await tx`INSERT INTO social_friends (user_id, peer_id, since) VALUES (${a}, ${b}, ${now}), (${b}, ${a}, ${now})`;
        return;
      case 'removeFriends':
        await tx`DELETE FROM social_friends WHERE (user_id = ${a} AND peer_id = ${b}) OR (user_id = ${b} AND peer_id = ${a})`;
        return;
      case 'putRequest': {
        const [from, to] = w.from === 'actor' ? [a, b] : [b, a];
        await tx`INSERT INTO social_requests (from_id, to_id, greeting, created_at) VALUES (${from}, ${to}, ${w.greeting}, ${now})`;
        return;
      }
      case 'deleteRequest': {
        const [from, to] = w.from === 'actor' ? [a, b] : [b, a];
        await tx`DELETE FROM social_requests WHERE from_id = ${from} AND to_id = ${to}`;
        return;
      }
      case 'putBlock':
        await tx`INSERT INTO social_blocks (user_id, peer_id, since) VALUES (${a}, ${b}, ${now})`;
        return;
      case 'deleteBlock':
        await tx`DELETE FROM social_blocks WHERE user_id = ${a} AND peer_id = ${b}`;
        return;
    }
  }

  private async log(tx: Tx, actor: string, peer: string, planned: PlannedChange[], now: number): Promise<UserChange[]> {
    const rows = planned.map((c) => ({ userId: c.who === 'actor' ? actor : peer, other: c.who === 'actor' ? peer : actor, c }));
    rows.sort((x, y) => (x.userId < y.userId ? -1 : x.userId > y.userId ? 1 : 0));
    const out: UserChange[] = [];
    for (const { userId, other, c } of rows) {
      const [v] = await tx<{ version: number; floor: number }[]>`
        INSERT INTO social_versions (user_id, version, floor) VALUES (${userId}, 1, 0)
        ON CONFLICT (user_id) DO UPDATE SET version = social_versions.version + 1
        RETURNING version, floor`;
      const version = Number(v!.version);
      await tx`INSERT INTO social_changes (user_id, version, peer_id, kind, state, greeting, at)
               VALUES (${userId}, ${version}, ${other}, ${c.kind}, ${c.state}, ${c.greeting ?? null}, ${now})`;
      const floor = trimFloor(version, Number(v!.floor), this.capacity);
      if (floor !== null) {
        await tx`DELETE FROM social_changes WHERE user_id = ${userId} AND version <= ${floor}`;
        await tx`UPDATE social_versions SET floor = ${floor} WHERE user_id = ${userId}`;
      }
      const change: RelationChange = { version, peer: other, kind: c.kind, state: c.state, time: now };
      if (c.greeting !== undefined) change.greeting = c.greeting;
      out.push({ userId, change });
    }
    return out;
  }

  private async versionOf(sql: Sql | Tx, userId: string): Promise<{ version: number; floor: number }> {
    const [v] = await sql<{ version: number; floor: number }[]>`SELECT version, floor FROM social_versions WHERE user_id = ${userId}`;
    return { version: Number(v?.version ?? 0), floor: Number(v?.floor ?? 0) };
  }

  /** A read of a version and rows from one snapshot. */
  private snapshot<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    return this.sql.begin('isolation level repeatable read read only', fn) as Promise<T>;
  }

  async listFriends(userId: string, after: string | null, limit: number): Promise<ListPage<FriendEntry>> {
    return this.snapshot(async (tx) => {
      const { version } = await this.versionOf(tx, userId);
      const rows = await tx<EntryRow[]>`
        SELECT u.id, u.username, u.nickname, p.avatar, f.since AS at
        FROM social_friends f JOIN users u ON u.id = f.peer_id LEFT JOIN social_profiles p ON p.user_id = f.peer_id
        WHERE f.user_id = ${userId} AND f.peer_id > ${after ?? ''} ORDER BY f.peer_id LIMIT ${limit}`;
      return { version, items: rows.map((r) => ({ user: summaryFromRow(r), since: Number(r.at) })) };
    });
  }

  async listRequests(userId: string, direction: 'incoming' | 'outgoing', after: string | null, limit: number): Promise<ListPage<FriendRequestEntry>> {
    return this.snapshot(async (tx) => {
      const { version } = await this.versionOf(tx, userId);
      const rows =
        direction === 'incoming'
          ? await tx<EntryRow[]>`
              SELECT u.id, u.username, u.nickname, p.avatar, r.greeting, r.created_at AS at
              FROM social_requests r JOIN users u ON u.id = r.from_id LEFT JOIN social_profiles p ON p.user_id = r.from_id
              WHERE r.to_id = ${userId} AND r.from_id > ${after ?? ''} ORDER BY r.from_id LIMIT ${limit}`
          : await tx<EntryRow[]>`
              SELECT u.id, u.username, u.nickname, p.avatar, r.greeting, r.created_at AS at
              FROM social_requests r JOIN users u ON u.id = r.to_id LEFT JOIN social_profiles p ON p.user_id = r.to_id
              WHERE r.from_id = ${userId} AND r.to_id > ${after ?? ''} ORDER BY r.to_id LIMIT ${limit}`;
      return { version, items: rows.map((r) => ({ user: summaryFromRow(r), greeting: r.greeting ?? '', time: Number(r.at) })) };
    });
  }

  async listBlocks(userId: string, after: string | null, limit: number): Promise<ListPage<BlockEntry>> {
    return this.snapshot(async (tx) => {
      const { version } = await this.versionOf(tx, userId);
      const rows = await tx<EntryRow[]>`
        SELECT u.id, u.username, u.nickname, p.avatar, b.since AS at
        FROM social_blocks b JOIN users u ON u.id = b.peer_id LEFT JOIN social_profiles p ON p.user_id = b.peer_id
        WHERE b.user_id = ${userId} AND b.peer_id > ${after ?? ''} ORDER BY b.peer_id LIMIT ${limit}`;
      return { version, items: rows.map((r) => ({ user: summaryFromRow(r), since: Number(r.at) })) };
    });
  }

  async changesSince(userId: string, since: number, limit: number): Promise<{ version: number; floor: number; changes: RelationChange[] }> {
    return this.snapshot(async (tx) => {
      const { version, floor } = await this.versionOf(tx, userId);
      const rows = await tx<ChangeRow[]>`
        SELECT version, peer_id, kind, state, greeting, at FROM social_changes
        WHERE user_id = ${userId} AND version > ${since} ORDER BY version LIMIT ${limit}`;
      return { version, floor, changes: rows.map(changeFromRow) };
    });
  }
}
