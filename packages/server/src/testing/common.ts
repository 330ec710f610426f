import { createPublicKey, verify, type KeyObject } from 'node:crypto';

/** Records what a fake provider received and lets a test wait for it. */
export class Inbox<T> {
  readonly items: T[] = [];
  /** Everything ever received (also when `keep` is off). */
  total = 0;
  /** Arrival time of the latest item. */
  lastAt = 0;
  /** Benchmarks switch this off to count without keeping the items. */
  keep = true;
  private waiters: { pred: (items: T[]) => boolean; resolve: () => void }[] = [];

  push(item: T): void {
    this.total++;
    this.lastAt = Date.now();
    if (!this.keep) return;
    this.items.push(item);
    this.waiters = this.waiters.filter((w) => {
      if (!w.pred(this.items)) return true;
      w.resolve();
      return false;
    });
  }

  /** Resolve when `pred(items)` holds (checked now and on every new item). */
  until(pred: (items: T[]) => boolean, timeoutMs = 5000): Promise<T[]> {
    if (pred(this.items)) return Promise.resolve(this.items);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`fake provider: condition not met in ${timeoutMs} ms (have ${this.items.length} items)`)), timeoutMs);
      this.waiters.push({
        pred,
        resolve: () => {
          clearTimeout(t);
          resolve(this.items);
        },
      });
    });
  }

  count(pred: (x: T) => boolean = () => true): number {
    return this.items.filter(pred).length;
  }

  clear(): void {
    this.items.length = 0;
  }
}

/** Scripted failures: the next `n` requests for a key answer with this status (and body). */
export class FailureScript<F> {
  private readonly plans = new Map<string, { left: number; failure: F }>();
  set(key: string, n: number, failure: F): void {
    this.plans.set(key, { left: n, failure });
  }
  take(key: string): F | null {
    const p = this.plans.get(key) ?? this.plans.get('*');
    if (!p || p.left <= 0) return null;
    p.left--;
    return p.failure;
  }
}

/** Verify a compact JWS (ES256 raw r||s, or RS256); returns header and claims, or throws. */
export function verifyJwt(jwt: string, key: KeyObject | string, alg: 'ES256' | 'RS256'): { header: Record<string, unknown>; claims: Record<string, unknown> } {
  const parts = jwt.split('.');
  if (parts.length !== 3) throw new Error('JWT must have 3 parts');
  const [h, c, s] = parts as [string, string, string];
  const header = JSON.parse(Buffer.from(h, 'base64url').toString()) as Record<string, unknown>;
  if (header.alg !== alg) throw new Error(`JWT alg ${String(header.alg)}, expected ${alg}`);
  const k = typeof key === 'string' ? createPublicKey(key) : key;
  const ok = verify('sha256', Buffer.from(`${h}.${c}`), alg === 'ES256' ? { key: k, dsaEncoding: 'ieee-p1363' } : k, Buffer.from(s, 'base64url'));
  if (!ok) throw new Error('JWT signature does not verify');
  return { header, claims: JSON.parse(Buffer.from(c, 'base64url').toString()) as Record<string, unknown> };
}

export function readBody(req: NodeJS.ReadableStream): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}
