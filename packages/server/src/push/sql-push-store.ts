import { forUpdate, type Dialect, type Queryable, type SqlEngine } from '../db/engine.ts';
import { retryTransaction } from '../db/retry.ts';
import type { PushStore } from './push-store.ts';
import { attemptFromRow, deviceFromRow, jobFromRow, EVENT_COLUMN, type AttemptRow, type DeviceRow, type JobRow } from './rows.ts';
import type {
  ClaimedJob,
  DevicePatch,
  DeviceUpsert,
  EnqueueResult,
  JobCompletion,
  NewPushJob,
  PushAttemptRecord,
  PushDevice,
  PushJobRecord,
  PushLane,
  PushProviderName,
  PushUserSettings,
  ReceiptEvent,
  StatDelta,
} from './types.ts';
import { DEFAULT_SETTINGS } from './types.ts';


/** The statements whose text differs by dialect: scalar max, row locks, tie order. */
function dialectSql(d: Dialect) {
  const greatest = d === 'postgres' ? 'GREATEST' : 'MAX';
  const skipLocked = d === 'postgres' ? ' FOR UPDATE SKIP LOCKED' : '';
  return {
    touch: `UPDATE push_devices SET last_seen = ${greatest}(last_seen, ?) WHERE user_id = ? AND device_id = ?`,
    mergeJob: `UPDATE push_jobs SET count = ${greatest}(count, ?), seq = ${greatest}(seq, ?), title = ?, body = ?, data = ?, expires_at = ${greatest}(expires_at, ?)
      WHERE id = ? AND status = 'queued'`,
    // A claim takes due jobs no other node holds (PostgreSQL: locked rows are skipped).
    claim: `UPDATE push_jobs SET status = 'sending', attempts = attempts + 1, lease_until = ?, dispatched_at = ?
      WHERE id IN (SELECT id FROM push_jobs WHERE lane = ? AND status = 'queued' AND not_before <= ? ORDER BY not_before LIMIT ?${skipLocked})
      RETURNING *`,
    expiredLeases: `SELECT id, user_id, device_id, collapse_key FROM push_jobs WHERE status = 'sending' AND lease_until < ?${skipLocked}`,
    jobState: `SELECT status, attempts, user_id, device_id, collapse_key, provider FROM push_jobs WHERE id = ?${forUpdate(d)}`,
    // Newest first; equal times in insertion order (SQLite's rowid; PostgreSQL: the time-ordered id).
    jobsOf: `SELECT * FROM push_jobs WHERE user_id = ? ORDER BY created_at DESC, ${d === 'sqlite' ? 'rowid' : 'id'} DESC LIMIT ?`,
  };
}

const DEVICE = 'SELECT * FROM push_devices WHERE user_id = ? AND device_id = ?';
const UPSERT_DEVICE = `INSERT INTO push_devices (user_id, device_id, platform, provider, token, vendor, sandbox, app_version, locale, time_zone, permission, last_seen, created_at, updated_at)
  VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
  ON CONFLICT (user_id, device_id) DO UPDATE SET platform = excluded.platform, provider = excluded.provider, token = excluded.token,
    vendor = excluded.vendor, sandbox = excluded.sandbox, app_version = excluded.app_version, locale = excluded.locale,
    time_zone = excluded.time_zone, permission = excluded.permission, last_seen = excluded.last_seen, updated_at = excluded.updated_at
  RETURNING *`;
const DROP_QUEUED_OF = "UPDATE push_jobs SET status = 'dropped', last_error = 'unbound' WHERE user_id = ? AND device_id = ? AND status = 'queued'";
const DELETE_TOKEN = 'DELETE FROM push_devices WHERE provider = ? AND token = ? RETURNING user_id, device_id';
const TAKE_QUOTA = `INSERT INTO push_quota (day, key, n) VALUES (?, ?, 1)
  ON CONFLICT (day, key) DO UPDATE SET n = push_quota.n + 1 WHERE push_quota.n < ? RETURNING n`;
const GIVE_BACK_QUOTA = 'UPDATE push_quota SET n = n - 1 WHERE day = ? AND key = ?';
const QUEUED_OF_KEY = "SELECT id, seq FROM push_jobs WHERE user_id = ? AND device_id = ? AND collapse_key = ? AND status = 'queued'";
const LAST_OF_KEY = `SELECT MAX(seq) AS seq, MAX(dispatched_at) AS dispatched FROM push_jobs
  WHERE user_id = ? AND device_id = ? AND collapse_key = ? AND status IN ('sending', 'sent')`;
const INSERT_JOB = `INSERT INTO push_jobs (id, lane, category, user_id, device_id, provider, collapse_key, conv, seq, count, title, body, data, not_before, expires_at, created_at, status)
  VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'queued')`;
const MARK_FINAL = 'UPDATE push_jobs SET status = ?, lease_until = NULL, last_error = ? WHERE id = ?';
const FINISHED = "status IN ('sent', 'failed', 'dropped')";

type Sql = ReturnType<typeof dialectSql>;

/**
 * PushStore on the server's database, SQLite or PostgreSQL (db/engine.ts); tables: migration
 * 0005. Each call that writes more than one row is one transaction. Safe for several nodes:
 * claims skip rows another node has locked (`FOR UPDATE SKIP LOCKED` on PostgreSQL; SQLite's
 * write transaction excludes every other writer), a completion locks its job, and the
 * partial unique index keeps one queued job per (user, device, collapse key) — two nodes
 * inserting one at once make one transaction fail and rerun, which then folds into it.
 */
export class SqlPushStore implements PushStore {
  readonly kind: Dialect;
  private readonly sql: Sql;

  constructor(private readonly db: SqlEngine) {
    this.kind = db.dialect;
    this.sql = dialectSql(db.dialect);
  }

  /** The tables come with the server's migrations (db/migrations/0005-push.ts). */
  async migrate(): Promise<void> {}

  /** The engine belongs to whoever opened it. */
  async close(): Promise<void> {}

  private tx<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    // Two nodes inserting the same queued collapse key: the loser reruns and merges.
    return retryTransaction(this.db, fn, { retryIf: (err) => (err as { code?: unknown }).code === '23505' });
  }

  private bool(v: boolean): boolean | number {
    return this.kind === 'postgres' ? v : v ? 1 : 0;
  }

  // --- registry ---

  async upsertDevice(d: DeviceUpsert): Promise<PushDevice> {
    return this.tx(async (tx) => {
      const moved = await tx.all<{ user_id: string; device_id: string }>(
        'DELETE FROM push_devices WHERE provider = ? AND token = ? AND NOT (user_id = ? AND device_id = ?) RETURNING user_id, device_id',
        [d.provider, d.token, d.userId, d.deviceId],
      );
      for (const m of moved) await tx.run(DROP_QUEUED_OF, [m.user_id, m.device_id]);
      const row = await tx.get<DeviceRow>(UPSERT_DEVICE, [
        d.userId, d.deviceId, d.platform, d.provider, d.token, d.vendor, this.bool(d.sandbox), d.appVersion, d.locale, d.timeZone, d.permission, d.now, d.now, d.now,
      ]);
      return deviceFromRow(row!);
    });
  }

  async patchDevice(userId: string, deviceId: string, patch: DevicePatch, now: number): Promise<PushDevice | null> {
    const sets: string[] = [];
    const args: unknown[] = [];
    const cols = { appVersion: 'app_version', locale: 'locale', timeZone: 'time_zone', permission: 'permission' } as const;
    for (const [k, col] of Object.entries(cols) as [keyof DevicePatch, string][]) {
      if (patch[k] !== undefined) {
        sets.push(`${col} = ?`);
        args.push(patch[k]);
      }
    }
    const row = await this.db.get<DeviceRow>(
      `UPDATE push_devices SET ${[...sets, 'updated_at = ?', 'last_seen = ?'].join(', ')} WHERE user_id = ? AND device_id = ? RETURNING *`,
      [...args, now, now, userId, deviceId],
    );
    return row ? deviceFromRow(row) : null;
  }

  async removeDevices(devices: { userId: string; deviceId: string }[]): Promise<number> {
    if (devices.length === 0) return 0;
    return this.tx(async (tx) => {
      let n = 0;
      for (const d of devices) {
        n += await tx.run('DELETE FROM push_devices WHERE user_id = ? AND device_id = ?', [d.userId, d.deviceId]);
        await tx.run(DROP_QUEUED_OF, [d.userId, d.deviceId]);
      }
      return n;
    });
  }

  async removeToken(provider: PushProviderName, token: string): Promise<boolean> {
    return this.tx((tx) => removeTokenTx(tx, provider, token));
  }

  async getDevice(userId: string, deviceId: string): Promise<PushDevice | null> {
    const row = await this.db.get<DeviceRow>(DEVICE, [userId, deviceId]);
    return row ? deviceFromRow(row) : null;
  }

  async devicesOf(userIds: string[]): Promise<Map<string, PushDevice[]>> {
    const ids = [...new Set(userIds)];
    const out = new Map<string, PushDevice[]>(ids.map((id) => [id, []]));
    if (ids.length === 0) return out;
    for (const r of await devicesOfUsers(this.db, ids)) out.get(r.user_id)!.push(deviceFromRow(r));
    return out;
  }

  async touchDevices(devices: { userId: string; deviceId: string }[], now: number): Promise<void> {
    if (devices.length === 0) return;
    await this.tx(async (tx) => {
      for (const d of devices) await tx.run(this.sql.touch, [now, d.userId, d.deviceId]);
    });
  }

  // --- settings ---

  async getSettings(userIds: string[]): Promise<Map<string, PushUserSettings>> {
    const ids = [...new Set(userIds)];
    const out = new Map<string, PushUserSettings>(ids.map((id) => [id, DEFAULT_SETTINGS]));
    if (ids.length === 0) return out;
    const list = this.db.textList(ids);
    for (const r of await this.db.all<{ user_id: string; settings: string }>(`SELECT user_id, settings FROM push_settings WHERE user_id IN ${list.sql}`, [list.param])) {
      out.set(r.user_id, { ...DEFAULT_SETTINGS, ...(JSON.parse(r.settings) as Partial<PushUserSettings>) });
    }
    return out;
  }

  async putSettings(userId: string, s: PushUserSettings): Promise<void> {
    await this.db.run('INSERT INTO push_settings (user_id, settings) VALUES (?, ?) ON CONFLICT (user_id) DO UPDATE SET settings = excluded.settings', [userId, JSON.stringify(s)]);
  }

  // --- quotas ---

  async takeQuota(day: string, takes: { key: string; limit: number }[]): Promise<boolean> {
    return (await this.takeQuotas(day, [takes]))[0]!;
  }

  async takeQuotas(day: string, requests: { key: string; limit: number }[][]): Promise<boolean[]> {
    if (requests.length === 0) return [];
    return this.tx(async (tx) => {
      const out: boolean[] = [];
      for (const takes of requests) out.push(await takeAll(tx, day, takes));
      return out;
    });
  }

  // --- jobs ---

  async enqueue(jobs: NewPushJob[], collapseWindowMs: number): Promise<EnqueueResult[]> {
    if (jobs.length === 0) return [];
    return this.tx(async (tx) => {
      const out: EnqueueResult[] = [];
      for (const j of jobs) out.push(await this.enqueueOne(tx, j, collapseWindowMs));
      return out;
    });
  }

  private async enqueueOne(tx: Queryable, j: NewPushJob, collapseWindowMs: number): Promise<EnqueueResult> {
    let notBefore = j.notBefore;
    const data = JSON.stringify(j.data);
    if (j.collapseKey !== null) {
      const queued = await tx.get<{ id: string; seq: number | string }>(QUEUED_OF_KEY, [j.userId, j.deviceId, j.collapseKey]);
      if (queued) {
        if (j.seq > 0 && Number(queued.seq) >= j.seq) return { outcome: 'duplicate', id: queued.id };
        await tx.run(this.sql.mergeJob, [j.count, j.seq, j.title, j.body, data, j.expiresAt, queued.id]);
        return { outcome: 'merged', id: queued.id };
      }
      const last = await tx.get<{ seq: number | string | null; dispatched: number | string | null }>(LAST_OF_KEY, [j.userId, j.deviceId, j.collapseKey]);
      if (j.seq > 0 && last?.seq != null && Number(last.seq) >= j.seq) return { outcome: 'duplicate', id: '' };
      if (last?.dispatched != null) notBefore = Math.max(notBefore, Number(last.dispatched) + collapseWindowMs);
    }
    await tx.run(INSERT_JOB, [
      j.id, j.lane, j.category, j.userId, j.deviceId, j.provider, j.collapseKey, j.conv, j.seq, j.count, j.title, j.body, data, notBefore, j.expiresAt, j.createdAt,
    ]);
    return { outcome: 'queued', id: j.id };
  }

  async claim(lane: PushLane, now: number, limit: number, leaseMs: number): Promise<{ jobs: ClaimedJob[]; unbound: PushJobRecord[] }> {
    return this.tx(async (tx) => {
      const rows = await tx.all<JobRow>(this.sql.claim, [now + leaseMs, now, lane, now, limit]);
      if (rows.length === 0) return { jobs: [], unbound: [] };
      const devices = new Map<string, PushDevice>();
      for (const d of await devicesOfUsers(tx, [...new Set(rows.map((r) => r.user_id))])) devices.set(`${d.user_id}\u0000${d.device_id}`, deviceFromRow(d));
      const jobs: ClaimedJob[] = [];
      const unbound: PushJobRecord[] = [];
      for (const r of rows) {
        const job = jobFromRow(r);
        const device = devices.get(`${job.userId}\u0000${job.deviceId}`);
        if (!device) {
          await tx.run("UPDATE push_jobs SET status = 'dropped', last_error = 'unbound', lease_until = NULL WHERE id = ?", [job.id]);
          unbound.push({ ...job, status: 'dropped', lastError: 'unbound' });
        } else jobs.push({ ...job, device });
      }
      jobs.sort((a, b) => a.notBefore - b.notBefore);
      return { jobs, unbound };
    });
  }

  async complete(completions: JobCompletion[]): Promise<void> {
    if (completions.length === 0) return;
    await this.tx(async (tx) => {
      for (const c of completions) {
        const st = await tx.get<JobState>(this.sql.jobState, [c.jobId]);
        await tx.run(
          `INSERT INTO push_attempts (job_id, attempt, at, provider, status, outcome, reason, latency_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT (job_id, attempt) DO NOTHING`,
          [c.jobId, c.attempt, c.at, st?.provider ?? 'unknown', c.result.status, c.result.outcome, c.result.reason ?? null, Math.round(c.latencyMs)],
        );
        if (c.removeToken) await removeTokenTx(tx, c.removeToken.provider, c.removeToken.token);
        if (!st || st.status !== 'sending' || Number(st.attempts) !== c.attempt) continue;
        const next = c.next;
        if (next.status === 'sent') await tx.run("UPDATE push_jobs SET status = 'sent', sent_at = ?, lease_until = NULL, last_error = NULL WHERE id = ?", [c.at, c.jobId]);
        else if (next.status === 'queued') await requeue(tx, c.jobId, st, next.notBefore, c.result.reason ?? c.result.outcome);
        else await tx.run(MARK_FINAL, [next.status, next.reason, c.jobId]);
      }
    });
  }

  async requeueExpired(now: number): Promise<number> {
    return this.tx(async (tx) => {
      const rows = await tx.all<JobKey>(this.sql.expiredLeases, [now]);
      for (const r of rows) await requeue(tx, r.id, r, now, 'lease_expired');
      return rows.length;
    });
  }

  async expire(now: number): Promise<PushJobRecord[]> {
    const rows = await this.db.all<JobRow>("UPDATE push_jobs SET status = 'dropped', last_error = 'expired' WHERE status = 'queued' AND expires_at <= ? RETURNING *", [now]);
    return rows.map(jobFromRow);
  }

  async nextDue(lane: PushLane): Promise<number | null> {
    const r = await this.db.get<{ t: number | string | null }>("SELECT MIN(not_before) AS t FROM push_jobs WHERE lane = ? AND status = 'queued'", [lane]);
    return r?.t == null ? null : Number(r.t);
  }

  async queueDepth(): Promise<Record<PushLane, number>> {
    const out: Record<PushLane, number> = { live: 0, bulk: 0 };
    for (const r of await this.db.all<{ lane: PushLane; n: number | string }>("SELECT lane, COUNT(*) AS n FROM push_jobs WHERE status IN ('queued', 'sending') GROUP BY lane")) {
      out[r.lane] = Number(r.n);
    }
    return out;
  }

  async getJob(id: string): Promise<PushJobRecord | null> {
    const r = await this.db.get<JobRow>('SELECT * FROM push_jobs WHERE id = ?', [id]);
    return r ? jobFromRow(r) : null;
  }

  async jobsOf(userId: string, limit: number): Promise<PushJobRecord[]> {
    return (await this.db.all<JobRow>(this.sql.jobsOf, [userId, limit])).map(jobFromRow);
  }

  async attemptsOf(jobId: string): Promise<PushAttemptRecord[]> {
    return (await this.db.all<AttemptRow>('SELECT * FROM push_attempts WHERE job_id = ? ORDER BY attempt', [jobId])).map(attemptFromRow);
  }

  async markEvent(jobId: string, event: ReceiptEvent, now: number): Promise<{ job: PushJobRecord; first: boolean } | null> {
    const col = EVENT_COLUMN[event];
    const updated = await this.db.get<JobRow>(`UPDATE push_jobs SET ${col} = ? WHERE id = ? AND ${col} IS NULL RETURNING *`, [now, jobId]);
    if (updated) return { job: jobFromRow(updated), first: true };
    const job = await this.getJob(jobId);
    return job ? { job, first: false } : null;
  }

  async prune(before: number): Promise<number> {
    return this.tx(async (tx) => {
      await tx.run(`DELETE FROM push_attempts WHERE job_id IN (SELECT id FROM push_jobs WHERE created_at < ? AND ${FINISHED})`, [before]);
      return tx.run(`DELETE FROM push_jobs WHERE created_at < ? AND ${FINISHED}`, [before]);
    });
  }

  // --- stats ---

  async addStats(deltas: StatDelta[]): Promise<void> {
    if (deltas.length === 0) return;
    await this.tx(async (tx) => {
      for (const d of deltas) {
        await tx.run(
          `INSERT INTO push_stats (day, category, provider, stage, n) VALUES (?, ?, ?, ?, ?)
           ON CONFLICT (day, category, provider, stage) DO UPDATE SET n = push_stats.n + excluded.n`,
          [d.day, d.category, d.provider, d.stage, d.n],
        );
      }
    });
  }

  async stats(fromDay: string, toDay: string): Promise<StatDelta[]> {
    const rows = await this.db.all<StatDelta>('SELECT day, category, provider, stage, n FROM push_stats WHERE day >= ? AND day <= ? ORDER BY day, category, provider, stage', [fromDay, toDay]);
    return rows.map((r) => ({ ...r, n: Number(r.n) }));
  }

  async getOrCreateSecret(key: string, make: () => string): Promise<string> {
    const have = await this.db.get<{ value: string }>('SELECT value FROM push_kv WHERE key = ?', [key]);
    if (have) return have.value;
    await this.db.run('INSERT INTO push_kv (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING', [key, make()]);
    return (await this.db.get<{ value: string }>('SELECT value FROM push_kv WHERE key = ?', [key]))!.value;
  }
}

interface JobKey {
  id: string;
  user_id: string;
  device_id: string;
  collapse_key: string | null;
}
interface JobState extends Omit<JobKey, 'id'> {
  status: string;
  attempts: number | string;
  provider: string;
}

async function devicesOfUsers(q: Queryable, userIds: string[]): Promise<DeviceRow[]> {
  const list = q.textList(userIds);
  return q.all<DeviceRow>(`SELECT * FROM push_devices WHERE user_id IN ${list.sql} ORDER BY created_at`, [list.param]);
}

async function removeTokenTx(tx: Queryable, provider: PushProviderName, token: string): Promise<boolean> {
  const gone = await tx.all<{ user_id: string; device_id: string }>(DELETE_TOKEN, [provider, token]);
  for (const g of gone) await tx.run(DROP_QUEUED_OF, [g.user_id, g.device_id]);
  return gone.length > 0;
}

/** Add one to every counter of the request if each stays within its limit; otherwise give back what was taken. */
async function takeAll(tx: Queryable, day: string, takes: { key: string; limit: number }[]): Promise<boolean> {
  const taken: string[] = [];
  for (const t of takes) {
    if (t.limit > 0 && (await tx.get(TAKE_QUOTA, [day, t.key, t.limit]))) {
      taken.push(t.key);
      continue;
    }
    for (const key of taken) await tx.run(GIVE_BACK_QUOTA, [day, key]);
    return false;
  }
  return true;
}

/** Back to the queue, unless a newer notification of the same key is queued: then this one folds into it. */
async function requeue(tx: Queryable, id: string, st: Omit<JobKey, 'id'>, notBefore: number, why: string): Promise<void> {
  if (st.collapse_key !== null && (await tx.get(QUEUED_OF_KEY, [st.user_id, st.device_id, st.collapse_key]))) {
    await tx.run(MARK_FINAL, ['dropped', 'collapsed', id]);
    return;
  }
  await tx.run("UPDATE push_jobs SET status = 'queued', not_before = ?, lease_until = NULL, last_error = ? WHERE id = ?", [notBefore, why, id]);
}
