/**
 * The thin layer the stores share: one SQL text per statement, run on SQLite or PostgreSQL.
 * Business transactions are written once against `SqlEngine`; the engines differ only in
 * the connection, placeholders, array parameters and error mapping.
 *
 * SQL is written with `?` placeholders and in the common dialect of SQLite ≥ 3.35 and
 * PostgreSQL ≥ 12 (INSERT … ON CONFLICT … DO UPDATE, RETURNING, BIGINT). BIGINT columns come
 * back as numbers from SQLite and as strings from PostgreSQL: row mappers apply Number().
 */
export type Dialect = 'sqlite' | 'postgres';

export type Row = Record<string, unknown>;

/** Statements on a connection, or inside one transaction. */
export interface Queryable {
  readonly dialect: Dialect;
  /** All rows of a statement. */
  all<T = Row>(sql: string, params?: readonly unknown[]): Promise<T[]>;
  /**
   * All rows as arrays of their column values, in the statement's column order: no object
   * (and no column-name key per value) per row. For reads of many rows on a hot path.
   */
  values<T extends unknown[] = unknown[]>(sql: string, params?: readonly unknown[]): Promise<T[]>;
  /** The first row, or undefined. */
  get<T = Row>(sql: string, params?: readonly unknown[]): Promise<T | undefined>;
  /** Run a statement; resolves with the number of rows it changed. */
  run(sql: string, params?: readonly unknown[]): Promise<number>;
  /** Several statements without parameters (schema migrations). */
  exec(sql: string): Promise<void>;
  /**
   * A list of text values as a one-column table named `value`, for `IN (…)` and set-based
   * writes: `SELECT value FROM json_each(?)` on SQLite, `SELECT unnest(?::text[]) AS value` on
   * PostgreSQL. Use the returned SQL in place of a table and pass `param` at its position.
   */
  textList(values: readonly string[]): { sql: string; param: unknown };
}

/**
 * A database the stores share: on SQLite the process's one connection to the file, on
 * PostgreSQL the process's one pool for the URL.
 *
 * Guarantees: `transaction` runs its function in one transaction, committed when it resolves
 * and rolled back when it throws; statements of other callers never run inside it (SQLite:
 * every use of the connection waits while a transaction is open; PostgreSQL: the transaction
 * has its own pooled connection). Options (`TransactionOptions`): `lock` serialises work
 * across processes and nodes; `readOnly` reads one consistent snapshot without writing.
 *
 * Row locks: inside a transaction, `SELECT … FOR UPDATE` locks the rows it reads on
 * PostgreSQL until commit (other nodes' writers wait); SQLite needs none, its write
 * transactions (BEGIN IMMEDIATE) already exclude every other writer. Use `forUpdate(dialect)`.
 */
export interface SqlEngine extends Queryable {
  transaction<T>(fn: (tx: Queryable) => Promise<T>, opts?: TransactionOptions): Promise<T>;
  /**
   * `get` for a hot-path read that can wait one event-loop turn: on SQLite every such read
   * of a turn runs in one read transaction (a lone statement pays ~5 µs for the WAL read
   * lock, ~0.4 µs inside one); on PostgreSQL the same as `get`.
   */
  getBatched<T = Row>(sql: string, params?: readonly unknown[]): Promise<T | undefined>;
  /** Drop this holder's reference; the connection or pool closes when the last one does. */
  close(): Promise<void>;
}

export interface TransactionOptions {
  /**
   * An advisory-lock key held until the transaction ends (PostgreSQL: pg_advisory_xact_lock,
   * across every node; SQLite: nothing more than the write lock of BEGIN IMMEDIATE).
   */
  lock?: number;
  /**
   * A read-only snapshot (reports, reconciliation): PostgreSQL REPEATABLE READ READ ONLY (one
   * snapshot for every statement, writes refused); SQLite BEGIN DEFERRED (a read transaction,
   * so other processes' writers are not held back). Do not write inside it.
   */
  readOnly?: boolean;
  /**
   * Writes that a later commit may make durable (advisory state such as ACK marks): SQLite
   * commits this transaction with `synchronous = NORMAL` (no fsync of its own; the WAL's next
   * fsync, the next message commit's, covers it; a power cut may lose it, never corrupt it).
   * PostgreSQL: `SET LOCAL synchronous_commit = off` — the commit returns, and its row and
   * advisory locks are released, without waiting for the WAL flush (the WAL writer flushes it
   * within ~3 × wal_writer_delay; a crash of the database server may lose it, never corrupt it).
   */
  relaxedSync?: boolean;
  /**
   * PostgreSQL only (the store's start-up warm-up, SqlStore.warmUp): the transaction never
   * commits. A `PIPELINE_COMMIT` inside it only sends the pipeline (the transaction stays open,
   * so later statements see its writes), and it ends with ROLLBACK whatever `fn` returns.
   * SQLite refuses it.
   */
  rollback?: boolean;
}

/**
 * The row-lock clause of a `SELECT` inside a write transaction: `FOR UPDATE` (optionally
 * `OF table`) on PostgreSQL, nothing on SQLite (its write transaction holds the database lock).
 */
export function forUpdate(dialect: Dialect, of?: string): string {
  return dialect === 'postgres' ? (of ? ` FOR UPDATE OF ${of}` : ' FOR UPDATE') : '';
}

/** `?` placeholders → `$1, $2, …`, outside quoted strings and identifiers (PostgreSQL). */
export function numberedPlaceholders(sql: string): string {
  let out = '';
  let n = 0;
  let quote: string | null = null;
  for (const ch of sql) {
    if (quote) {
      if (ch === quote) quote = null;
      out += ch;
    } else if (ch === "'" || ch === '"') {
      quote = ch;
      out += ch;
    } else if (ch === '?') {
      out += `$${++n}`;
    } else out += ch;
  }
  return out;
}
