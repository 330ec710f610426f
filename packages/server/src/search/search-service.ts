import { MagpieError, type Message } from '@magpie/protocol';
import { queryTerms, searchableText } from './extract.ts';
import { isCursor, type SearchDoc, type SearchPage, type SqlSearchStore } from './search-store.ts';

export interface SearchOptions {
  /** Queued documents are written once this many are pending, else at the end of the event-loop turn. */
  maxPending?: number;
  /** Longest query accepted (characters). */
  maxQueryChars?: number;
  /** Failures of background index writes (the backfill command repairs what they missed). */
  onError?: (err: unknown, docs: number) => void;
  /**
   * Catch the store's deferred indexer up (SQLite: SqlStore.syncSearchIndex): every message
   * committed before the call is in the index when it resolves. Run before each search and
   * before each lifecycle update of the index.
   */
  syncIndex?: () => Promise<void>;
  /** Longest a search waits for `syncIndex` before it answers from the index as it is (ms). Default 2000. */
  syncWaitMs?: number;
  /** Failures of `syncIndex` (the search still answers; the indexer retries on its own). */
  onSyncError?: (err: unknown) => void;
}

export interface SearchInput {
  query: string;
  conv?: string;
  sender?: string;
  kind?: string;
  from?: number;
  to?: number;
  before?: string;
  limit?: number;
}

/**
 * Message search: keeps the index in step with committed messages and answers a user's
 * searches over their own conversations.
 *
 * On the server, a new message's document is written by the message store (SqlStoreOptions.
 * searchText): on PostgreSQL in the message's own transaction (the group commit); on SQLite by
 * the deferred indexer (search/search-indexer.ts) at most `searchIndexDelayMs` after the
 * commit, in batches of its own. Each search first catches that indexer up (`syncIndex`), so
 * a search never misses a message committed before it. For any other store, `indexCommitted` (a
 * MessagingService committed-listener) queues documents, written in one transaction per
 * event-loop turn after the sender's reply; a crash can lose queued documents, never
 * messages: `npm run search:backfill` brings the index in line with the messages table.
 *
 * The lifecycle hooks (recall, edit, delete for me) call `removeMessage`,
 * `updateMessageText` and `hideForUser`; each first writes what is queued (and catches the
 * deferred indexer up), so a change is never overtaken by the original text.
 */
export class SearchService {
  private pending: SearchDoc[] = [];
  private scheduled = false;
  private writing: Promise<void> = Promise.resolve();

  constructor(
    private readonly store: SqlSearchStore,
    private readonly opts: SearchOptions = {},
  ) {}

  /** Queue a newly committed message for the index (never throws, never waits). */
  readonly indexCommitted = (m: Message): void => {
    const text = searchableText(m.kind, m.body);
    if (text === '') return;
    this.pending.push({ conv: m.conv, seq: m.seq, sender: m.sender, kind: m.kind, time: m.time, text });
    if (this.pending.length >= (this.opts.maxPending ?? 1000)) void this.flush();
    else if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => void this.flush());
    }
  };

  /** Write everything queued so far; resolves when it is in the index (or its write failed and was reported). */
  flush(): Promise<void> {
    this.scheduled = false;
    const docs = this.pending;
    this.pending = [];
    const write = this.writing.then(async () => {
      if (docs.length === 0) return;
      try {
        await this.store.put(docs);
      } catch (err) {
        this.opts.onError?.(err, docs.length);
      }
    });
    this.writing = write;
    return write;
  }

  /** A recalled (or server-deleted) message leaves every user's results. */
  async removeMessage(conv: string, seq: number): Promise<void> {
    await this.flush();
    await this.opts.syncIndex?.();
    await this.store.remove(conv, seq);
  }

  /** An edited message is found by its new text only. */
  async updateMessageText(conv: string, seq: number, kind: string, body: unknown): Promise<void> {
    await this.flush();
    await this.opts.syncIndex?.();
    await this.store.updateText(conv, seq, searchableText(kind, body));
  }

  /** Catch the deferred indexer up, waiting at most syncWaitMs; failures are reported, not thrown. */
  private async synced(): Promise<void> {
    const sync = this.opts.syncIndex;
    if (!sync) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      await Promise.race([sync(), new Promise<void>((r) => (timer = setTimeout(r, this.opts.syncWaitMs ?? 2000)))]);
    } catch (err) {
      this.opts.onSyncError?.(err);
    } finally {
      clearTimeout(timer);
    }
  }

  /** A message the user deleted for themselves leaves their results (others still find it). */
  async hideForUser(userId: string, conv: string, seq: number): Promise<void> {
    await this.flush();
    await this.store.hide(userId, conv, seq);
  }

  /** One page of the user's matches, newest first. Throws `invalid` for an empty or oversized query or a bad cursor. */
  async search(userId: string, input: SearchInput): Promise<SearchPage> {
    const max = this.opts.maxQueryChars ?? 200;
    if ([...input.query].length > max) throw new MagpieError('invalid', `query longer than ${max} characters`);
    const terms = queryTerms(input.query);
    if (terms.length === 0) throw new MagpieError('invalid', 'empty query');
    if (input.before !== undefined && !isCursor(input.before)) throw new MagpieError('invalid', 'bad cursor');
    if (input.from !== undefined && input.to !== undefined && input.from >= input.to) throw new MagpieError('invalid', '`from` must be before `to`');
    await this.synced();
    return this.store.search({
      userId,
      terms,
      limit: input.limit ?? 20,
      ...(input.conv !== undefined && { conv: input.conv }),
      ...(input.sender !== undefined && { sender: input.sender }),
      ...(input.kind !== undefined && { kind: input.kind }),
      ...(input.from !== undefined && { from: input.from }),
      ...(input.to !== undefined && { to: input.to }),
      ...(input.before !== undefined && { before: input.before }),
    });
  }
}
