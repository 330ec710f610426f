import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { MagpieError, PLATFORMS } from '@magpie/protocol';
import { adminGuard } from '../http/admin-auth.ts';
import { RestApi } from '../http/rest.ts';
import { bearer, parseBody as parse } from '../http/validation.ts';
import type { AccountService, Principal } from '../services/account-service.ts';
import type { PushService } from './push-service.ts';
import type { PushFunnel } from './funnel.ts';
import { utcDay } from './policy.ts';
import { PUSH_CATEGORIES, PUSH_PERMISSIONS, PUSH_PROVIDERS, PUSH_VENDORS, type PushDevice } from './types.ts';

const HHMM = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/);
const B64 = z.string().regex(/^[A-Za-z0-9_-]+={0,2}$/).max(200);
const Subscription = z.object({
  endpoint: z.string().url().max(2048),
  expirationTime: z.number().nullable().optional(),
  keys: z.strictObject({ p256dh: B64, auth: B64 }),
});
const RegisterDevice = z.strictObject({
  provider: z.enum(PUSH_PROVIDERS),
  token: z.string().min(1).max(4096).optional(),
  subscription: Subscription.optional(),
  vendor: z.enum(PUSH_VENDORS).optional(),
  sandbox: z.boolean().optional(),
  platform: z.enum(PLATFORMS).optional(),
  appVersion: z.string().max(32).optional(),
  locale: z.string().max(35).optional(),
  timeZone: z.string().min(1).max(64).optional(),
  permission: z.enum(PUSH_PERMISSIONS).optional(),
});
const PatchDevice = z.strictObject({
  appVersion: z.string().max(32).optional(),
  locale: z.string().max(35).optional(),
  timeZone: z.string().min(1).max(64).optional(),
  permission: z.enum(PUSH_PERMISSIONS).optional(),
});
const Settings = z.strictObject({
  privacy: z.enum(['default', 'hide', 'show']).default('default'),
  disabled: z.array(z.enum(['transaction', 'followed', 'marketing'])).max(3).default([]),
  quietHours: z.union([z.strictObject({ start: HHMM, end: HHMM }), z.literal('off'), z.null()]).default(null),
});
const Receipt = z.string().min(10).max(200);
const ReceiptEvent = z.strictObject({ receipt: Receipt, event: z.enum(['delivered', 'displayed']) });
const Receipts = z.union([ReceiptEvent, z.strictObject({ events: z.array(ReceiptEvent).min(1).max(100) })]);
const Click = z.strictObject({ receipt: Receipt });
const Day = z.string().regex(/^\d{4}-\d{2}-\d{2}$/);
const ReportQuery = z.strictObject({ from: Day.optional(), to: Day.optional() });
const Notify = z.strictObject({
  userIds: z.array(z.string().min(1).max(64)).min(1).max(100_000),
  /** Omitted: marketing (an unmarked push counts as marketing). */
  category: z.enum(PUSH_CATEGORIES).optional(),
  title: z.string().min(1).max(200),
  body: z.string().min(1).max(1000),
  conv: z.string().min(1).max(128).optional(),
  collapseKey: z.string().min(1).max(128).optional(),
  data: z.record(z.string().max(64), z.string().max(1024)).optional(),
});


/** What a client may see of a device: never the token itself. */
export function publicDevice(d: PushDevice): Record<string, unknown> {
  const { token, ...rest } = d;
  return { ...rest, token: d.provider === 'webpush' ? { endpoint: (JSON.parse(token) as { endpoint: string }).endpoint.replace(/\/[^/]*$/, '/…') } : `…${token.slice(-6)}` };
}

/**
 * Push routes under /api/push (devices, settings, receipts, clicks) and the operator's
 * /api/admin/push (funnel report, notify/campaign, a user's push log). See docs/push.md.
 */
export function registerPushRoutes(app: FastifyInstance, deps: { accounts: AccountService; push: PushService; funnel: PushFunnel; adminToken: string | undefined; now?: () => number }): void {
  const { accounts, push, funnel } = deps;
  const now = deps.now ?? Date.now;
  const api = new RestApi(app, accounts, deps.adminToken);
  const auth = (req: FastifyRequest): Promise<Principal> => api.authenticate(req);
  const admin = adminGuard(deps.adminToken);

  // --- public: what a client needs before it subscribes ---
  app.get('/api/push/config', async () => ({
    providers: push.enabledProviders,
    vapidPublicKey: push.vapidPublicKey,
    categories: PUSH_CATEGORIES,
  }));
  app.get('/api/push/vapid-public-key', async () => {
    if (!push.vapidPublicKey) throw new MagpieError('not_found', 'Web Push is not enabled');
    return { publicKey: push.vapidPublicKey };
  });

  // --- this device's registration ---
  app.put('/api/push/device', async (req) => {
    const p = await auth(req);
    return { device: publicDevice(await push.registerDevice(p, parse(RegisterDevice, req.body))) };
  });
  app.patch('/api/push/device', async (req) => {
    const p = await auth(req);
    return { device: publicDevice(await push.updateDevice(p, parse(PatchDevice, req.body))) };
  });
  app.delete('/api/push/device', async (req) => {
    const p = await auth(req);
    return { removed: await push.unregisterDevice(p) };
  });
  app.get('/api/push/devices', async (req) => {
    const p = await auth(req);
    return { devices: (await push.devices(p.userId)).map(publicDevice) };
  });
  app.get('/api/push/settings', async (req) => {
    const p = await auth(req);
    return { settings: await push.settings(p.userId) };
  });
  app.put('/api/push/settings', async (req) => {
    const p = await auth(req);
    return { settings: await push.putSettings(p.userId, parse(Settings, req.body)) };
  });

  // --- device stage of the funnel: the service worker / SDK report without a session (the receipt is signed) ---
  app.post('/api/push/receipts', async (req) => {
    const b = parse(Receipts, req.body);
    const events = 'events' in b ? b.events : [b];
    let ok = 0;
    for (const e of events) {
      try {
        await push.report(e.receipt, e.event);
        ok++;
      } catch (err) {
        if (events.length === 1) throw err;
      }
    }
    return { ok, ignored: events.length - ok };
  });
  app.post('/api/push/click', async (req) => {
    const b = parse(Click, req.body);
    const token = bearer(req);
    const who = token ? await accounts.authenticate(token) : null;
    return push.click(b.receipt, who);
  });

  // --- operator ---
  app.get('/api/admin/push/report', async (req) => {
    admin(req);
    const q = parse(ReportQuery, req.query);
    const to = q.to ?? utcDay(now());
    const from = q.from ?? utcDay(Date.parse(`${to}T00:00:00Z`) - 6 * 86_400_000);
    return funnel.report(from, to);
  });
  app.post('/api/admin/push/notify', async (req) => {
    admin(req);
    return push.notify(parse(Notify, req.body));
  });
  app.get<{ Params: { id: string } }>('/api/admin/push/users/:id', async (req) => {
    admin(req);
    return { devices: (await push.devices(req.params.id)).map(publicDevice), settings: await push.settings(req.params.id), jobs: await push.history(req.params.id) };
  });
}
