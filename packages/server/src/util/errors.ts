import { MagpieError } from '@magpie/protocol';
import type { Logger } from 'pino';
import { isStoreUnavailable, unavailableError } from './store-unavailable.ts';

/** Convert anything thrown into the one error type; unexpected errors become `internal` and are logged. */
export function toMagpieError(err: unknown, log?: Logger): MagpieError {
  if (err instanceof MagpieError) return err;
  if (isStoreUnavailable(err)) {
    log?.warn({ err: (err as Error).message }, 'database unavailable');
    return unavailableError();
  }
  log?.error({ err }, 'unexpected error');
  return new MagpieError('internal');
}

export function errorFrame(err: MagpieError, id?: number): string {
  return JSON.stringify({
    type: 'error',
    ...(id !== undefined ? { id } : {}),
    code: err.code,
    message: err.message,
    ...(err.details !== undefined ? { details: err.details } : {}),
    ...(err.retryAfterMs !== undefined ? { retryAfterMs: err.retryAfterMs } : {}),
  });
}

export function errorBody(err: MagpieError): { error: Record<string, unknown> } {
  return {
    error: {
      code: err.code,
      message: err.message,
      ...(err.details !== undefined ? { details: err.details } : {}),
      ...(err.retryAfterMs !== undefined ? { retryAfterMs: err.retryAfterMs } : {}),
    },
  };
}
