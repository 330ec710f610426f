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
/** Events kept in all, per message of capacity (~250 bytes each: 10 000 messages → at most ~50 MB). */
export const EVENTS_PER_SLOT = 20;

/**
 * A bounded in-memory journal of stage events by message id: the last `capacity` messages
 * this node touched, each with at most EVENTS_PER_MESSAGE events (the `dropped` count says
 * how many more there were), and at most `capacity × EVENTS_PER_SLOT` events in all (large
 * group fan-outs make older messages go sooner). Recording is an array push and, for a new
 * message, one Map insertion (plus deleting the oldest): cheap enough to stay on on the hot path.
 */
export class TraceJournal {
  private readonly byMessage = new Map<string, { events: StageEvent[]; dropped: number }>();
  private total = 0;
  private readonly maxEvents: number;

  constructor(
    readonly capacity: number,
    maxEvents = capacity * EVENTS_PER_SLOT,
  ) {
    this.maxEvents = Math.max(maxEvents, EVENTS_PER_MESSAGE);
  }

  record(msgId: string, event: StageEvent): void {
    if (this.capacity <= 0) return;
    let entry = this.byMessage.get(msgId);
    if (!entry) {
      if (this.byMessage.size >= this.capacity) this.evictOldest();
      this.byMessage.set(msgId, (entry = { events: [], dropped: 0 }));
    }
    if (entry.events.length >= EVENTS_PER_MESSAGE) {
      entry.dropped++;
      return;
    }
    // Over the event budget: older messages go first (never the one being written).
    while (this.total >= this.maxEvents && this.byMessage.size > 1 && this.byMessage.keys().next().value !== msgId) this.evictOldest();
    entry.events.push(event);
    this.total++;
  }

  /**
   * False when an event of `msgId` would only be counted as dropped (its message holds
   * EVENTS_PER_MESSAGE events already): the caller counts it with `drop` and builds no event,
   * so a 500-member fan-out allocates per message, not per delivery.
   */
  accepts(msgId: string): boolean {
    if (this.capacity <= 0) return false;
    const entry = this.byMessage.get(msgId);
    return !entry || entry.events.length < EVENTS_PER_MESSAGE;
  }

  /** Count an event of `msgId` that `accepts` refused. */
  drop(msgId: string): void {
    const entry = this.byMessage.get(msgId);
    if (entry) entry.dropped++;
  }

  private evictOldest(): void {
    const oldest = this.byMessage.entries().next().value;
    if (!oldest) return;
    this.byMessage.delete(oldest[0]);
    this.total -= oldest[1].events.length;
  }

  /** The events of one message in the order recorded (copies), and how many were not kept. */
  get(msgId: string): { events: StageEvent[]; dropped: number } | undefined {
    const entry = this.byMessage.get(msgId);
    return entry ? { events: entry.events.map((e) => ({ ...e })), dropped: entry.dropped } : undefined;
  }

  get size(): number {
    return this.byMessage.size;
  }

  /** Events held in all. */
  get events(): number {
    return this.total;
  }
}
