import postgres from 'postgres';
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
  type InboxPointer,
  type NewSession,
  type NewUser,
  type SessionRecord,
  type Store,
  type StoreOptions,
  type UserRecord,
} from './store.ts';
import { SCHEMA_SQL } from './schema.ts';
import { entryFromRow, messageFromRow, sessionFromRow, userFromRow, type EntryRow, type MessageRow } from './rows.ts';

export interface PostgresStoreOptions extends StoreOptions {
  /** postgres://user:pass@host:port/db */
  url: string;
  /** Connection pool size (default 10). */
  max?: number;
  /** Schema to keep the tables in (created by migrate()); default: the server's search_path. */
  schema?: string;
}

/** BIGINT columns come back as JS numbers (all our values are far below 2^53). */
type Types = { bigint: number };
type Sql = postgres.Sql<Types>;
type Tx = postgres.TransactionSql<Types>;

const ENTRY_SELECT = `
  SELECT e.*, c.kind AS conv_kind,
    m.id AS m_id, m.seq AS m_seq, m.sender_id AS m_sender_id, m.kind AS m_kind, m.body AS m_body, m.time AS m_time, m.client_msg_id AS m_client_msg_id,
    (SELECT MIN(u.seq) FROM messages u WHERE u.conv_id = e.conv_id AND u.seq > e.read_seq AND u.sender_id <> e.user_id) AS oldest_unread
  FROM entries e
  JOIN conversations c ON c.id = e.conv_id
  LEFT JOIN messages m ON m.conv_id = e.conv_id AND m.seq = e.last_seq AND e.last_seq > e.cleared_seq`;

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

type Mark = { id: string; inbox_seq: number; delivered_inbox_seq: number };

interface ConvState {
  lastSeq: number;
  startSeq: number;
  members: string[];
}

interface UserState {
  inboxSeq: number;
  version: number;
  startInboxSeq: number;
}

interface EntryAgg {
  user: string;
  conv: string;
  ownSeq: number;
  unreadDelta: number;
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

  constructor(opts: PostgresStoreOptions) {
    if (opts.schema !== undefined && !/^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(opts.schema)) {
      throw new Error(`invalid schema name: ${opts.schema}`);
    }
    this.ring = opts.ringCapacity;
    this.schema = opts.schema;
    this.sql = postgres(opts.url, {
      max: opts.max ?? 10,
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
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.sql.end({ timeout: 5 });
  }

  /** Run `fn` in a transaction; retry it on serialization failures, deadlocks and idempotency races. */
  private async tx<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return (await this.sql.begin(fn)) as T;
      } catch (err) {
        const e = err as PgError;
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
        INSERT INTO users (id, username, password_hash, nickname, created_at)
        VALUES (${user.id}, ${user.username}, ${user.passwordHash}, ${user.nickname}, ${user.createdAt})`;
    } catch (err) {
      if ((err as PgError).code === '23505') throw new StoreConflictError(`user ${user.username}`);
      throw err;
    }
    return { ...user, inboxSeq: 0 };
  }

  async getUser(id: string): Promise<UserRecord | null> {
    const [row] = await this.sql`SELECT * FROM users WHERE id = ${id}`;
    return row ? userFromRow(row) : null;
  }

  async getUserByUsername(username: string): Promise<UserRecord | null> {
    const [row] = await this.sql`SELECT * FROM users WHERE username = ${username}`;
    return row ? userFromRow(row) : null;
  }

  async existingUsers(ids: string[]): Promise<Set<string>> {
    if (ids.length === 0) return new Set();
    const rows = await this.sql<{ id: string }[]>`SELECT id FROM users WHERE id = ANY(${ids}::text[])`;
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

  private async appendTx(tx: Tx, batch: AppendRequest[]): Promise<AppendOutcome[]> {
    // 1. Create missing direct conversations (in id order). A concurrent creator makes us wait
    //    for its commit, after which ON CONFLICT does nothing.
    const toCreate = new Map<string, { members: [string, string]; time: number }>();
    for (const r of batch) {
      if (r.directMembers && r.directMembers.includes(r.sender) && !toCreate.has(r.conv)) {
        toCreate.set(r.conv, { members: r.directMembers, time: r.time });
      }
    }
    if (toCreate.size > 0) {
      const ids = [...toCreate.keys()].sort();
      const created = await tx<{ id: string }[]>`
        INSERT INTO conversations (id, kind, last_seq, created_at)
        SELECT x.id, 'direct', 0, x.t FROM unnest(${ids}::text[], ${ids.map((id) => toCreate.get(id)!.time)}::bigint[]) AS x(id, t)
        ORDER BY x.id
        ON CONFLICT (id) DO NOTHING
        RETURNING id`;
      if (created.length > 0) {
        const mc: string[] = [];
        const mu: string[] = [];
        const mt: number[] = [];
        for (const { id } of created) {
          const c = toCreate.get(id)!;
          for (const m of new Set(c.members)) {
            mc.push(id);
            mu.push(m);
            mt.push(c.time);
          }
        }
        await tx`
          INSERT INTO members (conv_id, user_id, joined_at)
          SELECT * FROM unnest(${mc}::text[], ${mu}::text[], ${mt}::bigint[])
          ON CONFLICT DO NOTHING`;
      }
    }

    // 2. Lock the conversations in id order; then read their members.
    const convIds = [...new Set(batch.map((r) => r.conv))].sort();
    const convRows = await tx<{ id: string; last_seq: number }[]>`
      SELECT id, last_seq FROM conversations WHERE id = ANY(${convIds}::text[]) ORDER BY id FOR UPDATE`;
    const convs = new Map<string, ConvState>();
    for (const c of convRows) convs.set(c.id, { lastSeq: Number(c.last_seq), startSeq: Number(c.last_seq), members: [] });
    if (convs.size > 0) {
      const memberRows = await tx<{ conv_id: string; user_id: string }[]>`
        SELECT conv_id, user_id FROM members WHERE conv_id = ANY(${[...convs.keys()]}::text[]) ORDER BY conv_id, user_id`;
      for (const m of memberRows) convs.get(m.conv_id)!.members.push(m.user_id);
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

    // 4. Classify each request; collect the users whose inboxes move.
    type Plan = { kind: 'dup-db'; row: MessageRow } | { kind: 'dup-batch'; first: number } | { kind: 'error'; error: 'not_found' | 'forbidden' } | { kind: 'new' };
    const plans: Plan[] = [];
    const firstInBatch = new Map<string, number>();
    const userIds = new Set<string>();
    batch.forEach((r, i) => {
      const key = idemKey(r.sender, r.clientMsgId);
      const row = existing.get(key);
      if (row) return void plans.push({ kind: 'dup-db', row });
      const first = firstInBatch.get(key);
      if (first !== undefined) return void plans.push({ kind: 'dup-batch', first });
      const conv = convs.get(r.conv);
      if (!conv) return void plans.push({ kind: 'error', error: r.directMembers ? 'forbidden' : 'not_found' });
      if (!conv.members.includes(r.sender)) return void plans.push({ kind: 'error', error: 'forbidden' });
      firstInBatch.set(key, i);
      for (const m of conv.members) userIds.add(m);
      plans.push({ kind: 'new' });
    });
    if (userIds.size === 0) return plans.map((p) => this.outcomeWithoutWrites(p));

    // 5. Lock the users in id order.
    const userRows = await tx<{ id: string; inbox_seq: number; conv_version: number }[]>`
      SELECT id, inbox_seq, conv_version FROM users WHERE id = ANY(${[...userIds].sort()}::text[]) ORDER BY id FOR UPDATE`;
    const users = new Map<string, UserState>();
    for (const u of userRows) {
      users.set(u.id, { inboxSeq: Number(u.inbox_seq), version: Number(u.conv_version), startInboxSeq: Number(u.inbox_seq) });
    }

    // 6. Assign seq and inboxSeq in memory (the rows are locked), then write everything in bulk.
    const msg = { conv: [] as string[], seq: [] as number[], id: [] as string[], sender: [] as string[], cid: [] as string[], kind: [] as string[], body: [] as string[], time: [] as number[], senderInbox: [] as number[] };
    const inbox = { user: [] as string[], inboxSeq: [] as number[], conv: [] as string[], seq: [] as number[] };
    const entries = new Map<string, EntryAgg>();
    const outcomes: AppendOutcome[] = [];
    batch.forEach((r, i) => {
      const plan = plans[i]!;
      if (plan.kind !== 'new') {
        if (plan.kind === 'dup-batch') {
          const first = outcomes[plan.first] as Extract<AppendOutcome, { ok: true }>;
          const senderPtr = first.pointers.find((p) => p.userId === r.sender)?.inboxSeq ?? 0;
          outcomes.push({ ok: true, duplicate: true, message: first.message, pointers: [{ userId: r.sender, inboxSeq: senderPtr }] });
        } else {
          outcomes.push(this.outcomeWithoutWrites(plan));
        }
        return;
      }
      const conv = convs.get(r.conv)!;
      const seq = ++conv.lastSeq;
      const pointers: InboxPointer[] = [];
      let senderInbox = 0;
      for (const m of conv.members) {
        const u = users.get(m);
        if (!u) continue; // a member without an account row gets no pointer
        const inboxSeq = ++u.inboxSeq;
        const version = ++u.version;
        inbox.user.push(m);
        inbox.inboxSeq.push(inboxSeq);
        inbox.conv.push(r.conv);
        inbox.seq.push(seq);
        const own = m === r.sender;
        if (own) senderInbox = inboxSeq;
        const ek = `${m}\u0000${r.conv}`;
        let e = entries.get(ek);
        if (!e) entries.set(ek, (e = { user: m, conv: r.conv, ownSeq: 0, unreadDelta: 0, lastSeq: seq, version }));
        e.lastSeq = seq;
        e.version = version;
        if (own) {
          e.ownSeq = seq;
          e.unreadDelta = 0;
        } else {
          e.unreadDelta++;
        }
        pointers.push({ userId: m, inboxSeq });
      }
      const bodyJson = JSON.stringify(r.body);
      msg.conv.push(r.conv);
      msg.seq.push(seq);
      msg.id.push(r.id);
      msg.sender.push(r.sender);
      msg.cid.push(r.clientMsgId);
      msg.kind.push(r.kind);
      msg.body.push(bodyJson);
      msg.time.push(r.time);
      msg.senderInbox.push(senderInbox);
      const message: Message = {
        id: r.id,
        conv: r.conv,
        seq,
        sender: r.sender,
        kind: r.kind,
        body: JSON.parse(bodyJson) as unknown,
        time: r.time,
        clientMsgId: r.clientMsgId,
      };
      outcomes.push({ ok: true, duplicate: false, message, pointers });
    });

    await tx`
      INSERT INTO messages (conv_id, seq, id, sender_id, client_msg_id, kind, body, time, sender_inbox_seq)
      SELECT * FROM unnest(${msg.conv}::text[], ${msg.seq}::bigint[], ${msg.id}::text[], ${msg.sender}::text[], ${msg.cid}::text[],
                           ${msg.kind}::text[], ${msg.body}::text[], ${msg.time}::bigint[], ${msg.senderInbox}::bigint[])`;
    if (inbox.user.length > 0) {
      await tx`
        INSERT INTO inbox (user_id, inbox_seq, conv_id, seq)
        SELECT * FROM unnest(${inbox.user}::text[], ${inbox.inboxSeq}::bigint[], ${inbox.conv}::text[], ${inbox.seq}::bigint[])`;
    }
    if (entries.size > 0) {
      const es = [...entries.values()];
      // read_seq carries the own seq (0: none in this batch); unread the count since then.
      await tx`
        INSERT INTO entries (user_id, conv_id, read_seq, unread, last_seq, version)
        SELECT * FROM unnest(${es.map((e) => e.user)}::text[], ${es.map((e) => e.conv)}::text[], ${es.map((e) => e.ownSeq)}::bigint[],
                             ${es.map((e) => e.unreadDelta)}::bigint[], ${es.map((e) => e.lastSeq)}::bigint[], ${es.map((e) => e.version)}::bigint[])
        ON CONFLICT (user_id, conv_id) DO UPDATE SET
          read_seq = CASE WHEN excluded.read_seq > 0 THEN GREATEST(entries.read_seq, excluded.read_seq) ELSE entries.read_seq END,
          unread = CASE WHEN excluded.read_seq > 0 THEN excluded.unread ELSE entries.unread + excluded.unread END,
          last_seq = excluded.last_seq,
          deleted = 0,
          version = excluded.version`;
    }
    const movedConvs = [...convs.entries()].filter(([, c]) => c.lastSeq > c.startSeq);
    await tx`
      UPDATE conversations c SET last_seq = x.s
      FROM unnest(${movedConvs.map(([id]) => id)}::text[], ${movedConvs.map(([, c]) => c.lastSeq)}::bigint[]) AS x(id, s)
      WHERE c.id = x.id`;
    const movedUsers = [...users.entries()].filter(([, u]) => u.inboxSeq > u.startInboxSeq);
    await tx`
      UPDATE users u SET inbox_seq = x.i, conv_version = x.v
      FROM unnest(${movedUsers.map(([id]) => id)}::text[], ${movedUsers.map(([, u]) => u.inboxSeq)}::bigint[],
                  ${movedUsers.map(([, u]) => u.version)}::bigint[]) AS x(id, i, v)
      WHERE u.id = x.id`;
    const trim = movedUsers.filter(
      ([, u]) => u.inboxSeq > this.ring && Math.floor(u.inboxSeq / TRIM_EVERY) > Math.floor(u.startInboxSeq / TRIM_EVERY),
    );
    if (trim.length > 0) {
      await tx`
        DELETE FROM inbox i
        USING unnest(${trim.map(([id]) => id)}::text[], ${trim.map(([, u]) => u.inboxSeq - this.ring)}::bigint[]) AS x(id, upto)
        WHERE i.user_id = x.id AND i.inbox_seq <= x.upto`;
    }
    return outcomes;
  }

  private outcomeWithoutWrites(
    plan: { kind: 'dup-db'; row: MessageRow } | { kind: 'error'; error: 'not_found' | 'forbidden' } | { kind: 'dup-batch' } | { kind: 'new' },
  ): AppendOutcome {
    if (plan.kind === 'dup-db') {
      return {
        ok: true,
        duplicate: true,
        message: messageFromRow(plan.row),
        pointers: [{ userId: plan.row.sender_id, inboxSeq: Number(plan.row.sender_inbox_seq) }],
      };
    }
    if (plan.kind === 'error') return { ok: false, error: plan.error };
    throw new Error(`unexpected plan ${plan.kind}`);
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
    return rows.map((r) => ({ inboxSeq: Number(r.inbox_seq), message: messageFromRow(r) }));
  }

  async readHistory(conv: string, q: { before?: number; after?: number; limit: number }): Promise<Message[]> {
    const rows =
      q.after !== undefined
        ? await this.sql<MessageRow[]>`SELECT * FROM messages WHERE conv_id = ${conv} AND seq > ${q.after} ORDER BY seq ASC LIMIT ${q.limit}`
        : await this.sql<MessageRow[]>`
            SELECT * FROM messages WHERE conv_id = ${conv} AND seq < ${q.before ?? Number.MAX_SAFE_INTEGER} ORDER BY seq DESC LIMIT ${q.limit}`;
    return rows.map(messageFromRow);
  }

  async getConversation(conv: string): Promise<ConversationRecord | null> {
    const [row] = await this.sql<{ id: string; kind: ConversationRecord['kind']; last_seq: number; created_at: number }[]>`
      SELECT id, kind, last_seq, created_at FROM conversations WHERE id = ${conv}`;
    return row ? { id: row.id, kind: row.kind, lastSeq: Number(row.last_seq), createdAt: Number(row.created_at) } : null;
  }

  async isMember(conv: string, userId: string): Promise<boolean> {
    const rows = await this.sql`SELECT 1 FROM members WHERE conv_id = ${conv} AND user_id = ${userId}`;
    return rows.length > 0;
  }

  async members(conv: string): Promise<string[]> {
    const rows = await this.sql<{ user_id: string }[]>`SELECT user_id FROM members WHERE conv_id = ${conv} ORDER BY user_id`;
    return rows.map((r) => r.user_id);
  }

  // --- conversation list ---

  async conversationChanges(userId: string, since: number, limit: number): Promise<{ version: number; entries: ConvEntry[] }> {
    return this.tx(async (tx) => {
      await tx`SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY`;
      const [user] = await tx<{ conv_version: number }[]>`SELECT conv_version FROM users WHERE id = ${userId}`;
      const rows = await tx.unsafe<EntryRow[]>(`${ENTRY_SELECT} WHERE e.user_id = $1 AND e.version > $2 ORDER BY e.version LIMIT $3`, [
        userId,
        since,
        limit,
      ]);
      return { version: user ? Number(user.conv_version) : 0, entries: rows.map(entryFromRow) };
    });
  }

  async getEntry(userId: string, conv: string): Promise<ConvEntry | null> {
    return this.entryIn(this.sql, userId, conv);
  }

  private async entryIn(sql: Sql | Tx, userId: string, conv: string): Promise<ConvEntry | null> {
    const [row] = await sql.unsafe<EntryRow[]>(`${ENTRY_SELECT} WHERE e.user_id = $1 AND e.conv_id = $2`, [userId, conv]);
    return row ? entryFromRow(row) : null;
  }

  async markRead(userId: string, conv: string, seq: number): Promise<ConvEntry> {
    return this.tx(async (tx) => {
      // Lock order as in appendMessages: the user row, then the entry.
      await tx`SELECT 1 FROM users WHERE id = ${userId} FOR UPDATE`;
      const [e] = await tx<{ read_seq: number; last_seq: number }[]>`
        SELECT read_seq, last_seq FROM entries WHERE user_id = ${userId} AND conv_id = ${conv}`;
      if (!e) throw new StoreNotFoundError(`conversation ${conv} for ${userId}`);
      const target = Math.min(seq, Number(e.last_seq));
      if (target > Number(e.read_seq)) {
        const [v] = await tx<{ conv_version: number }[]>`
          UPDATE users SET conv_version = conv_version + 1 WHERE id = ${userId} RETURNING conv_version`;
        if (!v) throw new StoreNotFoundError(`user ${userId}`);
        await tx`
          UPDATE entries SET read_seq = ${target}, version = ${v.conv_version},
            unread = (SELECT COUNT(*) FROM messages WHERE conv_id = ${conv} AND seq > ${target} AND sender_id <> ${userId})
          WHERE user_id = ${userId} AND conv_id = ${conv}`;
      }
      return (await this.entryIn(tx, userId, conv))!;
    });
  }

  async updateEntry(userId: string, conv: string, patch: EntryPatch): Promise<ConvEntry> {
    return this.tx(async (tx) => {
      const [v] = await tx<{ conv_version: number }[]>`
        UPDATE users SET conv_version = conv_version + 1 WHERE id = ${userId} RETURNING conv_version`;
      const [e] = await tx<
        { pinned: number; muted: number; draft: string; deleted: number; cleared_seq: number; read_seq: number; last_seq: number; unread: number }[]
      >`SELECT pinned, muted, draft, deleted, cleared_seq, read_seq, last_seq, unread FROM entries WHERE user_id = ${userId} AND conv_id = ${conv}`;
      if (!v || !e) throw new StoreNotFoundError(`conversation ${conv} for ${userId}`);
      const del = patch.deleted === true;
      await tx`
        UPDATE entries SET
          pinned = ${patch.pinned === undefined ? Number(e.pinned) : patch.pinned ? 1 : 0},
          muted = ${patch.muted === undefined ? Number(e.muted) : patch.muted ? 1 : 0},
          draft = ${patch.draft ?? e.draft},
          deleted = ${del ? 1 : Number(e.deleted)},
          cleared_seq = ${del ? Number(e.last_seq) : Number(e.cleared_seq)},
          read_seq = ${del ? Math.max(Number(e.read_seq), Number(e.last_seq)) : Number(e.read_seq)},
          unread = ${del ? 0 : Number(e.unread)},
          version = ${v.conv_version}
        WHERE user_id = ${userId} AND conv_id = ${conv}`;
      return (await this.entryIn(tx, userId, conv))!;
    });
  }

  async recordAcks(acks: DeviceAck[]): Promise<(DeliveredUpdate & { by: string })[]> {
    if (acks.length === 0) return [];
    // A consistent order keeps concurrent flushes from locking the same rows crosswise.
    const sorted = [...acks].sort((x, y) => (x.userId < y.userId ? -1 : x.userId > y.userId ? 1 : x.deviceId < y.deviceId ? -1 : x.deviceId > y.deviceId ? 1 : 0));
    return this.tx(async (tx) => {
      // Lock every user this flush may touch (the acknowledging users and the senders of
      // what they acknowledge) at once, in id order, so flushes and sends cannot deadlock.
      const lockIds = new Set<string>();
      for (const a of sorted) {
        lockIds.add(a.userId);
        for (const r of (await this.deliveredCandidates(tx, a.userId, a.inboxSeq)).rows) lockIds.add(r.sender);
      }
      await tx`SELECT 1 FROM users WHERE id = ANY(${[...lockIds].sort()}::text[]) ORDER BY id FOR UPDATE`;
      for (const a of sorted) await this.setDeviceAckIn(tx, a.userId, a.deviceId, a.inboxSeq);
      const out: (DeliveredUpdate & { by: string })[] = [];
      for (const a of sorted) {
        for (const u of await this.markDeliveredIn(tx, a.userId, a.inboxSeq)) out.push({ ...u, by: a.userId });
      }
      return out;
    });
  }

  async markDelivered(userId: string, inboxSeq: number): Promise<DeliveredUpdate[]> {
    return this.tx((tx) => this.markDeliveredIn(tx, userId, inboxSeq));
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

  private async markDeliveredIn(tx: Tx, userId: string, inboxSeq: number): Promise<DeliveredUpdate[]> {
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
