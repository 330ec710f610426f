import type { Registry } from 'prom-client';

/** Which series the console charts, from which metric, split by which label (if any). */
const SOURCES: { metric: string; series: string; by?: string; filter?: Record<string, string> }[] = [
  { metric: 'magpie_connections', series: 'connections' },
  { metric: 'magpie_sends_total', series: 'sends', filter: { outcome: 'ok' } },
  { metric: 'magpie_deliveries_total', series: 'deliveries' },
  { metric: 'magpie_acks_total', series: 'acks' },
  { metric: 'magpie_retries_total', series: 'retries' },
  { metric: 'magpie_downlink_deliveries_total', series: 'downlink', by: 'outcome' },
  { metric: 'magpie_push_funnel_total', series: 'push', by: 'stage' },
  { metric: 'magpie_webhook_deliveries_total', series: 'webhooks', by: 'outcome' },
];

/**
 * Samples this node's Prometheus metrics every `intervalMs` into a ring of `points` samples
 * per series, for the console's charts (a Prometheus server is the tool for long histories;
 * this is what an operator sees with nothing else installed). Counters are kept as totals;
 * the console charts their per-interval differences.
 */
export class MetricsSampler {
  private readonly series = new Map<string, [number, number][]>();
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly registry: Registry,
    readonly intervalMs: number,
    private readonly points: number,
    private readonly now: () => number = Date.now,
  ) {}

  start(): void {
    void this.sample();
    this.timer = setInterval(() => void this.sample(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  async sample(): Promise<void> {
    const t = this.now();
    for (const src of SOURCES) {
      const metric = this.registry.getSingleMetric(src.metric);
      if (!metric) continue;
      const { values } = await metric.get();
      const sums = new Map<string, number>();
      if (!src.by) sums.set(src.series, 0);
      for (const v of values) {
        const labels = v.labels as Record<string, string | number>;
        if (src.filter && Object.entries(src.filter).some(([k, want]) => String(labels[k]) !== want)) continue;
        const key = src.by ? `${src.series}.${labels[src.by] ?? 'unknown'}` : src.series;
        sums.set(key, (sums.get(key) ?? 0) + v.value);
      }
      for (const [key, value] of sums) {
        const ring = this.series.get(key) ?? [];
        ring.push([t, value]);
        if (ring.length > this.points) ring.shift();
        this.series.set(key, ring);
      }
    }
  }

  snapshot(): Record<string, [number, number][]> {
    return Object.fromEntries(this.series);
  }
}
