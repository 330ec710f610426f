import { z } from 'zod';
import { MagpieError, TraceEventSchema } from '@magpie/protocol';
import type { Bus } from '../bus/bus.ts';
import type { MessageTracer } from './tracer.ts';
import type { StageEvent } from './journal.ts';

/** The Bus topic on which nodes ask each other for their journal entries of a message. */
export const TRACE_TOPIC = 'trace';

const NodeAnswer = z.object({ node: z.string(), events: z.array(TraceEventSchema), dropped: z.number().int().nonnegative() });

export interface MessageTrace {
  msgId: string;
  events: StageEvent[];
  dropped: number;
  nodes: string[];
}

/** Answer other nodes' trace questions from this node's journal. */
export function answerTraceQuestions(bus: Bus, tracer: MessageTracer): void {
  bus.answerNodes(TRACE_TOPIC, (q) => {
    const msgId = (q as { msgId?: unknown } | null)?.msgId;
    const local = typeof msgId === 'string' ? tracer.local(msgId) : undefined;
    return { node: tracer.node, events: local?.events ?? [], dropped: local?.dropped ?? 0 };
  });
}

/**
 * A message's trace across the cluster: this node's journal plus every other node's
 * answer (askNodes), oldest first. `not_found` when no journal holds it (never seen, or
 * older than the last `tracing.journalSize` messages each node keeps).
 */
export async function traceAcrossNodes(bus: Bus, tracer: MessageTracer, msgId: string): Promise<MessageTrace> {
  const local = tracer.local(msgId);
  const events: StageEvent[] = [...(local?.events ?? [])];
  let dropped = local?.dropped ?? 0;
  const nodes = [tracer.node];
  for (const raw of await bus.askNodes(TRACE_TOPIC, { msgId })) {
    const a = NodeAnswer.safeParse(raw);
    if (!a.success || nodes.includes(a.data.node)) continue;
    nodes.push(a.data.node);
    events.push(...(a.data.events as StageEvent[]));
    dropped += a.data.dropped;
  }
  if (events.length === 0) throw new MagpieError('not_found', `no node's trace journal holds message ${msgId} (each keeps its last ${tracer.journal.capacity} messages)`);
  events.sort((x, y) => x.at - y.at);
  return { msgId, events, dropped, nodes };
}
