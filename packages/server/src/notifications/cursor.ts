import { MagpieError } from '@magpie/protocol';

/**
 * A user's position in their notifications: the ring slot `r` (list and segment broadcasts) and
 * per service the feed seq `f` (audience all). Opaque to clients: base64url JSON.
 */
export interface NotificationCursor {
  r: number;
  f: Record<string, number>;
}

export function encodeCursor(c: NotificationCursor): string {
  const f = Object.fromEntries(Object.entries(c.f).filter(([, v]) => v > 0));
  return Buffer.from(JSON.stringify({ r: c.r, f })).toString('base64url');
}

const isSeq = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/** The cursor a client passed back; `invalid` when it is not one this server made. */
export function decodeCursor(text: string | undefined): NotificationCursor {
  if (!text) return { r: 0, f: {} };
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
  } catch {
    throw new MagpieError('invalid', 'not a notification cursor');
  }
  const c = v as { r?: unknown; f?: unknown };
  if (typeof v !== 'object' || v === null || !isSeq(c.r) || typeof c.f !== 'object' || c.f === null || Array.isArray(c.f)) throw new MagpieError('invalid', 'not a notification cursor');
  const f: Record<string, number> = {};
  for (const [k, s] of Object.entries(c.f)) {
    if (!isSeq(s) || k.length > 80) throw new MagpieError('invalid', 'not a notification cursor');
    f[k] = s;
  }
  return { r: c.r, f };
}
