import type { FastifyRequest } from 'fastify';

/** The bearer token of a request, if any. */
export function bearer(req: FastifyRequest): string | undefined {
  const h = req.headers.authorization;
  return h?.startsWith('Bearer ') ? h.slice(7) : undefined;
}
