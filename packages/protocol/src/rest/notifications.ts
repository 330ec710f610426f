import { z } from 'zod';
import { avatarUrl, displayName, safeText } from '../text.ts';
import { Seq, queryLimit, restRoute } from './route.ts';

/**
 * Service accounts and notification conversations (server: src/notifications/). Broadcasts of a
 * service live apart from chat: they never take a slot of the chat inbox ring.
 */

export const ServiceIdSchema = z.string().regex(/^svc_[A-Za-z0-9_-]{4,60}$/, 'a service id (svc_…)');

export const ServiceAccountSchema = z.strictObject({
  id: z.string(),
  name: z.string(),
  avatar: z.string(),
  description: z.string(),
  /** Marketing services push in the `marketing` category (vendor and per-user quotas); others in `followed`. */
  marketing: z.boolean(),
  /** Seq of the service's newest broadcast (every audience). */
  lastSeq: Seq,
  createdAt: z.number().int(),
});
export type ServiceAccount = z.infer<typeof ServiceAccountSchema>;

const AttrKey = z.string().regex(/^[a-z][a-z0-9_.-]{0,39}$/, 'lowercase letters, digits, _ . -');
const AttrValue = z.string().min(1).max(200);

/**
 * Who a broadcast reaches: every user (`all`, stored once and pulled: read diffusion), a list of
 * user ids, or a segment of users whose attributes match every given key (a value or any of a
 * list). Lists and segments are materialized into each recipient's notification ring.
 */
export const AudienceSchema = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('all') }),
  z.strictObject({ kind: z.literal('list'), userIds: z.array(z.string().min(1).max(64)).min(1).max(10_000) }),
  z.strictObject({
    kind: z.literal('segment'),
    attributes: z
      .record(AttrKey, z.union([AttrValue, z.array(AttrValue).min(1).max(100)]))
      .refine((a) => Object.keys(a).length >= 1 && Object.keys(a).length <= 10, 'a segment matches 1 to 10 attributes'),
  }),
]);
export type Audience = z.infer<typeof AudienceSchema>;

export const NotificationContentSchema = z.strictObject({
  title: safeText(200).refine((s) => s.length > 0, 'a title is required'),
  body: safeText(2000).default(''),
  /** Extra strings for the client (deep link, campaign id); also sent with the push. */
  data: z.record(z.string().max(40), z.string().max(500)).default({}),
});

/** One notification as a user sees it. */
export const NotificationSchema = z.strictObject({
  /** The broadcast id (one per broadcast, shared by every recipient). */
  id: z.string(),
  service: z.string(),
  /** Position in the service's broadcasts (read marks are by service and seq). */
  seq: Seq.min(1),
  audience: z.enum(['all', 'list', 'segment']),
  /** Audience all: position in the service's feed (contiguous per service). Else null. */
  feedSeq: Seq.min(1).nullable(),
  /** List and segment: the slot in this user's notification ring (contiguous per user). Else null. */
  slot: Seq.min(1).nullable(),
  title: z.string(),
  body: z.string(),
  data: z.record(z.string(), z.string()),
  createdAt: z.number().int(),
});
export type Notification = z.infer<typeof NotificationSchema>;

export const BroadcastSchema = z.strictObject({
  id: z.string(),
  service: z.string(),
  seq: Seq.min(1),
  audience: AudienceSchema,
  title: z.string(),
  body: z.string(),
  data: z.record(z.string(), z.string()),
  /** Materialized recipients (list, segment); 0 for all. */
  recipients: Seq,
  scheduleId: z.string().nullable(),
  createdAt: z.number().int(),
});

export const ScheduleSchema = z.strictObject({
  id: z.string(),
  service: z.string(),
  sendAt: z.number().int(),
  status: z.enum(['pending', 'sent', 'canceled', 'failed']),
  attempts: Seq,
  broadcastId: z.string().nullable(),
  lastError: z.string().nullable(),
  audience: AudienceSchema,
  title: z.string(),
  createdAt: z.number().int(),
});

/** A service as one user sees it, with their settings and unread count. */
export const UserServiceSchema = ServiceAccountSchema.extend({
  muted: z.boolean(),
  unsubscribed: z.boolean(),
  readSeq: Seq,
  unread: Seq,
});
export type UserService = z.infer<typeof UserServiceSchema>;

const ServiceBody = z.strictObject({
  name: displayName(64),
  avatar: avatarUrl().default(''),
  description: safeText(500).default(''),
  marketing: z.boolean().default(true),
});
const ServicePatch = z.strictObject({ name: displayName(64).optional(), avatar: avatarUrl().optional(), description: safeText(500).optional(), marketing: z.boolean().optional() });
const BroadcastBody = NotificationContentSchema.extend({ audience: AudienceSchema });
const ScheduleBody = BroadcastBody.extend({ sendAt: z.number().int().positive() });
const SvcParams = z.strictObject({ id: ServiceIdSchema });
const Paging = z.strictObject({ before: z.coerce.number().int().positive().optional(), limit: queryLimit(200).default(50) });
const Attributes = z.record(AttrKey, AttrValue);

/** A page of notifications: `cursor` is opaque, pass it back as `cursor` to continue. */
export const NotificationPageSchema = z.strictObject({
  notifications: z.array(NotificationSchema),
  cursor: z.string(),
  /** More are waiting: ask again with the new cursor. */
  more: z.boolean(),
  /** The ring wrapped (or retention removed items) since the cursor: older list/segment notifications are gone. */
  wrapped: z.boolean(),
});
export type NotificationPage = z.infer<typeof NotificationPageSchema>;

/** Operator-token routes (automation). The console has the same actions under /api/console/. */
export const serviceAdminRoutes = {
  createService: restRoute({ method: 'POST', url: '/api/admin/services', summary: 'Create a service account', auth: 'admin', body: ServiceBody, reply: { 201: z.strictObject({ service: ServiceAccountSchema }) } }),
  services: restRoute({ method: 'GET', url: '/api/admin/services', summary: 'Every service account', auth: 'admin', reply: { 200: z.strictObject({ services: z.array(ServiceAccountSchema) }) } }),
  updateService: restRoute({ method: 'PATCH', url: '/api/admin/services/:id', summary: 'Rename a service, change its avatar, description or marketing flag', auth: 'admin', params: SvcParams, body: ServicePatch, reply: { 200: z.strictObject({ service: ServiceAccountSchema }) } }),
  broadcast: restRoute({ method: 'POST', url: '/api/admin/services/:id/broadcasts', summary: 'Broadcast a notification now to an audience', auth: 'admin', params: SvcParams, body: BroadcastBody, reply: { 201: z.strictObject({ broadcast: BroadcastSchema }) } }),
  broadcasts: restRoute({ method: 'GET', url: '/api/admin/services/:id/broadcasts', summary: 'A service\'s broadcasts, newest first (paged by `before` = a seq)', auth: 'admin', params: SvcParams, query: Paging, reply: { 200: z.strictObject({ broadcasts: z.array(BroadcastSchema) }) } }),
  schedule: restRoute({ method: 'POST', url: '/api/admin/services/:id/schedules', summary: 'Schedule a broadcast for `sendAt` (sent once, by one node)', auth: 'admin', params: SvcParams, body: ScheduleBody, reply: { 201: z.strictObject({ schedule: ScheduleSchema }) } }),
  schedules: restRoute({ method: 'GET', url: '/api/admin/services/:id/schedules', summary: 'A service\'s scheduled sends, newest first', auth: 'admin', params: SvcParams, query: Paging, reply: { 200: z.strictObject({ schedules: z.array(ScheduleSchema) }) } }),
  cancelSchedule: restRoute({ method: 'DELETE', url: '/api/admin/schedules/:id', summary: 'Cancel a scheduled send that has not gone out', auth: 'admin', params: z.strictObject({ id: z.string().min(1).max(64) }), reply: { 200: z.strictObject({ schedule: ScheduleSchema }) } }),
  attributes: restRoute({ method: 'GET', url: '/api/admin/users/:id/attributes', summary: 'A user\'s attributes (for segments)', auth: 'admin', params: z.strictObject({ id: z.string().min(1).max(64) }), reply: { 200: z.strictObject({ attributes: Attributes }) } }),
  setAttributes: restRoute({
    method: 'PATCH',
    url: '/api/admin/users/:id/attributes',
    summary: 'Set (a value) or remove (null) attributes of a user',
    auth: 'admin',
    params: z.strictObject({ id: z.string().min(1).max(64) }),
    body: z.strictObject({ attributes: z.record(AttrKey, AttrValue.nullable()).refine((a) => Object.keys(a).length <= 50, 'at most 50 attributes at once') }),
    reply: { 200: z.strictObject({ attributes: Attributes }) },
  }),
};

/** The console's service-account page (console session; operator role to act). */
export const serviceConsoleRoutes = {
  services: restRoute({ method: 'GET', url: '/api/console/services', summary: 'Service accounts (console)', auth: 'none', reply: { 200: z.strictObject({ services: z.array(ServiceAccountSchema) }) } }),
  createService: restRoute({ method: 'POST', url: '/api/console/services', summary: 'Create a service account (console, operator)', auth: 'none', body: ServiceBody, reply: { 201: z.strictObject({ service: ServiceAccountSchema }) } }),
  broadcast: restRoute({ method: 'POST', url: '/api/console/services/:id/broadcasts', summary: 'Broadcast now (console, operator)', auth: 'none', params: SvcParams, body: BroadcastBody, reply: { 201: z.strictObject({ broadcast: BroadcastSchema }) } }),
  broadcasts: restRoute({ method: 'GET', url: '/api/console/services/:id/broadcasts', summary: 'A service\'s broadcasts (console)', auth: 'none', params: SvcParams, query: Paging, reply: { 200: z.strictObject({ broadcasts: z.array(BroadcastSchema) }) } }),
  schedule: restRoute({ method: 'POST', url: '/api/console/services/:id/schedules', summary: 'Schedule a broadcast (console, operator)', auth: 'none', params: SvcParams, body: ScheduleBody, reply: { 201: z.strictObject({ schedule: ScheduleSchema }) } }),
  schedules: restRoute({ method: 'GET', url: '/api/console/services/:id/schedules', summary: 'A service\'s scheduled sends (console)', auth: 'none', params: SvcParams, query: Paging, reply: { 200: z.strictObject({ schedules: z.array(ScheduleSchema) }) } }),
};

/** A user's notification conversations. */
export const notificationRoutes = {
  services: restRoute({ method: 'GET', url: '/api/notifications/services', summary: 'Service accounts with this user\'s settings and unread counts', auth: 'user', reply: { 200: z.strictObject({ services: z.array(UserServiceSchema) }) } }),
  list: restRoute({
    method: 'GET',
    url: '/api/notifications',
    summary: 'Notifications since a cursor (oldest first; no cursor: from the start of what is kept)',
    auth: 'user',
    query: z.strictObject({ cursor: z.string().max(20_000).optional(), limit: queryLimit(200).default(50) }),
    reply: { 200: NotificationPageSchema },
  }),
  settings: restRoute({
    method: 'PATCH',
    url: '/api/notifications/services/:id',
    summary: 'Mute (no pushes) or unsubscribe (no more notifications) from a service',
    auth: 'user',
    params: SvcParams,
    body: z.strictObject({ muted: z.boolean().optional(), unsubscribed: z.boolean().optional() }),
    reply: { 200: z.strictObject({ service: UserServiceSchema }) },
  }),
  read: restRoute({
    method: 'POST',
    url: '/api/notifications/services/:id/read',
    summary: 'Mark a service\'s notifications read up to `seq`',
    auth: 'user',
    params: SvcParams,
    body: z.strictObject({ seq: Seq }),
    reply: { 200: z.strictObject({ service: UserServiceSchema }) },
  }),
};
