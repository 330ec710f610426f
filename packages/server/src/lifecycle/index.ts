import type { RestApi } from '../http/rest.ts';
import type { Logger } from 'pino';
import type { Config } from '../config/config.ts';
import type { SqlEngine } from '../db/index.ts';
import type { Bus } from '../bus/bus.ts';
import type { MessagingService } from '../services/message-service.ts';
import type { Store } from '../store/store.ts';
import { MediaStore, type MediaService } from '../media/index.ts';
import { LifecycleService } from './lifecycle-service.ts';
import { SqlLifecycleStore } from './sql-lifecycle-store.ts';
import { registerLifecycleRoutes } from './lifecycle-routes.ts';

export { LifecycleService, type LifecycleHooks, type LifecycleOptions } from './lifecycle-service.ts';
export { SqlLifecycleStore } from './sql-lifecycle-store.ts';

export interface LifecycleModule {
  service: LifecycleService;
  /** Post coalesced reactions still pending. */
  stop(): Promise<void>;
}

/**
 * Reply, forward, recall, delete-for-me, edit and reactions (issue 18) on `http`: routes
 * registered, the reply/bundle body hook and the delete-for-me history filter installed.
 * Hooks for modules mirroring message content: `module.service.on({onRecall, onEdit, onDeleteForMe, onReaction})`.
 */
export function createLifecycleModule(
  api: RestApi,
  deps: { log?: Logger; config: Config; db: SqlEngine; store: Store; bus: Bus; messaging: MessagingService; media: MediaService | null; now?: () => number },
): LifecycleModule {
  const { config } = deps;
  const mediaStore = new MediaStore(deps.db);
  const media = deps.media
    ? { removeMessageRefs: (id: string) => mediaStore.removeMessageRefs(id), prepareSend: deps.media.prepareSend.bind(deps.media) }
    : null;
  const service = new LifecycleService(new SqlLifecycleStore(deps.db), deps.store, deps.messaging, deps.bus, media, { ...config.lifecycle, maxMessageBytes: config.limits.maxMessageBytes }, deps.now, (err, conv) =>
    deps.log?.error({ err, conv }, 'coalesced reaction event failed'),
  );
  deps.messaging.addBodyHook(service.bodyHook);
  deps.messaging.addHistoryFilter(service.historyFilter);
  registerLifecycleRoutes(api, { lifecycle: service });
  return { service, stop: () => service.flushAll() };
}
