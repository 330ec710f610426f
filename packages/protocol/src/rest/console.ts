import { z } from 'zod';
import { OkSchema, queryLimit, restRoute } from './route.ts';
import { REPORT_STATES, ReportSchema } from './moderation.ts';
import { InstructionAuditSchema } from './ops.ts';

/**
 * The admin console's API (/api/console/…, server: src/console/): its own admin accounts with
 * roles and optional TOTP. Every call but login carries `Authorization: Bearer <console token>`;
 * the operator token (/api/admin/…) stays for automation and can create console admins.
 */

export const CONSOLE_ROLES = ['owner', 'operator', 'viewer'] as const;
export type ConsoleRole = (typeof CONSOLE_ROLES)[number];

export const ConsoleAdminSchema = z.strictObject({ id: z.string(), username: z.string(), role: z.enum(CONSOLE_ROLES), totp: z.boolean(), createdAt: z.number().int() });
export const AuditEntrySchema = z.strictObject({ id: z.number().int(), admin: z.string(), action: z.string(), target: z.string(), detail: z.unknown(), at: z.number().int() });
export const ConsoleUserSchema = z.strictObject({ id: z.string(), username: z.string(), nickname: z.string(), createdAt: z.number().int(), disabled: z.boolean(), deleted: z.boolean() });
export const ConsoleSessionSchema = z.strictObject({ deviceId: z.string(), platform: z.string(), appVersion: z.string(), createdAt: z.number().int(), expiresAt: z.number().int() });
export const ConsoleGroupSchema = z.strictObject({ conv: z.string(), name: z.string(), kind: z.string(), owner: z.string(), memberCount: z.number().int(), dismissed: z.boolean() });

const Username = z.string().min(1).max(64);
const Password = z.string().min(10).max(200);
const Reason = z.strictObject({ reason: z.string().min(1).max(500) });

export const consoleRoutes = {
  createAdmin: restRoute({
    method: 'POST',
    url: '/api/admin/console/admins',
    summary: 'Create a console admin (operator token, for bootstrap and automation)',
    auth: 'admin',
    body: z.strictObject({ username: Username, password: Password, role: z.enum(CONSOLE_ROLES) }),
    reply: { 201: z.strictObject({ admin: ConsoleAdminSchema }) },
  }),
  login: restRoute({
    method: 'POST',
    url: '/api/console/login',
    summary: 'Console login: username, password and (when enrolled) a TOTP code',
    auth: 'none',
    body: z.strictObject({ username: Username, password: z.string().min(1).max(200), totp: z.string().regex(/^\d{6}$/).optional() }),
    reply: { 200: z.strictObject({ token: z.string(), admin: ConsoleAdminSchema, expiresAt: z.number().int() }) },
  }),
  logout: restRoute({ method: 'POST', url: '/api/console/logout', summary: 'End this console session', auth: 'none', reply: { 200: OkSchema } }),
  me: restRoute({ method: 'GET', url: '/api/console/me', summary: 'The signed-in console admin', auth: 'none', reply: { 200: z.strictObject({ admin: ConsoleAdminSchema }) } }),
  totpStart: restRoute({
    method: 'POST',
    url: '/api/console/totp',
    summary: 'Start TOTP enrolment: a new secret and otpauth:// URI (not active until confirmed)',
    auth: 'none',
    reply: { 200: z.strictObject({ secret: z.string(), uri: z.string() }) },
  }),
  totpConfirm: restRoute({
    method: 'POST',
    url: '/api/console/totp/confirm',
    summary: 'Confirm TOTP enrolment with a current code; from then on login needs a code',
    auth: 'none',
    body: z.strictObject({ code: z.string().regex(/^\d{6}$/) }),
    reply: { 200: OkSchema },
  }),
  admins: restRoute({ method: 'GET', url: '/api/console/admins', summary: 'Console admins (owner)', auth: 'none', reply: { 200: z.strictObject({ admins: z.array(ConsoleAdminSchema) }) } }),
  addAdmin: restRoute({
    method: 'POST',
    url: '/api/console/admins',
    summary: 'Add a console admin (owner)',
    auth: 'none',
    body: z.strictObject({ username: Username, password: Password, role: z.enum(CONSOLE_ROLES) }),
    reply: { 201: z.strictObject({ admin: ConsoleAdminSchema }) },
  }),
  users: restRoute({
    method: 'GET',
    url: '/api/console/users',
    summary: 'Find users by id, exact username or nickname prefix',
    auth: 'none',
    query: z.strictObject({ q: z.string().min(1).max(64), limit: queryLimit(100).default(20) }),
    reply: { 200: z.strictObject({ users: z.array(ConsoleUserSchema) }) },
  }),
  user: restRoute({
    method: 'GET',
    url: '/api/console/users/:id',
    summary: 'A user with its live sessions and devices',
    auth: 'none',
    params: z.strictObject({ id: z.string().min(1).max(64) }),
    reply: { 200: z.strictObject({ user: ConsoleUserSchema, sessions: z.array(ConsoleSessionSchema) }) },
  }),
  userAction: restRoute({
    method: 'POST',
    url: '/api/console/users/:id/:action',
    summary: 'disable, enable, revoke-sessions or reset-password (operator); reset-password answers a temporary password once',
    auth: 'none',
    params: z.strictObject({ id: z.string().min(1).max(64), action: z.enum(['disable', 'enable', 'revoke-sessions', 'reset-password']) }),
    body: Reason,
    reply: { 200: z.strictObject({ ok: z.literal(true), revoked: z.number().int().optional(), temporaryPassword: z.string().optional() }) },
  }),
  groups: restRoute({
    method: 'GET',
    url: '/api/console/groups',
    summary: 'Find groups by name prefix or conversation id',
    auth: 'none',
    query: z.strictObject({ q: z.string().min(1).max(200), limit: queryLimit(100).default(20) }),
    reply: { 200: z.strictObject({ groups: z.array(ConsoleGroupSchema) }) },
  }),
  groupMembers: restRoute({
    method: 'GET',
    url: '/api/console/groups/:conv/members',
    summary: 'Members of a group with roles (paged by `after` = last user id)',
    auth: 'none',
    params: z.strictObject({ conv: z.string().min(1).max(200) }),
    query: z.strictObject({ after: z.string().max(64).default(''), limit: queryLimit(500).default(100) }),
    reply: { 200: z.strictObject({ members: z.array(z.strictObject({ userId: z.string(), role: z.string(), joinedAt: z.number().int() })) }) },
  }),
  audit: restRoute({
    method: 'GET',
    url: '/api/console/audit',
    summary: 'The audit log of console and operator actions, newest first (paged by `before` = last id)',
    auth: 'none',
    query: z.strictObject({ before: z.coerce.number().int().positive().optional(), limit: queryLimit(500).default(100) }),
    reply: { 200: z.strictObject({ entries: z.array(AuditEntrySchema) }) },
  }),
  metrics: restRoute({
    method: 'GET',
    url: '/api/console/metrics',
    summary: 'Operations time series (push funnel, sends, deliveries, retries, connections) sampled by this node',
    auth: 'none',
    reply: { 200: z.strictObject({ intervalMs: z.number().int(), series: z.record(z.string(), z.array(z.tuple([z.number(), z.number()]))) }) },
  }),

  reports: restRoute({
    method: 'GET',
    url: '/api/console/reports',
    summary: 'The moderation queue (viewer)',
    auth: 'none',
    query: z.strictObject({ status: z.enum(REPORT_STATES).default('open'), after: z.string().max(64).optional(), limit: queryLimit(500).default(100) }),
    reply: { 200: z.strictObject({ reports: z.array(ReportSchema) }) },
  }),
  resolveReport: restRoute({
    method: 'PATCH',
    url: '/api/console/reports/:id',
    summary: 'Close a report (operator; audited)',
    auth: 'none',
    params: z.strictObject({ id: z.string().min(1).max(64) }),
    body: z.strictObject({ status: z.enum(['resolved', 'dismissed']), resolution: z.string().max(1000).default('') }),
    reply: { 200: z.strictObject({ report: ReportSchema }) },
  }),
  reconcile: restRoute({
    method: 'GET',
    url: '/api/console/wallet/reconcile',
    summary: 'Wallet reconciliation report (viewer)',
    auth: 'none',
    reply: { 200: z.looseObject({ ok: z.boolean() }) },
  }),
  instructions: restRoute({
    method: 'GET',
    url: '/api/console/instructions',
    summary: "Instructions sent and their outcome per device, newest first: everyone's, or one user's (viewer)",
    auth: 'none',
    query: z.strictObject({ userId: z.string().min(1).max(64).optional(), limit: queryLimit(500).default(50) }),
    reply: { 200: z.strictObject({ instructions: z.array(InstructionAuditSchema) }) },
  }),

  ledger: restRoute({
    method: 'GET',
    url: '/api/console/wallet/:userId/entries',
    summary: "A user's ledger entries, newest first (viewer)",
    auth: 'none',
    params: z.strictObject({ userId: z.string().min(1).max(64) }),
    query: z.strictObject({ before: z.coerce.number().int().positive().optional(), limit: queryLimit(500).default(50) }),
    reply: { 200: z.strictObject({ balance: z.number().int(), entries: z.array(z.looseObject({})) }) },
  }),

  groupAction: restRoute({
    method: 'POST',
    url: '/api/console/groups/:conv/:action',
    summary: 'dismiss a group, or transfer it to a member (operator; audited)',
    auth: 'none',
    params: z.strictObject({ conv: z.string().min(1).max(200), action: z.enum(['dismiss', 'transfer']) }),
    body: z.strictObject({ reason: z.string().min(1).max(500), to: z.string().min(1).max(64).optional() }),
    reply: { 200: OkSchema },
  }),
};
