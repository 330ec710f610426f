import { ROOT_CONTEXT, SpanKind, SpanStatusCode, TraceFlags, trace, type Attributes, type Context, type Span, type Tracer } from '@opentelemetry/api';
import { BatchSpanProcessor, ParentBasedSampler, TraceIdRatioBasedSampler, TracerProvider } from '@opentelemetry/sdk-trace';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';

/** What MessageTracer needs of a span backend (only the OTLP one exists). */
export interface SpanSink {
  begin(msgId: string, startMs: number, attrs: Attributes): void;
  end(msgId: string, endMs: number, outcome: string): void;
  child(msgId: string, name: string, startMs: number, endMs: number, attrs: Attributes, under?: { userId: string; deviceId: string }): void;
  traceparent(msgId: string): string | undefined;
  deliverStart(msgId: string, userId: string, deviceId: string, startMs: number, attrs: Attributes, tracked: boolean, tp?: string): void;
  deliverEvent(msgId: string, userId: string, deviceId: string, name: string, atMs: number, attrs: Attributes): void;
  deliverEnd(msgId: string, userId: string, deviceId: string, endMs: number, outcome: string, attempts: number): void;
  flush(): Promise<void>;
  shutdown(): Promise<void>;
}

export interface OtlpSinkOptions {
  endpoint: string;
  headers?: Record<string, string>;
  sampleRatio: number;
  serviceName: string;
  node: string;
  /** Messages (and open deliveries) whose span contexts are remembered. */
  capacity: number;
  /** Batch export delay (ms); default 1000. */
  exportDelayMs?: number;
}

interface Held {
  ctx: Context;
  /** Open until ended (the send span on the origin node, a tracked delivery until its ACK). */
  span?: Span;
}

/** A Map that forgets its oldest entry past `cap`, ending a span still open in it. */
class Bounded {
  private readonly map = new Map<string, Held>();
  constructor(private readonly cap: number) {}
  get(key: string): Held | undefined {
    return this.map.get(key);
  }
  set(key: string, held: Held): void {
    if (this.map.size >= this.cap && !this.map.has(key)) {
      const [oldKey, old] = this.map.entries().next().value!;
      old.span?.end();
      this.map.delete(oldKey);
    }
    this.map.set(key, held);
  }
}

/**
 * OpenTelemetry spans of the message path, exported over OTLP/HTTP in batches:
 *   magpie.send (root, the sender's request)
 *   ├─ magpie.commit, magpie.fanout
 *   ├─ magpie.deliver (one per device, on the node that holds it; open until its ACK, with
 *   │   `retry` events; ends with magpie.outcome ack/pulled/offline/gave_up)
 *   │   └─ magpie.push (offline push after a failed live delivery)
 *   └─ magpie.push (offline push of a device that was not connected)
 * Other nodes parent their deliver spans on the traceparent the origin put on the Bus event.
 * Sampling is by trace (ratio at the root, then the parent's decision).
 */
export class OtlpSpanSink implements SpanSink {
  private readonly provider: TracerProvider;
  private readonly tracer: Tracer;
  private readonly messages: Bounded;
  private readonly deliveries: Bounded;

  constructor(opts: OtlpSinkOptions) {
    const exporter = new OTLPTraceExporter({ url: opts.endpoint, ...(opts.headers ? { headers: opts.headers } : {}) });
    this.provider = new TracerProvider({
      resource: resourceFromAttributes({ 'service.name': opts.serviceName, 'service.instance.id': opts.node }),
      sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(opts.sampleRatio) }),
      spanProcessors: [new BatchSpanProcessor({ exporter, scheduledDelayMillis: opts.exportDelayMs ?? 1000, maxQueueSize: 20_000, maxExportBatchSize: 1000, exportTimeoutMillis: 5000 })],
    });
    this.tracer = this.provider.getTracer('magpie');
    this.messages = new Bounded(opts.capacity);
    this.deliveries = new Bounded(opts.capacity);
  }

  begin(msgId: string, startMs: number, attrs: Attributes): void {
    const span = this.tracer.startSpan('magpie.send', { kind: SpanKind.SERVER, startTime: startMs, attributes: attrs }, ROOT_CONTEXT);
    this.messages.set(msgId, { ctx: trace.setSpan(ROOT_CONTEXT, span), span });
  }

  end(msgId: string, endMs: number, outcome: string): void {
    const held = this.messages.get(msgId);
    if (!held?.span) return;
    held.span.setAttribute('magpie.outcome', outcome);
    if (outcome !== 'ok' && outcome !== 'duplicate') held.span.setStatus({ code: SpanStatusCode.ERROR, message: outcome });
    held.span.end(endMs);
    held.span = undefined;
  }

  child(msgId: string, name: string, startMs: number, endMs: number, attrs: Attributes, under?: { userId: string; deviceId: string }): void {
    const parent = (under && this.deliveries.get(deliveryKey(msgId, under.userId, under.deviceId))?.ctx) ?? this.messages.get(msgId)?.ctx;
    if (!parent) return;
    this.tracer.startSpan(name, { startTime: startMs, attributes: attrs }, parent).end(endMs);
  }

  traceparent(msgId: string): string | undefined {
    const held = this.messages.get(msgId);
    if (!held) return undefined;
    const sc = trace.getSpanContext(held.ctx);
    return sc ? `00-${sc.traceId}-${sc.spanId}-0${sc.traceFlags & TraceFlags.SAMPLED}` : undefined;
  }

  deliverStart(msgId: string, userId: string, deviceId: string, startMs: number, attrs: Attributes, tracked: boolean, tp?: string): void {
    let parent = this.messages.get(msgId)?.ctx;
    if (!parent && tp) {
      parent = contextOf(tp);
      if (parent) this.messages.set(msgId, { ctx: parent });
    }
    if (!parent) return;
    const span = this.tracer.startSpan('magpie.deliver', { kind: SpanKind.PRODUCER, startTime: startMs, attributes: attrs }, parent);
    const ctx = trace.setSpan(parent, span);
    if (tracked) {
      this.deliveries.set(deliveryKey(msgId, userId, deviceId), { ctx, span });
      return;
    }
    span.setAttribute('magpie.outcome', 'untracked');
    span.end(startMs);
    this.deliveries.set(deliveryKey(msgId, userId, deviceId), { ctx });
  }

  deliverEvent(msgId: string, userId: string, deviceId: string, name: string, atMs: number, attrs: Attributes): void {
    this.deliveries.get(deliveryKey(msgId, userId, deviceId))?.span?.addEvent(name, attrs, atMs);
  }

  deliverEnd(msgId: string, userId: string, deviceId: string, endMs: number, outcome: string, attempts: number): void {
    const held = this.deliveries.get(deliveryKey(msgId, userId, deviceId));
    if (!held?.span) return;
    held.span.setAttributes({ 'magpie.outcome': outcome, 'magpie.attempts': attempts });
    if (outcome === 'gave_up') held.span.setStatus({ code: SpanStatusCode.ERROR, message: 'no ACK after the last retry' });
    held.span.end(endMs);
    held.span = undefined;
  }

  flush(): Promise<void> {
    return this.provider.forceFlush();
  }

  shutdown(): Promise<void> {
    return this.provider.shutdown();
  }
}

function deliveryKey(msgId: string, userId: string, deviceId: string): string {
  return `${msgId}\u0000${userId}\u0000${deviceId}`;
}

/** The remote parent named by a W3C traceparent (version 00), or undefined when malformed. */
export function contextOf(tp: string): Context | undefined {
  const m = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/.exec(tp);
  if (!m || /^0+$/.test(m[1]!) || /^0+$/.test(m[2]!)) return undefined;
  return trace.setSpanContext(ROOT_CONTEXT, { traceId: m[1]!, spanId: m[2]!, traceFlags: parseInt(m[3]!, 16) & TraceFlags.SAMPLED, isRemote: true });
}
