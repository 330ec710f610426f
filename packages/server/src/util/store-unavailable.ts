import { MagpieError } from '@magpie/protocol/core';

/**
 * Errors that mean "the database cannot take this connection or query right now", not "this
 * request is wrong": too many connections (for the server or the role), the server starting
 * or shutting down, a connection refused, reset or timed out. They become a retryable
 * `unavailable` at the edge, never `internal`.
 */
const PG_CODES = new Set(['53300', '53400', '57P01', '57P02', '57P03']);
const NET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'CONNECT_TIMEOUT', 'CONNECTION_CLOSED', 'CONNECTION_ENDED', 'CONNECTION_DESTROYED']);

export function isStoreUnavailable(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== 'string') return false;
  return PG_CODES.has(code) || NET_CODES.has(code) || code.startsWith('08');
}

export function unavailableError(): MagpieError {
  return new MagpieError('unavailable', 'the database is busy; retry shortly', { retryAfterMs: 1000 });
}

/**
 * Run `fn`; while it fails because the database is unavailable, wait a little and try again,
 * for at most `budgetMs` in all. Then throw a retryable `unavailable`. Only for idempotent work.
 * The first attempt's promise is returned as is when it succeeds (no async frame of its own:
 * every hello and request goes through here).
 */
export function waitForStore<T>(fn: () => Promise<T>, budgetMs: number): Promise<T> {
  const until = Date.now() + budgetMs;
  let first: Promise<T>;
  try {
    first = fn();
  } catch (err) {
    first = Promise.reject(err);
  }
  return first.catch((err: unknown) => retryStore(fn, until, err));
}

/** The attempts after a failed first one, until `until` (Date.now()). */
async function retryStore<T>(fn: () => Promise<T>, until: number, failure: unknown): Promise<T> {
  let err = failure;
  for (let attempt = 1; ; attempt++) {
    if (!isStoreUnavailable(err)) throw err;
    const left = until - Date.now();
    if (left <= 0) throw unavailableError();
    await new Promise((r) => setTimeout(r, Math.min(left, 25 * 2 ** Math.min(attempt, 4) * (0.5 + Math.random()))));
    try {
      return await fn();
    } catch (next) {
      err = next;
    }
  }
}
