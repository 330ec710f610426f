import type { FastifyRequest } from 'fastify';
import { notificationRoutes as U, serviceAdminRoutes as A, serviceConsoleRoutes as C } from '@magpie/protocol';
import type { RestApi } from '../http/rest.ts';
import type { NotificationService } from './notification-service.ts';
import type { BroadcastRecord } from './notification-store.ts';
import type { ScheduleRecord } from './schedule-store.ts';

/** The console's session check and audit log (src/console/), when the console is on. */
export interface ConsoleHooks {
  /** The signed-in console admin with at least `role`; throws unauthorized/forbidden. */
  as(req: FastifyRequest, role: 'viewer' | 'operator'): Promise<{ username: string }>;
  audit(admin: string, action: string, target: string, detail: unknown): Promise<void>;
}

const broadcastOut = (b: BroadcastRecord) => ({ id: b.id, service: b.service, seq: b.seq, audience: b.audience, title: b.title, body: b.body, data: b.data, recipients: b.recipients, scheduleId: b.scheduleId, createdAt: b.createdAt });
const scheduleOut = (s: ScheduleRecord) => ({
  id: s.id,
  service: s.service,
  sendAt: s.sendAt,
  status: s.status,
  attempts: s.attempts,
  broadcastId: s.broadcastId,
  lastError: s.lastError,
  audience: s.request.audience,
  title: s.request.title,
  createdAt: s.createdAt,
});
/** What the audit log keeps of an audience: its kind and size, not the whole list. */
const audienceNote = (a: BroadcastRecord['audience']) => (a.kind === 'list' ? { kind: a.kind, users: a.userIds.length } : a);

/** Operator-token routes, console routes (when the console is on) and the user's routes. */
export function registerNotificationRoutes(api: RestApi, svc: NotificationService, opts: { console: ConsoleHooks | null; audit: (action: string, target: string, detail: unknown) => Promise<void> }): void {
  // Operator token (automation); audited as 'token' when the console keeps a log.
  api.route(A.createService, async ({ body }) => {
    const service = await svc.createService(body);
    await opts.audit('service.create', service.id, { name: service.name, marketing: service.marketing });
    return { service };
  });
  api.route(A.services, async () => ({ services: await svc.services() }));
  api.route(A.updateService, async ({ params, body }) => {
    const service = await svc.updateService(params.id, body);
    await opts.audit('service.update', service.id, body);
    return { service };
  });
  api.route(A.broadcast, async ({ params, body }) => {
    const b = await svc.broadcast(params.id, body);
    await opts.audit('service.broadcast', params.id, { broadcast: b.id, audience: audienceNote(b.audience), recipients: b.recipients });
    return { broadcast: broadcastOut(b) };
  });
  api.route(A.broadcasts, async ({ params, query }) => ({ broadcasts: (await svc.broadcasts(params.id, query.before, query.limit)).map(broadcastOut) }));
  api.route(A.schedule, async ({ params, body }) => {
    const s = await svc.schedule(params.id, body);
    await opts.audit('service.schedule', params.id, { schedule: s.id, sendAt: s.sendAt, audience: audienceNote(s.request.audience) });
    return { schedule: scheduleOut(s) };
  });
  api.route(A.schedules, async ({ params, query }) => ({ schedules: (await svc.schedulesOf(params.id, query.before, query.limit)).map(scheduleOut) }));
  api.route(A.cancelSchedule, async ({ params }) => {
    const s = await svc.cancelSchedule(params.id);
    await opts.audit('service.schedule.cancel', s.service, { schedule: s.id });
    return { schedule: scheduleOut(s) };
  });
  api.route(A.attributes, async ({ params }) => ({ attributes: await svc.attributes(params.id) }));
  api.route(A.setAttributes, async ({ params, body }) => ({ attributes: await svc.setAttributes(params.id, body.attributes) }));

  const c = opts.console;
  if (c) {
    api.route(C.services, async ({ raw }) => (await c.as(raw, 'viewer'), { services: await svc.services() }));
    api.route(C.createService, async ({ raw, body }) => {
      const me = await c.as(raw, 'operator');
      const service = await svc.createService(body);
      await c.audit(me.username, 'service.create', service.id, { name: service.name, marketing: service.marketing });
      return { service };
    });
    api.route(C.broadcast, async ({ raw, params, body }) => {
      const me = await c.as(raw, 'operator');
      const b = await svc.broadcast(params.id, body);
      await c.audit(me.username, 'service.broadcast', params.id, { broadcast: b.id, audience: audienceNote(b.audience), recipients: b.recipients });
      return { broadcast: broadcastOut(b) };
    });
    api.route(C.broadcasts, async ({ raw, params, query }) => (await c.as(raw, 'viewer'), { broadcasts: (await svc.broadcasts(params.id, query.before, query.limit)).map(broadcastOut) }));
    api.route(C.schedule, async ({ raw, params, body }) => {
      const me = await c.as(raw, 'operator');
      const s = await svc.schedule(params.id, body);
      await c.audit(me.username, 'service.schedule', params.id, { schedule: s.id, sendAt: s.sendAt, audience: audienceNote(s.request.audience) });
      return { schedule: scheduleOut(s) };
    });
    api.route(C.schedules, async ({ raw, params, query }) => (await c.as(raw, 'viewer'), { schedules: (await svc.schedulesOf(params.id, query.before, query.limit)).map(scheduleOut) }));
  }

  api.route(U.services, async ({ principal }) => ({ services: await svc.userServices(principal.userId) }));
  api.route(U.list, async ({ principal, query }) => svc.sync(principal.userId, query.cursor, query.limit));
  api.route(U.settings, async ({ principal, params, body }) => ({ service: await svc.setPrefs(principal.userId, params.id, body) }));
  api.route(U.read, async ({ principal, params, body }) => ({ service: await svc.markRead(principal.userId, params.id, body.seq) }));
}
