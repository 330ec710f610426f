import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { MagpieError } from '@magpie/protocol';

const PARAMS: ScryptOptions = { N: 16384, r: 8, p: 1, maxmem: 64 * 1024 * 1024 };
const KEYLEN = 32;

function derive(password: string, salt: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => scrypt(password, salt, KEYLEN, PARAMS, (err, key) => (err ? reject(err) : resolve(key))));
}

/** scrypt hash as `scrypt$N$r$p$salt$hash` (base64url parts). */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await derive(password, salt);
  return `scrypt$${PARAMS.N}$${PARAMS.r}$${PARAMS.p}$${salt.toString('base64url')}$${key.toString('base64url')}`;
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const salt = Buffer.from(parts[4]!, 'base64url');
  const expected = Buffer.from(parts[5]!, 'base64url');
  const key = await derive(password, salt);
  return key.length === expected.length && timingSafeEqual(key, expected);
}

export interface HasherLimits {
  /** scrypt runs at once. Each holds one libuv thread (~50 ms, 16 MiB); the pool (4 threads) also serves file reads and DNS. */
  concurrency: number;
  /** Runs waiting for a slot; beyond it `unavailable` (retryable) is answered at once. */
  queue: number;
}

/**
 * Password hashing with bounded concurrency. scrypt is asynchronous but runs on libuv's
 * thread pool, which static files, fs and DNS share: a login flood with unbounded scrypt
 * calls keeps every pool thread busy and file reads queue behind ~50 ms hashes. Here at most
 * `concurrency` hashes run; `queue` more wait in order; the rest are refused with
 * `unavailable` + retryAfterMs, so overload costs the flood, not everyone else.
 */
export class PasswordHasher {
  private running = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(private readonly limits: HasherLimits) {}

  hash(password: string): Promise<string> {
    return this.slot(() => hashPassword(password));
  }

  verify(password: string, stored: string): Promise<boolean> {
    return this.slot(() => verifyPassword(password, stored));
  }

  /** Hashes running and waiting (for metrics and tests). */
  get load(): { running: number; waiting: number } {
    return { running: this.running, waiting: this.waiting.length };
  }

  private async slot<T>(fn: () => Promise<T>): Promise<T> {
    if (this.running >= this.limits.concurrency) {
      if (this.waiting.length >= this.limits.queue) {
        throw new MagpieError('unavailable', 'too many password checks in progress; retry shortly', { retryAfterMs: 1000 });
      }
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    } else {
      this.running++;
    }
    try {
      return await fn();
    } finally {
      // Hand the slot straight to the next waiter (running stays the same), or free it.
      const next = this.waiting.shift();
      if (next) next();
      else this.running--;
    }
  }
}
