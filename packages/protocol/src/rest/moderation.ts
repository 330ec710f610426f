import { z } from 'zod';
import { safeText } from '../text.ts';
import { OkSchema, QuerySeq, queryLimit, restRoute } from './route.ts';

/** Moderation reports and the webhook outbox (server: src/webhooks/). */

export const REPORT_REASONS = ['spam', 'abuse', 'harassment', 'fraud', 'illegal', 'other'] as const;
export const REPORT_STATES = ['open', 'resolved', 'dismissed'] as const;

export const ReportSchema = z.strictObject({
  id: z.string(),
  reporter: z.string(),
  /** The reported user (for a message: its sender). */
  targetUser: z.string().nullable(),
  conv: z.string().nullable(),
  seq: z.number().int().nullable(),
  messageId: z.string().nullable(),
  /** The reported message's text (or kind) as it was when reported, so a later recall leaves evidence for the operator. */
  excerpt: z.string().nullable(),
  reason: z.enum(REPORT_REASONS),
  note: z.string(),
  status: z.enum(REPORT_STATES),
  resolution: z.string().nullable(),
  createdAt: z.number().int(),
  resolvedAt: z.number().int().nullable(),
});
export type Report = z.infer<typeof ReportSchema>;

export const OutboxEventSchema = z.strictObject({
  id: z.number().int(),
  hook: z.string(),
  event: z.string(),
  key: z.string(),
  status: z.enum(['pending', 'delivered', 'failed']),
  attempts: z.number().int(),
  nextAt: z.number().int(),
  lastError: z.string().nullable(),
  createdAt: z.number().int(),
  /** The JSON body the hook receives. */
  payload: z.string(),
});

const UserId = z.string().min(1).max(64);

export const moderationRoutes = {
  report: restRoute({
    method: 'POST',
    url: '/api/reports',
    summary: 'Report a message (conv + seq) or a user to the operator',
    auth: 'user',
    body: z
      .strictObject({
        userId: UserId.optional(),
        conv: z.string().min(1).max(200).optional(),
        seq: z.number().int().positive().optional(),
        reason: z.enum(REPORT_REASONS),
        note: safeText(1000).default(''),
      })
      .refine((b) => (b.conv === undefined) === (b.seq === undefined), { message: 'a message is reported by conv and seq together' })
      .refine((b) => b.userId !== undefined || b.conv !== undefined, { message: 'report a user (userId) or a message (conv and seq)' }),
    reply: { 201: z.strictObject({ report: ReportSchema }) },
  }),
  adminReports: restRoute({
    method: 'GET',
    url: '/api/admin/reports',
    summary: 'Moderation queue: reports, oldest first (paged by `after` = the last id)',
    auth: 'admin',
    query: z.strictObject({ status: z.enum(REPORT_STATES).default('open'), after: z.string().max(64).optional(), limit: queryLimit(500).default(100) }),
    reply: { 200: z.strictObject({ reports: z.array(ReportSchema) }) },
  }),
  adminResolveReport: restRoute({
    method: 'PATCH',
    url: '/api/admin/reports/:id',
    summary: 'Close a report as resolved or dismissed, with a note',
    auth: 'admin',
    params: z.strictObject({ id: z.string().min(1).max(64) }),
    body: z.strictObject({ status: z.enum(['resolved', 'dismissed']), resolution: safeText(1000).default('') }),
    reply: { 200: z.strictObject({ report: ReportSchema }) },
  }),
  adminOutbox: restRoute({
    method: 'GET',
    url: '/api/admin/webhooks/outbox',
    summary: 'Webhook after-events by status (paged by `after` = the last id), and counts per status',
    auth: 'admin',
    query: z.strictObject({ status: z.enum(['pending', 'delivered', 'failed']).optional(), hook: z.string().max(40).optional(), after: QuerySeq.optional(), limit: queryLimit(500).default(100) }),
    reply: { 200: z.strictObject({ events: z.array(OutboxEventSchema), counts: z.record(z.string(), z.number().int()) }) },
  }),
  adminOutboxRetry: restRoute({
    method: 'POST',
    url: '/api/admin/webhooks/outbox/:id/retry',
    summary: 'Put a failed webhook event back in line',
    auth: 'admin',
    params: z.strictObject({ id: QuerySeq }),
    reply: { 200: OkSchema },
  }),
};
