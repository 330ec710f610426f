import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { SqlEngine } from '../db/index.ts';
import type { Config } from '../config/config.ts';
import type { Bus } from '../bus/bus.ts';
import type { Store } from '../store/store.ts';
import type { AccountService } from '../services/account-service.ts';
import type { NotifyRequest, NotifyResult } from '../push/push-service.ts';
import type { RestApi } from '../http/rest.ts';
import { NotificationStore } from './notification-store.ts';
import { ScheduleStore } from './schedule-store.ts';
import { NotificationService } from './notification-service.ts';
import { NotificationFanOut, type LocalConnections } from './fan-out.ts';
import { NotificationScheduler } from './scheduler.ts';
import { registerNotificationRoutes, type ConsoleHooks } from './routes.ts';

export { NotificationService } from './notification-service.ts';
export { NotificationStore } from './notification-store.ts';
export type { ConsoleHooks } from './routes.ts';

export interface NotificationsModule {
  service: NotificationService;
  store: NotificationStore;
  start(): void;
  stop(): Promise<void>;
}

/**
 * Service accounts and notification conversations (src/notifications/): the operator's
 * services, broadcasts (now or scheduled) to all users, a list or a segment, stored apart from
 * chat with their own ring capacity and retention; live `notification` frames and marketing
 * pushes; the users' sync, mute, unsubscribe and read marks.
 */
export function createNotificationsModule(
  api: RestApi,
  deps: {
    config: Config;
    db: SqlEngine;
    store: Store;
    bus: Bus;
    accounts: AccountService;
    connections: LocalConnections;
    push: { notify(req: NotifyRequest): Promise<NotifyResult> };
    node: string;
    log: Logger;
    console: ConsoleHooks | null;
    audit: (action: string, target: string, detail: unknown) => Promise<void>;
  },
): NotificationsModule {
  const cfg = deps.config.services;
  const store = new NotificationStore(deps.db, cfg.capacity);
  const schedules = new ScheduleStore(deps.db);
  const service = new NotificationService(store, schedules, deps.store);
  const fanOut = new NotificationFanOut({ store, bus: deps.bus, connections: deps.connections, push: deps.push, log: deps.log });
  service.onBroadcast((s, b, slots) => fanOut.deliver(s, b, slots));
  deps.accounts.onAccountDeleted((userId) => store.dropUser(userId));
  registerNotificationRoutes(api, service, { console: deps.console, audit: deps.audit });
  // One lease owner per process: a restarted node (same node id) never mistakes its dead self's lease for its own.
  const owner = `${deps.node}/${randomBytes(4).toString('hex')}`;
  const scheduler = new NotificationScheduler({ node: owner, cfg, service, store, schedules, log: deps.log });
  return { service, store, start: () => scheduler.start(), stop: () => scheduler.stop() };
}
