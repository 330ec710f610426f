import type { Queryable } from '../db/engine.ts';
import type { SqliteEngine } from '../db/sqlite-engine.ts';
import { attachSearchDb } from './sqlite-search-db.ts';
import { searchableText } from './extract.ts';

/** The indexable text of a message body ('' = not indexed): search/extract.ts's searchableText. */
export type SearchText = (kind: string, body: unknown) => string;

/** The SQL function through which the indexer's one statement reads each message's text. */
const TEXT_FN = 'magpie_search_text';

/** Messages per indexing transaction at most (one FTS5 segment each). */
export const INDEX_BATCH = 2048;
/** Messages per indexing transaction at least (when each message takes long to index). */
export const INDEX_BATCH_MIN = 32;
/**
 * The time one indexing transaction should take at most (ms): the index thread runs one job at
 * a time, so a catch-up batch delays a recall's or edit's document update (and a search's
 * catch-up) queued behind it by as long as it runs. The next batch is sized from the last
 * one's time per message.
 */
export const INDEX_BATCH_TARGET_MS = 10;

/**
 * SQLite: the deferred search indexer (issue 23). The group commit of messages writes only
 * what durability needs; each message's search document is written afterwards by this
 * indexer, in a database file of its own (search/sqlite-search-db.ts: `<name>.search.db` next
 * to the main file, ATTACHed as `search`), so its FTS5 work and its commits never queue behind
 * or ahead of the group commits of the main file: the server runs it on a thread of its own
 * (search-index-thread.ts) whose connection reads the main file (a WAL snapshot, no lock that
 * a writer waits for) and writes only `search`. It reads the `messages` table in rowid order
 * from its catch-up point (`search.search_progress`) and writes, in one transaction of the
 * search file:
 * - the documents of the next batch of messages, in ONE statement (`INSERT … SELECT` over
 *   messages with the text extracted by a SQL function), so FTS5 writes one index segment
 *   for the whole batch. A batch is at most `batch` messages and, once one has been timed,
 *   as many as take about INDEX_BATCH_TARGET_MS at its time per message (at least
 *   INDEX_BATCH_MIN);
 * - the purges of the retention job it has not applied yet (main's `search_purges`,
 *   migration 0025, written in each purge's own transaction): their documents are deleted
 *   and the catch-up point is lowered to each purge's `floor` (see Rowids below);
 * - the new catch-up point (the batch's last rowid) and the last purge applied.
 * Documents, point and purge mark commit or roll back together in the one search file, so
 * after any crash (kill -9, power loss) the next run continues exactly where the last
 * committed one stopped: no message is missed, none indexed twice (an upsert would make that
 * harmless anyway). The main file holds nothing of the index: a missing or deleted search
 * file is created empty and the indexer re-indexes from rowid 0.
 *
 * The search file is written with synchronous=NORMAL: a power loss may lose its last
 * batches, never the messages, and their point is lost with them, so they are indexed again.
 * A transaction that applies purges commits with FULL (the retention job deletes the purge
 * log rows this file says were applied: that mark must not roll back).
 *
 * The indexer reads each message as it is when it runs: a message recalled or edited before
 * its document was written is indexed as the tombstone (no document) or with its new text.
 * A recall/edit that commits after the indexing transaction is followed by the search
 * service's own update of the document (removeMessage / updateMessageText), which catches the
 * indexer up first and then writes through the same connection (on the index thread: its next
 * job), so the update is ordered after the insert either way.
 *
 * Rowids: `messages` has no INTEGER PRIMARY KEY, so a new row takes MAX(rowid) + 1, which only
 * falls below the catch-up point after the newest rows are deleted. Only the retention purge
 * deletes messages; it records in its own transaction the remaining MAX(rowid) (`floor`), and
 * the indexer lowers its point to the lowest floor of the purges it applies, in the same
 * snapshot in which it reads the messages above it.
 */
export class SearchIndexer {
  /** The last batch's time per message (ms); null until one has been timed. */
  private perMessageMs: number | null = null;

  /** The batch statement: with the plain-text shortcut (textSql) when `extract` is the server's own. */
  private readonly index: string;

  constructor(
    private readonly db: SqliteEngine,
    extract: SearchText,
    private readonly batch = INDEX_BATCH,
    private readonly targetMs = INDEX_BATCH_TARGET_MS,
  ) {
    attachSearchDb(db);
    this.index = indexSql(extract === searchableText ? textSql(TEXT_FN) : `${TEXT_FN}(kind, body)`);
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
   * Index the next batch of messages after the catch-up point (and apply the purges logged
   * since the last run), in one transaction. Returns whether more may wait (the batch was
   * full). Nothing to do costs one read and no write lock. `targetMs`: how long the
   * transaction should take (default: the indexer's own target); the batch is as many
   * messages as take that at the last batch's time per message, at least INDEX_BATCH_MIN and
   * at most `batch`.
   */
  async runBatch(targetMs: number = this.targetMs): Promise<boolean> {
    const peek = await this.db.get<{ at: number | null; top: number | null; seen: number | null; purge: number | null }>(PEEK);
    if (!peek || peek.at === null) return false;
    const purgeTo = peek.purge === null ? null : Number(peek.purge);
    const purges = purgeTo !== null && (peek.seen === null || purgeTo > Number(peek.seen));
    if (!purges && (peek.top === null || Number(peek.top) <= Number(peek.at))) return false;
    return this.db.transaction(
      async (tx) => {
        const t0 = performance.now();
        const p = await tx.get<{ at: number | null; seen: number | null }>('SELECT msg_rowid AS at, purge_seen AS seen FROM search.search_progress WHERE id = 1');
        if (!p || p.at === null) return false;
        let at = Number(p.at);
        let seen = p.seen === null ? null : Number(p.seen);
        if (seen === null) {
          // A new search file (indexing from rowid 0): the purges logged so far are in this snapshot already.
          seen = Number((await tx.get<{ id: number | null }>('SELECT MAX(id) AS id FROM search_purges'))?.id ?? 0);
        } else if (purgeTo !== null && purgeTo > seen) {
          for (const g of await tx.all<{ id: number; conv_id: string; from_seq: number; to_seq: number; floor: number }>('SELECT id, conv_id, from_seq, to_seq, floor FROM search_purges WHERE id > ? AND id <= ? ORDER BY id', [seen, purgeTo])) {
            await tx.run('DELETE FROM search.search_docs WHERE conv_id = ? AND seq > ? AND seq <= ?', [g.conv_id, g.from_seq, g.to_seq]);
            at = Math.min(at, Number(g.floor));
            seen = Number(g.id);
          }
        }
        const size = this.sizeFor(targetMs);
        const range = await tx.get<{ end: number | null; n: number }>(RANGE, [at, size]);
        const n = Number(range?.n ?? 0);
        if (range && range.end !== null && n > 0) {
          await tx.run(this.index, [at, range.end]);
          at = Number(range.end);
        }
        await tx.run('UPDATE search.search_progress SET msg_rowid = ?, purge_seen = ? WHERE id = 1', [at, seen]);
        if (n > 0) this.perMessageMs = Math.max(performance.now() - t0, 0.05) / n;
        return n >= size;
      },
      { relaxedSync: true, ...(purges && { fullSyncSchema: 'search' }) },
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

const LAG = `SELECT p.msg_rowid AS at, (SELECT MAX(rowid) FROM main.messages) AS top,
  (SELECT time FROM main.messages WHERE rowid > p.msg_rowid ORDER BY rowid LIMIT 1) AS oldest
  FROM search.search_progress p WHERE p.id = 1`;

/**
 * SQLite: the deferred indexer's lag, read on a connection with the search file attached (two lookups by
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

const PEEK = `SELECT p.msg_rowid AS at, p.purge_seen AS seen, (SELECT MAX(rowid) FROM main.messages) AS top, (SELECT MAX(id) FROM main.search_purges) AS purge
  FROM search.search_progress p WHERE p.id = 1`;

const RANGE = 'SELECT MAX(r) AS "end", COUNT(*) AS n FROM (SELECT rowid AS r FROM main.messages WHERE rowid > ? ORDER BY rowid LIMIT ?)';

/**
 * The searchable text of a message (kind, body) in SQL, for extract.ts's searchableText: a
 * 'text' message whose body is exactly `{"text":"…"}` as JSON.stringify writes it — the body
 * equal, byte for byte, to json_object('text', its text), the text a JSON string — gives that
 * string without a call into JavaScript; every other body goes through the function `fn`
 * (searchableText of JSON.parse(body)). For such a body both give the same string: it is
 * canonical JSON with one key, so JSON.parse and SQLite decode the same escapes to the same
 * code points (a duplicate key, whitespace or a JSON5 form makes the body differ from
 * json_object's output: the function). A body with a `\u` escape goes through the function
 * too: SQLite decodes a lone surrogate's escape to bytes that are not UTF-8, where the function's
 * string becomes U+FFFD (JSON.stringify escapes lone surrogates and control characters so; text
 * as people type it has neither). The CASE tests in order, and
 * json_valid (RFC 8259 text only) comes before any JSON operator, which would raise an error on
 * a malformed body. Issue 23: the call into JavaScript (V8 strings for kind and body,
 * JSON.parse, the result back to UTF-8) was ~18 % of the index thread in the saturated 1:1 bench.
 */
export function textSql(fn: string): string {
  return `CASE WHEN kind <> 'text' OR instr(body, '\\u') > 0 OR NOT json_valid(body) OR json_type(body, '$.text') IS NOT 'text' THEN ${fn}(kind, body)
    WHEN body = json_object('text', body ->> '$.text') THEN body ->> '$.text'
    ELSE ${fn}(kind, body) END`;
}

/**
 * The batch's documents in one statement. MATERIALIZED: the text is extracted once per
 * message (a flattened subquery would call the function in the filter and again in the row).
 */
const indexSql = (text: string): string => `WITH d AS MATERIALIZED (
    SELECT conv_id, seq, sender_id, kind, time, ${text} AS t FROM main.messages WHERE rowid > ? AND rowid <= ?
  )
  INSERT INTO search.search_docs (conv_id, seq, sender_id, kind, time, body)
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
