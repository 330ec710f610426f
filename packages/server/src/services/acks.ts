import type { Bus } from '../bus/bus.ts';
import type { Metrics } from '../metrics.ts';
import type { Store } from '../store/store.ts';

/**
 * Cumulative device ACKs. ACKs are coalesced per device and written in one transaction
 * per flush; the first device of a recipient to store a message moves the sender's
 * "delivered" mark, and the sender's devices get a `delivered` frame.
 */
export class AckService {
  private pending = new Map<string, { userId: string; deviceId: string; inboxSeq: number }>();
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();

  constructor(
    private readonly store: Store,
    private readonly bus: Bus,
    private readonly metrics: Metrics,
    private readonly flushMs = 20,
  ) {}

  ack(userId: string, deviceId: string, inboxSeq: number): void {
    this.metrics.acks.inc();
    const key = `${userId}\u0000${deviceId}`;
    const prev = this.pending.get(key);
    if (!prev || prev.inboxSeq < inboxSeq) this.pending.set(key, { userId, deviceId, inboxSeq });
    this.timer ??= setTimeout(() => void this.flush(), this.flushMs);
  }

  /** Write what is pending; resolves when written. */
  async flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    const acks = [...this.pending.values()];
    this.pending = new Map();
    if (acks.length === 0) return this.flushing;
    this.flushing = this.flushing.then(async () => {
      const updates = await this.store.recordAcks(acks);
      for (const u of updates) {
        this.bus.publish({ type: 'deliver', userId: u.sender, frame: JSON.stringify({ type: 'delivered', conv: u.conv, seq: u.seq, by: u.by }) });
      }
    }).catch(() => {
      // ACK marks are advisory: a failed write is repaired by the next cumulative ACK.
    });
    return this.flushing;
  }
}
