import type { Logger } from 'pino';
import { TraceJournal, type StageEvent } from './journal.ts';
import type { SpanSink } from './otel.ts';

export interface TracingOptions {
  /** Messages kept in this node's journal (0 turns it off). */
  journalSize: number;
  /** OTLP/HTTP traces endpoint (e.g. http://collector:4318/v1/traces); unset: no spans, no SDK loaded. */
  otlpEndpoint?: string;
  /** Share of messages whose spans are exported (the journal keeps every message). */
  sampleRatio: number;
  /** `service.name` of the exported spans. */
  serviceName: string;
  /** Extra headers of the export requests (e.g. a collector's API key). */
  otlpHeaders?: Record<string, string>;
}

/** Why a tracked delivery ended (delivery/retry-queue.ts DeliveryEnd kinds that concern one message). */
export type DeliveryOutcome = 'ack' | 'pulled' | 'offline' | 'gave_up';

/** performance.timeOrigin, read once (its getter checks its receiver on every call). */
const TIME_ORIGIN = performance.timeOrigin;

/** Wall-clock time in ms with sub-millisecond precision. */
export const traceNow = (): number => TIME_ORIGIN + performance.now();

/**
 * What happened to a message, stage by stage: every stage goes to this node's journal
 * (tracing/journal.ts, always on: columns in a ring, no object per event) and, when an OTLP endpoint is configured, to OpenTelemetry
 * spans (tracing/otel.ts). The services call it with message ids they already hold; nothing
 * here blocks or throws into the message path.
 */
export class MessageTracer {
  readonly journal: TraceJournal;

  constructor(
    readonly node: string,
    journalSize: number,
    private readonly spans: SpanSink | null = null,
  ) {
    this.journal = new TraceJournal(journalSize);
  }

  /** The journal, plus OTLP spans when `otlpEndpoint` is set (the SDK is imported only then). */
  static async create(node: string, opts: TracingOptions, log?: Logger): Promise<MessageTracer> {
    if (!opts.otlpEndpoint) return new MessageTracer(node, opts.journalSize);
    const { OtlpSpanSink } = await import('./otel.ts');
    const sink = new OtlpSpanSink({ endpoint: opts.otlpEndpoint, headers: opts.otlpHeaders, sampleRatio: opts.sampleRatio, serviceName: opts.serviceName, node, capacity: Math.max(1000, opts.journalSize) });
    log?.info({ endpoint: opts.otlpEndpoint, sampleRatio: opts.sampleRatio }, 'tracing: exporting message spans over OTLP/HTTP');
    return new MessageTracer(node, opts.journalSize, sink);
  }

  /** True when spans are exported (callers skip building span-only data otherwise). */
  get exporting(): boolean {
    return this.spans !== null;
  }

  /** A send got its message id (checks passed): the root span starts at the frame's arrival. */
  sendStarted(msgId: string, startedAt: number, userId: string, conv: string): void {
    this.spans?.begin(msgId, startedAt, { 'magpie.user': userId, 'magpie.conv': conv, 'magpie.message': msgId });
  }

  /** The sender got its answer (or the commit refused it). A duplicate's journal entry goes to `journalId`, the message it repeats. */
  sendEnded(msgId: string, startedAt: number, userId: string, outcome: string, journalId = msgId): void {
    const end = traceNow();
    this.journal.add(journalId, 'send', startedAt, this.node, end - startedAt, userId, undefined, NaN, NaN, outcome);
    this.spans?.end(msgId, end, outcome);
  }

  committed(msgId: string, startedAt: number, endedAt: number, batch: number): void {
    this.journal.add(msgId, 'commit', startedAt, this.node, endedAt - startedAt, undefined, undefined, NaN, NaN, batch);
    this.spans?.child(msgId, 'magpie.commit', startedAt, endedAt, { 'magpie.batch': batch });
  }

  fannedOut(msgId: string, startedAt: number, endedAt: number, recipients: number, superGroup: boolean): void {
    this.journal.add(msgId, 'fanout', startedAt, this.node, endedAt - startedAt, undefined, undefined, NaN, NaN, recipients, superGroup);
    this.spans?.child(msgId, 'magpie.fanout', startedAt, endedAt, { 'magpie.recipients': recipients, 'magpie.super_group': superGroup });
  }

  /** W3C traceparent of the message's root span, carried on Bus events to other nodes (undefined without spans). */
  traceparent(msgId: string): string | undefined {
    return this.spans?.traceparent(msgId);
  }

  /**
   * The message was written to a device's connection. `tracked`: the retry queue follows it
   * until an ACK (the deliver span stays open until then); `tp`: the origin's traceparent.
   */
  delivered(msgId: string, userId: string, deviceId: string, inboxSeq: number, tracked: boolean, tp?: string): void {
    const at = traceNow();
    this.journal.add(msgId, 'deliver', at, this.node, NaN, userId, deviceId, inboxSeq, NaN);
    this.spans?.deliverStart(msgId, userId, deviceId, at, { 'magpie.user': userId, 'magpie.device': deviceId, 'magpie.inbox_seq': inboxSeq, 'magpie.node': this.node }, tracked, tp);
  }

  retried(msgId: string, userId: string, deviceId: string, inboxSeq: number, attempt: number): void {
    const at = traceNow();
    this.journal.add(msgId, 'retry', at, this.node, NaN, userId, deviceId, inboxSeq, attempt);
    this.spans?.deliverEvent(msgId, userId, deviceId, 'retry', at, { 'magpie.attempt': attempt });
  }

  /** A tracked delivery ended: acknowledged, pulled by sync, or handed to offline push. */
  ended(msgId: string, userId: string, deviceId: string, inboxSeq: number, outcome: DeliveryOutcome, attempts: number): void {
    const at = traceNow();
    this.journal.add(msgId, outcome, at, this.node, NaN, userId, deviceId, inboxSeq, attempts);
    this.spans?.deliverEnd(msgId, userId, deviceId, at, outcome, attempts);
  }

  /** Offline push queued a job for this device (or dropped it: `detail.dropped`). */
  pushed(msgId: string, userId: string, deviceId: string, detail: Record<string, string | number | boolean>): void {
    const at = traceNow();
    this.journal.add(msgId, 'push', at, this.node, NaN, userId, deviceId, NaN, NaN, detail);
    this.spans?.child(msgId, 'magpie.push', at, at, { 'magpie.user': userId, 'magpie.device': deviceId, ...prefixed(detail) }, { userId, deviceId });
  }

  /** This node's journal entries of one message. */
  local(msgId: string): { events: StageEvent[]; dropped: number } | undefined {
    return this.journal.get(msgId);
  }

  /** Export what is pending (tests, shutdown). */
  async flush(): Promise<void> {
    await this.spans?.flush();
  }

  async close(): Promise<void> {
    await this.spans?.shutdown();
  }
}

function prefixed(detail: Record<string, string | number | boolean>): Record<string, string | number | boolean> {
  return Object.fromEntries(Object.entries(detail).map(([k, v]) => [`magpie.${k}`, v]));
}
