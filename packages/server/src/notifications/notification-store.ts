import type { Audience, Notification, ServiceAccount } from '@magpie/protocol';
import { forUpdate, type Queryable, type SqlEngine } from '../db/index.ts';

/** Serialises list/segment fan-outs across nodes (PostgreSQL advisory lock): their ring rows are locked in one order. */
const FANOUT_LOCK = 4_242_021;
/** Recipients per set-based statement of a fan-out. */
const CHUNK = 500;

export interface BroadcastRecord {
  id: string;
  service: string;
  seq: number;
  feedSeq: number | null;
  audience: Audience;
  title: string;
  body: string;
  data: Record<string, string>;
  recipients: number;
  scheduleId: string | null;
  createdAt: number;
}

export interface Prefs {
  muted: boolean;
  unsubscribed: boolean;
  /** Audience-all feed seqs in (hideFrom, hideTo] are hidden (unsubscribed meanwhile); hideTo null: open-ended. */
  hideFrom: number | null;
  hideTo: number | null;
  readSeq: number;
}

export const NO_PREFS: Prefs = { muted: false, unsubscribed: false, hideFrom: null, hideTo: null, readSeq: 0 };

type Num = number | string;
interface ServiceRow {
  id: string;
  name: string;
  avatar: string;
  description: string;
  marketing: Num;
  last_seq: Num;
  last_feed: Num;
  created_at: Num;
}
interface BroadcastRow {
  id: string;
  service_id: string;
  seq: Num;
  feed_seq: Num | null;
  audience: string;
  audience_spec: string;
  title: string;
  body: string;
  data: string;
  recipients: Num;
  schedule_id: string | null;
  created_at: Num;
}
interface PrefsRow {
  muted: Num;
  unsubscribed: Num;
  hide_from: Num | null;
  hide_to: Num | null;
  read_seq: Num;
}

export const toService = (r: ServiceRow): ServiceAccount => ({
  id: r.id,
  name: r.name,
  avatar: r.avatar,
  description: r.description,
  marketing: Number(r.marketing) === 1,
  lastSeq: Number(r.last_seq),
  createdAt: Number(r.created_at),
});
const toBroadcast = (r: BroadcastRow): BroadcastRecord => ({
  id: r.id,
  service: r.service_id,
  seq: Number(r.seq),
  feedSeq: r.feed_seq === null ? null : Number(r.feed_seq),
  audience: JSON.parse(r.audience_spec) as Audience,
  title: r.title,
  body: r.body,
  data: JSON.parse(r.data) as Record<string, string>,
  recipients: Number(r.recipients),
  scheduleId: r.schedule_id,
  createdAt: Number(r.created_at),
});
const toPrefs = (r: PrefsRow | undefined): Prefs =>
  r ? { muted: Number(r.muted) === 1, unsubscribed: Number(r.unsubscribed) === 1, hideFrom: r.hide_from === null ? null : Number(r.hide_from), hideTo: r.hide_to === null ? null : Number(r.hide_to), readSeq: Number(r.read_seq) } : NO_PREFS;

/** A broadcast as one recipient sees it. */
export function notificationOf(b: BroadcastRecord, slot: number | null): Notification {
  return { id: b.id, service: b.service, seq: b.seq, audience: b.audience.kind, feedSeq: b.feedSeq, slot, title: b.title, body: b.body, data: b.data, createdAt: b.createdAt };
}

/** SQL condition: a feed row `b` is visible under the prefs row `p` (LEFT JOINed). */
const FEED_VISIBLE = `(p.hide_from IS NULL OR b.feed_seq <= p.hide_from OR (p.hide_to IS NOT NULL AND b.feed_seq > p.hide_to))`;

export interface NewBroadcast {
  id: string;
  service: string;
  audience: Audience;
  title: string;
  body: string;
  data: Record<string, string>;
  scheduleId: string | null;
  now: number;
}

/**
 * The notification tables on the server's database (migration 0014), SQLite and PostgreSQL.
 * Guarantees: a broadcast is stored once; each service numbers its broadcasts (`seq`) and its
 * audience-all feed (`feed_seq`) without gaps in commit order (the service row is locked while
 * numbering); a list/segment broadcast and every recipient's ring slot commit together, and a
 * ring keeps at most `capacity` slots (the oldest go). No statement touches the chat inbox.
 */
export class NotificationStore {
  constructor(
    private readonly db: SqlEngine,
    private readonly capacity: number,
  ) {}

  // --- services ---

  async createService(s: { id: string; name: string; avatar: string; description: string; marketing: boolean; now: number }): Promise<ServiceAccount> {
    await this.db.run(`INSERT INTO notif_services (id, name, avatar, description, marketing, last_seq, last_feed, created_at) VALUES (?, ?, ?, ?, ?, 0, 0, ?)`, [s.id, s.name, s.avatar, s.description, s.marketing ? 1 : 0, s.now]);
    return (await this.service(s.id))!;
  }

  async updateService(id: string, patch: { name?: string; avatar?: string; description?: string; marketing?: boolean }): Promise<ServiceAccount | null> {
    const sets: string[] = [];
    const params: unknown[] = [];
    for (const [k, v] of Object.entries(patch)) {
      if (v === undefined) continue;
      sets.push(`${k} = ?`);
      params.push(typeof v === 'boolean' ? (v ? 1 : 0) : v);
    }
    if (sets.length > 0) await this.db.run(`UPDATE notif_services SET ${sets.join(', ')} WHERE id = ?`, [...params, id]);
    return this.service(id);
  }

  async service(id: string): Promise<ServiceAccount | null> {
    const r = await this.db.get<ServiceRow>(`SELECT * FROM notif_services WHERE id = ?`, [id]);
    return r ? toService(r) : null;
  }

  async services(): Promise<ServiceAccount[]> {
    return (await this.db.all<ServiceRow>(`SELECT * FROM notif_services ORDER BY created_at, id`)).map(toService);
  }

  /** Newest feed seq of every service that has an audience-all broadcast. */
  async feedHeads(): Promise<Map<string, number>> {
    const rows = await this.db.all<{ id: string; last_feed: Num }>(`SELECT id, last_feed FROM notif_services WHERE last_feed > 0`);
    return new Map(rows.map((r) => [r.id, Number(r.last_feed)]));
  }

  // --- broadcasts ---

  /**
   * Store a broadcast. Audience all: one row, numbered in the service's feed. List and segment:
   * the recipients (existing users who have not unsubscribed) each get the next slot of their
   * ring, in the same transaction. `inTx` runs first inside it (a schedule marks itself sent
   * there, so a send and its mark commit or vanish together); when it answers false nothing is stored.
   */
  async broadcast(b: NewBroadcast, inTx?: (tx: Queryable) => Promise<boolean>): Promise<{ broadcast: BroadcastRecord; slots: [string, number][] } | null> {
    const all = b.audience.kind === 'all';
    return this.db.transaction(
      async (tx) => {
        if (inTx && !(await inTx(tx))) return null;
        const head = await tx.get<{ last_seq: Num; last_feed: Num }>(
          `UPDATE notif_services SET last_seq = last_seq + 1${all ? ', last_feed = last_feed + 1' : ''} WHERE id = ? RETURNING last_seq, last_feed`,
          [b.service],
        );
        if (!head) return null;
        const recipients = b.audience.kind === 'all' ? [] : await this.recipients(tx, b.service, b.audience);
        const record: BroadcastRecord = {
          id: b.id,
          service: b.service,
          seq: Number(head.last_seq),
          feedSeq: all ? Number(head.last_feed) : null,
          audience: b.audience,
          title: b.title,
          body: b.body,
          data: b.data,
          recipients: recipients.length,
          scheduleId: b.scheduleId,
          createdAt: b.now,
        };
        await tx.run(
          `INSERT INTO notif_broadcasts (id, service_id, seq, feed_seq, audience, audience_spec, title, body, data, recipients, schedule_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
          [record.id, record.service, record.seq, record.feedSeq, b.audience.kind, JSON.stringify(b.audience), b.title, b.body, JSON.stringify(b.data), recipients.length, b.scheduleId, b.now],
        );
        const slots: [string, number][] = [];
        for (let i = 0; i < recipients.length; i += CHUNK) slots.push(...(await this.fill(tx, recipients.slice(i, i + CHUNK), record)));
        return { broadcast: record, slots };
      },
      all ? {} : { lock: FANOUT_LOCK },
    );
  }

  /** Existing, not deleted users of a list or segment who have not unsubscribed from the service, by id. */
  private async recipients(tx: Queryable, service: string, audience: Exclude<Audience, { kind: 'all' }>): Promise<string[]> {
    let from: string;
    const params: unknown[] = [];
    if (audience.kind === 'list') {
      const l = tx.textList([...new Set(audience.userIds)]);
      from = l.sql;
      params.push(l.param);
    } else {
      const parts: string[] = [];
      for (const [key, v] of Object.entries(audience.attributes)) {
        const values = Array.isArray(v) ? v : [v];
        const l = tx.textList(values);
        parts.push(`SELECT user_id AS value FROM user_attributes WHERE key = ? AND value IN ${l.sql}`);
        params.push(key, l.param);
      }
      from = `(${parts.join(' INTERSECT ')})`;
    }
    const rows = await tx.all<{ id: string }>(
      `SELECT u.id FROM users u WHERE u.id IN ${from} AND u.deleted_at IS NULL
         AND NOT EXISTS (SELECT 1 FROM notif_prefs p WHERE p.user_id = u.id AND p.service_id = ? AND p.unsubscribed = 1)
       ORDER BY u.id`,
      [...params, service],
    );
    return rows.map((r) => r.id);
  }

  /** One chunk of a fan-out: advance each ring head, write the slots, drop slots past the capacity. */
  private async fill(tx: Queryable, users: string[], b: BroadcastRecord): Promise<[string, number][]> {
    const l = tx.textList(users);
    await tx.run(`INSERT INTO notif_rings (user_id, head) SELECT value, 0 FROM ${l.sql} v WHERE true ON CONFLICT (user_id) DO NOTHING`, [l.param]);
    await tx.run(`UPDATE notif_rings SET head = head + 1 WHERE user_id IN ${l.sql}`, [l.param]);
    const rows = await tx.all<{ user_id: string; slot: Num }>(
      `INSERT INTO notif_slots (user_id, slot, broadcast_id, service_id, seq, created_at)
       SELECT r.user_id, r.head, CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS BIGINT), CAST(? AS BIGINT) FROM notif_rings r WHERE r.user_id IN ${l.sql}
       RETURNING user_id, slot`,
      [b.id, b.service, b.seq, b.createdAt, l.param],
    );
    await tx.run(`DELETE FROM notif_slots WHERE user_id IN ${l.sql} AND slot <= (SELECT r.head FROM notif_rings r WHERE r.user_id = notif_slots.user_id) - ?`, [l.param, this.capacity]);
    return rows.map((r) => [r.user_id, Number(r.slot)]);
  }

  async broadcastsOf(service: string, before: number | undefined, limit: number): Promise<BroadcastRecord[]> {
    const rows = await this.db.all<BroadcastRow>(`SELECT * FROM notif_broadcasts WHERE service_id = ? AND seq < ? ORDER BY seq DESC LIMIT ?`, [service, before ?? Number.MAX_SAFE_INTEGER, limit]);
    return rows.map(toBroadcast);
  }

  async broadcastBySchedule(scheduleId: string): Promise<BroadcastRecord | null> {
    const r = await this.db.get<BroadcastRow>(`SELECT * FROM notif_broadcasts WHERE schedule_id = ?`, [scheduleId]);
    return r ? toBroadcast(r) : null;
  }

  // --- a user's view ---

  async ringHead(userId: string): Promise<number> {
    const r = await this.db.get<{ head: Num }>(`SELECT head FROM notif_rings WHERE user_id = ?`, [userId]);
    return r ? Number(r.head) : 0;
  }

  /** Ring slots after `after`, oldest first, with their broadcasts; and the lowest slot still kept. */
  async slotsAfter(userId: string, after: number, limit: number): Promise<{ items: { slot: number; b: BroadcastRecord }[]; lowest: number | null }> {
    const rows = await this.db.all<BroadcastRow & { slot: Num }>(
      `SELECT b.*, s.slot FROM notif_slots s JOIN notif_broadcasts b ON b.id = s.broadcast_id WHERE s.user_id = ? AND s.slot > ? ORDER BY s.slot LIMIT ?`,
      [userId, after, limit],
    );
    const low = await this.db.get<{ low: Num | null }>(`SELECT MIN(slot) AS low FROM notif_slots WHERE user_id = ?`, [userId]);
    return { items: rows.map((r) => ({ slot: Number(r.slot), b: toBroadcast(r) })), lowest: low?.low === null || low?.low === undefined ? null : Number(low.low) };
  }

  /** Audience-all broadcasts of a service after feed seq `after` that this user may see, oldest first. */
  async feedAfter(userId: string, service: string, after: number, limit: number): Promise<BroadcastRecord[]> {
    const rows = await this.db.all<BroadcastRow>(
      `SELECT b.* FROM notif_broadcasts b LEFT JOIN notif_prefs p ON p.user_id = ? AND p.service_id = b.service_id
       WHERE b.service_id = ? AND b.feed_seq > ? AND ${FEED_VISIBLE} ORDER BY b.feed_seq LIMIT ?`,
      [userId, service, after, limit],
    );
    return rows.map(toBroadcast);
  }

  async prefs(userId: string, service: string): Promise<Prefs> {
    return toPrefs(await this.db.get<PrefsRow>(`SELECT * FROM notif_prefs WHERE user_id = ? AND service_id = ?`, [userId, service]));
  }

  async prefsOf(userId: string): Promise<Map<string, Prefs>> {
    const rows = await this.db.all<PrefsRow & { service_id: string }>(`SELECT * FROM notif_prefs WHERE user_id = ?`, [userId]);
    return new Map(rows.map((r) => [r.service_id, toPrefs(r)]));
  }

  /**
   * Mute or unsubscribe. Unsubscribing hides the service's later feed broadcasts (from its
   * current feed head on) and stops ring fan-out; subscribing again shows what comes after.
   */
  async setPrefs(userId: string, service: string, patch: { muted?: boolean; unsubscribed?: boolean }, now: number): Promise<Prefs> {
    return this.db.transaction(async (tx) => {
      const s = await tx.get<{ last_feed: Num }>(`SELECT last_feed FROM notif_services WHERE id = ?${forUpdate(tx.dialect)}`, [service]);
      const head = Number(s?.last_feed ?? 0);
      await tx.run(`INSERT INTO notif_prefs (user_id, service_id, updated_at) VALUES (?, ?, ?) ON CONFLICT (user_id, service_id) DO NOTHING`, [userId, service, now]);
      const cur = toPrefs(await tx.get<PrefsRow>(`SELECT * FROM notif_prefs WHERE user_id = ? AND service_id = ?${forUpdate(tx.dialect)}`, [userId, service]));
      const next = { ...cur };
      if (patch.muted !== undefined) next.muted = patch.muted;
      if (patch.unsubscribed !== undefined && patch.unsubscribed !== cur.unsubscribed) {
        next.unsubscribed = patch.unsubscribed;
        if (patch.unsubscribed) {
          next.hideFrom = head;
          next.hideTo = null;
        } else next.hideTo = head;
      }
      await tx.run(`UPDATE notif_prefs SET muted = ?, unsubscribed = ?, hide_from = ?, hide_to = ?, updated_at = ? WHERE user_id = ? AND service_id = ?`, [
        next.muted ? 1 : 0,
        next.unsubscribed ? 1 : 0,
        next.hideFrom,
        next.hideTo,
        now,
        userId,
        service,
      ]);
      return next;
    });
  }

  /** Read up to `seq` (never backwards). */
  async markRead(userId: string, service: string, seq: number, now: number): Promise<void> {
    await this.db.run(
      `INSERT INTO notif_prefs (user_id, service_id, read_seq, updated_at) VALUES (?, ?, ?, ?)
       ON CONFLICT (user_id, service_id) DO UPDATE SET read_seq = CASE WHEN notif_prefs.read_seq > excluded.read_seq THEN notif_prefs.read_seq ELSE excluded.read_seq END, updated_at = excluded.updated_at`,
      [userId, service, seq, now],
    );
  }

  /** Unread notifications of a service for a user: visible feed rows and ring slots after the read seq. */
  async unread(userId: string, service: string, readSeq: number): Promise<number> {
    const feed = await this.db.get<{ n: Num }>(
      `SELECT COUNT(*) AS n FROM notif_broadcasts b LEFT JOIN notif_prefs p ON p.user_id = ? AND p.service_id = b.service_id
       WHERE b.service_id = ? AND b.feed_seq IS NOT NULL AND b.seq > ? AND ${FEED_VISIBLE}`,
      [userId, service, readSeq],
    );
    const ring = await this.db.get<{ n: Num }>(`SELECT COUNT(*) AS n FROM notif_slots WHERE user_id = ? AND service_id = ? AND seq > ?`, [userId, service, readSeq]);
    return Number(feed?.n ?? 0) + Number(ring?.n ?? 0);
  }

  /** Of these users, those who unsubscribed from (or muted, with `muted`) the service. */
  async optedOut(service: string, userIds: string[], opts: { muted: boolean }): Promise<Set<string>> {
    if (userIds.length === 0) return new Set();
    const l = this.db.textList(userIds);
    const rows = await this.db.all<{ user_id: string }>(
      `SELECT user_id FROM notif_prefs WHERE service_id = ? AND user_id IN ${l.sql} AND (unsubscribed = 1${opts.muted ? ' OR muted = 1' : ''})`,
      [service, l.param],
    );
    return new Set(rows.map((r) => r.user_id));
  }

  /** Users with a registered push device, by id after `after` (audience-all pushes page through them). */
  async pushUsersAfter(after: string, limit: number): Promise<string[]> {
    const rows = await this.db.all<{ user_id: string }>(`SELECT DISTINCT user_id FROM push_devices WHERE user_id > ? ORDER BY user_id LIMIT ?`, [after, limit]);
    return rows.map((r) => r.user_id);
  }

  // --- attributes ---

  async attributes(userId: string): Promise<Record<string, string>> {
    const rows = await this.db.all<{ key: string; value: string }>(`SELECT key, value FROM user_attributes WHERE user_id = ? ORDER BY key`, [userId]);
    return Object.fromEntries(rows.map((r) => [r.key, r.value]));
  }

  async setAttributes(userId: string, attrs: Record<string, string | null>): Promise<void> {
    await this.db.transaction(async (tx) => {
      for (const [key, value] of Object.entries(attrs)) {
        if (value === null) await tx.run(`DELETE FROM user_attributes WHERE user_id = ? AND key = ?`, [userId, key]);
        else await tx.run(`INSERT INTO user_attributes (user_id, key, value) VALUES (?, ?, ?) ON CONFLICT (user_id, key) DO UPDATE SET value = excluded.value`, [userId, key, value]);
      }
    });
  }

  // --- retention ---

  /** Delete broadcasts and ring slots created before `before`; answers how many of each. */
  async sweep(before: number): Promise<{ broadcasts: number; slots: number }> {
    const slots = await this.db.run(`DELETE FROM notif_slots WHERE created_at < ?`, [before]);
    const broadcasts = await this.db.run(`DELETE FROM notif_broadcasts WHERE created_at < ?`, [before]);
    return { broadcasts, slots };
  }

  /** A user's account is gone: their ring, prefs and attributes go too. */
  async dropUser(userId: string): Promise<void> {
    await this.db.transaction(async (tx) => {
      for (const t of ['notif_slots', 'notif_rings', 'notif_prefs', 'user_attributes']) await tx.run(`DELETE FROM ${t} WHERE user_id = ?`, [userId]);
    });
  }
}
