/**
 * What one connection's device was actually given of its inbox, so its ACKs can raise
 * delivered state (receipts, group delivered counts) only for messages it obtained: the
 * position it presented in `hello` (unless the server answered `full`), then live `msg`
 * frames and `sync` pages. An ACK beyond that still moves the device's own cursor.
 *
 * After a `full` answer the device skipped the inbox up to `welcome.inboxSeq`: its ACKs
 * move the user's delivered mark over that range (`skipTo`) without raising anything for it.
 */
export class ObtainedTracker {
  /** Everything up to here was obtained (or skipped by a full sync). */
  private upTo = 0;
  /** Given above `upTo`, not yet contiguous (bounded: beyond the cap, the rest is not counted). */
  private readonly above = new Set<number>();
  /** Set after a `full` answer: the inbox range the device skipped ends here. */
  skipTo: number | undefined;

  static readonly CAP = 10_000;

  /** The device presented `inboxSeq` in hello; `full` is the server's latest when it answered full. */
  start(presented: number, full?: number): void {
    this.upTo = Math.max(this.upTo, full ?? presented);
    if (full !== undefined) this.skipTo = full;
    this.advance();
  }

  /** One inbox item went to the device (a live `msg`). */
  gave(inboxSeq: number): void {
    if (inboxSeq <= this.upTo) return;
    if (inboxSeq === this.upTo + 1) {
      this.upTo = inboxSeq;
      this.advance();
    } else if (this.above.size < ObtainedTracker.CAP) {
      this.above.add(inboxSeq);
    }
  }

  /** Every inbox item in (after, last] went to the device (a `sync` page). */
  gaveRange(after: number, last: number): void {
    if (after <= this.upTo && last > this.upTo) {
      this.upTo = last;
      this.advance();
    } else {
      for (let s = Math.max(after, this.upTo) + 1; s <= last && this.above.size < ObtainedTracker.CAP; s++) this.above.add(s);
    }
  }

  /** The highest inboxSeq the device obtained everything up to. */
  get obtained(): number {
    return this.upTo;
  }

  private advance(): void {
    for (const s of this.above) if (s <= this.upTo) this.above.delete(s);
    while (this.above.delete(this.upTo + 1)) this.upTo++;
  }
}
