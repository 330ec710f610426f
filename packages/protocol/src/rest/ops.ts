import { z } from 'zod';
import { restRoute, OkSchema } from './route.ts';
import { ConvEntrySchema, INSTRUCTION_KINDS, MessageSchema } from '../server-frames.ts';
import { PublicUserSchema } from './accounts.ts';

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

/** Operator routes on accounts (admin token; server: http/admin-user-routes.ts). */
export const adminUserRoutes = {
  disable: restRoute({
    method: 'POST',
    url: '/api/admin/users/:id/disable',
    summary: 'Disable an account: no login, no connection; open sockets get kicked{reason:"admin"}',
    auth: 'admin',
    params: UserParams,
    reply: { 200: z.strictObject({ user: PublicUserSchema.extend({ disabled: z.boolean() }), revoked: z.number().int().nonnegative() }) },
  }),
  enable: restRoute({
    method: 'POST',
    url: '/api/admin/users/:id/enable',
    summary: 'Enable a disabled account again',
    auth: 'admin',
    params: UserParams,
    reply: { 200: z.strictObject({ user: PublicUserSchema.extend({ disabled: z.boolean() }), revoked: z.number().int().nonnegative() }) },
  }),
  revokeSessions: restRoute({
    method: 'POST',
    url: '/api/admin/users/:id/revoke-sessions',
    summary: 'End every session of an account (each with kicked{reason:"admin"})',
    auth: 'admin',
    params: UserParams,
    reply: { 200: z.strictObject({ revoked: z.number().int().nonnegative() }) },
  }),
};

/** One instruction with its targets' outcomes (the audit record). */
export const InstructionAuditSchema = z.strictObject({
  id: z.string(),
  userId: z.string(),
  kind: z.enum(INSTRUCTION_KINDS),
  payload: z.unknown(),
  createdAt: z.number().int(),
  issuedBy: z.string(),
  targets: z.array(
    z.strictObject({
      deviceId: z.string(),
      status: z.enum(['pending', 'delivered', 'done', 'failed']),
      deliveredAt: z.number().int().nullable(),
      completedAt: z.number().int().nullable(),
      result: z.unknown(),
    }),
  ),
});

/** Instructions: typed commands for a user's devices (admin token; server: instructions/). The payload is checked per kind. */
export const instructionRoutes = {
  issue: restRoute({
    method: 'POST',
    url: '/api/admin/instructions',
    summary: "Issue an instruction to a user's devices (or one device)",
    auth: 'admin',
    body: z.strictObject({
      userId: z.string().min(1).max(64),
      deviceId: z.string().min(1).max(64).optional(),
      kind: z.enum(INSTRUCTION_KINDS),
      payload: z.json().optional(),
      issuedBy: z.string().max(64).default('admin'),
    }),
    reply: { 201: z.strictObject({ instruction: InstructionAuditSchema }) },
  }),
  audit: restRoute({
    method: 'GET',
    url: '/api/admin/instructions',
    summary: "A user's instructions with their outcomes, newest first",
    auth: 'admin',
    query: z.strictObject({ userId: z.string().min(1).max(64), limit: z.coerce.number().int().min(1).max(500).default(50) }),
    reply: { 200: z.strictObject({ instructions: z.array(InstructionAuditSchema) }) },
  }),
};
