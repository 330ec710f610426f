import type { FastifyInstance } from 'fastify';
import { MagpieError } from '@magpie/protocol';
import type { RateLimiter } from '../util/rate-limiter.ts';

/**
 * The per-IP budget of /api requests (`limits.ipRate`/`ipBurst`), taken in a synchronous
 * onRequest hook before anything else reads the request. The per-user budget is taken where a
 * request is authenticated as a user (http/rest.ts RestApi), so a request whose route
 * authenticates no user (operator, console and retention routes, logins) reads no session.
 */
export function installIpLimit(app: FastifyInstance, ipLimiter: RateLimiter): void {
  app.addHook('onRequest', (req, _reply, done) => {
    if (!req.url.startsWith('/api/')) return done();
    const wait = ipLimiter.take(req.ip);
    if (wait > 0) return done(new MagpieError('rate_limited', 'too many requests from this address', { retryAfterMs: wait }));
    done();
  });
}
