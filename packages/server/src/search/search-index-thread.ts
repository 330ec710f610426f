import type { Worker } from 'node:worker_threads';
import { SqliteEngine } from '../db/sqlite-engine.ts';
import { walCoalescingActive } from '../store/sqlite-wal-coalesce.ts';
import { indexLag, type IndexLag } from './search-indexer.ts';
import type { SearchIndexJob, SearchIndexReply, SearchIndexSetup } from './search-index-worker.ts';
import { appliedPurges, attachSearchDb, type SearchIndex } from './sqlite-search-db.ts';
import type { SearchDoc } from './search-store.ts';
import { startModuleWorker } from '../util/module-worker.ts';

/** The event loop's read connection to the main file with the search file attached (KiB of page cache). */
const READER_CACHE_KIB = 16_384;

/**
 * SQLite on a database file: the search index (sqlite-search-db.ts) written by a thread of
 * its own (search-index-worker.ts), so that the indexer's FTS5 work and commits run in
 * parallel with the message writer thread's group commits instead of between them (issue 23).
 *
 * - Writes: every write of the search file — indexing batches, the recall/edit/backfill
 *   document updates — is a job of the thread, on its one connection: a catch-up (`sync`)
 *   followed by an update runs in that order there.
 * - Reads: searches and the lag gauges read on a connection of their own on the event loop
 *   (the main file, the search file attached; WAL: they never wait for either writer). Not
 *   the process's shared connection: its write transactions (BEGIN IMMEDIATE) would take the
 *   search file's write lock too, and wait in SQLite's busy handler behind the thread.
 * - New messages: `kick` after a commit that stored some; the thread indexes what arrived
 *   within `delayMs` (one timer at a time, on the event loop: one message to the thread per
 *   delay, not one per commit).
 * - If the thread dies, the jobs waiting for it fail and the next one starts a new thread,
 *   which continues from the committed catch-up point.
 */
export class ThreadSearchIndex implements SearchIndex {
  readonly reader: SqliteEngine;
  private worker: Worker | null = null;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: unknown) => void }>();
  private timer: ReturnType<typeof setTimeout> | null = null;
  private closed = false;

  constructor(
    private readonly path: string,
    private readonly delayMs = 100,
    private readonly onError: (err: unknown) => void = () => {},
  ) {
    this.reader = new SqliteEngine(path, { private: true, checkpointMs: 0, synchronous: 'normal', cacheKib: READER_CACHE_KIB });
    try {
      attachSearchDb(this.reader); // creates the search file's schema when it is new
    } catch (err) {
      void this.reader.close();
      throw err;
    }
    // The thread starts now (its module graph loads in the background), not at the first
    // commit's indexing: that would wait for it. A start that fails is retried by the next job.
    this.start().catch(() => {});
  }

  kick(): void {
    if (this.timer || this.closed) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.sync().catch((err: unknown) => {
        this.onError(err);
        this.kick();
      });
    }, this.delayMs);
    this.timer.unref?.();
  }

  async sync(): Promise<void> {
    await this.call({ id: 0, op: 'sync' });
  }

  runBatch(targetMs?: number): Promise<boolean> {
    return this.call({ id: 0, op: 'batch', ...(targetMs !== undefined && { targetMs }) }) as Promise<boolean>;
  }

  async put(docs: readonly SearchDoc[]): Promise<void> {
    if (docs.length > 0) await this.call({ id: 0, op: 'put', docs: [...docs] });
  }

  async remove(conv: string, seq: number): Promise<void> {
    await this.call({ id: 0, op: 'remove', conv, seq });
  }

  updateText(conv: string, seq: number, text: string): Promise<boolean> {
    return this.call({ id: 0, op: 'update', conv, seq, text }) as Promise<boolean>;
  }

  lag(now: number = Date.now()): Promise<IndexLag> {
    return indexLag(this.reader, now);
  }

  appliedPurges(): Promise<number | null> {
    return appliedPurges(this.reader);
  }

  /** Start the thread now (its connection open) instead of at the first job. */
  async start(): Promise<void> {
    await this.call({ id: 0, op: 'ping' });
  }

  /** Let the jobs handed over finish, stop the thread, close the reader. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const w = this.worker;
    if (w) {
      // Jobs already handed over finish first: `close` is sent once none is pending.
      w.ref(); // until it has exited
      await new Promise<void>((done) => {
        w.once('exit', () => done());
        const drain = (): void => {
          if (this.pending.size === 0) w.postMessage({ id: 0, op: 'close' } satisfies SearchIndexJob);
          else setTimeout(drain, 5);
        };
        drain();
      });
    }
    await this.reader.close();
  }

  private call(job: SearchIndexJob): Promise<unknown> {
    if (this.closed) return Promise.reject(new Error('the search index is closed'));
    const w = this.thread();
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      // The thread keeps the process alive only while a job waits for it (an idle index never
      // holds up an exit; a store never closed does not hang its process).
      if (this.pending.size === 1) w.ref();
      w.postMessage({ ...job, id });
    });
  }

  private thread(): Worker {
    if (this.worker) return this.worker;
    const options = { workerData: { path: this.path, delayMs: this.delayMs, walCoalesce: walCoalescingActive() } satisfies SearchIndexSetup, name: 'magpie-search-index', resourceLimits: { maxYoungGenerationSizeMb: 8, maxOldGenerationSizeMb: 256 } };
    const w = startModuleWorker(import.meta.url, 'search-index-worker', options);
    w.on('message', (m: SearchIndexReply) => {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (this.pending.size === 0) w.unref();
      if (m.ok) p.resolve(m.value);
      else {
        const err = new Error(m.error.message) as Error & { code?: string };
        err.name = m.error.name;
        if (m.error.code !== undefined) err.code = m.error.code;
        if (m.error.stack) err.stack = m.error.stack;
        p.reject(err);
      }
    });
    const fail = (err: Error): void => {
      if (this.worker === w) this.worker = null;
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    };
    w.on('error', fail);
    w.on('exit', (code) => fail(new Error(`the search index thread exited (code ${code})`)));
    this.worker = w;
    return w;
  }
}
