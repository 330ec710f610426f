import { randomBytes, createHash } from 'node:crypto';

/** Time-ordered, URL-safe id: 9 chars of base36 milliseconds + 10 random chars. */
export function timeId(prefix: string): string {
  return prefix + Date.now().toString(36).padStart(9, '0') + randomBytes(8).toString('base64url').slice(0, 10);
}

export function newToken(): string {
  return randomBytes(32).toString('base64url');
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('base64url');
}
