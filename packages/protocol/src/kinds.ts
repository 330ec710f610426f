import { z } from 'zod';

/**
 * Message kinds: each kind names a body schema. Later features (image, file, red packet)
 * register their own kind; a body is validated against its kind's schema on send.
 */
const kinds = new Map<string, z.ZodType>();

export function registerMessageKind(kind: string, body: z.ZodType): void {
  if (!/^[a-z][a-z0-9_.-]{0,31}$/.test(kind)) throw new Error(`bad message kind name: ${kind}`);
  if (kinds.has(kind)) throw new Error(`message kind registered twice: ${kind}`);
  kinds.set(kind, body);
}

export function messageKindSchema(kind: string): z.ZodType | undefined {
  return kinds.get(kind);
}

export function messageKinds(): string[] {
  return [...kinds.keys()];
}

export const TextBody = z.strictObject({
  text: z.string().min(1),
  /** Reply/quote: the seq of the quoted message in the same conversation (clients show its current state). */
  replyTo: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER).optional(),
  /** Set by the server only: time of the last edit (see lifecycle.ts). */
  edited: z.number().int().optional(),
});
/** A custom message: an app-defined `type` and any JSON `data` (cards, orders, …). */
export const CustomBody = z.strictObject({ type: z.string().min(1).max(64), data: z.json() });
/** A notice the server writes into a conversation (membership changes and the like). */
export const SystemBody = z.strictObject({ event: z.string().min(1).max(64), data: z.json().optional() });

registerMessageKind('text', TextBody);
registerMessageKind('custom', CustomBody);

/** Kinds only the server may write. */
export const serverOnlyKinds = new Set(['system']);
registerMessageKind('system', SystemBody);
