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
  /** Write what is queued for the index (on shutdown). */
  stop(): Promise<void>;
}

/**
 * Message search and subject conversations on the server's database (tables of migration
 * 0008-search): new messages are indexed in their own commit (`storeIndexes`) or queued
 * after it, routes registered.
 */
export function createSearchModule(api: RestApi, deps: { db: SqlEngine; store: Store; messaging: MessagingService; log: Logger; storeIndexes?: boolean }): SearchModule {
  const service = new SearchService(new SqlSearchStore(deps.db), {
    onError: (err, docs) => deps.log.error({ err, docs }, 'search index write failed; run `npm run search:backfill` to repair'),
  });
  // The server's SqlStore writes each message's document in the message's transaction
  // (SqlStoreOptions.searchText); any other store's messages are indexed after commit.
  if (!deps.storeIndexes) deps.messaging.onCommitted(service.indexCommitted);
  const subjects = new SubjectService(deps.db, deps.store, deps.messaging);
  registerSearchRoutes(api, service, subjects);
  return { service, subjects, stop: () => service.flush() };
}
