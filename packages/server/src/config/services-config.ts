import { z } from 'zod';

/** Service accounts and notification conversations (`services` in the config file; src/notifications/). */
export const ServicesConfigSchema = z.strictObject({
  /** Slots of each user's notification ring (list and segment broadcasts): separate from the chat ring. */
  capacity: z.number().int().min(10).max(100_000).default(200),
  /** Broadcasts and ring slots older than this are deleted by the retention sweep. */
  retentionDays: z.number().min(0.00001).max(3650).default(30),
  /** How often the retention sweep runs. */
  sweepMs: z.number().int().min(100).default(3_600_000),
  /** How often each node looks for due scheduled sends. */
  schedulePollMs: z.number().int().min(50).default(1000),
  /** A node's claim on a due schedule lasts this long; a node that dies leaves it to another after it. */
  scheduleLeaseMs: z.number().int().min(500).default(60_000),
  /** A schedule that failed this many times is set aside as failed. */
  scheduleMaxAttempts: z.number().int().min(1).default(5),
});
export type ServicesConfig = z.infer<typeof ServicesConfigSchema>;

const set = (key: keyof ServicesConfig) => (c: Record<string, unknown>, v: string) => (c.services = { ...(c.services as object), [key]: Number(v) });

export const SERVICES_ENV: Record<string, (c: Record<string, unknown>, v: string) => void> = {
  MAGPIE_SERVICES_CAPACITY: set('capacity'),
  MAGPIE_SERVICES_RETENTION_DAYS: set('retentionDays'),
  MAGPIE_SERVICES_SWEEP_MS: set('sweepMs'),
  MAGPIE_SERVICES_SCHEDULE_POLL_MS: set('schedulePollMs'),
  MAGPIE_SERVICES_SCHEDULE_LEASE_MS: set('scheduleLeaseMs'),
};
