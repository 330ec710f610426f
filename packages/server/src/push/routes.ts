import { MagpieError, pushAdminRoutes as A, pushRoutes as R } from '@magpie/protocol';
import type { RestApi } from '../http/rest.ts';
import type { PushService } from './push-service.ts';
import type { PushFunnel } from './funnel.ts';
import { utcDay } from './policy.ts';
import { PUSH_CATEGORIES, type PushDevice } from './types.ts';

/** What a client may see of a device: never the token itself. */
export function publicDevice(d: PushDevice): Omit<PushDevice, 'token'> & { token: string | { endpoint: string } } {
  const { token, ...rest } = d;
  return { ...rest, token: d.provider === 'webpush' ? { endpoint: (JSON.parse(token) as { endpoint: string }).endpoint.replace(/\/[^/]*$/, '/…') } : `…${token.slice(-6)}` };
}

/**
 * Push routes under /api/push (devices, settings, receipts, clicks) and the operator's
 * /api/admin/push (funnel report, notify/campaign, a user's push log). See docs/push.md.
 */
export function registerPushRoutes(api: RestApi, deps: { push: PushService; funnel: PushFunnel; now?: () => number }): void {
  const { push, funnel } = deps;
  const now = deps.now ?? Date.now;

  // --- public: what a client needs before it subscribes ---
  api.route(R.config, async () => ({ providers: [...push.enabledProviders], vapidPublicKey: push.vapidPublicKey, categories: [...PUSH_CATEGORIES] }));
  api.route(R.vapidPublicKey, async () => {
    if (!push.vapidPublicKey) throw new MagpieError('not_found', 'Web Push is not enabled');
    return { publicKey: push.vapidPublicKey };
  });

  // --- this device's registration ---
  api.route(R.register, async ({ principal, body }) => ({ device: publicDevice(await push.registerDevice(principal, body)) }));
  api.route(R.update, async ({ principal, body }) => ({ device: publicDevice(await push.updateDevice(principal, body)) }));
  api.route(R.unregister, async ({ principal }) => ({ removed: await push.unregisterDevice(principal) }));
  api.route(R.devices, async ({ principal }) => ({ devices: (await push.devices(principal.userId)).map(publicDevice) }));
  api.route(R.settings, async ({ principal }) => ({ settings: await push.settings(principal.userId) }));
  api.route(R.putSettings, async ({ principal, body }) => ({ settings: await push.putSettings(principal.userId, body) }));

  // --- device stage of the funnel: the service worker / SDK report without a session (the receipt is signed) ---
  api.route(R.receipts, async ({ body }) => {
    const events = 'events' in body ? body.events : [body];
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
  api.route(R.click, async ({ principal, body }) => push.click(body.receipt, principal));

  // --- operator ---
  api.route(A.report, async ({ query }) => {
    const to = query.to ?? utcDay(now());
    const from = query.from ?? utcDay(Date.parse(`${to}T00:00:00Z`) - 6 * 86_400_000);
    return funnel.report(from, to);
  });
  api.route(A.notify, async ({ body }) => push.notify(body));
  api.route(A.user, async ({ params }) => ({ devices: (await push.devices(params.id)).map(publicDevice), settings: await push.settings(params.id), jobs: await push.history(params.id) }));
}
