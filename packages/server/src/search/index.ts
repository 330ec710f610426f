import type { Logger } from 'pino';
import { Gauge, type Registry } from 'prom-client';
import type { SqlEngine } from '../db/index.ts';
import type { RestApi } from '../http/rest.ts';
import type { MessagingService } from '../services/message-service.ts';
import type { Store } from '../store/store.ts';
import { registerSearchRoutes } from './routes.ts';
import { SqlSearchStore } from './search-store.ts';
import { SearchService } from './search-service.ts';
import { SubjectService } from './subjects.ts';
import type { IndexLag } from './search-indexer.ts';
import type { SearchIndex } from './sqlite-search-db.ts';

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
 * 0008-search; SQLite: the documents in the search file, search/sqlite-search-db.ts): new
 * messages are indexed by the message store (`storeIndexes`: PostgreSQL in their own commit,
 * SQLite by its deferred indexer, caught up by `syncIndex`) or queued after
 * the commit, routes registered. At start the deferred indexer catches up in the background
 * (messages committed before a crash but not yet indexed).
 */
export function createSearchModule(
  api: RestApi,
  deps: {
    db: SqlEngine;
    store: Store;
    messaging: MessagingService;
    log: Logger;
    storeIndexes?: boolean;
    syncIndex?: () => Promise<void>;
    /** SQLite's deferred indexer: its lag, exported on `registry` (registerIndexLagMetrics). */
    indexLag?: () => Promise<IndexLag>;
    registry?: Registry;
    /** SQLite: the store's search file (search/sqlite-search-db.ts), read and written through it. */
    searchIndex?: SearchIndex;
  },
): SearchModule {
  if (deps.indexLag && deps.registry) registerIndexLagMetrics(deps.registry, deps.indexLag);
  const service = new SearchService(new SqlSearchStore(deps.db, deps.searchIndex ? { index: deps.searchIndex } : {}), {
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

/**
 * magpie_search_index_lag_messages and magpie_search_index_lag_seconds: how far SQLite's
 * deferred search indexer (search-indexer.ts) is behind the committed messages, read at each
 * scrape (one query for both gauges: a scrape collects every metric at once, so the second
 * gauge shares the reading the first started). In steady state the seconds stay below about
 * searchIndexDelayMs plus one batch; a lag that keeps growing means the indexer cannot keep up
 * (or fails: see the log) and searches wait for its catch-up.
 */
export function registerIndexLagMetrics(registry: Registry, lag: () => Promise<IndexLag>): void {
  let pending: Promise<IndexLag> | undefined;
  // A failed reading (the database busy or gone) shows as NaN, not as a failed scrape.
  const read = (): Promise<IndexLag> =>
    (pending ??= lag()
      .catch(() => ({ messages: Number.NaN, seconds: Number.NaN }))
      .finally(() => {
        pending = undefined;
      }));
  new Gauge({
    name: 'magpie_search_index_lag_messages',
    help: 'SQLite: messages committed but not yet in the search index (the deferred indexer; an upper bound)',
    registers: [registry],
    async collect() {
      this.set((await read()).messages);
    },
  });
  new Gauge({
    name: 'magpie_search_index_lag_seconds',
    help: 'SQLite: age of the oldest committed message not yet in the search index (0 when it has caught up)',
    registers: [registry],
    async collect() {
      this.set((await read()).seconds);
    },
  });
}
