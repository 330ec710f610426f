import { z } from 'zod';

/** The events a hook can subscribe to (docs/operations.md, "Webhooks"). `*` is every after-event. */
export const WEBHOOK_EVENTS = ['message.sent', 'group.event', 'redpacket.event', 'user.registered', 'user.deleted', 'report.created'] as const;
export type WebhookEvent = (typeof WEBHOOK_EVENTS)[number];

export const WebhookSchema = z.strictObject({
  /** A short name, unique among hooks: it keys the outbox rows, so keep it stable across restarts. */
  name: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,39}$/, 'lowercase letters, digits, - and _'),
  url: z.url({ protocol: /^https?$/ }),
  /** HMAC-SHA256 key of the `Magpie-Signature` header. */
  secret: z.string().min(16),
  /** After-events delivered through the durable outbox. */
  events: z.array(z.union([z.enum(WEBHOOK_EVENTS), z.literal('*')])).default([]),
  /** Ask this hook before every message is stored (allow / deny with a reason / modify). */
  beforeSend: z.boolean().default(false),
  /** How long a before-send call may take. */
  timeoutMs: z.number().int().min(50).max(30_000).default(2000),
  /** What a before-send timeout or failure means: 'open' lets the message through, 'closed' refuses it (`unavailable`, retryable). */
  failMode: z.enum(['open', 'closed']).default('open'),
});
export type WebhookConfig = z.infer<typeof WebhookSchema>;

/** Webhooks, the built-in keyword filter and the after-event outbox (`webhooks` in the config file). */
export const WebhooksConfigSchema = z.strictObject({
  hooks: z
    .array(WebhookSchema)
    .default([])
    .refine((hs) => new Set(hs.map((h) => h.name)).size === hs.length, 'hook names must be unique'),
  /** The built-in before-send filter: words (matched case-insensitively, NFKC) in a message's text. */
  keywords: z
    .strictObject({
      words: z.array(z.string().min(1).max(100)).max(10_000).default([]),
      /** 'deny' refuses the message with `reason`; 'mask' replaces each match with * and lets it through. */
      action: z.enum(['deny', 'mask']).default('deny'),
      reason: z.string().min(1).max(200).default('This message contains words that are not allowed here.'),
    })
    .prefault({}),
  outbox: z
    .strictObject({
      /** How often a node looks for due events. */
      pollMs: z.number().int().min(10).default(500),
      /** First retry delay; doubles per attempt up to retryMaxMs (with ±20 % jitter). */
      retryBaseMs: z.number().int().min(10).default(1000),
      retryMaxMs: z.number().int().min(10).default(10 * 60 * 1000),
      /** After this many failed attempts an event is set aside as `failed` (listed and retried by the admin API) and the next event of its conversation goes. */
      maxAttempts: z.number().int().min(1).default(25),
      /** Timeout of one delivery attempt. */
      timeoutMs: z.number().int().min(50).default(5000),
      /** Deliveries in flight at once per node (at most one per hook and conversation). */
      concurrency: z.number().int().min(1).max(256).default(16),
      /** Delivered events are deleted after this long. */
      keepDeliveredMs: z.number().int().min(0).default(24 * 3600 * 1000),
    })
    .prefault({}),
});
export type WebhooksConfig = z.infer<typeof WebhooksConfigSchema>;

type Apply = (c: Record<string, unknown>, v: string) => void;
const section = (c: Record<string, unknown>) => (c.webhooks ??= {}) as Record<string, unknown>;

/** MAGPIE_WEBHOOKS is a JSON array of hooks; MAGPIE_KEYWORDS a comma-separated word list. */
export const WEBHOOKS_ENV: Record<string, Apply> = {
  MAGPIE_WEBHOOKS: (c, v) => (section(c).hooks = JSON.parse(v)),
  MAGPIE_KEYWORDS: (c, v) => (section(c).keywords = { ...((section(c).keywords as object) ?? {}), words: v.split(',').map((w) => w.trim()).filter(Boolean) }),
  MAGPIE_KEYWORDS_ACTION: (c, v) => (section(c).keywords = { ...((section(c).keywords as object) ?? {}), action: v }),
  MAGPIE_WEBHOOK_POLL_MS: (c, v) => (section(c).outbox = { ...((section(c).outbox as object) ?? {}), pollMs: Number(v) }),
  MAGPIE_WEBHOOK_RETRY_BASE_MS: (c, v) => (section(c).outbox = { ...((section(c).outbox as object) ?? {}), retryBaseMs: Number(v) }),
  MAGPIE_WEBHOOK_RETRY_MAX_MS: (c, v) => (section(c).outbox = { ...((section(c).outbox as object) ?? {}), retryMaxMs: Number(v) }),
  MAGPIE_WEBHOOK_MAX_ATTEMPTS: (c, v) => (section(c).outbox = { ...((section(c).outbox as object) ?? {}), maxAttempts: Number(v) }),
};
