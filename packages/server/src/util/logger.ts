import { hostname } from 'node:os';
import { pino, type DestinationStream, type Logger } from 'pino';

/**
 * Fields that never reach a log line: session tokens, passwords and their hashes, push
 * tokens, Authorization and Cookie headers — at the top level and one object down (pino's
 * redaction paths are explicit; deeper secrets must not be logged as objects).
 */
export const REDACT_PATHS = [
  'token', '*.token',
  'password', '*.password', 'currentPassword', 'newPassword', '*.currentPassword', '*.newPassword',
  'passwordHash', '*.passwordHash', 'tokenHash', '*.tokenHash',
  'pushToken', '*.pushToken', 'push.token',
  'authorization', '*.authorization', 'cookie', '*.cookie',
  'req.headers.authorization', 'req.headers.cookie', 'headers.authorization', 'headers.cookie',
  'adminToken', '*.adminToken', 'secret', '*.secret',
];

/** The server's root logger: JSON lines with this node's name on every line, secrets redacted. */
export function createLogger(level: string, node: string, dest?: DestinationStream): Logger {
  const opts = { level, base: { pid: process.pid, hostname: hostname(), node }, redact: { paths: REDACT_PATHS, censor: '[redacted]' } };
  return dest ? pino(opts, dest) : pino(opts);
}
