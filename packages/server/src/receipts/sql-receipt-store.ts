import type { SqlEngine } from '../db/engine.ts';
import { popcount, withBits } from './bitmap.ts';
import type { NewTracked, NotifyLevel, NotifySetting, Privacy, PresencePrivacy, ReadMark, ReceiptCount, ReceiptStore, Snapshot, TrackedMessage } from './receipt-store.ts';

/** Snapshots are immutable: a node keeps recently used ones in memory. */
const SNAPSHOT_CACHE = 2000;
/**
 * A conditional update that lost to a concurrent writer reads again and retries: each loss
 * means another writer's update went through, so this ends; no bit is ever dropped.
 */

const bytes = (v: unknown): Buffer => (Buffer.isBuffer(v) ? v : Buffer.from(v as Uint8Array));
const num = (v: unknown): number => Number(v);

interface CountRow {
  seq: unknown;
  sender: string;
  read_count: unknown;
  size: unknown;
}

/** Rows per receipt_messages INSERT in `track` (a batch is cut into these lengths). */
const TRACK_CHUNKS = [32, 8, 1];
const trackTexts = new Map<number, string>();

function trackSql(n: number): string {
  let sql = trackTexts.get(n);
  if (!sql) {
    const rows = Array.from({ length: n }, () => '(?, ?, ?, ?, ?, ?)').join(', ');
    sql = `INSERT INTO receipt_messages (conv, seq, sender, epoch, bitmap, read_count) VALUES ${rows} ON CONFLICT (conv, seq) DO NOTHING`;
    trackTexts.set(n, sql);
  }
  return sql;
}

const countOf = (conv: string, r: CountRow): ReceiptCount => ({ conv, seq: num(r.seq), sender: r.sender, total: Math.max(0, num(r.size) - 1), read: Math.max(0, num(r.read_count) - 1) });

/**
 * Last-seen times are written together, once per this many ms: a reconnect storm closes
 * thousands of connections at once, and one write each cost a commit (an fsync on SQLite) per
 * close, holding the event loop. Reads see the times not yet written.
 */
const LAST_SEEN_FLUSH_MS = 100;
const LAST_SEEN_UPSERT =
  'INSERT INTO presence_last_seen (user_id, last_seen) VALUES (?, ?) ON CONFLICT (user_id) DO UPDATE SET last_seen = excluded.last_seen WHERE presence_last_seen.last_seen < excluded.last_seen';

/**
 * ReceiptStore on the shared engine (SQLite or PostgreSQL, one SQL text). The sender's own bit
 * is set when a message is tracked, so `read_count - 1` is the number of other members who read it.
 */
export class SqlReceiptStore implements ReceiptStore {
  private readonly snapshots = new Map<string, Snapshot>();
  /** Last-seen times waiting for the next flush, and those of the flush being committed. */
  private seenPending = new Map<string, number>();
  private seenWriting = new Map<string, number>();
  private seenTimer: NodeJS.Timeout | undefined;
  private seenFire: (() => void) | undefined;
  /** The next flush (times set now join it), and the latest flush started or scheduled. */
  private seenFlushed: Promise<void> | undefined;
  private seenCommitting: Promise<void> | undefined;

  constructor(private readonly db: SqlEngine) {}

  private cache(s: Snapshot): Snapshot {
    if (this.snapshots.size >= SNAPSHOT_CACHE) this.snapshots.delete(this.snapshots.keys().next().value!);
    this.snapshots.set(`${s.conv}\u0000${s.epoch}`, s);
    return s;
  }

  async latestSnapshot(conv: string): Promise<Snapshot | null> {
    const r = await this.db.get<{ epoch: unknown; members: string }>('SELECT epoch, members FROM receipt_snapshots WHERE conv = ? ORDER BY epoch DESC LIMIT 1', [conv]);
    return r ? this.cache({ conv, epoch: num(r.epoch), members: JSON.parse(r.members) as string[] }) : null;
  }

  async snapshot(conv: string, epoch: number): Promise<Snapshot | null> {
    const hit = this.snapshots.get(`${conv}\u0000${epoch}`);
    if (hit) return hit;
    const r = await this.db.get<{ members: string }>('SELECT members FROM receipt_snapshots WHERE conv = ? AND epoch = ?', [conv, epoch]);
    return r ? this.cache({ conv, epoch, members: JSON.parse(r.members) as string[] }) : null;
  }

  async putSnapshot(s: Snapshot, now: number): Promise<void> {
    await this.db.run('INSERT INTO receipt_snapshots (conv, epoch, members, size, created_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (conv, epoch) DO NOTHING', [s.conv, s.epoch, JSON.stringify(s.members), s.members.length, now]);
  }

  /**
   * Multi-row INSERTs of fixed lengths (TRACK_CHUNKS: each text prepared once), so the usual
   * flush — a few messages — is one statement and no explicit transaction: no BEGIN/COMMIT
   * round trips and no "idle in transaction" connection while the rows go one by one. More
   * statements than one share a transaction (SQLite: one fsync) and are issued together.
   */
  async track(rows: NewTracked[]): Promise<void> {
    if (rows.length === 0) return;
    const statements: [string, unknown[]][] = [];
    let i = 0;
    for (const n of TRACK_CHUNKS) {
      for (; rows.length - i >= n; i += n) {
        const params: unknown[] = [];
        for (let k = i; k < i + n; k++) {
          const r = rows[k]!;
          params.push(r.conv, r.seq, r.sender, r.epoch, r.bitmap, r.readCount);
        }
        statements.push([trackSql(n), params]);
      }
    }
    if (statements.length === 1) {
      await this.db.run(statements[0]![0], statements[0]![1]);
      return;
    }
    await this.db.transaction(async (tx) => {
      await Promise.all(statements.map(([sql, params]) => tx.run(sql, params)));
    });
  }

  async trackedBetween(conv: string, after: number, upTo: number, limit: number): Promise<TrackedMessage[]> {
    const rows = await this.db.all<{ seq: unknown; sender: string; epoch: unknown }>('SELECT seq, sender, epoch FROM receipt_messages WHERE conv = ? AND seq > ? AND seq <= ? ORDER BY seq LIMIT ?', [conv, after, upTo, limit]);
    return rows.map((r) => ({ conv, seq: num(r.seq), sender: r.sender, epoch: num(r.epoch) }));
  }

  async trackedAmong(conv: string, seqs: number[]): Promise<TrackedMessage[]> {
    if (seqs.length === 0) return [];
    const list = this.db.textList(seqs.map(String));
    const rows = await this.db.all<{ seq: unknown; sender: string; epoch: unknown }>(`SELECT seq, sender, epoch FROM receipt_messages WHERE conv = ? AND seq IN (SELECT CAST(value AS BIGINT) FROM ${list.sql} l) ORDER BY seq`, [conv, list.param]);
    return rows.map((r) => ({ conv, seq: num(r.seq), sender: r.sender, epoch: num(r.epoch) }));
  }

  async setRead(marks: ReadMark[]): Promise<ReceiptCount[]> {
    const out: ReceiptCount[] = [];
    for (const m of marks) {
      for (;;) {
        const row = await this.db.get<{ bitmap: unknown; version: unknown; sender: string; size: unknown }>(
          'SELECT m.bitmap, m.version, m.sender, s.size FROM receipt_messages m JOIN receipt_snapshots s ON s.conv = m.conv AND s.epoch = m.epoch WHERE m.conv = ? AND m.seq = ?',
          [m.conv, m.seq],
        );
        if (!row) break;
        const { bitmap, added } = withBits(bytes(row.bitmap), m.indices);
        if (added === 0) break;
        const readCount = popcount(bitmap);
        const changed = await this.db.run('UPDATE receipt_messages SET bitmap = ?, read_count = ?, version = version + 1 WHERE conv = ? AND seq = ? AND version = ?', [bitmap, readCount, m.conv, m.seq, num(row.version)]);
        if (changed === 1) {
          out.push(countOf(m.conv, { seq: m.seq, sender: row.sender, read_count: readCount, size: row.size }));
          break;
        }
      }
    }
    return out;
  }

  async counts(conv: string, seqs: number[]): Promise<ReceiptCount[]> {
    if (seqs.length === 0) return [];
    const list = this.db.textList(seqs.map(String));
    const rows = await this.db.all<CountRow>(
      `SELECT m.seq, m.sender, m.read_count, s.size FROM receipt_messages m JOIN receipt_snapshots s ON s.conv = m.conv AND s.epoch = m.epoch
       WHERE m.conv = ? AND m.seq IN (SELECT CAST(value AS BIGINT) FROM ${list.sql} l) ORDER BY m.seq`,
      [conv, list.param],
    );
    return rows.map((r) => countOf(conv, r));
  }

  async bitmapOf(conv: string, seq: number): Promise<{ sender: string; bitmap: Buffer; snapshot: Snapshot } | null> {
    const r = await this.db.get<{ sender: string; bitmap: unknown; epoch: unknown }>('SELECT sender, bitmap, epoch FROM receipt_messages WHERE conv = ? AND seq = ?', [conv, seq]);
    if (!r) return null;
    const snapshot = await this.snapshot(conv, num(r.epoch));
    return snapshot ? { sender: r.sender, bitmap: bytes(r.bitmap), snapshot } : null;
  }

  async report(userId: string, conv: string, seq: number): Promise<number> {
    return (await this.reportMany([{ userId, conv, seq }]))[0]!;
  }

  async reportMany(reports: { userId: string; conv: string; seq: number }[]): Promise<number[]> {
    if (reports.length === 0) return [];
    // Set-based: per conversation one read of the current positions and one upsert per
    // distinct seq, whatever the number of readers (a burst on one message is a few statements).
    return this.db.transaction(async (tx) => {
      const out: number[] = new Array<number>(reports.length);
      const convs = new Map<string, number[]>();
      reports.forEach((r, i) => {
        const list = convs.get(r.conv) ?? [];
        list.push(i);
        convs.set(r.conv, list);
      });
      for (const [conv, idx] of convs) {
        const users = [...new Set(idx.map((i) => reports[i]!.userId))];
        const list = tx.textList(users);
        const rows = await tx.all<{ user_id: string; read_seq: unknown }>(`SELECT user_id, read_seq FROM receipt_reads WHERE conv = ? AND user_id IN (SELECT value FROM ${list.sql} l)`, [conv, list.param]);
        const cur = new Map(rows.map((r) => [r.user_id, num(r.read_seq)]));
        const raised = new Map<string, number>();
        for (const i of idx) {
          const { userId, seq } = reports[i]!;
          const before = cur.get(userId) ?? 0;
          out[i] = before;
          if (seq > before) {
            cur.set(userId, seq);
            raised.set(userId, seq);
          }
        }
        const bySeq = new Map<number, string[]>();
        for (const [u, seq] of raised) bySeq.set(seq, [...(bySeq.get(seq) ?? []), u]);
        for (const [seq, us] of bySeq) {
          const l = tx.textList(us);
          await tx.run(
            `INSERT INTO receipt_reads (user_id, conv, read_seq) SELECT l.value, CAST(? AS TEXT), CAST(? AS BIGINT) FROM ${l.sql} l WHERE true
             ON CONFLICT (user_id, conv) DO UPDATE SET read_seq = excluded.read_seq WHERE receipt_reads.read_seq < excluded.read_seq`,
            [conv, seq, l.param],
          );
        }
      }
      return out;
    });
  }

  async privacy(userIds: string[]): Promise<Map<string, Privacy>> {
    const out = new Map<string, Privacy>();
    if (userIds.length === 0) return out;
    const list = this.db.textList(userIds);
    const rows = await this.db.all<{ user_id: string; read_receipts: unknown; presence: string }>(`SELECT user_id, read_receipts, presence FROM receipt_privacy WHERE user_id IN (SELECT value FROM ${list.sql} l)`, [list.param]);
    for (const r of rows) out.set(r.user_id, { readReceipts: num(r.read_receipts) === 1, presence: r.presence as PresencePrivacy });
    return out;
  }

  async setPrivacy(userId: string, p: Privacy, now: number): Promise<void> {
    await this.db.run(
      'INSERT INTO receipt_privacy (user_id, read_receipts, presence, updated_at) VALUES (?, ?, ?, ?) ON CONFLICT (user_id) DO UPDATE SET read_receipts = excluded.read_receipts, presence = excluded.presence, updated_at = excluded.updated_at',
      [userId, p.readReceipts ? 1 : 0, p.presence, now],
    );
  }

  async groupReceipts(conv: string): Promise<boolean | null> {
    const r = await this.db.get<{ enabled: unknown }>('SELECT enabled FROM receipt_group_settings WHERE conv = ?', [conv]);
    return r ? num(r.enabled) === 1 : null;
  }

  async setGroupReceipts(conv: string, enabled: boolean, now: number): Promise<void> {
    await this.db.run('INSERT INTO receipt_group_settings (conv, enabled, updated_at) VALUES (?, ?, ?) ON CONFLICT (conv) DO UPDATE SET enabled = excluded.enabled, updated_at = excluded.updated_at', [conv, enabled ? 1 : 0, now]);
  }

  async notifySettings(userId: string): Promise<NotifySetting[]> {
    const rows = await this.db.all<{ conv: string; level: string; version: unknown }>('SELECT conv, level, version FROM notify_settings WHERE user_id = ? ORDER BY version', [userId]);
    return rows.map((r) => ({ conv: r.conv, level: r.level as NotifyLevel, version: num(r.version) }));
  }

  async setNotify(userId: string, conv: string, level: NotifyLevel): Promise<NotifySetting> {
    return this.db.transaction(async (tx) => {
      const top = await tx.get<{ v: unknown }>('SELECT max(version) AS v FROM notify_settings WHERE user_id = ?', [userId]);
      const version = num(top?.v ?? 0) + 1;
      await tx.run('INSERT INTO notify_settings (user_id, conv, level, version) VALUES (?, ?, ?, ?) ON CONFLICT (user_id, conv) DO UPDATE SET level = excluded.level, version = excluded.version', [userId, conv, level, version]);
      return { conv, level, version };
    }, { lock: 4_242_019 });
  }

  async notifyLevels(conv: string, userIds: string[]): Promise<Map<string, NotifyLevel>> {
    const out = new Map<string, NotifyLevel>();
    if (userIds.length === 0) return out;
    const list = this.db.textList(userIds);
    const rows = await this.db.all<{ user_id: string; level: string }>(`SELECT user_id, level FROM notify_settings WHERE conv = ? AND user_id IN (SELECT value FROM ${list.sql} l)`, [conv, list.param]);
    for (const r of rows) out.set(r.user_id, r.level as NotifyLevel);
    return out;
  }

  async usersWithLevel(conv: string, level: NotifyLevel, after: string, limit: number): Promise<string[]> {
    const rows = await this.db.all<{ user_id: string }>('SELECT user_id FROM notify_settings WHERE conv = ? AND level = ? AND user_id > ? ORDER BY user_id LIMIT ?', [conv, level, after, limit]);
    return rows.map((r) => r.user_id);
  }

  async lastSeen(userIds: string[]): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    if (userIds.length === 0) return out;
    const list = this.db.textList(userIds);
    const rows = await this.db.all<{ user_id: string; last_seen: unknown }>(`SELECT user_id, last_seen FROM presence_last_seen WHERE user_id IN (SELECT value FROM ${list.sql} l)`, [list.param]);
    for (const r of rows) out.set(r.user_id, num(r.last_seen));
    // Times not written yet (the next flush's, or the one committing now) are newer or equal.
    for (const u of userIds) {
      const t = Math.max(this.seenPending.get(u) ?? 0, this.seenWriting.get(u) ?? 0);
      if (t > (out.get(u) ?? 0)) out.set(u, t);
    }
    return out;
  }

  /** Resolves once the time is committed (with the others of its flush, LAST_SEEN_FLUSH_MS later). */
  setLastSeen(userId: string, at: number): Promise<void> {
    if (!(at <= (this.seenPending.get(userId) ?? 0))) this.seenPending.set(userId, at);
    if (!this.seenFlushed) {
      let fire!: () => void;
      const due = new Promise<void>((resolve) => (fire = resolve));
      this.seenFire = fire;
      this.seenTimer = setTimeout(fire, LAST_SEEN_FLUSH_MS);
      // After the previous flush has committed: its times stay readable until then.
      const previous = this.seenCommitting;
      this.seenFlushed = this.seenCommitting = due.then(() => previous?.catch(() => undefined)).then(() => this.flushLastSeen());
    }
    return this.seenFlushed;
  }

  /** One transaction for every pending time, in user order (two nodes' flushes lock rows in the same order). */
  private async flushLastSeen(): Promise<void> {
    this.seenFlushed = undefined;
    this.seenTimer = undefined;
    const batch = [...this.seenPending].sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));
    this.seenWriting = this.seenPending;
    this.seenPending = new Map();
    try {
      await this.db.transaction(async (tx) => {
        await Promise.all(batch.map(([u, at]) => tx.run(LAST_SEEN_UPSERT, [u, at])));
      });
    } finally {
      this.seenWriting = new Map();
    }
  }

  async close(): Promise<void> {
    this.snapshots.clear();
    // Write what is pending now rather than after the timer.
    clearTimeout(this.seenTimer);
    this.seenFire?.();
    await this.seenCommitting?.catch(() => undefined);
  }
}
