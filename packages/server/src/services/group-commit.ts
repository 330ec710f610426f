/**
 * Group commit: requests submitted in the same event-loop turn (or within `delayMs`; or, with
 * `sameTurn`, in the same run of callbacks and promise continuations) are
 * written by one call of `write`, so one durable commit covers many messages. One write
 * runs at a time; what arrives meanwhile forms the next batch. When a batch fails, its
 * requests are retried one by one so a single bad request cannot fail its neighbours.
 */
export class GroupCommitter<Req, Res> {
  private pending: { req: Req; resolve: (r: Res) => void; reject: (e: unknown) => void }[] = [];
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

  private async drain(): Promise<void> {
    this.scheduled = false;
    this.running = true;
    try {
      while (this.pending.length > 0) {
        const batch = this.pending.splice(0, this.opts.maxBatch);
        await this.writeBatch(batch);
      }
    } finally {
      this.running = false;
    }
  }

  private async writeBatch(batch: { req: Req; resolve: (r: Res) => void; reject: (e: unknown) => void }[]): Promise<void> {
    try {
      const results = await this.write(batch.map((b) => b.req));
      batch.forEach((b, i) => b.resolve(results[i]!));
    } catch (err) {
      if (batch.length === 1 || this.opts.whole?.(err)) {
        for (const b of batch) b.reject(err);
        return;
      }
      for (const b of batch) await this.writeBatch([b]);
    }
  }
}
