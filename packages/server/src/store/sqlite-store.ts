import Database from 'better-sqlite3';
import { usernameKey, type ConvEntry, type InboxItem, type Message } from '@magpie/protocol';
import {
  StoreConflictError,
  StoreNotFoundError,
  directConversationId,
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
import { ADDED_COLUMNS, ENTRY_STATE_SQL, INDEX_SQL_SQLITE, SCHEMA_SQL, USERNAME_KEY_INDEX_SQL, USER_BY_NAME_WHERE, entrySelect, usernameKeyBackfill } from './schema.ts';
import {
  GROUP_SELECT,
  entryFromRow,
  isGroupConv,
  groupFromRow,
  joinRequestFromRow,
  memberFromRow,
  messageFromRow,
  sessionFromRow,
  mergeSearch,
  toMessage,
  userFromRow,
  type EntryRow,
  type GroupRow,
  type JoinRequestRow,
  type MemberRow,
  type MessageRow,
} from './rows.ts';
import { openSqlite, type SqliteHandle } from './sqlite-connection.ts';
import { checkEffect, checkPost, effectTargets } from './group-rules.ts';

export interface SqliteStoreOptions extends StoreOptions {
  /** File path, or ':memory:'. */
  path: string;
  /** 'full' fsyncs every commit (default: nothing acknowledged is lost on power failure); 'normal' survives process crashes only. */
  synchronous?: 'full' | 'normal';
  /** Background WAL checkpoint interval (see SqliteOpenOptions.checkpointMs). */
  checkpointMs?: number;
}

/** A newly acknowledged inbox range (user, from exclusive, to inclusive) whose group messages gain a delivered count. */
type CountRange = [string, number, number];

type ConvRow = { id: string; kind: ConversationRecord['kind']; last_seq: number; created_at: number };
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

/** The two parties of a direct message sent to a user, when its conversation id is theirs (then no member row need be read). */
function partiesOf(req: AppendRequest): [string, string] | null {
  const d = req.directMembers;
  return d && req.conv === directConversationId(d[0], d[1]) ? d : null;
}

/** A refusal from checkEffect (never null where it is used). */
function refusal(r: ReturnType<typeof checkEffect>): AppendOutcome {
  return r ? { ok: false, ...r } : { ok: false, error: 'invalid' };
}

/** Apply SCHEMA_SQL, the missing ADDED_COLUMNS and the indexes to a SQLite database. */
function migrateSqlite(db: Database.Database): void {
  db.transaction(() => {
    db.exec(SCHEMA_SQL);
    for (const c of ADDED_COLUMNS) {
      const cols = db.prepare(`PRAGMA table_info(${c.table})`).all() as { name: string }[];
      if (!cols.some((x) => x.name === c.column)) db.exec(`ALTER TABLE ${c.table} ADD COLUMN ${c.ddl}`);
    }
    const pending = db.prepare('SELECT id, username FROM users WHERE username_key IS NULL ORDER BY created_at, id').all() as { id: string; username: string }[];
    if (pending.length > 0) {
      const taken = db.prepare('SELECT username_key FROM users WHERE username_key IS NOT NULL').pluck().all() as string[];
      const set = db.prepare('UPDATE users SET username_key = ? WHERE id = ?');
      for (const u of usernameKeyBackfill(pending, taken)) set.run(u.key, u.id);
    }
    db.exec(USERNAME_KEY_INDEX_SQL);
    db.exec(INDEX_SQL_SQLITE);
  }).immediate();
}

/**
 * Store on embedded SQLite (better-sqlite3, WAL). Calls run synchronously inside the
 * returned promise; a batch of appends is one transaction, so one fsync covers it.
 */
export class SqliteStore implements Store {
  readonly kind = 'sqlite' as const;
  private readonly handle: SqliteHandle;
  private readonly db: Database.Database;
  private readonly ring: number;
  private readonly q: ReturnType<SqliteStore['prepare']>;

  constructor(opts: SqliteStoreOptions) {
    this.handle = openSqlite(opts.path, { synchronous: opts.synchronous, checkpointMs: opts.checkpointMs });
    this.db = this.handle.db;
    this.ring = opts.ringCapacity;
    migrateSqlite(this.db);
    this.q = this.prepare();
  }

  private prepare() {
    const db = this.db;
    return {
      insertUser: db.prepare(
        'INSERT INTO users (id, username, username_key, password_hash, nickname, created_at) VALUES (@id, @username, @usernameKey, @passwordHash, @nickname, @createdAt)',
      ),
      userById: db.prepare('SELECT * FROM users WHERE id = ?'),
      userByName: db.prepare(`SELECT * FROM users WHERE ${USER_BY_NAME_WHERE.replace('$key', '@key').replace('$raw', '@raw')} ORDER BY username = @raw DESC LIMIT 1`),
      setPasswordHash: db.prepare('UPDATE users SET password_hash = ? WHERE id = ? AND deleted_at IS NULL'),
      setDisabled: db.prepare('UPDATE users SET disabled_at = ? WHERE id = ? RETURNING *'),
      markDeleted: db.prepare("UPDATE users SET deleted_at = ?, password_hash = '', nickname = ? WHERE id = ? AND deleted_at IS NULL RETURNING *"),
      insertSession: db.prepare(
        `INSERT INTO sessions (token_hash, user_id, device_id, platform, app_version, created_at, expires_at)
         VALUES (@tokenHash, @userId, @deviceId, @platform, @appVersion, @createdAt, @expiresAt)`,
      ),
      sessionByHash: db.prepare('SELECT * FROM sessions WHERE token_hash = ? AND revoked_at IS NULL AND expires_at > ?'),
      knownDevice: db.prepare('SELECT 1 FROM sessions WHERE user_id = ? AND device_id = ? LIMIT 1'),
      sessionsOfUser: db.prepare('SELECT * FROM sessions WHERE user_id = ? AND revoked_at IS NULL AND expires_at > ? ORDER BY created_at'),
      revokeSession: db.prepare('UPDATE sessions SET revoked_at = ? WHERE token_hash = ? AND revoked_at IS NULL AND expires_at > ? RETURNING *'),
      setDeviceAck: db.prepare(
        `INSERT INTO devices (user_id, device_id, acked_inbox_seq) VALUES (?, ?, ?)
         ON CONFLICT (user_id, device_id) DO UPDATE SET acked_inbox_seq = MAX(acked_inbox_seq, excluded.acked_inbox_seq)`,
      ),
      messageByIdem: db.prepare('SELECT * FROM messages WHERE sender_id = ? AND client_msg_id = ?'),
      convById: db.prepare('SELECT * FROM conversations WHERE id = ?'),
      insertConv: db.prepare('INSERT INTO conversations (id, kind, last_seq, created_at) VALUES (?, ?, 0, ?)'),
      setConvKind: db.prepare('UPDATE conversations SET kind = ? WHERE id = ?'),
      setMemberEpoch: db.prepare('UPDATE conversations SET member_epoch = ? WHERE id = ?'),
      memberEpoch: db.prepare('SELECT member_epoch FROM conversations WHERE id = ?'),
      insertMember: db.prepare('INSERT OR IGNORE INTO members (conv_id, user_id, joined_at) VALUES (?, ?, ?)'),
      isMember: db.prepare('SELECT 1 FROM members WHERE conv_id = ? AND user_id = ? AND left_seq IS NULL'),
      membersOf: db.prepare('SELECT user_id FROM members WHERE conv_id = ? AND left_seq IS NULL ORDER BY user_id'),
      memberRow: db.prepare('SELECT * FROM members WHERE conv_id = ? AND user_id = ? AND left_seq IS NULL'),
      memberPage: db.prepare('SELECT * FROM members WHERE conv_id = ? AND user_id > ? AND left_seq IS NULL ORDER BY user_id LIMIT ?'),
      leftSeq: db.prepare('SELECT left_seq FROM members WHERE conv_id = ? AND user_id = ?'),
      membership: db.prepare('SELECT joined_seq, left_seq FROM members WHERE conv_id = ? AND user_id = ?'),
      joinMember: db.prepare(
        `INSERT INTO members (conv_id, user_id, joined_at, role, muted_until, joined_seq, left_seq)
         VALUES (@conv, @user, @time, @role, 0, @seq, NULL)
         ON CONFLICT (conv_id, user_id) DO UPDATE SET
           joined_at = excluded.joined_at, role = excluded.role, muted_until = 0, joined_seq = excluded.joined_seq, left_seq = NULL`,
      ),
      leaveMember: db.prepare('UPDATE members SET left_seq = ? WHERE conv_id = ? AND user_id = ? AND left_seq IS NULL'),
      leaveAll: db.prepare('UPDATE members SET left_seq = ? WHERE conv_id = ? AND left_seq IS NULL RETURNING user_id'),
      setRole: db.prepare('UPDATE members SET role = ? WHERE conv_id = ? AND user_id = ?'),
      setMute: db.prepare('UPDATE members SET muted_until = ? WHERE conv_id = ? AND user_id = ?'),
      superOf: db.prepare(
        `SELECT m.conv_id AS conv, c.last_seq AS last_seq FROM members m JOIN conversations c ON c.id = m.conv_id
         WHERE m.user_id = ? AND m.left_seq IS NULL AND c.kind = 'super' ORDER BY m.conv_id`,
      ),
      groupOne: db.prepare(`${GROUP_SELECT} WHERE g.conv_id = ?`),
      /** A range of the groups_name index, in index order (no sort). */
      groupSearch: db.prepare(
        `${GROUP_SELECT}
         WHERE lower(g.name) >= lower(@prefix) AND lower(g.name) < lower(@prefix) || char(1114111)
           AND substr(lower(g.name), 1, length(lower(@prefix))) = lower(@prefix) AND g.dismissed = 0
         ORDER BY lower(g.name), g.conv_id LIMIT @limit`,
      ),
      insertGroup: db.prepare(
        `INSERT INTO groups (conv_id, name, avatar, announcement, owner, join_policy, invite_needs_approval, mute_all, dismissed, member_count, max_members, created_at, history_visibility)
         VALUES (@conv, @name, @avatar, '', @owner, @joinPolicy, @inviteNeedsApproval, 0, 0, @memberCount, @maxMembers, @time, @historyVisibility)`,
      ),
      updateGroup: db.prepare(
        `UPDATE groups SET name = @name, avatar = @avatar, announcement = @announcement, owner = @owner, join_policy = @joinPolicy,
           invite_needs_approval = @inviteNeedsApproval, mute_all = @muteAll, dismissed = @dismissed, member_count = @memberCount,
           history_visibility = @historyVisibility
         WHERE conv_id = @conv`,
      ),
      putJoinRequest: db.prepare(
        `INSERT INTO join_requests (conv_id, user_id, inviter, message, created_at) VALUES (@conv, @userId, @inviter, @message, @createdAt)
         ON CONFLICT (conv_id, user_id) DO UPDATE SET inviter = excluded.inviter, message = excluded.message, created_at = excluded.created_at`,
      ),
      listJoinRequests: db.prepare('SELECT * FROM join_requests WHERE conv_id = ? ORDER BY created_at, user_id'),
      takeJoinRequest: db.prepare('DELETE FROM join_requests WHERE conv_id = ? AND user_id = ? RETURNING *'),
      bumpConvSeq: db.prepare('UPDATE conversations SET last_seq = last_seq + 1 WHERE id = ? RETURNING last_seq'),
      insertMessage: db.prepare(
        `INSERT INTO messages (conv_id, seq, id, sender_id, client_msg_id, kind, body, time, sender_inbox_seq, mention_all)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      insertMention: db.prepare('INSERT OR IGNORE INTO message_mentions (user_id, conv_id, seq) VALUES (?, ?, ?)'),
      bumpInbox: db.prepare('UPDATE users SET inbox_seq = inbox_seq + 1, conv_version = conv_version + 1 WHERE id = ? RETURNING inbox_seq, conv_version'),
      bumpVersion: db.prepare('UPDATE users SET conv_version = conv_version + 1 WHERE id = ? RETURNING conv_version'),
      insertInbox: db.prepare('INSERT INTO inbox (user_id, inbox_seq, conv_id, seq) VALUES (?, ?, ?, ?)'),
      /** Group write diffusion, set-based: one statement per step for all active members (see storeGroupMessage). */
      bumpMembers: db.prepare(
        `UPDATE users SET inbox_seq = inbox_seq + 1, conv_version = conv_version + 1
         WHERE id IN (SELECT user_id FROM members WHERE conv_id = ? AND left_seq IS NULL)
         RETURNING id, inbox_seq, conv_version`,
      ),
      insertMemberPointers: db.prepare(
        `INSERT INTO inbox (user_id, inbox_seq, conv_id, seq)
         SELECT u.id, u.inbox_seq, @conv, @seq FROM members m JOIN users u ON u.id = m.user_id
         WHERE m.conv_id = @conv AND m.left_seq IS NULL`,
      ),
      upsertMemberEntries: db.prepare(
        `INSERT INTO entries (user_id, conv_id, read_seq, unread, mentions, last_seq, version)
         SELECT u.id, @conv,
           CASE WHEN u.id = @sender THEN @seq ELSE 0 END,
           CASE WHEN u.id = @sender THEN 0 ELSE 1 END,
           CASE WHEN u.id <> @sender AND (@all = 1 OR EXISTS (SELECT 1 FROM message_mentions mm WHERE mm.user_id = u.id AND mm.conv_id = @conv AND mm.seq = @seq)) THEN 1 ELSE 0 END,
           @seq, u.conv_version
         FROM members m JOIN users u ON u.id = m.user_id
         WHERE m.conv_id = @conv AND m.left_seq IS NULL
         ON CONFLICT (user_id, conv_id) DO UPDATE SET
           read_seq = CASE WHEN excluded.user_id = @sender THEN MAX(read_seq, @seq) ELSE read_seq END,
           unread = CASE WHEN excluded.user_id = @sender THEN 0 ELSE unread + 1 END,
           mentions = CASE WHEN excluded.user_id = @sender THEN 0 ELSE mentions + excluded.mentions END,
           last_seq = @seq, deleted = 0, version = excluded.version`,
      ),
      trimInbox: db.prepare('DELETE FROM inbox WHERE user_id = ? AND inbox_seq <= ?'),
      upsertEntryOnMessage: db.prepare(
        `INSERT INTO entries (user_id, conv_id, read_seq, unread, mentions, last_seq, version)
         VALUES (@user, @conv, @readSeq, @unread, @mention, @seq, @version)
         ON CONFLICT (user_id, conv_id) DO UPDATE SET
           read_seq = CASE WHEN @own THEN MAX(read_seq, @seq) ELSE read_seq END,
           unread = CASE WHEN @own THEN 0 ELSE unread + 1 END,
           mentions = CASE WHEN @own THEN 0 ELSE mentions + @mention END,
           last_seq = @seq, deleted = 0, version = @version`,
      ),
      /** A member joins: their entry starts just before the join notice (nothing older is unread). */
      resetEntry: db.prepare(
        `INSERT INTO entries (user_id, conv_id, read_seq, unread, mentions, last_seq, version)
         VALUES (@user, @conv, @readSeq, 0, 0, @readSeq, @version)
         ON CONFLICT (user_id, conv_id) DO UPDATE SET
           read_seq = @readSeq, unread = 0, mentions = 0, last_seq = @readSeq, deleted = 0, version = @version`,
      ),
      /** A member left a super group: their entry stops at the notice. */
      freezeEntry: db.prepare('UPDATE entries SET last_seq = ?, version = ? WHERE user_id = ? AND conv_id = ?'),
      readInbox: db.prepare(
        `SELECT i.inbox_seq, m.* FROM inbox i JOIN messages m ON m.conv_id = i.conv_id AND m.seq = i.seq
         WHERE i.user_id = ? AND i.inbox_seq > ? ORDER BY i.inbox_seq LIMIT ?`,
      ),
      historyBefore: db.prepare('SELECT * FROM messages WHERE conv_id = ? AND seq < ? ORDER BY seq DESC LIMIT ?'),
      historyAfter: db.prepare('SELECT * FROM messages WHERE conv_id = ? AND seq > ? ORDER BY seq ASC LIMIT ?'),
      entryChanges: db.prepare(entrySelect('e.user_id = ? AND e.version > ?', 'ORDER BY e.version LIMIT ?')),
      entryOne: db.prepare(entrySelect('e.user_id = ? AND e.conv_id = ?')),
      entryRaw: db.prepare('SELECT * FROM entries WHERE user_id = ? AND conv_id = ?'),
      entryState: db.prepare(`${ENTRY_STATE_SQL} WHERE e.user_id = ? AND e.conv_id = ?`),
      countUnread: db.prepare('SELECT COUNT(*) AS n FROM messages WHERE conv_id = @conv AND seq > @from AND seq <= @to AND sender_id <> @user'),
      countMentions: db.prepare(
        `SELECT (SELECT COUNT(*) FROM message_mentions WHERE user_id = @user AND conv_id = @conv AND seq > @from AND seq <= @to)
              + (SELECT COUNT(*) FROM messages WHERE conv_id = @conv AND mention_all = 1 AND seq > @from AND seq <= @to AND sender_id <> @user) AS n`,
      ),
      setRead: db.prepare('UPDATE entries SET read_seq = ?, unread = ?, mentions = ?, version = ? WHERE user_id = ? AND conv_id = ?'),
      setEntry: db.prepare(
        `UPDATE entries SET pinned = @pinned, muted = @muted, draft = @draft, deleted = @deleted,
           cleared_seq = @clearedSeq, read_seq = @readSeq, unread = @unread, mentions = @mentions, version = @version
         WHERE user_id = @user AND conv_id = @conv`,
      ),
      deliveredMark: db.prepare('SELECT inbox_seq, delivered_inbox_seq FROM users WHERE id = ?'),
      setDeliveredMark: db.prepare('UPDATE users SET delivered_inbox_seq = ? WHERE id = ?'),
      deliveredRange: db.prepare(
        `SELECT i.conv_id AS conv, m.sender_id AS sender, MAX(i.seq) AS seq
         FROM inbox i JOIN messages m ON m.conv_id = i.conv_id AND m.seq = i.seq
         WHERE i.user_id = ? AND i.inbox_seq > ? AND i.inbox_seq <= ? AND m.sender_id <> ?
         GROUP BY i.conv_id, m.sender_id`,
      ),
      raiseDelivered: db.prepare('UPDATE entries SET delivered_seq = ?, version = ? WHERE user_id = ? AND conv_id = ? AND delivered_seq < ?'),
      /**
       * Group delivered counts, set-based: one statement for all the newly acknowledged inbox
       * ranges of a flush (a JSON array of [user, from, to]). Each range's pointers are found by
       * the inbox primary key; every other member's non-system group message they point at
       * gains the number of ranges (= distinct users: one user's ranges never overlap) that
       * cover it; the new counts are returned, one row per message.
       */
      raiseCounts: db.prepare(
        `UPDATE messages SET delivered_count = delivered_count + x.n
         FROM (
           SELECT i.conv_id AS conv_id, i.seq AS seq, COUNT(*) AS n
           FROM json_each(?) r
           JOIN inbox i ON i.user_id = r.value ->> 0 AND i.inbox_seq > r.value ->> 1 AND i.inbox_seq <= r.value ->> 2
           JOIN messages m ON m.conv_id = i.conv_id AND m.seq = i.seq
           WHERE substr(i.conv_id, 1, 2) = 'g:' AND m.sender_id <> i.user_id AND m.kind <> 'system'
           GROUP BY i.conv_id, i.seq
         ) AS x
         WHERE messages.conv_id = x.conv_id AND messages.seq = x.seq
         RETURNING messages.conv_id AS conv, messages.seq AS seq, messages.sender_id AS sender, messages.delivered_count AS count`,
      ),
    };
  }

  async migrate(): Promise<void> {
    migrateSqlite(this.db);
  }

  async close(): Promise<void> {
    await this.handle.release();
  }

  /** The `synchronous` level in force on the connection every SQLite store of the file shares (read back from SQLite). */
  get synchronous(): 'off' | 'normal' | 'full' | 'extra' {
    const levels = ['off', 'normal', 'full', 'extra'] as const;
    return levels[this.db.pragma('synchronous', { simple: true }) as number] ?? 'full';
  }

  async createUser(user: NewUser): Promise<UserRecord> {
    try {
      this.q.insertUser.run({ ...user, usernameKey: usernameKey(user.username) });
    } catch (err) {
      if ((err as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE' || (err as { code?: string }).code === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
        throw new StoreConflictError(`user ${user.username}`);
      }
      throw err;
    }
    return { ...user, inboxSeq: 0, disabledAt: null, deletedAt: null };
  }

  async getUser(id: string): Promise<UserRecord | null> {
    const row = this.q.userById.get(id);
    return row ? userFromRow(row) : null;
  }

  async getUserByUsername(username: string): Promise<UserRecord | null> {
    const row = this.q.userByName.get({ key: usernameKey(username), raw: username });
    return row ? userFromRow(row) : null;
  }

  async setPasswordHash(userId: string, passwordHash: string): Promise<boolean> {
    return this.q.setPasswordHash.run(passwordHash, userId).changes > 0;
  }

  async setUserDisabled(userId: string, at: number | null): Promise<UserRecord | null> {
    const row = this.q.setDisabled.get(at, userId);
    return row ? userFromRow(row) : null;
  }

  async markUserDeleted(userId: string, at: number, tombstoneNickname: string): Promise<UserRecord | null> {
    const row = this.q.markDeleted.get(at, tombstoneNickname, userId);
    return row ? userFromRow(row) : null;
  }

  async existingUsers(ids: string[]): Promise<Set<string>> {
    const found = new Set<string>();
    for (const id of ids) {
      const row = this.q.userById.get(id) as { deleted_at: number | null } | undefined;
      if (row && row.deleted_at === null) found.add(id);
    }
    return found;
  }

  async createSession(session: NewSession): Promise<void> {
    this.q.insertSession.run(session);
  }

  async getSession(tokenHash: string, now: number): Promise<SessionRecord | null> {
    const row = this.q.sessionByHash.get(tokenHash, now);
    return row ? sessionFromRow(row) : null;
  }

  async listSessions(userId: string, now: number): Promise<SessionRecord[]> {
    return this.q.sessionsOfUser.all(userId, now).map(sessionFromRow);
  }

  async knownDevice(userId: string, deviceId: string): Promise<boolean> {
    return this.q.knownDevice.get(userId, deviceId) !== undefined;
  }

  async revokeSessions(tokenHashes: string[], now: number): Promise<SessionRecord[]> {
    return this.db.transaction(() => {
      const out: SessionRecord[] = [];
      for (const h of tokenHashes) {
        const row = this.q.revokeSession.get(now, h, now);
        if (row) out.push(sessionFromRow(row));
      }
      return out;
    })();
  }

  async setDeviceAck(userId: string, deviceId: string, inboxSeq: number): Promise<void> {
    this.q.setDeviceAck.run(userId, deviceId, inboxSeq);
  }

  async appendMessages(batch: AppendRequest[]): Promise<AppendOutcome[]> {
    return this.db.transaction(() => batch.map((req) => this.withEpoch(req, this.appendOne(req)))).immediate();
  }

  /** Record a membership change as the conversation's member epoch; stamp super-group messages with it. */
  private withEpoch(req: AppendRequest, out: AppendOutcome): AppendOutcome {
    if (!out.ok || out.duplicate) return out;
    const e = out.effect;
    if (e && (e.joined.length > 0 || e.left.length > 0 || e.becameSuper)) this.q.setMemberEpoch.run(out.message.seq, req.conv);
    if ((e?.kind ?? (this.q.convById.get(req.conv) as ConvRow | undefined)?.kind) === 'super') {
      out.epoch = (this.q.memberEpoch.get(req.conv) as { member_epoch: number }).member_epoch;
    }
    return out;
  }

  private appendOne(req: AppendRequest): AppendOutcome {
    const q = this.q;
    const existing = q.messageByIdem.get(req.sender, req.clientMsgId) as MessageRow | undefined;
    if (existing) {
      const pointers = existing.sender_inbox_seq > 0 ? [{ userId: req.sender, inboxSeq: existing.sender_inbox_seq }] : [];
      return { ok: true, duplicate: true, message: messageFromRow(existing), pointers };
    }
    const effect = req.effect;
    let conv = q.convById.get(req.conv) as ConvRow | undefined;
    if (effect?.op === 'create') return this.createGroup(req, effect, conv);
    if (!conv) {
      if (effect) return { ok: false, error: 'not_found', reason: 'no such group' };
      if (!req.directMembers) return { ok: false, error: 'not_found' };
      // A stranger cannot create someone else's direct conversation (and leaves no trace).
      if (!req.directMembers.includes(req.sender)) return { ok: false, error: 'forbidden' };
      q.insertConv.run(req.conv, 'direct', req.time);
      for (const m of req.directMembers) q.insertMember.run(req.conv, m, req.time);
      conv = { id: req.conv, kind: 'direct', last_seq: 0, created_at: req.time };
    }
    if (conv.kind === 'direct') {
      if (effect) return refusal(checkEffect(effect, null, req.sender, null, new Map(), req.time));
      // Sent to a user, the conversation id is derived from both parties: the sender is a member.
      if (!(partiesOf(req)?.includes(req.sender) ?? false) && !q.isMember.get(req.conv, req.sender)) return { ok: false, error: 'forbidden' };
      return this.post(req, 'direct');
    }
    const group = this.groupSync(req.conv);
    if (!group) return { ok: false, error: 'not_found', reason: 'no such group' };
    if (!effect) {
      const denied = checkPost(group, this.memberSync(req.conv, req.sender), req.time);
      if (denied) return { ok: false, ...denied };
      return this.post(req, group.kind);
    }
    const actor = this.memberSync(req.conv, req.sender);
    const targets = new Map<string, MemberRecord>();
    for (const u of effectTargets(effect)) {
      const m = this.memberSync(req.conv, u);
      if (m) targets.set(u, m);
    }
    const denied = checkEffect(effect, group, req.sender, actor, targets, req.time);
    if (denied) return { ok: false, ...denied };
    return this.applyEffect(req, effect, group, targets);
  }

  /** A message without effect into a conversation the sender may post to. */
  private post(req: AppendRequest, kind: ConversationRecord['kind']): AppendOutcome {
    const seq = this.bumpSeq(req.conv);
    const pointers = this.storeMessage(req, seq, kind);
    return { ok: true, duplicate: false, message: toMessage(req, seq), pointers };
  }

  private createGroup(req: AppendRequest, effect: Extract<GroupEffect, { op: 'create' }>, conv: ConvRow | undefined): AppendOutcome {
    const q = this.q;
    if (conv) {
      const existing = this.groupSync(req.conv);
      return existing ? refusal(checkEffect(effect, existing, req.sender, null, new Map(), req.time)) : { ok: false, error: 'invalid', reason: 'conversation exists' };
    }
    const denied = checkEffect(effect, null, req.sender, null, new Map(), req.time);
    if (denied) return { ok: false, ...denied };
    const members = [...new Set([req.sender, ...effect.members])];
    const kind = members.length > effect.group.superThreshold ? 'super' : 'group';
    q.insertConv.run(req.conv, kind, req.time);
    q.insertGroup.run({
      conv: req.conv,
      name: effect.group.name,
      avatar: effect.group.avatar,
      owner: req.sender,
      joinPolicy: effect.group.joinPolicy,
      inviteNeedsApproval: effect.group.inviteNeedsApproval ? 1 : 0,
      memberCount: members.length,
      maxMembers: effect.group.maxMembers,
      time: req.time,
      historyVisibility: effect.group.historyVisibility,
    });
    const seq = this.bumpSeq(req.conv);
    for (const u of members) this.join(req.conv, u, u === req.sender ? 'owner' : 'member', seq, req.time);
    const pointers = this.storeMessage(req, seq, kind);
    return { ok: true, duplicate: false, message: toMessage(req, seq), pointers, effect: { joined: members, left: [], kind, becameSuper: false } };
  }

  private applyEffect(req: AppendRequest, effect: Exclude<GroupEffect, { op: 'create' }>, group: GroupRecord, targets: Map<string, MemberRecord>): AppendOutcome {
    const q = this.q;
    const conv = req.conv;
    let kind = group.kind;
    const g = { ...group };
    const result: EffectResult = { joined: [], left: [], kind, becameSuper: false };
    const seq = this.bumpSeq(conv);
    // Before the notice: changes whose subjects receive it.
    switch (effect.op) {
      case 'add': {
        const fresh = [...new Set(effect.users)].filter((u) => !targets.has(u));
        for (const u of fresh) this.join(conv, u, 'member', seq, req.time);
        g.memberCount += fresh.length;
        result.joined = fresh;
        break;
      }
      case 'role':
        q.setRole.run(effect.role, conv, effect.user);
        break;
      case 'transfer':
        q.setRole.run('admin', conv, req.sender);
        q.setRole.run('owner', conv, effect.to);
        g.owner = effect.to;
        break;
      case 'mute':
        q.setMute.run(effect.until, conv, effect.user);
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
    const pointers = this.storeMessage(req, seq, kind);
    // After the notice: those who leave received it; now they are gone.
    switch (effect.op) {
      case 'remove':
      case 'leave': {
        const leaving = effect.op === 'leave' ? [req.sender] : [...new Set(effect.users)];
        for (const u of leaving) {
          if (q.leaveMember.run(seq, conv, u).changes === 0) continue;
          result.left.push(u);
          if (kind === 'super') this.freezeEntry(u, conv, seq);
        }
        g.memberCount -= result.left.length;
        break;
      }
      case 'dismiss': {
        result.left = (q.leaveAll.all(seq, conv) as { user_id: string }[]).map((r) => r.user_id).sort();
        g.memberCount = 0;
        g.dismissed = true;
        break;
      }
      case 'add':
        if (kind === 'group' && g.memberCount > effect.superThreshold) {
          q.setConvKind.run('super', conv);
          kind = 'super';
          result.becameSuper = true;
        }
        break;
      default:
        break;
    }
    result.kind = kind;
    q.updateGroup.run({
      conv,
      name: g.name,
      avatar: g.avatar,
      announcement: g.announcement,
      owner: g.owner,
      joinPolicy: g.joinPolicy,
      inviteNeedsApproval: g.inviteNeedsApproval ? 1 : 0,
      muteAll: g.muteAll ? 1 : 0,
      dismissed: g.dismissed ? 1 : 0,
      memberCount: g.memberCount,
      historyVisibility: g.historyVisibility,
    });
    return { ok: true, duplicate: false, message: toMessage(req, seq), pointers, effect: result };
  }

  private bumpSeq(conv: string): number {
    return (this.q.bumpConvSeq.get(conv) as { last_seq: number }).last_seq;
  }

  /** (Re)activate a member at `seq` and start their entry just before it. */
  private join(conv: string, user: string, role: MemberRecord['role'], seq: number, time: number): void {
    this.q.joinMember.run({ conv, user, role, seq, time });
    const v = this.q.bumpVersion.get(user) as { conv_version: number } | undefined;
    if (v) this.q.resetEntry.run({ user, conv, readSeq: seq - 1, version: v.conv_version });
  }

  private freezeEntry(user: string, conv: string, seq: number): void {
    const v = this.q.bumpVersion.get(user) as { conv_version: number } | undefined;
    if (v) this.q.freezeEntry.run(seq, v.conv_version, user, conv);
  }

  /**
   * Store the message at `seq` and fan it out. Direct chats and normal groups: a pointer and
   * an entry update per active member. Super groups: nothing per member — only the sender's
   * own entry reads up to the message; the member list is not read.
   */
  private storeMessage(req: AppendRequest, seq: number, kind: ConversationRecord['kind']): InboxPointer[] {
    const q = this.q;
    const all = req.mentions === 'all';
    const body = JSON.stringify(req.body);
    if (kind === 'super') {
      q.insertMessage.run(req.conv, seq, req.id, req.sender, req.clientMsgId, req.kind, body, req.time, 0, all ? 1 : 0);
      this.storeMentions(req, seq);
      const v = q.bumpVersion.get(req.sender) as { conv_version: number } | undefined;
      if (v) q.upsertEntryOnMessage.run({ user: req.sender, conv: req.conv, readSeq: seq, unread: 0, mention: 0, seq, version: v.conv_version, own: 1 });
      return [];
    }
    if (kind === 'group') return this.storeGroupMessage(req, seq, body);
    // A direct message sent to a user has exactly its two parties (the conversation id is
    // derived from them), so the member list need not be read.
    const parties = kind === 'direct' ? partiesOf(req) : null;
    const members = parties ? [...parties].sort() : (q.membersOf.all(req.conv) as { user_id: string }[]).map((m) => m.user_id);
    // The sender's pointer is taken first so the message row is written once, with it.
    const bumped = new Map<string, { inbox_seq: number; conv_version: number }>();
    if (members.includes(req.sender)) {
      const own = q.bumpInbox.get(req.sender) as { inbox_seq: number; conv_version: number } | undefined;
      if (own) bumped.set(req.sender, own);
    }
    q.insertMessage.run(req.conv, seq, req.id, req.sender, req.clientMsgId, req.kind, body, req.time, bumped.get(req.sender)?.inbox_seq ?? 0, all ? 1 : 0);
    const mentioned = this.storeMentions(req, seq);
    const pointers: InboxPointer[] = [];
    for (const user of members) {
      const own = user === req.sender ? 1 : 0;
      const b = own ? bumped.get(user) : (q.bumpInbox.get(user) as { inbox_seq: number; conv_version: number } | undefined);
      if (!b) continue; // a member without an account row gets no pointer
      const { inbox_seq: inboxSeq, conv_version: version } = b;
      q.insertInbox.run(user, inboxSeq, req.conv, seq);
      if (inboxSeq > this.ring && inboxSeq % 64 === 0) q.trimInbox.run(user, inboxSeq - this.ring);
      const mention = !own && (all || mentioned.has(user)) ? 1 : 0;
      q.upsertEntryOnMessage.run({ user, conv: req.conv, readSeq: own ? seq : 0, unread: own ? 0 : 1, mention, seq, version, own });
      pointers.push({ userId: user, inboxSeq });
    }
    return pointers;
  }

  /**
   * A normal group's message, written by set-based statements: one UPDATE bumps every active
   * member's inboxSeq and list version, one INSERT … SELECT writes their pointers, one upsert
   * their entries. Row by row from JavaScript it took three statement calls per member
   * (~24 µs per member: 12 ms per message at 500 members).
   */
  private storeGroupMessage(req: AppendRequest, seq: number, body: string): InboxPointer[] {
    const q = this.q;
    const all = req.mentions === 'all';
    const bumped = q.bumpMembers.all(req.conv) as { id: string; inbox_seq: number }[];
    const own = bumped.find((b) => b.id === req.sender)?.inbox_seq ?? 0;
    q.insertMessage.run(req.conv, seq, req.id, req.sender, req.clientMsgId, req.kind, body, req.time, own, all ? 1 : 0);
    this.storeMentions(req, seq);
    q.insertMemberPointers.run({ conv: req.conv, seq });
    q.upsertMemberEntries.run({ conv: req.conv, seq, sender: req.sender, all: all ? 1 : 0 });
    const pointers: InboxPointer[] = [];
    for (const b of bumped) {
      if (b.inbox_seq > this.ring && b.inbox_seq % 64 === 0) q.trimInbox.run(b.id, b.inbox_seq - this.ring);
      pointers.push({ userId: b.id, inboxSeq: b.inbox_seq });
    }
    return pointers.sort((x, y) => (x.userId < y.userId ? -1 : x.userId > y.userId ? 1 : 0));
  }

  /** Record the explicitly mentioned active members (not the sender) of a message; returns them. */
  private storeMentions(req: AppendRequest, seq: number): Set<string> {
    const mentioned = new Set<string>();
    if (!Array.isArray(req.mentions)) return mentioned;
    for (const u of req.mentions) {
      if (u === req.sender || mentioned.has(u) || !this.q.isMember.get(req.conv, u)) continue;
      mentioned.add(u);
      this.q.insertMention.run(u, req.conv, seq);
    }
    return mentioned;
  }

  private groupSync(conv: string): GroupRecord | null {
    const row = this.q.groupOne.get(conv) as GroupRow | undefined;
    return row ? groupFromRow(row) : null;
  }

  private memberSync(conv: string, userId: string): MemberRecord | null {
    const row = this.q.memberRow.get(conv, userId) as MemberRow | undefined;
    return row ? memberFromRow(row) : null;
  }

  // --- groups ---

  async getGroup(conv: string): Promise<GroupRecord | null> {
    return this.groupSync(conv);
  }

  async getMember(conv: string, userId: string): Promise<MemberRecord | null> {
    return this.memberSync(conv, userId);
  }

  async listMembers(conv: string, after: string, limit: number): Promise<MemberRecord[]> {
    return (this.q.memberPage.all(conv, after, limit) as MemberRow[]).map(memberFromRow);
  }

  async searchGroups(prefix: string, limit: number): Promise<GroupRecord[]> {
    if (prefix === '' || limit <= 0) return [];
    const exact = this.groupSync(prefix);
    const byName = (this.q.groupSearch.all({ prefix, limit }) as GroupRow[]).map(groupFromRow);
    return mergeSearch(exact && !exact.dismissed ? exact : null, byName, limit);
  }

  async superGroupsOf(userId: string): Promise<{ conv: string; lastSeq: number }[]> {
    return (this.q.superOf.all(userId) as { conv: string; last_seq: number }[]).map((r) => ({ conv: r.conv, lastSeq: r.last_seq }));
  }

  async membership(conv: string, userId: string): Promise<{ joinedSeq: number; leftSeq: number | null } | null> {
    const row = this.q.membership.get(conv, userId) as { joined_seq: number; left_seq: number | null } | undefined;
    return row ? { joinedSeq: Number(row.joined_seq), leftSeq: row.left_seq === null ? null : Number(row.left_seq) } : null;
  }

  async formerMemberLimit(conv: string, userId: string): Promise<number | null> {
    const row = this.q.leftSeq.get(conv, userId) as { left_seq: number | null } | undefined;
    return row?.left_seq ?? null;
  }

  async listJoinRequests(conv: string): Promise<JoinRequestRecord[]> {
    return (this.q.listJoinRequests.all(conv) as JoinRequestRow[]).map(joinRequestFromRow);
  }

  async putJoinRequest(req: JoinRequestRecord): Promise<void> {
    this.q.putJoinRequest.run({ ...req });
  }

  async takeJoinRequest(conv: string, userId: string): Promise<JoinRequestRecord | null> {
    const row = this.q.takeJoinRequest.get(conv, userId) as JoinRequestRow | undefined;
    return row ? joinRequestFromRow(row) : null;
  }

  async inboxState(userId: string): Promise<{ latest: number; ringStart: number }> {
    const row = this.q.userById.get(userId) as { inbox_seq: number } | undefined;
    const latest = row?.inbox_seq ?? 0;
    return { latest, ringStart: Math.max(1, latest - this.ring + 1) };
  }

  async readInbox(userId: string, after: number, limit: number): Promise<InboxItem[]> {
    const rows = this.q.readInbox.all(userId, after, limit) as (MessageRow & { inbox_seq: number })[];
    return rows.map((r) => ({ inboxSeq: r.inbox_seq, message: messageFromRow(r, userId) }));
  }

  async readHistory(conv: string, q: { before?: number; after?: number; limit: number; viewer?: string }): Promise<Message[]> {
    const rows =
      q.after !== undefined
        ? this.q.historyAfter.all(conv, q.after, q.limit)
        : this.q.historyBefore.all(conv, q.before ?? Number.MAX_SAFE_INTEGER, q.limit);
    return (rows as MessageRow[]).map((r) => messageFromRow(r, q.viewer));
  }

  async getConversation(conv: string): Promise<ConversationRecord | null> {
    const row = this.q.convById.get(conv) as { id: string; kind: ConversationRecord['kind']; last_seq: number; created_at: number; member_epoch: number } | undefined;
    return row ? { id: row.id, kind: row.kind, lastSeq: row.last_seq, createdAt: row.created_at, memberEpoch: row.member_epoch } : null;
  }

  async isMember(conv: string, userId: string): Promise<boolean> {
    return this.q.isMember.get(conv, userId) !== undefined;
  }

  async members(conv: string): Promise<string[]> {
    return (this.q.membersOf.all(conv) as { user_id: string }[]).map((r) => r.user_id);
  }

  async conversationChanges(userId: string, since: number, limit: number): Promise<{ version: number; entries: ConvEntry[] }> {
    return this.db.transaction(() => {
      const user = this.q.userById.get(userId) as { conv_version: number } | undefined;
      const rows = this.q.entryChanges.all(userId, since, limit) as EntryRow[];
      return { version: user?.conv_version ?? 0, entries: rows.map(entryFromRow) };
    })();
  }

  async getEntry(userId: string, conv: string): Promise<ConvEntry | null> {
    const row = this.q.entryOne.get(userId, conv) as EntryRow | undefined;
    return row ? entryFromRow(row) : null;
  }

  async markRead(userId: string, conv: string, seq: number): Promise<ConvEntry> {
    this.db.transaction(() => {
      const e = this.q.entryState.get(userId, conv) as EntryState | undefined;
      if (!e) throw new StoreNotFoundError(`conversation ${conv} for ${userId}`);
      const target = Math.min(seq, e.eff_last);
      if (target <= e.read_seq) return;
      const range = { conv, user: userId, from: target, to: e.eff_last };
      const { n: unread } = this.q.countUnread.get(range) as { n: number };
      const { n: mentions } = this.q.countMentions.get(range) as { n: number };
      const { conv_version: version } = this.q.bumpVersion.get(userId) as { conv_version: number };
      this.q.setRead.run(target, unread, mentions, version, userId, conv);
    }).immediate();
    return (await this.getEntry(userId, conv))!;
  }

  async updateEntry(userId: string, conv: string, patch: EntryPatch): Promise<ConvEntry> {
    this.db.transaction(() => {
      const e = this.q.entryState.get(userId, conv) as EntryState | undefined;
      if (!e) throw new StoreNotFoundError(`conversation ${conv} for ${userId}`);
      const { conv_version: version } = this.q.bumpVersion.get(userId) as { conv_version: number };
      const del = patch.deleted === true;
      this.q.setEntry.run({
        user: userId,
        conv,
        pinned: patch.pinned === undefined ? e.pinned : patch.pinned ? 1 : 0,
        muted: patch.muted === undefined ? e.muted : patch.muted ? 1 : 0,
        draft: patch.draft ?? e.draft,
        deleted: del ? 1 : e.deleted,
        clearedSeq: del ? e.eff_last : e.cleared_seq,
        readSeq: del ? Math.max(e.read_seq, e.eff_last) : e.read_seq,
        unread: del ? 0 : e.unread,
        mentions: del ? 0 : e.mentions,
        version,
      });
    }).immediate();
    return (await this.getEntry(userId, conv))!;
  }

  async recordAcks(acks: DeviceAck[]): Promise<AckOutcome> {
    return this.db.transaction(() => {
      const out: AckOutcome = { delivered: [], counts: [] };
      const ranges: CountRange[] = [];
      for (const a of acks) {
        this.q.setDeviceAck.run(a.userId, a.deviceId, a.inboxSeq);
        for (const seg of a.segments ?? [{ from: 0, to: a.inboxSeq }]) {
          if (seg.from > 0) this.skipDelivered(a.userId, seg.from);
          for (const u of this.markDeliveredSync(a.userId, seg.to, ranges)) out.delivered.push({ ...u, by: a.userId });
        }
      }
      out.counts = this.raiseCounts(ranges);
      return out;
    })();
  }

  async markDelivered(userId: string, inboxSeq: number): Promise<DeliveredUpdate[]> {
    return this.db.transaction(() => {
      const ranges: CountRange[] = [];
      const out = this.markDeliveredSync(userId, inboxSeq, ranges);
      this.raiseCounts(ranges);
      return out;
    })();
  }

  /** Move the user's delivered mark over inbox items a device skipped (full sync), raising nothing. */
  private skipDelivered(userId: string, skipTo: number): void {
    const mark = this.q.deliveredMark.get(userId) as { inbox_seq: number; delivered_inbox_seq: number } | undefined;
    if (!mark) return;
    const to = Math.min(skipTo, mark.inbox_seq);
    if (to > mark.delivered_inbox_seq) this.q.setDeliveredMark.run(to, userId);
  }

  private raiseCounts(ranges: CountRange[]): DeliveredCount[] {
    return ranges.length === 0 ? [] : (this.q.raiseCounts.all(JSON.stringify(ranges)) as DeliveredCount[]);
  }

  /**
   * Move the user's delivered mark. When the newly covered inbox range holds other members'
   * group messages, it is appended to `ranges` for the caller's `raiseCounts` (one statement
   * for all of them); ACKs of direct messages never add one.
   */
  private markDeliveredSync(userId: string, inboxSeq: number, ranges: CountRange[]): DeliveredUpdate[] {
    return this.db.transaction(() => {
      const mark = this.q.deliveredMark.get(userId) as { inbox_seq: number; delivered_inbox_seq: number } | undefined;
      if (!mark) return [];
      const upTo = Math.min(inboxSeq, mark.inbox_seq);
      if (upTo <= mark.delivered_inbox_seq) return [];
      const from = mark.delivered_inbox_seq;
      const rows = this.q.deliveredRange.all(userId, from, upTo, userId) as DeliveredUpdate[];
      this.q.setDeliveredMark.run(upTo, userId);
      if (rows.some((r) => isGroupConv(r.conv))) ranges.push([userId, from, upTo]);
      const out: DeliveredUpdate[] = [];
      for (const r of rows) {
        const entry = this.q.entryRaw.get(r.sender, r.conv) as { delivered_seq: number } | undefined;
        if (!entry || entry.delivered_seq >= r.seq) continue;
        const { conv_version: version } = this.q.bumpVersion.get(r.sender) as { conv_version: number };
        this.q.raiseDelivered.run(r.seq, version, r.sender, r.conv, r.seq);
        out.push({ conv: r.conv, seq: r.seq, sender: r.sender });
      }
      return out;
    })();
  }
}
