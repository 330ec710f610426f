import type { Message } from '@magpie/protocol';
import { Timer, type Clock } from './clock.ts';
import { MagpieClientError, toClientError } from './errors.ts';
import type { LocalStore, OutgoingRecord } from './local-store.ts';
import type { RequestFrame, SendResult } from './wire.ts';

export interface SendQueueOptions {
  /** Frames written for one message before it is marked failed. */
  maxAttempts: number;
  /** A message not accepted within this time after it was (re)queued is marked failed. */
  maxAgeMs: number;
  /** Delay before resending after a retryable server error (the server's retryAfterMs wins when larger); after a timeout the resend goes at once. */
  retryDelayMs: number;
  /** Timeout of one send request. */
  requestTimeoutMs: number;
  /** Sends in flight at once on a connection. */
  window: number;
}

export const defaultSendQueueOptions: SendQueueOptions = {
  maxAttempts: 8,
  maxAgeMs: 300_000,
  retryDelayMs: 2_000,
  requestTimeoutMs: 15_000,
  window: 8,
};

export interface SendLink {
  /** True while there is an authenticated connection. */
  ready(): boolean;
  send(frame: Extract<RequestFrame, { type: 'send' }>, timeoutMs: number): Promise<SendResult>;
}

export interface SendQueueHooks {
  /** A record was added or changed state. */
  changed(record: OutgoingRecord): void;
  /** The server accepted a message: feed its inbox position to the ordered queue. */
  accepted(record: OutgoingRecord, result: SendResult): void;
}

export interface SendTarget {
  conv?: string;
  to?: string;
}

/**
 * Outgoing messages: each gets a clientMsgId once and keeps it across every retry and
 * reconnect (the server deduplicates by it). States: sending → sent, or failed after
 * `maxAttempts` frames, `maxAgeMs`, or a non-retryable server error; retry() re-queues a
 * failed one. A record stays until the stored message replaces it (settle()).
 *
 * Order: the messages of one conversation (a "lane") are written in the order they were
 * queued, up to `window` in flight at once. The server appends one connection's sends in
 * arrival order and refuses every send of a lane behind one it refused with a retryable
 * error until that one comes again, so a failure holds back everything behind it:
 * - nothing behind a message that waits for its retry is sent;
 * - a message that got a retryable answer (rate_limited, timeout, …) is resent alone: the
 *   lane goes one-at-a-time until every such message is accepted, then pipelines again;
 * - after a lost connection the lane is resent in order (a resend of a message the server
 *   already stored returns the first result).
 */
export class SendQueue {
  private readonly records = new Map<string, OutgoingRecord>();
  private readonly inFlight = new Set<string>();
  private readonly retryAt = new Map<string, number>();
  private readonly expired = new Set<string>();
  /** Messages that got a retryable answer on a live connection: resent one at a time. */
  private readonly troubled = new Set<string>();
  private readonly waiters = new Map<string, ((r: OutgoingRecord) => void)[]>();
  /** Recently settled records, so wait() after the fact still answers. */
  private readonly settled = new Map<string, OutgoingRecord>();
  private readonly retryTimer: Timer;
  private readonly ageTimer: Timer;
  private writes: Promise<unknown> = Promise.resolve();
  private stopped = false;

  constructor(
    private readonly store: LocalStore,
    private readonly clock: Clock,
    private readonly link: SendLink,
    private readonly hooks: SendQueueHooks,
    private readonly newId: () => string,
    readonly options: SendQueueOptions = defaultSendQueueOptions,
  ) {
    this.retryTimer = new Timer(clock);
    this.ageTimer = new Timer(clock);
  }

  /** Load what a previous run left (messages still sending are resumed). */
  async init(): Promise<void> {
    const list = await this.store.listOutgoing();
    list.sort((a, b) => a.createdAt - b.createdAt);
    this.records.clear();
    for (const r of list) this.records.set(r.clientMsgId, r);
    this.armAgeTimer();
  }

  get(clientMsgId: string): OutgoingRecord | undefined {
    const r = this.records.get(clientMsgId);
    return r ? { ...r } : undefined;
  }

  list(): OutgoingRecord[] {
    return [...this.records.values()].map((r) => ({ ...r }));
  }

  get inFlightCount(): number {
    return this.inFlight.size;
  }

  async enqueue(target: SendTarget, kind: string, body: unknown, mentions?: string[] | 'all'): Promise<OutgoingRecord> {
    if ((target.conv === undefined) === (target.to === undefined)) {
      throw new MagpieClientError('invalid', 'exactly one of `conv` and `to` is required');
    }
    const now = this.clock.now();
    const record: OutgoingRecord = {
      clientMsgId: this.newId(),
      conv: target.conv ?? null,
      to: target.to ?? null,
      kind,
      body,
      createdAt: now,
      queuedAt: now,
      attempts: 0,
      state: 'sending',
      error: null,
      message: null,
      inboxSeq: null,
    };
    if (mentions !== undefined) record.mentions = mentions;
    this.records.set(record.clientMsgId, record);
    await this.persist(record);
    this.hooks.changed({ ...record });
    this.armAgeTimer();
    this.pump();
    return { ...record };
  }

  /** Re-queue a failed message with the same clientMsgId. */
  async retry(clientMsgId: string): Promise<OutgoingRecord> {
    const r = this.records.get(clientMsgId);
    if (!r) throw new MagpieClientError('not_found', `no outgoing message ${clientMsgId}`);
    if (r.state !== 'failed') return { ...r };
    r.state = 'sending';
    r.attempts = 0;
    r.error = null;
    r.queuedAt = this.clock.now();
    this.expired.delete(clientMsgId);
    this.retryAt.delete(clientMsgId);
    await this.persist(r);
    this.hooks.changed({ ...r });
    this.armAgeTimer();
    this.pump();
    return { ...r };
  }

  /** Resolves when the message is sent (or its stored copy arrived) or failed. */
  wait(clientMsgId: string): Promise<OutgoingRecord | undefined> {
    const done = this.settled.get(clientMsgId);
    if (done) return Promise.resolve({ ...done });
    const r = this.records.get(clientMsgId);
    if (!r || r.state !== 'sending') return Promise.resolve(r ? { ...r } : undefined);
    return new Promise((resolve) => {
      const list = this.waiters.get(clientMsgId) ?? [];
      list.push(resolve as (r: OutgoingRecord) => void);
      this.waiters.set(clientMsgId, list);
    });
  }

  /**
   * The server's copy of an own message was stored locally (through the inbox): the
   * record is no longer needed. Returns the record if there was one.
   */
  async settle(message: Message): Promise<OutgoingRecord | undefined> {
    const r = this.records.get(message.clientMsgId);
    if (!r) return undefined;
    this.records.delete(message.clientMsgId);
    this.retryAt.delete(message.clientMsgId);
    this.troubled.delete(message.clientMsgId);
    this.expired.delete(message.clientMsgId);
    r.state = 'sent';
    r.error = null;
    r.message = message;
    r.conv = message.conv;
    this.settled.set(r.clientMsgId, r);
    if (this.settled.size > 1000) this.settled.delete(this.settled.keys().next().value!);
    await this.enqueueWrite(() => this.store.deleteOutgoing(message.clientMsgId));
    this.resolveWaiters(r);
    return { ...r };
  }

  /** Connection is (again) usable: send what waits. */
  kick(): void {
    this.pump();
  }

  stop(): void {
    this.stopped = true;
    this.retryTimer.stop();
    this.ageTimer.stop();
  }

  start(): void {
    this.stopped = false;
    this.armAgeTimer();
  }

  private pump(): void {
    if (this.stopped || !this.link.ready()) return;
    const now = this.clock.now();
    let nextRetry = Infinity;
    // Lanes in which nothing more may be sent in this round.
    const blocked = new Set<string>();
    for (const r of this.records.values()) {
      if (r.state !== 'sending') continue;
      const lane = laneOf(r);
      if (blocked.has(lane)) continue;
      const careful = this.troubled.has(r.clientMsgId);
      if (this.inFlight.has(r.clientMsgId)) {
        if (careful) blocked.add(lane);
        continue;
      }
      const at = this.retryAt.get(r.clientMsgId);
      if (at !== undefined && at > now) {
        nextRetry = Math.min(nextRetry, at);
        blocked.add(lane);
        continue;
      }
      if (this.inFlight.size >= this.options.window) break;
      this.retryAt.delete(r.clientMsgId);
      this.attempt(r);
      if (careful) blocked.add(lane);
      if (!this.link.ready()) return;
    }
    if (nextRetry !== Infinity && (!this.retryTimer.active || (this.retryTimer.remaining() ?? 0) > nextRetry - now)) {
      this.retryTimer.start(nextRetry - now, () => this.pump());
    }
  }

  private attempt(r: OutgoingRecord): void {
    const id = r.clientMsgId;
    this.inFlight.add(id);
    r.attempts++;
    void this.persist(r);
    const frame: Extract<RequestFrame, { type: 'send' }> =
      r.conv !== null
        ? { type: 'send', clientMsgId: id, conv: r.conv, kind: r.kind, body: r.body }
        : { type: 'send', clientMsgId: id, to: r.to!, kind: r.kind, body: r.body };
    if (r.mentions !== undefined) frame.mentions = r.mentions;
    this.link.send(frame, this.options.requestTimeoutMs).then(
      (result) => this.onAccepted(id, result),
      (err) => this.onFailed(id, toClientError(err)),
    );
  }

  private onAccepted(id: string, result: SendResult): void {
    this.inFlight.delete(id);
    const r = this.records.get(id);
    if (r) {
      // Accepted wins over every local verdict (even "failed" by age while in flight).
      r.state = 'sent';
      r.error = null;
      r.message = result.message;
      r.inboxSeq = result.inboxSeq;
      r.conv = result.message.conv;
      this.retryAt.delete(id);
      this.expired.delete(id);
      this.troubled.delete(id);
      void this.persist(r);
      this.hooks.changed({ ...r });
      this.resolveWaiters(r);
      this.hooks.accepted({ ...r }, result);
    } else {
      // Already settled through the inbox; still let the ordered queue see the position.
      this.hooks.accepted(
        { clientMsgId: id, conv: result.message.conv, to: null, kind: result.message.kind, body: result.message.body, createdAt: 0, queuedAt: 0, attempts: 0, state: 'sent', error: null, message: result.message, inboxSeq: result.inboxSeq },
        result,
      );
    }
    this.pump();
  }

  private onFailed(id: string, err: MagpieClientError): void {
    this.inFlight.delete(id);
    const r = this.records.get(id);
    if (!r || r.state !== 'sending') {
      this.pump();
      return;
    }
    if (err.code === 'not_connected') {
      // Never written: not an attempt. Wait for the next connection.
      r.attempts = Math.max(0, r.attempts - 1);
      void this.persist(r);
      return;
    }
    if (!err.retryable || r.attempts >= this.options.maxAttempts || this.expired.has(id)) {
      this.fail(r, err);
      this.pump();
      return;
    }
    if (err.code !== 'disconnected') {
      this.troubled.add(id);
      // A timeout already waited long enough: resend now (alone; the server deduplicates).
      const delay = err.code === 'timeout' ? 0 : Math.max(this.options.retryDelayMs, err.retryAfterMs ?? 0);
      this.retryAt.set(id, this.clock.now() + delay);
    }
    // disconnected: resent when the next connection is ready (kick()).
    this.pump();
  }

  private fail(r: OutgoingRecord, err: MagpieClientError): void {
    this.troubled.delete(r.clientMsgId);
    r.state = 'failed';
    r.error = { code: err.code, message: err.message };
    this.retryAt.delete(r.clientMsgId);
    this.expired.delete(r.clientMsgId);
    void this.persist(r);
    this.hooks.changed({ ...r });
    this.resolveWaiters(r);
    this.armAgeTimer();
  }

  private resolveWaiters(r: OutgoingRecord): void {
    const list = this.waiters.get(r.clientMsgId);
    if (!list) return;
    this.waiters.delete(r.clientMsgId);
    for (const w of list) w({ ...r });
  }

  private armAgeTimer(): void {
    if (this.stopped) return;
    let earliest = Infinity;
    for (const r of this.records.values()) {
      if (r.state === 'sending' && !this.expired.has(r.clientMsgId)) earliest = Math.min(earliest, r.queuedAt + this.options.maxAgeMs);
    }
    if (earliest === Infinity) {
      this.ageTimer.stop();
      return;
    }
    this.ageTimer.start(Math.max(0, earliest - this.clock.now()), () => this.expire());
  }

  private expire(): void {
    const now = this.clock.now();
    for (const r of [...this.records.values()]) {
      if (r.state !== 'sending' || r.queuedAt + this.options.maxAgeMs > now) continue;
      if (this.inFlight.has(r.clientMsgId)) this.expired.add(r.clientMsgId); // decided when the attempt ends
      else this.fail(r, new MagpieClientError('timeout', `not sent within ${this.options.maxAgeMs} ms`));
    }
    this.armAgeTimer();
  }

  private persist(r: OutgoingRecord): Promise<void> {
    const copy = { ...r };
    return this.enqueueWrite(async () => {
      // A record settled in the meantime must not be written back.
      if (this.records.has(copy.clientMsgId)) await this.store.putOutgoing(copy);
    });
  }

  private enqueueWrite(fn: () => Promise<void>): Promise<void> {
    const p = this.writes.then(fn);
    this.writes = p.catch(() => undefined);
    return p;
  }
}

/** The ordering lane of a message: its conversation (a direct message not yet stored: its recipient). */
function laneOf(r: OutgoingRecord): string {
  return r.conv ?? `to:${r.to}`;
}
