import { z } from 'zod';
import { restRoute } from './route.ts';
import { PLATFORMS } from '../types.ts';

/**
 * Observability routes: the trace of one message across its stages and nodes (server:
 * src/tracing/), and the clients' connect telemetry (server: src/tracing/telemetry.ts).
 */

export const TRACE_STAGE_NAMES = ['send', 'commit', 'fanout', 'deliver', 'retry', 'ack', 'pulled', 'offline', 'gave_up', 'push'] as const;

export const TraceEventSchema = z.strictObject({
  stage: z.enum(TRACE_STAGE_NAMES),
  /** Wall-clock start, ms since the epoch (fractional). */
  at: z.number(),
  /** The node that saw the stage. */
  node: z.string(),
  durMs: z.number().nonnegative().optional(),
  userId: z.string().optional(),
  deviceId: z.string().optional(),
  inboxSeq: z.number().int().optional(),
  attempt: z.number().int().optional(),
  detail: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).optional(),
});

export const MessageTraceSchema = z.strictObject({
  msgId: z.string(),
  /** Every node's journal entries of the message, oldest first. */
  events: z.array(TraceEventSchema),
  /** Events the journals did not keep (a large group's deliveries beyond the per-message cap). */
  dropped: z.number().int().nonnegative(),
  /** The nodes that answered (this one first); a node that did not answer in time is missing. */
  nodes: z.array(z.string()),
});

const MessageParams = z.strictObject({ id: z.string().min(1).max(64) });

export const traceRoutes = {
  adminTrace: restRoute({
    method: 'GET',
    url: '/api/admin/messages/:id/trace',
    summary: "What happened to a message: every node's journal entries of its stages (send, commit, fan-out, deliveries, ACKs, retries, push)",
    auth: 'admin',
    params: MessageParams,
    reply: { 200: MessageTraceSchema },
  }),
  consoleTrace: restRoute({
    method: 'GET',
    url: '/api/console/messages/:id/trace',
    summary: "A message's trace for the console (viewer role)",
    auth: 'none',
    params: MessageParams,
    reply: { 200: MessageTraceSchema },
  }),
};

/** Why a connect attempt failed, as the client saw it. */
export const CONNECT_FAILURES = ['timeout', 'refused', 'dns', 'tls', 'closed', 'rejected', 'other'] as const;

export const ConnectSampleSchema = z.strictObject({
  /** ms since the client started (the SDK reports within the first 30 s). */
  sinceStartMs: z.number().int().min(0).max(86_400_000),
  ok: z.boolean(),
  /** From opening the socket to the WebSocket being open (TCP + TLS + upgrade). */
  connectMs: z.number().min(0).max(600_000).optional(),
  /** TLS handshake, when the client can measure it (wss). */
  tlsMs: z.number().min(0).max(600_000).optional(),
  /** From the socket being open to the first frame from the server (the hello answer). */
  firstPacketMs: z.number().min(0).max(600_000).optional(),
  failure: z.enum(CONNECT_FAILURES).optional(),
});
export type ConnectSample = z.infer<typeof ConnectSampleSchema>;

export const TelemetryReportSchema = z.strictObject({
  platform: z.enum(PLATFORMS),
  /** The app's version (letters, digits, `.`, `-`, `+`); unknown ones are counted as `other`. */
  appVersion: z.string().regex(/^[0-9A-Za-z.+-]{1,32}$/),
  samples: z.array(ConnectSampleSchema).min(1).max(50),
});
export type TelemetryReport = z.infer<typeof TelemetryReportSchema>;

export const telemetryRoutes = {
  connect: restRoute({
    method: 'POST',
    url: '/api/telemetry/connect',
    summary: 'Client connect telemetry: connect, TLS and first-packet times and outcomes, in batches (aggregated into metrics per platform and version)',
    auth: 'optional',
    body: TelemetryReportSchema,
    reply: { 200: z.strictObject({ accepted: z.number().int() }) },
  }),
};
