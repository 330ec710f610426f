import { Histogram, type HistogramConfiguration, type LabelValues } from 'prom-client';

/** One exported sample, as prom-client's histogram hands it to the registry. */
interface ExportedValue {
  labels: Record<string, string | number>;
  sharedLabels?: Record<string, string | number>;
  value: number;
  metricName?: string;
}
interface Exported {
  name: string;
  values: ExportedValue[];
}
type ExportFn = (this: Histogram) => Promise<Exported>;

/** What the registry and `get()` read a histogram through (prom-client 15); absent in another version: tallies then observe directly. */
const baseExport = (Histogram.prototype as unknown as { getForPromString?: ExportFn }).getForPromString;

/** Observations of one label set, counted by bucket (see TalliedHistogram). */
export class HistogramTally {
  /** counts[i]: observations in bucket i (≤ bounds[i], > bounds[i − 1]); the last: above every bound. */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(
    readonly labels: Readonly<Record<string, string | number>>,
    private readonly bounds: readonly number[],
    private readonly direct: ((value: number) => void) | null,
  ) {
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(value: number): void {
    if (this.direct !== null) return this.direct(value);
    if (!Number.isFinite(value)) throw new TypeError(`Value is not a valid number: ${value}`);
    const b = this.bounds;
    let i = 0;
    while (i < b.length && value > b[i]!) i++;
    this.counts[i]!++;
    this.sum += value;
    this.count++;
  }

  clear(): void {
    this.counts.fill(0);
    this.sum = 0;
    this.count = 0;
  }
}

/**
 * A prom-client Histogram whose hot label sets can be observed through a tally
 * (`tally(labels).observe(v)`: a bucket search and three additions). prom-client's own
 * observe builds an object, validates the labels and hashes them on every call, which is
 * measurable once per delivery (magpie_arrival_seconds{via="ack"}: one observation per ACKed
 * delivery, 60 000/s in a busy group). The tallies are added to what the histogram exports
 * whenever it is collected, so /metrics reads exactly as if every value had been observed.
 */
export class TalliedHistogram<T extends string = string> extends Histogram<T> {
  private readonly tallies: HistogramTally[] = [];
  private readonly bounds: number[];

  constructor(config: HistogramConfiguration<T> & { buckets: number[] }) {
    super(config);
    this.bounds = [...config.buckets].sort((a, b) => a - b);
  }

  /** A tally for `labels` (made once, at setup: it starts the label set at zero). */
  tally(labels: LabelValues<T>): HistogramTally {
    const own = { ...labels } as Record<string, string | number>;
    const t = new HistogramTally(own, this.bounds, baseExport ? null : (v) => this.observe(labels, v));
    this.tallies.push(t);
    this.zero(labels);
    return t;
  }

  override reset(): void {
    super.reset();
    // The base constructor resets too, before this class's fields exist.
    if (this.tallies === undefined) return;
    for (const t of this.tallies) {
      t.clear();
      this.zero(t.labels as LabelValues<T>);
    }
  }

  /** prom-client's export, plus the tallies (called by the registry and by `get()`). */
  async getForPromString(): Promise<Exported> {
    const data = await baseExport!.call(this as unknown as Histogram);
    if (this.tallies.length === 0) return data;
    const bucketName = `${data.name}_bucket`;
    const sumName = `${data.name}_sum`;
    const countName = `${data.name}_count`;
    for (const v of data.values) {
      const t = this.tallyOf(v.sharedLabels ?? {});
      if (!t || t.count === 0) continue;
      if (v.metricName === bucketName) {
        const le = v.labels.le;
        if (le === '+Inf') v.value += t.count;
        else {
          let below = 0;
          for (let i = 0; i < this.bounds.length && this.bounds[i]! <= Number(le); i++) below += t.counts[i]!;
          v.value += below;
        }
      } else if (v.metricName === sumName) v.value += t.sum;
      else if (v.metricName === countName) v.value += t.count;
    }
    return data;
  }

  private tallyOf(labels: Record<string, string | number>): HistogramTally | undefined {
    outer: for (const t of this.tallies) {
      const keys = Object.keys(t.labels);
      if (keys.length !== Object.keys(labels).length) continue;
      for (const k of keys) if (String(labels[k]) !== String(t.labels[k])) continue outer;
      return t;
    }
    return undefined;
  }
}

// Without prom-client's export hook the tallies observe directly (above); nothing to add then.
if (!baseExport) delete (TalliedHistogram.prototype as unknown as { getForPromString?: unknown }).getForPromString;
