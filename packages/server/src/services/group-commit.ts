/**
 * Group commit: requests submitted in the same event-loop turn (or within `delayMs`; or, with
 * `sameTurn`, in the same run of callbacks and promise continuations) are
 * written by one call of `write`, so one durable commit covers many messages. One write
 * runs at a time; what arrives meanwhile forms the next batch. When a batch fails, its
 * requests are retried one by one so a single bad request cannot fail its neighbours.
 */
type Entry<Req, Res> = { req: Req; resolve: (r: Res) => void; reject: (e: unknown) => void };

type Written<Res> = { ok: true; results: Res[] } | { ok: false; err: unknown };

export class GroupCommitter<Req, Res> {
  private pending: Entry<Req, Res>[] = [];
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
     * `overlap`: `write` runs off the event loop (a writer thread; it returns at its first
     * await): when a batch was written and requests wait, the next batch is handed to `write`
     * before the written batch's callers resume, so the writer commits it while the event loop
     * answers and fans out the previous one (instead of idling until they are done). Only after
     * a batch succeeded: a failed batch is retried one by one before anything after it is
     * written, so commit order stays submit order.
     * `gather` (with overlap, a multiple; may exceed 1): the next batch goes at once only when
     * at least gather × the written batch's size waits, or a full batch (maxBatch) does; a smaller one is cut at the end of this
     * event-loop turn instead (setImmediate, after the written batch's callers ran and the
     * turn's sockets were read), so it takes in what arrived meanwhile. Each commit has a
     * fixed cost (its fsync, a WAL page per conversation and per user it touches), and under a
     * steady load handing the writer a trickle the moment it is free halves the batches
     * (twice the commits) against a loop that commits between its turns.
     */
    private readonly opts: { delayMs: number; maxBatch: number; whole?: (err: unknown) => boolean; sameTurn?: boolean; overlap?: boolean; gather?: number },
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

  private async drain(): Promise<void> {
    this.scheduled = false;
    this.running = true;
    try {
      let batch = this.pending.splice(0, this.opts.maxBatch);
      let writing = this.attempt(batch);
      for (;;) {
        const done = await writing;
        if (done.ok && this.opts.overlap && this.pending.length > 0 && this.pending.length >= Math.min((this.opts.gather ?? 0) * batch.length, this.opts.maxBatch)) {
          const next = this.pending.splice(0, this.opts.maxBatch);
          writing = this.attempt(next);
          batch.forEach((b, i) => b.resolve(done.results[i]!));
          batch = next;
          continue;
        }
        if (done.ok) {
          batch.forEach((b, i) => b.resolve(done.results[i]!));
          // The callers resume (their first continuation) before the next batch is cut; with
          // overlap, a trickle that waits is cut at the end of the turn (see `gather`).
          if (this.opts.overlap && this.pending.length > 0) await new Promise<void>((r) => setImmediate(r));
          else await undefined;
        } else {
          await this.failed(batch, done.err);
        }
        if (this.pending.length === 0) break;
        batch = this.pending.splice(0, this.opts.maxBatch);
        writing = this.attempt(batch);
      }
    } finally {
      this.running = false;
    }
  }

  /** Starts writing `batch` (synchronously up to the write's first await); never rejects. */
  private attempt(batch: Entry<Req, Res>[]): Promise<Written<Res>> {
    let p: Promise<Res[]>;
    try {
      p = this.write(batch.map((b) => b.req));
    } catch (err) {
      return Promise.resolve({ ok: false, err });
    }
    return p.then(
      (results): Written<Res> => ({ ok: true, results }),
      (err: unknown): Written<Res> => ({ ok: false, err }),
    );
  }

  /** A failed batch: it fails whole (one request, or a failure that is no request's fault), or each request is retried alone. */
  private async failed(batch: Entry<Req, Res>[], err: unknown): Promise<void> {
    if (batch.length === 1 || this.opts.whole?.(err)) {
      for (const b of batch) b.reject(err);
      return;
    }
    for (const b of batch) await this.writeBatch([b]);
  }

  private async writeBatch(batch: Entry<Req, Res>[]): Promise<void> {
    const done = await this.attempt(batch);
    if (done.ok) batch.forEach((b, i) => b.resolve(done.results[i]!));
    else await this.failed(batch, done.err);
  }
}
