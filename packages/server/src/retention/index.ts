import type { FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { adminRetentionRoutes, consoleRetentionRoutes, type ConsoleRole, type RetentionRoutes } from '@magpie/protocol';
import type { Config } from '../config/config.ts';
import type { SqlEngine } from '../db/index.ts';
import type { Store } from '../store/store.ts';
import type { RestApi } from '../http/rest.ts';
import { bearer } from '../http/validation.ts';
import type { ConsoleService } from '../console/console-service.ts';
import type { LifecycleService } from '../lifecycle/lifecycle-service.ts';
import { RetentionStore } from './retention-store.ts';
import { PurgeJob, retentionMetrics } from './purge-job.ts';
import { MessageAdmin } from './message-admin.ts';

export { RetentionStore } from './retention-store.ts';
export { PurgeJob, type PurgeReport } from './purge-job.ts';

export interface RetentionModule {
  store: RetentionStore;
  job: PurgeJob;
  messages: MessageAdmin;
  start(): void;
  stop(): Promise<void>;
}

/**
 * Retention (purge job with a cluster-wide lease, per-conversation overrides) and the
 * operator's message actions (look up, list, recall, delete with a reason), each under
 * /api/admin/… (operator token, audited as "token") and, with the console on, under
 * /api/console/… (viewer reads, operator changes, audited as the console admin).
 */
export function createRetentionModule(
  api: RestApi,
  deps: { config: Config; db: SqlEngine; store: Store; node: string; registry: Registry; lifecycle: LifecycleService; console: ConsoleService | null; log?: Logger; searchIndex?: PurgeJob['searchIndex'] },
): RetentionModule {
  const store = new RetentionStore(deps.db);
  const job = new PurgeJob(store, deps.config.retention, deps.node, retentionMetrics(deps.registry), deps.log);
  job.searchIndex = deps.searchIndex;
  const messages = new MessageAdmin(deps.store, store, job, deps.config.retention);
  const consoleService = deps.console;

  const register = (R: RetentionRoutes, who: ConsoleService | null): void => {
    // The acting admin: "token" for the operator token (checked by the route), else the console admin with at least `role`.
    const as = async (req: FastifyRequest, role: ConsoleRole): Promise<string> => (who ? (await who.authenticate(bearer(req), role)).username : 'token');
    const audit = (admin: string, action: string, target: string, detail: unknown) => consoleService?.audit(admin, action, target, detail) ?? Promise.resolve();

    api.route(R.status, async ({ raw }) => (await as(raw, 'viewer'), messages.status()));
    api.route(R.conversation, async ({ raw, params }) => (await as(raw, 'viewer'), messages.convRetention(params.conv)));
    api.route(R.setOverride, async ({ raw, params, body }) => {
      const admin = await as(raw, 'operator');
      const out = await messages.setOverride(params.conv, body.days, body.reason, admin);
      await audit(admin, 'retention.override', params.conv, { days: body.days, reason: body.reason });
      return out;
    });
    api.route(R.clearOverride, async ({ raw, params, body }) => {
      const admin = await as(raw, 'operator');
      const out = await messages.clearOverride(params.conv);
      await audit(admin, 'retention.override.clear', params.conv, { reason: body.reason });
      return out;
    });
    api.route(R.run, async ({ raw }) => {
      const admin = await as(raw, 'operator');
      const report = await job.run();
      await audit(admin, 'retention.run', deps.node, report);
      return report;
    });
    api.route(R.message, async ({ raw, params }) => (await as(raw, 'viewer'), messages.lookup(params.id)));
    api.route(R.convMessages, async ({ raw, params, query }) => (await as(raw, 'viewer'), messages.list(params.conv, query)));
    api.route(R.messageAction, async ({ raw, params, body }) => {
      const admin = await as(raw, 'operator');
      const found = await messages.lookup(params.id);
      const out = await deps.lifecycle.operatorRemove(found.message.conv, found.message.seq, params.action);
      await audit(admin, `message.${params.action}`, params.id, { reason: body.reason, conv: found.message.conv, seq: found.message.seq, sender: found.message.sender, kind: found.message.kind, event: out.event?.seq ?? null });
      return out;
    });
  };
  register(adminRetentionRoutes, null);
  if (consoleService) register(consoleRetentionRoutes, consoleService);
  if (!consoleService) deps.log?.debug('console off: retention and message actions only under /api/admin');
  return { store, job, messages, start: () => job.start(), stop: () => job.stop() };
}
