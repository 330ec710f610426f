import { MagpieError } from '@magpie/protocol/core';
import type { Worker } from 'node:worker_threads';
import type { SqlEngine } from '../db/engine.ts';
import type { SqliteEngine } from '../db/sqlite-engine.ts';
import { LoopWriteGate, newWriteLockBuffer } from '../db/write-lock.ts';
import { StoreConflictError, StoreNotFoundError, type AckOutcome, type AppendOutcome, type AppendRequest, type DeliveredUpdate, type DeviceAck } from './store.ts';
import type { WriterJob, WriterReply, WriterSetup } from './sqlite-writer-worker.ts';
import { decodeOutcomes, encodeBatch, type WireOutcomes } from './sqlite-writer-wire.ts';
import { walCoalescingActive } from './sqlite-wal-coalesce.ts';
import { startModuleWorker } from '../util/module-worker.ts';

/**
 * The SQLite writer thread: the message store's hot write transactions — the group commit of
 * messages (`appendMessages`) and the ACK flush (`recordAcks`, `markDelivered`) — run on a
 * second connection to the same file in a worker thread, so their statements and the commit's
 * fsync no longer stop the event loop (on two cores the second one was idle). The event loop
 * keeps its connection for every read and for the other stores' writes.
 *
 * Guarantees:
 * - The same transactions as on the event loop (the worker runs SqlStore's own code on its
 *   connection); a job's promise settles after its COMMIT returned, so an ACK sent after it is
 *   after the fsync, and a read on the event loop's connection started after it sees the rows.
 * - Jobs run one at a time. Appends run in the order they were handed over (a sender's
 *   messages stay in send order), before any ACK flush or delivered mark that waits with them
 *   (store/writer-queue.ts): those only record messages whose append had already returned, so
 *   an ACK flush still never overtakes the append it acknowledges, and a send no longer waits
 *   for a flush handed over just before it.
 * - Writers of the two connections exclude each other through one lock in shared memory
 *   (db/write-lock.ts): the event loop waits for it without blocking, never in SQLite's busy handler.
 * - If the thread dies, its open transaction is rolled back with its connection, waiting jobs
 *   fail (the callers' error paths answer `internal`/retry as for any store error; nothing was
 *   acknowledged for them), and the next job starts a new thread.
 */
/**
 * The thread's V8 heap. Its objects live for one job (a batch and its outcomes), but a job of a
 * busy node is large: ~8 KiB allocated per message, and group commits of 100–1 300 messages
 * (saturated 1:1 and the open loop behind its backlog). With an 8 MiB young generation (a
 * ~2.7 MiB semi-space) a scavenge came every ~3 MiB, in the middle of nearly every job, and
 * copied — then promoted — what the job still held: in the open loop at 10 000 msg/s, 500
 * scavenges and 48 full collections in 21 s, ~2.8 s of the thread's time (issue 23). 48 MiB
 * (a 16 MiB semi-space, the event loop's default) holds several jobs between scavenges, so
 * most of a job's objects are dead when one comes. V8 grows the semi-space only as survivors
 * need it; RSS measured in docs/benchmarks.md.
 */
const WRITER_LIMITS = { maxYoungGenerationSizeMb: 48, maxOldGenerationSizeMb: 256 };

export class SqliteWriterThread {
  private worker: Worker | null = null;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: unknown) => void }>();
  private readonly lockBuffer = newWriteLockBuffer();
  private readonly gate = new LoopWriteGate(this.lockBuffer);
  private closed = false;

  constructor(
    private readonly engine: SqliteEngine,
    private readonly setup: Omit<WriterSetup, 'lock'>,
  ) {
    engine.setWriteGate(this.gate);
  }

  /** Start the thread and wait until its connection is open (a bad path fails here, not at the first message). */
  async start(): Promise<void> {
    await this.call({ id: 0, job: 'ping' });
  }

  async appendMessages(batch: AppendRequest[]): Promise<AppendOutcome[]> {
    // Columns across the thread boundary, not objects (store/sqlite-writer-wire.ts). A new
    // message's body is the request's own object (a clone would be equal, not the same):
    // callers recognise "stored as sent" by identity and reuse its serialization.
    const wire = (await this.call({ id: 0, job: 'append', batch: encodeBatch(batch) })) as WireOutcomes;
    return decodeOutcomes(batch, wire);
  }

  recordAcks(acks: DeviceAck[]): Promise<AckOutcome> {
    return this.call({ id: 0, job: 'acks', acks }) as Promise<AckOutcome>;
  }

  markDelivered(userId: string, inboxSeq: number): Promise<DeliveredUpdate[]> {
    return this.call({ id: 0, job: 'delivered', userId, inboxSeq }) as Promise<DeliveredUpdate[]>;
  }

  /** Finish the jobs handed over, close the thread's connection, stop it; the event loop's engine writes alone again. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const w = this.worker;
    if (w) {
      await new Promise<void>((done) => {
        w.once('exit', () => done());
        w.postMessage({ id: 0, job: 'close' } satisfies WriterJob);
      });
    }
    this.engine.setWriteGate(null);
  }

  private call(job: WriterJob): Promise<unknown> {
    if (this.closed && job.job !== 'close') return Promise.reject(new MagpieError('unavailable', 'the store is closing', { retryAfterMs: 1000 }));
    const w = this.thread();
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      w.postMessage({ ...job, id });
    });
  }

  private thread(): Worker {
    if (this.worker) return this.worker;
    const options = { workerData: { ...this.setup, lock: this.lockBuffer } satisfies WriterSetup, name: 'magpie-sqlite-writer', resourceLimits: WRITER_LIMITS };
    const w = startModuleWorker(import.meta.url, 'sqlite-writer-worker', options);
    w.on('message', (m: WriterReply) => {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (m.ok) p.resolve(m.value);
      else p.reject(rebuildError(m.error));
    });
    const fail = (err: Error) => {
      if (this.worker === w) this.worker = null;
      this.gate.breakWriterHold();
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    };
    w.on('error', fail);
    w.on('exit', (code) => fail(new Error(`the SQLite writer thread exited (code ${code})`)));
    this.worker = w;
    return w;
  }
}

/** An error from the thread as the event loop's own store would have thrown it (class, code, message). */
function rebuildError(e: Extract<WriterReply, { ok: false }>['error']): Error {
  if (e.name === 'MagpieError' && e.code) {
    return new MagpieError(e.code as ConstructorParameters<typeof MagpieError>[0], e.message, {
      ...(e.details !== undefined ? { details: e.details } : {}),
      ...(e.retryAfterMs !== undefined ? { retryAfterMs: e.retryAfterMs } : {}),
    });
  }
  const err = (e.name === 'StoreNotFoundError' ? new StoreNotFoundError('') : e.name === 'StoreConflictError' ? new StoreConflictError('') : new Error()) as Error & { code?: string };
  err.message = e.message;
  err.name = e.name;
  if (e.code !== undefined) err.code = e.code;
  if (e.stack) err.stack = e.stack;
  return err;
}

/**
 * Start the writer thread for a store on `engine` when it is a SQLite file (not ':memory:',
 * whose connection no other thread can see); undefined otherwise (PostgreSQL: a pool already
 * runs transactions concurrently off the event loop).
 */
export async function startSqliteWriter(engine: SqlEngine, opts: { ringCapacity: number; synchronous: 'full' | 'normal'; warmUp?: boolean }): Promise<SqliteWriterThread | undefined> {
  if (engine.dialect !== 'sqlite') return undefined;
  const { SqliteEngine } = await import('../db/sqlite-engine.ts');
  if (!(engine instanceof SqliteEngine) || engine.path === '') return undefined;
  const writer = new SqliteWriterThread(engine, { path: engine.path, synchronous: opts.synchronous, ringCapacity: opts.ringCapacity, walAutocheckpoint: engine.walAutocheckpoint, walCoalesce: walCoalescingActive(), ...(opts.warmUp === false ? { warmUpBatches: 0 } : {}) });
  try {
    await writer.start();
  } catch (err) {
    await writer.close();
    throw err;
  }
  return writer;
}
