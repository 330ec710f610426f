import Database from 'better-sqlite3';
import { openSqlite, type SqliteHandle } from '../store/sqlite-connection.ts';
import { usernameKey, type BlockEntry, type FriendEntry, type FriendRequestEntry, type Profile, type ProfileSummary, type RelationChange, type RelationState } from '@magpie/protocol';
import { planAction, stateOf, type PairState, type PlanWrite, type PlannedChange, type RelationAction } from './relations.ts';
import { SOCIAL_SCHEMA_SQLITE } from './social-schema.ts';
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

export interface SqliteSocialStoreOptions {
  /** The server's database file (join(config.dataDir, 'magpie.db')); its `users` table must exist. */
  path: string;
  synchronous?: 'full' | 'normal';
  changeLogCapacity?: number;
}

const PROFILE_COLS = 'u.id, u.username, u.nickname, p.avatar';

/**
 * SocialStore on SQLite: the process's shared connection (store/sqlite-connection.ts) to the server's database
 * file. Every write is one synchronous IMMEDIATE transaction, so nothing interleaves with it
 * in this process, and other connections wait on the busy timeout.
 */
export class SqliteSocialStore implements SocialStore {
  readonly kind = 'sqlite' as const;
  private readonly handle: SqliteHandle;
  private readonly db: Database.Database;
  private readonly capacity: number;
  private readonly q: ReturnType<SqliteSocialStore['prepare']>;

  constructor(opts: SqliteSocialStoreOptions) {
    this.handle = openSqlite(opts.path, { synchronous: opts.synchronous });
    this.db = this.handle.db;
    if (!this.db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'users'").get()) {
      void this.handle.release();
      throw new Error(`SqliteSocialStore: ${opts.path} has no users table; open the messaging Store on this file first`);
    }
    this.db.exec(SOCIAL_SCHEMA_SQLITE);
    this.capacity = opts.changeLogCapacity ?? DEFAULT_CHANGE_LOG_CAPACITY;
    this.q = this.prepare();
  }

  private prepare() {
    const db = this.db;
    return {
      profile: db.prepare<[string], ProfileRow>(`SELECT ${PROFILE_COLS}, p.extra FROM users u LEFT JOIN social_profiles p ON p.user_id = u.id WHERE u.id = ?`),
      userExists: db.prepare<[string], { x: number }>('SELECT 1 AS x FROM users WHERE id = ?'),
      setNickname: db.prepare<[string, string]>('UPDATE users SET nickname = ? WHERE id = ?'),
      upsertProfile: db.prepare<{ id: string; avatar: string | null; extra: string; now: number; setAvatar: number; setExtra: number }>(
        `INSERT INTO social_profiles (user_id, avatar, extra, updated_at) VALUES (@id, @avatar, @extra, @now)
         ON CONFLICT (user_id) DO UPDATE SET
           avatar = CASE WHEN @setAvatar THEN excluded.avatar ELSE social_profiles.avatar END,
           extra = CASE WHEN @setExtra THEN excluded.extra ELSE social_profiles.extra END,
           updated_at = excluded.updated_at`,
      ),
      exact: db.prepare<{ q: string; key: string }, ProfileRow>(
        `SELECT ${PROFILE_COLS} FROM users u LEFT JOIN social_profiles p ON p.user_id = u.id WHERE u.id = @q
         UNION ALL
         SELECT ${PROFILE_COLS} FROM users u LEFT JOIN social_profiles p ON p.user_id = u.id WHERE (u.username_key = @key OR u.username = @q) AND u.id <> @q`,
      ),
      nick: db.prepare<{ prefix: string; k: string | null; id: string; limit: number }, ProfileRow & { key: string }>(
        `SELECT ${PROFILE_COLS}, lower(u.nickname) AS key
         FROM users u LEFT JOIN social_profiles p ON p.user_id = u.id
         WHERE lower(u.nickname) >= coalesce(@k, lower(@prefix))
           AND lower(u.nickname) < lower(@prefix) || char(1114111)
           AND substr(lower(u.nickname), 1, length(lower(@prefix))) = lower(@prefix)
           AND (@k IS NULL OR lower(u.nickname) > @k OR u.id > @id)
         ORDER BY lower(u.nickname), u.id
         LIMIT @limit`,
      ),
      pair: db.prepare<{ a: string; b: string }, PairRow>(
        `SELECT
           EXISTS (SELECT 1 FROM users WHERE id = @b) AS peer_exists,
           EXISTS (SELECT 1 FROM users WHERE id = @b AND deleted_at IS NOT NULL) AS peer_deleted,
           EXISTS (SELECT 1 FROM social_friends WHERE user_id = @a AND peer_id = @b) AS friends,
           (SELECT greeting FROM social_requests WHERE from_id = @a AND to_id = @b) AS out_greeting,
           (SELECT greeting FROM social_requests WHERE from_id = @b AND to_id = @a) AS in_greeting,
           EXISTS (SELECT 1 FROM social_blocks WHERE user_id = @a AND peer_id = @b) AS blocking,
           EXISTS (SELECT 1 FROM social_blocks WHERE user_id = @b AND peer_id = @a) AS blocked_by`,
      ),
      direct: db.prepare<{ s: string; r: string }, { by_recipient: number; by_sender: number; friends: number }>(
        `SELECT
           EXISTS (SELECT 1 FROM social_blocks WHERE user_id = @r AND peer_id = @s) AS by_recipient,
           EXISTS (SELECT 1 FROM social_blocks WHERE user_id = @s AND peer_id = @r) AS by_sender,
           EXISTS (SELECT 1 FROM social_friends WHERE user_id = @s AND peer_id = @r) AS friends`,
      ),
      addFriend: db.prepare<[string, string, number]>('INSERT INTO social_friends (user_id, peer_id, since) VALUES (?, ?, ?)'),
      removeFriend: db.prepare<[string, string]>('DELETE FROM social_friends WHERE user_id = ? AND peer_id = ?'),
      putRequest: db.prepare<[string, string, string, number]>('INSERT INTO social_requests (from_id, to_id, greeting, created_at) VALUES (?, ?, ?, ?)'),
      deleteRequest: db.prepare<[string, string]>('DELETE FROM social_requests WHERE from_id = ? AND to_id = ?'),
      putBlock: db.prepare<[string, string, number]>('INSERT INTO social_blocks (user_id, peer_id, since) VALUES (?, ?, ?)'),
      deleteBlock: db.prepare<[string, string]>('DELETE FROM social_blocks WHERE user_id = ? AND peer_id = ?'),
      version: db.prepare<[string], { version: number; floor: number }>('SELECT version, floor FROM social_versions WHERE user_id = ?'),
      bump: db.prepare<[string], { version: number; floor: number }>(
        `INSERT INTO social_versions (user_id, version, floor) VALUES (?, 1, 0)
         ON CONFLICT (user_id) DO UPDATE SET version = social_versions.version + 1
         RETURNING version, floor`,
      ),
      insertChange: db.prepare<[string, number, string, string, string, string | null, number]>(
        'INSERT INTO social_changes (user_id, version, peer_id, kind, state, greeting, at) VALUES (?, ?, ?, ?, ?, ?, ?)',
      ),
      trim: db.prepare<[string, number]>('DELETE FROM social_changes WHERE user_id = ? AND version <= ?'),
      setFloor: db.prepare<[number, string]>('UPDATE social_versions SET floor = ? WHERE user_id = ?'),
      changes: db.prepare<[string, number, number], ChangeRow>(
        'SELECT version, peer_id, kind, state, greeting, at FROM social_changes WHERE user_id = ? AND version > ? ORDER BY version LIMIT ?',
      ),
      friends: db.prepare<[string, string, number], EntryRow>(
        `SELECT ${PROFILE_COLS}, f.since AS at FROM social_friends f JOIN users u ON u.id = f.peer_id LEFT JOIN social_profiles p ON p.user_id = f.peer_id
         WHERE f.user_id = ? AND f.peer_id > ? ORDER BY f.peer_id LIMIT ?`,
      ),
      incoming: db.prepare<[string, string, number], EntryRow>(
        `SELECT ${PROFILE_COLS}, r.greeting, r.created_at AS at FROM social_requests r JOIN users u ON u.id = r.from_id LEFT JOIN social_profiles p ON p.user_id = r.from_id
         WHERE r.to_id = ? AND r.from_id > ? ORDER BY r.from_id LIMIT ?`,
      ),
      outgoing: db.prepare<[string, string, number], EntryRow>(
        `SELECT ${PROFILE_COLS}, r.greeting, r.created_at AS at FROM social_requests r JOIN users u ON u.id = r.to_id LEFT JOIN social_profiles p ON p.user_id = r.to_id
         WHERE r.from_id = ? AND r.to_id > ? ORDER BY r.to_id LIMIT ?`,
      ),
      blocks: db.prepare<[string, string, number], EntryRow>(
        `SELECT ${PROFILE_COLS}, b.since AS at FROM social_blocks b JOIN users u ON u.id = b.peer_id LEFT JOIN social_profiles p ON p.user_id = b.peer_id
         WHERE b.user_id = ? AND b.peer_id > ? ORDER BY b.peer_id LIMIT ?`,
      ),
    };
  }

  private tx<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate();
  }

  async migrate(): Promise<void> {
    this.db.exec(SOCIAL_SCHEMA_SQLITE);
  }

  async close(): Promise<void> {
    await this.handle.release();
  }

  async getProfile(userId: string): Promise<Profile | null> {
    const r = this.q.profile.get(userId);
    return r ? profileFromRow(r) : null;
  }

  async updateProfile(userId: string, patch: ProfilePatch, now: number): Promise<Profile | null> {
    return this.tx(() => {
      if (!this.q.userExists.get(userId)) return null;
      if (patch.nickname !== undefined) this.q.setNickname.run(patch.nickname, userId);
      if (patch.avatar !== undefined || patch.extraJson !== undefined) {
        this.q.upsertProfile.run({
          id: userId,
          avatar: patch.avatar ?? null,
          extra: patch.extraJson ?? '{}',
          now,
          setAvatar: patch.avatar !== undefined ? 1 : 0,
          setExtra: patch.extraJson !== undefined ? 1 : 0,
        });
      }
      return profileFromRow(this.q.profile.get(userId)!);
    });
  }

  async findExact(q: string): Promise<ProfileSummary[]> {
    return this.q.exact.all({ q, key: usernameKey(q) }).map(summaryFromRow);
  }

  async searchNickname(prefix: string, after: { key: string; id: string } | null, limit: number): Promise<NickSearchRow[]> {
    return this.q.nick.all({ prefix, k: after?.key ?? null, id: after?.id ?? '', limit }).map((r) => ({ ...summaryFromRow(r), key: r.key }));
  }

  private pair(a: string, b: string): PairState {
    return pairFromRow(this.q.pair.get({ a, b })!);
  }

  async relationOf(userId: string, peer: string): Promise<RelationState> {
    return stateOf(this.pair(userId, peer));
  }

  async directCheck(sender: string, recipient: string): Promise<DirectCheck> {
    // On every direct message: batched with the turn's other checks into one read transaction.
    const r = await this.handle.read(() => this.q.direct.get({ s: sender, r: recipient })!);
    return { blockedByRecipient: r.by_recipient === 1, blockedBySender: r.by_sender === 1, friends: r.friends === 1 };
  }

  async apply(actor: string, peer: string, action: RelationAction, now: number): Promise<ApplyOutcome> {
    return this.tx((): ApplyOutcome => {
      const plan = planAction(action, this.pair(actor, peer));
      if (!plan.ok) return plan;
      for (const w of plan.writes) this.write(actor, peer, w, now);
      const changes = this.log(actor, peer, plan.changes, now);
      const version = changes.find((c) => c.userId === actor)?.change.version ?? Number(this.q.version.get(actor)?.version ?? 0);
      return { ok: true, state: plan.state, version, duplicate: plan.duplicate, changes };
    });
  }

  private write(a: string, b: string, w: PlanWrite, now: number): void {
    switch (w.op) {
      case 'addFriends':
        this.q.addFriend.run(a, b, now);
        this.q.addFriend.run(b, a, now);
        return;
      case 'removeFriends':
        this.q.removeFriend.run(a, b);
        this.q.removeFriend.run(b, a);
        return;
      case 'putRequest':
        if (w.from === 'actor') this.q.putRequest.run(a, b, w.greeting, now);
        else this.q.putRequest.run(b, a, w.greeting, now);
        return;
      case 'deleteRequest':
        if (w.from === 'actor') this.q.deleteRequest.run(a, b);
        else this.q.deleteRequest.run(b, a);
        return;
      case 'putBlock':
        this.q.putBlock.run(a, b, now);
        return;
      case 'deleteBlock':
        this.q.deleteBlock.run(a, b);
        return;
    }
  }

  /** Append each planned change to its user's log with the user's next version (users in id order). */
  private log(actor: string, peer: string, planned: PlannedChange[], now: number): UserChange[] {
    const rows = planned.map((c) => ({ userId: c.who === 'actor' ? actor : peer, other: c.who === 'actor' ? peer : actor, c }));
    rows.sort((x, y) => (x.userId < y.userId ? -1 : x.userId > y.userId ? 1 : 0));
    const out: UserChange[] = [];
    for (const { userId, other, c } of rows) {
      const v = this.q.bump.get(userId)!;
      const version = Number(v.version);
      this.q.insertChange.run(userId, version, other, c.kind, c.state, c.greeting ?? null, now);
      const floor = trimFloor(version, Number(v.floor), this.capacity);
      if (floor !== null) {
        this.q.trim.run(userId, floor);
        this.q.setFloor.run(floor, userId);
      }
      const change: RelationChange = { version, peer: other, kind: c.kind, state: c.state, time: now };
      if (c.greeting !== undefined) change.greeting = c.greeting;
      out.push({ userId, change });
    }
    return out;
  }

  private page<T>(userId: string, read: () => T[]): ListPage<T> {
    return this.db.transaction(() => {
      const version = Number(this.q.version.get(userId)?.version ?? 0);
      return { version, items: read() };
    })();
  }

  async listFriends(userId: string, after: string | null, limit: number): Promise<ListPage<FriendEntry>> {
    return this.page(userId, () => this.q.friends.all(userId, after ?? '', limit).map((r) => ({ user: summaryFromRow(r), since: Number(r.at) })));
  }

  async listRequests(userId: string, direction: 'incoming' | 'outgoing', after: string | null, limit: number): Promise<ListPage<FriendRequestEntry>> {
    const stmt = direction === 'incoming' ? this.q.incoming : this.q.outgoing;
    return this.page(userId, () => stmt.all(userId, after ?? '', limit).map((r) => ({ user: summaryFromRow(r), greeting: r.greeting ?? '', time: Number(r.at) })));
  }

  async listBlocks(userId: string, after: string | null, limit: number): Promise<ListPage<BlockEntry>> {
    return this.page(userId, () => this.q.blocks.all(userId, after ?? '', limit).map((r) => ({ user: summaryFromRow(r), since: Number(r.at) })));
  }

  async changesSince(userId: string, since: number, limit: number): Promise<{ version: number; floor: number; changes: RelationChange[] }> {
    return this.db.transaction(() => {
      const v = this.q.version.get(userId);
      const changes = this.q.changes.all(userId, since, limit).map(changeFromRow);
      return { version: Number(v?.version ?? 0), floor: Number(v?.floor ?? 0), changes };
    })();
  }

  /** The query plan of a nickname search (tests assert that it uses the index). */
  explainNicknameSearch(): string {
    const stmt = this.db.prepare(`EXPLAIN QUERY PLAN ${this.q.nick.source}`);
    return (stmt.all({ prefix: 'ab', k: null, id: '', limit: 10 }) as { detail: string }[]).map((r) => r.detail).join('\n');
  }
}
