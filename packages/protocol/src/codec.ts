import { ClientFrame } from './frames.ts';
import { MagpieError } from './errors.ts';
import { messageKindSchema } from './kinds.ts';
import type { z } from 'zod';

/**
 * Decode one client frame from text. Throws MagpieError with `bad_frame`, `unknown_type`
 * or `invalid`; the `id` of the offending frame is returned when it could be read so the
 * error can answer the request.
 */
export function decodeClientFrame(text: string): ClientFrame {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new MagpieError('bad_frame', 'frame is not valid JSON');
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new MagpieError('bad_frame', 'frame must be a JSON object');
  const parsed = ClientFrame.safeParse(raw);
  if (parsed.success) return parsed.data;
  const type = (raw as { type?: unknown }).type;
  const known = typeof type === 'string' && ClientFrame.options.some((o) => o.shape.type.value === type);
  if (!known) throw new MagpieError('unknown_type', `unknown frame type: ${JSON.stringify(type)?.slice(0, 40)}`);
  throw new MagpieError('invalid', 'frame fails the schema', { details: issuesOf(parsed.error) });
}

/** Request ids are integers in [0, 2^31]. */
export const MAX_REQUEST_ID = 2 ** 31;

/** The request id of a raw frame, if it has a usable one (used to address errors). */
export function frameIdOf(text: string): number | undefined {
  try {
    const raw = JSON.parse(text) as { id?: unknown };
    return typeof raw?.id === 'number' && Number.isInteger(raw.id) && raw.id >= 0 && raw.id <= MAX_REQUEST_ID ? raw.id : undefined;
  } catch {
    return undefined;
  }
}

export function issuesOf(err: z.ZodError): { path: string; message: string }[] {
  return err.issues.slice(0, 10).map((i) => ({ path: i.path.join('.'), message: i.message }));
}

/** Validate a message body against its kind. Throws `invalid` on an unknown kind or a bad body. */
export function validateMessageBody(kind: string, body: unknown): unknown {
  const schema = messageKindSchema(kind);
  if (!schema) throw new MagpieError('invalid', `unknown message kind: ${kind}`);
  const parsed = schema.safeParse(body);
  if (!parsed.success) throw new MagpieError('invalid', `body does not match kind ${kind}`, { details: issuesOf(parsed.error) });
  return parsed.data;
}
