import type { Logger } from 'pino';
import type { SqlEngine } from '../db/index.ts';
import type { RestApi } from '../http/rest.ts';
import type { MessagingService } from '../services/message-service.ts';
import type { Store } from '../store/store.ts';
import { registerSearchRoutes } from './routes.ts';
import { SqlSearchStore } from './search-store.ts';
import { SearchService } from './search-service.ts';
import { SubjectService } from './subjects.ts';

export { SearchService } from './search-service.ts';
export { SqlSearchStore } from './search-store.ts';
export { SubjectService, subjectConversationId, subjectOfConversation } from './subjects.ts';

export interface SearchModule {
  service: SearchService;
  subjects: SubjectService;
  /** Write what is queued for the index and catch the deferred indexer up (on shutdown). */
  stop(): Promise<void>;
}

/**
 * Message search and subject conversations on the server's database (tables of migration
 * 0008-search): new messages are indexed by the message store (`storeIndexes`: PostgreSQL in
 * their own commit, SQLite by its deferred indexer, caught up by `syncIndex`) or queued after
 * the commit, routes registered. At start the deferred indexer catches up in the background
 * (messages committed before a crash but not yet indexed).
 */
export function createSearchModule(
  api: RestApi,
  deps: { db: SqlEngine; store: Store; messaging: MessagingService; log: Logger; storeIndexes?: boolean; syncIndex?: () => Promise<void> },
): SearchModule {
  const service = new SearchService(new SqlSearchStore(deps.db), {
    onError: (err, docs) => deps.log.error({ err, docs }, 'search index write failed; run `npm run search:backfill` to repair'),
    onSyncError: (err) => deps.log.warn({ err }, 'search index catch-up failed; the search answered from the index as it is'),
    ...(deps.syncIndex && { syncIndex: deps.syncIndex }),
  });
  const started = Date.now();
  const catchUp = deps.syncIndex?.().then(
    () => {
      const ms = Date.now() - started;
      if (ms > 1000) deps.log.info({ ms }, 'search index caught up with the messages committed before the start');
    },
    (err: unknown) => deps.log.error({ err }, 'search index catch-up at start failed (it is retried with the next messages; `npm run search:backfill` repairs)'),
  );
  // The server's SqlStore indexes its own messages (SqlStoreOptions.searchText: PostgreSQL in
  // the message's transaction, SQLite by the deferred indexer); any other store's messages are
  // indexed after commit.
  if (!deps.storeIndexes) deps.messaging.onCommitted(service.indexCommitted);
  const subjects = new SubjectService(deps.db, deps.store, deps.messaging);
  registerSearchRoutes(api, service, subjects);
  return {
    service,
    subjects,
    stop: async () => {
      await service.flush();
      // What is left (a catch-up at start still running) continues at the next start.
      let timer: ReturnType<typeof setTimeout> | undefined;
      const sync = Promise.all([catchUp, deps.syncIndex?.()]).catch((err: unknown) => deps.log.warn({ err }, 'search index catch-up at shutdown failed (done at the next start)'));
      await Promise.race([sync, new Promise<void>((r) => (timer = setTimeout(r, 5000)))]);
      clearTimeout(timer);
    },
  };
}
