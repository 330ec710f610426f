import type { Bus, NodeLink } from '../bus/bus.ts';
import type { Metrics } from '../metrics.ts';
import type { AckSegment, DeliveredCount, DeviceAck, Store } from '../store/store.ts';

/** Segments kept per device and flush (beyond, the rest is not raised: under-reporting, never over). */
const MAX_SEGMENTS = 1000;

/** NodeLink topic of forwarded ACKs (AckService.route). */
const ACK_TOPIC = 'acks';

/** ACKs coalesced per device, written (or forwarded) together. */
class Batch {
  readonly acks = new Map<string, DeviceAck>();
  /** This node's devices whose route this batch holds (released when it settles). */
  readonly routed: string[] = [];
  private settled = false;
  private waiters: (() => void)[] | undefined;
  /** Resolves once the batch was written (or failed to be: ACK marks are advisory). */
  done(): Promise<void> {
    if (this.settled) return Promise.resolve();
    return new Promise((r) => (this.waiters ??= []).push(r));
  }
  settle(): void {
    this.settled = true;
    if (this.waiters) for (const w of this.waiters.splice(0)) w();
  }
  /** Merge a device's cumulative ACK; true when the device had none in this batch yet. */
  add(key: string, userId: string, deviceId: string, inboxSeq: number, own: AckSegment[]): boolean {
    const prev = this.acks.get(key);
    const merged = prev ? [...(prev.segments ?? [{ from: 0, to: prev.inboxSeq }]), ...own].sort((x, y) => x.from - y.from) : own;
    this.acks.set(key, { userId, deviceId, inboxSeq: Math.max(prev?.inboxSeq ?? 0, inboxSeq), segments: merged.length > MAX_SEGMENTS ? merged.slice(0, MAX_SEGMENTS) : merged });
    return prev === undefined;
  }
}

/** ACKs of this node's devices on their way to another node (AckService.route). */
interface Outbox {
  batch: Batch;
  timer: NodeJS.Timeout | undefined;
  sending: Promise<void>;
  waiting: boolean;
}

/**
 * Cumulative device ACKs. ACKs are coalesced per device and written in one transaction
 * per flush; the first device of a recipient to store a message moves the sender's
 * "delivered" mark, and the sender's devices get a `delivered` frame. In normal groups each
 * recipient's first ACK of a message raises its delivered count; the sender's devices get
 * one `delivered.counts` frame per conversation and flush with the latest counts.
 *
 * In a cluster (`route`), the ACK of a message that reached this node in another node's
 * batched fan-out (a normal group's post, appended by its owner: the deliver event's `via`)
 * is forwarded to that node, which writes it with its own devices' ACKs of the same message:
 * one ACK transaction and one `delivered.counts` frame per message cluster-wide instead of
 * one per node (issue 15). A device's ACKs keep their order: while some of them are queued or
 * in flight, its next ones go the same way. A forward that fails (node gone, no answer) is
 * written here.
 */
export class AckService {
  private pending = new Batch();
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();
  /** A write is queued behind the one in progress and has not taken the pending ACKs yet. */
  private waiting = false;
  /** When the last timed write started (performance.now()). */
  private lastStart = -Infinity;
  private link: NodeLink | undefined;
  /** Per device of this node with ACKs queued or in flight: where they go ('' = written here) and how many batches hold them. */
  private readonly routes = new Map<string, { node: string; open: number }>();
  private readonly out = new Map<string, Outbox>();
  private forwardMs = 5;
  private forwardTimeoutMs = 5000;

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
   * Cluster: forward ACKs to the node whose fan-out delivered the message (`ack`'s `via`),
   * after `forwardMs` of coalescing, and write the ACKs other nodes forward here with this
   * node's own. Call before NodeLink.join.
   */
  route(link: NodeLink, opts: { forwardMs?: number; timeoutMs?: number } = {}): void {
    this.link = link;
    if (opts.forwardMs !== undefined) this.forwardMs = opts.forwardMs;
    if (opts.timeoutMs !== undefined) this.forwardTimeoutMs = opts.timeoutMs;
    link.serve(ACK_TOPIC, (payload) => this.serveForward(payload));
  }

  /**
   * A device's cumulative ACK. `segments` say what it raises in delivered state (what the
   * device was given, see gateway/obtained.ts); without them, everything up to `inboxSeq`.
   * `via`: the node whose fan-out delivered the device's latest message (a hint: see `route`).
   */
  ack(userId: string, deviceId: string, inboxSeq: number, segments?: AckSegment[], via?: string): void {
    this.metrics.acks.inc();
    const key = `${userId}\u0000${deviceId}`;
    const own = segments ?? [{ from: 0, to: inboxSeq }];
    const link = this.link;
    if (!link) {
      this.pending.add(key, userId, deviceId, inboxSeq, own);
      this.arm();
      return;
    }
    let route = this.routes.get(key);
    if (!route) this.routes.set(key, (route = { node: via !== undefined && via !== link.self ? via : '', open: 0 }));
    if (route.node === '') {
      if (this.pending.add(key, userId, deviceId, inboxSeq, own)) {
        route.open++;
        this.pending.routed.push(key);
      } else if (route.open === 0) this.routes.delete(key); // merged into a forwarded one: written in this node's order anyway
      this.arm();
      return;
    }
    let ob = this.out.get(route.node);
    if (!ob) this.out.set(route.node, (ob = { batch: new Batch(), timer: undefined, sending: Promise.resolve(), waiting: false }));
    if (ob.batch.add(key, userId, deviceId, inboxSeq, own)) {
      route.open++;
      ob.batch.routed.push(key);
    }
    if (!ob.timer) {
      const node = route.node;
      const box = ob;
      ob.timer = setTimeout(() => void this.forward(node, box), this.forwardMs);
    }
  }

  /**
   * Write what is pending, and what waits to be forwarded; resolves when written. One write at
   * a time: a flush asked for while the previous one is still being written waits for it and
   * then takes **everything pending at that moment**, not what was pending when it was asked
   * for — ACKs that arrive meanwhile go in the same write instead of one write each (issue 23:
   * while appends keep the writer busy, the flushes behind them merge instead of queueing; an
   * ACK flush of a 500-member group costs the SQLite writer ~2 ms plus ~1 ms per message it
   * covers, so merging saves the fixed part, not the per-message one). With an idle writer
   * nothing changes: the write starts at once, flushMs after the first ACK.
   */
  async flush(): Promise<void> {
    if (this.out.size === 0) return this.flushLocal();
    await Promise.all([this.flushLocal(), ...[...this.out].map(([node, ob]) => this.forward(node, ob))]);
  }

  private arm(): void {
    this.timer ??= setTimeout(() => void this.flushLocal(), this.minIntervalMs > 0 ? Math.max(this.flushMs, this.lastStart + this.minIntervalMs - performance.now()) : this.flushMs);
  }

  private flushLocal(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.pending.acks.size === 0 || this.waiting) return this.flushing;
    this.waiting = true;
    this.flushing = this.flushing.then(async () => {
      this.waiting = false;
      this.lastStart = performance.now();
      const batch = this.pending;
      this.pending = new Batch();
      if (batch.acks.size > 0) await this.write([...batch.acks.values()]);
      this.release(batch);
    });
    return this.flushing;
  }

  /** Send what waits for `node` (one request at a time per node, each taking everything queued when it starts). */
  private forward(node: string, ob: Outbox): Promise<void> {
    clearTimeout(ob.timer);
    ob.timer = undefined;
    if (ob.batch.acks.size === 0 || ob.waiting) return ob.sending;
    ob.waiting = true;
    ob.sending = ob.sending.then(async () => {
      ob.waiting = false;
      const batch = ob.batch;
      ob.batch = new Batch();
      if (batch.acks.size === 0) return;
      const acks = [...batch.acks.values()];
      try {
        await this.link!.request(node, ACK_TOPIC, JSON.stringify(acks), this.forwardTimeoutMs);
        this.metrics.ackRoutes?.inc({ route: 'forwarded' }, acks.length);
      } catch {
        // Gone, draining or silent: written here, before this device's later ACKs (queued behind this one).
        this.metrics.ackRoutes?.inc({ route: 'written_here' }, acks.length);
        await this.write(acks);
      }
      this.release(batch);
      if (ob.batch.acks.size === 0 && !ob.waiting && !ob.timer && this.out.get(node) === ob) this.out.delete(node);
    });
    return ob.sending;
  }

  /** Another node's ACKs: written with this node's next write; answered once that write settled. */
  private serveForward(payload: string): Promise<string> {
    const acks = JSON.parse(payload) as DeviceAck[];
    this.metrics.ackRoutes?.inc({ route: 'served' }, acks.length);
    const batch = this.pending;
    for (const a of acks) batch.add(`${a.userId}\u0000${a.deviceId}`, a.userId, a.deviceId, a.inboxSeq, a.segments ?? [{ from: 0, to: a.inboxSeq }]);
    this.arm();
    return batch.done().then(() => '1');
  }

  /** Batch settled: its devices' ACKs may take another route once none of theirs is queued or in flight. */
  private release(batch: Batch): void {
    for (const key of batch.routed) {
      const r = this.routes.get(key);
      if (r && --r.open <= 0) this.routes.delete(key);
    }
    batch.settle();
  }

  private async write(acks: DeviceAck[]): Promise<void> {
    try {
      const { delivered, counts } = await this.store.recordAcks(acks);
      for (const u of delivered) {
        this.bus.publish({ type: 'deliver', userId: u.sender, frame: JSON.stringify({ type: 'delivered', conv: u.conv, seq: u.seq, by: u.by }) });
      }
      if (counts.length > 0) this.publishCounts(counts);
    } catch {
      // ACK marks are advisory: a failed write is repaired by the next cumulative ACK.
    }
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
