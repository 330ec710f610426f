/**
 * The SQLite writer thread's entry (see sqlite-writer.ts): its own connection to the file and
 * a SqlStore on it, running the jobs it is handed one at a time, in order.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { SqliteEngine } from '../db/sqlite-engine.ts';
import { ThreadWriteGate } from '../db/write-lock.ts';
import { SqlStore } from './sql-store.ts';
import { CACHE_KIB } from './sqlite-connection.ts';
import { setSqliteWalCoalescing } from './sqlite-wal-coalesce.ts';
import type { AckOutcome, DeliveredUpdate, DeviceAck } from './store.ts';
import { decodeBatch, encodeOutcomes, type WireBatch, type WireOutcomes } from './sqlite-writer-wire.ts';
import { WriterQueue } from './writer-queue.ts';
import { WARMUP_DELAY_MS, WriterWarmUp } from './writer-warmup.ts';

/**
 * The writer connection's page cache while the database file is smaller than 1 GiB: 8 MiB, not
 * the event loop connection's CACHE_KIB (issue 23). At the end of every write transaction in
 * which a b-tree page split put its pages in order (SQLite's balance_nonroot swaps them
 * through a temporary page number, the lock-byte page's at 1 GiB), SQLite's page cache
 * (pcache1) drops the pages above the database's size by scanning its whole hash table and
 * every cached page — nothing to drop, but O(cached pages) of memory reads per commit while
 * the file is under 1 GiB (above it that page number is inside the file and nothing is
 * scanned). With 11 000 cached pages that was ~150 µs per commit, ~7 % of the writer thread
 * in the saturated 1:1 bench (perf: pcache1TruncateUnsafe). The writer's transactions touch
 * the tails of the b-trees, which a small cache holds; reads on the event loop keep its own
 * connection's cache. Past 1 GiB the writer gets the full cache (checked every
 * SIZE_CHECK_EVERY jobs).
 */
const WRITER_CACHE_KIB = 8_192;
/** SQLite's lock-byte page (PENDING_BYTE): the temporary page number of a split is the page holding this offset. */
const LOCK_BYTE_OFFSET = 0x4000_0000;
const SIZE_CHECK_EVERY = 1_000;

export interface WriterSetup {
  path: string;
  synchronous: 'full' | 'normal';
  ringCapacity: number;
  /** The WAL page count at which a commit checkpoints (the event loop's connection's setting). */
  walAutocheckpoint: number;
  /** Whether the event loop's thread loaded the WAL write-coalescing VFS (store/sqlite-wal-coalesce.ts): the thread does the same. */
  walCoalesce: boolean;
  /** Batches of the thread's warm-up at start (store/writer-warmup.ts; 0: none). Default WARMUP_BATCHES. */
  warmUpBatches?: number;
  lock: SharedArrayBuffer;
}

export type WriterJob = { id: number } & (
  | { job: 'ping' }
  | { job: 'append'; batch: WireBatch }
  | { job: 'acks'; acks: DeviceAck[] }
  | { job: 'delivered'; userId: string; inboxSeq: number }
  /** One batch of the thread's warm-up on a private in-memory database (store/writer-warmup.ts); queued by the thread itself (id < 0). */
  | { job: 'warmup' }
  | { job: 'close' }
);

export type WriterReply =
  | { id: number; ok: true; value: unknown }
  | { id: number; ok: false; error: { name: string; message: string; code?: string; details?: unknown; retryAfterMs?: number; stack?: string } };


if (parentPort) {
  const port = parentPort;
  const setup = workerData as WriterSetup;
  // Before its connection opens: the same VFS as the event loop's (a missing library warned there once).
  setSqliteWalCoalescing(setup.walCoalesce, { warn: () => {} });
  // No checkpointer thread of its own: the event loop's connection runs it for the file.
  const engine = new SqliteEngine(setup.path, { synchronous: setup.synchronous, checkpointMs: 0, cacheKib: WRITER_CACHE_KIB });
  engine.setWriteGate(new ThreadWriteGate(setup.lock));
  engine.walAutocheckpoint = setup.walAutocheckpoint;
  // See WRITER_CACHE_KIB: the full cache once the file is past the lock-byte page.
  let fullCache = false;
  let jobsSinceSizeCheck = Infinity;
  const sizeCache = (): void => {
    if (fullCache || ++jobsSinceSizeCheck < SIZE_CHECK_EVERY) return;
    jobsSinceSizeCheck = 0;
    try {
      if (engine.sizeBytes <= LOCK_BYTE_OFFSET) return;
      engine.cacheKib = CACHE_KIB;
      fullCache = true;
    } catch {
      // Only a tuning: a job never fails for it (tried again SIZE_CHECK_EVERY jobs later).
    }
  };
  sizeCache();
  // The search index is not this thread's: its documents live in a file of their own, written
  // by a thread of its own (search/search-index-thread.ts), so no indexing job ever runs
  // between two group commits here (issue 23).
  const store = new SqlStore(engine, { ringCapacity: setup.ringCapacity });

  const run = async (j: WriterJob): Promise<unknown> => {
    sizeCache();
    switch (j.job) {
      case 'ping':
        return null;
      case 'append': {
        const batch = decodeBatch(j.batch);
        return encodeOutcomes(batch, await store.appendMessages(batch)) satisfies WireOutcomes;
      }
      case 'acks':
        return (await store.recordAcks(j.acks)) satisfies AckOutcome;
      case 'delivered':
        return (await store.markDelivered(j.userId, j.inboxSeq)) satisfies DeliveredUpdate[];
      case 'warmup': {
        const more = await warmUp.step();
        if (more) enqueue({ id: -1, job: 'warmup' });
        return more;
      }
      case 'close':
        return null;
    }
  };

  // One job at a time: appends first, otherwise in arrival order (store/writer-queue.ts).
  // After each job the thread yields once (setImmediate), so the port delivers what arrived
  // while the job held the thread before the next one is chosen.
  const queue = new WriterQueue<WriterJob>();
  let busy = false;
  const runOne = async (j: WriterJob): Promise<void> => {
    if (j.job === 'close') {
      if (warmUpTimer) clearTimeout(warmUpTimer);
      warmUpTimer = null;
      await warmUp.close();
      await store.close();
      await engine.close();
      port.close();
      return;
    }
    let reply: WriterReply;
    try {
      reply = { id: j.id, ok: true, value: await run(j) };
    } catch (err) {
      const e = err as { name?: string; message?: string; code?: unknown; details?: unknown; retryAfterMs?: unknown; stack?: string };
      reply = {
        id: j.id,
        ok: false,
        error: {
          name: e?.name ?? 'Error',
          message: e?.message ?? String(err),
          ...(typeof e?.code === 'string' ? { code: e.code } : {}),
          ...(e?.details !== undefined ? { details: e.details } : {}),
          ...(typeof e?.retryAfterMs === 'number' ? { retryAfterMs: e.retryAfterMs } : {}),
          ...(e?.stack ? { stack: e.stack } : {}),
        },
      };
    }
    if (j.id < 0) return; // the thread's own job: nobody waits for it
    try {
      port.postMessage(reply);
    } catch (err) {
      // A value that cannot cross threads is a bug here, not the caller's: say so, keep running.
      port.postMessage({ id: j.id, ok: false, error: { name: 'Error', message: `writer thread reply could not be sent: ${(err as Error).message}` } } satisfies WriterReply);
    }
  };
  const pump = async (): Promise<void> => {
    for (let j = queue.shift(); j; j = queue.shift()) {
      try {
        await runOne(j);
      } catch {
        // runOne answers every job itself; whatever escaped it must not stop the jobs after it.
      }
      if (j.job === 'close') return;
      await new Promise<void>((r) => setImmediate(r));
    }
    busy = false;
  };
  function enqueue(j: WriterJob): void {
    queue.push(j);
    if (busy) return;
    busy = true;
    void pump();
  }
  // Warm the append and ACK paths up while the thread is idle (store/writer-warmup.ts): one
  // batch per job, behind every job handed over.
  const warmUp = new WriterWarmUp(engine, { ringCapacity: setup.ringCapacity, ...(setup.warmUpBatches !== undefined ? { batches: setup.warmUpBatches } : {}) });
  port.on('message', enqueue);
  // It starts a second after the thread (a store opened and closed at once, as in tests, skips it).
  let warmUpTimer: ReturnType<typeof setTimeout> | null =
    (setup.warmUpBatches ?? 1) > 0
      ? setTimeout(() => {
          warmUpTimer = null;
          enqueue({ id: -1, job: 'warmup' });
        }, WARMUP_DELAY_MS)
      : null;
}
