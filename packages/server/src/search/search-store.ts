import type { SqlEngine } from '../db/index.ts';
import type { SqliteEngine } from '../db/sqlite-engine.ts';
import { ftsPhrase, indexable, likePattern, searchableText } from './extract.ts';
import { LocalSearchIndex, putDocs, updateDocText, type SearchIndex } from './sqlite-search-db.ts';

/** One searchable message: its place, the filter columns and its text. */
export interface SearchDoc {
  conv: string;
  seq: number;
  sender: string;
  kind: string;
  time: number;
  text: string;
}

export interface SearchQuery {
  /** The user whose conversations are searched (membership, join time, cleared history, own deletions). */
  userId: string;
  /** Whitespace-separated terms, each a substring that must occur (see queryTerms). */
  terms: string[];
  conv?: string;
  sender?: string;
  kind?: string;
  /** Sent at or after (ms). */
  from?: number;
  /** Sent before (ms). */
  to?: number;
  /** Opaque cursor of the previous page (`next`). */
  before?: string;
  limit: number;
}

export interface SearchPage {
  hits: SearchDoc[];
  /** Cursor of the next (older) page; null at the end. */
  next: string | null;
}

/**
 * The search index, one implementation for SQLite (FTS5 trigram) and PostgreSQL (pg_trgm).
 * PostgreSQL: the tables of migration 0008-search in the server's database. SQLite: the
 * documents live in the search file (search/sqlite-search-db.ts), read through a connection
 * that has it attached and written through `index` (the message store's: on a thread of its
 * own for a database file); without one, an index on `db`'s own connection. It reads the
 * message store's `members`, `groups`, `entries` (and on SQLite `conv_purge`) tables to
 * decide what a user may see, at query time: a membership or clear that changes later needs
 * no re-indexing. `search_hidden` (delete for me) stays in the main database: it is not derived.
 */
export class SqlSearchStore {
  /**
   * `scanLimit` (SQLite): when the searched scope (the conversation, or all of the user's
   * conversations) holds at most this many messages, terms are matched with LIKE over the
   * scope's own documents instead of the trigram index, whose answer for a common term is
   * every match in the whole index (tens of thousands of rows before the visibility join).
   */
  private local: SearchIndex | undefined;

  constructor(
    private readonly db: SqlEngine,
    private readonly opts: { scanLimit?: number; index?: SearchIndex } = {},
  ) {
    // SQLite without the store's index (tools, tests): the search file attached to `db`'s own connection now.
    if (db.dialect === 'sqlite' && !opts.index) this.local = new LocalSearchIndex(db as SqliteEngine, searchableText);
  }

  /** SQLite: the search file's index (the one given, or one on `db`'s own connection). */
  private get index(): SearchIndex {
    if (this.opts.index) return this.opts.index;
    return (this.local ??= new LocalSearchIndex(this.db as SqliteEngine, searchableText));
  }

  /** Where documents are read: the search file's reader on SQLite, the database on PostgreSQL. */
  private get docs(): SqlEngine {
    return this.db.dialect === 'sqlite' ? this.index.reader : this.db;
  }

  /** Messages in the scope of a search (an upper bound: last seqs of its conversations). */
  private async scopeSize(userId: string, conv: string | undefined): Promise<number> {
    const row = conv !== undefined
      ? await this.docs.get<{ n: number | null }>('SELECT c.last_seq AS n FROM conversations c JOIN members m ON m.conv_id = c.id AND m.user_id = ? WHERE c.id = ?', [userId, conv])
      : await this.docs.get<{ n: number | null }>('SELECT SUM(c.last_seq) AS n FROM members m JOIN conversations c ON c.id = m.conv_id WHERE m.user_id = ?', [userId]);
    return Number(row?.n ?? 0);
  }

  /** Write (or overwrite) documents in one transaction; a document with empty text is removed. */
  async put(docs: readonly SearchDoc[]): Promise<void> {
    if (docs.length === 0) return;
    if (this.db.dialect === 'sqlite') return this.index.put(docs);
    await putDocs(this.db, docs);
  }

  /** Remove a message from the index (recall, server-side deletion). */
  async remove(conv: string, seq: number): Promise<void> {
    if (this.db.dialect === 'sqlite') return this.index.remove(conv, seq);
    await this.db.run('DELETE FROM search_docs WHERE conv_id = ? AND seq = ?', [conv, seq]);
  }

  /** Replace the text of an indexed message (edit); empty text removes it. False when it was not indexed. */
  async updateText(conv: string, seq: number, text: string): Promise<boolean> {
    if (this.db.dialect === 'sqlite') return this.index.updateText(conv, seq, text);
    return updateDocText(this.db, conv, seq, text);
  }

  /** Hide one message from one user's results (delete for me). Idempotent. */
  async hide(userId: string, conv: string, seq: number): Promise<void> {
    await this.db.run('INSERT INTO search_hidden (user_id, conv_id, seq) VALUES (?, ?, ?) ON CONFLICT DO NOTHING', [userId, conv, seq]);
  }

  async search(q: SearchQuery): Promise<SearchPage> {
    const where: string[] = [];
    const params: unknown[] = [q.userId];
    const sqlite = this.db.dialect === 'sqlite';
    const scan = sqlite && (await this.scopeSize(q.userId, q.conv)) <= (this.opts.scanLimit ?? 20_000);
    const long = scan ? [] : q.terms.filter(indexable);
    const short = scan ? q.terms : q.terms.filter((t) => !indexable(t));
    if (this.db.dialect === 'sqlite') {
      if (long.length > 0) {
        where.push('d.rid IN (SELECT rowid FROM search.search_fts WHERE search_fts MATCH ?)');
        params.push(long.map(ftsPhrase).join(' AND '));
      }
      for (const t of short) {
        where.push(`d.body LIKE ? ESCAPE '\\'`);
        params.push(likePattern(t));
      }
    } else {
      for (const t of q.terms) {
        where.push(`d.body ILIKE ? ESCAPE '\\'`);
        params.push(likePattern(t));
      }
    }
    if (q.conv !== undefined) (where.push('d.conv_id = ?'), params.push(q.conv));
    if (q.sender !== undefined) (where.push('d.sender_id = ?'), params.push(q.sender));
    if (q.kind !== undefined) (where.push('d.kind = ?'), params.push(q.kind));
    if (q.from !== undefined) (where.push('d.time >= ?'), params.push(q.from));
    if (q.to !== undefined) (where.push('d.time < ?'), params.push(q.to));
    const cursor = q.before !== undefined ? parseCursor(q.before) : null;
    if (cursor) {
      where.push('(d.time < ? OR (d.time = ? AND d.rid < ?))');
      params.push(cursor.time, cursor.time, cursor.rid);
    }
    params.push(q.userId, q.limit + 1);
    // Visibility, as history reads apply it (services/message-service.ts readableRange): a
    // member row (direct conversations have one per party); in a group with 'since_join'
    // history, from the member's latest join notice on; a former member up to their removal;
    // above the user's cleared seq; not deleted by the user for themselves.
    // SQLite: the documents of messages purged by retention leave the search file with the
    // indexer's next batch (search_purges, migration 0025); until then `conv_purge` hides them.
    const purged = sqlite ? ' AND d.seq > COALESCE((SELECT cp.purged_seq FROM conv_purge cp WHERE cp.conv_id = d.conv_id), 0)' : '';
    const rows = await this.docs.all<DocRow>(
      `SELECT d.rid, d.conv_id, d.seq, d.sender_id, d.kind, d.time, d.body
       FROM ${sqlite ? 'search.' : ''}search_docs d
       JOIN members mb ON mb.conv_id = d.conv_id AND mb.user_id = ?
       LEFT JOIN groups g ON g.conv_id = d.conv_id
       LEFT JOIN entries e ON e.user_id = mb.user_id AND e.conv_id = d.conv_id
       WHERE ${where.length > 0 ? `${where.join(' AND ')} AND ` : ''}
         d.seq > COALESCE(e.cleared_seq, 0)
         AND (g.conv_id IS NULL OR g.history_visibility = 'all' OR d.seq >= mb.joined_seq)
         AND (mb.left_seq IS NULL OR d.seq <= mb.left_seq)
         AND NOT EXISTS (SELECT 1 FROM search_hidden h WHERE h.user_id = ? AND h.conv_id = d.conv_id AND h.seq = d.seq)${purged}
       ORDER BY d.time DESC, d.rid DESC
       LIMIT ?`,
      params,
    );
    const more = rows.length > q.limit;
    const page = more ? rows.slice(0, q.limit) : rows;
    const last = page.at(-1);
    return { hits: page.map(docFromRow), next: more && last ? `${Number(last.time)}.${Number(last.rid)}` : null };
  }

  /**
   * Bring the index in line with the `messages` table, one page of `batch` messages per
   * transaction, in (conversation, seq) order: index what is missing, rewrite changed text,
   * drop messages whose text is gone. Resumable: pass the returned position back as `after`.
   */
  async backfill(
    extract: (kind: string, body: unknown) => string,
    opts: { batch?: number; after?: { conv: string; seq: number }; onPage?: (done: number, at: { conv: string; seq: number }) => void } = {},
  ): Promise<{ scanned: number; indexed: number }> {
    const batch = opts.batch ?? 2000;
    let at = opts.after ?? { conv: '', seq: 0 };
    let scanned = 0;
    let indexed = 0;
    for (;;) {
      const rows = await this.db.all<{ conv_id: string; seq: number; sender_id: string; kind: string; body: string; time: number }>(
        `SELECT conv_id, seq, sender_id, kind, body, time FROM messages
         WHERE conv_id > ? OR (conv_id = ? AND seq > ?)
         ORDER BY conv_id, seq LIMIT ?`,
        [at.conv, at.conv, at.seq, batch],
      );
      if (rows.length === 0) break;
      const docs = rows.map((r) => {
        let body: unknown = null;
        try {
          body = JSON.parse(r.body);
        } catch {
          // A body that is not JSON has no searchable text.
        }
        return { conv: r.conv_id, seq: Number(r.seq), sender: r.sender_id, kind: r.kind, time: Number(r.time), text: extract(r.kind, body) };
      });
      await this.put(docs);
      scanned += rows.length;
      indexed += docs.filter((d) => d.text !== '').length;
      const last = rows.at(-1)!;
      at = { conv: last.conv_id, seq: Number(last.seq) };
      opts.onPage?.(scanned, at);
      if (rows.length < batch) break;
    }
    return { scanned, indexed };
  }
}

interface DocRow {
  rid: number | string;
  conv_id: string;
  seq: number | string;
  sender_id: string;
  kind: string;
  time: number | string;
  body: string;
}

function docFromRow(r: DocRow): SearchDoc {
  return { conv: r.conv_id, seq: Number(r.seq), sender: r.sender_id, kind: r.kind, time: Number(r.time), text: r.body };
}

function parseCursor(s: string): { time: number; rid: number } | null {
  const m = /^(\d{1,16})\.(\d{1,19})$/.exec(s);
  return m ? { time: Number(m[1]), rid: Number(m[2]) } : null;
}

/** A cursor a client may send: what `search` returns as `next`. */
export function isCursor(s: string): boolean {
  return parseCursor(s) !== null;
}
