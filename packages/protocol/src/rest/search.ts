import { z } from 'zod';
import { displayName, safeText } from '../text.ts';
import { QuerySeq, Seq, queryLimit, restRoute } from './route.ts';

/** Message search and subject conversations (server: search/routes.ts). */

/** One message found by a search: where it is, who sent it, and its searchable text. */
export const MessageSearchHitSchema = z.strictObject({
  conv: z.string(),
  seq: Seq,
  sender: z.string(),
  kind: z.string(),
  time: Seq,
  text: z.string(),
});
export type MessageSearchHit = z.infer<typeof MessageSearchHitSchema>;

export const MessageSearchResultSchema = z.strictObject({
  hits: z.array(MessageSearchHitSchema),
  /** Pass as `before` for the next (older) page; null at the end. */
  next: z.string().nullable(),
});
export type MessageSearchResult = z.infer<typeof MessageSearchResultSchema>;

/** A subject type: lower-case ASCII, e.g. `item`, `order`. */
export const SubjectType = z.string().regex(/^[a-z][a-z0-9_-]{0,15}$/);
/** A subject id as the operator's backend knows it (no `:` so it fits in a conversation id). */
export const SubjectId = z.string().regex(/^[A-Za-z0-9_.-]{1,48}$/);
export const SubjectAttrs = z.record(z.string().regex(/^[A-Za-z0-9_.-]{1,32}$/), safeText(256)).refine((r) => Object.keys(r).length <= 16, 'at most 16 attributes');

/** The business subject of a 1:1 subject conversation (`d:<a>:<b>:<type>.<id>`). */
export const SubjectSchema = z.strictObject({
  conv: z.string(),
  type: z.string(),
  id: z.string(),
  title: z.string(),
  attrs: z.record(z.string(), z.string()),
  users: z.tuple([z.string(), z.string()]),
  createdAt: Seq,
  updatedAt: Seq,
});
export type Subject = z.infer<typeof SubjectSchema>;

const UserId = z.string().min(1).max(64);

export const searchRoutes = {
  search: restRoute({
    method: 'GET',
    url: '/api/search',
    summary: "Search messages of the caller's conversations",
    auth: 'user',
    query: z.strictObject({
      q: z.string().min(1).max(800),
      conv: z.string().min(1).max(128).optional(),
      sender: UserId.optional(),
      kind: z.string().min(1).max(32).optional(),
      from: QuerySeq.optional(),
      to: QuerySeq.optional(),
      before: z.string().max(64).optional(),
      limit: queryLimit(100).optional(),
    }),
    reply: { 200: MessageSearchResultSchema },
  }),
  subject: restRoute({
    method: 'GET',
    url: '/api/conversations/:conv/subject',
    summary: 'The business subject of a conversation (null: none)',
    auth: 'user',
    params: z.strictObject({ conv: z.string() }),
    reply: { 200: z.strictObject({ subject: SubjectSchema.nullable() }) },
  }),
  attachSubject: restRoute({
    method: 'POST',
    url: '/api/admin/subjects',
    summary: 'Operator: the subject conversation of two users about one item or order (created on first use)',
    auth: 'admin',
    body: z.strictObject({
      users: z.tuple([UserId, UserId]),
      type: SubjectType,
      id: SubjectId,
      title: displayName(100),
      attrs: SubjectAttrs.optional(),
    }),
    reply: { 200: z.strictObject({ subject: SubjectSchema, created: z.boolean() }) },
  }),
};
