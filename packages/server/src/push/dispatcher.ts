import type { Logger } from 'pino';
import type { PushStore } from './push-store.ts';
import type { PushFunnel } from './funnel.ts';
import { backoffMs } from './policy.ts';
import type { ProviderMessage, PushProviderAdapter } from './providers/provider.ts';
import type { ClaimedJob, JobCompletion, PushLane, PushProviderName, ProviderResult } from './types.ts';
import type { LoopGuard } from './loop-guard.ts';

export interface LaneOptions {
  concurrency: number;
  /** Jobs started per second; 0 = no cap. */
  ratePerSec: number;
}

export interface DispatcherOptions {
  lanes: Record<PushLane, LaneOptions>;
  maxAttempts: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
  leaseMs: number;
  /**
   * Longest sleep between polls when nothing is due: a safety net, not how work is found. Jobs
   * enqueued on this node kick it (PushService.enqueue); a job due later wakes it at its due
   * time (nextDue is the shared queue's, so also another node's job); another node's backlog
   * wakes it through that node's `onBacklog` (the Bus); what is left is a node that died
   * between enqueueing jobs and claiming them. Default 5000.
   */
  idlePollMs?: number;
  /**
   * A lane claimed a full batch (more may be due than this node takes at once): tell the other
   * nodes (app.ts: a Bus `push` event, on which they kick that lane). At most once per
   * BACKLOG_HINT_MS per lane.
   */
  onBacklog?: (lane: PushLane) => void;
  /** Housekeeping period: expired leases, expired jobs, queue depth. */
  sweepMs?: number;
  retentionMs: number;
  /** Scales the bulk lane's rate down while the event loop lags (live chat first). */
  guard?: LoopGuard;
}

/**
 * Sends queued push jobs. Each lane has its own loop, concurrency and rate, so a marketing
 * burst in the bulk lane never takes a slot from live chat. A lane claims due jobs in
 * batches (one transaction), sends them concurrently through the provider adapters, and
 * records the outcomes in batches (one transaction per event-loop turn).
 */
export class PushDispatcher {
  private readonly lanes: Record<PushLane, LaneRunner>;
  private sweepTimer: NodeJS.Timeout | null = null;
  /** The housekeeping pass running now, if any: `stop()` waits for it (its queries must not outlive the store). */
  private sweeping: Promise<void> | null = null;
  private lastPrune = 0;
  private stopped = true;

  constructor(
    readonly store: PushStore,
    private readonly providers: Partial<Record<PushProviderName, PushProviderAdapter>>,
    readonly funnel: PushFunnel,
    private readonly message: (job: ClaimedJob) => ProviderMessage,
    private readonly opts: DispatcherOptions,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {
    this.lanes = {
      live: new LaneRunner('live', opts.lanes.live, this),
      bulk: new LaneRunner('bulk', opts.lanes.bulk, this),
    };
  }

  async start(): Promise<void> {
    this.stopped = false;
    await this.sweep();
    this.sweepTimer = setInterval(() => void this.sweep(), this.opts.sweepMs ?? 5000);
    this.sweepTimer.unref();
    this.lanes.live.kick();
    this.lanes.bulk.kick();
  }

  /** New work may be due in this lane (or in both). */
  kick(lane?: PushLane): void {
    if (this.stopped) return;
    if (lane) this.lanes[lane].kick();
    else {
      this.lanes.live.kick();
      this.lanes.bulk.kick();
    }
  }

  get isStopped(): boolean {
    return this.stopped;
  }

  /** Wait until both lanes have nothing in flight and nothing due now. */
  async idle(timeoutMs = 10_000): Promise<void> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const busy = this.lanes.live.busy || this.lanes.bulk.busy;
      if (!busy) {
        const now = this.now();
        const due = await Promise.all((['live', 'bulk'] as const).map((l) => this.store.nextDue(l)));
        if (due.every((t) => t === null || t > now)) return;
      }
      if (Date.now() > until) throw new Error('push dispatcher did not go idle');
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    await Promise.all([this.lanes.live.stop(), this.lanes.bulk.stop(), this.sweeping]);
  }

  /**
   * Crash recovery and housekeeping. One pass at a time: a call while a pass runs joins it (a
   * slow database must not stack passes up behind the interval).
   */
  sweep(): Promise<void> {
    if (!this.sweeping) this.sweeping = this.sweepOnce().finally(() => (this.sweeping = null));
    return this.sweeping;
  }

  private async sweepOnce(): Promise<void> {
    try {
      const now = this.now();
      const requeued = await this.store.requeueExpired(now);
      if (requeued > 0) this.log.warn({ requeued }, 'push jobs whose lease expired were queued again');
      for (const j of await this.store.expire(now)) this.funnel.drop('expired', j.category, j.provider);
      this.funnel.setDepth(await this.store.queueDepth());
      if (now - this.lastPrune > 3600_000) {
        this.lastPrune = now;
        await this.store.prune(now - this.opts.retentionMs);
      }
      if (requeued > 0) this.kick();
    } catch (err) {
      this.log.error({ err }, 'push sweep failed');
    }
  }

  // --- used by the lanes ---

  get nowMs(): number {
    return this.now();
  }

  provider(name: PushProviderName): PushProviderAdapter | undefined {
    return this.providers[name];
  }

  buildMessage(job: ClaimedJob): ProviderMessage {
    return this.message(job);
  }

  /** What a job becomes after an attempt. */
  decide(job: ClaimedJob, r: ProviderResult, at: number): JobCompletion['next'] {
    switch (r.outcome) {
      case 'ok':
        return { status: 'sent' };
      case 'invalid_token':
        return { status: 'dropped', reason: 'invalid_token' };
      case 'bad_request':
        return { status: 'failed', reason: `bad_request: ${r.reason ?? r.status}` };
      case 'transient':
      case 'auth': {
        const notBefore = at + backoffMs(job.attempts, this.opts.backoffBaseMs, this.opts.backoffMaxMs, r.retryAfterMs);
        if (job.attempts >= this.opts.maxAttempts || notBefore >= job.expiresAt) return { status: 'failed', reason: `gave_up: ${r.reason ?? r.status}` };
        return { status: 'queued', notBefore };
      }
    }
  }

  /** Funnel accounting for completed attempts. */
  account(job: ClaimedJob, c: JobCompletion): void {
    this.funnel.attempt(job.device.provider, c.result.outcome, c.latencyMs / 1000);
    const p = job.device.provider;
    if (c.next.status === 'sent') this.funnel.stage('provider_accepted', job.category, p);
    else if (c.next.status === 'dropped') this.funnel.drop('invalid_token', job.category, p);
    else if (c.next.status === 'failed') this.funnel.drop(c.next.reason.startsWith('bad_request') ? 'bad_request' : c.next.reason === 'provider_unconfigured' ? 'provider_unconfigured' : 'failed', job.category, p);
  }

  claim(lane: PushLane, limit: number): ReturnType<PushStore['claim']> {
    return this.store.claim(lane, this.now(), limit, this.opts.leaseMs);
  }

  /** Rate factor for a lane: 1 for live, the loop guard's factor for bulk. */
  rateFactor(lane: PushLane): number {
    return lane === 'bulk' && this.opts.guard ? this.opts.guard.factor : 1;
  }

  /** A lane claimed jobs: the bulk lane's guard samples the loop while such work goes on. */
  working(lane: PushLane): void {
    if (lane === 'bulk') this.opts.guard?.busy();
  }

  get idlePollMs(): number {
    return this.opts.idlePollMs ?? 5000;
  }

  private readonly hinted: Record<PushLane, number> = { live: -Infinity, bulk: -Infinity };

  /** A lane has more due than it claimed: hint the other nodes (throttled per lane). */
  backlog(lane: PushLane): void {
    if (!this.opts.onBacklog) return;
    const now = performance.now();
    if (now - this.hinted[lane] < BACKLOG_HINT_MS) return;
    this.hinted[lane] = now;
    try {
      this.opts.onBacklog(lane);
    } catch (err) {
      this.log.warn({ err, lane }, 'push backlog hint failed');
    }
  }

  get logger(): Logger {
    return this.log;
  }
}

/** Shortest interval between two backlog hints of one lane (PushDispatcher.backlog). */
const BACKLOG_HINT_MS = 250;

/** One lane's loop. */
class LaneRunner {
  private inflight = 0;
  private claiming = false;
  private scheduled = false;
  private timer: NodeJS.Timeout | null = null;
  private completions: { job: ClaimedJob; c: JobCompletion }[] = [];
  private flushScheduled = false;
  private flushing: Promise<void> = Promise.resolve();
  private tokens: number;
  private lastRefill = Date.now();

  constructor(
    private readonly lane: PushLane,
    private readonly opts: LaneOptions,
    private readonly d: PushDispatcher,
  ) {
    this.tokens = opts.ratePerSec > 0 ? Math.max(1, opts.ratePerSec / 10) : Infinity;
  }

  get busy(): boolean {
    return this.inflight > 0 || this.claiming || this.completions.length > 0 || this.flushScheduled;
  }

  kick(): void {
    if (this.scheduled || this.d.isStopped) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      void this.pass();
    });
  }

  private sleep(ms: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      this.kick();
    }, Math.max(1, ms));
    this.timer.unref();
  }

  private refill(): void {
    if (this.opts.ratePerSec <= 0) return;
    const now = Date.now();
    // At most 100 ms of budget accumulates: a rate cap, not a burst allowance.
    const rate = this.opts.ratePerSec * this.d.rateFactor(this.lane);
    this.tokens = Math.min(Math.max(1, rate / 10), this.tokens + ((now - this.lastRefill) / 1000) * rate);
    this.lastRefill = now;
  }

  private async pass(): Promise<void> {
    if (this.claiming || this.d.isStopped) return;
    // Claim in batches: wait until half the slots are free (one transaction per batch, not per job).
    if (this.inflight > this.opts.concurrency / 2) return;
    this.refill();
    const room = Math.min(this.opts.concurrency - this.inflight, Math.floor(this.tokens));
    if (room <= 0) {
      if (this.tokens < 1) this.sleep(Math.ceil(((1 - this.tokens) / (this.opts.ratePerSec * this.d.rateFactor(this.lane))) * 1000));
      return; // a completion frees a slot and kicks again
    }
    this.claiming = true;
    let claimed;
    try {
      claimed = await this.d.claim(this.lane, room);
    } catch (err) {
      this.d.logger.error({ err, lane: this.lane }, 'push claim failed');
      this.claiming = false;
      this.sleep(1000);
      return;
    }
    this.claiming = false;
    for (const j of claimed.unbound) this.d.funnel.drop('unbound', j.category, j.provider);
    // Bulk work going on: the loop guard samples (it sleeps while the bulk lane has nothing).
    if (claimed.jobs.length > 0) this.d.working(this.lane);
    const now = this.d.nowMs;
    for (const job of claimed.jobs) {
      if (this.opts.ratePerSec > 0) this.tokens -= 1;
      if (job.attempts === 1) this.d.funnel.queued(this.lane, Math.max(0, now - job.notBefore) / 1000);
      void this.run(job);
    }
    if (claimed.jobs.length + claimed.unbound.length >= room && room > 0) {
      this.d.backlog(this.lane);
      this.kick();
      return;
    }
    // Nothing more due now: sleep until the next due job, but poll at least every idlePollMs.
    const next = await this.d.store.nextDue(this.lane).catch(() => null);
    const wait = next === null ? this.d.idlePollMs : Math.min(this.d.idlePollMs, next - this.d.nowMs);
    if (next !== null && wait <= 0 && this.inflight < this.opts.concurrency) this.kick();
    else this.sleep(wait);
  }

  private async run(job: ClaimedJob): Promise<void> {
    this.inflight++;
    const started = performance.now();
    const provider = this.d.provider(job.device.provider);
    let result: ProviderResult;
    if (!provider) result = { outcome: 'bad_request', status: 0, reason: 'provider_unconfigured' };
    else {
      try {
        result = await provider.send(job.device, this.d.buildMessage(job));
      } catch (err) {
        result = { outcome: 'transient', status: 0, reason: (err as Error).message?.slice(0, 200) ?? 'error' };
      }
    }
    const at = this.d.nowMs;
    const next = !provider ? ({ status: 'failed', reason: 'provider_unconfigured' } as const) : this.d.decide(job, result, at);
    const c: JobCompletion = {
      jobId: job.id,
      attempt: job.attempts,
      at,
      latencyMs: performance.now() - started,
      result,
      next,
      ...(result.outcome === 'invalid_token' ? { removeToken: { provider: job.device.provider, token: job.device.token } } : {}),
    };
    if (result.outcome !== 'ok') this.d.logger.debug({ job: job.id, user: job.userId, device: job.deviceId, result, next }, 'push attempt did not succeed');
    this.completions.push({ job, c });
    this.scheduleFlush();
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushing = this.flushing.then(() => this.flush());
    });
  }

  private async flush(): Promise<void> {
    this.flushScheduled = false;
    const batch = this.completions;
    this.completions = [];
    if (batch.length === 0) return;
    try {
      await this.d.store.complete(batch.map((b) => b.c));
      for (const b of batch) this.d.account(b.job, b.c);
    } catch (err) {
      // Not recorded: the lease expires and the jobs are sent again (at least once).
      this.d.logger.error({ err, n: batch.length }, 'recording push outcomes failed');
    }
    this.inflight -= batch.length;
    const retrySoon = batch.some((b) => b.c.next.status === 'queued');
    if (retrySoon || this.inflight <= this.opts.concurrency / 2) this.kick();
  }

  async stop(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const until = Date.now() + 5000;
    while ((this.inflight > 0 || this.completions.length > 0) && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
    await this.flushing;
  }
}
