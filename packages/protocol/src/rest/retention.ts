import { z } from 'zod';
import { Seq, queryLimit, restRoute } from './route.ts';
import { MessageSchema } from '../server-frames.ts';

/**
 * Message retention and the operator's message actions (server: src/retention/).
 *
 * Retention: messages older than their conversation kind's retention (days; 0 = forever) are
 * purged by a job that one node runs at a time; an operator can override one conversation's
 * days. Each route exists twice: under /api/admin/… with the operator token (automation) and
 * under /api/console/… with a console token (viewer reads; operator changes; audited).
 */

export const RetentionSettingsSchema = z.strictObject({
  directDays: z.number().int(),
  groupDays: z.number().int(),
  superGroupDays: z.number().int(),
  intervalMs: z.number().int(),
  batchSize: z.number().int(),
  pauseMs: z.number().int(),
  leaseMs: z.number().int(),
});
export const RetentionOverrideSchema = z.strictObject({ conv: z.string(), days: z.number().int(), setBy: z.string(), reason: z.string(), setAt: z.number().int() });
export const PurgeRunSchema = z.strictObject({
  id: z.number().int().optional(),
  outcome: z.string(),
  node: z.string(),
  startedAt: z.number().int(),
  finishedAt: z.number().int(),
  conversations: z.number().int(),
  messages: z.number().int(),
  /** Present on a run's own answer: delete transactions that removed messages. */
  batches: z.number().int().optional(),
});
export const RetentionStatusSchema = z.strictObject({
  settings: RetentionSettingsSchema,
  lease: z.strictObject({ holder: z.string(), until: z.number().int() }).nullable(),
  runs: z.array(PurgeRunSchema),
  overrides: z.array(RetentionOverrideSchema),
});
/** One conversation's retention: the days in force (override, else its kind's), and how far it was purged. */
export const ConvRetentionSchema = z.strictObject({
  conv: z.string(),
  kind: z.string(),
  days: z.number().int(),
  override: RetentionOverrideSchema.nullable(),
  purgedSeq: Seq,
  purgedCount: z.number().int(),
  purgedAt: z.number().int().nullable(),
});

const ConvParams = z.strictObject({ conv: z.string().min(1).max(200) });
const OverrideBody = z.strictObject({ days: z.number().int().min(0).max(100_000), reason: z.string().min(1).max(500) });
const ClearBody = z.strictObject({ reason: z.string().min(1).max(500) });

/** A message as the operator sees it: the stored message with its conversation. */
export const AdminMessageSchema = z.strictObject({
  message: MessageSchema,
  conversation: z.strictObject({ id: z.string(), kind: z.string(), lastSeq: Seq, purgedSeq: Seq }),
});
export const AdminConvMessagesSchema = z.strictObject({ messages: z.array(MessageSchema), lastSeq: Seq, purgedSeq: Seq, more: z.boolean() });
/** After an operator recall or delete: the stored tombstone, and the recall event posted into the conversation (recall only; null when none could be posted). */
export const AdminMessageActionSchema = z.strictObject({ message: MessageSchema, event: MessageSchema.nullable() });

const MessageParams = z.strictObject({ id: z.string().min(1).max(100) });
const HistoryQuery = z.strictObject({ before: z.coerce.number().int().positive().optional(), after: z.coerce.number().int().nonnegative().optional(), limit: queryLimit(200).default(50) });
const ActionBody = z.strictObject({ reason: z.string().min(1).max(500) });
const ActionParams = z.strictObject({ id: z.string().min(1).max(100), action: z.enum(['recall', 'delete']) });

function routes(prefix: '/api/admin' | '/api/console', auth: 'admin' | 'none') {
  const who = prefix === '/api/admin' ? 'operator token' : 'console: viewer';
  const change = prefix === '/api/admin' ? 'operator token; audited' : 'console: operator; audited';
  return {
    status: restRoute({ method: 'GET', url: `${prefix}/retention`, summary: `Retention settings, the purge lease, recent runs and overrides (${who})`, auth, reply: { 200: RetentionStatusSchema } }),
    conversation: restRoute({
      method: 'GET',
      url: `${prefix}/retention/conversations/:conv`,
      summary: `One conversation's retention and purge position (${who})`,
      auth,
      params: ConvParams,
      reply: { 200: ConvRetentionSchema },
    }),
    setOverride: restRoute({
      method: 'PUT',
      url: `${prefix}/retention/conversations/:conv`,
      summary: `Override one conversation's retention in days, 0 = keep forever (${change})`,
      auth,
      params: ConvParams,
      body: OverrideBody,
      reply: { 200: ConvRetentionSchema },
    }),
    clearOverride: restRoute({
      method: 'DELETE',
      url: `${prefix}/retention/conversations/:conv`,
      summary: `Remove a conversation's override: its kind's retention applies again (${change})`,
      auth,
      params: ConvParams,
      body: ClearBody,
      reply: { 200: ConvRetentionSchema },
    }),
    run: restRoute({
      method: 'POST',
      url: `${prefix}/retention/run`,
      summary: `Run a purge now on this node; outcome \`busy\` when another node holds the lease (${change})`,
      auth,
      reply: { 200: PurgeRunSchema },
    }),
    message: restRoute({ method: 'GET', url: `${prefix}/messages/:id`, summary: `Look up a message by id (${who})`, auth, params: MessageParams, reply: { 200: AdminMessageSchema } }),
    convMessages: restRoute({
      method: 'GET',
      url: `${prefix}/conversations/:conv/messages`,
      summary: `A conversation's messages: newest first below \`before\`, or oldest first above \`after\` (${who})`,
      auth,
      params: ConvParams,
      query: HistoryQuery,
      reply: { 200: AdminConvMessagesSchema },
    }),
    messageAction: restRoute({
      method: 'POST',
      url: `${prefix}/messages/:id/:action`,
      summary: `recall (every device is told, as a recall by the operator) or delete (the stored copy becomes a tombstone, no event) a message, with a reason (${change})`,
      auth,
      params: ActionParams,
      body: ActionBody,
      reply: { 200: AdminMessageActionSchema },
    }),
  };
}

export type RetentionRoutes = ReturnType<typeof routes>;

/** Operator-token routes (/api/admin/…). */
export const adminRetentionRoutes: RetentionRoutes = routes('/api/admin', 'admin');
/** Console routes (/api/console/…, console token). */
export const consoleRetentionRoutes: RetentionRoutes = routes('/api/console', 'none');
