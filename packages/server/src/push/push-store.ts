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

/**
 * PushStore: the durable state of offline push — the device registry, per-user settings,
 * marketing quotas, the push job queue with every attempt, and the funnel statistics.
 * It is separate from the messaging Store (own tables). One implementation, sql-push-store.ts,
 * on the server's database (SQLite or PostgreSQL, db/engine.ts); it passes
 * test/push-store-contract.ts on both.
 *
 * Guarantees every implementation gives:
 * - A resolved promise means the change is committed (on SQLite with the configured
 *   `synchronous`); a rejected one means nothing of that call was stored.
 * - Registry: (userId, deviceId) is one row; a (provider, token) pair belongs to at most one
 *   device — registering it for another device or user moves it (the old binding is gone).
 * - `enqueue` is one transaction. A job with a collapse key is folded into a `queued` job of
 *   the same (user, device, key) if there is one (count = max, newest content and seq), and
 *   is a `duplicate` when a job of that key already covers its seq. A new job of a key that
 *   was dispatched less than `collapseWindowMs` ago waits until the window has passed.
 * - `claim` hands a due job to exactly one caller (across nodes) until its lease expires;
 *   the job carries the device's current token. A job whose device is no longer registered
 *   is dropped (`unbound`) instead of being returned.
 * - `complete` records every attempt. It is ignored for a job that is no longer `sending`
 *   with that attempt number (its lease expired and someone else took it). A token removal
 *   removes only that exact token, never a newer one of the same device.
 * - `requeueExpired` returns `sending` jobs whose lease has expired to the queue (crash
 *   recovery: a push is sent at least once, collapse ids keep a repeat from showing twice).
 * - `takeQuota` is all-or-nothing over its keys.
 * - `markEvent` sets a receipt time once; only the first report of an event counts.
 */
export interface PushStore {
  readonly kind: 'sqlite' | 'postgres';
  migrate(): Promise<void>;
  close(): Promise<void>;

  // --- device registry ---
  upsertDevice(d: DeviceUpsert): Promise<PushDevice>;
  patchDevice(userId: string, deviceId: string, patch: DevicePatch, now: number): Promise<PushDevice | null>;
  /** Unbind devices (logout, explicit delete): their rows go, their queued jobs are dropped. Returns how many rows went. */
  removeDevices(devices: { userId: string; deviceId: string }[]): Promise<number>;
  /** Remove a dead token (provider said unregistered/invalid). True when a row went. */
  removeToken(provider: PushProviderName, token: string): Promise<boolean>;
  getDevice(userId: string, deviceId: string): Promise<PushDevice | null>;
  devicesOf(userIds: string[]): Promise<Map<string, PushDevice[]>>;
  /** Last seen = now for these devices (connected, or reporting). */
  touchDevices(devices: { userId: string; deviceId: string }[], now: number): Promise<void>;

  // --- settings ---
  getSettings(userIds: string[]): Promise<Map<string, PushUserSettings>>;
  putSettings(userId: string, s: PushUserSettings): Promise<void>;

  // --- quotas ---
  /** Add one to every counter of `day` if each stays ≤ its limit; otherwise change nothing and return false. */
  takeQuota(day: string, takes: { key: string; limit: number }[]): Promise<boolean>;
  /** Many `takeQuota`s in one transaction, in order; each all-or-nothing on its own. */
  takeQuotas(day: string, requests: { key: string; limit: number }[][]): Promise<boolean[]>;

  // --- job queue ---
  enqueue(jobs: NewPushJob[], collapseWindowMs: number): Promise<EnqueueResult[]>;
  /** Up to `limit` due jobs of the lane (notBefore ≤ now), marked `sending` until now + leaseMs. */
  claim(lane: PushLane, now: number, limit: number, leaseMs: number): Promise<{ jobs: ClaimedJob[]; unbound: PushJobRecord[] }>;
  complete(completions: JobCompletion[]): Promise<void>;
  /** Jobs whose lease expired go back to `queued`; returns how many. */
  requeueExpired(now: number): Promise<number>;
  /** Drop queued jobs past their expiry; returns them (for the funnel). */
  expire(now: number): Promise<PushJobRecord[]>;
  /** Earliest notBefore of a queued job in the lane, or null. */
  nextDue(lane: PushLane): Promise<number | null>;
  queueDepth(): Promise<Record<PushLane, number>>;
  getJob(id: string): Promise<PushJobRecord | null>;
  jobsOf(userId: string, limit: number): Promise<PushJobRecord[]>;
  attemptsOf(jobId: string): Promise<PushAttemptRecord[]>;
  /** Set the event's time if unset; returns the job and whether this report was the first. */
  markEvent(jobId: string, event: ReceiptEvent, now: number): Promise<{ job: PushJobRecord; first: boolean } | null>;
  /** Delete finished jobs (and their attempts) created before `before`. */
  prune(before: number): Promise<number>;

  // --- funnel statistics (durable, per UTC day) ---
  addStats(deltas: StatDelta[]): Promise<void>;
  stats(fromDay: string, toDay: string): Promise<StatDelta[]>;

  // --- small shared secrets (VAPID keys, receipt key) ---
  /** The value stored under `key`, storing `make()` first when absent (the first writer wins across nodes). */
  getOrCreateSecret(key: string, make: () => string): Promise<string>;
}
