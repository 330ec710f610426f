import { z } from 'zod';
import { MessageSchema } from '../server-frames.ts';
import { Emoji, HiddenChange, ReactionSummary } from '../lifecycle.ts';
import { QuerySeq, Seq, queryLimit, restRoute } from './route.ts';

/** Message lifecycle routes (server: lifecycle/lifecycle-routes.ts); see lifecycle.ts for the events they post. */

const ConvSeq = z.strictObject({ conv: z.string().min(1).max(128), seq: z.coerce.number().int().min(1).max(Number.MAX_SAFE_INTEGER) });
const ConvOnly = z.strictObject({ conv: z.string().min(1).max(128) });
/** The event the change was posted as (null: coalesced into a later event of a super group). */
const EventReply = z.strictObject({ event: MessageSchema.nullable() });
const SeqList = z
  .string()
  .max(2000)
  .regex(/^\d+(,\d+){0,199}$/, 'a comma-separated list of up to 200 seqs')
  .transform((s) => s.split(',').map(Number));

export const lifecycleRoutes = {
  recall: restRoute({
    method: 'POST',
    url: '/api/conversations/:conv/messages/:seq/recall',
    summary: 'Recall a message (its sender within the recall window; group owners and admins any time)',
    auth: 'user',
    params: ConvSeq,
    reply: { 200: EventReply },
  }),
  edit: restRoute({
    method: 'POST',
    url: '/api/conversations/:conv/messages/:seq/edit',
    summary: 'Edit a text message (its sender within the edit window)',
    auth: 'user',
    params: ConvSeq,
    body: z.strictObject({ text: z.string().min(1) }),
    reply: { 200: EventReply },
  }),
  edits: restRoute({
    method: 'GET',
    url: '/api/conversations/:conv/messages/:seq/edits',
    summary: 'Previous versions of an edited message (empty when the server keeps no edit history)',
    auth: 'user',
    params: ConvSeq,
    reply: { 200: z.strictObject({ versions: z.array(z.strictObject({ text: z.string(), until: z.number().int() })) }) },
  }),
  react: restRoute({
    method: 'PUT',
    url: '/api/conversations/:conv/messages/:seq/reactions/:emoji',
    summary: 'Add a reaction (idempotent)',
    auth: 'user',
    params: ConvSeq.extend({ emoji: Emoji }),
    reply: { 200: EventReply },
  }),
  unreact: restRoute({
    method: 'DELETE',
    url: '/api/conversations/:conv/messages/:seq/reactions/:emoji',
    summary: 'Remove a reaction (idempotent)',
    auth: 'user',
    params: ConvSeq.extend({ emoji: Emoji }),
    reply: { 200: EventReply },
  }),
  reactions: restRoute({
    method: 'GET',
    url: '/api/conversations/:conv/reactions',
    summary: 'Reaction counts and who reacted, for some messages',
    auth: 'user',
    params: ConvOnly,
    query: z.strictObject({ seqs: SeqList }),
    reply: { 200: z.strictObject({ reactions: z.array(ReactionSummary) }) },
  }),
  hide: restRoute({
    method: 'POST',
    url: '/api/conversations/:conv/hide',
    summary: 'Delete messages for oneself (all own devices)',
    auth: 'user',
    params: ConvOnly,
    body: z.strictObject({ seqs: z.array(Seq.min(1)).min(1).max(200) }),
    reply: { 200: z.strictObject({ change: HiddenChange.nullable() }) },
  }),
  hidden: restRoute({
    method: 'GET',
    url: '/api/hidden',
    summary: 'Delete-for-me changes after `since` (the user’s hidden-message version)',
    auth: 'user',
    query: z.strictObject({ since: QuerySeq.default(0), limit: queryLimit(500).default(200) }),
    reply: { 200: z.strictObject({ version: Seq, changes: z.array(HiddenChange), more: z.boolean() }) },
  }),
  forward: restRoute({
    method: 'POST',
    url: '/api/forward',
    summary: 'Forward messages one by one, or merged into one chat-history card',
    auth: 'user',
    body: z
      .strictObject({
        from: z.string().min(1).max(128),
        seqs: z.array(Seq.min(1)).min(1).max(100),
        to: z.string().min(1).max(64).optional(),
        conv: z.string().min(1).max(128).optional(),
        merged: z.boolean().default(false),
        title: z.string().max(200).optional(),
        /** Idempotency: the forwarded messages get clientMsgIds `<clientMsgId>:<n>`. */
        clientMsgId: z.string().min(1).max(48),
      })
      .refine((b) => (b.to === undefined) !== (b.conv === undefined), { message: 'exactly one of `to` and `conv` is required' }),
    reply: { 200: z.strictObject({ messages: z.array(MessageSchema) }) },
  }),
};
