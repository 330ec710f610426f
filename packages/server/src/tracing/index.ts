import type { FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { MagpieError, traceRoutes, telemetryRoutes } from '@magpie/protocol';
import type { Bus } from '../bus/bus.ts';
import type { RestApi } from '../http/rest.ts';
import { MessageTracer, type TracingOptions } from './tracer.ts';
import { answerTraceQuestions, traceAcrossNodes } from './lookup.ts';
import { ClientTelemetry } from './telemetry.ts';

export { MessageTracer, traceNow } from './tracer.ts';
export { TraceJournal } from './journal.ts';
export { ClientTelemetry } from './telemetry.ts';

export interface TracingModule {
  tracer: MessageTracer;
  telemetry: ClientTelemetry;
  /** Register the operator and telemetry routes (and the console's, given a console session check). */
  routes(api: RestApi, consoleViewer?: (req: FastifyRequest) => Promise<unknown>): void;
  stop(): Promise<void>;
}

/**
 * Message tracing and client telemetry: the tracer the message path records into (built
 * before the services), this node's answers to other nodes' trace questions, the trace
 * routes (operator token; the console's with a console session) and POST /api/telemetry/connect.
 */
export async function createTracingModule(deps: {
  node: string;
  bus: Bus;
  registry: Registry;
  tracing: TracingOptions;
  telemetry: { enabled: boolean; maxVersions: number };
  log?: Logger;
}): Promise<TracingModule> {
  const tracer = await MessageTracer.create(deps.node, deps.tracing, deps.log);
  answerTraceQuestions(deps.bus, tracer);
  const telemetry = new ClientTelemetry(deps.registry, deps.telemetry.maxVersions);
  return {
    tracer,
    telemetry,
    routes(api, consoleViewer) {
      api.route(traceRoutes.adminTrace, async ({ params }) => traceAcrossNodes(deps.bus, tracer, params.id));
      if (consoleViewer) {
        api.route(traceRoutes.consoleTrace, async ({ raw, params }) => {
          await consoleViewer(raw);
          return traceAcrossNodes(deps.bus, tracer, params.id);
        });
      }
      api.route(telemetryRoutes.connect, async ({ body }) => {
        if (!deps.telemetry.enabled) throw new MagpieError('forbidden', 'client telemetry is off on this server (telemetry.enabled)');
        return { accepted: telemetry.record(body) };
      });
    },
    stop: () => tracer.close(),
  };
}
