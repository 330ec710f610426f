import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { ConvEntry, InboxItem, Message } from '@magpie/protocol';
import {
  StoreConflictError,
  StoreNotFoundError,
  type AppendOutcome,
  type AppendRequest,
  type ConversationRecord,
  type DeliveredUpdate,
  type DeviceAck,
  type EntryPatch,
  type NewSession,
  type NewUser,
  type SessionRecord,
  type Store,
  type StoreOptions,
  type UserRecord,
} from './store.ts';
import { SCHEMA_SQL } from './schema.ts';
import { entryFromRow, messageFromRow, sessionFromRow, userFromRow, type EntryRow, type MessageRow } from './rows.ts';

export interface SqliteStoreOptions extends StoreOptions {
  /** File path, or ':memory:'. */
  path: string;
  /** 'full' fsyncs every commit (default: nothing acknowledged is lost on power failure); 'normal' survives process crashes only. */
  synchronous?: 'full' | 'normal';
}

const ENTRY_SELECT = `
  SELECT e.*, c.kind AS conv_kind,
    m.id AS m_id, m.seq AS m_seq, m.sender_id AS m_sender_id, m.kind AS m_kind, m.body AS m_body, m.time AS m_time, m.client_msg_id AS m_client_msg_id,
    (SELECT MIN(u.seq) FROM messages u WHERE u.conv_id = e.conv_id AND u.seq > e.read_seq AND u.sender_id <> e.user_id) AS oldest_unread
  FROM entries e
  JOIN conversations c ON c.id = e.conv_id
  LEFT JOIN messages m ON m.conv_id = e.conv_id AND m.seq = e.last_seq AND e.last_seq > e.cleared_seq`;

/**
 * Store on embedded SQLite (better-sqlite3, WAL). Calls run synchronously inside the
 * returned promise; a batch of appends is one transaction, so one fsync covers it.
 */
export class SqliteStore implements Store {
  readonly kind = 'sqlite' as const;
  private readonly db: Database.Database;
  private readonly ring: number;
  private readonly q: ReturnType<SqliteStore['prepare']>;

  constructor(opts: SqliteStoreOptions) {
    if (opts.path !== ':memory:') mkdirSync(dirname(opts.path), { recursive: true });
    this.db = new Database(opts.path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma(`synchronous = ${opts.synchronous === 'normal' ? 'NORMAL' : 'FULL'}`);
    this.db.pragma('foreign_keys = OFF');
    this.db.pragma('busy_timeout = 5000');
    this.ring = opts.ringCapacity;
    this.db.exec(SCHEMA_SQL);
    this.q = this.prepare();
  }

  private prepare() {
    const db = this.db;
    return {
      insertUser: db.prepare(
        'INSERT INTO users (id, username, password_hash, nickname, created_at) VALUES (@id, @username, @passwordHash, @nickname, @createdAt)',
      ),
      userById: db.prepare('SELECT * FROM users WHERE id = ?'),
      userByName: db.prepare('SELECT * FROM users WHERE username = ?'),
      insertSession: db.prepare(
        `INSERT INTO sessions (token_hash, user_id, device_id, platform, app_version, created_at, expires_at)
         VALUES (@tokenHash, @userId, @deviceId, @platform, @appVersion, @createdAt, @expiresAt)`,
      ),
      sessionByHash: db.prepare('SELECT * FROM sessions WHERE token_hash = ? AND revoked_at IS NULL AND expires_at > ?'),
      sessionsOfUser: db.prepare('SELECT * FROM sessions WHERE user_id = ? AND revoked_at IS NULL AND expires_at > ? ORDER BY created_at'),
      revokeSession: db.prepare('UPDATE sessions SET revoked_at = ? WHERE token_hash = ? AND revoked_at IS NULL AND expires_at > ? RETURNING *'),
      setDeviceAck: db.prepare(
        `INSERT INTO devices (user_id, device_id, acked_inbox_seq) VALUES (?, ?, ?)
         ON CONFLICT (user_id, device_id) DO UPDATE SET acked_inbox_seq = MAX(acked_inbox_seq, excluded.acked_inbox_seq)`,
      ),
      messageByIdem: db.prepare('SELECT * FROM messages WHERE sender_id = ? AND client_msg_id = ?'),
      convById: db.prepare('SELECT * FROM conversations WHERE id = ?'),
      insertConv: db.prepare('INSERT INTO conversations (id, kind, last_seq, created_at) VALUES (?, ?, 0, ?)'),
      insertMember: db.prepare('INSERT OR IGNORE INTO members (conv_id, user_id, joined_at) VALUES (?, ?, ?)'),
      isMember: db.prepare('SELECT 1 FROM members WHERE conv_id = ? AND user_id = ?'),
      membersOf: db.prepare('SELECT user_id FROM members WHERE conv_id = ? ORDER BY user_id'),
      bumpConvSeq: db.prepare('UPDATE conversations SET last_seq = last_seq + 1 WHERE id = ? RETURNING last_seq'),
      insertMessage: db.prepare(
        `INSERT INTO messages (conv_id, seq, id, sender_id, client_msg_id, kind, body, time, sender_inbox_seq)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      setSenderInboxSeq: db.prepare('UPDATE messages SET sender_inbox_seq = ? WHERE conv_id = ? AND seq = ?'),
      bumpInbox: db.prepare('UPDATE users SET inbox_seq = inbox_seq + 1, conv_version = conv_version + 1 WHERE id = ? RETURNING inbox_seq, conv_version'),
      bumpVersion: db.prepare('UPDATE users SET conv_version = conv_version + 1 WHERE id = ? RETURNING conv_version'),
      insertInbox: db.prepare('INSERT INTO inbox (user_id, inbox_seq, conv_id, seq) VALUES (?, ?, ?, ?)'),
      trimInbox: db.prepare('DELETE FROM inbox WHERE user_id = ? AND inbox_seq <= ?'),
      upsertEntryOnMessage: db.prepare(
        `INSERT INTO entries (user_id, conv_id, read_seq, unread, last_seq, version)
         VALUES (@user, @conv, @readSeq, @unread, @seq, @version)
         ON CONFLICT (user_id, conv_id) DO UPDATE SET
           read_seq = CASE WHEN @own THEN @seq ELSE read_seq END,
           unread = CASE WHEN @own THEN 0 ELSE unread + 1 END,
           last_seq = @seq, deleted = 0, version = @version`,
      ),
      readInbox: db.prepare(
        `SELECT i.inbox_seq, m.* FROM inbox i JOIN messages m ON m.conv_id = i.conv_id AND m.seq = i.seq
         WHERE i.user_id = ? AND i.inbox_seq > ? ORDER BY i.inbox_seq LIMIT ?`,
      ),
      historyBefore: db.prepare('SELECT * FROM messages WHERE conv_id = ? AND seq < ? ORDER BY seq DESC LIMIT ?'),
      historyAfter: db.prepare('SELECT * FROM messages WHERE conv_id = ? AND seq > ? ORDER BY seq ASC LIMIT ?'),
      entryChanges: db.prepare(`${ENTRY_SELECT} WHERE e.user_id = ? AND e.version > ? ORDER BY e.version LIMIT ?`),
      entryOne: db.prepare(`${ENTRY_SELECT} WHERE e.user_id = ? AND e.conv_id = ?`),
      entryRaw: db.prepare('SELECT * FROM entries WHERE user_id = ? AND conv_id = ?'),
      countUnread: db.prepare('SELECT COUNT(*) AS n FROM messages WHERE conv_id = ? AND seq > ? AND sender_id <> ?'),
      setRead: db.prepare('UPDATE entries SET read_seq = ?, unread = ?, version = ? WHERE user_id = ? AND conv_id = ?'),
      setEntry: db.prepare(
        `UPDATE entries SET pinned = @pinned, muted = @muted, draft = @draft, deleted = @deleted,
           cleared_seq = @clearedSeq, read_seq = @readSeq, unread = @unread, version = @version
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
    };
  }

  async migrate(): Promise<void> {
    this.db.exec(SCHEMA_SQL);
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }

  async createUser(user: NewUser): Promise<UserRecord> {
    try {
      this.q.insertUser.run(user);
    } catch (err) {
      if ((err as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE' || (err as { code?: string }).code === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
        throw new StoreConflictError(`user ${user.username}`);
      }
      throw err;
    }
    return { ...user, inboxSeq: 0 };
  }

  async getUser(id: string): Promise<UserRecord | null> {
    const row = this.q.userById.get(id);
    return row ? userFromRow(row) : null;
  }

  async getUserByUsername(username: string): Promise<UserRecord | null> {
    const row = this.q.userByName.get(username);
    return row ? userFromRow(row) : null;
  }

  async existingUsers(ids: string[]): Promise<Set<string>> {
    const found = new Set<string>();
    for (const id of ids) if (this.q.userById.get(id)) found.add(id);
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
    return this.db.transaction(() => batch.map((req) => this.appendOne(req)))();
  }

  private appendOne(req: AppendRequest): AppendOutcome {
    const q = this.q;
    const existing = q.messageByIdem.get(req.sender, req.clientMsgId) as MessageRow | undefined;
    if (existing) {
      return { ok: true, duplicate: true, message: messageFromRow(existing), pointers: [{ userId: req.sender, inboxSeq: existing.sender_inbox_seq }] };
    }
    let conv = q.convById.get(req.conv) as { id: string } | undefined;
    if (!conv) {
      if (!req.directMembers) return { ok: false, error: 'not_found' };
      // A stranger cannot create someone else's direct conversation (and leaves no trace).
      if (!req.directMembers.includes(req.sender)) return { ok: false, error: 'forbidden' };
      q.insertConv.run(req.conv, 'direct', req.time);
      for (const m of req.directMembers) q.insertMember.run(req.conv, m, req.time);
      conv = { id: req.conv };
    }
    if (!q.isMember.get(req.conv, req.sender)) return { ok: false, error: 'forbidden' };
    const { last_seq: seq } = q.bumpConvSeq.get(req.conv) as { last_seq: number };
    const bodyJson = JSON.stringify(req.body);
    q.insertMessage.run(req.conv, seq, req.id, req.sender, req.clientMsgId, req.kind, bodyJson, req.time, 0);
    const members = q.membersOf.all(req.conv) as { user_id: string }[];
    const pointers = [];
    for (const { user_id: user } of members) {
      const { inbox_seq: inboxSeq, conv_version: version } = q.bumpInbox.get(user) as { inbox_seq: number; conv_version: number };
      q.insertInbox.run(user, inboxSeq, req.conv, seq);
      if (inboxSeq > this.ring && inboxSeq % 64 === 0) q.trimInbox.run(user, inboxSeq - this.ring);
      const own = user === req.sender ? 1 : 0;
      q.upsertEntryOnMessage.run({ user, conv: req.conv, readSeq: own ? seq : 0, unread: own ? 0 : 1, seq, version, own });
      if (own) q.setSenderInboxSeq.run(inboxSeq, req.conv, seq);
      pointers.push({ userId: user, inboxSeq });
    }
    const message: Message = {
      id: req.id,
      conv: req.conv,
      seq,
      sender: req.sender,
      kind: req.kind,
      body: req.body,
      time: req.time,
      clientMsgId: req.clientMsgId,
    };
    return { ok: true, duplicate: false, message, pointers };
  }

  async inboxState(userId: string): Promise<{ latest: number; ringStart: number }> {
    const row = this.q.userById.get(userId) as { inbox_seq: number } | undefined;
    const latest = row?.inbox_seq ?? 0;
    return { latest, ringStart: Math.max(1, latest - this.ring + 1) };
  }

  async readInbox(userId: string, after: number, limit: number): Promise<InboxItem[]> {
    const rows = this.q.readInbox.all(userId, after, limit) as (MessageRow & { inbox_seq: number })[];
    return rows.map((r) => ({ inboxSeq: r.inbox_seq, message: messageFromRow(r) }));
  }

  async readHistory(conv: string, q: { before?: number; after?: number; limit: number }): Promise<Message[]> {
    const rows =
      q.after !== undefined
        ? this.q.historyAfter.all(conv, q.after, q.limit)
        : this.q.historyBefore.all(conv, q.before ?? Number.MAX_SAFE_INTEGER, q.limit);
    return (rows as MessageRow[]).map(messageFromRow);
  }

  async getConversation(conv: string): Promise<ConversationRecord | null> {
    const row = this.q.convById.get(conv) as { id: string; kind: ConversationRecord['kind']; last_seq: number; created_at: number } | undefined;
    return row ? { id: row.id, kind: row.kind, lastSeq: row.last_seq, createdAt: row.created_at } : null;
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
      const e = this.q.entryRaw.get(userId, conv) as { read_seq: number; last_seq: number } | undefined;
      if (!e) throw new StoreNotFoundError(`conversation ${conv} for ${userId}`);
      const target = Math.min(seq, e.last_seq);
      if (target <= e.read_seq) return;
      const { n } = this.q.countUnread.get(conv, target, userId) as { n: number };
      const { conv_version: version } = this.q.bumpVersion.get(userId) as { conv_version: number };
      this.q.setRead.run(target, n, version, userId, conv);
    })();
    return (await this.getEntry(userId, conv))!;
  }

  async updateEntry(userId: string, conv: string, patch: EntryPatch): Promise<ConvEntry> {
    this.db.transaction(() => {
      const e = this.q.entryRaw.get(userId, conv) as EntryRow | undefined;
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
        clearedSeq: del ? e.last_seq : e.cleared_seq,
        readSeq: del ? Math.max(Number(e.read_seq), Number(e.last_seq)) : e.read_seq,
        unread: del ? 0 : e.unread,
        version,
      });
    })();
    return (await this.getEntry(userId, conv))!;
  }

  async recordAcks(acks: DeviceAck[]): Promise<(DeliveredUpdate & { by: string })[]> {
    return this.db.transaction(() => {
      const out: (DeliveredUpdate & { by: string })[] = [];
      for (const a of acks) {
        this.q.setDeviceAck.run(a.userId, a.deviceId, a.inboxSeq);
        for (const u of this.markDeliveredSync(a.userId, a.inboxSeq)) out.push({ ...u, by: a.userId });
      }
      return out;
    })();
  }

  async markDelivered(userId: string, inboxSeq: number): Promise<DeliveredUpdate[]> {
    return this.markDeliveredSync(userId, inboxSeq);
  }

  private markDeliveredSync(userId: string, inboxSeq: number): DeliveredUpdate[] {
    return this.db.transaction(() => {
      const mark = this.q.deliveredMark.get(userId) as { inbox_seq: number; delivered_inbox_seq: number } | undefined;
      if (!mark) return [];
      const upTo = Math.min(inboxSeq, mark.inbox_seq);
      if (upTo <= mark.delivered_inbox_seq) return [];
      const rows = this.q.deliveredRange.all(userId, mark.delivered_inbox_seq, upTo, userId) as DeliveredUpdate[];
      this.q.setDeliveredMark.run(upTo, userId);
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
