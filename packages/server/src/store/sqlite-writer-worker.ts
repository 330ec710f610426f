/**
 * The SQLite writer thread's entry (see sqlite-writer.ts): its own connection to the file and
 * a SqlStore on it, running the jobs it is handed one at a time, in order.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { SqliteEngine } from '../db/sqlite-engine.ts';
import { ThreadWriteGate } from '../db/write-lock.ts';
import { searchableText } from '../search/extract.ts';
import { SqlStore } from './sql-store.ts';
import type { AckOutcome, DeliveredUpdate, DeviceAck } from './store.ts';
import { decodeBatch, encodeOutcomes, type WireBatch, type WireOutcomes } from './sqlite-writer-wire.ts';
import { WriterQueue } from './writer-queue.ts';

export interface WriterSetup {
  path: string;
  synchronous: 'full' | 'normal';
  ringCapacity: number;
  /** Whether appends write the messages' search documents (SqlStoreOptions.searchText). */
  indexesSearch: boolean;
  /** The WAL page count at which a commit checkpoints (the event loop's connection's setting). */
  walAutocheckpoint: number;
  lock: SharedArrayBuffer;
}

export type WriterJob = { id: number } & (
  | { job: 'ping' }
  | { job: 'append'; batch: WireBatch }
  | { job: 'acks'; acks: DeviceAck[] }
  | { job: 'delivered'; userId: string; inboxSeq: number }
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
  const store = new SqlStore(engine, { ringCapacity: setup.ringCapacity, ...(setup.indexesSearch ? { searchText: searchableText } : {}) });

  const run = async (j: WriterJob): Promise<unknown> => {
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
  port.on('message', (j: WriterJob) => {
    queue.push(j);
    if (busy) return;
    busy = true;
    void pump();
  });
}
