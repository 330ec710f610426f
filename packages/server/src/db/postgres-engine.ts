import { connect as netConnect, type Socket } from 'node:net';
import postgres from 'postgres';
import { PIPELINE_COMMIT, PIPELINE_FLUSH } from './dialect.ts';
import { connectionStatements } from './prepared.ts';
import { counted } from './statement-counts.ts';
import { numberedPlaceholders, type Queryable, type Row, type SqlEngine, type TransactionOptions } from './engine.ts';

export interface PostgresEngineOptions {
  url: string;
  /** search_path (tests run each suite in its own schema, created when missing). */
  schema?: string;
  /** Pool size; the first holder of a URL+schema decides it. */
  max?: number;
  /** Seconds before an idle pooled connection is closed. */
  idleTimeoutS?: number;
  /**
   * application_name of the pool's connections (the server: `magpie <node id>`), so
   * pg_stat_activity tells which node holds which backend. PGAPPNAME, when set, wins, and an
   * `application_name` in the URL's query wins over both.
   */
  applicationName?: string;
}

interface SharedPool {
  sql: postgres.Sql;
  holders: number;
  ready: Promise<void>;
}

/**
 * A transaction's writes are sent as one pipeline ending in its COMMIT (row locks held
 * for no client round trip); postgres.js's default of 100 queries in flight would split it.
 * (`max_pipeline` is a postgres.js option missing from its type declarations.)
 */
const PIPELINE = { max_pipeline: 100_000 };

/**
 * postgres.js opens its TCP connections with Nagle's algorithm on (libpq turns it off). A
 * pipeline is written in pieces (every statement of 1 KiB or more at once, the rest at the
 * driver's next setImmediate): with Nagle, every piece after the first waits in the kernel until
 * the server has acknowledged the first — until its first answer, or its delayed-ACK timer (up
 * to 40 ms on Linux) when that first statement waits for a row lock. The rest of a transaction's
 * pipeline (the reads under the conversation lock, the writes of the users rows) then arrived
 * late, with the locks held. So the pool's sockets are opened here, with TCP_NODELAY; tried in
 * the order of the URL's hosts (a Unix socket path when the URL names one).
 */
function noDelaySocket(o: { host: string[]; port: number[]; path: string | false; connect_timeout: number }): Promise<Socket> {
  const targets: ({ path: string } | { host: string; port: number })[] = o.path ? [{ path: o.path }] : o.host.map((host, i) => ({ host, port: o.port[i] ?? o.port[0] ?? 5432 }));
  const attempt = (i: number): Promise<Socket> =>
    new Promise<Socket>((resolve, reject) => {
      // (writableHighWaterMark: a stream.Duplex option net.Socket passes on; missing from NetConnectOpts.)
      const opts = { ...targets[i]!, noDelay: true, writableHighWaterMark: WRITE_HIGH_WATER };
      const s = netConnect(opts);
      const timer = setTimeout(() => {
        s.destroy();
        reject(Object.assign(new Error(`connect_timeout (${o.connect_timeout} s)`), { code: 'CONNECT_TIMEOUT' }));
      }, o.connect_timeout * 1000);
      s.once('connect', () => {
        clearTimeout(timer);
        s.removeAllListeners('error');
        resolve(writesPerBurst(s));
      });
      s.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    }).catch((err: unknown) => (i + 1 < targets.length ? attempt(i + 1) : Promise.reject(err)));
  return attempt(0);
}

/**
 * What a socket of the pool buffers before `write` reports back-pressure. Its writes are
 * gathered per burst (writesPerBurst), and postgres.js stops handing a connection statements
 * once `write` returns false: with the default 16 KiB, a big append pipeline (a 90-member
 * group's arrays) would be cut there and its tail sent only after answers came back, with
 * the row locks its head took held meanwhile.
 */
const WRITE_HIGH_WATER = 1 << 20;

/**
 * The writes the driver makes to `s` in one burst of microtasks leave in one system call: the
 * socket is corked at a burst's first write and uncorked by a microtask queued then. A
 * transaction's write pipeline (lock the conversation, lock and bump the users rows, insert,
 * COMMIT) is issued in one synchronous run; postgres.js then writes each statement of 1 KiB or
 * more on its own, each in the microtask its query queued when it was issued — so all of them
 * before that uncork, which therefore sends the whole pipeline, still before any later work of
 * the turn (store-postgres-locks.test.ts). Written piece by piece (about ten writes), on a busy
 * machine (two cores: several nodes and the server) the node was often descheduled between
 * them — each write wakes the server's backend — and the server, having run the head of the
 * pipeline, held its row locks "idle in transaction" until the rest came (issue 15,
 * `bench/cluster.ts --waits`). In one write the server gets the pipeline whole.
 */
function writesPerBurst(s: Socket): Socket {
  const write = s.write;
  let corked = false;
  const uncork = (): void => {
    corked = false;
    s.uncork();
  };
  s.write = function (this: Socket, ...args: unknown[]): boolean {
    if (!corked) {
      corked = true;
      s.cork();
      queueMicrotask(uncork);
    }
    return (write as (...a: unknown[]) => boolean).apply(this, args);
  } as Socket['write'];
  return s;
}

/** (`socket`, a postgres.js option missing from its type declarations; `onclose`: a connection's prepared statements are gone.) */
const NO_DELAY = { socket: noDelaySocket, onclose: (id: number) => void ranOn.delete(id) };

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
 * COMMIT only after whatever else the node does in that turn — tens of ms on a busy node, with
 * the locks held (measured on branch `cluster`: the pipeline's users rows were held 300 ms by a
 * 300 ms turn; sent this way, they were released when the statements finished). The COMMIT that
 * ends a locked pipeline (`PIPELINE_COMMIT`, below) is therefore sent unprepared with its text
 * padded past 1 KiB: it and everything buffered before it leave at once.
 */
const FLUSHING_COMMIT = `COMMIT /*${' '.repeat(1024)}*/`;
/** PIPELINE_FLUSH: an empty query (no result) that writes everything buffered before it at once, for the same reason. */
const FLUSHING_NOTHING = `/*${' '.repeat(1024)}*/`;

/** One transaction's state (PostgresEngine.transaction). */
interface TxState {
  committed: boolean;
  /** The first statement error of the transaction (the later ones are "transaction aborted", 25P02). */
  failure: unknown;
  /**
   * A statement failed without an answer from the server (the connection closed, reset or was
   * ended): the pool has taken the connection back as closed, so it must not be released (that
   * would put a dead connection among the open ones).
   */
  lost: boolean;
  /** Set when the connection closed (postgres.js's Connection.onclose, as its own `begin` uses). */
  closed: unknown;
  /** The statement texts the transaction's connection has run since it connected (db/prepared.ts). */
  ran?: Set<string>;
  /** TransactionOptions.rollback: PIPELINE_COMMIT only flushes; the transaction ends with ROLLBACK. */
  rollback: boolean;
}

/**
 * Per pooled connection (postgres.js connection id, unique in the process): the statement texts
 * it has run, so prepared, since it connected. Cleared when it closes (a reconnect starts with
 * no prepared statements).
 */
const ranOn = new Map<number, Set<string>>();

function observe(tx: TxState, e: unknown): void {
  if (tx.failure === undefined) tx.failure = e;
  if (!(e instanceof postgres.PostgresError)) tx.lost = true;
}

function queries(sql: postgres.Sql | postgres.ReservedSql, tx?: TxState): Queryable {
  const unsafe = (text: string, params: readonly unknown[]): Promise<postgres.RowList<postgres.Row[]>> => {
    if (text !== PIPELINE_FLUSH) counted(text);
    if (!tx) return sql.unsafe(text === PIPELINE_FLUSH ? FLUSHING_NOTHING : pgText(text), params as postgres.ParameterOrJSON<never>[], { prepare: text !== PIPELINE_FLUSH });
    if (tx.committed) return Promise.reject(new Error(`statement after the transaction's commit: ${text.slice(0, 60)}`));
    // Never on a connection that closed meanwhile (the pool has it back as closed).
    if (tx.closed !== undefined) return Promise.reject(tx.closed);
    let q: Promise<postgres.RowList<postgres.Row[]>>;
    if (text === PIPELINE_COMMIT && tx.rollback) {
      // A rollback-only transaction (the warm-up): the pipeline leaves as a commit's would, nothing commits.
      q = sql.unsafe(FLUSHING_NOTHING, [], { prepare: false });
    } else if (text === PIPELINE_COMMIT) {
      tx.committed = true;
      q = sql.unsafe(FLUSHING_COMMIT, [], { prepare: false });
    } else if (text === PIPELINE_FLUSH) {
      q = sql.unsafe(FLUSHING_NOTHING, [], { prepare: false });
    } else {
      q = sql.unsafe(pgText(text), params as postgres.ParameterOrJSON<never>[], { prepare: true });
      const ran = tx.ran;
      if (ran && !ran.has(text)) q.then(() => ran.add(text), () => {});
    }
    // Like postgres.js's own transactions: every statement's failure is observed (no unhandled
    // rejection for a statement nobody awaits), and the first one is what the transaction reports.
    q.catch((e: unknown) => observe(tx, e));
    return q;
  };
  return {
    dialect: 'postgres',
    all: async <T>(text: string, params: readonly unknown[] = []) => [...(await unsafe(text, params))] as T[],
    get: async <T>(text: string, params: readonly unknown[] = []) => (await unsafe(text, params))[0] as T | undefined,
    values: async <T extends unknown[]>(text: string, params: readonly unknown[] = []) => {
      const rows = await unsafe(text, params);
      const names = rows.columns.map((c) => c.name);
      return rows.map((r) => names.map((n) => r[n])) as T[];
    },
    run: async (text: string, params: readonly unknown[] = []) => (await unsafe(text, params)).count,
    exec: async (text: string) => {
      if (tx?.committed) throw new Error(`statement after the transaction's commit: ${text.slice(0, 60)}`);
      counted(text);
      await sql.unsafe(text).simple();
    },
    textList: (values) => ({ sql: '(SELECT unnest(?::text[]) AS value)', param: [...values] }),
  };
}

/** The Queryable of a transaction on a known connection: registered for db/prepared.ts's `warm`. */
function txQueries(sql: postgres.ReservedSql, tx: TxState): Queryable {
  const q = queries(sql, tx);
  if (tx.ran) connectionStatements.set(q, tx.ran);
  return q;
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
        ...NO_DELAY,
        onnotice: () => {},
        connection: {
          ...(opts.applicationName && !process.env.PGAPPNAME ? { application_name: opts.applicationName } : {}),
          ...(opts.schema ? { search_path: opts.schema } : {}),
        },
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
  values<T extends unknown[] = unknown[]>(sql: string, params?: readonly unknown[]): Promise<T[]> {
    return this.q.values<T>(sql, params);
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

  /**
   * A transaction on one reserved connection. BEGIN is not awaited: it leaves with the
   * transaction's first statements (postgres.js's `begin` waits for BEGIN's answer first, one
   * round trip more). The transaction ends with the caller's `PIPELINE_COMMIT` statement, or
   * else with a COMMIT sent here; on failure with ROLLBACK, reporting the first statement error.
   */
  async transaction<T>(fn: (tx: Queryable) => Promise<T>, opts: TransactionOptions = {}): Promise<T> {
    const conn = await this.pool.sql.reserve();
    // One object shape for every transaction, rollback-only or not (the warm-up's must train the same code).
    const state: TxState = { committed: false, failure: undefined, lost: false, closed: undefined, rollback: opts.rollback === true };
    // postgres.js's connection object, handed to BEGIN's onexecute (as its own `begin` takes it):
    // its onclose tells this transaction that the connection is gone.
    let connection: { onclose?: ((e: unknown) => void) | null; id?: number } | null = null;
    let executed = (): void => {};
    const onexecute = (c: { onclose?: ((e: unknown) => void) | null; id?: number }): boolean => {
      connection = c;
      if (typeof c.id === 'number') {
        let ran = ranOn.get(c.id);
        if (!ran) ranOn.set(c.id, (ran = new Set()));
        state.ran = ran;
      }
      executed();
      c.onclose = (e: unknown) => {
        state.closed = e ?? Object.assign(new Error('the connection closed'), { code: 'CONNECTION_CLOSED' });
        state.lost = true;
      };
      return true;
    };
    const first = (e: unknown): unknown => ((e as { code?: unknown } | null)?.code === '25P02' && state.failure !== undefined ? state.failure : e);
    try {
      // The BEGIN and SET LOCAL leave with the first statements; a failure aborts the
      // transaction, which the caller's statements then report.
      counted('BEGIN');
      const begin = conn.unsafe(opts.readOnly ? 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY' : 'BEGIN', [], { prepare: false, onexecute } as postgres.UnsafeQueryOptions);
      // BEGIN is handed to the connection a microtask later (not answered: no round trip); then
      // the connection, and what it has prepared, is known.
      const handed = new Promise<void>((resolve) => (executed = resolve));
      begin.catch((e: unknown) => observe(state, e));
      await Promise.race([handed, begin.then(() => {}, () => {})]);
      const q = txQueries(conn, state);
      if (opts.relaxedSync) void q.run('SET LOCAL synchronous_commit = off').catch(() => {});
      if (opts.lock !== undefined) await q.run('SELECT pg_advisory_xact_lock(?)', [opts.lock]);
      let result: T;
      try {
        result = await fn(q);
      } catch (e) {
        throw first(e);
      }
      if (state.closed !== undefined) throw state.closed;
      if (opts.rollback) {
        counted('ROLLBACK');
        await conn.unsafe('ROLLBACK', [], { prepare: false }).catch((e: unknown) => {
          observe(state, e);
          throw e;
        });
      } else if (!state.committed) {
        state.committed = true;
        counted('COMMIT');
        await conn.unsafe('COMMIT', [], { prepare: false }).catch((e: unknown) => {
          observe(state, e);
          throw e;
        });
      }
      if (state.failure !== undefined) throw state.failure;
      return result;
    } catch (e) {
      // The transaction may be open (a failed statement, or fn threw): end it before the
      // connection goes back to the pool. After a COMMIT it is a no-op (a notice).
      if (!state.lost) counted('ROLLBACK');
      if (!state.lost) await conn.unsafe('ROLLBACK', [], { prepare: false }).catch((err: unknown) => observe(state, err));
      throw e;
    } finally {
      if (!state.lost) {
        if (connection) (connection as { onclose?: unknown }).onclose = null;
        conn.release();
      }
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (--this.pool.holders > 0) return;
    pools.delete(this.key);
    await this.pool.sql.end({ timeout: 5 });
  }
}
