import type { FastifyRequest } from 'fastify';
import type { z } from 'zod';
import { MagpieError, issuesOf } from '@magpie/protocol';

/** Validate a request body or query; bad input becomes an `invalid` error listing the issues. */
export function parseBody<T>(schema: z.ZodType<T>, value: unknown): T {
  const r = schema.safeParse(value ?? {});
  if (!r.success) throw new MagpieError('invalid', 'request fails the schema', { details: issuesOf(r.error) });
  return r.data;
}

/** The bearer token of a request, if any. */
export function bearer(req: FastifyRequest): string | undefined {
  const h = req.headers.authorization;
  return h?.startsWith('Bearer ') ? h.slice(7) : undefined;
}
