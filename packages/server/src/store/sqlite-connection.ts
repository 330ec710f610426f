import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, resolve } from 'node:path';
import { Worker } from 'node:worker_threads';
import { prepareSqliteVfs } from './sqlite-wal-coalesce.ts';

export type SqliteSynchronous = 'full' | 'normal';

/** A handle on the process-wide connection to one database file; `release` once when done. */
export interface SqliteHandle {
  readonly db: Database.Database;
  /**
   * Run a read on the next batch: every read queued in one event-loop turn runs inside one
   * read transaction. A lone statement outside a transaction takes and drops the WAL read
   * lock (file locks on the -shm file): ~5 µs, against ~0.4 µs inside a transaction.
   * For hot-path reads that can wait one turn (the direct-message policy check).
   */
  read<T>(fn: () => T): Promise<T>;
  /** `read(() => stmt.get(...params))` without the closure (the session read of every API request). */
  readGet<T>(stmt: Database.Statement, params: readonly unknown[]): Promise<T | undefined>;
  /** Drop this holder's reference; the connection closes when the last holder releases it. Idempotent. */
  release(): Promise<void>;
}

export interface SqliteOpenOptions {
  synchronous?: SqliteSynchronous;
  /**
   * Checkpoint the WAL from a worker thread every this many ms, so that the checkpoints
   * inside commits (on the event loop) have little left to copy. SQLite's automatic
   * checkpoint copies pages and fsyncs the database file inside the commit that crosses
   * 1 000 WAL pages: measured ~20 µs per 1:1 message at 400 messages per commit.
   * Default 500; 0 = SQLite's own automatic checkpoints only.
   */
  checkpointMs?: number;
  /**
   * The connection's page cache in KiB (default CACHE_KIB). Applies when this call opens the
   * connection (a holder joining an open connection gets that connection's cache).
   */
  cacheKib?: number;
  /**
   * A connection of its own, not the process's shared one (the search index's reader on the
   * event loop, search/sqlite-search-db.ts): no checkpointer, closed by `release`.
   */
  private?: boolean;
}

interface Shared {
  db: Database.Database;
  holders: number;
  checkpointer: Checkpointer | null;
  reads: ReadBatcher;
}

const open = new Map<string, Shared>();

/** Page cache of the shared connection (negative = KiB): the hot inbox/entries pages of ~10k users fit. */
export const CACHE_KIB = 65_536;

/**
 * Open (or join) the one connection this process keeps to a SQLite file. Every SQLite store
 * on the server's database file (messages, social graph, wallet, instructions) shares it.
 *
 * Why one connection: SQLite keeps its page cache per connection, and a commit on one
 * connection makes every other connection on the file drop its cache at its next read. With
 * a connection per store, each message commit made the next social check or membership read
 * start cold. better-sqlite3 is synchronous, so one store's transaction can never interleave
 * with another's on the shared connection; nothing relies on separate connections for
 * isolation. ':memory:' always gets a private connection (each is its own database).
 *
 * `synchronous`: 'full' fsyncs every commit (nothing acknowledged is lost on power failure),
 * 'normal' survives process crashes only. When holders ask for different levels the stronger wins.
 */
export function openSqlite(path: string, opts: SqliteOpenOptions = {}): SqliteHandle {
  const level = opts.synchronous ?? 'full';
  if (path === ':memory:' || opts.private) {
    if (path !== ':memory:') {
      mkdirSync(dirname(resolve(path)), { recursive: true });
      prepareSqliteVfs();
    }
    const db = configure(new Database(path === ':memory:' ? path : resolve(path)), level, opts.cacheKib);
    const reads = new ReadBatcher(db);
    return {
      db,
      read: (fn) => reads.read(fn),
      readGet: (stmt, params) => reads.get(stmt, params),
      release: async () => {
        if (db.open) db.close();
      },
    };
  }
  const key = resolve(path);
  let shared = open.get(key);
  if (!shared || !shared.db.open) {
    mkdirSync(dirname(key), { recursive: true });
    // The WAL write-coalescing VFS (sqlite-wal-coalesce.ts) is registered before the connection opens.
    prepareSqliteVfs();
    const db = configure(new Database(key), level, opts.cacheKib);
    const every = opts.checkpointMs ?? DEFAULT_CHECKPOINT_MS;
    shared = { db, holders: 0, checkpointer: every > 0 ? new Checkpointer(db, key, every) : null, reads: new ReadBatcher(db) };
    open.set(key, shared);
  } else if (level === 'full') {
    shared.db.pragma('synchronous = FULL');
  }
  shared.holders++;
  const entry = shared;
  let released = false;
  return {
    db: entry.db,
    read: (fn) => entry.reads.read(fn),
    readGet: (stmt, params) => entry.reads.get(stmt, params),
    async release() {
      if (released) return;
      released = true;
      entry.holders--;
      if (entry.holders > 0) return;
      if (open.get(key) === entry) open.delete(key);
      await entry.checkpointer?.stop();
      if (entry.db.open) entry.db.close();
    },
  };
}

/**
 * Queues reads and runs each turn's reads in one read transaction (see SqliteHandle.read).
 * Cheap per read (issue 16: this is the session read of every API request): a batch is two
 * parallel arrays reused from batch to batch (two sets: the one filling and the one being
 * flushed) and ONE promise, settled with the batch's answers; each read is that promise's
 * `then` with a picker of its slot (made once per slot and kept), and the transaction function
 * is made once. Before, each read cost an entry object, a closure, its own promise with its
 * resolving functions and a result wrapper, and each batch better-sqlite3's transaction wrappers.
 */
class ReadBatcher {
  private q = new ReadQueue();
  /** The batch being flushed (swapped with `q`). */
  private flushing = new ReadQueue();
  private readonly runBatch: () => void;
  private readonly scheduled = (): void => this.flush();

  constructor(private readonly db: Database.Database) {
    // One transaction function for every batch (a savepoint when a transaction is already open).
    this.runBatch = db.transaction(() => {
      const b = this.flushing;
      // Each read settles on its own: one that throws fails only its caller.
      for (let i = 0; i < b.n; i++) {
        try {
          const stmt = b.stmts[i];
          b.results[i] = stmt ? stmt.get(...(b.params[i] as unknown[])) : (b.params[i] as () => unknown)();
        } catch (err) {
          b.results[i] = new ReadFailure(err);
        }
      }
    });
  }

  read<T>(fn: () => T): Promise<T> {
    return this.enqueue(null, fn) as Promise<T>;
  }

  get<T>(stmt: Database.Statement, params: readonly unknown[]): Promise<T | undefined> {
    return this.enqueue(stmt, params) as Promise<T | undefined>;
  }

  private enqueue(stmt: Database.Statement | null, params: unknown): Promise<unknown> {
    const q = this.q;
    if (q.n === 0) setImmediate(this.scheduled);
    return q.add(stmt, params);
  }

  private flush(): void {
    const b = this.q;
    this.q = this.flushing;
    this.flushing = b;
    b.results = new Array(b.n);
    try {
      if (!this.db.open) throw new Error('database closed');
      this.runBatch();
    } catch (err) {
      // BEGIN or COMMIT failed (or the database is closed): every read of the batch fails.
      b.results.fill(new ReadFailure(err));
    }
    b.settle();
  }
}

/** A read that threw, in a batch's answers (its caller's promise rejects with `err`). */
class ReadFailure {
  constructor(readonly err: unknown) {}
}

/** Slot pickers kept for reuse (a batch rarely has more reads; beyond, one is made per read). */
const PICKERS_KEPT = 4096;
const pickers: ((results: unknown[]) => unknown)[] = [];
function picker(i: number): (results: unknown[]) => unknown {
  let f = pickers[i];
  if (!f) {
    f = (results) => {
      const v = results[i];
      if (v instanceof ReadFailure) throw v.err;
      return v;
    };
    if (i < PICKERS_KEPT) pickers[i] = f;
  }
  return f;
}

/** One batch of queued reads (see ReadBatcher). */
class ReadQueue {
  n = 0;
  /** Per read: a statement and its parameters, or (statement null) a function in `params`. */
  stmts: (Database.Statement | null)[] = [];
  params: unknown[] = [];
  /** The answers of the batch being flushed, by slot (a ReadFailure where the read threw). */
  results: unknown[] = [];
  private answered: Promise<unknown[]> | null = null;
  private resolve: ((results: unknown[]) => void) | null = null;

  /** Queue one read: its answer. */
  add(stmt: Database.Statement | null, params: unknown): Promise<unknown> {
    if (this.answered === null) this.answered = new Promise<unknown[]>((r) => (this.resolve = r));
    const i = this.n++;
    this.stmts[i] = stmt;
    this.params[i] = params;
    return this.answered.then(picker(i));
  }

  /** Answer every queued read, then empty: the arrays keep their storage (unless a burst made them large), not what was read. */
  settle(): void {
    const resolve = this.resolve!;
    const results = this.results;
    this.answered = null;
    this.resolve = null;
    this.results = [];
    if (this.n > 1024) {
      this.stmts = [];
      this.params = [];
    } else {
      this.stmts.fill(null, 0, this.n);
      this.params.fill(undefined, 0, this.n);
    }
    this.n = 0;
    resolve(results);
  }
}

const DEFAULT_CHECKPOINT_MS = 500;
/**
 * With the worker running, the writer still checkpoints inside a commit once the WAL holds
 * this many pages (32 MiB). The worker has usually copied all but the newest frames by then,
 * so that checkpoint is short — and it is what lets the WAL restart from its beginning under
 * sustained writes, which a background checkpoint alone never achieves (a commit always lands
 * while it copies).
 */
const WRITER_CHECKPOINT_PAGES = 8_000;

/** The worker: its own connection, PASSIVE checkpoints (never blocks the writer). */
const CHECKPOINT_WORKER = `
const { workerData, parentPort } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.path);
db.pragma('busy_timeout = 1000');
const t = setInterval(() => { try { db.pragma('wal_checkpoint(PASSIVE)'); } catch {} }, workerData.everyMs);
parentPort.on('message', () => { clearInterval(t); try { db.close(); } catch {} parentPort.postMessage({ closed: true }); });
`;

/** Runs WAL checkpoints off the event loop for one shared connection. */
class Checkpointer {
  private readonly worker: Worker;

  constructor(
    private readonly db: Database.Database,
    path: string,
    everyMs: number,
  ) {
    db.pragma(`wal_autocheckpoint = ${WRITER_CHECKPOINT_PAGES}`);
    this.worker = new Worker(CHECKPOINT_WORKER, {
      eval: true,
      workerData: { path, everyMs, driver: createRequire(import.meta.url).resolve('better-sqlite3') },
      // Plain CommonJS: no TypeScript loader needed.
      execArgv: [],
    });
    this.worker.unref();
    // Without the worker, SQLite's default: the writer checkpoints every 1 000 pages.
    this.worker.on('error', () => this.db.open && this.db.pragma('wal_autocheckpoint = 1000'));
  }

  async stop(): Promise<void> {
    await new Promise<void>((done) => {
      const t = setTimeout(done, 2000);
      const finish = () => {
        clearTimeout(t);
        done();
      };
      this.worker.on('message', (m: { closed?: boolean }) => m.closed && finish());
      this.worker.once('exit', finish);
      this.worker.postMessage('close');
    });
    await this.worker.terminate();
    // The last connection's close checkpoints what is left and removes the WAL.
    if (this.db.open) this.db.pragma('wal_autocheckpoint = 1000');
  }
}

function configure(db: Database.Database, level: SqliteSynchronous, cacheKib = CACHE_KIB): Database.Database {
  db.pragma('journal_mode = WAL');
  db.pragma(`synchronous = ${level === 'normal' ? 'NORMAL' : 'FULL'}`);
  db.pragma('busy_timeout = 5000');
  db.pragma(`cache_size = -${Math.max(1, Math.floor(cacheKib))}`);
  // Statement journals in memory: a write statement that may touch several rows (multi-row
  // INSERTs, INSERT … SELECT, upserts, triggers) inside a transaction journals every page it
  // changes so that it alone can be undone; with the default temp_store these journals spill
  // to a temporary file (a pwrite per page). Measured on the group commit: ~20 % of the
  // append's CPU. Temporary tables and sorts that outgrow the page cache stay in memory too.
  db.pragma('temp_store = MEMORY');
  return db;
}
