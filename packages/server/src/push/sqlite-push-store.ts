import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type { PushStore } from './push-store.ts';
import { attemptFromRow, deviceFromRow, jobFromRow, type AttemptRow, type DeviceRow, type JobRow } from './rows.ts';
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

export const PUSH_SQLITE_SCHEMA = `
CREATE TABLE IF NOT EXISTS push_devices (
  user_id TEXT NOT NULL,
  device_id TEXT NOT NULL,
  platform TEXT NOT NULL,
  provider TEXT NOT NULL,
  token TEXT NOT NULL,
  vendor TEXT,
  sandbox INTEGER NOT NULL DEFAULT 0,
  app_version TEXT NOT NULL DEFAULT '',
  locale TEXT NOT NULL DEFAULT '',
  time_zone TEXT NOT NULL DEFAULT 'UTC',
  permission TEXT NOT NULL,
  last_seen INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
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
  seq INTEGER NOT NULL,
  count INTEGER NOT NULL,
  title TEXT NOT NULL,
  body TEXT NOT NULL,
  data TEXT NOT NULL,
  not_before INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  status TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  lease_until INTEGER,
  dispatched_at INTEGER,
  sent_at INTEGER,
  delivered_at INTEGER,
  displayed_at INTEGER,
  clicked_at INTEGER,
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
  at INTEGER NOT NULL,
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
  n INTEGER NOT NULL,
  PRIMARY KEY (day, category, provider, stage)
);
CREATE TABLE IF NOT EXISTS push_kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
`;

export interface SqlitePushStoreOptions {
  /** File path (dataDir/push.db by default; dataDir/magpie.db works too: own connection, own tables) or ':memory:'. */
  path: string;
  /** 'normal' (default) survives process crashes and restarts; 'full' also power loss, at one fsync per commit. */
  synchronous?: 'full' | 'normal';
  /**
   * Checkpoint the WAL from a worker thread every this many ms instead of inside commits
   * (an automatic checkpoint copies pages and fsyncs on the event loop). 0 = SQLite's own
   * automatic checkpoints. Default 1000 for files.
   */
  checkpointMs?: number;
}

/** The checkpointer: its own connection, PASSIVE checkpoints (never blocks the writer). */
const CHECKPOINTER = `
const { workerData, parentPort } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.path);
db.pragma('busy_timeout = 1000');
const t = setInterval(() => { try { db.pragma('wal_checkpoint(PASSIVE)'); } catch {} }, workerData.everyMs);
parentPort.on('message', () => { clearInterval(t); try { db.pragma('wal_checkpoint(PASSIVE)'); db.close(); } catch {} parentPort.postMessage('closed'); });
`;

/**
 * PushStore on SQLite: its own better-sqlite3 connection (WAL) to the messaging database
 * file, push_* tables only. Every call is one synchronous transaction.
 */
export class SqlitePushStore implements PushStore {
  readonly kind = 'sqlite' as const;
  private readonly db: Database.Database;
  private readonly q: ReturnType<SqlitePushStore['prepare']>;
  private checkpointer: Worker | null = null;

  constructor(opts: SqlitePushStoreOptions) {
    if (opts.path !== ':memory:') mkdirSync(dirname(opts.path), { recursive: true });
    this.db = new Database(opts.path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma(`synchronous = ${opts.synchronous === 'full' ? 'FULL' : 'NORMAL'}`);
    this.db.pragma('busy_timeout = 5000');
    this.db.exec(PUSH_SQLITE_SCHEMA);
    this.q = this.prepare();
    const every = opts.checkpointMs ?? 1000;
    if (opts.path !== ':memory:' && every > 0) {
      this.db.pragma('wal_autocheckpoint = 0');
      this.checkpointer = new Worker(CHECKPOINTER, {
        eval: true,
        workerData: { path: opts.path, everyMs: every, driver: createRequire(import.meta.url).resolve('better-sqlite3') },
        // The worker is plain CommonJS: no TypeScript loader needed.
        execArgv: [],
      });
      this.checkpointer.unref();
      this.checkpointer.on('error', () => {
        // Fall back to SQLite's own checkpoints.
        if (this.db.open) this.db.pragma('wal_autocheckpoint = 1000');
      });
    }
  }

  private prepare() {
    const db = this.db;
    return {
      deleteTokenElsewhere: db.prepare('DELETE FROM push_devices WHERE provider = ? AND token = ? AND NOT (user_id = ? AND device_id = ?) RETURNING user_id, device_id'),
      upsertDevice: db.prepare(
        `INSERT INTO push_devices (user_id, device_id, platform, provider, token, vendor, sandbox, app_version, locale, time_zone, permission, last_seen, created_at, updated_at)
         VALUES (@userId, @deviceId, @platform, @provider, @token, @vendor, @sandbox, @appVersion, @locale, @timeZone, @permission, @now, @now, @now)
         ON CONFLICT (user_id, device_id) DO UPDATE SET platform = excluded.platform, provider = excluded.provider, token = excluded.token,
           vendor = excluded.vendor, sandbox = excluded.sandbox, app_version = excluded.app_version, locale = excluded.locale,
           time_zone = excluded.time_zone, permission = excluded.permission, last_seen = excluded.last_seen, updated_at = excluded.updated_at
         RETURNING *`,
      ),
      device: db.prepare('SELECT * FROM push_devices WHERE user_id = ? AND device_id = ?'),
      devicesOf: db.prepare('SELECT * FROM push_devices WHERE user_id IN (SELECT value FROM json_each(?)) ORDER BY created_at'),
      deleteDevice: db.prepare('DELETE FROM push_devices WHERE user_id = ? AND device_id = ?'),
      deleteToken: db.prepare('DELETE FROM push_devices WHERE provider = ? AND token = ? RETURNING user_id, device_id'),
      dropQueuedOf: db.prepare("UPDATE push_jobs SET status = 'dropped', last_error = 'unbound' WHERE user_id = ? AND device_id = ? AND status = 'queued'"),
      touch: db.prepare('UPDATE push_devices SET last_seen = MAX(last_seen, ?) WHERE user_id = ? AND device_id = ?'),
      settings: db.prepare('SELECT user_id, settings FROM push_settings WHERE user_id IN (SELECT value FROM json_each(?))'),
      putSettings: db.prepare('INSERT INTO push_settings (user_id, settings) VALUES (?, ?) ON CONFLICT (user_id) DO UPDATE SET settings = excluded.settings'),
      quota: db.prepare(
        'INSERT INTO push_quota (day, key, n) VALUES (?, ?, 1) ON CONFLICT (day, key) DO UPDATE SET n = n + 1 WHERE n < ? RETURNING n',
      ),
      queuedOfKey: db.prepare("SELECT id, seq FROM push_jobs WHERE user_id = ? AND device_id = ? AND collapse_key = ? AND status = 'queued'"),
      lastOfKey: db.prepare(
        "SELECT MAX(seq) AS seq, MAX(dispatched_at) AS dispatched FROM push_jobs WHERE user_id = ? AND device_id = ? AND collapse_key = ? AND status IN ('sending', 'sent')",
      ),
      mergeJob: db.prepare(
        "UPDATE push_jobs SET count = MAX(count, @count), seq = MAX(seq, @seq), title = @title, body = @body, data = @data, expires_at = MAX(expires_at, @expiresAt) WHERE id = @target AND status = 'queued'",
      ),
      insertJob: db.prepare(
        `INSERT INTO push_jobs (id, lane, category, user_id, device_id, provider, collapse_key, conv, seq, count, title, body, data, not_before, expires_at, created_at, status)
         VALUES (@id, @lane, @category, @userId, @deviceId, @provider, @collapseKey, @conv, @seq, @count, @title, @body, @data, @notBefore, @expiresAt, @createdAt, 'queued')`,
      ),
      claim: db.prepare(
        `UPDATE push_jobs SET status = 'sending', attempts = attempts + 1, lease_until = @lease, dispatched_at = @now
         WHERE id IN (SELECT id FROM push_jobs WHERE lane = @lane AND status = 'queued' AND not_before <= @now ORDER BY not_before LIMIT @limit)
         RETURNING *`,
      ),
      markUnbound: db.prepare("UPDATE push_jobs SET status = 'dropped', last_error = 'unbound', lease_until = NULL WHERE id = ?"),
      jobState: db.prepare('SELECT status, attempts, user_id, device_id, collapse_key, provider FROM push_jobs WHERE id = ?'),
      insertAttempt: db.prepare(
        'INSERT OR IGNORE INTO push_attempts (job_id, attempt, at, provider, status, outcome, reason, latency_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
      ),
      markSent: db.prepare("UPDATE push_jobs SET status = 'sent', sent_at = ?, lease_until = NULL, last_error = NULL WHERE id = ?"),
      markRequeued: db.prepare("UPDATE push_jobs SET status = 'queued', not_before = ?, lease_until = NULL, last_error = ? WHERE id = ?"),
      markFinal: db.prepare('UPDATE push_jobs SET status = ?, lease_until = NULL, last_error = ? WHERE id = ?'),
      expiredLeases: db.prepare("SELECT id, user_id, device_id, collapse_key FROM push_jobs WHERE status = 'sending' AND lease_until < ?"),
      expire: db.prepare("UPDATE push_jobs SET status = 'dropped', last_error = 'expired' WHERE status = 'queued' AND expires_at <= ? RETURNING *"),
      nextDue: db.prepare("SELECT MIN(not_before) AS t FROM push_jobs WHERE lane = ? AND status = 'queued'"),
      depth: db.prepare("SELECT lane, COUNT(*) AS n FROM push_jobs WHERE status IN ('queued', 'sending') GROUP BY lane"),
      job: db.prepare('SELECT * FROM push_jobs WHERE id = ?'),
      jobsOf: db.prepare('SELECT * FROM push_jobs WHERE user_id = ? ORDER BY created_at DESC, rowid DESC LIMIT ?'),
      attemptsOf: db.prepare('SELECT * FROM push_attempts WHERE job_id = ? ORDER BY attempt'),
      markEvent: {
        delivered: db.prepare('UPDATE push_jobs SET delivered_at = ? WHERE id = ? AND delivered_at IS NULL'),
        displayed: db.prepare('UPDATE push_jobs SET displayed_at = ? WHERE id = ? AND displayed_at IS NULL'),
        clicked: db.prepare('UPDATE push_jobs SET clicked_at = ? WHERE id = ? AND clicked_at IS NULL'),
      },
      pruneAttempts: db.prepare(
        "DELETE FROM push_attempts WHERE job_id IN (SELECT id FROM push_jobs WHERE created_at < ? AND status IN ('sent', 'failed', 'dropped'))",
      ),
      pruneJobs: db.prepare("DELETE FROM push_jobs WHERE created_at < ? AND status IN ('sent', 'failed', 'dropped')"),
      addStat: db.prepare(
        'INSERT INTO push_stats (day, category, provider, stage, n) VALUES (?, ?, ?, ?, ?) ON CONFLICT (day, category, provider, stage) DO UPDATE SET n = n + excluded.n',
      ),
      stats: db.prepare('SELECT * FROM push_stats WHERE day >= ? AND day <= ? ORDER BY day, category, provider, stage'),
      kvInsert: db.prepare('INSERT INTO push_kv (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING'),
      kvGet: db.prepare('SELECT value FROM push_kv WHERE key = ?'),
    };
  }

  async migrate(): Promise<void> {
    this.db.exec(PUSH_SQLITE_SCHEMA);
  }

  async close(): Promise<void> {
    const w = this.checkpointer;
    this.checkpointer = null;
    if (w) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 2000);
        w.once('message', () => {
          clearTimeout(t);
          resolve();
        });
        w.once('exit', () => {
          clearTimeout(t);
          resolve();
        });
        w.postMessage('close');
      });
      await w.terminate();
    }
    if (this.db.open) this.db.close();
  }

  // --- registry ---

  async upsertDevice(d: DeviceUpsert): Promise<PushDevice> {
    return this.db
      .transaction(() => {
        for (const moved of this.q.deleteTokenElsewhere.all(d.provider, d.token, d.userId, d.deviceId) as { user_id: string; device_id: string }[]) {
          this.q.dropQueuedOf.run(moved.user_id, moved.device_id);
        }
        const row = this.q.upsertDevice.get({ ...d, sandbox: d.sandbox ? 1 : 0 }) as DeviceRow;
        return deviceFromRow(row);
      })
      .immediate();
  }

  async patchDevice(userId: string, deviceId: string, patch: DevicePatch, now: number): Promise<PushDevice | null> {
    const sets: string[] = [];
    const args: Record<string, unknown> = { userId, deviceId, now };
    const cols = { appVersion: 'app_version', locale: 'locale', timeZone: 'time_zone', permission: 'permission' } as const;
    for (const [k, col] of Object.entries(cols) as [keyof DevicePatch, string][]) {
      if (patch[k] !== undefined) {
        sets.push(`${col} = @${k}`);
        args[k] = patch[k];
      }
    }
    const row = this.db
      .prepare(`UPDATE push_devices SET ${[...sets, 'updated_at = @now', 'last_seen = @now'].join(', ')} WHERE user_id = @userId AND device_id = @deviceId RETURNING *`)
      .get(args) as DeviceRow | undefined;
    return row ? deviceFromRow(row) : null;
  }

  async removeDevices(devices: { userId: string; deviceId: string }[]): Promise<number> {
    return this.db
      .transaction(() => {
        let n = 0;
        for (const d of devices) {
          n += this.q.deleteDevice.run(d.userId, d.deviceId).changes;
          this.q.dropQueuedOf.run(d.userId, d.deviceId);
        }
        return n;
      })
      .immediate();
  }

  async removeToken(provider: PushProviderName, token: string): Promise<boolean> {
    return this.db
      .transaction(() => {
        const gone = this.q.deleteToken.all(provider, token) as { user_id: string; device_id: string }[];
        for (const g of gone) this.q.dropQueuedOf.run(g.user_id, g.device_id);
        return gone.length > 0;
      })
      .immediate();
  }

  async getDevice(userId: string, deviceId: string): Promise<PushDevice | null> {
    const row = this.q.device.get(userId, deviceId) as DeviceRow | undefined;
    return row ? deviceFromRow(row) : null;
  }

  async devicesOf(userIds: string[]): Promise<Map<string, PushDevice[]>> {
    const ids = [...new Set(userIds)];
    const out = new Map<string, PushDevice[]>(ids.map((id) => [id, []]));
    if (ids.length === 0) return out;
    for (const r of this.q.devicesOf.all(JSON.stringify(ids)) as DeviceRow[]) out.get(r.user_id)!.push(deviceFromRow(r));
    return out;
  }

  async touchDevices(devices: { userId: string; deviceId: string }[], now: number): Promise<void> {
    if (devices.length === 0) return;
    this.db.transaction(() => {
      for (const d of devices) this.q.touch.run(now, d.userId, d.deviceId);
    })();
  }

  // --- settings ---

  async getSettings(userIds: string[]): Promise<Map<string, PushUserSettings>> {
    const ids = [...new Set(userIds)];
    const out = new Map<string, PushUserSettings>(ids.map((id) => [id, DEFAULT_SETTINGS]));
    if (ids.length === 0) return out;
    for (const r of this.q.settings.all(JSON.stringify(ids)) as { user_id: string; settings: string }[]) {
      out.set(r.user_id, { ...DEFAULT_SETTINGS, ...(JSON.parse(r.settings) as Partial<PushUserSettings>) });
    }
    return out;
  }

  async putSettings(userId: string, s: PushUserSettings): Promise<void> {
    this.q.putSettings.run(userId, JSON.stringify(s));
  }

  // --- quotas ---

  async takeQuota(day: string, takes: { key: string; limit: number }[]): Promise<boolean> {
    const run = this.db.transaction(() => {
      for (const t of takes) {
        if (t.limit <= 0) throw new QuotaExhausted();
        const got = this.q.quota.get(day, t.key, t.limit) as { n: number } | undefined;
        if (!got) throw new QuotaExhausted();
      }
    });
    try {
      run.immediate();
      return true;
    } catch (err) {
      if (err instanceof QuotaExhausted) return false;
      throw err;
    }
  }

  async takeQuotas(day: string, requests: { key: string; limit: number }[][]): Promise<boolean[]> {
    if (requests.length === 0) return [];
    const one = this.db.transaction((takes: { key: string; limit: number }[]) => {
      for (const t of takes) {
        if (t.limit <= 0 || !this.q.quota.get(day, t.key, t.limit)) throw new QuotaExhausted();
      }
    });
    return this.db
      .transaction(() =>
        requests.map((takes) => {
          try {
            one(takes); // nested: a savepoint, rolled back alone when a key is exhausted
            return true;
          } catch (err) {
            if (err instanceof QuotaExhausted) return false;
            throw err;
          }
        }),
      )
      .immediate();
  }

  // --- jobs ---

  async enqueue(jobs: NewPushJob[], collapseWindowMs: number): Promise<EnqueueResult[]> {
    return this.db
      .transaction(() => jobs.map((j) => this.enqueueOne(j, collapseWindowMs)))
      .immediate();
  }

  private enqueueOne(j: NewPushJob, collapseWindowMs: number): EnqueueResult {
    const row = { ...j, data: JSON.stringify(j.data) };
    if (j.collapseKey !== null) {
      const queued = this.q.queuedOfKey.get(j.userId, j.deviceId, j.collapseKey) as { id: string; seq: number } | undefined;
      if (queued) {
        if (j.seq > 0 && queued.seq >= j.seq) return { outcome: 'duplicate', id: queued.id };
        this.q.mergeJob.run({ ...row, target: queued.id });
        return { outcome: 'merged', id: queued.id };
      }
      const last = this.q.lastOfKey.get(j.userId, j.deviceId, j.collapseKey) as { seq: number | null; dispatched: number | null };
      if (j.seq > 0 && last.seq !== null && last.seq >= j.seq) return { outcome: 'duplicate', id: '' };
      if (last.dispatched !== null) row.notBefore = Math.max(row.notBefore, last.dispatched + collapseWindowMs);
    }
    this.q.insertJob.run(row);
    return { outcome: 'queued', id: j.id };
  }

  async claim(lane: PushLane, now: number, limit: number, leaseMs: number): Promise<{ jobs: ClaimedJob[]; unbound: PushJobRecord[] }> {
    return this.db
      .transaction(() => {
        const rows = this.q.claim.all({ lane, now, limit, lease: now + leaseMs }) as JobRow[];
        const jobs: ClaimedJob[] = [];
        const unbound: PushJobRecord[] = [];
        for (const r of rows) {
          const job = jobFromRow(r);
          const d = this.q.device.get(job.userId, job.deviceId) as DeviceRow | undefined;
          if (!d) {
            this.q.markUnbound.run(job.id);
            unbound.push({ ...job, status: 'dropped', lastError: 'unbound' });
          } else jobs.push({ ...job, device: deviceFromRow(d) });
        }
        jobs.sort((x, y) => x.notBefore - y.notBefore);
        return { jobs, unbound };
      })
      .immediate();
  }

  async complete(completions: JobCompletion[]): Promise<void> {
    if (completions.length === 0) return;
    this.db
      .transaction(() => {
        for (const c of completions) {
          const st = this.q.jobState.get(c.jobId) as { status: string; attempts: number; user_id: string; device_id: string; collapse_key: string | null; provider: string } | undefined;
          this.q.insertAttempt.run(c.jobId, c.attempt, c.at, st?.provider ?? 'unknown', c.result.status, c.result.outcome, c.result.reason ?? null, Math.round(c.latencyMs));
          if (c.removeToken) {
            const gone = this.q.deleteToken.all(c.removeToken.provider, c.removeToken.token) as { user_id: string; device_id: string }[];
            for (const g of gone) this.q.dropQueuedOf.run(g.user_id, g.device_id);
          }
          if (!st || st.status !== 'sending' || st.attempts !== c.attempt) continue;
          const next = c.next;
          if (next.status === 'sent') this.q.markSent.run(c.at, c.jobId);
          else if (next.status === 'queued') this.requeue(c.jobId, st, next.notBefore, c.result.reason ?? c.result.outcome);
          else this.q.markFinal.run(next.status, next.reason, c.jobId);
        }
      })
      .immediate();
  }

  /** Back to the queue, unless a newer notification of the same key is queued: then this one folds into it. */
  private requeue(id: string, st: { user_id: string; device_id: string; collapse_key: string | null }, notBefore: number, why: string): void {
    if (st.collapse_key !== null && this.q.queuedOfKey.get(st.user_id, st.device_id, st.collapse_key)) {
      this.q.markFinal.run('dropped', 'collapsed', id);
      return;
    }
    this.q.markRequeued.run(notBefore, why, id);
  }

  async requeueExpired(now: number): Promise<number> {
    return this.db
      .transaction(() => {
        const rows = this.q.expiredLeases.all(now) as { id: string; user_id: string; device_id: string; collapse_key: string | null }[];
        for (const r of rows) this.requeue(r.id, r, now, 'lease_expired');
        return rows.length;
      })
      .immediate();
  }

  async expire(now: number): Promise<PushJobRecord[]> {
    return (this.q.expire.all(now) as JobRow[]).map(jobFromRow);
  }

  async nextDue(lane: PushLane): Promise<number | null> {
    const r = this.q.nextDue.get(lane) as { t: number | null };
    return r.t;
  }

  async queueDepth(): Promise<Record<PushLane, number>> {
    const out: Record<PushLane, number> = { live: 0, bulk: 0 };
    for (const r of this.q.depth.all() as { lane: PushLane; n: number }[]) out[r.lane] = r.n;
    return out;
  }

  async getJob(id: string): Promise<PushJobRecord | null> {
    const r = this.q.job.get(id) as JobRow | undefined;
    return r ? jobFromRow(r) : null;
  }

  async jobsOf(userId: string, limit: number): Promise<PushJobRecord[]> {
    return (this.q.jobsOf.all(userId, limit) as JobRow[]).map(jobFromRow);
  }

  async attemptsOf(jobId: string): Promise<PushAttemptRecord[]> {
    return (this.q.attemptsOf.all(jobId) as AttemptRow[]).map(attemptFromRow);
  }

  async markEvent(jobId: string, event: ReceiptEvent, now: number): Promise<{ job: PushJobRecord; first: boolean } | null> {
    return this.db.transaction(() => {
      const first = this.q.markEvent[event].run(now, jobId).changes === 1;
      const r = this.q.job.get(jobId) as JobRow | undefined;
      return r ? { job: jobFromRow(r), first } : null;
    })();
  }

  async prune(before: number): Promise<number> {
    return this.db.transaction(() => {
      this.q.pruneAttempts.run(before);
      return this.q.pruneJobs.run(before).changes;
    })();
  }

  // --- stats ---

  async addStats(deltas: StatDelta[]): Promise<void> {
    if (deltas.length === 0) return;
    this.db.transaction(() => {
      for (const d of deltas) this.q.addStat.run(d.day, d.category, d.provider, d.stage, d.n);
    })();
  }

  async stats(fromDay: string, toDay: string): Promise<StatDelta[]> {
    return this.q.stats.all(fromDay, toDay) as StatDelta[];
  }

  async getOrCreateSecret(key: string, make: () => string): Promise<string> {
    const have = this.q.kvGet.get(key) as { value: string } | undefined;
    if (have) return have.value;
    this.q.kvInsert.run(key, make());
    return (this.q.kvGet.get(key) as { value: string }).value;
  }
}

class QuotaExhausted extends Error {}
