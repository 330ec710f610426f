/**
 * The search index thread's entry (see search-index-thread.ts): a connection of its own that
 * reads the main database file and writes only the search file ATTACHed to it (transactions
 * begin DEFERRED: the main file's write lock is never taken), running the deferred indexer
 * and the document updates it is handed.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { SqliteEngine } from '../db/sqlite-engine.ts';
import { setSqliteWalCoalescing } from '../store/sqlite-wal-coalesce.ts';
import { searchableText } from './extract.ts';
import { LocalSearchIndex } from './sqlite-search-db.ts';
import type { SearchDoc } from './search-store.ts';

export interface SearchIndexSetup {
  path: string;
  delayMs: number;
  walCoalesce: boolean;
}

export type SearchIndexJob = { id: number } & (
  | { op: 'ping' }
  | { op: 'sync' }
  | { op: 'batch'; targetMs?: number }
  | { op: 'put'; docs: SearchDoc[] }
  | { op: 'remove'; conv: string; seq: number }
  | { op: 'update'; conv: string; seq: number; text: string }
  | { op: 'close' }
);

export type SearchIndexReply = { id: number; ok: true; value: unknown } | { id: number; ok: false; error: { name: string; message: string; code?: string; stack?: string } };

/** The thread's page cache (KiB): the tails of the FTS5 b-trees and of `messages`. */
const INDEX_CACHE_KIB = 16_384;

if (parentPort) {
  const port = parentPort;
  const setup = workerData as SearchIndexSetup;
  setSqliteWalCoalescing(setup.walCoalesce, { warn: () => {} });
  const engine = new SqliteEngine(setup.path, { synchronous: 'normal', checkpointMs: 0, cacheKib: INDEX_CACHE_KIB, deferredWrites: true });
  const index = new LocalSearchIndex(engine, searchableText, setup.delayMs);
  const run = async (j: SearchIndexJob): Promise<unknown> => {
    switch (j.op) {
      case 'ping':
        return null;
      case 'sync':
        return index.sync();
      case 'batch':
        return index.runBatch(j.targetMs);
      case 'put':
        return index.put(j.docs);
      case 'remove':
        return index.remove(j.conv, j.seq);
      case 'update':
        return index.updateText(j.conv, j.seq, j.text);
      case 'close':
        return null;
    }
  };
  port.on('message', (j: SearchIndexJob) => {
    if (j.op === 'close') {
      void (async () => {
        await index.close();
        await engine.close();
        port.close();
      })();
      return;
    }
    run(j).then(
      (value) => port.postMessage({ id: j.id, ok: true, value: value ?? null } satisfies SearchIndexReply),
      (err: unknown) => {
        const e = err as { name?: string; message?: string; code?: unknown; stack?: string };
        port.postMessage({ id: j.id, ok: false, error: { name: e?.name ?? 'Error', message: e?.message ?? String(err), ...(typeof e?.code === 'string' ? { code: e.code } : {}), ...(e?.stack ? { stack: e.stack } : {}) } } satisfies SearchIndexReply);
      },
    );
  });
}
