import { ClientFrame } from './frames.ts';
import { CAPABILITIES, PLATFORMS } from './types.ts';
import { MagpieError } from './errors.ts';
import { messageKindSchema } from './kinds.ts';
import type { z } from 'zod';

/** Default deepest nesting of arrays and objects accepted in a frame or request body. */
export const DEFAULT_MAX_JSON_DEPTH = 32;

/**
 * True when the JSON text nests arrays/objects deeper than `limit` (the top-level object is
 * depth 1). One linear pass over the characters that stops at the first level too deep, so a
 * hostile text costs microseconds — parsing it and walking it with the validator is what is
 * expensive (a 5 000-level frame overflowed the schema validator's stack). Strings are skipped
 * with their escapes; the text is not validated (JSON.parse does that afterwards).
 */
export function jsonNestingExceeds(text: string, limit: number): boolean {
  if (text.length <= limit) return false;
  // Depth never exceeds the number of opening brackets: a frame with at most `limit` of them
  // (every ordinary one) is settled by two native searches instead of a loop over each character.
  let opens = 0;
  for (let i = text.indexOf('{'); i >= 0 && opens <= limit; i = text.indexOf('{', i + 1)) opens++;
  for (let i = text.indexOf('['); i >= 0 && opens <= limit; i = text.indexOf('[', i + 1)) opens++;
  if (opens <= limit) return false;
  let depth = 0;
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      // Skip the string: find its closing quote, stepping over backslash escapes.
      for (i++; i < n; i++) {
        const d = text.charCodeAt(i);
        if (d === 0x5c) i++;
        else if (d === 0x22) break;
      }
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > limit) return true;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return false;
}

/** Parse JSON text after the nesting check; throws `nesting_too_deep` or `bad_frame`. */
export function parseJsonBounded(text: string, maxDepth: number = DEFAULT_MAX_JSON_DEPTH): unknown {
  if (jsonNestingExceeds(text, maxDepth)) throw new MagpieError('nesting_too_deep', `JSON nests deeper than ${maxDepth} levels`);
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new MagpieError('bad_frame', 'frame is not valid JSON');
  }
}

/**
 * Decode one client frame from text. Throws MagpieError with `nesting_too_deep`, `bad_frame`,
 * `unknown_type` or `invalid`.
 */
export function decodeClientFrame(text: string, opts: { maxDepth?: number } = {}): ClientFrame {
  return validateClientFrame(parseJsonBounded(text, opts.maxDepth));
}

/** Check an already parsed frame against the schema (see decodeClientFrame). */
export function validateClientFrame(raw: unknown): ClientFrame {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new MagpieError('bad_frame', 'frame must be a JSON object');
  const fast = acceptedMessageFrame(raw as Record<string, unknown>);
  if (fast) return fast;
  const parsed = ClientFrame.safeParse(raw);
  if (parsed.success) return parsed.data;
  const type = (raw as { type?: unknown }).type;
  const known = typeof type === 'string' && ClientFrame.options.some((o) => o.shape.type.value === type);
  if (!known) throw new MagpieError('unknown_type', `unknown frame type: ${JSON.stringify(type)?.slice(0, 40)}`);
  throw new MagpieError('invalid', 'frame fails the schema', { details: issuesOf(parsed.error) });
}

/** Request ids are integers in [0, 2^31]. */
export const MAX_REQUEST_ID = 2 ** 31;

/** Integers in [0, max] (frames.ts `Id` with max 2^31, `Seq` with max MAX_SAFE_INTEGER). */
const isCount = (v: unknown, max: number): boolean => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= max;
const isText = (v: unknown, max: number): boolean => typeof v === 'string' && v.length >= 1 && v.length <= max;

/**
 * The two frames of the message path in their usual form, checked by hand against exactly
 * the rules of their schemas (frames.ts SendFrame without mentions/receipt/replyTo, AckFrame):
 * the frame itself when it passes, undefined otherwise — then the schema decides and words
 * the error. It only ever accepts what the schema accepts (the schema would return an equal
 * object); it spares the schema's walk for the frames that come once per message.
 */
function acceptedMessageFrame(raw: Record<string, unknown>): ClientFrame | undefined {
  const type = raw.type;
  if (type === 'hello') return acceptedHello(raw);
  if (type === 'ack') {
    let keys = 0;
    for (const k in raw) {
      if (k !== 'type' && k !== 'inboxSeq') return undefined;
      keys++;
    }
    return keys === 2 && isCount(raw.inboxSeq, Number.MAX_SAFE_INTEGER) ? (raw as ClientFrame) : undefined;
  }
  if (type !== 'send') return undefined;
  let hasBody = false;
  for (const k in raw) {
    switch (k) {
      case 'type':
        break;
      case 'id':
        if (!isCount(raw.id, MAX_REQUEST_ID)) return undefined;
        break;
      case 'clientMsgId':
        if (!isText(raw.clientMsgId, 64)) return undefined;
        break;
      case 'to':
        if (!isText(raw.to, 64)) return undefined;
        break;
      case 'conv':
        if (!isText(raw.conv, 128)) return undefined;
        break;
      case 'kind':
        if (!isText(raw.kind, 32)) return undefined;
        break;
      case 'body':
        hasBody = true;
        break;
      default:
        return undefined;
    }
  }
  // Required fields present, and exactly one of `to` and `conv` (the schema's refinement).
  if (!hasBody || raw.id === undefined || raw.clientMsgId === undefined || raw.kind === undefined) return undefined;
  return (raw.to === undefined) !== (raw.conv === undefined) ? (raw as ClientFrame) : undefined;
}

/**
 * The `hello` frame in its usual form, checked by hand against exactly the rules of frames.ts
 * HelloFrame (strict keys; `versions` 1–8 safe integers; `token` 1–512 characters; `app` a
 * strict object of `version` ≤ 32 characters and a known `platform`; `caps` ≤ 16 known
 * capabilities): the frame itself when it passes, undefined otherwise (the schema decides).
 * Lengths are UTF-16 units, never more lenient than the schema's count. Once per connection,
 * but a reconnect storm is made of them (issue 23: the schema's walk was ~3 % of a connect).
 */
function acceptedHello(raw: Record<string, unknown>): ClientFrame | undefined {
  let required = 0;
  for (const k in raw) {
    switch (k) {
      case 'type':
        break;
      case 'id':
        if (!isCount(raw.id, MAX_REQUEST_ID)) return undefined;
        required++;
        break;
      case 'versions': {
        const v = raw.versions;
        if (!Array.isArray(v) || v.length < 1 || v.length > 8) return undefined;
        for (let i = 0; i < v.length; i++) if (!Number.isSafeInteger(v[i])) return undefined;
        required++;
        break;
      }
      case 'token':
        if (!isText(raw.token, 512)) return undefined;
        required++;
        break;
      case 'inboxSeq':
        if (!isCount(raw.inboxSeq, Number.MAX_SAFE_INTEGER)) return undefined;
        required++;
        break;
      case 'app': {
        const app = raw.app;
        if (app === null || typeof app !== 'object' || Array.isArray(app)) return undefined;
        for (const a in app) {
          const v = (app as Record<string, unknown>)[a];
          if (a === 'version') {
            if (typeof v !== 'string' || v.length > 32) return undefined;
          } else if (a === 'platform') {
            if (!(PLATFORMS as readonly unknown[]).includes(v)) return undefined;
          } else return undefined;
        }
        break;
      }
      case 'caps': {
        const c = raw.caps;
        if (!Array.isArray(c) || c.length > 16) return undefined;
        for (let i = 0; i < c.length; i++) if (!(CAPABILITIES as readonly unknown[]).includes(c[i])) return undefined;
        break;
      }
      default:
        return undefined;
    }
  }
  return required === 4 ? (raw as ClientFrame) : undefined;
}

/** The request id of a parsed frame, if it has a usable one (used to address errors). */
export function requestIdOf(raw: unknown): number | undefined {
  const id = raw !== null && typeof raw === 'object' ? (raw as { id?: unknown }).id : undefined;
  return typeof id === 'number' && Number.isInteger(id) && id >= 0 && id <= MAX_REQUEST_ID ? id : undefined;
}

/**
 * The request id of a raw frame, if it has a usable one. Texts nested deeper than
 * `maxDepth` are not parsed (parsing 100 000 levels takes V8 ~0.2 s): no id.
 */
export function frameIdOf(text: string, maxDepth: number = DEFAULT_MAX_JSON_DEPTH): number | undefined {
  if (jsonNestingExceeds(text, maxDepth)) return undefined;
  try {
    return requestIdOf(JSON.parse(text));
  } catch {
    return undefined;
  }
}

export function issuesOf(err: z.ZodError): { path: string; message: string }[] {
  return err.issues.slice(0, 10).map((i) => ({ path: i.path.join('.'), message: i.message }));
}

/** Validate a message body against its kind. Throws `invalid` on an unknown kind or a bad body. */
export function validateMessageBody(kind: string, body: unknown): unknown {
  // The usual text message, `{"text": "…"}`, checked by hand against exactly the rules of
  // TextBody (a non-empty string, no other key); anything else goes to the schema.
  if (kind === 'text' && plainTextBody(body)) return body;
  const schema = messageKindSchema(kind);
  if (!schema) throw new MagpieError('invalid', `unknown message kind: ${kind}`);
  const parsed = schema.safeParse(body);
  if (!parsed.success) throw new MagpieError('invalid', `body does not match kind ${kind}`, { details: issuesOf(parsed.error) });
  return parsed.data;
}

/**
 * True when `body` is a plain object (as JSON.parse makes them) whose only key is `text`, a
 * non-empty string: what TextBody (kinds.ts) accepts without `replyTo`/`edited`, returned as
 * is (the schema would return an equal copy).
 */
function plainTextBody(body: unknown): boolean {
  if (body === null || typeof body !== 'object' || Object.getPrototypeOf(body) !== Object.prototype) return false;
  let keys = 0;
  for (const k in body) {
    if (k !== 'text') return false;
    keys++;
  }
  const text = (body as { text?: unknown }).text;
  return keys === 1 && typeof text === 'string' && text.length >= 1 && Object.hasOwn(body, 'text');
}
