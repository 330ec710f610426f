import { z } from 'zod';

/** Message tracing (src/tracing/, docs/operations.md "Tracing a message"). */
export const TracingConfigSchema = z.strictObject({
  /** Messages whose stage events each node keeps in memory for the trace API (0 turns the journal off). */
  journalSize: z.number().int().min(0).max(1_000_000).default(10_000),
  /** OTLP/HTTP traces endpoint, e.g. http://collector:4318/v1/traces. Unset: no spans (the OpenTelemetry SDK is not even loaded). */
  otlpEndpoint: z.url({ protocol: /^https?$/ }).optional(),
  /** Extra headers of the export requests (a hosted collector's API key). */
  otlpHeaders: z.record(z.string(), z.string()).optional(),
  /** Share of messages whose spans are exported (by trace: a sampled send's deliveries on every node are kept). */
  sampleRatio: z.number().min(0).max(1).default(1),
  /** `service.name` of the exported spans. */
  serviceName: z.string().min(1).max(100).default('magpie'),
});

/** Client connect telemetry (POST /api/telemetry/connect). */
export const TelemetryConfigSchema = z.strictObject({
  enabled: z.boolean().default(true),
  /** App versions kept as their own metric label (the first ones reported); later versions count as `other`. */
  maxVersions: z.number().int().min(1).max(1000).default(50),
});

export const TRACING_ENV: Record<string, (c: Record<string, unknown>, v: string) => void> = {
  MAGPIE_TRACING_JOURNAL_SIZE: (c, v) => (c.tracing = { ...(c.tracing as object), journalSize: Number(v) }),
  MAGPIE_TRACING_OTLP_ENDPOINT: (c, v) => (c.tracing = { ...(c.tracing as object), otlpEndpoint: v }),
  MAGPIE_TRACING_SAMPLE_RATIO: (c, v) => (c.tracing = { ...(c.tracing as object), sampleRatio: Number(v) }),
  MAGPIE_TRACING_SERVICE_NAME: (c, v) => (c.tracing = { ...(c.tracing as object), serviceName: v }),
  MAGPIE_TELEMETRY: (c, v) => (c.telemetry = { ...(c.telemetry as object), enabled: v !== 'off' && v !== 'false' && v !== '0' }),
};
