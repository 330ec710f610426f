import { usernameKey, type BlockEntry, type FriendEntry, type FriendRequestEntry, type Profile, type ProfileSummary, type RelationChange, type RelationState } from '@magpie/protocol';
import type { Dialect, Queryable, SqlEngine } from '../db/engine.ts';
import { retryTransaction } from '../db/retry.ts';
import { planAction, stateOf, type PairState, type PlanWrite, type PlannedChange, type RelationAction } from './relations.ts';
import { bool, changeFromRow, pairFromRow, profileFromRow, summaryFromRow, trimFloor, type ChangeRow, type EntryRow, type PairRow, type ProfileRow } from './social-rows.ts';
import { DEFAULT_CHANGE_LOG_CAPACITY, type ApplyOutcome, type DirectCheck, type ListPage, type NickSearchRow, type ProfilePatch, type SocialStore, type UserChange } from './social-store.ts';

const COLS = 'u.id, u.username, u.nickname, p.avatar';

/**
 * The nickname index on the messaging store's `users` table, which that store still creates
 * itself (it is not on the shared engine yet): it moves into that store's migration then.
 * SQLite: lower() folds ASCII letters and comparisons are bytewise, so a prefix is an index
 * range. PostgreSQL: text_pattern_ops compares bytewise under any collation (~>=~ / ~<~).
 */
const NICK_INDEX: Record<Dialect, string> = {
  sqlite: 'CREATE INDEX IF NOT EXISTS social_users_nick ON users (lower(nickname), id)',
  postgres: 'CREATE INDEX IF NOT EXISTS social_users_nick ON users (lower(nickname) text_pattern_ops, id)',
};
const NICK_INDEX_LOCK = 4_242_016;

/** Nickname-prefix search, per dialect (the operators that use the index differ). Parameters: see `nickParams`. */
export const NICK_SEARCH: Record<Dialect, string> = {
  sqlite: `SELECT ${COLS}, lower(u.nickname) AS key FROM users u LEFT JOIN social_profiles p ON p.user_id = u.id
    WHERE lower(u.nickname) >= coalesce(?, lower(?)) AND lower(u.nickname) < lower(?) || char(1114111)
      AND substr(lower(u.nickname), 1, length(lower(?))) = lower(?)
      AND (? IS NULL OR lower(u.nickname) > ? OR u.id > ?)
    ORDER BY lower(u.nickname), u.id LIMIT ?`,
  postgres: `SELECT ${COLS}, lower(u.nickname) AS key FROM users u LEFT JOIN social_profiles p ON p.user_id = u.id
    WHERE lower(u.nickname) ~>=~ coalesce(CAST(? AS text), lower(CAST(? AS text))) AND lower(u.nickname) ~<~ (lower(CAST(? AS text)) || chr(1114111))
      AND starts_with(lower(u.nickname), lower(CAST(? AS text)))
      AND (CAST(? AS text) IS NULL OR lower(u.nickname) ~>~ CAST(? AS text) OR u.id > ?)
    ORDER BY lower(u.nickname) USING ~<~, u.id LIMIT ?`,
};

export function nickParams(dialect: Dialect, prefix: string, after: { key: string; id: string } | null, limit: number): unknown[] {
  const k = after?.key ?? null;
  const id = after?.id ?? '';
  return dialect === 'sqlite' ? [k, prefix, prefix, prefix, prefix, k, k, id, limit] : [k, prefix, prefix, prefix, k, k, id, limit];
}

const PROFILE = `SELECT ${COLS}, p.extra FROM users u LEFT JOIN social_profiles p ON p.user_id = u.id WHERE u.id = ?`;
const PAIR = `SELECT
  EXISTS (SELECT 1 FROM users WHERE id = ?) AS peer_exists,
  EXISTS (SELECT 1 FROM users WHERE id = ? AND deleted_at IS NOT NULL) AS peer_deleted,
  EXISTS (SELECT 1 FROM social_friends WHERE user_id = ? AND peer_id = ?) AS friends,
  (SELECT greeting FROM social_requests WHERE from_id = ? AND to_id = ?) AS out_greeting,
  (SELECT greeting FROM social_requests WHERE from_id = ? AND to_id = ?) AS in_greeting,
  EXISTS (SELECT 1 FROM social_blocks WHERE user_id = ? AND peer_id = ?) AS blocking,
  EXISTS (SELECT 1 FROM social_blocks WHERE user_id = ? AND peer_id = ?) AS blocked_by`;
const DIRECT = `SELECT
  EXISTS (SELECT 1 FROM social_blocks WHERE user_id = ? AND peer_id = ?) AS by_recipient,
  EXISTS (SELECT 1 FROM social_blocks WHERE user_id = ? AND peer_id = ?) AS by_sender,
  EXISTS (SELECT 1 FROM social_friends WHERE user_id = ? AND peer_id = ?) AS friends`;
const VERSION = 'SELECT version, floor FROM social_versions WHERE user_id = ?';
/** The lists, keyed by the other user's id: [table alias and join, owner column, other column, extra columns]. */
const LISTS = {
  friends: ['social_friends x', 'user_id', 'peer_id', 'x.since AS at'],
  incoming: ['social_requests x', 'to_id', 'from_id', 'x.greeting, x.created_at AS at'],
  outgoing: ['social_requests x', 'from_id', 'to_id', 'x.greeting, x.created_at AS at'],
  blocks: ['social_blocks x', 'user_id', 'peer_id', 'x.since AS at'],
} as const;
const LIST_SQL = Object.fromEntries(
  Object.entries(LISTS).map(([name, [table, owner, other, cols]]) => [
    name,
    `SELECT ${COLS}, ${cols} FROM ${table} JOIN users u ON u.id = x.${other} LEFT JOIN social_profiles p ON p.user_id = x.${other}
     WHERE x.${owner} = ? AND x.${other} > ? ORDER BY x.${other} LIMIT ?`,
  ]),
) as Record<keyof typeof LISTS, string>;

/** 32-bit FNV-1a: the advisory-lock key of a pair of users (a collision only serializes two pairs). */
function lockKey(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h | 0;
}

/**
 * SocialStore on the server's database, SQLite or PostgreSQL (db/engine.ts). Tables:
 * migration 0002. Each action is one transaction; on PostgreSQL it first takes an advisory
 * lock on the pair of users (SQLite: BEGIN IMMEDIATE excludes every other writer), so actions
 * on the same pair run one after the other on any number of nodes. Versions are bumped with
 * upserts in user-id order (no lock cycles between pairs); deadlocks rerun the transaction.
 */
export class SqlSocialStore implements SocialStore {
  readonly kind: Dialect;
  private readonly capacity: number;

  constructor(
    private readonly db: SqlEngine,
    opts: { changeLogCapacity?: number } = {},
  ) {
    this.kind = db.dialect;
    this.capacity = opts.changeLogCapacity ?? DEFAULT_CHANGE_LOG_CAPACITY;
  }

  async migrate(): Promise<void> {
    await this.db.transaction((tx) => tx.exec(NICK_INDEX[this.db.dialect]), { lock: NICK_INDEX_LOCK });
  }

  /** The engine belongs to whoever opened it (the server closes it last). */
  async close(): Promise<void> {}

  private tx<T>(fn: (tx: Queryable) => Promise<T>, lock?: number): Promise<T> {
    return retryTransaction(this.db, fn, { maxAttempts: 8, ...(lock === undefined ? {} : { lock }) });
  }

  async getProfile(userId: string): Promise<Profile | null> {
    const r = await this.db.get<ProfileRow>(PROFILE, [userId]);
    return r ? profileFromRow(r) : null;
  }

  async updateProfile(userId: string, patch: ProfilePatch, now: number): Promise<Profile | null> {
    return this.tx(async (tx) => {
      // Also the existence check, and on PostgreSQL the row lock of the user.
      if ((await tx.run('UPDATE users SET nickname = COALESCE(?, nickname) WHERE id = ?', [patch.nickname ?? null, userId])) === 0) return null;
      if (patch.avatar !== undefined || patch.extraJson !== undefined) {
        await tx.run(
          `INSERT INTO social_profiles (user_id, avatar, extra, updated_at) VALUES (?, ?, ?, ?)
           ON CONFLICT (user_id) DO UPDATE SET
             avatar = CASE WHEN ? = 1 THEN excluded.avatar ELSE social_profiles.avatar END,
             extra = CASE WHEN ? = 1 THEN excluded.extra ELSE social_profiles.extra END,
             updated_at = excluded.updated_at`,
          [userId, patch.avatar ?? null, patch.extraJson ?? '{}', now, patch.avatar !== undefined ? 1 : 0, patch.extraJson !== undefined ? 1 : 0],
        );
      }
      return profileFromRow((await tx.get<ProfileRow>(PROFILE, [userId]))!);
    });
  }

  async findExact(q: string): Promise<ProfileSummary[]> {
    const rows = await this.db.all<ProfileRow>(
      `SELECT ${COLS} FROM users u LEFT JOIN social_profiles p ON p.user_id = u.id WHERE u.id = ?
       UNION ALL
       SELECT ${COLS} FROM users u LEFT JOIN social_profiles p ON p.user_id = u.id WHERE (u.username_key = ? OR u.username = ?) AND u.id <> ?`,
      [q, usernameKey(q), q, q],
    );
    return rows.map(summaryFromRow);
  }

  async searchNickname(prefix: string, after: { key: string; id: string } | null, limit: number): Promise<NickSearchRow[]> {
    const rows = await this.db.all<ProfileRow & { key: string }>(NICK_SEARCH[this.db.dialect], nickParams(this.db.dialect, prefix, after, limit));
    return rows.map((r) => ({ ...summaryFromRow(r), key: r.key }));
  }

  private async pair(q: Queryable, a: string, b: string): Promise<PairState> {
    return pairFromRow((await q.get<PairRow>(PAIR, [b, b, a, b, a, b, b, a, a, b, b, a]))!);
  }

  async relationOf(userId: string, peer: string): Promise<RelationState> {
    return stateOf(await this.pair(this.db, userId, peer));
  }

  async directCheck(sender: string, recipient: string): Promise<DirectCheck> {
    // On every direct message: on SQLite batched with the turn's other checks into one read transaction.
    const r = (await this.db.getBatched<{ by_recipient: unknown; by_sender: unknown; friends: unknown }>(DIRECT, [recipient, sender, sender, recipient, sender, recipient]))!;
    return { blockedByRecipient: bool(r.by_recipient), blockedBySender: bool(r.by_sender), friends: bool(r.friends) };
  }

  async apply(actor: string, peer: string, action: RelationAction, now: number): Promise<ApplyOutcome> {
    const lock = lockKey(actor < peer ? `social:${actor}:${peer}` : `social:${peer}:${actor}`);
    return this.tx(async (tx): Promise<ApplyOutcome> => {
      const plan = planAction(action, await this.pair(tx, actor, peer));
      if (!plan.ok) return plan;
      for (const w of plan.writes) await this.write(tx, actor, peer, w, now);
      const changes = await this.log(tx, actor, peer, plan.changes, now);
      const version = changes.find((c) => c.userId === actor)?.change.version ?? Number((await tx.get<{ version: number }>(VERSION, [actor]))?.version ?? 0);
      return { ok: true, state: plan.state, version, duplicate: plan.duplicate, changes };
    }, lock);
  }

  private async write(tx: Queryable, a: string, b: string, w: PlanWrite, now: number): Promise<void> {
    const [from, to] = 'from' in w && w.from === 'peer' ? [b, a] : [a, b];
    switch (w.op) {
      case 'addFriends':
        await tx.run('INSERT INTO social_friends (user_id, peer_id, since) VALUES (?, ?, ?), (?, ?, ?)', [a, b, now, b, a, now]);
        return;
      case 'removeFriends':
        await tx.run('DELETE FROM social_friends WHERE (user_id = ? AND peer_id = ?) OR (user_id = ? AND peer_id = ?)', [a, b, b, a]);
        return;
      case 'putRequest':
        await tx.run('INSERT INTO social_requests (from_id, to_id, greeting, created_at) VALUES (?, ?, ?, ?)', [from, to, w.greeting, now]);
        return;
      case 'deleteRequest':
        await tx.run('DELETE FROM social_requests WHERE from_id = ? AND to_id = ?', [from, to]);
        return;
      case 'putBlock':
        await tx.run('INSERT INTO social_blocks (user_id, peer_id, since) VALUES (?, ?, ?)', [a, b, now]);
        return;
      case 'deleteBlock':
        await tx.run('DELETE FROM social_blocks WHERE user_id = ? AND peer_id = ?', [a, b]);
        return;
    }
  }

  /** Append each planned change to its user's log with the user's next version (users in id order). */
  private async log(tx: Queryable, actor: string, peer: string, planned: PlannedChange[], now: number): Promise<UserChange[]> {
    const rows = planned.map((c) => ({ userId: c.who === 'actor' ? actor : peer, other: c.who === 'actor' ? peer : actor, c }));
    rows.sort((x, y) => (x.userId < y.userId ? -1 : x.userId > y.userId ? 1 : 0));
    const out: UserChange[] = [];
    for (const { userId, other, c } of rows) {
      const v = (await tx.get<{ version: number; floor: number }>(
        `INSERT INTO social_versions (user_id, version, floor) VALUES (?, 1, 0)
         ON CONFLICT (user_id) DO UPDATE SET version = social_versions.version + 1 RETURNING version, floor`,
        [userId],
      ))!;
      const version = Number(v.version);
      await tx.run('INSERT INTO social_changes (user_id, version, peer_id, kind, state, greeting, at) VALUES (?, ?, ?, ?, ?, ?, ?)', [
        userId,
        version,
        other,
        c.kind,
        c.state,
        c.greeting ?? null,
        now,
      ]);
      const floor = trimFloor(version, Number(v.floor), this.capacity);
      if (floor !== null) {
        await tx.run('DELETE FROM social_changes WHERE user_id = ? AND version <= ?', [userId, floor]);
        await tx.run('UPDATE social_versions SET floor = ? WHERE user_id = ?', [floor, userId]);
      }
      const change: RelationChange = { version, peer: other, kind: c.kind, state: c.state, time: now };
      if (c.greeting !== undefined) change.greeting = c.greeting;
      out.push({ userId, change });
    }
    return out;
  }

  private async versionOf(userId: string): Promise<{ version: number; floor: number }> {
    const v = await this.db.get<{ version: number; floor: number }>(VERSION, [userId]);
    return { version: Number(v?.version ?? 0), floor: Number(v?.floor ?? 0) };
  }

  /** One page of a list, with the version read BEFORE the items (the guarantee of ListPage). */
  private async page(list: keyof typeof LISTS, userId: string, after: string | null, limit: number): Promise<{ version: number; rows: EntryRow[] }> {
    const { version } = await this.versionOf(userId);
    return { version, rows: await this.db.all<EntryRow>(LIST_SQL[list], [userId, after ?? '', limit]) };
  }

  async listFriends(userId: string, after: string | null, limit: number): Promise<ListPage<FriendEntry>> {
    const { version, rows } = await this.page('friends', userId, after, limit);
    return { version, items: rows.map((r) => ({ user: summaryFromRow(r), since: Number(r.at) })) };
  }

  async listRequests(userId: string, direction: 'incoming' | 'outgoing', after: string | null, limit: number): Promise<ListPage<FriendRequestEntry>> {
    const { version, rows } = await this.page(direction, userId, after, limit);
    return { version, items: rows.map((r) => ({ user: summaryFromRow(r), greeting: r.greeting ?? '', time: Number(r.at) })) };
  }

  async listBlocks(userId: string, after: string | null, limit: number): Promise<ListPage<BlockEntry>> {
    const { version, rows } = await this.page('blocks', userId, after, limit);
    return { version, items: rows.map((r) => ({ user: summaryFromRow(r), since: Number(r.at) })) };
  }

  async changesSince(userId: string, since: number, limit: number): Promise<{ version: number; floor: number; changes: RelationChange[] }> {
    const { version } = await this.versionOf(userId);
    const rows = await this.db.all<ChangeRow>('SELECT version, peer_id, kind, state, greeting, at FROM social_changes WHERE user_id = ? AND version > ? ORDER BY version LIMIT ?', [
      userId,
      since,
      limit,
    ]);
    // The floor is read last: a trim that ran meanwhile shows (since < floor) rather than a gap.
    const { floor } = await this.versionOf(userId);
    return { version, floor, changes: rows.filter((r) => Number(r.version) <= version).map(changeFromRow) };
  }
}
