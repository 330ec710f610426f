import type { RestApi } from '../http/rest.ts';
import type { Config } from '../config/config.ts';
import type { SqlEngine } from '../db/index.ts';
import type { Bus } from '../bus/bus.ts';
import type { MessagingService } from '../services/message-service.ts';
import { SocialService } from './social-service.ts';
import { registerSocialRoutes } from './social-routes.ts';
import { SqlSocialStore } from './sql-social-store.ts';
import type { SocialStore } from './social-store.ts';

export type { SocialStore } from './social-store.ts';
export { SocialService, type StrangerPolicy } from './social-service.ts';

/**
 * The social store on the server's database (opened and migrated by db/index.ts openDatabase).
 * Open it after the messaging Store, whose `users` table it reads and indexes.
 */
export async function openSocialStore(db: SqlEngine, config: Config): Promise<SocialStore> {
  const store = new SqlSocialStore(db, { changeLogCapacity: config.social.changeLogCapacity });
  await store.migrate();
  return store;
}

export interface SocialModule {
  store: SocialStore;
  service: SocialService;
  stop(): Promise<void>;
}

/** Build the social graph (routes registered on `api`) and install its direct-message policy (blocks, strangers). */
export async function createSocialModule(
  api: RestApi,
  deps: { config: Config; db: SqlEngine; bus: Bus; messaging: MessagingService; socialStore?: SocialStore; now?: () => number; /** One node, no cluster (app.ts): the policy may answer from memory. */ singleNode?: boolean },
): Promise<SocialModule> {
  const { config } = deps;
  const store = deps.socialStore ?? (await openSocialStore(deps.db, config));
  // The policy's cache only on a single node: a cluster node would not see another node's block.
  const cacheDirectPolicy = deps.singleNode === true;
  const service = new SocialService(store, deps.bus, { strangerMessages: config.strangerMessages, maxExtraBytes: config.social.maxProfileExtraBytes, cacheDirectPolicy }, deps.now);
  deps.messaging.addDirectPolicy(service.directPolicy);
  registerSocialRoutes(api, { social: service });
  return { store, service, stop: () => store.close() };
}
