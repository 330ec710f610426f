import { createHash, timingSafeEqual } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { MagpieError } from '@magpie/protocol';
import type { Metrics } from '../metrics.ts';
import { errorBody } from '../util/errors.ts';
import { bearer } from './validation.ts';

export interface MetricsEndpointConfig {
  /** When set, scrapes must send `Authorization: Bearer <token>`. */
  token?: string | undefined;
  /** When set, /metrics is served only on this port (0 = any free port), not on the API port. */
  port?: number | undefined;
  host: string;
}

export interface MetricsEndpoint {
  /** Listen on the separate address, if one is configured; resolves with its URL or null. */
  start(): Promise<string | null>;
  stop(): Promise<void>;
}

const digest = (s: string) => createHash('sha256').update(s).digest();

/**
 * GET /metrics (Prometheus text). Unrestricted on the API port by default, as before; an
 * operator can require a scrape token and/or move it to its own listen address (for example
 * 127.0.0.1 or an internal interface), where it is the only route (docs/operations.md).
 */
export function registerMetricsEndpoint(api: FastifyInstance, metrics: Metrics, config: MetricsEndpointConfig): MetricsEndpoint {
  const expected = config.token ? digest(config.token) : null;
  const handler = async (req: FastifyRequest, reply: FastifyReply) => {
    if (expected) {
      const token = bearer(req);
      // Compared as digests in constant time: neither length nor content leaks through timing.
      if (!token || !timingSafeEqual(digest(token), expected)) throw new MagpieError('unauthorized', 'metrics token required');
    }
    void reply.header('content-type', metrics.registry.contentType);
    return metrics.registry.metrics();
  };
  if (config.port === undefined) {
    api.get('/metrics', handler);
    return { start: async () => null, stop: async () => undefined };
  }

  // Moved: the API port answers 404 here rather than falling through to the web client.
  api.get('/metrics', async () => {
    throw new MagpieError('not_found', 'no such route');
  });
  const own = Fastify({ logger: false });
  own.setErrorHandler((err, _req, reply) => {
    const e = err instanceof MagpieError ? err : new MagpieError('internal');
    void reply.code(e.status).send(errorBody(e));
  });
  own.setNotFoundHandler((_req, reply) => {
    void reply.code(404).send(errorBody(new MagpieError('not_found', 'only /metrics is served here')));
  });
  own.get('/metrics', handler);
  return {
    async start() {
      await own.listen({ host: config.host, port: config.port });
      const { port } = own.server.address() as AddressInfo;
      return `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`;
    },
    stop: () => own.close(),
  };
}
