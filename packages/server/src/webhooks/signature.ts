import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * The `Magpie-Signature` header of every webhook request: `t=<unix ms>,v1=<hex>` where hex is
 * HMAC-SHA256(secret, `${t}.${rawBody}`). A receiver recomputes it over the raw body and
 * refuses stale timestamps (replays).
 */
export function signPayload(secret: string, body: string, time: number): string {
  const mac = createHmac('sha256', secret).update(`${time}.${body}`).digest('hex');
  return `t=${time},v1=${mac}`;
}

/** Check a `Magpie-Signature` header (for receivers and tests); `toleranceMs` bounds its age. */
export function verifySignature(secret: string, body: string, header: string, now: number, toleranceMs = 5 * 60 * 1000): boolean {
  const parts = Object.fromEntries(header.split(',').map((p) => p.split('=', 2) as [string, string]));
  const t = Number(parts.t);
  if (!Number.isFinite(t) || Math.abs(now - t) > toleranceMs || typeof parts.v1 !== 'string') return false;
  const expected = Buffer.from(signPayload(secret, body, t).split('v1=')[1]!, 'hex');
  const got = Buffer.from(parts.v1, 'hex');
  return got.length === expected.length && timingSafeEqual(got, expected);
}

/** POST a signed JSON body; resolves with the status and the parsed JSON answer (if any). Throws on network errors and timeouts. */
export async function postSigned(url: string, secret: string, event: string, body: string, timeoutMs: number, now: number): Promise<{ status: number; json: unknown }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'user-agent': 'Magpie-Webhooks/1', 'magpie-event': event, 'magpie-signature': signPayload(secret, body, now) },
    body,
    signal: AbortSignal.timeout(timeoutMs),
    redirect: 'error',
  });
  const text = await res.text();
  let json: unknown = undefined;
  if (text) {
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
  }
  return { status: res.status, json };
}
