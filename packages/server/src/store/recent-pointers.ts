/**
 * SQLite (issue 23): the inbox pointers this store's appends committed last, per user, so an ACK
 * flush can count what an acknowledged range covers without reading the pointers back from
 * `inbox` (LITE.covered in store/ack-writer.ts read ~2 µs per pointer, each member's in its own
 * leaf page: a normal 500-member group's flush read ~3 000 of them).
 *
 * Exactness: a user's inboxSeqs are gap-free and never reused (users.inbox_seq only grows, one
 * writer), so a pointer (user, inboxSeq) this store committed is the row in `inbox` unless it was
 * deleted since. Pointers are deleted only by the ring trim (seqs ≤ the user's inbox_seq − ring
 * capacity) and by a retention purge (which raises the user's inbox_purge mark to the highest
 * inboxSeq it removed); the flush uses what is held here only for a range above both
 * (writeAcksSqlite), and only when every inboxSeq of the range is held (a run of consecutive
 * seqs per user, restarted on any gap). Recorded only after the append's COMMIT succeeded; a
 * restart starts empty (the flush then reads `inbox`, as before).
 *
 * Bounded: the last PER_USER pointers of at most MAX_USERS users (the oldest-recorded user is
 * dropped first): ~13 MB at most (measured: 8 192 users × 64 pointers, their ids included).
 */
export const RECENT_PER_USER = 64;
export const RECENT_MAX_USERS = 8_192;

/** An inbox pointer row as the SQLite append writes it: [user, inboxSeq, conv, seq, mine (1: the user's own message)]. */
export type PointerRow = [string, number, string, number, number];

class UserPointers {
  /** The inboxSeq of the oldest pointer held; the held ones are first … first + count − 1. */
  first = 0;
  count = 0;
  readonly convs: string[];
  readonly seqs: Float64Array;
  readonly mine: Uint8Array;

  constructor(readonly cap: number) {
    this.convs = new Array<string>(cap).fill('');
    this.seqs = new Float64Array(cap);
    this.mine = new Uint8Array(cap);
  }

  add(inboxSeq: number, conv: string, seq: number, mine: number): void {
    if (this.count === 0 || inboxSeq !== this.first + this.count) {
      // The first, or not the next one (a gap: pointers committed elsewhere, or a restart): start over.
      this.first = inboxSeq;
      this.count = 0;
    }
    const i = inboxSeq % this.cap;
    this.convs[i] = conv;
    this.seqs[i] = seq;
    this.mine[i] = mine;
    if (this.count < this.cap) this.count++;
    else this.first++;
  }
}

export class RecentPointers {
  private readonly users = new Map<string, UserPointers>();

  constructor(
    readonly perUser = RECENT_PER_USER,
    readonly maxUsers = RECENT_MAX_USERS,
  ) {}

  /** Pointers of a committed append, each user's in ascending inboxSeq. */
  record(rows: readonly PointerRow[]): void {
    let last: string | null = null;
    let u: UserPointers | undefined;
    for (const [user, inboxSeq, conv, seq, mine] of rows) {
      if (user !== last) {
        last = user;
        u = this.users.get(user);
        if (!u) {
          if (this.users.size >= this.maxUsers) this.users.delete(this.users.keys().next().value!);
          this.users.set(user, (u = new UserPointers(this.perUser)));
        }
      }
      u!.add(inboxSeq, conv, seq, mine);
    }
  }

  /**
   * Every pointer of `user` in (from, upTo] that is not to the user's own message, through `fn`
   * (in inboxSeq order) — or false, calling nothing, when not all of the range is held.
   */
  each(user: string, from: number, upTo: number, fn: (conv: string, seq: number) => void): boolean {
    const u = this.users.get(user);
    if (!u || u.count === 0 || from + 1 < u.first || upTo > u.first + u.count - 1) return false;
    for (let s = from + 1; s <= upTo; s++) {
      const i = s % u.cap;
      if (u.mine[i] === 0) fn(u.convs[i]!, u.seqs[i]!);
    }
    return true;
  }

  /** Users held (tests). */
  get size(): number {
    return this.users.size;
  }

  clear(): void {
    this.users.clear();
  }
}
