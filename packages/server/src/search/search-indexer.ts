import type { Queryable } from '../db/engine.ts';
import type { SqliteEngine } from '../db/sqlite-engine.ts';

/** The indexable text of a message body ('' = not indexed): search/extract.ts's searchableText. */
export type SearchText = (kind: string, body: unknown) => string;

/** The SQL function through which the indexer's one statement reads each message's text. */
const TEXT_FN = 'magpie_search_text';

/** Messages per indexing transaction at most (one FTS5 segment each). */
export const INDEX_BATCH = 2048;
/** Messages per indexing transaction at least (when each message takes long to index). */
export const INDEX_BATCH_MIN = 32;
/**
 * The time one indexing transaction should take at most (ms): the writer thread runs one job at
 * a time, so a catch-up batch delays the group commits queued behind it by as long as it runs.
 * The next batch is sized from the last one's time per message.
 */
export const INDEX_BATCH_TARGET_MS = 10;
/**
 * The time one indexing transaction should take while the writer thread is busy with group
 * commits (ms; see SearchIndexer.runBatch's `targetMs`). Under sustained sends the event loop
 * hands the thread its next batch a few ms after each commit (the time it takes to answer the
 * last one); an index slice no longer than that adds nothing to the sends' latency, while a
 * 10 ms one held every commit cycle it fell into (the saturated 1:1 bench's tail).
 */
export const INDEX_BATCH_BUSY_MS = 3;

/**
 * SQLite: the deferred search indexer (issue 23). The group commit of messages writes only
 * what durability needs; each message's search document (tables of migration 0008-search)
 * is written afterwards by this indexer, which reads the `messages` table in rowid order from
 * its catch-up point (`search_progress`, migration 0022) and writes, in one transaction:
 * - the documents of the next batch of messages, in ONE statement (`INSERT … SELECT` over
 *   messages with the text extracted by a SQL function), so FTS5 writes one index segment
 *   for the whole batch instead of one per group commit. A batch is at most `batch` messages
 *   and, once one has been timed, as many as take about INDEX_BATCH_TARGET_MS at its time per
 *   message (at least INDEX_BATCH_MIN): a catch-up of thousands then goes in ~10 ms
 *   transactions, between which the writer thread runs the group commits that wait;
 * - the new catch-up point (the batch's last rowid).
 * Documents and point commit or roll back together, so after any crash (kill -9, power loss)
 * the next run continues exactly where the last committed one stopped: no message is missed,
 * none indexed twice (an upsert would make that harmless anyway).
 *
 * The transaction commits without an fsync of its own (TransactionOptions.relaxedSync: WAL
 * with synchronous=NORMAL): a power loss may lose the last index batches, never the messages,
 * and the catch-up point is lost with them, so they are indexed again. The next FULL commit
 * (any group commit) syncs the WAL and with it every index batch before it.
 *
 * The indexer reads each message as it is when it runs: a message recalled or edited before
 * its document was written is indexed as the tombstone (no document) or with its new text.
 * A recall/edit that commits after the indexing transaction is followed by the search
 * service's own update of the document (removeMessage / updateMessageText), which catches the
 * indexer up first; both write under the database's one write lock, so the update is ordered
 * after the insert either way.
 *
 * Rowids: `messages` has no INTEGER PRIMARY KEY, so a new row takes MAX(rowid) + 1, which only
 * falls below the catch-up point after the newest rows are deleted. Only the retention purge
 * deletes messages, and it lowers the point to the remaining MAX(rowid) in its own
 * transaction (retention/retention-store.ts).
 */
export class SearchIndexer {
  /** The last batch's time per message (ms); null until one has been timed. */
  private perMessageMs: number | null = null;

  constructor(
    private readonly db: SqliteEngine,
    extract: SearchText,
    private readonly batch = INDEX_BATCH,
    private readonly targetMs = INDEX_BATCH_TARGET_MS,
  ) {
    db.defineFunction(TEXT_FN, (kind, body) => {
      if (typeof kind !== 'string' || typeof body !== 'string') return '';
      let parsed: unknown;
      try {
        parsed = JSON.parse(body);
      } catch {
        return ''; // a body that is not JSON has no searchable text
      }
      return extract(kind, parsed);
    });
  }

  /** Messages committed but not yet indexed (an upper bound: rowids above the catch-up point). */
  async lag(): Promise<number> {
    const p = await this.db.get<{ at: number | null; top: number | null }>(PEEK);
    return p && p.at !== null && p.top !== null ? Math.max(0, Number(p.top) - Number(p.at)) : 0;
  }

  /**
   * Index the next batch of messages after the catch-up point, in one transaction. Returns
   * whether more may wait (the batch was full). Nothing to do costs one read and no write lock.
   * `targetMs`: how long the transaction should take (default: the indexer's own target); the
   * batch is as many messages as take that at the last batch's time per message, at least
   * INDEX_BATCH_MIN and at most `batch`.
   */
  async runBatch(targetMs: number = this.targetMs): Promise<boolean> {
    if ((await this.lag()) === 0) return false;
    return this.db.transaction(
      async (tx) => {
        const t0 = performance.now();
        const p = await tx.get<{ at: number | null }>('SELECT msg_rowid AS at FROM search_progress WHERE id = 1');
        if (!p || p.at === null) return false;
        const at = Number(p.at);
        const size = this.sizeFor(targetMs);
        const range = await tx.get<{ end: number | null; n: number }>(RANGE, [at, size]);
        if (!range || range.end === null || Number(range.n) === 0) return false;
        await tx.run(INDEX, [at, range.end]);
        await tx.run('UPDATE search_progress SET msg_rowid = ? WHERE id = 1', [range.end]);
        const n = Number(range.n);
        this.perMessageMs = Math.max(performance.now() - t0, 0.05) / n;
        return n >= size;
      },
      { relaxedSync: true },
    );
  }

  /** Messages for a batch that should take about targetMs: a full batch until one has been timed. */
  private sizeFor(targetMs: number): number {
    if (this.perMessageMs === null) return this.batch;
    return Math.max(Math.min(INDEX_BATCH_MIN, this.batch), Math.min(this.batch, Math.floor(targetMs / this.perMessageMs)));
  }
}

/** How far the deferred indexer is behind the committed messages (see indexLag). */
export interface IndexLag {
  /** Messages committed but not yet indexed (an upper bound: rowids above the catch-up point). */
  messages: number;
  /** Age of the oldest of them (s; 0 when none): how long a committed message has not been searchable. */
  seconds: number;
}

const LAG = `SELECT p.msg_rowid AS at, (SELECT MAX(rowid) FROM messages) AS top,
  (SELECT time FROM messages WHERE rowid > p.msg_rowid ORDER BY rowid LIMIT 1) AS oldest
  FROM search_progress p WHERE p.id = 1`;

/**
 * SQLite: the deferred indexer's lag, read on any connection to the database (two lookups by
 * rowid and one by the primary key: cheap enough for every /metrics scrape). `now` is the clock
 * that stamps messages (ms).
 */
export async function indexLag(db: Queryable, now: number): Promise<IndexLag> {
  const r = await db.get<{ at: number | null; top: number | null; oldest: number | null }>(LAG);
  if (!r || r.at === null || r.top === null) return { messages: 0, seconds: 0 };
  const messages = Math.max(0, Number(r.top) - Number(r.at));
  const seconds = messages > 0 && r.oldest !== null ? Math.max(0, (now - Number(r.oldest)) / 1000) : 0;
  return { messages, seconds };
}

const PEEK = 'SELECT (SELECT msg_rowid FROM search_progress WHERE id = 1) AS at, (SELECT MAX(rowid) FROM messages) AS top';

const RANGE = 'SELECT MAX(r) AS "end", COUNT(*) AS n FROM (SELECT rowid AS r FROM messages WHERE rowid > ? ORDER BY rowid LIMIT ?)';

/**
 * The batch's documents in one statement. MATERIALIZED: the text is extracted once per
 * message (a flattened subquery would call the function in the filter and again in the row).
 */
const INDEX = `WITH d AS MATERIALIZED (
    SELECT conv_id, seq, sender_id, kind, time, ${TEXT_FN}(kind, body) AS t FROM messages WHERE rowid > ? AND rowid <= ?
  )
  INSERT INTO search_docs (conv_id, seq, sender_id, kind, time, body)
  SELECT conv_id, seq, sender_id, kind, time, t FROM d WHERE t <> ''
  ON CONFLICT (conv_id, seq) DO UPDATE SET body = excluded.body, kind = excluded.kind
  WHERE search_docs.body <> excluded.body OR search_docs.kind <> excluded.kind`;

/**
 * When the deferred indexer runs: `kick` after a commit that stored messages (a run within
 * `delayMs`, one timer at a time, so a busy server indexes every ~delayMs in batches of what
 * arrived meanwhile); `sync` runs it now until it has caught up (a search, shutdown, start).
 * Runs never overlap. `run` indexes one batch and says whether more wait.
 */
export class IndexSchedule {
  private timer: ReturnType<typeof setTimeout> | null = null;
  private tail: Promise<void> = Promise.resolve();
  private stopped = false;

  constructor(
    private readonly run: () => Promise<boolean>,
    private readonly delayMs: number,
    private readonly onError: (err: unknown) => void = () => {},
  ) {}

  kick(): void {
    if (this.timer || this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.sync().catch((err: unknown) => {
        this.onError(err);
        this.kick(); // try again a delay later
      });
    }, this.delayMs);
    this.timer.unref?.();
  }

  /** Index everything committed before this call (and what arrives while it runs). */
  sync(): Promise<void> {
    const next = this.tail.then(async () => {
      while (await this.run());
    });
    this.tail = next.catch(() => undefined);
    return next;
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}
