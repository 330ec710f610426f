import type Database from 'better-sqlite3';
import { openSqlite, type SqliteHandle, type SqliteOpenOptions } from '../store/sqlite-connection.ts';
import type { Queryable, Row, SqlEngine, TransactionOptions } from './engine.ts';
import type { WriteGate } from './write-lock.ts';

/**
 * SqlEngine on the process's shared connection to one SQLite file (store/sqlite-connection.ts).
 * better-sqlite3 is synchronous, so a statement runs at once; a transaction's function is
 * async, so while one is open every other use of the engine waits for it (otherwise a
 * statement of another caller would run inside it, on the same connection).
 */
export class SqliteEngine implements SqlEngine {
  readonly dialect = 'sqlite' as const;
  private readonly handle: SqliteHandle;
  private readonly db: Database.Database;
  private readonly statements = new Map<string, Database.Statement>();
  /** The same texts prepared in raw mode (rows as arrays), for `values`. */
  private readonly rawStatements = new Map<string, Database.Statement>();
  /** Settles when the open transaction ends; null when none is open. */
  private busy: Promise<void> | null = null;
  private readonly direct: Queryable;
  /**
   * The process's write lock when a second connection (the writer thread) writes the same
   * file: every write — a write transaction, or a writing statement outside one — holds it.
   * Reads never take it (WAL: a reader sees the last commit and never waits for a writer).
   */
  private gate: WriteGate | null = null;

  /**
   * Write transactions begin DEFERRED, not IMMEDIATE: for a connection that writes only an
   * ATTACHed database (the search index thread, search/sqlite-search-db.ts). BEGIN IMMEDIATE
   * takes the write lock of every database of the connection, the main file's included.
   */
  private readonly deferredWrites: boolean;

  constructor(path: string, opts: SqliteOpenOptions & { deferredWrites?: boolean } = {}) {
    this.handle = openSqlite(path, opts);
    this.db = this.handle.db;
    this.direct = this.queries();
    this.deferredWrites = opts.deferredWrites ?? false;
  }

  /** The connection itself (for ATTACH and per-schema pragmas: search/sqlite-search-db.ts). */
  get raw(): Database.Database {
    return this.db;
  }

  /** The WAL page count at which a commit on this connection checkpoints (SQLite's wal_autocheckpoint). */
  get walAutocheckpoint(): number {
    return this.db.pragma('wal_autocheckpoint', { simple: true }) as number;
  }

  set walAutocheckpoint(pages: number) {
    this.db.pragma(`wal_autocheckpoint = ${Math.max(0, Math.floor(pages))}`);
  }

  /** The database's size in bytes (page_count × page_size, as this connection sees it). */
  get sizeBytes(): number {
    return (this.db.pragma('page_count', { simple: true }) as number) * (this.db.pragma('page_size', { simple: true }) as number);
  }

  /** This connection's page cache, in KiB (SQLite's cache_size). */
  set cacheKib(kib: number) {
    this.db.pragma(`cache_size = -${Math.max(1, Math.floor(kib))}`);
  }

  /** The database file's path ('' for an in-memory database). */
  get path(): string {
    return this.db.name === ':memory:' ? '' : this.db.name;
  }

  /** A SQL function of this connection, implemented in JS (better-sqlite3 `function`); deterministic. */
  defineFunction(name: string, fn: (...args: unknown[]) => unknown): void {
    this.db.function(name, { deterministic: true }, fn as (...args: unknown[]) => string);
  }

  /** Take `gate` around every write from now on (see `gate`); null: this is the file's only writer. */
  setWriteGate(gate: WriteGate | null): void {
    this.gate = gate;
  }

  /** The connection's cached statement for `sql` (for SqliteQueries; not part of the engine's interface). */
  prepare(sql: string): Database.Statement {
    let s = this.statements.get(sql);
    if (!s) {
      s = this.db.prepare(sql);
      this.statements.set(sql, s);
    }
    return s;
  }

  /** A cached statement that returns rows as arrays (Queryable.values). */
  prepareRaw(sql: string): Database.Statement {
    let s = this.rawStatements.get(sql);
    if (!s) {
      s = this.db.prepare(sql).raw(true);
      this.rawStatements.set(sql, s);
    }
    return s;
  }

  /** The SQL texts of this connection's cached statements (`prepare`) and raw ones (`prepareRaw`). */
  statementTexts(): { plain: string[]; raw: string[] } {
    return { plain: [...this.statements.keys()], raw: [...this.rawStatements.keys()] };
  }

  private queries(): Queryable {
    return new SqliteQueries(this, this.db);
  }

  // Each method re-checks `busy` right before it touches the connection, with no await in
  // between: a transaction that started meanwhile is then waited for, never joined.

  async all<T = Row>(sql: string, params?: readonly unknown[]): Promise<T[]> {
    while (this.busy) await this.busy;
    if (this.gate && !this.prepare(sql).readonly) return this.locked(() => this.direct.all<T>(sql, params));
    return this.direct.all<T>(sql, params);
  }

  async values<T extends unknown[] = unknown[]>(sql: string, params?: readonly unknown[]): Promise<T[]> {
    while (this.busy) await this.busy;
    if (this.gate && !this.prepareRaw(sql).readonly) return this.locked(() => this.direct.values<T>(sql, params));
    return this.direct.values<T>(sql, params);
  }

  get<T = Row>(sql: string, params: readonly unknown[] = []): Promise<T | undefined> {
    // The common case (no transaction open, a read or no write gate) without an async frame of its own.
    if (this.busy) return this.getLater<T>(sql, params);
    try {
      const stmt = this.prepare(sql);
      if (this.gate && !stmt.readonly) return this.getLater<T>(sql, params);
      return Promise.resolve(stmt.get(...params) as T | undefined);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  private async getLater<T>(sql: string, params: readonly unknown[]): Promise<T | undefined> {
    while (this.busy) await this.busy;
    if (this.gate && !this.prepare(sql).readonly) return this.locked(() => this.direct.get<T>(sql, params));
    return this.direct.get<T>(sql, params);
  }

  async run(sql: string, params?: readonly unknown[]): Promise<number> {
    while (this.busy) await this.busy;
    if (this.gate) return this.locked(() => this.direct.run(sql, params));
    return this.direct.run(sql, params);
  }

  async exec(sql: string): Promise<void> {
    while (this.busy) await this.busy;
    if (this.gate) return this.locked(() => this.direct.exec(sql));
    return this.direct.exec(sql);
  }

  /** One writing statement outside a transaction (autocommit) under the write gate. */
  private async locked<T>(fn: () => Promise<T>): Promise<T> {
    while (this.busy) await this.busy;
    let done!: () => void;
    this.busy = new Promise<void>((r) => (done = r));
    const gate = this.gate;
    try {
      if (gate) {
        const entered = gate.enter();
        if (entered) await entered;
      }
      try {
        return await fn();
      } finally {
        gate?.leave();
      }
    } finally {
      this.busy = null;
      done();
    }
  }

  getBatched<T = Row>(sql: string, params: readonly unknown[] = []): Promise<T | undefined> {
    // Not an async function: a read queued at once costs the batcher's promise alone (issue 16).
    if (this.busy) return this.getBatchedLater<T>(sql, params);
    let stmt: Database.Statement;
    try {
      stmt = this.prepare(sql);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.handle.readGet<T>(stmt, params);
  }

  private async getBatchedLater<T>(sql: string, params: readonly unknown[]): Promise<T | undefined> {
    while (this.busy) await this.busy;
    return this.handle.readGet<T>(this.prepare(sql), params);
  }

  textList(values: readonly string[]): { sql: string; param: unknown } {
    return this.direct.textList(values);
  }

  /**
   * Inside `fn` use `tx`, never the engine itself (that would wait for this transaction).
   * `lock` needs nothing more here: BEGIN IMMEDIATE already excludes every other writer.
   * `readOnly` begins DEFERRED: a read transaction, one snapshot, no write lock.
   */
  async transaction<T>(fn: (tx: Queryable) => Promise<T>, opts: TransactionOptions & { fullSyncSchema?: string } = {}): Promise<T> {
    if (opts.rollback) throw new Error('rollback-only transactions are PostgreSQL only');
    while (this.busy) await this.busy;
    let done!: () => void;
    this.busy = new Promise<void>((r) => (done = r));
    const gate = opts.readOnly ? null : this.gate;
    if (gate) {
      try {
        const entered = gate.enter();
        if (entered) await entered;
      } catch (err) {
        this.busy = null;
        done();
        throw err;
      }
    }
    // 2 = FULL, 3 = EXTRA: the connection fsyncs every commit; this one need not.
    const level = opts.relaxedSync ? (this.db.pragma('synchronous', { simple: true }) as number) : 0;
    if (level > 1) this.db.pragma('synchronous = NORMAL');
    // An attached schema whose commits are relaxed (the search file) fsyncs this one.
    const schema = opts.fullSyncSchema;
    const schemaLevel = schema !== undefined ? (this.db.pragma(`${schema}.synchronous`, { simple: true }) as number) : 2;
    if (schemaLevel < 2) this.db.pragma(`${schema}.synchronous = FULL`);
    try {
      // IMMEDIATE takes the write lock now: a second process waits here (busy_timeout), not
      // at its first write with a snapshot that is already stale.
      this.db.exec(opts.readOnly || this.deferredWrites ? 'BEGIN DEFERRED' : 'BEGIN IMMEDIATE');
      try {
        const out = await fn(this.direct);
        this.db.exec('COMMIT');
        return out;
      } catch (err) {
        if (this.db.inTransaction) this.db.exec('ROLLBACK');
        throw err;
      }
    } finally {
      if (level > 1) this.db.pragma(`synchronous = ${level}`);
      if (schemaLevel < 2) this.db.pragma(`${schema}.synchronous = ${schemaLevel}`);
      gate?.leave();
      this.busy = null;
      done();
    }
  }

  /** The `synchronous` level in force on the shared connection (read back from SQLite). */
  get synchronous(): 'off' | 'normal' | 'full' | 'extra' {
    const levels = ['off', 'normal', 'full', 'extra'] as const;
    return levels[this.db.pragma('synchronous', { simple: true }) as number] ?? 'full';
  }

  async close(): Promise<void> {
    while (this.busy) await this.busy;
    this.statements.clear();
    this.rawStatements.clear();
    await this.handle.release();
  }
}

/**
 * The connection's statements as a Queryable (what a transaction's `fn` gets). A class, not an
 * object of arrow functions per engine: its methods are the same functions for every engine in
 * the thread, so code optimized against one connection (the SQLite writer thread's warm-up
 * database, store/writer-warmup.ts) stays valid for another (no "wrong call target").
 */
class SqliteQueries implements Queryable {
  readonly dialect = 'sqlite' as const;

  constructor(
    private readonly engine: SqliteEngine,
    private readonly db: Database.Database,
  ) {}

  async all<T>(sql: string, params: readonly unknown[] = []): Promise<T[]> {
    return this.engine.prepare(sql).all(...params) as T[];
  }

  async values<T extends unknown[]>(sql: string, params: readonly unknown[] = []): Promise<T[]> {
    return this.engine.prepareRaw(sql).all(...params) as T[];
  }

  async get<T>(sql: string, params: readonly unknown[] = []): Promise<T | undefined> {
    return this.engine.prepare(sql).get(...params) as T | undefined;
  }

  async run(sql: string, params: readonly unknown[] = []): Promise<number> {
    return this.engine.prepare(sql).run(...params).changes;
  }

  async exec(sql: string): Promise<void> {
    this.db.exec(sql);
  }

  textList(values: readonly string[]): { sql: string; param: unknown } {
    return { sql: '(SELECT value FROM json_each(?))', param: JSON.stringify(values) };
  }
}
