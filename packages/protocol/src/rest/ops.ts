import { z } from 'zod';
import { restRoute } from './route.ts';

/** Health for load balancers and orchestrators (server: http/health-routes.ts). */

const Check = z.enum(['ok', 'failed']);

export const ReadySchema = z.strictObject({
  ok: z.literal(true),
  node: z.string(),
  checks: z.strictObject({ database: Check, bus: Check }),
});

export const opsRoutes = {
  live: restRoute({ method: 'GET', url: '/api/live', summary: 'Liveness: the process answers (no dependency is checked)', auth: 'none', reply: { 200: z.strictObject({ ok: z.literal(true), node: z.string() }) } }),
  ready: restRoute({
    method: 'GET',
    url: '/api/ready',
    summary: 'Readiness: the database and the Bus answer and the node is not draining (503 `unavailable` otherwise)',
    auth: 'none',
    reply: { 200: ReadySchema },
  }),
};
