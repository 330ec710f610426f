import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { MagpieError } from '@magpie/protocol';
import { bearer } from './validation.ts';

/**
 * Operator authentication: `Authorization: Bearer <adminToken>`. Without a configured
 * token the admin API is disabled (`forbidden`). Compared in constant time.
 */
export function adminGuard(adminToken: string | undefined): (req: FastifyRequest) => void {
  const digest = (s: string) => createHash('sha256').update(s).digest();
  const expected = adminToken ? digest(adminToken) : null;
  return (req) => {
    if (!expected) throw new MagpieError('forbidden', 'the admin API is disabled (set MAGPIE_ADMIN_TOKEN)');
    const token = bearer(req);
    if (!token || !timingSafeEqual(digest(token), expected)) throw new MagpieError('unauthorized', 'admin token required');
  };
}
