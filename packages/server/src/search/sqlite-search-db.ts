import type Database from 'better-sqlite3';
import { basename, dirname, join } from 'node:path';
import type { Queryable, SqlEngine } from '../db/engine.ts';
import type { SqliteEngine } from '../db/sqlite-engine.ts';
import { IndexSchedule, SearchIndexer, indexLag, type IndexLag, type SearchText } from './search-indexer.ts';
import type { SearchDoc } from './search-store.ts';

/**
 * SQLite: the search index's own database file (issue 23). The documents (`search_docs`),
 * their FTS5 trigram index (`search_fts`) and the deferred indexer's catch-up point
 * (`search_progress`) live in `<name>.search.db` next to the main file (`magpie.db` →
 * `magpie.search.db`), ATTACHed as schema `search` to the connections that use it, with its
 * own WAL. It is derived data: deleted or missing, it is created empty and re-indexed from
 * the `messages` table (search-indexer.ts). A main database that is ':memory:' gets an
 * in-memory search schema on its own connection.
 *
 * Why a file of its own: SQLite has one writer per file. With the documents in the main file,
 * every indexing transaction (FTS5 segment writes and its COMMIT) ran on the message writer
 * thread between the group commits, ~17 % of that thread under saturated 1:1 sends; in a file
 * of its own it runs on a thread of its own (search-index-thread.ts) in parallel with them.
 */
export const SEARCH_SCHEMA = 'search';

/** The search file of a main database file ('' or ':memory:': an in-memory one). */
export function searchDbPath(mainPath: string): string {
  if (mainPath === '' || mainPath === ':memory:') return ':memory:';
  const name = basename(mainPath);
  const stem = name.replace(/\.(db|sqlite3?)$/i, '');
  return join(dirname(mainPath), `${stem}.search.db`);
}

/**
 * The schema of the search file (idempotent). `purge_seen`: the last retention purge
 * (main's `search_purges`, migration 0025) applied to the documents; a new file starts at
 * the last one logged (NULL before that migration: the first batch sets it then). The FTS5 index merges 16
 * segments at a time (see migration 0021's reasons).
 */
const SCHEMA = `
CREATE TABLE IF NOT EXISTS search.search_docs (
  rid INTEGER PRIMARY KEY,
  conv_id TEXT NOT NULL,
  seq BIGINT NOT NULL,
  sender_id TEXT NOT NULL,
  kind TEXT NOT NULL,
  time BIGINT NOT NULL,
  body TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS search.search_docs_msg ON search_docs (conv_id, seq);
CREATE VIRTUAL TABLE IF NOT EXISTS search.search_fts USING fts5(body, content='search_docs', content_rowid='rid', tokenize='trigram');
CREATE TRIGGER IF NOT EXISTS search.search_docs_ai AFTER INSERT ON search_docs BEGIN
  INSERT INTO search_fts (rowid, body) VALUES (new.rid, new.body);
END;
CREATE TRIGGER IF NOT EXISTS search.search_docs_ad AFTER DELETE ON search_docs BEGIN
  INSERT INTO search_fts (search_fts, rowid, body) VALUES ('delete', old.rid, old.body);
END;
CREATE TRIGGER IF NOT EXISTS search.search_docs_au AFTER UPDATE OF body ON search_docs BEGIN
  INSERT INTO search_fts (search_fts, rowid, body) VALUES ('delete', old.rid, old.body);
  INSERT INTO search_fts (rowid, body) VALUES (new.rid, new.body);
END;
CREATE TABLE IF NOT EXISTS search.search_progress (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  msg_rowid INTEGER NOT NULL,
  purge_seen INTEGER
);
`;

/**
 * ATTACH the search file of `engine`'s database as `search` and create its schema if it is
 * new (idempotent: a connection that has it attached already is left as it is). Returns the
 * file's path.
 */
export function attachSearchDb(engine: SqliteEngine, file: string = searchDbPath(engine.path)): string {
  const db = engine.raw;
  const attached = (db.pragma('database_list') as { name: string }[]).some((d) => d.name === SEARCH_SCHEMA);
  if (attached) return file;
  db.prepare(`ATTACH DATABASE ? AS ${SEARCH_SCHEMA}`).run(file);
  if (file !== ':memory:') db.pragma(`${SEARCH_SCHEMA}.journal_mode = WAL`);
  // Derived data: a power loss may lose the last batches (and their point: indexed again).
  db.pragma(`${SEARCH_SCHEMA}.synchronous = NORMAL`);
  let fresh = !db.prepare(`SELECT 1 FROM ${SEARCH_SCHEMA}.sqlite_master WHERE name = 'search_progress'`).get();
  if (!fresh && aheadOfMain(db)) {
    // A search file newer than the main file (the main file was restored from an older copy
    // and this one kept): messages written from now on would take rowids at or below its point
    // and never be indexed. It is derived data: start it over.
    db.exec('BEGIN');
    try {
      db.exec('DROP TABLE IF EXISTS search.search_fts; DROP TABLE IF EXISTS search.search_docs; DROP TABLE IF EXISTS search.search_progress;');
      db.exec('COMMIT');
    } catch (err) {
      if (db.inTransaction) db.exec('ROLLBACK');
      throw err;
    }
    fresh = true;
  }
  if (fresh) {
    db.exec('BEGIN');
    try {
      db.exec(SCHEMA);
      db.exec(`INSERT INTO search.search_fts (search_fts, rank) VALUES ('automerge', 16)`);
      // The purges logged so far need not be applied (the file indexes from rowid 0, after
      // them); before migration 0025 there is no log yet: the first batch reads it then.
      const log = db.prepare("SELECT 1 FROM main.sqlite_master WHERE type = 'table' AND name = 'search_purges'").get();
      const seen = log ? Number((db.prepare('SELECT COALESCE(MAX(id), 0) AS id FROM main.search_purges').get() as { id: number }).id) : null;
      db.prepare('INSERT OR IGNORE INTO search.search_progress (id, msg_rowid, purge_seen) VALUES (1, 0, ?)').run(seen);
      db.exec('COMMIT');
    } catch (err) {
      if (db.inTransaction) db.exec('ROLLBACK');
      throw err;
    }
  }
  return file;
}

/**
 * Whether the search file's catch-up point is above every message of the main file with no
 * retention purge left to explain it. The point only ever covers committed rowids and is
 * lowered by the purges it applies; a purge that deleted the newest rows is logged in the
 * main file in the same transaction. So point > MAX(rowid) with every logged purge applied
 * means the main file is older than the index. The search file is read first, then the main
 * file, in one read transaction (each gets its snapshot at its first read): a later main
 * snapshot only has more rows, or the log row of a purge that removed some.
 */
function aheadOfMain(db: Database.Database): boolean {
  const tables = db.prepare("SELECT COUNT(*) AS n FROM main.sqlite_master WHERE type = 'table' AND name IN ('messages', 'search_purges')").get() as { n: number };
  if (Number(tables.n) < 2 || db.inTransaction) return false; // not migrated yet: nothing to compare with
  db.exec('BEGIN');
  try {
    const p = db.prepare('SELECT msg_rowid AS at, purge_seen AS seen FROM search.search_progress WHERE id = 1').get() as { at: number; seen: number | null } | undefined;
    if (!p) return false;
    const m = db.prepare('SELECT (SELECT COALESCE(MAX(rowid), 0) FROM main.messages) AS top, (SELECT MAX(id) FROM main.search_purges) AS purge').get() as { top: number; purge: number | null };
    if (m.purge !== null && (p.seen === null || Number(m.purge) > Number(p.seen))) return false; // purges to apply first
    return Number(p.at) > Number(m.top);
  } finally {
    db.exec('COMMIT');
  }
}

/** The search index's writes and reads as the message store and the search service use them. */
export interface SearchIndex {
  /** The connection searches and lag readings run on (the search file attached). */
  readonly reader: SqlEngine;
  /** Ready to index (the index thread started, its connection open). */
  start(): Promise<void>;
  /** A commit stored messages: index them within the delay. */
  kick(): void;
  /** Index every message committed before this call. */
  sync(): Promise<void>;
  /** One batch; true when more wait. */
  runBatch(targetMs?: number): Promise<boolean>;
  put(docs: readonly SearchDoc[]): Promise<void>;
  remove(conv: string, seq: number): Promise<void>;
  updateText(conv: string, seq: number, text: string): Promise<boolean>;
  lag(now?: number): Promise<IndexLag>;
  /** The last retention purge (main's `search_purges` id) whose documents the search file dropped, fsynced (null: none yet). */
  appliedPurges(): Promise<number | null>;
  close(): Promise<void>;
}

/** See SearchIndex.appliedPurges: read on a connection with the search file attached. */
export async function appliedPurges(reader: SqlEngine): Promise<number | null> {
  const r = await reader.get<{ n: number | null }>('SELECT purge_seen AS n FROM search.search_progress WHERE id = 1');
  return r && r.n !== null ? Number(r.n) : null;
}

/**
 * The search index on one connection that also holds the main database (in-memory databases,
 * tools, tests, and the index thread itself): indexer, schedule and document writes.
 */
export class LocalSearchIndex implements SearchIndex {
  readonly indexer: SearchIndexer;
  private readonly schedule: IndexSchedule;

  constructor(
    readonly reader: SqliteEngine,
    extract: SearchText,
    delayMs = 100,
    onError?: (err: unknown) => void,
  ) {
    this.indexer = new SearchIndexer(reader, extract);
    this.schedule = new IndexSchedule(() => this.indexer.runBatch(), delayMs, onError);
  }

  async start(): Promise<void> {}

  kick(): void {
    this.schedule.kick();
  }

  sync(): Promise<void> {
    return this.schedule.sync();
  }

  runBatch(targetMs?: number): Promise<boolean> {
    return this.indexer.runBatch(targetMs);
  }

  put(docs: readonly SearchDoc[]): Promise<void> {
    return putDocs(this.reader, docs, 'search.');
  }

  async remove(conv: string, seq: number): Promise<void> {
    await this.reader.run('DELETE FROM search.search_docs WHERE conv_id = ? AND seq = ?', [conv, seq]);
  }

  updateText(conv: string, seq: number, text: string): Promise<boolean> {
    return updateDocText(this.reader, conv, seq, text, 'search.');
  }

  lag(now: number = Date.now()): Promise<IndexLag> {
    return indexLag(this.reader, now);
  }

  appliedPurges(): Promise<number | null> {
    return appliedPurges(this.reader);
  }

  async close(): Promise<void> {
    this.schedule.stop();
  }
}

/** Rows per INSERT statement (7 parameters each: far below both engines' limits). */
const PUT_ROWS = 200;

/** Write (or overwrite) documents in one transaction; a document with empty text is removed. `prefix`: 'search.' on SQLite. */
export async function putDocs(db: SqlEngine, docs: readonly SearchDoc[], prefix = ''): Promise<void> {
  if (docs.length === 0) return;
  // The last version of each message wins (one statement may not update a row twice).
  const latest = new Map<string, SearchDoc>();
  for (const d of docs) latest.set(`${d.conv}\u0000${d.seq}`, d);
  const all = [...latest.values()];
  await db.transaction(async (tx) => {
    for (const d of all) if (d.text === '') await tx.run(`DELETE FROM ${prefix}search_docs WHERE conv_id = ? AND seq = ?`, [d.conv, d.seq]);
    const rows = all.filter((d) => d.text !== '');
    for (let i = 0; i < rows.length; i += PUT_ROWS) await putRows(tx, rows.slice(i, i + PUT_ROWS), prefix);
  });
}

/** Replace the text of an indexed message (edit); empty text removes it. False when it was not indexed. */
export async function updateDocText(db: SqlEngine, conv: string, seq: number, text: string, prefix = ''): Promise<boolean> {
  if (text === '') return (await db.run(`DELETE FROM ${prefix}search_docs WHERE conv_id = ? AND seq = ?`, [conv, seq])) > 0;
  return (await db.run(`UPDATE ${prefix}search_docs SET body = ? WHERE conv_id = ? AND seq = ?`, [text, conv, seq])) > 0;
}

async function putRows(tx: Queryable, docs: readonly SearchDoc[], prefix: string): Promise<void> {
  const params: unknown[] = [];
  for (const d of docs) params.push(d.conv, d.seq, d.sender, d.kind, d.time, d.text);
  await tx.run(
    `INSERT INTO ${prefix}search_docs (conv_id, seq, sender_id, kind, time, body) VALUES ${docs.map(() => '(?, ?, ?, ?, ?, ?)').join(', ')}
     ON CONFLICT (conv_id, seq) DO UPDATE SET body = excluded.body, kind = excluded.kind
     WHERE search_docs.body <> excluded.body OR search_docs.kind <> excluded.kind`,
    params,
  );
}
