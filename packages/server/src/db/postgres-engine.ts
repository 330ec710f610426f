import postgres from 'postgres';
import { numberedPlaceholders, type Queryable, type Row, type SqlEngine, type TransactionOptions } from './engine.ts';

export interface PostgresEngineOptions {
  url: string;
  /** search_path (tests run each suite in its own schema, created when missing). */
  schema?: string;
  /** Pool size; the first holder of a URL+schema decides it. */
  max?: number;
  /** Seconds before an idle pooled connection is closed. */
  idleTimeoutS?: number;
}

interface SharedPool {
  sql: postgres.Sql;
  holders: number;
  ready: Promise<void>;
}

/**
 * A transaction's writes are sent as one pipeline ending in COMMIT AND CHAIN (row locks held
 * for no client round trip); postgres.js's default of 100 queries in flight would split it.
 * (`max_pipeline` is a postgres.js option missing from its type declarations.)
 */
const PIPELINE = { max_pipeline: 100_000 };

/** One pool per URL+schema per process, whichever stores hold it. */
const pools = new Map<string, SharedPool>();

const texts = new Map<string, string>();
function pgText(sql: string): string {
  let t = texts.get(sql);
  if (t === undefined) {
    t = numberedPlaceholders(sql);
    texts.set(sql, t);
  }
  return t;
}

/**
 * postgres.js writes a message shorter than 1 KiB (with whatever it buffered before it) only at
 * the next setImmediate, after the rest of the node's event-loop turn. A write pipeline ending in
 * short statements would thus run its first statements (taking row locks) at once and its
 * COMMIT AND CHAIN only after whatever else the node does in that turn — tens of ms on a busy
 * node, with the locks held (measured on branch `cluster`: the pipeline's users rows were held
 * 300 ms by a 300 ms turn; sent this way, they were released when the statements finished).
 * COMMIT AND CHAIN, which ends every locked pipeline, is therefore sent unprepared with its text
 * padded past 1 KiB: it and everything buffered before it leave at once.
 */
const COMMIT_AND_CHAIN = 'COMMIT AND CHAIN';
const FLUSHING_COMMIT_AND_CHAIN = `COMMIT AND CHAIN /*${' '.repeat(1024)}*/`;

function queries(sql: postgres.Sql | postgres.TransactionSql): Queryable {
  const unsafe = (text: string, params: readonly unknown[]) =>
    text === COMMIT_AND_CHAIN
      ? sql.unsafe(FLUSHING_COMMIT_AND_CHAIN, [], { prepare: false })
      : sql.unsafe(pgText(text), params as postgres.ParameterOrJSON<never>[], { prepare: true });
  return {
    dialect: 'postgres',
    all: async <T>(text: string, params: readonly unknown[] = []) => [...(await unsafe(text, params))] as T[],
    get: async <T>(text: string, params: readonly unknown[] = []) => (await unsafe(text, params))[0] as T | undefined,
    run: async (text: string, params: readonly unknown[] = []) => (await unsafe(text, params)).count,
    exec: async (text: string) => void (await sql.unsafe(text).simple()),
    textList: (values) => ({ sql: '(SELECT unnest(?::text[]) AS value)', param: [...values] }),
  };
}

/** SqlEngine on PostgreSQL (postgres.js): the process's one pool for the URL and schema. */
export class PostgresEngine implements SqlEngine {
  readonly dialect = 'postgres' as const;
  private readonly key: string;
  private readonly pool: SharedPool;
  private readonly q: Queryable;
  private closed = false;

  private constructor(key: string, pool: SharedPool) {
    this.key = key;
    this.pool = pool;
    this.q = queries(pool.sql);
  }

  static async open(opts: PostgresEngineOptions): Promise<PostgresEngine> {
    const key = `${opts.url}#${opts.schema ?? ''}`;
    let pool = pools.get(key);
    if (!pool) {
      const sql = postgres(opts.url, {
        max: opts.max ?? 10,
        idle_timeout: opts.idleTimeoutS ?? 30,
        ...PIPELINE,
        onnotice: () => {},
        ...(opts.schema ? { connection: { search_path: opts.schema } } : {}),
      });
      const ready = opts.schema ? sql.unsafe(`CREATE SCHEMA IF NOT EXISTS "${opts.schema.replaceAll('"', '""')}"`).then(() => undefined) : Promise.resolve();
      pool = { sql, holders: 0, ready };
      pools.set(key, pool);
    }
    pool.holders++;
    await pool.ready;
    return new PostgresEngine(key, pool);
  }

  all<T = Row>(sql: string, params?: readonly unknown[]): Promise<T[]> {
    return this.q.all<T>(sql, params);
  }
  get<T = Row>(sql: string, params?: readonly unknown[]): Promise<T | undefined> {
    return this.q.get<T>(sql, params);
  }
  getBatched<T = Row>(sql: string, params?: readonly unknown[]): Promise<T | undefined> {
    return this.q.get<T>(sql, params);
  }
  run(sql: string, params?: readonly unknown[]): Promise<number> {
    return this.q.run(sql, params);
  }
  exec(sql: string): Promise<void> {
    return this.q.exec(sql);
  }
  textList(values: readonly string[]): { sql: string; param: unknown } {
    return this.q.textList(values);
  }

  async transaction<T>(fn: (tx: Queryable) => Promise<T>, opts: TransactionOptions = {}): Promise<T> {
    const body = async (tx: postgres.TransactionSql): Promise<T> => {
      // Sent ahead of the first statements (no round trip of its own); a failure aborts the
      // transaction, which the caller's statements then report.
      if (opts.relaxedSync) tx.unsafe('SET LOCAL synchronous_commit = off').catch(() => {});
      if (opts.lock !== undefined) await tx`SELECT pg_advisory_xact_lock(${opts.lock})`;
      return fn(queries(tx));
    };
    return (await (opts.readOnly ? this.pool.sql.begin('isolation level repeatable read read only', body) : this.pool.sql.begin(body))) as T;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (--this.pool.holders > 0) return;
    pools.delete(this.key);
    await this.pool.sql.end({ timeout: 5 });
  }
}
