import postgres from 'postgres';
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

export const PUSH_PG_SCHEMA = `
CREATE TABLE IF NOT EXISTS push_devices (
  user_id TEXT NOT NULL,
  device_id TEXT NOT NULL,
  platform TEXT NOT NULL,
  provider TEXT NOT NULL,
  token TEXT NOT NULL,
  vendor TEXT,
  sandbox BOOLEAN NOT NULL DEFAULT FALSE,
  app_version TEXT NOT NULL DEFAULT '',
  locale TEXT NOT NULL DEFAULT '',
  time_zone TEXT NOT NULL DEFAULT 'UTC',
  permission TEXT NOT NULL,
  last_seen BIGINT NOT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  PRIMARY KEY (user_id, device_id)
);
CREATE UNIQUE INDEX IF NOT EXISTS push_devices_token ON push_devices (provider, token);
CREATE TABLE IF NOT EXISTS push_settings (user_id TEXT PRIMARY KEY, settings TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS push_quota (day TEXT NOT NULL, key TEXT NOT NULL, n INTEGER NOT NULL, PRIMARY KEY (day, key));
CREATE TABLE IF NOT EXISTS push_jobs (
  id TEXT PRIMARY KEY,
  lane TEXT NOT NULL,
  category TEXT NOT NULL,
  user_id TEXT NOT NULL,
  device_id TEXT NOT NULL,
  provider TEXT NOT NULL,
  collapse_key TEXT,
  conv TEXT,
  seq BIGINT NOT NULL,
  count INTEGER NOT NULL,
  title TEXT NOT NULL,
  body TEXT NOT NULL,
  data TEXT NOT NULL,
  not_before BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  created_at BIGINT NOT NULL,
  status TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  lease_until BIGINT,
  dispatched_at BIGINT,
  sent_at BIGINT,
  delivered_at BIGINT,
  displayed_at BIGINT,
  clicked_at BIGINT,
  last_error TEXT
);
CREATE INDEX IF NOT EXISTS push_jobs_due ON push_jobs (lane, not_before) WHERE status = 'queued';
CREATE UNIQUE INDEX IF NOT EXISTS push_jobs_collapse ON push_jobs (user_id, device_id, collapse_key) WHERE status = 'queued' AND collapse_key IS NOT NULL;
DROP INDEX IF EXISTS push_jobs_key;
CREATE INDEX IF NOT EXISTS push_jobs_ckey ON push_jobs (user_id, device_id, collapse_key);
CREATE INDEX IF NOT EXISTS push_jobs_lease ON push_jobs (lease_until) WHERE status = 'sending';
CREATE TABLE IF NOT EXISTS push_attempts (
  job_id TEXT NOT NULL,
  attempt INTEGER NOT NULL,
  at BIGINT NOT NULL,
  provider TEXT NOT NULL,
  status INTEGER NOT NULL,
  outcome TEXT NOT NULL,
  reason TEXT,
  latency_ms INTEGER NOT NULL,
  PRIMARY KEY (job_id, attempt)
);
CREATE TABLE IF NOT EXISTS push_stats (
  day TEXT NOT NULL,
  category TEXT NOT NULL,
  provider TEXT NOT NULL,
  stage TEXT NOT NULL,
  n BIGINT NOT NULL,
  PRIMARY KEY (day, category, provider, stage)
);
CREATE TABLE IF NOT EXISTS push_kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
`;

export interface PostgresPushStoreOptions {
  url: string;
  /** Pool size (default 5). */
  max?: number;
  /** Seconds an idle connection stays open (0: forever). Default 30. */
  idleTimeoutS?: number;
  /** Schema for the push_* tables (created by migrate()); default: the search_path. */
  schema?: string;
}

type Types = { bigint: number };
type Sql = postgres.Sql<Types>;
type Tx = postgres.TransactionSql<Types>;

const MIGRATE_LOCK = 0x7075736871; // "pushq"
const RETRYABLE = new Set(['40001', '40P01', '23505']);

/**
 * PushStore on PostgreSQL (postgres.js). Safe for several nodes: `claim` uses
 * `FOR UPDATE SKIP LOCKED`, and the collapse merge relies on a partial unique index
 * (one queued job per user, device and collapse key).
 */
export class PostgresPushStore implements PushStore {
  readonly kind = 'postgres' as const;
  private readonly sql: Sql;
  private readonly schema: string | undefined;

  constructor(opts: PostgresPushStoreOptions) {
    if (opts.schema !== undefined && !/^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(opts.schema)) throw new Error(`invalid schema name: ${opts.schema}`);
    this.schema = opts.schema;
    this.sql = postgres(opts.url, {
      max: opts.max ?? 5,
      // Idle connections are closed (the pool reopens on demand): a quiet node holds few.
      idle_timeout: opts.idleTimeoutS ?? 30,
      onnotice: () => {},
      types: { bigint: { to: 20, from: [20], serialize: (v: number) => String(v), parse: (v: string) => Number(v) } },
      ...(opts.schema ? { connection: { search_path: opts.schema } } : {}),
    });
  }

  async migrate(): Promise<void> {
    await this.sql.begin(async (tx) => {
      await tx`SELECT pg_advisory_xact_lock(${MIGRATE_LOCK}::bigint)`;
      if (this.schema) await tx`CREATE SCHEMA IF NOT EXISTS ${tx(this.schema)}`;
      await tx.unsafe(PUSH_PG_SCHEMA).simple();
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
        if (code === undefined || !RETRYABLE.has(code) || attempt >= 6) throw err;
        await new Promise((r) => setTimeout(r, Math.random() * 5 * attempt));
      }
    }
  }

  // --- registry ---

  async upsertDevice(d: DeviceUpsert): Promise<PushDevice> {
    return this.tx(async (tx) => {
      const moved = await tx<{ user_id: string; device_id: string }[]>`
        DELETE FROM push_devices WHERE provider = ${d.provider} AND token = ${d.token} AND NOT (user_id = ${d.userId} AND device_id = ${d.deviceId})
        RETURNING user_id, device_id`;
      for (const m of moved) await dropQueuedOf(tx, m.user_id, m.device_id);
      const [row] = await tx<DeviceRow[]>`
        INSERT INTO push_devices (user_id, device_id, platform, provider, token, vendor, sandbox, app_version, locale, time_zone, permission, last_seen, created_at, updated_at)
        VALUES (${d.userId}, ${d.deviceId}, ${d.platform}, ${d.provider}, ${d.token}, ${d.vendor}, ${d.sandbox}, ${d.appVersion}, ${d.locale}, ${d.timeZone}, ${d.permission}, ${d.now}, ${d.now}, ${d.now})
        ON CONFLICT (user_id, device_id) DO UPDATE SET platform = excluded.platform, provider = excluded.provider, token = excluded.token,
          vendor = excluded.vendor, sandbox = excluded.sandbox, app_version = excluded.app_version, locale = excluded.locale,
          time_zone = excluded.time_zone, permission = excluded.permission, last_seen = excluded.last_seen, updated_at = excluded.updated_at
        RETURNING *`;
      return deviceFromRow(row!);
    });
  }

  async patchDevice(userId: string, deviceId: string, patch: DevicePatch, now: number): Promise<PushDevice | null> {
    const [row] = await this.sql<DeviceRow[]>`
      UPDATE push_devices SET
        app_version = COALESCE(${patch.appVersion ?? null}::text, app_version),
        locale = COALESCE(${patch.locale ?? null}::text, locale),
        time_zone = COALESCE(${patch.timeZone ?? null}::text, time_zone),
        permission = COALESCE(${patch.permission ?? null}::text, permission),
        updated_at = ${now}, last_seen = ${now}
      WHERE user_id = ${userId} AND device_id = ${deviceId} RETURNING *`;
    return row ? deviceFromRow(row) : null;
  }

  async removeDevices(devices: { userId: string; deviceId: string }[]): Promise<number> {
    if (devices.length === 0) return 0;
    return this.tx(async (tx) => {
      let n = 0;
      for (const d of devices) {
        n += (await tx`DELETE FROM push_devices WHERE user_id = ${d.userId} AND device_id = ${d.deviceId}`).count;
        await dropQueuedOf(tx, d.userId, d.deviceId);
      }
      return n;
    });
  }

  async removeToken(provider: PushProviderName, token: string): Promise<boolean> {
    return this.tx(async (tx) => removeTokenTx(tx, provider, token));
  }

  async getDevice(userId: string, deviceId: string): Promise<PushDevice | null> {
    const [row] = await this.sql<DeviceRow[]>`SELECT * FROM push_devices WHERE user_id = ${userId} AND device_id = ${deviceId}`;
    return row ? deviceFromRow(row) : null;
  }

  async devicesOf(userIds: string[]): Promise<Map<string, PushDevice[]>> {
    const ids = [...new Set(userIds)];
    const out = new Map<string, PushDevice[]>(ids.map((id) => [id, []]));
    if (ids.length === 0) return out;
    const rows = await this.sql<DeviceRow[]>`SELECT * FROM push_devices WHERE user_id = ANY(${ids}) ORDER BY created_at`;
    for (const r of rows) out.get(r.user_id)!.push(deviceFromRow(r));
    return out;
  }

  async touchDevices(devices: { userId: string; deviceId: string }[], now: number): Promise<void> {
    if (devices.length === 0) return;
    await this.sql`
      UPDATE push_devices d SET last_seen = GREATEST(d.last_seen, ${now})
      FROM (SELECT * FROM unnest(${devices.map((d) => d.userId)}::text[], ${devices.map((d) => d.deviceId)}::text[]) AS t(u, dv)) t
      WHERE d.user_id = t.u AND d.device_id = t.dv`;
  }

  // --- settings ---

  async getSettings(userIds: string[]): Promise<Map<string, PushUserSettings>> {
    const ids = [...new Set(userIds)];
    const out = new Map<string, PushUserSettings>(ids.map((id) => [id, DEFAULT_SETTINGS]));
    if (ids.length === 0) return out;
    const rows = await this.sql<{ user_id: string; settings: string }[]>`SELECT user_id, settings FROM push_settings WHERE user_id = ANY(${ids})`;
    for (const r of rows) out.set(r.user_id, { ...DEFAULT_SETTINGS, ...(JSON.parse(r.settings) as Partial<PushUserSettings>) });
    return out;
  }

  async putSettings(userId: string, s: PushUserSettings): Promise<void> {
    await this.sql`INSERT INTO push_settings (user_id, settings) VALUES (${userId}, ${JSON.stringify(s)}) ON CONFLICT (user_id) DO UPDATE SET settings = excluded.settings`;
  }

  // --- quotas ---

  async takeQuota(day: string, takes: { key: string; limit: number }[]): Promise<boolean> {
    try {
      await this.tx(async (tx) => {
        for (const t of takes) {
          if (t.limit <= 0) throw new QuotaExhausted();
          const got = await tx`
            INSERT INTO push_quota (day, key, n) VALUES (${day}, ${t.key}, 1)
            ON CONFLICT (day, key) DO UPDATE SET n = push_quota.n + 1 WHERE push_quota.n < ${t.limit} RETURNING n`;
          if (got.length === 0) throw new QuotaExhausted();
        }
      });
      return true;
    } catch (err) {
      if (err instanceof QuotaExhausted) return false;
      throw err;
    }
  }

  async takeQuotas(day: string, requests: { key: string; limit: number }[][]): Promise<boolean[]> {
    if (requests.length === 0) return [];
    return this.tx(async (tx) => {
      const out: boolean[] = [];
      for (const takes of requests) {
        try {
          await tx.savepoint(async (sp) => {
            for (const t of takes) {
              if (t.limit <= 0) throw new QuotaExhausted();
              const got = await sp`
                INSERT INTO push_quota (day, key, n) VALUES (${day}, ${t.key}, 1)
                ON CONFLICT (day, key) DO UPDATE SET n = push_quota.n + 1 WHERE push_quota.n < ${t.limit} RETURNING n`;
              if (got.length === 0) throw new QuotaExhausted();
            }
          });
          out.push(true);
        } catch (err) {
          if (!(err instanceof QuotaExhausted)) throw err;
          out.push(false);
        }
      }
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

  private async enqueueOne(tx: Tx, j: NewPushJob, collapseWindowMs: number): Promise<EnqueueResult> {
    let notBefore = j.notBefore;
    if (j.collapseKey !== null) {
      const [last] = await tx<{ seq: number | null; dispatched: number | null }[]>`
        SELECT MAX(seq) AS seq, MAX(dispatched_at) AS dispatched FROM push_jobs
        WHERE user_id = ${j.userId} AND device_id = ${j.deviceId} AND collapse_key = ${j.collapseKey} AND status IN ('sending', 'sent')`;
      if (j.seq > 0 && last?.seq != null && Number(last.seq) >= j.seq) return { outcome: 'duplicate', id: '' };
      if (last?.dispatched != null) notBefore = Math.max(notBefore, Number(last.dispatched) + collapseWindowMs);
    }
    // One statement: insert, or fold into the queued job of the same key (the partial unique index decides).
    const rows = await tx<{ id: string }[]>`
      INSERT INTO push_jobs (id, lane, category, user_id, device_id, provider, collapse_key, conv, seq, count, title, body, data, not_before, expires_at, created_at, status)
      VALUES (${j.id}, ${j.lane}, ${j.category}, ${j.userId}, ${j.deviceId}, ${j.provider}, ${j.collapseKey}, ${j.conv}, ${j.seq}, ${j.count},
        ${j.title}, ${j.body}, ${JSON.stringify(j.data)}, ${notBefore}, ${j.expiresAt}, ${j.createdAt}, 'queued')
      ON CONFLICT (user_id, device_id, collapse_key) WHERE status = 'queued' AND collapse_key IS NOT NULL
      DO UPDATE SET count = GREATEST(push_jobs.count, excluded.count), seq = GREATEST(push_jobs.seq, excluded.seq), title = excluded.title,
        body = excluded.body, data = excluded.data, expires_at = GREATEST(push_jobs.expires_at, excluded.expires_at)
      WHERE excluded.seq = 0 OR push_jobs.seq < excluded.seq
      RETURNING id`;
    if (rows.length === 0) {
      const [q] = await tx<{ id: string }[]>`SELECT id FROM push_jobs WHERE user_id = ${j.userId} AND device_id = ${j.deviceId} AND collapse_key = ${j.collapseKey} AND status = 'queued'`;
      return { outcome: 'duplicate', id: q?.id ?? '' };
    }
    return rows[0]!.id === j.id ? { outcome: 'queued', id: j.id } : { outcome: 'merged', id: rows[0]!.id };
  }

  async claim(lane: PushLane, now: number, limit: number, leaseMs: number): Promise<{ jobs: ClaimedJob[]; unbound: PushJobRecord[] }> {
    return this.tx(async (tx) => {
      const rows = await tx<JobRow[]>`
        WITH due AS (
          SELECT id FROM push_jobs WHERE lane = ${lane} AND status = 'queued' AND not_before <= ${now}
          ORDER BY not_before LIMIT ${limit} FOR UPDATE SKIP LOCKED)
        UPDATE push_jobs j SET status = 'sending', attempts = j.attempts + 1, lease_until = ${now + leaseMs}, dispatched_at = ${now}
        FROM due WHERE j.id = due.id RETURNING j.*`;
      if (rows.length === 0) return { jobs: [], unbound: [] };
      const devs = await tx<DeviceRow[]>`
        SELECT d.* FROM push_devices d
        JOIN (SELECT * FROM unnest(${rows.map((r) => r.user_id)}::text[], ${rows.map((r) => r.device_id)}::text[]) AS t(u, dv)) t
          ON d.user_id = t.u AND d.device_id = t.dv`;
      const byKey = new Map(devs.map((d) => [`${d.user_id}\u0000${d.device_id}`, deviceFromRow(d)]));
      const jobs: ClaimedJob[] = [];
      const unbound: PushJobRecord[] = [];
      for (const r of rows) {
        const job = jobFromRow(r);
        const device = byKey.get(`${job.userId}\u0000${job.deviceId}`);
        if (!device) {
          await tx`UPDATE push_jobs SET status = 'dropped', last_error = 'unbound', lease_until = NULL WHERE id = ${job.id}`;
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
        const [st] = await tx<{ status: string; attempts: number; user_id: string; device_id: string; collapse_key: string | null; provider: string }[]>`
          SELECT status, attempts, user_id, device_id, collapse_key, provider FROM push_jobs WHERE id = ${c.jobId} FOR UPDATE`;
        await tx`
          INSERT INTO push_attempts (job_id, attempt, at, provider, status, outcome, reason, latency_ms)
          VALUES (${c.jobId}, ${c.attempt}, ${c.at}, ${st?.provider ?? 'unknown'}, ${c.result.status}, ${c.result.outcome}, ${c.result.reason ?? null}, ${Math.round(c.latencyMs)})
          ON CONFLICT (job_id, attempt) DO NOTHING`;
        if (c.removeToken) await removeTokenTx(tx, c.removeToken.provider, c.removeToken.token);
        if (!st || st.status !== 'sending' || st.attempts !== c.attempt) continue;
        const next = c.next;
        if (next.status === 'sent') await tx`UPDATE push_jobs SET status = 'sent', sent_at = ${c.at}, lease_until = NULL, last_error = NULL WHERE id = ${c.jobId}`;
        else if (next.status === 'queued') await requeueTx(tx, c.jobId, st, next.notBefore, c.result.reason ?? c.result.outcome);
        else await tx`UPDATE push_jobs SET status = ${next.status}, lease_until = NULL, last_error = ${next.reason} WHERE id = ${c.jobId}`;
      }
    });
  }

  async requeueExpired(now: number): Promise<number> {
    return this.tx(async (tx) => {
      const rows = await tx<{ id: string; user_id: string; device_id: string; collapse_key: string | null }[]>`
        SELECT id, user_id, device_id, collapse_key FROM push_jobs WHERE status = 'sending' AND lease_until < ${now} FOR UPDATE SKIP LOCKED`;
      for (const r of rows) await requeueTx(tx, r.id, r, now, 'lease_expired');
      return rows.length;
    });
  }

  async expire(now: number): Promise<PushJobRecord[]> {
    const rows = await this.sql<JobRow[]>`UPDATE push_jobs SET status = 'dropped', last_error = 'expired' WHERE status = 'queued' AND expires_at <= ${now} RETURNING *`;
    return rows.map(jobFromRow);
  }

  async nextDue(lane: PushLane): Promise<number | null> {
    const [r] = await this.sql<{ t: number | null }[]>`SELECT MIN(not_before) AS t FROM push_jobs WHERE lane = ${lane} AND status = 'queued'`;
    return r?.t == null ? null : Number(r.t);
  }

  async queueDepth(): Promise<Record<PushLane, number>> {
    const out: Record<PushLane, number> = { live: 0, bulk: 0 };
    const rows = await this.sql<{ lane: PushLane; n: string }[]>`SELECT lane, COUNT(*) AS n FROM push_jobs WHERE status IN ('queued', 'sending') GROUP BY lane`;
    for (const r of rows) out[r.lane] = Number(r.n);
    return out;
  }

  async getJob(id: string): Promise<PushJobRecord | null> {
    const [r] = await this.sql<JobRow[]>`SELECT * FROM push_jobs WHERE id = ${id}`;
    return r ? jobFromRow(r) : null;
  }

  async jobsOf(userId: string, limit: number): Promise<PushJobRecord[]> {
    const rows = await this.sql<JobRow[]>`SELECT * FROM push_jobs WHERE user_id = ${userId} ORDER BY created_at DESC, id DESC LIMIT ${limit}`;
    return rows.map(jobFromRow);
  }

  async attemptsOf(jobId: string): Promise<PushAttemptRecord[]> {
    const rows = await this.sql<AttemptRow[]>`SELECT * FROM push_attempts WHERE job_id = ${jobId} ORDER BY attempt`;
    return rows.map(attemptFromRow);
  }

  async markEvent(jobId: string, event: ReceiptEvent, now: number): Promise<{ job: PushJobRecord; first: boolean } | null> {
    const col = EVENT_COLUMN[event];
    const updated = await this.sql<JobRow[]>`UPDATE push_jobs SET ${this.sql(col)} = ${now} WHERE id = ${jobId} AND ${this.sql(col)} IS NULL RETURNING *`;
    if (updated[0]) return { job: jobFromRow(updated[0]), first: true };
    const job = await this.getJob(jobId);
    return job ? { job, first: false } : null;
  }

  async prune(before: number): Promise<number> {
    return this.tx(async (tx) => {
      await tx`DELETE FROM push_attempts WHERE job_id IN (SELECT id FROM push_jobs WHERE created_at < ${before} AND status IN ('sent', 'failed', 'dropped'))`;
      return (await tx`DELETE FROM push_jobs WHERE created_at < ${before} AND status IN ('sent', 'failed', 'dropped')`).count;
    });
  }

  // --- stats ---

  async addStats(deltas: StatDelta[]): Promise<void> {
    if (deltas.length === 0) return;
    await this.sql`
      INSERT INTO push_stats (day, category, provider, stage, n)
      SELECT * FROM unnest(${deltas.map((d) => d.day)}::text[], ${deltas.map((d) => d.category)}::text[], ${deltas.map((d) => d.provider)}::text[],
        ${deltas.map((d) => d.stage)}::text[], ${deltas.map((d) => d.n)}::bigint[])
      ON CONFLICT (day, category, provider, stage) DO UPDATE SET n = push_stats.n + excluded.n`;
  }

  async stats(fromDay: string, toDay: string): Promise<StatDelta[]> {
    const rows = await this.sql<StatDelta[]>`SELECT day, category, provider, stage, n FROM push_stats WHERE day >= ${fromDay} AND day <= ${toDay} ORDER BY day, category, provider, stage`;
    return rows.map((r) => ({ ...r, n: Number(r.n) }));
  }

  async getOrCreateSecret(key: string, make: () => string): Promise<string> {
    const [have] = await this.sql<{ value: string }[]>`SELECT value FROM push_kv WHERE key = ${key}`;
    if (have) return have.value;
    await this.sql`INSERT INTO push_kv (key, value) VALUES (${key}, ${make()}) ON CONFLICT (key) DO NOTHING`;
    const [row] = await this.sql<{ value: string }[]>`SELECT value FROM push_kv WHERE key = ${key}`;
    return row!.value;
  }
}

class QuotaExhausted extends Error {}

async function dropQueuedOf(tx: Tx, userId: string, deviceId: string): Promise<void> {
  await tx`UPDATE push_jobs SET status = 'dropped', last_error = 'unbound' WHERE user_id = ${userId} AND device_id = ${deviceId} AND status = 'queued'`;
}

async function removeTokenTx(tx: Tx, provider: PushProviderName, token: string): Promise<boolean> {
  const gone = await tx<{ user_id: string; device_id: string }[]>`DELETE FROM push_devices WHERE provider = ${provider} AND token = ${token} RETURNING user_id, device_id`;
  for (const g of gone) await dropQueuedOf(tx, g.user_id, g.device_id);
  return gone.length > 0;
}

async function requeueTx(tx: Tx, id: string, st: { user_id: string; device_id: string; collapse_key: string | null }, notBefore: number, why: string): Promise<void> {
  if (st.collapse_key !== null) {
    const [q] = await tx`SELECT id FROM push_jobs WHERE user_id = ${st.user_id} AND device_id = ${st.device_id} AND collapse_key = ${st.collapse_key} AND status = 'queued'`;
    if (q) {
      await tx`UPDATE push_jobs SET status = 'dropped', last_error = 'collapsed', lease_until = NULL WHERE id = ${id}`;
      return;
    }
  }
  await tx`UPDATE push_jobs SET status = 'queued', not_before = ${notBefore}, lease_until = NULL, last_error = ${why} WHERE id = ${id}`;
}
