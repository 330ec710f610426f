import { z } from 'zod';

const HHMM = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'HH:MM (24 h)');

/** Hosts of the browsers' push services; a Web Push subscription must point at one of them. */
export const DEFAULT_WEBPUSH_HOSTS = [
  'fcm.googleapis.com',
  'updates.push.services.mozilla.com',
  '*.push.services.mozilla.com',
  '*.notify.windows.com',
  'web.push.apple.com',
  '*.push.apple.com',
];

/**
 * Offline push settings (`push` in the config file; MAGPIE_PUSH_* in the environment).
 * A provider without credentials is off; devices cannot register for it.
 */
export const PushConfigSchema = z.strictObject({
  enabled: z.boolean().default(true),
  /** Title of notifications that hide their content. */
  appName: z.string().min(1).max(64).default('Magpie'),
  /** Whether notifications show sender and text when the user has not chosen: 'show' or 'hide' (privacy mode). */
  privacyDefault: z.enum(['show', 'hide']).default('show'),
  /** After a conversation's notification was sent, later messages wait this long and go out as one notification with a count. */
  collapseWindowMs: z.number().int().min(0).max(600_000).default(3000),
  /** Quiet hours in each device's time zone; non-IM categories wait until they end. null: none. */
  quietHours: z.strictObject({ start: HHMM, end: HHMM }).nullable().default({ start: '22:00', end: '08:00' }),
  /** Time zone of devices that did not report one. */
  defaultTimeZone: z.string().default('UTC'),
  /** Marketing pushes (and unmarked ones) per user and per UTC day, and for the whole app per day. */
  marketingPerUserPerDay: z.number().int().min(0).default(2),
  marketingPerAppPerDay: z.number().int().min(0).default(1_000_000),
  /** How long a notification is worth delivering, per category (also sent to the provider as TTL/expiration). */
  ttlSeconds: z
    .strictObject({
      im: z.number().int().min(0).default(86_400),
      transaction: z.number().int().min(0).default(3 * 86_400),
      followed: z.number().int().min(0).default(86_400),
      marketing: z.number().int().min(0).default(12 * 3600),
    })
    .prefault({}),
  /** Attempts per notification before it fails; delays between them grow from backoffBaseMs ×2 up to backoffMaxMs (a provider's Retry-After wins). */
  maxAttempts: z.number().int().min(1).max(50).default(8),
  backoffBaseMs: z.number().int().min(1).default(1000),
  backoffMaxMs: z.number().int().min(1).default(300_000),
  /** A claimed job not completed within this time is retried (crash recovery). */
  leaseMs: z.number().int().min(1000).default(60_000),
  /** Per-request provider timeout. */
  requestTimeoutMs: z.number().int().min(100).default(10_000),
  lanes: z
    .strictObject({
      /** im + transaction. */
      live: z.strictObject({ concurrency: z.number().int().min(1).default(256), ratePerSec: z.number().min(0).default(0) }).prefault({}),
      /** followed + marketing: its own queue, smaller concurrency and a rate cap (0 = none). */
      bulk: z.strictObject({ concurrency: z.number().int().min(1).default(32), ratePerSec: z.number().min(0).default(1000) }).prefault({}),
      /** The bulk lane slows down (rate halves per 200 ms sample) while the event loop lags more than this; 0 = never. */
      bulkYieldLagMs: z.number().min(0).default(25),
    })
    .prefault({}),
  /** Finished jobs and their attempts are kept this long (receipts, inspection). */
  retentionDays: z.number().min(0.001).default(7),
  /** Ignored since issue 16: the push tables live in the server's database (its `sqliteSynchronous`). Accepted so older configurations load. */
  sqliteSynchronous: z.enum(['full', 'normal']).default('normal'),
  /**
   * The SQLite push file of releases before issue 16, in dataDir: when it exists, its rows are
   * imported into the server's database once at start and the file is renamed `*.imported`
   * (push/legacy-import.ts). 'magpie.db': nothing to import.
   */
  sqliteFile: z.string().regex(/^[\w.-]+$/).default('push.db'),
  /**
   * HMAC key that signs push receipts (base64url, ≥ 32 bytes). Absent: generated once and kept
   * in the push store (push.db). Give it here to keep it out of the data directory, and the
   * same value on every node.
   */
  receiptKey: z.string().regex(/^[A-Za-z0-9_-]{43,}$/, 'base64url, at least 32 bytes').optional(),
  /** Ignored since issue 16 (the server database's `sqliteCheckpointMs` applies). Accepted so older configurations load. */
  sqliteCheckpointMs: z.number().int().min(0).default(1000),
  apns: z
    .strictObject({
      teamId: z.string().min(1),
      keyId: z.string().min(1),
      /** The .p8 signing key: a file path or the PEM text. */
      keyFile: z.string().optional(),
      key: z.string().optional(),
      /** The app's bundle id (apns-topic). */
      topic: z.string().min(1),
      url: z.string().url().default('https://api.push.apple.com'),
      sandboxUrl: z.string().url().default('https://api.sandbox.push.apple.com'),
      /** Extra CA (PEM file) to trust, for a private relay or a test server. */
      caFile: z.string().optional(),
    })
    .optional(),
  fcm: z
    .strictObject({
      projectId: z.string().min(1),
      /** Service account JSON: a file path or the JSON text. */
      serviceAccountFile: z.string().optional(),
      serviceAccount: z.string().optional(),
      /** Overrides of Google's endpoints (tests, proxies). */
      endpoint: z.string().url().default('https://fcm.googleapis.com'),
      tokenUrl: z.string().url().optional(),
    })
    .optional(),
  webpush: z
    .strictObject({
      /** Contact for the push services (mailto: or https:). */
      subject: z.string().regex(/^(mailto:|https:)/).default('mailto:push@magpie.invalid'),
      /** VAPID keys (base64url). When absent they are generated once and kept in the push store. */
      publicKey: z.string().optional(),
      privateKey: z.string().optional(),
      /** Subscription endpoints must be https on one of these hosts ("*." = any subdomain); guards against SSRF. */
      allowedHosts: z.array(z.string()).default(DEFAULT_WEBPUSH_HOSTS),
      /** Allow http:// endpoints (tests only). */
      allowInsecure: z.boolean().default(false),
      /**
       * Worker threads that encrypt payloads (RFC 8291: one P-256 ECDH per message, ≈ 0.13 ms
       * of CPU). 0 = on the event loop.
       */
      encryptThreads: z.number().int().min(0).max(16).default(1),
    })
    .prefault({}),
  webhook: z
    .strictObject({
      /** The operator's relay for phone-maker channels (Huawei, Xiaomi, OPPO, vivo, Honor). */
      url: z.string().url(),
      /** Body is signed: X-Magpie-Signature: sha256=HMAC(secret, body). */
      secret: z.string().min(16),
    })
    .optional(),
});

export type PushConfig = z.infer<typeof PushConfigSchema>;

type Raw = Record<string, unknown>;
const setIn = (c: Raw, path: string[], v: unknown): void => {
  let o = c;
  for (const k of path.slice(0, -1)) o = (o[k] = { ...((o[k] as Raw | undefined) ?? {}) }) as Raw;
  o[path.at(-1)!] = v;
};

/** MAGPIE_PUSH_* environment variables, merged into config.ts's table. */
export const PUSH_ENV: Record<string, (c: Raw, v: string) => void> = {
  MAGPIE_PUSH_ENABLED: (c, v) => setIn(c, ['push', 'enabled'], v === 'true' || v === '1'),
  MAGPIE_PUSH_PRIVACY_DEFAULT: (c, v) => setIn(c, ['push', 'privacyDefault'], v),
  MAGPIE_PUSH_COLLAPSE_WINDOW_MS: (c, v) => setIn(c, ['push', 'collapseWindowMs'], Number(v)),
  MAGPIE_PUSH_QUIET_HOURS: (c, v) => setIn(c, ['push', 'quietHours'], v === 'off' ? null : { start: v.split('-')[0], end: v.split('-')[1] }),
  MAGPIE_PUSH_MARKETING_PER_USER_PER_DAY: (c, v) => setIn(c, ['push', 'marketingPerUserPerDay'], Number(v)),
  MAGPIE_PUSH_MARKETING_PER_APP_PER_DAY: (c, v) => setIn(c, ['push', 'marketingPerAppPerDay'], Number(v)),
  MAGPIE_PUSH_BACKOFF_BASE_MS: (c, v) => setIn(c, ['push', 'backoffBaseMs'], Number(v)),
  MAGPIE_PUSH_SQLITE_CHECKPOINT_MS: (c, v) => setIn(c, ['push', 'sqliteCheckpointMs'], Number(v)),
  MAGPIE_PUSH_SQLITE_FILE: (c, v) => setIn(c, ['push', 'sqliteFile'], v),
  MAGPIE_PUSH_BULK_RATE: (c, v) => setIn(c, ['push', 'lanes', 'bulk', 'ratePerSec'], Number(v)),
  MAGPIE_PUSH_APNS_TEAM_ID: (c, v) => setIn(c, ['push', 'apns', 'teamId'], v),
  MAGPIE_PUSH_APNS_KEY_ID: (c, v) => setIn(c, ['push', 'apns', 'keyId'], v),
  MAGPIE_PUSH_APNS_KEY_FILE: (c, v) => setIn(c, ['push', 'apns', 'keyFile'], v),
  MAGPIE_PUSH_APNS_KEY: (c, v) => setIn(c, ['push', 'apns', 'key'], v),
  MAGPIE_PUSH_APNS_TOPIC: (c, v) => setIn(c, ['push', 'apns', 'topic'], v),
  MAGPIE_PUSH_APNS_URL: (c, v) => setIn(c, ['push', 'apns', 'url'], v),
  MAGPIE_PUSH_APNS_SANDBOX_URL: (c, v) => setIn(c, ['push', 'apns', 'sandboxUrl'], v),
  MAGPIE_PUSH_APNS_CA_FILE: (c, v) => setIn(c, ['push', 'apns', 'caFile'], v),
  MAGPIE_PUSH_FCM_PROJECT_ID: (c, v) => setIn(c, ['push', 'fcm', 'projectId'], v),
  MAGPIE_PUSH_FCM_SERVICE_ACCOUNT_FILE: (c, v) => setIn(c, ['push', 'fcm', 'serviceAccountFile'], v),
  MAGPIE_PUSH_FCM_SERVICE_ACCOUNT: (c, v) => setIn(c, ['push', 'fcm', 'serviceAccount'], v),
  MAGPIE_PUSH_FCM_ENDPOINT: (c, v) => setIn(c, ['push', 'fcm', 'endpoint'], v),
  MAGPIE_PUSH_FCM_TOKEN_URL: (c, v) => setIn(c, ['push', 'fcm', 'tokenUrl'], v),
  MAGPIE_PUSH_VAPID_SUBJECT: (c, v) => setIn(c, ['push', 'webpush', 'subject'], v),
  MAGPIE_PUSH_VAPID_PUBLIC_KEY: (c, v) => setIn(c, ['push', 'webpush', 'publicKey'], v),
  MAGPIE_PUSH_VAPID_PRIVATE_KEY: (c, v) => setIn(c, ['push', 'webpush', 'privateKey'], v),
  MAGPIE_PUSH_RECEIPT_KEY: (c, v) => setIn(c, ['push', 'receiptKey'], v),
  MAGPIE_PUSH_WEBPUSH_ALLOWED_HOSTS: (c, v) => setIn(c, ['push', 'webpush', 'allowedHosts'], v.split(',').map((h) => h.trim()).filter(Boolean)),
  MAGPIE_PUSH_WEBPUSH_ALLOW_INSECURE: (c, v) => setIn(c, ['push', 'webpush', 'allowInsecure'], v === 'true' || v === '1'),
  MAGPIE_PUSH_WEBPUSH_ENCRYPT_THREADS: (c, v) => setIn(c, ['push', 'webpush', 'encryptThreads'], Number(v)),
  MAGPIE_PUSH_WEBHOOK_URL: (c, v) => setIn(c, ['push', 'webhook', 'url'], v),
  MAGPIE_PUSH_WEBHOOK_SECRET: (c, v) => setIn(c, ['push', 'webhook', 'secret'], v),
};
