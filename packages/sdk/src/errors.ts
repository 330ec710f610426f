import type { ErrorCode } from '@magpie/protocol';
import { ERROR_RETRYABLE, isErrorCode } from './protocol-constants.ts';

/**
 * Codes the SDK itself produces (the server's codes are the protocol's ErrorCode):
 * - `disconnected`: the socket closed or was abandoned while the request was in flight
 * - `timeout`: no reply within the request timeout
 * - `not_connected`: there is no authenticated connection to send the request on
 * - `closed`: the client was closed, logged out or kicked
 * - `network`: an HTTP request failed before a response arrived
 * - `bad_response`: the server answered with something the SDK cannot read
 */
export type ClientErrorCode = 'disconnected' | 'timeout' | 'not_connected' | 'closed' | 'network' | 'bad_response' | 'cancelled' | 'upload_failed';
export type MagpieClientErrorCode = ClientErrorCode | ErrorCode;

const CLIENT_CODES: ReadonlySet<string> = new Set(['disconnected', 'timeout', 'not_connected', 'closed', 'network', 'bad_response', 'cancelled', 'upload_failed']);
const RETRYABLE_CLIENT_CODES: ReadonlySet<string> = new Set(['disconnected', 'timeout', 'not_connected', 'network']);

/** The one error type the SDK throws or emits. */
export class MagpieClientError extends Error {
  readonly code: MagpieClientErrorCode;
  readonly details?: unknown;
  readonly retryAfterMs?: number;
  /** HTTP status, for REST errors. */
  readonly status?: number;

  constructor(code: MagpieClientErrorCode, message?: string, extra?: { details?: unknown; retryAfterMs?: number; status?: number; cause?: unknown }) {
    super(message ?? code, extra?.cause !== undefined ? { cause: extra.cause } : undefined);
    this.name = 'MagpieClientError';
    this.code = code;
    if (extra?.details !== undefined) this.details = extra.details;
    if (extra?.retryAfterMs !== undefined) this.retryAfterMs = extra.retryAfterMs;
    if (extra?.status !== undefined) this.status = extra.status;
  }

  /** True when the code came from the server (not one of the SDK's own codes). */
  get fromServer(): boolean {
    return !CLIENT_CODES.has(this.code);
  }

  /** True when repeating the same request later may succeed. */
  get retryable(): boolean {
    if (isErrorCode(this.code)) return ERROR_RETRYABLE[this.code] ?? false;
    return RETRYABLE_CLIENT_CODES.has(this.code);
  }
}

export function toClientError(err: unknown): MagpieClientError {
  if (err instanceof MagpieClientError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new MagpieClientError('bad_response', message, { cause: err });
}
