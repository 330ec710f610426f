import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Registry } from 'prom-client';
import { MagpieError, consoleRoutes as R, type ConsoleRole } from '@magpie/protocol';
import type { Config } from '../config/config.ts';
import type { SqlEngine } from '../db/index.ts';
import type { Store } from '../store/store.ts';
import type { AccountService } from '../services/account-service.ts';
import type { SocialService } from '../social/social-service.ts';
import type { RestApi } from '../http/rest.ts';
import { bearer } from '../http/validation.ts';
import { ConsoleService, temporaryPassword, type ConsoleAdmin } from './console-service.ts';
import { MetricsSampler } from './metrics-sampler.ts';
import type { ReportService } from '../webhooks/reports.ts';
import type { GroupService } from '../services/group-service.ts';
import type { WalletService } from '../wallet/wallet-service.ts';
import type { InstructionService } from '../instructions/instruction-service.ts';

export { ConsoleService } from './console-service.ts';

export interface ConsoleModule {
  service: ConsoleService;
  sampler: MetricsSampler;
  start(): void;
  stop(): void;
}

/** The console's page and its files: src/console/ui/ here, beside the compiled module in dist/ too (scripts/build.mjs copies it). */
const UI = new URL('./ui/', import.meta.url);
const UI_FILES: Record<string, string> = { 'index.html': 'text/html; charset=utf-8', 'console.js': 'text/javascript; charset=utf-8', 'console.css': 'text/css; charset=utf-8', 'console-trace.js': 'text/javascript; charset=utf-8' };

/**
 * The admin console: its page at /admin and its API at /api/console/… (own admin accounts with
 * roles and TOTP; every action audited). User and group actions go through the same services
 * as the operator-token API, so their effects (kicks, revocations) are the documented ones.
 */
export function createConsoleModule(
  http: FastifyInstance,
  api: RestApi,
  deps: { config: Config; db: SqlEngine; store: Store; accounts: AccountService; social: SocialService; reports: ReportService; wallet: WalletService; groups: GroupService; instructions: InstructionService; registry: Registry },
): ConsoleModule {
  const { store, accounts } = deps;
  const service = new ConsoleService(deps.db, { sessionTtlMs: deps.config.console.sessionTtlMs });
  const sampler = new MetricsSampler(deps.registry, deps.config.console.sampleMs, deps.config.console.samplePoints);
  const as = (req: FastifyRequest, role: ConsoleRole): Promise<ConsoleAdmin> => service.authenticate(bearer(req), role);

  api.route(R.createAdmin, async ({ body }) => ({ admin: await service.createAdmin(body.username, body.password, body.role, 'token') }));
  api.route(R.login, async ({ body }) => service.login(body.username, body.password, body.totp));
  api.route(R.logout, async ({ raw }) => {
    await as(raw, 'viewer');
    await service.logout(bearer(raw)!);
    return { ok: true as const };
  });
  api.route(R.me, async ({ raw }) => ({ admin: await as(raw, 'viewer') }));
  api.route(R.totpStart, async ({ raw }) => service.startTotp(await as(raw, 'viewer')));
  api.route(R.totpConfirm, async ({ raw, body }) => {
    await service.confirmTotp(await as(raw, 'viewer'), body.code);
    return { ok: true as const };
  });
  api.route(R.admins, async ({ raw }) => (await as(raw, 'owner'), { admins: await service.admins() }));
  api.route(R.addAdmin, async ({ raw, body }) => {
    const me = await as(raw, 'owner');
    return { admin: await service.createAdmin(body.username, body.password, body.role, me.username) };
  });

  const consoleUser = async (id: string) => {
    const u = await store.getUser(id);
    if (!u) throw new MagpieError('not_found', `no such user: ${id}`);
    return { id: u.id, username: u.username, nickname: u.nickname, createdAt: u.createdAt, disabled: u.disabledAt !== null, deleted: u.deletedAt !== null };
  };
  api.route(R.users, async ({ raw, query }) => {
    await as(raw, 'viewer');
    const found = await deps.social.search(query.q, query.limit, undefined);
    const ids = [...new Set([...found.exact, ...found.results].map((p) => p.id))].slice(0, query.limit);
    const byId = await store.getUser(query.q);
    if (byId && !ids.includes(byId.id)) ids.unshift(byId.id);
    return { users: await Promise.all(ids.map(consoleUser)) };
  });
  api.route(R.user, async ({ raw, params }) => {
    await as(raw, 'viewer');
    const user = await consoleUser(params.id);
    const sessions = (await store.listSessions(params.id, Date.now())).map((s) => ({ deviceId: s.deviceId, platform: s.platform, appVersion: s.appVersion, createdAt: s.createdAt, expiresAt: s.expiresAt }));
    return { user, sessions };
  });
  api.route(R.userAction, async ({ raw, params, body }) => {
    const me = await as(raw, 'operator');
    let out: { ok: true; revoked?: number; temporaryPassword?: string };
    if (params.action === 'disable' || params.action === 'enable') out = { ok: true, revoked: (await accounts.setDisabled(params.id, params.action === 'disable')).revoked };
    else if (params.action === 'revoke-sessions') out = { ok: true, revoked: await accounts.adminRevokeAll(params.id) };
    else {
      const password = temporaryPassword();
      out = { ok: true, revoked: await accounts.adminSetPassword(params.id, password), temporaryPassword: password };
    }
    await service.audit(me.username, `user.${params.action}`, params.id, { reason: body.reason, revoked: out.revoked });
    return out;
  });
  const consoleGroup = (g: { conv: string; name: string; kind: string; owner: string; memberCount: number; dismissed: boolean }) => ({ conv: g.conv, name: g.name, kind: g.kind, owner: g.owner, memberCount: g.memberCount, dismissed: g.dismissed });
  api.route(R.groups, async ({ raw, query }) => {
    await as(raw, 'viewer');
    const exact = await store.getGroup(query.q);
    const found = await store.searchGroups(query.q, query.limit);
    return { groups: [...(exact ? [exact] : []), ...found.filter((g) => g.conv !== exact?.conv)].map(consoleGroup) };
  });
  api.route(R.groupMembers, async ({ raw, params, query }) => {
    await as(raw, 'viewer');
    if (!(await store.getGroup(params.conv))) throw new MagpieError('not_found', `no such group: ${params.conv}`);
    const members = await store.listMembers(params.conv, query.after, query.limit);
    return { members: members.map((m) => ({ userId: m.userId, role: m.role, joinedAt: m.joinedAt })) };
  });
  api.route(R.groupAction, async ({ raw, params, body }) => {
    const me = await as(raw, 'operator');
    if (params.action === 'dismiss') await deps.groups.operatorDismiss(params.conv, body.reason);
    else {
      if (!body.to) throw new MagpieError('invalid', 'transfer needs `to`: the new owner (a member)');
      await deps.groups.operatorTransfer(params.conv, body.to, body.reason);
    }
    await service.audit(me.username, `group.${params.action}`, params.conv, { reason: body.reason, ...(body.to ? { to: body.to } : {}) });
    return { ok: true as const };
  });
  api.route(R.audit, async ({ raw, query }) => (await as(raw, 'viewer'), { entries: await service.auditLog(query.before, query.limit) }));
  api.route(R.metrics, async ({ raw }) => (await as(raw, 'viewer'), { intervalMs: sampler.intervalMs, series: sampler.snapshot() }));

  api.route(R.reports, async ({ raw, query }) => (await as(raw, 'viewer'), { reports: await deps.reports.list(query.status, query.after, query.limit) }));
  api.route(R.resolveReport, async ({ raw, params, body }) => {
    const me = await as(raw, 'operator');
    const report = await deps.reports.resolve(params.id, body.status, body.resolution);
    await service.audit(me.username, `report.${body.status}`, params.id, { resolution: body.resolution, targetUser: report.targetUser });
    return { report };
  });
  api.route(R.reconcile, async ({ raw }) => (await as(raw, 'viewer'), (await deps.wallet.reconcile()) as unknown as { ok: boolean }));
  api.route(R.instructions, async ({ raw, query }) => (await as(raw, 'viewer'), { instructions: await deps.instructions.audit(query.userId, query.limit) }));
  api.route(R.ledger, async ({ raw, params, query }) => {
    await as(raw, 'viewer');
    const { balance } = await deps.wallet.balance(params.userId);
    const { entries } = await deps.wallet.entries(params.userId, { ...(query.before !== undefined ? { before: query.before } : {}), limit: query.limit });
    return { balance, entries: entries as unknown as Record<string, unknown>[] };
  });

  // The page. Its CSP is the server's (own scripts and styles only), which it satisfies.
  const require = createRequire(import.meta.url);
  const uplotDir = require.resolve('uplot/dist/uPlot.iife.min.js').replace(/uPlot\.iife\.min\.js$/, '');
  const serve = (file: URL | string, type: string) => async (_req: FastifyRequest, reply: import('fastify').FastifyReply) => {
    void reply.header('content-type', type).header('cache-control', 'no-cache');
    return reply.send(await readFile(file));
  };
  http.get('/admin', async (_req, reply) => reply.redirect('/admin/'));
  http.get('/admin/', serve(new URL('index.html', UI), UI_FILES['index.html']!));
  for (const [name, type] of Object.entries(UI_FILES)) if (name !== 'index.html') http.get(`/admin/${name}`, serve(new URL(name, UI), type));
  http.get('/admin/uplot.js', serve(`${uplotDir}uPlot.iife.min.js`, 'text/javascript; charset=utf-8'));
  http.get('/admin/uplot.css', serve(`${uplotDir}uPlot.min.css`, 'text/css; charset=utf-8'));

  return { service, sampler, start: () => sampler.start(), stop: () => sampler.stop() };
}
