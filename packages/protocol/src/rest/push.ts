import { z } from 'zod';
import { PLATFORMS } from '../types.ts';
import { restRoute } from './route.ts';

/**
 * Offline push (server: push/routes.ts; behaviour in docs/push.md): a device's registration and
 * settings, the device stage of the funnel (receipts, clicks) and the operator's routes.
 * Every push is marked with a category; an unmarked push is treated as marketing.
 */
export const PUSH_CATEGORIES = ['im', 'transaction', 'followed', 'marketing'] as const;
export const PUSH_PROVIDERS = ['apns', 'fcm', 'webpush', 'webhook'] as const;
/** Phone-maker channels relayed through the generic webhook. */
export const PUSH_VENDORS = ['huawei', 'xiaomi', 'oppo', 'vivo', 'honor'] as const;
/** The notification permission a device reports (browser: granted/denied/default; iOS adds provisional). */
export const PUSH_PERMISSIONS = ['granted', 'denied', 'default', 'provisional'] as const;

const HHMM = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/);
const B64 = z.string().regex(/^[A-Za-z0-9_-]+={0,2}$/).max(200);
const Subscription = z.object({
  endpoint: z.string().url().max(2048),
  expirationTime: z.number().nullable().optional(),
  keys: z.strictObject({ p256dh: B64, auth: B64 }),
});
const DeviceFacts = {
  appVersion: z.string().max(32).optional(),
  locale: z.string().max(35).optional(),
  timeZone: z.string().min(1).max(64).optional(),
  permission: z.enum(PUSH_PERMISSIONS).optional(),
};
export const RegisterDeviceSchema = z.strictObject({
  provider: z.enum(PUSH_PROVIDERS),
  /** APNs/FCM registration token, or the vendor token of a webhook device. */
  token: z.string().min(1).max(4096).optional(),
  /** Web Push: the browser's PushSubscription. */
  subscription: Subscription.optional(),
  vendor: z.enum(PUSH_VENDORS).optional(),
  sandbox: z.boolean().optional(),
  platform: z.enum(PLATFORMS).optional(),
  ...DeviceFacts,
});
export const PatchDeviceSchema = z.strictObject(DeviceFacts);

/** A device as a client sees it: never the token itself (an endpoint origin, or its last six characters). */
export const PushDeviceSchema = z.strictObject({
  userId: z.string(),
  deviceId: z.string(),
  platform: z.enum(PLATFORMS),
  provider: z.enum(PUSH_PROVIDERS),
  token: z.union([z.string(), z.strictObject({ endpoint: z.string() })]),
  vendor: z.enum(PUSH_VENDORS).nullable(),
  sandbox: z.boolean(),
  appVersion: z.string(),
  locale: z.string(),
  timeZone: z.string(),
  permission: z.enum(PUSH_PERMISSIONS),
  lastSeen: z.number().int(),
  createdAt: z.number().int(),
  updatedAt: z.number().int(),
});

/** Per-user push preferences. `quietHours`: own "HH:MM" window in the device's time zone; null: the server default; 'off': none. */
export const PushSettingsSchema = z.strictObject({
  privacy: z.enum(['default', 'hide', 'show']).default('default'),
  disabled: z.array(z.enum(['transaction', 'followed', 'marketing'])).max(3).default([]),
  quietHours: z.union([z.strictObject({ start: HHMM, end: HHMM }), z.literal('off'), z.null()]).default(null),
});

/** The stored preferences as answered (every field present). */
export const PushSettingsViewSchema = z.strictObject({
  privacy: z.enum(['default', 'hide', 'show']),
  disabled: z.array(z.enum(PUSH_CATEGORIES)),
  quietHours: z.union([z.strictObject({ start: HHMM, end: HHMM }), z.literal('off'), z.null()]),
});

const Receipt = z.string().min(10).max(200);
const ReceiptEvent = z.strictObject({ receipt: Receipt, event: z.enum(['delivered', 'displayed']) });
const Day = z.string().regex(/^\d{4}-\d{2}-\d{2}$/);
const Count = z.number().int().nonnegative();
const Counts = z.strictObject({ stages: z.record(z.string(), Count), dropped: z.record(z.string(), Count) });
const Stage = z.string();

/** The push funnel of a day range: stages, drops by reason, conversion per step, by category, provider and day. */
export const FunnelReportSchema = z.strictObject({
  from: Day,
  to: Day,
  stages: z.record(z.string(), Count),
  dropped: z.record(z.string(), Count),
  steps: z.array(z.strictObject({ from: Stage, to: Stage, rate: z.number().nullable(), lost: Count })),
  narrowest: z.strictObject({ from: Stage, to: Stage, rate: z.number(), lost: Count }).nullable(),
  byCategory: z.record(z.string(), Counts),
  byProvider: z.record(z.string(), Counts),
  days: z.record(z.string(), Counts),
});

export const NotifySchema = z.strictObject({
  userIds: z.array(z.string().min(1).max(64)).min(1).max(100_000),
  /** Omitted: marketing (an unmarked push counts as marketing). */
  category: z.enum(PUSH_CATEGORIES).optional(),
  title: z.string().min(1).max(200),
  body: z.string().min(1).max(1000),
  conv: z.string().min(1).max(128).optional(),
  collapseKey: z.string().min(1).max(128).optional(),
  data: z.record(z.string().max(64), z.string().max(1024)).optional(),
});
export const NotifyResultSchema = z.strictObject({ requested: Count, accepted: Count, dropped: z.record(z.string(), Count) });

const Ms = z.number().int().nullable();
/** One push job of a user's log with its provider attempts (operator view). */
export const PushJobSchema = z.strictObject({
  id: z.string(),
  lane: z.enum(['live', 'bulk']),
  category: z.enum(PUSH_CATEGORIES),
  userId: z.string(),
  deviceId: z.string(),
  provider: z.enum(PUSH_PROVIDERS),
  collapseKey: z.string().nullable(),
  conv: z.string().nullable(),
  seq: z.number().int(),
  count: Count,
  title: z.string(),
  body: z.string(),
  data: z.record(z.string(), z.string()),
  notBefore: z.number().int(),
  expiresAt: z.number().int(),
  createdAt: z.number().int(),
  status: z.enum(['queued', 'sending', 'sent', 'failed', 'dropped']),
  attempts: Count,
  dispatchedAt: Ms,
  sentAt: Ms,
  deliveredAt: Ms,
  displayedAt: Ms,
  clickedAt: Ms,
  lastError: z.string().nullable(),
  attemptLog: z.array(
    z.strictObject({
      jobId: z.string(),
      attempt: z.number().int(),
      at: z.number().int(),
      provider: z.enum(PUSH_PROVIDERS),
      status: z.number().int(),
      outcome: z.enum(['ok', 'invalid_token', 'bad_request', 'transient', 'auth']),
      reason: z.string().nullable(),
      latencyMs: z.number(),
    }),
  ),
});

const DeviceReply = z.strictObject({ device: PushDeviceSchema });
const SettingsReply = z.strictObject({ settings: PushSettingsViewSchema });

export const pushRoutes = {
  config: restRoute({
    method: 'GET',
    url: '/api/push/config',
    summary: 'What a client needs before it subscribes: enabled providers, the VAPID key, categories',
    auth: 'none',
    reply: { 200: z.strictObject({ providers: z.array(z.enum(PUSH_PROVIDERS)), vapidPublicKey: z.string().nullable(), categories: z.array(z.enum(PUSH_CATEGORIES)) }) },
  }),
  vapidPublicKey: restRoute({
    method: 'GET',
    url: '/api/push/vapid-public-key',
    summary: 'The Web Push application server key (404 when Web Push is off)',
    auth: 'none',
    reply: { 200: z.strictObject({ publicKey: z.string() }) },
  }),
  register: restRoute({ method: 'PUT', url: '/api/push/device', summary: "Register (or replace) this session's device for push", auth: 'user', body: RegisterDeviceSchema, reply: { 200: DeviceReply } }),
  update: restRoute({ method: 'PATCH', url: '/api/push/device', summary: "Update this device's app version, locale, time zone or permission", auth: 'user', body: PatchDeviceSchema, reply: { 200: DeviceReply } }),
  unregister: restRoute({ method: 'DELETE', url: '/api/push/device', summary: "Remove this session's device from push", auth: 'user', reply: { 200: z.strictObject({ removed: z.boolean() }) } }),
  devices: restRoute({ method: 'GET', url: '/api/push/devices', summary: "The account's push devices", auth: 'user', reply: { 200: z.strictObject({ devices: z.array(PushDeviceSchema) }) } }),
  settings: restRoute({ method: 'GET', url: '/api/push/settings', summary: 'Push preferences of the account', auth: 'user', reply: { 200: SettingsReply } }),
  putSettings: restRoute({ method: 'PUT', url: '/api/push/settings', summary: 'Replace the push preferences', auth: 'user', body: PushSettingsSchema, reply: { 200: SettingsReply } }),
  receipts: restRoute({
    method: 'POST',
    url: '/api/push/receipts',
    summary: 'Device stage of the funnel: delivered/displayed receipts (no session; the receipt is signed)',
    auth: 'none',
    body: z.union([ReceiptEvent, z.strictObject({ events: z.array(ReceiptEvent).min(1).max(100) })]),
    reply: { 200: z.strictObject({ ok: Count, ignored: Count }) },
  }),
  click: restRoute({
    method: 'POST',
    url: '/api/push/click',
    summary: 'A notification was opened: whether to open it for the signed-in account, and where',
    auth: 'optional',
    body: z.strictObject({ receipt: Receipt }),
    reply: {
      200: z.strictObject({
        open: z.boolean(),
        reason: z.enum(['account_mismatch', 'signed_out']).optional(),
        category: z.enum(PUSH_CATEGORIES),
        userId: z.string(),
        conv: z.string().nullable(),
        seq: z.number().int(),
        data: z.record(z.string(), z.string()),
      }),
    },
  }),
};

/** The operator's push routes (admin token). */
export const pushAdminRoutes = {
  report: restRoute({
    method: 'GET',
    url: '/api/admin/push/report',
    summary: 'The push funnel from `from` to `to` (UTC days; default the last 7 days)',
    auth: 'admin',
    query: z.strictObject({ from: Day.optional(), to: Day.optional() }),
    reply: { 200: FunnelReportSchema },
  }),
  notify: restRoute({ method: 'POST', url: '/api/admin/push/notify', summary: 'Push a notification to users (campaigns, transactional notices)', auth: 'admin', body: NotifySchema, reply: { 200: NotifyResultSchema } }),
  user: restRoute({
    method: 'GET',
    url: '/api/admin/push/users/:id',
    summary: "A user's push devices, settings and recent jobs with their attempts",
    auth: 'admin',
    params: z.strictObject({ id: z.string().min(1).max(64) }),
    reply: { 200: z.strictObject({ devices: z.array(PushDeviceSchema), settings: PushSettingsViewSchema, jobs: z.array(PushJobSchema) }) },
  }),
};
