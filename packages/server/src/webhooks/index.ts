import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import { MagpieError, moderationRoutes as R } from '@magpie/protocol';
import type { Config } from '../config/config.ts';
import type { SqlEngine } from '../db/index.ts';
import type { Store } from '../store/store.ts';
import type { AccountService } from '../services/account-service.ts';
import type { MessagingService } from '../services/message-service.ts';
import type { RestApi } from '../http/rest.ts';
import { OutboxStore } from './outbox-store.ts';
import { OutboxDispatcher } from './outbox-dispatcher.ts';
import { WebhookEvents } from './events.ts';
import { beforeSendHook } from './before-send.ts';
import { keywordFilter } from './keyword-filter.ts';
import { ReportService } from './reports.ts';

export { signPayload, verifySignature } from './signature.ts';

export interface WebhooksModule {
  events: WebhookEvents;
  reports: ReportService;
  outbox: OutboxStore;
  start(): void;
  stop(): Promise<void>;
}

/**
 * Operator integration (src/webhooks/): the keyword filter and before-send webhooks as message
 * body hooks, after-events (messages, group notices, red packets, accounts, reports) through the
 * durable outbox, moderation reports, and their admin routes.
 */
export function createWebhooksModule(
  api: RestApi,
  deps: { config: Config; db: SqlEngine; store: Store; accounts: AccountService; messaging: MessagingService; log: Logger; registry: Registry; now?: () => number },
): WebhooksModule {
  const { config, log } = deps;
  const now = deps.now ?? Date.now;
  const cfg = config.webhooks;
  const beforeSend = new Counter({ name: 'magpie_webhook_before_send_total', help: 'Before-send webhook calls by outcome', labelNames: ['hook', 'outcome'] as const, registers: [deps.registry] });
  const attempts = new Counter({ name: 'magpie_webhook_deliveries_total', help: 'After-event delivery attempts by outcome', labelNames: ['hook', 'outcome'] as const, registers: [deps.registry] });

  const filter = keywordFilter(cfg.keywords);
  if (filter) deps.messaging.addBodyHook(filter);
  for (const hook of cfg.hooks.filter((h) => h.beforeSend)) deps.messaging.addBodyHook(beforeSendHook(hook, log, beforeSend, now));

  const outbox = new OutboxStore(deps.db);
  const dispatcher = new OutboxDispatcher(outbox, cfg.hooks, cfg.outbox, log, { attempt: (l) => attempts.inc(l) }, now);
  const events = new WebhookEvents(outbox, cfg.hooks, () => dispatcher.poke(), log, now);
  if (events.active) {
    deps.messaging.onCommitted((m) => events.onMessage(m));
    deps.accounts.onRegistered((u) => events.emit('user.registered', `user:${u.id}`, now(), { user: u }));
    deps.accounts.onAccountDeleted(async (userId) => events.emit('user.deleted', `user:${userId}`, now(), { userId }));
  }
  const reports = new ReportService(deps.db, deps.store, now);

  api.route(R.report, async ({ principal, body }) => {
    const report = await reports.create(principal.userId, body);
    events.emit('report.created', `report:${report.id}`, report.createdAt, { report });
    return { report };
  });
  api.route(R.adminReports, async ({ query }) => ({ reports: await reports.list(query.status, query.after, query.limit) }));
  api.route(R.adminResolveReport, async ({ params, body }) => ({ report: await reports.resolve(params.id, body.status, body.resolution) }));
  api.route(R.adminOutbox, async ({ query }) => {
    const list = await outbox.list({ ...(query.status ? { status: query.status } : {}), ...(query.hook ? { hook: query.hook } : {}), ...(query.after !== undefined ? { afterId: query.after } : {}), limit: query.limit });
    return { events: list.map((e) => ({ id: e.id, hook: e.hook, event: e.event, key: e.key, status: e.status, attempts: e.attempts, nextAt: e.nextAt, lastError: e.lastError, createdAt: e.createdAt, payload: e.payload })), counts: await outbox.counts() };
  });
  api.route(R.adminOutboxRetry, async ({ params }) => {
    if (!(await outbox.retry(params.id, now()))) throw new MagpieError('not_found', 'no failed event with this id');
    dispatcher.poke();
    return { ok: true as const };
  });

  return {
    events,
    reports,
    outbox,
    start: () => dispatcher.start(),
    async stop() {
      await events.flush();
      await dispatcher.stop();
    },
  };
}
