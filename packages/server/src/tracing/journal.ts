/**
 * The stages a message goes through, as this node saw them. `send` is the sender's request
 * (from the frame's arrival to the reply), `commit` the group commit that made it durable,
 * `fanout` the live publication, then per device `deliver` (written to its connection),
 * `retry` (written again), `ack` (the device confirmed it), `pulled` (it fetched it by sync
 * instead), `offline`/`gave_up` (handed to offline push) and `push` (a push job queued).
 */
export const TRACE_STAGES = ['send', 'commit', 'fanout', 'deliver', 'retry', 'ack', 'pulled', 'offline', 'gave_up', 'push'] as const;
export type TraceStage = (typeof TRACE_STAGES)[number];

export interface StageEvent {
  stage: TraceStage;
  /** Wall-clock start (ms since the epoch). */
  at: number;
  /** The node that saw it (config nodeId). */
  node: string;
  /** How long the stage took (ms), when it has a duration. */
  durMs?: number;
  userId?: string;
  deviceId?: string;
  inboxSeq?: number;
  /** Retry attempt number, or attempts made before the end. */
  attempt?: number;
  /** A few facts of the stage (batch size, recipient count, push provider, outcome). */
  detail?: Record<string, string | number | boolean>;
}

/** Events kept per message: a 10 000-member group's fan-out keeps its first deliveries, not all. */
export const EVENTS_PER_MESSAGE = 256;
/** Events kept in all, per message of capacity (~80 bytes each in the columns: 10 000 messages → ~16 MB once full). */
export const EVENTS_PER_SLOT = 20;

/** Event columns allocated at first; they double as events are recorded, up to the bound. */
const INITIAL_EVENTS = 4096;

/** Stage → its code in the columns: an object, not a Map (one property load per event instead of a hash lookup). */
const STAGE_CODE = Object.fromEntries(TRACE_STAGES.map((s, i) => [s, i])) as Record<TraceStage, number>;

/**
 * The facts of the stages recorded on the message path, kept as a number (`num`), a flag
 * or a short text (`note`) in the columns instead of a `detail` object per event:
 * send → {outcome}, commit → {batch}, fanout → {recipients, superGroup}.
 */
const Encoded = { None: 0, Outcome: 1, Batch: 2, Fanout: 3 } as const;

/**
 * A bounded in-memory journal of stage events by message id: the last `capacity` messages
 * this node touched, each with at most EVENTS_PER_MESSAGE events (the `dropped` count says
 * how many more there were), and at most `capacity × EVENTS_PER_SLOT` events in all (large
 * group fan-outs make older messages go sooner: a message whose first event was overwritten
 * is gone).
 *
 * It is on for every message and read only when an operator asks, so recording is made
 * nearly free: events go into a ring of columns (typed arrays for numbers, plain
 * arrays for the user/device ids the caller already holds), messages into a ring of slots;
 * no object is built per event, and nothing is allocated per message but its Map entry.
 * Reading (`get`) rebuilds the events by scanning the ring from the message's first event.
 */
export class TraceJournal {
  /** Message id → its slot in the message ring. */
  private readonly slotOf = new Map<string, number>();
  // Message ring (capacity slots), written in insertion order: the next slot is the oldest message.
  private readonly msgIds: (string | undefined)[];
  /** Absolute sequence number of the message's first event in the event ring. */
  private readonly msgFirst: Float64Array;
  private readonly msgCount: Int32Array;
  private readonly msgDropped: Int32Array;
  private nextSlot = 0;
  // Event ring (maxEvents entries), one column per field.
  private readonly maxEvents: number;
  // The typed columns grow (doubling) until they hold maxEvents, then the ring wraps; the
  // plain arrays grow by appending. Memory follows what was recorded, up to the bound.
  private evSlot: Int32Array;
  private evStage: Uint8Array;
  private evEncoded: Uint8Array;
  private evAt: Float64Array;
  /** NaN where the field is absent (durMs, inboxSeq, attempt, num). */
  private evDur: Float64Array;
  private evInboxSeq: Float64Array;
  private evAttempt: Float64Array;
  private evNum: Float64Array;
  private readonly evNode: (string | undefined)[] = [];
  private readonly evUser: (string | undefined)[] = [];
  private readonly evDevice: (string | undefined)[] = [];
  /** The `note` text (send outcome) or a detail object given as is (push). */
  private readonly evExtra: (string | Record<string, string | number | boolean> | undefined)[] = [];
  /** Events written so far (absolute sequence number of the next one). */
  private written = 0;

  constructor(
    readonly capacity: number,
    maxEvents = capacity * EVENTS_PER_SLOT,
  ) {
    const slots = Math.max(0, capacity);
    this.msgIds = new Array<string | undefined>(slots).fill(undefined);
    this.msgFirst = new Float64Array(slots);
    this.msgCount = new Int32Array(slots);
    this.msgDropped = new Int32Array(slots);
    this.maxEvents = capacity > 0 ? Math.max(maxEvents, EVENTS_PER_MESSAGE) : 0;
    const n = Math.min(this.maxEvents, INITIAL_EVENTS);
    this.evSlot = new Int32Array(n);
    this.evStage = new Uint8Array(n);
    this.evEncoded = new Uint8Array(n);
    this.evAt = new Float64Array(n);
    this.evDur = new Float64Array(n);
    this.evInboxSeq = new Float64Array(n);
    this.evAttempt = new Float64Array(n);
    this.evNum = new Float64Array(n);
  }

  /** Double the typed columns (only before the ring first wraps: positions are still sequence numbers). */
  private grow(): void {
    const n = Math.min(this.maxEvents, this.evAt.length * 2);
    const widen = <T extends Int32Array | Uint8Array | Float64Array>(a: T, make: (n: number) => T): T => {
      const b = make(n);
      b.set(a);
      return b;
    };
    this.evSlot = widen(this.evSlot, (k) => new Int32Array(k));
    this.evStage = widen(this.evStage, (k) => new Uint8Array(k));
    this.evEncoded = widen(this.evEncoded, (k) => new Uint8Array(k));
    this.evAt = widen(this.evAt, (k) => new Float64Array(k));
    this.evDur = widen(this.evDur, (k) => new Float64Array(k));
    this.evInboxSeq = widen(this.evInboxSeq, (k) => new Float64Array(k));
    this.evAttempt = widen(this.evAttempt, (k) => new Float64Array(k));
    this.evNum = widen(this.evNum, (k) => new Float64Array(k));
  }

  /** Record an event given as an object (its fields are copied into the columns). */
  record(msgId: string, event: StageEvent): void {
    this.add(msgId, event.stage, event.at, event.node, event.durMs ?? NaN, event.userId, event.deviceId, event.inboxSeq ?? NaN, event.attempt ?? NaN, event.detail);
  }

  /**
   * Record one event; absent numbers are NaN. `detail`: a text is a send's outcome, a number
   * a commit's batch size (or, with `superGroup` given, a fan-out's recipient count), an
   * object is kept as is.
   */
  add(
    msgId: string,
    stage: TraceStage,
    at: number,
    node: string,
    durMs: number,
    userId: string | undefined,
    deviceId: string | undefined,
    inboxSeq: number,
    attempt: number,
    detail?: string | number | Record<string, string | number | boolean>,
    superGroup?: boolean,
  ): void {
    if (this.capacity <= 0) return;
    const slot = this.slotFor(msgId);
    if (this.msgCount[slot]! >= EVENTS_PER_MESSAGE) {
      this.msgDropped[slot]!++;
      return;
    }
    this.msgCount[slot]!++;
    if (this.written === this.evAt.length && this.written < this.maxEvents) this.grow();
    const i = this.written++ % this.maxEvents;
    this.evSlot[i] = slot;
    this.evStage[i] = STAGE_CODE[stage];
    this.evAt[i] = at;
    this.evDur[i] = durMs;
    this.evInboxSeq[i] = inboxSeq;
    this.evAttempt[i] = attempt;
    this.evNode[i] = node;
    this.evUser[i] = userId;
    this.evDevice[i] = deviceId;
    if (typeof detail === 'number') {
      this.evEncoded[i] = superGroup === undefined ? Encoded.Batch : Encoded.Fanout;
      this.evNum[i] = detail;
      this.evExtra[i] = superGroup ? 'super' : undefined;
    } else {
      this.evEncoded[i] = typeof detail === 'string' ? Encoded.Outcome : Encoded.None;
      this.evNum[i] = NaN;
      this.evExtra[i] = detail;
    }
  }

  /** The message of the last slotFor, and its slot (a message's stages mostly come one after another: no Map lookup for those). */
  private lastId: string | undefined;
  private lastSlot = 0;

  /** The slot of `msgId`, taking the oldest message's slot for a new one (or one whose first event was overwritten). */
  private slotFor(msgId: string): number {
    if (msgId === this.lastId && this.msgIds[this.lastSlot] === msgId && this.msgFirst[this.lastSlot]! >= this.written - this.maxEvents) return this.lastSlot;
    const slot = this.lookupSlot(msgId);
    this.lastId = msgId;
    this.lastSlot = slot;
    return slot;
  }

  private lookupSlot(msgId: string): number {
    let slot = this.slotOf.get(msgId);
    if (slot !== undefined) {
      if (this.msgFirst[slot]! >= this.written - this.maxEvents) return slot;
      // Its first event was overwritten: it starts again as the newest message.
      this.slotOf.delete(msgId);
      this.msgIds[slot] = undefined;
    }
    slot = this.nextSlot;
    this.nextSlot = slot + 1 === this.capacity ? 0 : slot + 1;
    const old = this.msgIds[slot];
    if (old !== undefined) this.slotOf.delete(old);
    this.slotOf.set(msgId, slot);
    this.msgIds[slot] = msgId;
    this.msgFirst[slot] = this.written;
    this.msgCount[slot] = 0;
    this.msgDropped[slot] = 0;
    return slot;
  }

  /** The events of one message in the order recorded (fresh objects), and how many were not kept. */
  get(msgId: string): { events: StageEvent[]; dropped: number } | undefined {
    const slot = this.slotOf.get(msgId);
    if (slot === undefined) return undefined;
    const first = this.msgFirst[slot]!;
    if (first < this.written - this.maxEvents) return undefined;
    const want = this.msgCount[slot]!;
    const events: StageEvent[] = [];
    for (let seq = first; seq < this.written && events.length < want; seq++) {
      const i = seq % this.maxEvents;
      if (this.evSlot[i] === slot) events.push(this.eventAt(i));
    }
    return { events, dropped: this.msgDropped[slot]! };
  }

  private eventAt(i: number): StageEvent {
    const e: StageEvent = { stage: TRACE_STAGES[this.evStage[i]!]!, at: this.evAt[i]!, node: this.evNode[i]! };
    const dur = this.evDur[i]!;
    if (!Number.isNaN(dur)) e.durMs = dur;
    if (this.evUser[i] !== undefined) e.userId = this.evUser[i];
    if (this.evDevice[i] !== undefined) e.deviceId = this.evDevice[i];
    const inboxSeq = this.evInboxSeq[i]!;
    if (!Number.isNaN(inboxSeq)) e.inboxSeq = inboxSeq;
    const attempt = this.evAttempt[i]!;
    if (!Number.isNaN(attempt)) e.attempt = attempt;
    const extra = this.evExtra[i];
    switch (this.evEncoded[i]) {
      case Encoded.Outcome:
        e.detail = { outcome: extra as string };
        break;
      case Encoded.Batch:
        e.detail = { batch: this.evNum[i]! };
        break;
      case Encoded.Fanout:
        e.detail = { recipients: this.evNum[i]!, superGroup: extra === 'super' };
        break;
      default:
        if (extra !== undefined) e.detail = { ...(extra as Record<string, string | number | boolean>) };
    }
    return e;
  }

  /** Messages held. */
  get size(): number {
    return this.slotOf.size;
  }

  /** Events held in all. */
  get events(): number {
    return Math.min(this.written, this.maxEvents);
  }
}
