/**
 * The SQLite writer thread's entry (see sqlite-writer.ts): its own connection to the file and
 * a SqlStore on it, running the jobs it is handed one at a time, in order.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { SqliteEngine } from '../db/sqlite-engine.ts';
import { ThreadWriteGate } from '../db/write-lock.ts';
import { searchableText } from '../search/extract.ts';
import { INDEX_BATCH_BUSY_MS } from '../search/search-indexer.ts';
import { SqlStore } from './sql-store.ts';
import type { AckOutcome, DeliveredUpdate, DeviceAck } from './store.ts';
import { decodeBatch, encodeOutcomes, type WireBatch, type WireOutcomes } from './sqlite-writer-wire.ts';
import { WriterQueue } from './writer-queue.ts';

export interface WriterSetup {
  path: string;
  synchronous: 'full' | 'normal';
  ringCapacity: number;
  /** Whether the thread keeps the search index in step with its appends (the deferred indexer, search/search-indexer.ts). */
  indexesSearch: boolean;
  /** The longest a committed message waits for the deferred indexer (ms). */
  searchIndexDelayMs: number;
  /** The WAL page count at which a commit checkpoints (the event loop's connection's setting). */
  walAutocheckpoint: number;
  lock: SharedArrayBuffer;
}

export type WriterJob = { id: number } & (
  | { job: 'ping' }
  | { job: 'append'; batch: WireBatch }
  | { job: 'acks'; acks: DeviceAck[] }
  | { job: 'delivered'; userId: string; inboxSeq: number }
  /** One batch of the deferred search indexer; replies whether more wait. id < 0: queued by the thread itself, no reply. */
  | { job: 'index' }
  | { job: 'close' }
);

export type WriterReply =
  | { id: number; ok: true; value: unknown }
  | { id: number; ok: false; error: { name: string; message: string; code?: string; details?: unknown; retryAfterMs?: number; stack?: string } };


if (parentPort) {
  const port = parentPort;
  const setup = workerData as WriterSetup;
  // No checkpointer thread of its own: the event loop's connection runs it for the file.
  const engine = new SqliteEngine(setup.path, { synchronous: setup.synchronous, checkpointMs: 0 });
  engine.setWriteGate(new ThreadWriteGate(setup.lock));
  engine.walAutocheckpoint = setup.walAutocheckpoint;
  if (process.env.WCPU_WRITER_CACHE) (engine as unknown as { db: { pragma(s: string): unknown } }).db.pragma(`cache_size = ${process.env.WCPU_WRITER_CACHE}`);
  // The deferred search indexer runs as jobs of this thread's own queue, after the appends
  // that wait (WriterQueue): `kick` after an append that stored messages queues one within
  // searchIndexDelayMs; a full batch queues the next at once (catch-up, a burst).
  let indexTimer: ReturnType<typeof setTimeout> | null = null;
  let indexQueued = false;
  const queueIndex = (): void => {
    if (indexQueued) return;
    indexQueued = true;
    enqueue({ id: -1, job: 'index' });
  };
  const kickIndex = (): void => {
    if (indexTimer || indexQueued) return;
    indexTimer = setTimeout(() => {
      indexTimer = null;
      queueIndex();
    }, setup.searchIndexDelayMs);
  };
  // While group commits keep coming (one waits, or one ran within BUSY_WINDOW_MS) the indexer
  // runs in short slices, so a commit handed over meanwhile waits at most INDEX_BATCH_BUSY_MS.
  const BUSY_WINDOW_MS = 100;
  let lastAppendAt = -Infinity;
  const sendsBusy = (): boolean => queue.appendsWaiting > 0 || performance.now() - lastAppendAt < BUSY_WINDOW_MS;
  const store = new SqlStore(engine, { ringCapacity: setup.ringCapacity, ...(setup.indexesSearch ? { searchText: searchableText, onSearchPending: kickIndex } : {}) });

  const run = async (j: WriterJob): Promise<unknown> => {
    switch (j.job) {
      case 'ping':
        return null;
      case 'append': {
        const batch = decodeBatch(j.batch);
        try {
          return encodeOutcomes(batch, await store.appendMessages(batch)) satisfies WireOutcomes;
        } finally {
          lastAppendAt = performance.now();
        }
      }
      case 'acks':
        return (await store.recordAcks(j.acks)) satisfies AckOutcome;
      case 'delivered':
        return (await store.markDelivered(j.userId, j.inboxSeq)) satisfies DeliveredUpdate[];
      case 'index': {
        if (j.id < 0) indexQueued = false;
        let more = false;
        try {
          more = await store.indexSearchBatch(sendsBusy() ? INDEX_BATCH_BUSY_MS : undefined);
        } catch (err) {
          if (j.id >= 0) throw err;
          kickIndex(); // the thread's own run failed (e.g. the disk is full): try again a delay later
        }
        if (more) queueIndex();
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
      if (indexTimer) clearTimeout(indexTimer);
      indexTimer = null;
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
  port.on('message', enqueue);
}
