/**
 * Group commit: requests submitted in the same event-loop turn (or within `delayMs`; or, with
 * `sameTurn`, in the same run of callbacks and promise continuations) are
 * written by one call of `write`, so one durable commit covers many messages. One write
 * runs at a time; what arrives meanwhile forms the next batch. When a batch fails, its
 * requests are retried one by one so a single bad request cannot fail its neighbours.
 */
export class GroupCommitter<Req, Res> {
  private pending: Pending<Req, Res>[] = [];
  private scheduled = false;
  private running = false;

  constructor(
    private readonly write: (batch: Req[]) => Promise<Res[]>,
    /**
     * `whole(err)`: a failure that is not any one request's fault (e.g. the database is unavailable) fails the batch without retrying one by one.
     * `sameTurn` (with delayMs 0): the batch is written as soon as the current callback and its
     * promise continuations are done (process.nextTick) instead of in the next check phase
     * (setImmediate): requests that became ready together (say, the callers of one batched
     * read) still form one batch, and their answers leave in the same event-loop turn.
     */
    private readonly opts: { delayMs: number; maxBatch: number; whole?: (err: unknown) => boolean; sameTurn?: boolean },
  ) {}

  submit(req: Req): Promise<Res> {
    return new Promise<Res>((resolve, reject) => {
      this.pending.push({ req, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled || this.running) return;
    this.scheduled = true;
    if (this.opts.delayMs > 0) setTimeout(() => void this.drain(), this.opts.delayMs);
    else if (this.opts.sameTurn) process.nextTick(() => void this.drain());
    else setImmediate(() => void this.drain());
  }

  /**
   * One write at a time. When a batch is written, what arrived meanwhile is handed to `write`
   * before the written batch's callers are answered: their continuations (fan-out, replies)
   * then run on the event loop while the store writes the next batch (on SQLite, on its
   * writer thread). Batch N+1 still starts only after batch N was written, so commit order is
   * submit order; after a failed batch, its one-by-one retries finish before the next batch starts.
   */
  private async drain(): Promise<void> {
    this.scheduled = false;
    this.running = true;
    try {
      let writing = this.takeNext();
      while (writing) {
        const done = await writing;
        if (done.ok) {
          writing = this.takeNext();
          done.batch.forEach((b, i) => b.resolve(done.results[i]!));
        } else {
          await this.retry(done.batch, done.err);
          writing = this.takeNext();
        }
      }
    } finally {
      this.running = false;
    }
  }

  /** Start writing the next batch of pending requests; null when none is pending. */
  private takeNext(): Promise<Written<Req, Res>> | null {
    if (this.pending.length === 0) return null;
    const batch = this.pending.splice(0, this.opts.maxBatch);
    let out: Promise<Res[]>;
    try {
      out = this.write(batch.map((b) => b.req));
    } catch (err) {
      out = Promise.reject(err);
    }
    return out.then(
      (results) => ({ ok: true as const, batch, results }),
      (err: unknown) => ({ ok: false as const, batch, err }),
    );
  }

  /** A failed batch: one by one, so a single bad request cannot fail its neighbours (unless `whole`). */
  private async retry(batch: Pending<Req, Res>[], err: unknown): Promise<void> {
    if (batch.length === 1 || this.opts.whole?.(err)) {
      for (const b of batch) b.reject(err);
      return;
    }
    for (const b of batch) {
      try {
        const [result] = await this.write([b.req]);
        b.resolve(result!);
      } catch (e) {
        b.reject(e);
      }
    }
  }
}

interface Pending<Req, Res> {
  req: Req;
  resolve: (r: Res) => void;
  reject: (e: unknown) => void;
}

type Written<Req, Res> = { ok: true; batch: Pending<Req, Res>[]; results: Res[] } | { ok: false; batch: Pending<Req, Res>[]; err: unknown };
