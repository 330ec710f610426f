/**
 * What one connection's device was actually given of its inbox, so its ACKs make messages
 * delivered (receipts, group delivered counts) only where it obtained them: the position it
 * presented in `hello` (unless the server answered `full`), live `msg` frames and `sync`
 * pages. An ACK still moves the device's own cursor all the way.
 *
 * `ackSegments` turns a cumulative ACK into segments for the store: for each run of inbox
 * items the device was given, "move the delivered mark over anything before `from` without
 * raising it, then raise up to `to`". Items never given (a full sync's gap, a live frame the
 * device skipped) are passed over and never become delivered through this device.
 */
export interface AckSegment {
  /** The mark may skip up to here, raising nothing. */
  from: number;
  /** Raise delivered state up to here. */
  to: number;
}

export class ObtainedTracker {
  /** Inbox items up to here were skipped by a full sync: never given on this connection. */
  private floor = 0;
  /** Given items above `floor`, as disjoint ascending (lo, hi] ranges. */
  private given: [number, number][] = [];

  static readonly MAX_RANGES = 1000;

  /**
   * After hello: the device presented `presented`; `fullTo` is the server's latest when it
   * answered `full` (the device skips everything up to it). Returns the skip segment to
   * record at once for a full sync.
   */
  start(presented: number, fullTo?: number): AckSegment | null {
    if (fullTo !== undefined) {
      this.floor = Math.max(this.floor, fullTo);
      this.prune();
      return { from: fullTo, to: fullTo };
    }
    this.add(0, presented);
    return null;
  }

  /** One inbox item went to the device (a live `msg`). */
  gave(inboxSeq: number): void {
    this.add(inboxSeq - 1, inboxSeq);
  }

  /** Every inbox item in (after, last] went to the device (a `sync` page). */
  gaveRange(after: number, last: number): void {
    this.add(after, last);
  }

  /**
   * The segments a cumulative ACK of `upTo` raises delivered state for (possibly none). A
   * run starting above the mark lets the mark skip the items before it: they were not given
   * when the device said it held everything up to `upTo` (a sync page that brings them later
   * does not raise them — under-reporting, never over).
   */
  ackSegments(upTo: number): AckSegment[] {
    const out: AckSegment[] = [];
    const given = this.given;
    // The ranges ascend and are disjoint: those ended by the ACK are a prefix. Dropped in
    // place (usually all of them: no new array per ACK).
    let ended = 0;
    for (let i = 0; i < given.length; i++) {
      const r = given[i]!;
      if (r[0] >= upTo) break;
      out.push({ from: r[0], to: Math.min(r[1], upTo) });
      if (r[1] <= upTo) ended = i + 1;
    }
    if (ended === given.length) given.length = 0;
    else if (ended > 0) given.splice(0, ended);
    return out;
  }

  private add(lo: number, hi: number): void {
    lo = Math.max(lo, this.floor);
    if (hi <= lo) return;
    // Fast paths (live frames arrive in order): the run extends the last range, or starts after it.
    const last = this.given.at(-1);
    if (last && lo >= last[0]) {
      if (lo <= last[1]) {
        if (hi > last[1]) last[1] = hi;
        return;
      }
      if (this.given.length < ObtainedTracker.MAX_RANGES) this.given.push([lo, hi]);
      return;
    }
    const merged: [number, number][] = [];
    let cur: [number, number] = [lo, hi];
    let placed = false;
    for (const r of this.given) {
      if (r[1] < cur[0]) merged.push(r);
      else if (r[0] > cur[1]) {
        if (!placed) merged.push(cur), (placed = true);
        merged.push(r);
      } else cur = [Math.min(r[0], cur[0]), Math.max(r[1], cur[1])];
    }
    if (!placed) merged.push(cur);
    // Bounded: beyond the cap the newest ranges are forgotten (under-reporting, never over).
    this.given = merged.slice(0, ObtainedTracker.MAX_RANGES);
  }

  private prune(): void {
    this.given = this.given.filter((r) => r[1] > this.floor);
  }
}
