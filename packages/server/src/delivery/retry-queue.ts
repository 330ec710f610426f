import type { LoopLag } from '../util/loop-lag.ts';
import type { RetryTiming } from './retry-policy.ts';

/** What the retry queue needs of a device's live connection. */
export interface RetryTarget {
  /** Connected and not known to be dead. */
  isAlive(): boolean;
  send(frame: string): void;
  /**
   * This server holds the connection unread (its requests wait for a slot or for the node's
   * send budget): the device's ACKs may be sitting in our own socket buffers, behind its
   * held sends. A due retry then waits instead of being sent.
   */
  heldUnread?(): boolean;
}

export interface Timers {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const realTimers: Timers = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    t.unref();
    return t;
  },
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

/** Why a tracked delivery ended, for metrics. */
export type DeliveryEnd =
  | { kind: 'acked'; attempts: number; latencyMs: number }
  | { kind: 'pulled'; attempts: number; latencyMs: number }
  | { kind: 'offline'; attempts: number; message: TrackedRef }
  | { kind: 'gave_up'; attempts: number; message: TrackedRef }
  | { kind: 'overflow' };

export interface TrackedRef {
  userId: string;
  deviceId: string;
  inboxSeq: number;
}

export interface RetryQueueOptions {
  /** Tracked deliveries per device; beyond it the oldest is dropped (the client recovers it by sync). */
  perDeviceCap: number;
  /** Tracked deliveries in total. */
  totalCap: number;
  /**
   * Hold due retries while the event loop lags more than this (ms; 0 = never): a late ACK is
   * then usually sitting unread in our own socket buffers, and a retry would only add load.
   */
  holdLagMs?: number;
  /** The event loop's lag (required for holding); stopped with the queue. */
  loopLag?: LoopLag;
  /** Due retries held back, for the lag or a connection held unread (each counted once per attempt). */
  onHeld?: (count: number) => void;
}

/** A tracked delivery; it is also its own entry in the due-time heap (at most once there). */
interface Tracked {
  /** Its index in the heap; −1 while not in it (finished, or popped to be retried). */
  pos: number;
  /** The device it was tracked for. */
  dev: DeviceState;
  inboxSeq: number;
  /** The message's id, for its trace (tracing/). */
  msgId: string | undefined;
  frame: string;
  attempts: number;
  firstSentAt: number;
  lastDelay: number;
  dueAt: number;
  done: boolean;
  /** The attempt number this delivery was last counted as held for (−1: never). */
  heldAt: number;
}

interface DeviceState {
  key: string;
  userId: string;
  deviceId: string;
  target: RetryTarget;
  pending: Map<number, Tracked>;
  /** Still in `devices` (false once its last pending delivery ended). */
  live: boolean;
}

/**
 * The server's downlink retry queue. Each live `msg` to an ACK-capable device is tracked
 * until the device ACKs it (cumulatively) or pulls it by sync. Due retries first check that
 * the device is still alive; a dead device's deliveries are handed to offline push.
 * Memory is bounded per device and in total; a min-heap orders due times, so one timer
 * serves the whole queue.
 *
 * While the event loop lags beyond `holdLagMs`, due retries are held (re-checked every
 * `holdLagMs`): an overloaded server reads ACKs late, and retrying then turns late ACKs into
 * a storm of duplicates that overloads it further. When the lag clears, one more grace period
 * lets the queued ACKs be read before anything still unacknowledged is retried. Likewise a
 * due retry to a connection this server holds unread (RetryTarget.heldUnread: its requests
 * wait for the node's send budget) waits another delay: its ACK may be queued behind them.
 */
export class RetryQueue {
  private readonly devices = new Map<string, DeviceState>();
  /** The state last tracked through each connection: a fan-out finds it without building and hashing the device key. */
  private readonly byTarget = new WeakMap<RetryTarget, DeviceState>();
  /**
   * Min-heap on dueAt. A delivery is in it from track (or its last retry) until popped or
   * finished: an ACKed delivery leaves it at once (with its frame), so the usual delivery —
   * ACKed within milliseconds, due in seconds — is garbage while still young instead of
   * being kept, frame and all, until its first retry would have been due.
   */
  private readonly heap: Tracked[] = [];
  private total = 0;
  private timer: unknown;
  private timerDue = Infinity;
  /** Retries were held at the last firing: give queued ACKs one grace period first. */
  private holding = false;

  constructor(
    private readonly timing: RetryTiming,
    private readonly onEnd: (end: DeliveryEnd, userId: string, deviceId: string, ref?: { inboxSeq: number; msgId: string | undefined }) => void,
    private readonly onRetry: (attempt: number, userId: string, deviceId: string, inboxSeq: number, msgId?: string) => void,
    private readonly opts: RetryQueueOptions = { perDeviceCap: 512, totalCap: 1_000_000 },
    private readonly timers: Timers = realTimers,
  ) {}

  static key(userId: string, deviceId: string): string {
    return `${userId}\u0000${deviceId}`;
  }

  /** The frame was just written to the device's connection. `msgId`: its message, for the trace. */
  track(userId: string, deviceId: string, target: RetryTarget, inboxSeq: number, frame: string, msgId?: string): void {
    let dev = this.byTarget.get(target);
    if (!dev || !dev.live || dev.target !== target || dev.userId !== userId || dev.deviceId !== deviceId) {
      const cached = dev;
      const k = cached && cached.userId === userId && cached.deviceId === deviceId ? cached.key : RetryQueue.key(userId, deviceId);
      dev = this.devices.get(k);
      if (!dev) {
        // The connection's own state, ended when its last delivery was ACKed (one message at a
        // time, the usual case of a chat: every delivery ends before the next): in use again,
        // with its empty map, instead of a new state, map, key and WeakMap entry per delivery.
        if (cached && !cached.live && cached.key === k && cached.target === target && cached.pending.size === 0) {
          dev = cached;
          dev.live = true;
          this.devices.set(k, dev);
          return this.add(dev, inboxSeq, frame, msgId);
        }
        this.devices.set(k, (dev = { key: k, userId, deviceId, target, pending: new Map(), live: true }));
      }
      dev.target = target;
      this.byTarget.set(target, dev);
    }
    this.add(dev, inboxSeq, frame, msgId);
  }

  /** Track a delivery on `dev`, the device's live state. */
  private add(dev: DeviceState, inboxSeq: number, frame: string, msgId: string | undefined): void {
    const { userId, deviceId } = dev;
    const key = dev.key;
    if (dev.pending.has(inboxSeq)) return;
    if (dev.pending.size >= this.opts.perDeviceCap || this.total >= this.opts.totalCap) {
      const oldest = dev.pending.values().next().value;
      if (!oldest) return;
      this.finish(key, dev, oldest);
      this.onEnd({ kind: 'overflow' }, userId, deviceId);
    }
    const delay = this.timing.delayFor(key, 1, 0);
    if (delay === null) return;
    const now = this.timers.now();
    const t: Tracked = { pos: -1, dev, inboxSeq, msgId, frame, attempts: 0, firstSentAt: now, lastDelay: delay, dueAt: now + delay, done: false, heldAt: -1 };
    dev.pending.set(inboxSeq, t);
    this.total++;
    this.push(t);
  }

  /** Cumulative ACK from a device. */
  ack(userId: string, deviceId: string, inboxSeq: number): void {
    const key = RetryQueue.key(userId, deviceId);
    const dev = this.devices.get(key);
    if (!dev) return;
    const now = this.timers.now();
    for (const t of dev.pending.values()) {
      if (t.inboxSeq > inboxSeq) continue;
      this.timing.acked(key, t.attempts);
      this.finish(key, dev, t);
      this.onEnd({ kind: 'acked', attempts: t.attempts, latencyMs: now - t.firstSentAt }, userId, deviceId, t);
    }
  }

  /**
   * The device pulled inbox items (since, upTo] by sync. What it did not have arrived by pull
   * (compensation). `have` lists what it said it already held above `since` — received live,
   * waiting behind a gap: a selective ACK, so those end as live arrivals (and are not retried).
   */
  pulled(userId: string, deviceId: string, since: number, upTo: number, have?: readonly number[]): void {
    const key = RetryQueue.key(userId, deviceId);
    const dev = this.devices.get(key);
    if (!dev) return;
    const now = this.timers.now();
    const held = have && have.length > 0 ? new Set(have) : null;
    for (const t of [...dev.pending.values()]) {
      if (t.inboxSeq <= since || t.inboxSeq > upTo) continue;
      if (held?.has(t.inboxSeq)) {
        this.timing.acked(key, t.attempts);
        this.finish(key, dev, t);
        this.onEnd({ kind: 'acked', attempts: t.attempts, latencyMs: now - t.firstSentAt }, userId, deviceId, t);
        continue;
      }
      this.finish(key, dev, t);
      this.onEnd({ kind: 'pulled', attempts: t.attempts, latencyMs: now - t.firstSentAt }, userId, deviceId, t);
    }
  }

  /** Number of deliveries being tracked. */
  get size(): number {
    return this.total;
  }

  /** Deliveries waiting in the due-time heap (each tracked one that is not being retried right now; a finished one never). */
  get scheduled(): number {
    return this.heap.length;
  }

  /** Stop the timer and the lag probe (the tracked deliveries are dropped with the process). */
  stop(): void {
    if (this.timer !== undefined) this.timers.clearTimeout(this.timer);
    this.timer = undefined;
    this.timerDue = Infinity;
    this.opts.loopLag?.stop();
  }

  pendingFor(userId: string, deviceId: string): number[] {
    return [...(this.devices.get(RetryQueue.key(userId, deviceId))?.pending.keys() ?? [])];
  }

  private finish(key: string, dev: DeviceState, t: Tracked): void {
    if (t.done) return;
    t.done = true;
    if (t.pos >= 0) this.remove(t);
    dev.pending.delete(t.inboxSeq);
    this.total--;
    if (dev.pending.size === 0) {
      this.devices.delete(key);
      dev.live = false;
    }
  }

  private fire(): void {
    const late = this.timers.now() - this.timerDue;
    this.timer = undefined;
    this.timerDue = Infinity;
    const now = this.timers.now();
    const holdMs = this.opts.holdLagMs ?? 0;
    if (holdMs > 0 && this.heap.length > 0) {
      const lag = Math.max(late, this.opts.loopLag?.lagMs() ?? 0);
      if (lag > holdMs) {
        const held = this.markHeld(now);
        if (held > 0) this.opts.onHeld?.(held);
        this.holding = true;
        this.armAt(now + holdMs);
        return;
      }
      if (this.holding) {
        this.holding = false;
        this.armAt(now + holdMs);
        return;
      }
    }
    let heldUnread = 0;
    while (this.heap.length > 0 && this.heap[0]!.dueAt <= now) {
      const t = this.pop()!;
      // Not done: its device still has it pending, so `dev` is the device's live state.
      if (t.done) continue;
      const dev = t.dev;
      const key = dev.key;
      if (!dev.target.isAlive()) {
        // Presence check before every retry: a gone device gets the offline push instead.
        for (const p of [...dev.pending.values()]) {
          this.finish(key, dev, p);
          this.onEnd({ kind: 'offline', attempts: p.attempts, message: { userId: dev.userId, deviceId: dev.deviceId, inboxSeq: p.inboxSeq } }, dev.userId, dev.deviceId, p);
        }
        continue;
      }
      if (dev.target.heldUnread?.()) {
        // Its ACK may be waiting unread behind its own held sends: re-check after one more
        // delay (no attempt counted; it is retried then if still unacknowledged).
        if (t.heldAt !== t.attempts) {
          t.heldAt = t.attempts;
          heldUnread++;
        }
        t.dueAt = now + Math.max(t.lastDelay, holdMs, 50);
        this.push(t);
        continue;
      }
      t.attempts++;
      dev.target.send(t.frame);
      this.timing.retried(key, t.attempts, t.lastDelay);
      this.onRetry(t.attempts, dev.userId, dev.deviceId, t.inboxSeq, t.msgId);
      const next = this.timing.delayFor(key, t.attempts + 1, t.lastDelay);
      if (next === null) {
        this.finish(key, dev, t);
        this.onEnd({ kind: 'gave_up', attempts: t.attempts, message: { userId: dev.userId, deviceId: dev.deviceId, inboxSeq: t.inboxSeq } }, dev.userId, dev.deviceId, t);
        continue;
      }
      t.lastDelay = next;
      t.dueAt = now + next;
      this.push(t);
    }
    if (heldUnread > 0) this.opts.onHeld?.(heldUnread);
    this.arm();
  }

  private arm(): void {
    const head = this.heap[0];
    if (!head) return;
    if (this.holding && this.timer !== undefined) return;
    this.armAt(head.dueAt);
  }

  private armAt(dueAt: number): void {
    if (dueAt >= this.timerDue && this.timer !== undefined) return;
    if (this.timer !== undefined) this.timers.clearTimeout(this.timer);
    this.timerDue = dueAt;
    this.timer = this.timers.setTimeout(() => this.fire(), Math.max(0, dueAt - this.timers.now()));
  }

  /** Count the due, live deliveries not yet counted as held for their current attempt (heap walk, pruned at not-yet-due nodes). */
  private markHeld(now: number): number {
    const h = this.heap;
    let n = 0;
    const stack = [0];
    while (stack.length > 0) {
      const i = stack.pop()!;
      const e = h[i];
      if (!e || e.dueAt > now) continue;
      if (!e.done && e.heldAt !== e.attempts) {
        e.heldAt = e.attempts;
        n++;
      }
      stack.push(2 * i + 1, 2 * i + 2);
    }
    return n;
  }

  // --- binary min-heap on dueAt; each entry knows its index (pos) so a finished one leaves at once ---
  private push(e: Tracked): void {
    const h = this.heap;
    e.pos = h.length;
    h.push(e);
    this.up(e.pos);
    this.arm();
  }

  private pop(): Tracked | undefined {
    const h = this.heap;
    const top = h[0];
    if (!top) return undefined;
    const last = h.pop()!;
    top.pos = -1;
    if (last !== top) {
      h[0] = last;
      last.pos = 0;
      this.down(0);
    }
    return top;
  }

  /** Take `e` out of the heap (it is in it: pos ≥ 0). The timer stays armed; a firing with nothing due re-arms for the new head. */
  private remove(e: Tracked): void {
    const h = this.heap;
    const i = e.pos;
    const last = h.pop()!;
    e.pos = -1;
    if (last === e) return;
    h[i] = last;
    last.pos = i;
    if (i > 0 && h[(i - 1) >> 1]!.dueAt > last.dueAt) this.up(i);
    else this.down(i);
  }

  private up(i: number): void {
    const h = this.heap;
    const e = h[i]!;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const parent = h[p]!;
      if (parent.dueAt <= e.dueAt) break;
      h[i] = parent;
      parent.pos = i;
      i = p;
    }
    h[i] = e;
    e.pos = i;
  }

  private down(i: number): void {
    const h = this.heap;
    const n = h.length;
    const e = h[i]!;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && h[r]!.dueAt < h[l]!.dueAt ? r : l;
      const child = h[c]!;
      if (child.dueAt >= e.dueAt) break;
      h[i] = child;
      child.pos = i;
      i = c;
    }
    h[i] = e;
    e.pos = i;
  }
}
