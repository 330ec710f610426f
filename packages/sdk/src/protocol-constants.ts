/**
 * The few runtime values of @magpie/protocol the SDK needs, copied so that a browser
 * bundle does not pull in zod and the frame schemas (~95 KB gzipped). Only types are
 * imported from the protocol package; test/protocol-constants.test.ts checks every value
 * here against the protocol so the copies cannot drift.
 */
import type { ErrorCode } from '@magpie/protocol';

export const PROTOCOL_VERSIONS = [1] as const;

export const CLOSE_UNAUTHORIZED = 4100;
export const CLOSE_TOKEN_REVOKED = 4101;
export const CLOSE_KICKED = 4102;
export const CLOSE_UNSUPPORTED_VERSION = 4103;
/** The node is draining; the close reason carries `retryAfterMs=<ms>`. */
export const CLOSE_DRAINING = 4506;

/** Longest reconnect delay a draining server may ask for (a larger one is capped). */
export const MAX_DRAIN_DELAY_MS = 300_000;

/** The delay a 4506 close asks for (`retryAfterMs=<ms>` in the reason), or null when the reason has none. */
export function drainDelay(reason: string): number | null {
  const m = /retryAfterMs=(\d{1,9})/.exec(reason);
  return m ? Math.min(Number(m[1]), MAX_DRAIN_DELAY_MS) : null;
}

/** True when a client should reconnect automatically after this close code (4100–4499: no). */
export function shouldReconnect(code: number): boolean {
  return !(code >= 4100 && code < 4500);
}

/**
 * Server error codes and whether repeating the request later may succeed. Codes a newer
 * server adds and this table does not know yet are kept as they are and treated as final.
 */
export const ERROR_RETRYABLE: Readonly<Record<string, boolean>> = {
  bad_frame: false,
  unknown_type: false,
  invalid: false,
  nesting_too_deep: false,
  frame_too_large: false,
  message_too_large: false,
  unsupported_version: false,
  hello_required: false,
  unauthorized: false,
  bad_credentials: false,
  weak_password: false,
  account_disabled: false,
  forbidden: false,
  muted: false,
  rejected: false,
  not_found: false,
  group_full: false,
  conflict: false,
  rate_limited: true,
  unavailable: true,
  internal: true,
};

export function isErrorCode(x: unknown): x is ErrorCode {
  return typeof x === 'string' && Object.hasOwn(ERROR_RETRYABLE, x);
}
