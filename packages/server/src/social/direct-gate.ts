import { MagpieError } from '@magpie/protocol';
import type { DirectPass } from '../services/message-service.ts';
import type { DirectCheck } from './social-store.ts';

/** Bound on the cached pairs (~100 bytes each: a Map entry under the lower user id, and one per such user). */
export const DIRECT_CACHE_CAP = 100_000;

/** Cached relation of a pair (lo, hi) = its two user ids in string order, as bits. */
const LO_BLOCKS_HI = 1;
const HI_BLOCKS_LO = 2;
const FRIENDS = 4;

const pairKey = (a: string, b: string): string => (a < b ? `${a}\u0000${b}` : `${b}\u0000${a}`);

/**
 * The direct-message policy (blocks either way; under `friends_only`, friendship) with the
 * relation of recently seen pairs in memory, kept exactly correct against this node's own
 * relation changes:
 *
 * - A check answers from the cache when it can (synchronously, no read), else reads
 *   `SocialStore.directCheck` and caches the answer — unless a relation change began while
 *   it read.
 * - Every relation change runs through `change()`: it marks its pair as changing (checks of
 *   that pair wait for it), starts a new epoch, and waits until every send that passed a
 *   check in an earlier epoch and was handed to the committer has committed (or failed).
 *   Only then does its own transaction run; afterwards the pair's cache entry is dropped.
 * - A send holds its pass right before it is handed to the committer (`DirectPass.hold`, in
 *   the same synchronous step): a pass from an earlier epoch is refused there and the send
 *   checks again (waiting for a change of its pair to finish).
 *
 * So, on this node, an append either commits before a block's transaction begins or is
 * checked against the blocked state: a block (or unfriend, under `friends_only`) committed
 * before a send is appended refuses that send — the same holds for the reads themselves,
 * which a send could otherwise use after a change committed. A change waits for at most the
 * sends already in the committer (one group commit). The cache is used only on a single
 * node (in-process Bus): a change made through another node of a cluster is not seen here,
 * so there every check reads (`cache: false`), as before.
 */
export class DirectGate {
  private epoch = 0;
  /** Holds (sends in the committer) of the current epoch. */
  private current = 0;
  /** Holds of earlier epochs still in the committer, by epoch (insertion order = epoch order). */
  private readonly older = new Map<number, number>();
  /** Changes waiting for every hold of an epoch below `epoch` to settle. */
  private drainWaiters: { epoch: number; resolve: () => void }[] = [];
  /** Pairs with a change in progress: settles when it is over. */
  private readonly changing = new Map<string, Promise<void>>();
  /** Relation bits by the pair's lower user id, then the higher one (no key string built per check). */
  private cache = new Map<string, Map<string, number>>();
  private cached = 0;
  /** The pass of the current epoch (one object per epoch, not per send). */
  private pass: DirectPass;

  constructor(
    private readonly read: (sender: string, recipient: string) => Promise<DirectCheck>,
    private readonly opts: { friendsOnly: boolean; cache: boolean; cap?: number },
  ) {
    this.pass = this.passOf(0);
  }

  /** Cached pairs (tests, metrics). */
  get cachedPairs(): number {
    return this.cached;
  }

  /**
   * The policy for MessagingService.addDirectPolicy: a pass, synchronously when the pair's
   * relation is cached; throws (or rejects with) MagpieError('forbidden') to refuse.
   */
  check(sender: string, recipient: string): DirectPass | Promise<DirectPass> {
    if (this.changing.size > 0) {
      const busy = this.changing.get(pairKey(sender, recipient));
      if (busy) return busy.then(() => this.check(sender, recipient));
    }
    const pass = this.pass;
    const lo = sender < recipient;
    const a = lo ? sender : recipient;
    const b = lo ? recipient : sender;
    const cached = this.opts.cache ? this.cache.get(a)?.get(b) : undefined;
    if (cached !== undefined) {
      this.decide(cached, lo);
      return pass;
    }
    const epoch = this.epoch;
    return this.read(sender, recipient).then((c) => {
      const bits = (c.blockedByRecipient ? (lo ? HI_BLOCKS_LO : LO_BLOCKS_HI) : 0) | (c.blockedBySender ? (lo ? LO_BLOCKS_HI : HI_BLOCKS_LO) : 0) | (c.friends ? FRIENDS : 0);
      // A read that overlapped a change may predate it: used once (its pass is stale by now), never cached.
      if (this.opts.cache && this.epoch === epoch) this.remember(a, b, bits);
      this.decide(bits, lo);
      return pass;
    });
  }

  /**
   * Run a relation change of the pair (a, b) (`fn`: its transaction) so that no send of
   * that pair checked before it is appended after it commits (see the class comment).
   */
  async change<T>(a: string, b: string, fn: () => Promise<T>): Promise<T> {
    const key = pairKey(a, b);
    // One change of a pair at a time (the store serializes them anyway).
    for (let busy = this.changing.get(key); busy; busy = this.changing.get(key)) await busy;
    let done!: () => void;
    this.changing.set(
      key,
      new Promise<void>((r) => (done = r)),
    );
    this.nextEpoch();
    try {
      await this.drained(this.epoch);
      return await fn();
    } finally {
      this.forget(a, b);
      this.changing.delete(key);
      done();
    }
  }

  private decide(bits: number, senderIsLo: boolean): void {
    const byRecipient = senderIsLo ? HI_BLOCKS_LO : LO_BLOCKS_HI;
    if (bits & byRecipient) throw new MagpieError('forbidden', 'this user does not accept your messages');
    if (bits & (LO_BLOCKS_HI | HI_BLOCKS_LO)) throw new MagpieError('forbidden', 'you blocked this user; unblock to send messages');
    if (this.opts.friendsOnly && !(bits & FRIENDS)) throw new MagpieError('forbidden', 'only friends can send each other messages on this server');
  }

  /** Cache a pair (a < b); a full cache starts over (the pairs in use come back with one read each). */
  private remember(a: string, b: string, bits: number): void {
    if (this.cached >= (this.opts.cap ?? DIRECT_CACHE_CAP)) {
      this.cache = new Map();
      this.cached = 0;
    }
    let row = this.cache.get(a);
    if (!row) this.cache.set(a, (row = new Map()));
    if (!row.has(b)) this.cached++;
    row.set(b, bits);
  }

  private forget(x: string, y: string): void {
    const [a, b] = x < y ? [x, y] : [y, x];
    const row = this.cache.get(a);
    if (!row?.delete(b)) return;
    this.cached--;
    if (row.size === 0) this.cache.delete(a);
  }

  private nextEpoch(): void {
    if (this.current > 0) this.older.set(this.epoch, this.current);
    this.current = 0;
    this.epoch++;
    this.pass = this.passOf(this.epoch);
  }

  private passOf(epoch: number): DirectPass {
    const release = (): void => {
      if (epoch === this.epoch) {
        this.current--;
        return;
      }
      const n = this.older.get(epoch)! - 1;
      if (n > 0) {
        this.older.set(epoch, n);
        return;
      }
      this.older.delete(epoch);
      this.wake();
    };
    return {
      hold: () => {
        if (epoch !== this.epoch) return null;
        this.current++;
        return release;
      },
    };
  }

  /** Resolves once no hold of an epoch below `epoch` is left. */
  private drained(epoch: number): Promise<void> {
    if (this.oldestHeld() >= epoch) return Promise.resolve();
    return new Promise<void>((resolve) => this.drainWaiters.push({ epoch, resolve }));
  }

  private oldestHeld(): number {
    for (const e of this.older.keys()) return e;
    return this.current > 0 ? this.epoch : Number.POSITIVE_INFINITY;
  }

  private wake(): void {
    if (this.drainWaiters.length === 0) return;
    const oldest = this.oldestHeld();
    const still: typeof this.drainWaiters = [];
    for (const w of this.drainWaiters) {
      if (oldest >= w.epoch) w.resolve();
      else still.push(w);
    }
    this.drainWaiters = still;
  }
}
