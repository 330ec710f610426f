import { receiptRoutes as R, type ClientFrame } from '@magpie/protocol';
import type { Config } from '../config/config.ts';
import type { SqlEngine } from '../db/index.ts';
import type { Bus } from '../bus/bus.ts';
import type { Store } from '../store/store.ts';
import type { RestApi } from '../http/rest.ts';
import { SqlReceiptStore } from './sql-receipt-store.ts';
import { ReceiptService } from './receipt-service.ts';
import { TypingRelay } from './typing.ts';
import { PresenceHub, type PresenceConn } from './presence.ts';
import { GroupPush, type PushSink } from './group-push.ts';
import type { ReceiptStore } from './receipt-store.ts';

export { ReceiptService } from './receipt-service.ts';
export { SqlReceiptStore } from './sql-receipt-store.ts';
export type { ReceiptStore } from './receipt-store.ts';

export type ReceiptFrame = Extract<ClientFrame, { type: 'receipts.query' | 'receipts.members' | 'typing' | 'presence.sub' }>;
export const RECEIPT_FRAME_TYPES = new Set(['receipts.query', 'receipts.members', 'typing', 'presence.sub']);

export interface ReceiptsModule {
  store: ReceiptStore;
  service: ReceiptService;
  typing: TypingRelay;
  presence: PresenceHub;
  groupPush: GroupPush;
  /** Answer one of the receipt frames for a connection (the gateway's dispatch). */
  handle(conn: PresenceConn, userId: string, f: ReceiptFrame): Promise<unknown>;
  stop(): Promise<void>;
}

export interface ReceiptsDeps {
  config: Config;
  db: SqlEngine;
  store: Store;
  bus: Bus;
  push: PushSink;
  onlineDevicesOf(userIds: string[]): Promise<Map<string, string[]>>;
  localDevices(userId: string): number;
  friends(a: string, b: string): Promise<boolean>;
}

/** Read receipts, typing, presence and group push levels (src/receipts/), with their REST routes on `api`. */
export function createReceiptsModule(api: RestApi, d: ReceiptsDeps): ReceiptsModule {
  const c = d.config.receipts;
  const store = new SqlReceiptStore(d.db);
  const notifyDefaults = { group: c.notifyGroup, super: c.notifySuper };
  const service = new ReceiptService(d.store, store, d.bus, { groupsDefault: c.groups, maxGroupMembers: c.maxGroupMembers, flushMs: c.flushMs, presenceDefault: c.presenceDefault, notifyDefaults });
  const typing = new TypingRelay(d.store, d.bus, { ttlMs: c.typingTtlMs, minIntervalMs: c.typingMinIntervalMs, maxGroupMembers: c.typingMaxMembers });
  const presence = new PresenceHub({ bus: d.bus, store, onlineDevicesOf: d.onlineDevicesOf, localDevices: d.localDevices, friends: d.friends, debounceMs: c.presenceDebounceMs, defaultPrivacy: c.presenceDefault });
  const groupPush = new GroupPush(d.store, store, d.push, (m) => service.extrasOf(m), { defaults: notifyDefaults, pageSize: 1000 });

  api.route(R.privacy, async ({ principal }) => (await service.privacyOf([principal.userId])).get(principal.userId)!);
  api.route(R.setPrivacy, async ({ principal, body }) => service.setPrivacy(principal.userId, body));
  api.route(R.notifySettings, async ({ principal }) => ({ settings: await service.notifySettings(principal.userId), defaults: notifyDefaults }));
  api.route(R.setNotify, async ({ principal, params, body }) => ({ setting: await service.setNotify(principal.userId, params.conv, body.level) }));
  api.route(R.groupReceipts, async ({ principal, params, body }) => (await service.setGroupReceipts(principal.userId, params.conv, body.enabled), { ok: true as const }));

  return {
    store,
    service,
    typing,
    presence,
    groupPush,
    async handle(conn, userId, f) {
      switch (f.type) {
        case 'receipts.query':
          return service.query(userId, f.conv, f.seqs);
        case 'receipts.members':
          return service.members(userId, f.conv, f.seq);
        case 'typing':
          return { sent: await typing.typing(userId, f.conv) };
        case 'presence.sub':
          return { presence: await presence.subscribe(conn, userId, f.users) };
      }
    },
    async stop() {
      presence.close();
      await service.close();
      await store.close();
    },
  };
}
