/**
 * The error and close-code tables of wire protocol v1. Every error a server sends, over
 * HTTP or WebSocket, carries one of these codes; docs/protocol.md is checked against them.
 */

export const ErrorCodes = {
  bad_frame: { status: 400, retry: false, text: 'The frame is not valid JSON or not a JSON object.' },
  unknown_type: { status: 400, retry: false, text: 'The frame type is not part of the protocol.' },
  invalid: { status: 400, retry: false, text: 'A field is missing or has the wrong type or range; `details` lists the issues.' },
  nesting_too_deep: { status: 400, retry: false, text: 'The frame or request body nests arrays and objects deeper than the configured limit.' },
  frame_too_large: { status: 413, retry: false, text: 'The frame exceeds the configured frame size limit.' },
  message_too_large: { status: 413, retry: false, text: 'The message body exceeds the configured message size limit.' },
  unsupported_version: { status: 400, retry: false, text: 'None of the protocol versions offered is supported.' },
  hello_required: { status: 400, retry: false, text: 'The first frame on a connection must be `hello`.' },
  unauthorized: { status: 401, retry: false, text: 'No valid credentials: the token is unknown, expired or revoked.' },
  bad_credentials: { status: 401, retry: false, text: 'Wrong username or password.' },
  weak_password: { status: 400, retry: false, text: 'The new password is too easy to guess (common, a pattern, or too close to the username); the message says why.' },
  account_disabled: { status: 403, retry: false, text: 'The account is disabled by the operator: no login, no connection.' },
  forbidden: { status: 403, retry: false, text: 'Authenticated, but not allowed to do this.' },
  muted: { status: 403, retry: false, text: 'The sender is muted in this group (by an admin or mute-all).' },
  rejected: { status: 403, retry: false, text: "The operator's moderation (keyword filter or before-send webhook) refused the message; `message` is the reason to show the user." },
  not_found: { status: 404, retry: false, text: 'The user, conversation or message does not exist.' },
  group_full: { status: 409, retry: false, text: 'The group has reached its member limit.' },
  conflict: { status: 409, retry: false, text: 'The resource exists already (for example a taken username).' },
  rate_limited: { status: 429, retry: true, text: 'Too many requests; retry after `retryAfterMs`.' },
  unavailable: { status: 503, retry: true, text: 'The server is overloaded or shutting down; retry later.' },
  internal: { status: 500, retry: true, text: 'An unexpected server error. Nothing was changed unless a reply said so.' },
} as const satisfies Record<string, { status: number; retry: boolean; text: string }>;

export type ErrorCode = keyof typeof ErrorCodes;

export const errorCodeList = Object.keys(ErrorCodes) as ErrorCode[];

/** The one error type of Magpie; converted to an `error` frame or HTTP body at every boundary. */
export class MagpieError extends Error {
  readonly code: ErrorCode;
  readonly details?: unknown;
  readonly retryAfterMs?: number;
  constructor(code: ErrorCode, message?: string, extra?: { details?: unknown; retryAfterMs?: number }) {
    super(message ?? ErrorCodes[code].text);
    this.name = 'MagpieError';
    this.code = code;
    if (extra?.details !== undefined) this.details = extra.details;
    if (extra?.retryAfterMs !== undefined) this.retryAfterMs = extra.retryAfterMs;
  }
  get status(): number {
    return ErrorCodes[this.code].status;
  }
}

export function isErrorCode(x: unknown): x is ErrorCode {
  return typeof x === 'string' && Object.hasOwn(ErrorCodes, x);
}

/**
 * WebSocket close codes. 4100–4499: do not reconnect automatically (the user or the
 * credentials must change first). 4500–4999: reconnect with backoff.
 */
export const CloseCodes = {
  unauthorized: { code: 4100, reconnect: false, text: 'Authentication failed or the token is invalid, or the session expired while connected.' },
  token_revoked: { code: 4101, reconnect: false, text: 'The session was logged out (this device or all devices).' },
  kicked: { code: 4102, reconnect: false, text: 'A newer login replaced this session (the same device signed in again, or another device of its class), or the operator disabled the account or revoked its sessions; the reason and message say which.' },
  unsupported_version: { code: 4103, reconnect: false, text: 'No common protocol version.' },
  heartbeat_timeout: { code: 4500, reconnect: true, text: 'No frame arrived for two heartbeat intervals.' },
  slow_consumer: { code: 4501, reconnect: true, text: 'The client read too slowly; its output buffer passed the cap.' },
  shutting_down: { code: 4502, reconnect: true, text: 'The server is shutting down or restarting.' },
  hello_timeout: { code: 4503, reconnect: true, text: 'No `hello` frame arrived in time after the connection opened.' },
  too_many_errors: { code: 4504, reconnect: true, text: 'Too many invalid frames in a short time.' },
  too_many_connections: { code: 4505, reconnect: true, text: 'The user has the maximum number of open connections on this server.' },
  draining: { code: 4506, reconnect: true, text: 'This node is draining (shutting down gracefully): reconnect after `retryAfterMs=<ms>` given in the close reason; the load balancer sends the new connection to another node.' },
} as const satisfies Record<string, { code: number; reconnect: boolean; text: string }>;

export type CloseReason = keyof typeof CloseCodes;

/** True when a client should reconnect automatically after this close code. */
export function shouldReconnect(code: number): boolean {
  if (code >= 4100 && code < 4500) return false;
  return true;
}
