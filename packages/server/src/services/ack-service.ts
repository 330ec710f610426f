import type { Bus } from '../bus/bus.ts';
import type { Metrics } from '../metrics.ts';
import type { AckSegment, DeliveredCount, DeviceAck, Store } from '../store/store.ts';

/** Segments kept per device and flush (beyond, the rest is not raised: under-reporting, never over). */
const MAX_SEGMENTS = 1000;

/**
 * Cumulative device ACKs. ACKs are coalesced per device and written in one transaction
 * per flush; the first device of a recipient to store a message moves the sender's
 * "delivered" mark, and the sender's devices get a `delivered` frame. In normal groups each
 * recipient's first ACK of a message raises its delivered count; the sender's devices get
 * one `delivered.counts` frame per conversation and flush with the latest counts.
 */
export class AckService {
  private pending = new Map<string, DeviceAck>();
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();
  /** A write is queued behind the one in progress and has not taken the pending ACKs yet. */
  private waiting = false;
  /** When the last timed write started (performance.now()). */
  private lastStart = -Infinity;

  /**
   * `minIntervalMs` (0 = off): a timed write starts at least this long after the previous one
   * started — flushMs after the first ACK when the node has not written for that long, later
   * (coalescing more ACKs into it) when it has. Explicit flush() calls (shutdown) do not wait.
   */
  constructor(
    private readonly store: Store,
    private readonly bus: Bus,
    private readonly metrics: Metrics,
    private readonly flushMs = 20,
    private readonly minIntervalMs = 0,
  ) {}

  /**
   * A device's cumulative ACK. `segments` say what it raises in delivered state (what the
   * device was given, see gateway/obtained.ts); without them, everything up to `inboxSeq`.
   */
  ack(userId: string, deviceId: string, inboxSeq: number, segments?: AckSegment[]): void {
    this.metrics.acks.inc();
    const key = `${userId}\u0000${deviceId}`;
    const prev = this.pending.get(key);
    const own = segments ?? [{ from: 0, to: inboxSeq }];
    const merged = prev ? [...(prev.segments ?? [{ from: 0, to: prev.inboxSeq }]), ...own].sort((x, y) => x.from - y.from) : own;
    this.pending.set(key, { userId, deviceId, inboxSeq: Math.max(prev?.inboxSeq ?? 0, inboxSeq), segments: merged.length > MAX_SEGMENTS ? merged.slice(0, MAX_SEGMENTS) : merged });
    this.timer ??= setTimeout(() => void this.flush(), this.minIntervalMs > 0 ? Math.max(this.flushMs, this.lastStart + this.minIntervalMs - performance.now()) : this.flushMs);
  }

  /**
   * Write what is pending; resolves when written. One write at a time: a flush asked for while
   * the previous one is still being written waits for it and then takes **everything pending at
   * that moment**, not what was pending when it was asked for — ACKs that arrive meanwhile go in
   * the same write instead of one write each (issue 23: an ACK flush of a 500-member group costs
   * the writer ~5 ms whatever it covers, most of it per member; while appends keep the writer
   * busy, the flushes behind them merge instead of queueing). With an idle writer nothing
   * changes: the write starts at once, flushMs after the first ACK.
   */
  async flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.pending.size === 0 || this.waiting) return this.flushing;
    this.waiting = true;
    this.flushing = this.flushing.then(async () => {
      this.waiting = false;
      this.lastStart = performance.now();
      const acks = [...this.pending.values()];
      this.pending = new Map();
      if (acks.length === 0) return;
      const { delivered, counts } = await this.store.recordAcks(acks);
      for (const u of delivered) {
        this.bus.publish({ type: 'deliver', userId: u.sender, frame: JSON.stringify({ type: 'delivered', conv: u.conv, seq: u.seq, by: u.by }) });
      }
      if (counts.length > 0) this.publishCounts(counts);
    }).catch(() => {
      // ACK marks are advisory: a failed write is repaired by the next cumulative ACK.
    });
    return this.flushing;
  }

  /**
   * Group delivered counts of one flush: per sender and conversation one `delivered.counts`
   * frame (split every COUNTS_PER_FRAME messages) with the latest count of each message.
   */
  private publishCounts(counts: DeliveredCount[]): void {
    const bySenderConv = new Map<string, { sender: string; conv: string; seqs: Map<number, number> }>();
    for (const c of counts) {
      const key = `${c.sender}\u0000${c.conv}`;
      let g = bySenderConv.get(key);
      if (!g) bySenderConv.set(key, (g = { sender: c.sender, conv: c.conv, seqs: new Map() }));
      if ((g.seqs.get(c.seq) ?? 0) < c.count) g.seqs.set(c.seq, c.count);
    }
    for (const g of bySenderConv.values()) {
      const pairs = [...g.seqs].sort((x, y) => x[0] - y[0]);
      for (let i = 0; i < pairs.length; i += COUNTS_PER_FRAME) {
        const frame = JSON.stringify({ type: 'delivered.counts', conv: g.conv, counts: pairs.slice(i, i + COUNTS_PER_FRAME) });
        this.bus.publish({ type: 'deliver', userId: g.sender, frame });
      }
    }
  }
}

/** Seq → count pairs per `delivered.counts` frame (about 10 KiB at most). */
export const COUNTS_PER_FRAME = 500;
