import { z } from 'zod';
import { restRoute, OkSchema } from './route.ts';
import { ConvEntrySchema, MessageSchema } from '../server-frames.ts';

/** Health for load balancers and orchestrators (server: http/health-routes.ts). */

const Check = z.enum(['ok', 'failed']);

export const ReadySchema = z.strictObject({
  ok: z.literal(true),
  node: z.string(),
  checks: z.strictObject({ database: Check, bus: Check }),
});

export const opsRoutes = {
  live: restRoute({ method: 'GET', url: '/api/live', summary: 'Liveness: the process answers (no dependency is checked)', auth: 'none', reply: { 200: z.strictObject({ ok: z.literal(true), node: z.string() }) } }),
  ready: restRoute({
    method: 'GET',
    url: '/api/ready',
    summary: 'Readiness: the database and the Bus answer and the node is not draining (503 `unavailable` otherwise)',
    auth: 'none',
    reply: { 200: ReadySchema },
  }),
};

const UserParams = z.strictObject({ id: z.string().min(1).max(64) });

/** Everything the server holds about one account, for a data-export request (no password hash, no token hashes). */
export const UserExportSchema = z.strictObject({
  exportedAt: z.number().int(),
  user: z.strictObject({
    id: z.string(),
    username: z.string(),
    nickname: z.string(),
    createdAt: z.number().int(),
    disabledAt: z.number().int().nullable(),
    deletedAt: z.number().int().nullable(),
  }),
  sessions: z.array(z.strictObject({ deviceId: z.string(), platform: z.string(), appVersion: z.string(), createdAt: z.number().int(), expiresAt: z.number().int() })),
  conversations: z.array(ConvEntrySchema),
  /** Messages the user sent, per conversation in seq order. */
  messages: z.array(MessageSchema),
});

/** Operator routes for one account's data (admin token). */
export const adminDataRoutes = {
  exportUser: restRoute({
    method: 'GET',
    url: '/api/admin/users/:id/export',
    summary: "Export an account's data: profile, sessions, conversation entries and the messages it sent",
    auth: 'admin',
    params: UserParams,
    reply: { 200: UserExportSchema },
  }),
  eraseUser: restRoute({
    method: 'POST',
    url: '/api/admin/users/:id/erase',
    summary: 'Erase an account as its owner would (tombstone, sessions revoked, groups left, relations dropped)',
    auth: 'admin',
    params: UserParams,
    reply: { 200: OkSchema },
  }),
};
