import { z } from 'zod';

const Days = z.number().int().min(0).max(100_000);

/**
 * Message retention (`retention` in the config file, src/retention/, docs/operations.md
 * "Retention"): how many days messages of each conversation kind are kept (0 = forever, the
 * default), and how the purge job paces itself. An operator can override the days of one
 * conversation (admin REST / console); the override wins over its kind's setting.
 */
export const RetentionConfigSchema = z.strictObject({
  /** One-to-one conversations. */
  directDays: Days.default(0),
  /** Normal groups. */
  groupDays: Days.default(0),
  /** Super groups (read diffusion). */
  superGroupDays: Days.default(0),
  /** How often each node tries to take the purge lease and run a purge. */
  intervalMs: z.number().int().min(1000).default(3600_000),
  /** Messages deleted per transaction. */
  batchSize: z.number().int().min(1).max(10_000).default(500),
  /** Pause between two batches, so live traffic gets the database in between. */
  pauseMs: z.number().int().min(0).max(60_000).default(50),
  /** The purge lease's lifetime; the running node renews it after every batch. Another node takes over only after it lapses. */
  leaseMs: z.number().int().min(1000).default(60_000),
});
export type RetentionConfig = z.infer<typeof RetentionConfigSchema>;

type Apply = (c: Record<string, unknown>, v: string) => void;
const set =
  (key: keyof RetentionConfig): Apply =>
  (c, v) =>
    (c.retention = { ...(c.retention as object), [key]: Number(v) });

/** Environment variables of `retention`. */
export const RETENTION_ENV: Record<string, Apply> = {
  MAGPIE_RETENTION_DIRECT_DAYS: set('directDays'),
  MAGPIE_RETENTION_GROUP_DAYS: set('groupDays'),
  MAGPIE_RETENTION_SUPER_GROUP_DAYS: set('superGroupDays'),
  MAGPIE_RETENTION_INTERVAL_MS: set('intervalMs'),
  MAGPIE_RETENTION_BATCH_SIZE: set('batchSize'),
  MAGPIE_RETENTION_PAUSE_MS: set('pauseMs'),
  MAGPIE_RETENTION_LEASE_MS: set('leaseMs'),
};
