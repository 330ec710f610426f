import type { Queryable, SqlEngine, TransactionOptions } from './engine.ts';
import { isStoreUnavailable } from '../util/store-unavailable.ts';

/** PostgreSQL serialization_failure and deadlock_detected: the whole transaction is rerun. */
const CONFLICT_CODES = new Set(['40001', '40P01']);

/** Thrown inside a transaction to have it rerun (e.g. a concurrent insert won a race the transaction can see only afterwards). */
export class RetryTransaction extends Error {}

export interface RetryOptions extends TransactionOptions {
  /** Attempts in all before the error is thrown (default 6). */
  maxAttempts?: number;
  /** Other errors worth a rerun besides serialization failures, deadlocks and RetryTransaction (e.g. a unique-key race). */
  retryIf?: (err: unknown) => boolean;
  /** For up to this many ms in all, also rerun while no connection can be had (util/store-unavailable.ts); default 0. */
  unavailableWaitMs?: number;
  /** Stop retrying (e.g. the store is closing). */
  stopped?: () => boolean;
}

/**
 * Run `fn` in a transaction of `db`, rerunning it on serialization failures, deadlocks and
 * RetryTransaction (plus what `retryIf` accepts) with a short random backoff, and while the
 * database is unavailable for up to `unavailableWaitMs`. The one retry loop of every store.
 * `fn` must be safe to rerun: it may run several times, and only the last run commits.
 */
export async function retryTransaction<T>(db: SqlEngine, fn: (tx: Queryable) => Promise<T>, opts: RetryOptions = {}): Promise<T> {
  const { maxAttempts = 6, retryIf, unavailableWaitMs = 0, stopped, ...txOpts } = opts;
  const started = Date.now();
  for (let attempt = 1; ; attempt++) {
    try {
      return await db.transaction(fn, txOpts);
    } catch (err) {
      if (unavailableWaitMs > 0 && isStoreUnavailable(err) && !stopped?.() && Date.now() - started < unavailableWaitMs) {
        await sleep(25 + Math.random() * 50 * Math.min(attempt, 8));
        continue;
      }
      const code = (err as { code?: unknown } | null)?.code;
      const again = err instanceof RetryTransaction || (typeof code === 'string' && CONFLICT_CODES.has(code)) || (retryIf?.(err) ?? false);
      if (!again || attempt >= maxAttempts || stopped?.()) throw err;
      await sleep(Math.random() * 5 * attempt);
    }
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
