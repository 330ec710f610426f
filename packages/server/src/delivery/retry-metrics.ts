import type { Logger } from 'pino';
import type { Config } from '../config/config.ts';
import type { Metrics } from '../metrics.ts';
import type { OfflineHandoff } from './offline-handoff.ts';
import { AdaptiveRetryTiming, FixedRetryTiming, type RetryTiming } from './retry-policy.ts';
import { RetryQueue, type DeliveryEnd } from './retry-queue.ts';
import type { DeliveryOutcome, MessageTracer } from '../tracing/tracer.ts';
import { sharedLoopLag } from '../util/loop-lag.ts';

const TRACE_OUTCOME: Record<Exclude<DeliveryEnd['kind'], 'overflow'>, DeliveryOutcome> = { acked: 'ack', pulled: 'pulled', offline: 'offline', gave_up: 'gave_up' };

/** Build the retry queue from config, reporting every outcome as the write-ups define the metrics (and to the message trace). */
export function createRetryQueue(config: Config, metrics: Metrics, handoff: OfflineHandoff, log?: Logger, tracer?: MessageTracer): RetryQueue {
  const r = config.retry;
  const timing: RetryTiming =
    r.strategy === 'fixed'
      ? new FixedRetryTiming(r.fixedDelayMs, r.maxAttempts)
      : new AdaptiveRetryTiming({
          probeDelayMs: r.probeDelayMs,
          probeCount: r.probeCount,
          steppedStartMs: r.steppedStartMs,
          stepMs: r.stepMs,
          maxDelayMs: r.maxDelayMs,
          maxAttempts: r.maxAttempts,
          rememberCapacity: 100_000,
        });
  // First-attempt ACKs (one per live message) are added up and counted once per event-loop turn.
  let ackedFirst = 0;
  const countAckedFirst = (): void => {
    const n = ackedFirst;
    ackedFirst = 0;
    if (n > 0) metrics.downlinkEnds.inc({ outcome: 'acked_first' }, n);
  };
  const onEnd = (end: DeliveryEnd, userId: string, deviceId: string, ref?: { inboxSeq: number; msgId: string | undefined }): void => {
    if (tracer && ref?.msgId && end.kind !== 'overflow') tracer.ended(ref.msgId, userId, deviceId, ref.inboxSeq, TRACE_OUTCOME[end.kind], end.attempts);
    switch (end.kind) {
      case 'acked':
        if (end.attempts === 0) {
          if (ackedFirst++ === 0) setImmediate(countAckedFirst);
          metrics.arrivalSeconds.observe({ via: 'ack' }, end.latencyMs / 1000);
        } else {
          metrics.downlinkEnds.inc({ outcome: 'acked_retry' });
          metrics.arrivalSeconds.observe({ via: 'retry' }, end.latencyMs / 1000);
          metrics.retryArrivalSeconds.observe(end.latencyMs / 1000);
        }
        return;
      case 'pulled':
        metrics.downlinkEnds.inc({ outcome: 'pulled' });
        metrics.arrivalSeconds.observe({ via: 'pull' }, end.latencyMs / 1000);
        metrics.compensationSeconds.observe(end.latencyMs / 1000);
        return;
      case 'offline':
      case 'gave_up':
        metrics.downlinkEnds.inc({ outcome: end.kind });
        log?.debug({ userId: end.message.userId, deviceId: end.message.deviceId, inboxSeq: end.message.inboxSeq, attempts: end.attempts, why: end.kind }, 'retry ended: handed to offline push');
        handoff.handoff(end.message, end.kind);
        return;
      case 'overflow':
        metrics.downlinkEnds.inc({ outcome: 'overflow' });
    }
  };
  const onRetry = (attempt: number, userId: string, deviceId: string, inboxSeq: number, msgId?: string): void => {
    metrics.retries.inc({ attempt: String(attempt) });
    if (tracer && msgId) tracer.retried(msgId, userId, deviceId, inboxSeq, attempt);
    log?.debug({ userId, deviceId, inboxSeq, attempt }, 'retry');
  };
  // The usual end, once per live delivery: no DeliveryEnd object, and a tally instead of prom-client's observe.
  const arrivalByAck = metrics.arrivalSeconds.tally({ via: 'ack' });
  const onAckedFirst = (userId: string, deviceId: string, inboxSeq: number, msgId: string | undefined, latencyMs: number): void => {
    if (tracer && msgId) tracer.ended(msgId, userId, deviceId, inboxSeq, 'ack', 0);
    if (ackedFirst++ === 0) setImmediate(countAckedFirst);
    arrivalByAck.observe(latencyMs / 1000);
  };
  return new RetryQueue(timing, onEnd, onRetry, {
    onAckedFirst,
    perDeviceCap: r.perDeviceCap,
    totalCap: r.totalCap,
    holdLagMs: r.holdLagMs,
    ...(r.holdLagMs > 0 ? { loopLag: sharedLoopLag() } : {}),
    onHeld: (count) => metrics.retriesHeld.inc(count),
  });
}
