import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Config } from '../config/config.ts';
import type { Bus } from '../bus/bus.ts';
import type { AccountService } from '../services/account-service.ts';
import type { MessagingService } from '../services/message-service.ts';
import { SocialService } from './social-service.ts';
import { registerSocialRoutes } from './social-routes.ts';
import { SqliteSocialStore } from './sqlite-social-store.ts';
import type { SocialStore } from './social-store.ts';

export type { SocialStore } from './social-store.ts';
export { SocialService, type StrangerPolicy } from './social-service.ts';

/**
 * The social store for this configuration: the server's SQLite file, or the PostgreSQL URL.
 * Open it after the messaging Store, whose `users` table it reads.
 */
export async function openSocialStore(config: Config): Promise<SocialStore> {
  const changeLogCapacity = config.social.changeLogCapacity;
  if (config.store === 'sqlite') {
    return new SqliteSocialStore({ path: join(config.dataDir, 'magpie.db'), synchronous: config.sqliteSynchronous, changeLogCapacity });
  }
  if (config.store.startsWith('postgres://') || config.store.startsWith('postgresql://')) {
    const { PostgresSocialStore } = await import('./postgres-social-store.ts');
    const store = new PostgresSocialStore({ url: config.store, changeLogCapacity, max: config.pg.pools.social, idleTimeoutS: config.pg.idleTimeoutS });
    await store.migrate();
    return store;
  }
  throw new Error(`unknown store: ${config.store}`);
}

export interface SocialModule {
  store: SocialStore;
  service: SocialService;
  stop(): Promise<void>;
}

/** Build the social graph on `http` (routes registered) and install its direct-message policy (blocks, strangers). */
export async function createSocialModule(
  http: FastifyInstance,
  deps: { config: Config; accounts: AccountService; bus: Bus; messaging: MessagingService; socialStore?: SocialStore; now?: () => number },
): Promise<SocialModule> {
  const { config } = deps;
  const store = deps.socialStore ?? (await openSocialStore(config));
  const service = new SocialService(store, deps.bus, { strangerMessages: config.strangerMessages, maxExtraBytes: config.social.maxProfileExtraBytes }, deps.now);
  deps.messaging.addDirectPolicy(service.directPolicy);
  registerSocialRoutes(http, { accounts: deps.accounts, social: service });
  return { store, service, stop: () => store.close() };
}
