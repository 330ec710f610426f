import { z } from 'zod';
import { registerMessageKind, serverOnlyKinds } from './kinds.ts';

/**
 * The message lifecycle (issue 18): reply/quote, forward, recall, delete-for-me, edit and
 * reactions.
 *
 * Every change to a message is an ORDERED EVENT: a server-written message in the
 * conversation's own gap-free seq (kinds `recall`, `edit`, `reaction`), so every device,
 * online or offline, learns it through the sync it already has (inbox pointers, `advanced`
 * frames, `history`) in the same order as the messages. Per-user changes (delete for me)
 * travel in the user's own gap-free hidden-message version instead (`hidden` frame,
 * `GET /api/hidden`).
 *
 * A recall also rewrites the stored message: its kind becomes `recalled` and its body holds
 * no content (the body and its media references are deleted on the server, not hidden). An
 * edit rewrites the stored body (with `edited` set to the edit time), so `history` always
 * answers the current text; the previous versions are kept for the participants or not
 * (server setting).
 */

const Seq = z.number().int().min(1).max(Number.MAX_SAFE_INTEGER);
const UserId = z.string().min(1).max(64);

/** One emoji (or short reaction code): 1–16 UTF-16 units, no whitespace or control characters. */
export const Emoji = z
  .string()
  .min(1)
  .max(16)
  .refine((s) => !/[\s\p{Cc}]/u.test(s), { message: 'an emoji has no whitespace or control characters' });

/** Event: message `seq` was recalled by `by` (its sender, or an owner/admin of the group). */
export const RecallBody = z.strictObject({ seq: Seq, by: UserId });
export type RecallBody = z.infer<typeof RecallBody>;

/**
 * Event: message `seq` was edited at `editedAt`; `text` is its new text. When a later edit
 * superseded this one and the server keeps no edit history (or the message was recalled),
 * `text` is removed from the stored event.
 */
export const EditBody = z.strictObject({ seq: Seq, text: z.string().min(1).optional(), editedAt: z.number().int() });
export type EditBody = z.infer<typeof EditBody>;

/** One reaction change: `user` added (`on`) or removed `emoji` on message `seq`; `count` is the total after it. */
export const ReactionChange = z.strictObject({ seq: Seq, emoji: Emoji, user: UserId, on: z.boolean(), count: z.number().int().min(0) });
export type ReactionChange = z.infer<typeof ReactionChange>;

/**
 * Event: reactions changed. In direct chats one event per change; in groups (normal and super)
 * the changes of a short window (`reactionCoalesceMs`) are coalesced into one event per
 * conversation, the last change per (seq, emoji, user) kept, so a reaction costs no
 * per-member fan-out of its own.
 */
export const ReactionBody = z.strictObject({ changes: z.array(ReactionChange).min(1).max(1000) });
export type ReactionBody = z.infer<typeof ReactionBody>;

/** What a recalled message's stored body becomes: who recalled it, when, and what kind it was. */
export const RecalledBody = z.strictObject({ by: UserId, at: z.number().int(), kind: z.string() });
export type RecalledBody = z.infer<typeof RecalledBody>;

/** One message inside a merged-forward bundle (a chat-history card). */
export const BundleItem = z.strictObject({ sender: UserId, kind: z.string(), body: z.unknown(), time: z.number().int() });
export type BundleItem = z.infer<typeof BundleItem>;

/** A merged forward: a chat-history card the recipient opens; media inside was re-authorized for this conversation. */
export const BundleBody = z.strictObject({
  fallback: z.string().max(500),
  title: z.string().max(200),
  /** Conversation the items came from (a member of the target may not be able to read it: the items are copies). */
  from: z.string(),
  items: z.array(BundleItem).min(1).max(100),
});
export type BundleBody = z.infer<typeof BundleBody>;

registerMessageKind('recall', RecallBody);
registerMessageKind('edit', EditBody);
registerMessageKind('reaction', ReactionBody);
registerMessageKind('recalled', RecalledBody);
registerMessageKind('bundle', BundleBody);
for (const k of ['recall', 'edit', 'reaction', 'recalled', 'bundle']) serverOnlyKinds.add(k);

export { LIFECYCLE_EVENT_KINDS } from './lifecycle-kinds.ts';

/** Kinds that cannot be recalled, edited, reacted to or forwarded (notices, events, red packets). */
export const LIFECYCLE_FROZEN_KINDS: ReadonlySet<string> = new Set(['system', 'recall', 'edit', 'reaction', 'recalled', 'redpacket', 'redpacket.status']);

/** Per-user change: the user deleted `seqs` of `conv` for themselves (all their devices hide them). */
export const HiddenChange = z.strictObject({ version: z.number().int().min(1), conv: z.string(), seqs: z.array(Seq).min(1).max(200) });
export type HiddenChange = z.infer<typeof HiddenChange>;

/** Server frame: a hidden-message change of this user; apply when `version` is local + 1, else pull `GET /api/hidden?since=local`. */
export const HiddenFrame = z.strictObject({ type: z.literal('hidden'), change: HiddenChange });

/** The reactions of one message for one emoji, as `GET …/reactions` answers. */
export const ReactionSummary = z.strictObject({
  seq: Seq,
  emoji: Emoji,
  count: z.number().int().min(0),
  /** Up to 20 users who reacted, oldest first. */
  users: z.array(UserId),
  /** The asking user reacted with this emoji. */
  mine: z.boolean(),
});
export type ReactionSummary = z.infer<typeof ReactionSummary>;

/** A list/push preview of the lifecycle kinds. */
export function lifecyclePreview(kind: string, body: unknown, zh: boolean): string | undefined {
  const b = (body && typeof body === 'object' ? body : {}) as Record<string, unknown>;
  switch (kind) {
    case 'recall':
    case 'recalled':
      return zh ? '[消息已撤回]' : '[Message recalled]';
    case 'edit':
      return typeof b.text === 'string' ? b.text : zh ? '[已编辑]' : '[Edited]';
    case 'reaction': {
      const last = Array.isArray(b.changes) ? (b.changes.at(-1) as { emoji?: string; on?: boolean } | undefined) : undefined;
      return last?.on ? `[${last.emoji ?? ''}]` : zh ? '[表情回应]' : '[Reaction]';
    }
    case 'bundle':
      return typeof b.fallback === 'string' ? b.fallback : zh ? '[聊天记录]' : '[Chat history]';
    default:
      return undefined;
  }
}
