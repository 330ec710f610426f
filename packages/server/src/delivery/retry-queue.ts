import type { LoopLag } from '../util/loop-lag.ts';
import type { RetryTiming } from './retry-policy.ts';
import { msgFrame } from './msg-frame.ts';

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
  /** The event loop's lag (required for holding); wanted while the queue's timer is armed (`want`), stopped with the queue. */
  loopLag?: LoopLag;
  /** Due retries held back, for the lag or a connection held unread (each counted once per attempt). */
  onHeld?: (count: number) => void;
  /**
   * A delivery ACKed at its first attempt (the usual end): called instead of `onEnd` with
   * `{kind: 'acked', attempts: 0}`, without an object per delivery.
   */
  onAckedFirst?: (userId: string, deviceId: string, inboxSeq: number, msgId: string | undefined, latencyMs: number) => void;
}

/**
 * A delivery taken out of its device's queue when it first came due (retried, or due while
 * its connection was held unread by the lag): from then on it is an entry of its own in the
 * due-time heap, with its own attempt count and delay. Only deliveries not ACKed within the
 * first delay (2 s by default) become one.
 */
interface Tracked {
  /** Its index in the heap; −1 while not in it (finished, or popped to be retried). */
  pos: number;
  dueAt: number;
  /** The device it was tracked for. */
  dev: DeviceState;
  inboxSeq: number;
  /** The message's id, for its trace (tracing/). */
  msgId: string | undefined;
  frame: string;
  attempts: number;
  firstSentAt: number;
  lastDelay: number;
  done: boolean;
  /** The attempt number this delivery was last counted as held for (−1: never). */
  heldAt: number;
}

/** Numbers per queued delivery in DeviceState.nums: inboxSeq, first sent at, due at, 1 when its text is the message body (else the frame). */
const NUMS = 4;
/** Queue slots a device starts with (doubled as needed, up to the per-device cap). */
const INITIAL_SLOTS = 8;

/**
 * A device's tracked deliveries. Those not yet due wait in `nums`/`texts`/`ids`, a ring in
 * the order they were written (which is inbox order, and due order: every first delay is
 * the same, and a later one is never due before an earlier one); the device is one entry in
 * the due-time heap, keyed at (or before) its oldest one's due time. Deliveries that came
 * due are in `later`, each in the heap itself.
 */
class DeviceState {
  /** Its index in the heap; −1 while not in it. */
  pos = -1;
  /**
   * Its key in the heap: no later than the due time of its oldest queued delivery (an ACK
   * does not move it; a firing at a key with nothing due re-keys the device), or the time of
   * its next re-check while its connection is held unread.
   */
  dueAt = 0;
  /** Still in `devices` (false once nothing is tracked for it and its heap entry came up). */
  live = true;
  /**
   * The queue: slot i holds inboxSeq, first sent at, due at and the kind of its text in
   * nums[4i..4i+3]; its text — the message body shared by all its recipients (the frame is
   * made again for a retry), or the frame itself — and its message id.
   */
  nums: Float64Array = new Float64Array(INITIAL_SLOTS * NUMS);
  texts: (string | undefined)[] = new Array<string | undefined>(INITIAL_SLOTS).fill(undefined);
  ids: (string | undefined)[] = new Array<string | undefined>(INITIAL_SLOTS).fill(undefined);
  mask = INITIAL_SLOTS - 1;
  head = 0;
  len = 0;
  /** The queued inboxSeqs ascend from head to tail (cumulative ACKs take a prefix); reset when the queue empties. */
  sorted = true;
  /** Queued deliveries (a prefix: due ones come first) already counted as held for their first attempt. */
  heldFresh = 0;
  /** Deliveries taken out of the queue when due (in the order taken out); null until the first. */
  later: Map<number, Tracked> | null = null;

  constructor(
    readonly key: string,
    readonly userId: string,
    readonly deviceId: string,
    public target: RetryTarget,
  ) {}

  /** Slot of the i-th queued delivery (0 = oldest). */
  slot(i: number): number {
    return (this.head + i) & this.mask;
  }

  seqAt(i: number): number {
    return this.nums[this.slot(i) * NUMS]!;
  }

  dueAtOf(i: number): number {
    return this.nums[this.slot(i) * NUMS + 2]!;
  }

  get tracked(): number {
    return this.len + (this.later === null ? 0 : this.later.size);
  }

  append(inboxSeq: number, sentAt: number, due: number, text: string, isBody: boolean, msgId: string | undefined): void {
    if (this.len > this.mask) this.grow();
    const s = (this.head + this.len) & this.mask;
    const n = this.nums;
    n[s * NUMS] = inboxSeq;
    n[s * NUMS + 1] = sentAt;
    n[s * NUMS + 2] = due;
    n[s * NUMS + 3] = isBody ? 1 : 0;
    this.texts[s] = text;
    this.ids[s] = msgId;
    this.len++;
  }

  /** The frame of the oldest queued delivery. */
  headFrame(): string {
    const s = this.head;
    const text = this.texts[s]!;
    return this.nums[s * NUMS + 3] === 1 ? msgFrame(this.nums[s * NUMS]!, text) : text;
  }

  /** Drop the oldest queued delivery (its fields must have been read first). */
  shift(): void {
    const s = this.head;
    this.texts[s] = undefined;
    this.ids[s] = undefined;
    this.head = (s + 1) & this.mask;
    this.len--;
    if (this.heldFresh > 0) this.heldFresh--;
    if (this.len === 0) this.emptied();
  }

  /** Keep only the queued deliveries `keep` accepts, in order; the others go to `out` (oldest first). */
  filter(keep: (inboxSeq: number) => boolean, out: Fresh[]): void {
    const n = this.nums;
    let w = 0;
    let held = this.heldFresh;
    for (let i = 0; i < this.len; i++) {
      const s = this.slot(i);
      const seq = n[s * NUMS]!;
      if (keep(seq)) {
        const d = this.slot(w++);
        if (d !== s) {
          for (let k = 0; k < NUMS; k++) n[d * NUMS + k] = n[s * NUMS + k]!;
          this.texts[d] = this.texts[s];
          this.ids[d] = this.ids[s];
        }
        continue;
      }
      out.push({ inboxSeq: seq, sentAt: n[s * NUMS + 1]!, msgId: this.ids[s] });
      if (i < this.heldFresh) held--;
    }
    for (let i = w; i < this.len; i++) {
      const s = this.slot(i);
      this.texts[s] = undefined;
      this.ids[s] = undefined;
    }
    this.len = w;
    this.heldFresh = held;
    if (w === 0) this.emptied();
  }

  has(inboxSeq: number): boolean {
    for (let i = 0; i < this.len; i++) if (this.seqAt(i) === inboxSeq) return true;
    return false;
  }

  private emptied(): void {
    this.head = 0;
    this.sorted = true;
    this.heldFresh = 0;
  }

  private grow(): void {
    const size = (this.mask + 1) * 2;
    const nums = new Float64Array(size * NUMS);
    const texts = new Array<string | undefined>(size).fill(undefined);
    const ids = new Array<string | undefined>(size).fill(undefined);
    for (let i = 0; i < this.len; i++) {
      const s = this.slot(i);
      for (let k = 0; k < NUMS; k++) nums[i * NUMS + k] = this.nums[s * NUMS + k]!;
      texts[i] = this.texts[s];
      ids[i] = this.ids[s];
    }
    this.nums = nums;
    this.texts = texts;
    this.ids = ids;
    this.mask = size - 1;
    this.head = 0;
  }
}

/** A queued delivery taken out by `filter` (rare paths: sync, out-of-order ACK, presence loss). */
interface Fresh {
  inboxSeq: number;
  sentAt: number;
  msgId: string | undefined;
}

type HeapEntry = Tracked | DeviceState;

/**
 * The server's downlink retry queue. Each live `msg` to an ACK-capable device is tracked
 * until the device ACKs it (cumulatively) or pulls it by sync. Due retries first check that
 * the device is still alive; a dead device's deliveries are handed to offline push.
 * Memory is bounded per device and in total; a min-heap orders due times, so one timer
 * serves the whole queue.
 *
 * Per delivery the queue stores a few numbers and two references in its device's ring (no
 * object, no map entry, no heap operation): a device is one heap entry, keyed at its oldest
 * delivery's due time, and a cumulative ACK takes a prefix of its ring. A delivery that comes
 * due unacknowledged leaves the ring for an entry of its own (its attempts and delays are
 * its own from then on).
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
   * Min-heap on dueAt: devices (keyed at their oldest queued delivery) and deliveries taken
   * out of their device's queue. An ACKed delivery's frame is dropped at once (from its
   * device's ring, or with its own entry, which leaves the heap), so the usual delivery —
   * ACKed within milliseconds, due in seconds — is garbage while still young.
   */
  private readonly heap: HeapEntry[] = [];
  private total = 0;
  private timer: unknown;
  private timerDue = Infinity;
  /** Retries were held at the last firing: give queued ACKs one grace period first. */
  private holding = false;
  private readonly filtered: Fresh[] = [];

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

  /**
   * The frame was just written to the device's connection. `msgId`: its message, for the
   * trace. `body`: the message JSON the frame was made of (msg-frame.ts: `frame` is
   * msgFrame(inboxSeq, body)), kept instead of the frame — one string for all recipients of
   * the message, where each recipient's frame would live until its ACK.
   */
  track(userId: string, deviceId: string, target: RetryTarget, inboxSeq: number, frame: string, msgId?: string, body?: string): void {
    let dev = this.byTarget.get(target);
    if (!dev || !dev.live || dev.target !== target || dev.userId !== userId || dev.deviceId !== deviceId) {
      const cached = dev;
      const k = cached && cached.userId === userId && cached.deviceId === deviceId ? cached.key : RetryQueue.key(userId, deviceId);
      dev = this.devices.get(k);
      if (!dev) {
        // The connection's own state, ended when its last delivery was ACKed (one message at a
        // time, the usual case of a chat: every delivery ends before the next): in use again,
        // with its ring, instead of a new state, ring, key and WeakMap entry per delivery.
        if (cached && !cached.live && cached.key === k && cached.target === target && cached.tracked === 0) {
          dev = cached;
          dev.live = true;
          this.devices.set(k, dev);
          return this.add(dev, inboxSeq, frame, msgId, body);
        }
        this.devices.set(k, (dev = new DeviceState(k, userId, deviceId, target)));
      }
      dev.target = target;
      this.byTarget.set(target, dev);
    }
    this.add(dev, inboxSeq, frame, msgId, body);
  }

  /** Track a delivery on `dev`, the device's live state. */
  private add(dev: DeviceState, inboxSeq: number, frame: string, msgId: string | undefined, body: string | undefined): void {
    const later = dev.later;
    if (later !== null && later.size > 0 && later.has(inboxSeq)) return;
    let sorted = true;
    if (dev.len > 0 && inboxSeq <= dev.seqAt(dev.len - 1)) {
      // Not above the newest queued one: a repeat, or out of inbox order (e.g. two nodes' commits crossing on the bus).
      if (dev.has(inboxSeq)) return;
      sorted = false;
    }
    if (dev.tracked >= this.opts.perDeviceCap || this.total >= this.opts.totalCap) {
      if (!this.dropOldest(dev)) return;
      this.onEnd({ kind: 'overflow' }, dev.userId, dev.deviceId);
    }
    const delay = this.timing.delayFor(dev.key, 1, 0);
    if (delay === null) return;
    const now = this.timers.now();
    let due = now + delay;
    // Due order is queue order: never before the newest queued one (only a first delay that shrank could make it so).
    if (dev.len > 0) due = Math.max(due, dev.dueAtOf(dev.len - 1));
    if (!sorted) dev.sorted = false;
    if (body === undefined) dev.append(inboxSeq, now, due, frame, false, msgId);
    else dev.append(inboxSeq, now, due, body, true, msgId);
    this.total++;
    if (!dev.live) {
      // Its last delivery was just dropped for room.
      dev.live = true;
      this.devices.set(dev.key, dev);
    }
    if (dev.pos < 0) {
      dev.dueAt = due;
      this.push(dev);
    } else if (due < dev.dueAt) {
      dev.dueAt = due;
      this.up(dev.pos);
      this.arm();
    }
  }

  /** Drop the device's oldest tracked delivery for room; false when it has none. */
  private dropOldest(dev: DeviceState): boolean {
    const later = dev.later;
    if (later !== null && later.size > 0) {
      this.finish(later.values().next().value!);
      return true;
    }
    if (dev.len === 0) return false;
    dev.shift();
    this.total--;
    this.retireIfEmpty(dev);
    return true;
  }

  /** The device state an ACK or sync of (userId, deviceId) concerns; `via`: the connection it came through, if known. */
  private find(userId: string, deviceId: string, via?: RetryTarget): DeviceState | undefined {
    if (via !== undefined) {
      const dev = this.byTarget.get(via);
      // Live states are the devices' current ones (one per device).
      if (dev !== undefined && dev.live && dev.userId === userId && dev.deviceId === deviceId) return dev;
    }
    return this.devices.get(RetryQueue.key(userId, deviceId));
  }

  /** Cumulative ACK from a device. `via`: the connection it came through (a faster lookup; any of the device's connections may ACK). */
  ack(userId: string, deviceId: string, inboxSeq: number, via?: RetryTarget): void {
    const dev = this.find(userId, deviceId, via);
    if (!dev) return;
    const key = dev.key;
    const now = this.timers.now();
    const later = dev.later;
    if (later !== null && later.size > 0) {
      for (const t of later.values()) {
        if (t.inboxSeq > inboxSeq) continue;
        this.timing.acked(key, t.attempts);
        this.finish(t);
        this.onEnd({ kind: 'acked', attempts: t.attempts, latencyMs: now - t.firstSentAt }, userId, deviceId, t);
      }
    }
    if (dev.len === 0) return;
    let ended = 0;
    if (dev.sorted) {
      // The usual case: the ACKed deliveries are a prefix of the ring.
      const n = dev.nums;
      while (dev.len > 0) {
        const s = dev.head * NUMS;
        const seq = n[s]!;
        if (seq > inboxSeq) break;
        const sentAt = n[s + 1]!;
        const msgId = dev.ids[dev.head];
        dev.shift();
        ended++;
        this.ackedFirst(dev, seq, msgId, now - sentAt);
      }
    } else {
      const out = this.filtered;
      dev.filter((seq) => seq > inboxSeq, out);
      ended = out.length;
      for (let i = 0; i < out.length; i++) this.ackedFirst(dev, out[i]!.inboxSeq, out[i]!.msgId, now - out[i]!.sentAt);
      out.length = 0;
    }
    if (ended === 0) return;
    this.total -= ended;
    this.timing.acked(key, 0);
    this.retireIfEmpty(dev);
  }

  private ackedFirst(dev: DeviceState, inboxSeq: number, msgId: string | undefined, latencyMs: number): void {
    const hook = this.opts.onAckedFirst;
    if (hook) hook(dev.userId, dev.deviceId, inboxSeq, msgId, latencyMs);
    else this.onEnd({ kind: 'acked', attempts: 0, latencyMs }, dev.userId, dev.deviceId, { inboxSeq, msgId });
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
    const later = dev.later;
    if (later !== null && later.size > 0) {
      for (const t of [...later.values()]) {
        if (t.inboxSeq <= since || t.inboxSeq > upTo) continue;
        this.finish(t);
        if (held?.has(t.inboxSeq)) {
          this.timing.acked(key, t.attempts);
          this.onEnd({ kind: 'acked', attempts: t.attempts, latencyMs: now - t.firstSentAt }, userId, deviceId, t);
        } else this.onEnd({ kind: 'pulled', attempts: t.attempts, latencyMs: now - t.firstSentAt }, userId, deviceId, t);
      }
    }
    if (dev.len === 0) return;
    const out: Fresh[] = [];
    dev.filter((seq) => seq <= since || seq > upTo, out);
    this.total -= out.length;
    this.retireIfEmpty(dev);
    for (const f of out) {
      if (held?.has(f.inboxSeq)) {
        this.timing.acked(key, 0);
        this.ackedFirst(dev, f.inboxSeq, f.msgId, now - f.sentAt);
      } else this.onEnd({ kind: 'pulled', attempts: 0, latencyMs: now - f.sentAt }, userId, deviceId, f);
    }
  }

  /** Number of deliveries being tracked. */
  get size(): number {
    return this.total;
  }

  /** Tracked deliveries waiting for a due time, frame and all (each one not being retried right now; a finished one never). */
  get scheduled(): number {
    let n = 0;
    for (const dev of this.devices.values()) {
      n += dev.len;
      if (dev.later !== null) for (const t of dev.later.values()) if (t.pos >= 0) n++;
    }
    return n;
  }

  /** Entries in the due-time heap: one per device with queued deliveries (or lately had), one per delivery that came due. */
  get heapEntries(): number {
    return this.heap.length;
  }

  /** Stop the timer and the lag probe (the tracked deliveries are dropped with the process). */
  stop(): void {
    if (this.timer !== undefined) this.timers.clearTimeout(this.timer);
    this.timer = undefined;
    this.timerDue = Infinity;
    this.opts.loopLag?.stop();
  }

  /** The device's tracked inboxSeqs: those that came due (in the order they did), then the queue, oldest first. */
  pendingFor(userId: string, deviceId: string): number[] {
    const dev = this.devices.get(RetryQueue.key(userId, deviceId));
    if (!dev) return [];
    const seqs = dev.later ? [...dev.later.keys()] : [];
    for (let i = 0; i < dev.len; i++) seqs.push(dev.seqAt(i));
    return seqs;
  }

  /** End a delivery taken out of its device's queue. */
  private finish(t: Tracked): void {
    if (t.done) return;
    t.done = true;
    if (t.pos >= 0) this.remove(t);
    t.dev.later!.delete(t.inboxSeq);
    this.total--;
    this.retireIfEmpty(t.dev);
  }

  /**
   * A device with nothing tracked leaves `devices` — once its heap entry has come up (it is
   * retired then): a device ACKing as fast as it is sent to stays in place in between,
   * instead of leaving and coming back with every ACK.
   */
  private retireIfEmpty(dev: DeviceState): void {
    if (dev.pos >= 0 || dev.len > 0 || (dev.later !== null && dev.later.size > 0) || !dev.live) return;
    dev.live = false;
    if (this.devices.get(dev.key) === dev) this.devices.delete(dev.key);
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
      const e = this.pop()!;
      if (e instanceof DeviceState) {
        heldUnread += this.fireDevice(e, now, holdMs);
        continue;
      }
      const t = e;
      // Not done: its device still has it, so `dev` is the device's live state.
      if (t.done) continue;
      const dev = t.dev;
      if (!dev.target.isAlive()) {
        this.offline(dev);
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
      this.retry(t, now);
    }
    if (heldUnread > 0) this.opts.onHeld?.(heldUnread);
    this.arm();
    // Nothing left to retry: the lag sampler may sleep until the next delivery is tracked.
    if (this.timer === undefined) this.opts.loopLag?.want?.(false);
  }

  /** The device's heap entry came up: take out and retry its due deliveries. Returns how many were newly held for a connection held unread. */
  private fireDevice(dev: DeviceState, now: number, holdMs: number): number {
    // Nothing queued: its deliveries were ACKed (those that came due have entries of their own).
    if (dev.len === 0) {
      this.retireIfEmpty(dev);
      return 0;
    }
    const headDue = dev.dueAtOf(0);
    if (headDue > now) {
      // ACKs took the deliveries it was keyed at: key it at its oldest queued one.
      dev.dueAt = headDue;
      this.push(dev);
      return 0;
    }
    if (!dev.target.isAlive()) {
      this.offline(dev);
      return 0;
    }
    if (dev.target.heldUnread?.()) {
      // As for a delivery that came due before: its ACK may be queued behind its held sends.
      // Each due one is counted once; all are re-checked after one more delay.
      let n = 0;
      while (dev.heldFresh < dev.len && dev.dueAtOf(dev.heldFresh) <= now) {
        dev.heldFresh++;
        n++;
      }
      const s = dev.head * NUMS;
      dev.dueAt = now + Math.max(dev.nums[s + 2]! - dev.nums[s + 1]!, holdMs, 50);
      this.push(dev);
      return n;
    }
    let later = dev.later;
    if (later === null) later = dev.later = new Map();
    while (dev.len > 0) {
      const s = dev.head * NUMS;
      const n = dev.nums;
      const due = n[s + 2]!;
      if (due > now) break;
      const inboxSeq = n[s]!;
      const sentAt = n[s + 1]!;
      const t: Tracked = {
        pos: -1,
        dueAt: due,
        dev,
        inboxSeq,
        msgId: dev.ids[dev.head],
        frame: dev.headFrame(),
        attempts: 0,
        firstSentAt: sentAt,
        lastDelay: due - sentAt,
        done: false,
        heldAt: -1,
      };
      later.set(inboxSeq, t);
      dev.shift();
      this.retry(t, now);
    }
    if (dev.len > 0) {
      dev.dueAt = dev.dueAtOf(0);
      this.push(dev);
    }
    return 0;
  }

  /** Send the next attempt of a due delivery (its device is alive and read) and schedule the one after, or give up. */
  private retry(t: Tracked, now: number): void {
    const dev = t.dev;
    const key = dev.key;
    t.attempts++;
    dev.target.send(t.frame);
    this.timing.retried(key, t.attempts, t.lastDelay);
    this.onRetry(t.attempts, dev.userId, dev.deviceId, t.inboxSeq, t.msgId);
    const next = this.timing.delayFor(key, t.attempts + 1, t.lastDelay);
    if (next === null) {
      this.finish(t);
      this.onEnd({ kind: 'gave_up', attempts: t.attempts, message: { userId: dev.userId, deviceId: dev.deviceId, inboxSeq: t.inboxSeq } }, dev.userId, dev.deviceId, t);
      return;
    }
    t.lastDelay = next;
    t.dueAt = now + next;
    this.push(t);
  }

  /** Presence check before every retry: a gone device's tracked deliveries all get the offline push instead (oldest first). */
  private offline(dev: DeviceState): void {
    const { userId, deviceId } = dev;
    const ended: { attempts: number; ref: { inboxSeq: number; msgId: string | undefined } }[] = [];
    if (dev.later !== null) {
      for (const t of [...dev.later.values()]) {
        this.finish(t);
        ended.push({ attempts: t.attempts, ref: t });
      }
    }
    if (dev.len > 0) {
      const out: Fresh[] = [];
      dev.filter(() => false, out);
      this.total -= out.length;
      this.retireIfEmpty(dev);
      for (const f of out) ended.push({ attempts: 0, ref: f });
    }
    for (const { attempts, ref } of ended) this.onEnd({ kind: 'offline', attempts, message: { userId, deviceId, inboxSeq: ref.inboxSeq } }, userId, deviceId, ref);
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
    // The timer's firing reads the loop's lag (the hold): keep the sampler running until then.
    if (this.timer === undefined && (this.opts.holdLagMs ?? 0) > 0) this.opts.loopLag?.want?.(true);
    this.timer = this.timers.setTimeout(() => this.fire(), Math.max(0, dueAt - this.timers.now()));
  }

  /** Count the due, live deliveries not yet counted as held for their current attempt (heap walk, pruned at not-yet-due entries). */
  private markHeld(now: number): number {
    const h = this.heap;
    let n = 0;
    const stack = [0];
    while (stack.length > 0) {
      const i = stack.pop()!;
      const e = h[i];
      if (!e || e.dueAt > now) continue;
      if (e instanceof DeviceState) {
        while (e.heldFresh < e.len && e.dueAtOf(e.heldFresh) <= now) {
          e.heldFresh++;
          n++;
        }
      } else if (!e.done && e.heldAt !== e.attempts) {
        e.heldAt = e.attempts;
        n++;
      }
      stack.push(2 * i + 1, 2 * i + 2);
    }
    return n;
  }

  // --- binary min-heap on dueAt; each entry knows its index (pos) so a finished one leaves at once ---
  private push(e: HeapEntry): void {
    const h = this.heap;
    e.pos = h.length;
    h.push(e);
    this.up(e.pos);
    this.arm();
  }

  private pop(): HeapEntry | undefined {
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
  private remove(e: HeapEntry): void {
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
