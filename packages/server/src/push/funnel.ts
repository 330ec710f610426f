import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { Logger } from 'pino';
import type { PushStore } from './push-store.ts';
import { utcDay } from './policy.ts';
import { FUNNEL_STAGES, type DropReason, type FunnelStage, type PushCategory, type PushLane, type PushProviderName, type StatDelta, type ProviderOutcome } from './types.ts';

type ProviderLabel = PushProviderName | 'none';

/**
 * The push funnel: requested → accepted (durable in our queue) → provider_accepted →
 * delivered → displayed (reported by the service worker / SDK) → clicked, by category and
 * provider, plus drops by reason. Counted twice: as Prometheus counters on the server's
 * registry (per node, since start) and as durable per-day rows in the PushStore (flushed
 * every second) that the admin report reads (all nodes, any period).
 */
export class PushFunnel {
  readonly stages: Counter<'stage' | 'category' | 'provider'>;
  readonly dropped: Counter<'reason' | 'category' | 'provider'>;
  readonly attempts: Counter<'provider' | 'outcome'>;
  readonly providerSeconds: Histogram<'provider'>;
  readonly queueSeconds: Histogram<'lane'>;
  readonly depth: Gauge<'lane'>;
  private pending = new Map<string, StatDelta>();
  /** Label children cached per label set: prom-client's inc(labels) hashes the labels on every call. */
  private readonly stageChildren = new Map<string, { inc(n?: number): void }>();
  private readonly dropChildren = new Map<string, { inc(n?: number): void }>();
  private day = { start: 0, end: -1, name: '' };
  private timer: NodeJS.Timeout | null = null;
  private flushing: Promise<void> = Promise.resolve();

  constructor(
    registry: Registry,
    private readonly store: PushStore,
    private readonly now: () => number = Date.now,
    private readonly log?: Logger,
  ) {
    this.stages = new Counter({
      name: 'magpie_push_funnel_total',
      help: 'Push funnel by stage (requested, accepted, provider_accepted, delivered, displayed, clicked), category and provider',
      labelNames: ['stage', 'category', 'provider'] as const,
      registers: [registry],
    });
    this.dropped = new Counter({
      name: 'magpie_push_dropped_total',
      help: 'Pushes dropped, by reason (no_device, notifications_off, muted, quota, collapsed, invalid_token, failed, …), category and provider',
      labelNames: ['reason', 'category', 'provider'] as const,
      registers: [registry],
    });
    this.attempts = new Counter({
      name: 'magpie_push_attempts_total',
      help: 'Provider requests by provider and outcome (ok, invalid_token, bad_request, transient, auth)',
      labelNames: ['provider', 'outcome'] as const,
      registers: [registry],
    });
    this.providerSeconds = new Histogram({
      name: 'magpie_push_provider_seconds',
      help: 'Provider request latency',
      labelNames: ['provider'] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    });
    this.queueSeconds = new Histogram({
      name: 'magpie_push_queue_seconds',
      help: 'Time from a job being due to its first dispatch, by lane',
      labelNames: ['lane'] as const,
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 5, 30, 120],
      registers: [registry],
    });
    this.depth = new Gauge({ name: 'magpie_push_queue_depth', help: 'Push jobs queued or in flight, by lane', labelNames: ['lane'] as const, registers: [registry] });
  }

  stage(stage: FunnelStage, category: PushCategory, provider: ProviderLabel, n = 1): void {
    if (n <= 0) return;
    const key = `${stage}|${category}|${provider}`;
    let c = this.stageChildren.get(key);
    if (!c) this.stageChildren.set(key, (c = this.stages.labels(stage, category, provider)));
    c.inc(n);
    this.add(category, provider, stage, n);
  }

  drop(reason: DropReason, category: PushCategory, provider: ProviderLabel, n = 1): void {
    if (n <= 0) return;
    const key = `${reason}|${category}|${provider}`;
    let c = this.dropChildren.get(key);
    if (!c) this.dropChildren.set(key, (c = this.dropped.labels(reason, category, provider)));
    c.inc(n);
    this.add(category, provider, `dropped:${reason}`, n);
  }

  attempt(provider: PushProviderName, outcome: ProviderOutcome, seconds: number): void {
    this.attempts.inc({ provider, outcome });
    this.providerSeconds.observe({ provider }, seconds);
  }

  queued(lane: PushLane, seconds: number): void {
    this.queueSeconds.observe({ lane }, seconds);
  }

  setDepth(d: Record<PushLane, number>): void {
    for (const [lane, n] of Object.entries(d)) this.depth.set({ lane }, n);
  }

  private add(category: PushCategory, provider: ProviderLabel, stage: string, n: number): void {
    const now = this.now();
    if (now < this.day.start || now > this.day.end) {
      const start = now - (now % 86_400_000);
      this.day = { start, end: start + 86_400_000 - 1, name: utcDay(now) };
    }
    const day = this.day.name;
    const key = `${day}|${category}|${provider}|${stage}`;
    const have = this.pending.get(key);
    if (have) have.n += n;
    else this.pending.set(key, { day, category, provider, stage, n });
  }

  start(intervalMs = 1000): void {
    this.timer = setInterval(() => void this.flush(), intervalMs);
    this.timer.unref();
  }

  /** Write the buffered counts (serialized; a failed write is put back and retried). */
  flush(): Promise<void> {
    this.flushing = this.flushing.then(async () => {
      if (this.pending.size === 0) return;
      const batch = [...this.pending.values()];
      this.pending = new Map();
      try {
        await this.store.addStats(batch);
      } catch (err) {
        this.log?.warn({ err }, 'push stats flush failed; will retry');
        for (const d of batch) {
          const key = `${d.day}|${d.category}|${d.provider}|${d.stage}`;
          const have = this.pending.get(key);
          if (have) have.n += d.n;
          else this.pending.set(key, d);
        }
      }
    });
    return this.flushing;
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.flush();
  }

  /** The admin report for [fromDay, toDay] (UTC days). */
  async report(fromDay: string, toDay: string): Promise<FunnelReport> {
    await this.flush();
    return buildReport(fromDay, toDay, await this.store.stats(fromDay, toDay));
  }
}

export interface FunnelCounts {
  stages: Record<FunnelStage, number>;
  dropped: Record<string, number>;
}

export interface FunnelReport extends FunnelCounts {
  from: string;
  to: string;
  /** Conversion between consecutive stages. */
  steps: { from: FunnelStage; to: FunnelStage; rate: number | null; lost: number }[];
  /** The step that loses the largest share: where optimisation pays most. */
  narrowest: { from: FunnelStage; to: FunnelStage; rate: number; lost: number } | null;
  byCategory: Record<string, FunnelCounts>;
  byProvider: Record<string, FunnelCounts>;
  days: Record<string, FunnelCounts>;
}

const emptyCounts = (): FunnelCounts => ({ stages: Object.fromEntries(FUNNEL_STAGES.map((s) => [s, 0])) as Record<FunnelStage, number>, dropped: {} });

function addRow(c: FunnelCounts, row: StatDelta): void {
  if (row.stage.startsWith('dropped:')) {
    const r = row.stage.slice(8);
    c.dropped[r] = (c.dropped[r] ?? 0) + row.n;
  } else if ((FUNNEL_STAGES as readonly string[]).includes(row.stage)) c.stages[row.stage as FunnelStage] += row.n;
}

export function buildReport(from: string, to: string, rows: StatDelta[]): FunnelReport {
  const total = emptyCounts();
  const byCategory: Record<string, FunnelCounts> = {};
  const byProvider: Record<string, FunnelCounts> = {};
  const days: Record<string, FunnelCounts> = {};
  for (const r of rows) {
    addRow(total, r);
    addRow((byCategory[r.category] ??= emptyCounts()), r);
    addRow((byProvider[r.provider] ??= emptyCounts()), r);
    addRow((days[r.day] ??= emptyCounts()), r);
  }
  const steps = FUNNEL_STAGES.slice(1).map((to, i) => {
    const from = FUNNEL_STAGES[i]!;
    const a = total.stages[from];
    const b = total.stages[to];
    return { from, to, rate: a > 0 ? b / a : null, lost: Math.max(0, a - b) };
  });
  let narrowest: FunnelReport['narrowest'] = null;
  for (const s of steps) if (s.rate !== null && (narrowest === null || s.rate < narrowest.rate)) narrowest = { from: s.from, to: s.to, rate: s.rate, lost: s.lost };
  return { from, to, ...total, steps, narrowest, byCategory, byProvider, days };
}
