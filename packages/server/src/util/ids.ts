import * as crypto from 'node:crypto';
import { randomBytes, createHash } from 'node:crypto';

/** Random bytes for ids drawn from a pool: one randomBytes call per 512 ids instead of one per id (~7 µs each on the send path). */
const POOL_BYTES = 4096;
let pool = Buffer.alloc(0);
let poolAt = POOL_BYTES;

/** Time-ordered, URL-safe id: 9 chars of base36 milliseconds + 10 random chars. */
export function timeId(prefix: string): string {
  if (poolAt + 8 > pool.length) {
    pool = randomBytes(POOL_BYTES);
    poolAt = 0;
  }
  const random = pool.toString('base64url', poolAt, poolAt + 8).slice(0, 10);
  poolAt += 8;
  return prefix + Date.now().toString(36).padStart(9, '0') + random;
}

export function newToken(): string {
  return randomBytes(32).toString('base64url');
}

/** Node ≥ 20.12's one-shot digest: no Hash object (0.7 µs instead of 2.5 per token, every hello and REST call). */
const oneShot = (crypto as { hash?: (algorithm: string, data: string, encoding: 'base64url') => string }).hash;

/** SHA-256 of the token, base64url (what sessions store). */
export function hashToken(token: string): string {
  return oneShot ? oneShot('sha256', token, 'base64url') : createHash('sha256').update(token).digest('base64url');
}
