import type { Platform } from '@magpie/protocol';
import type { PushAttemptRecord, PushDevice, PushJobRecord, PushLane, PushCategory, PushJobStatus, PushPermission, PushProviderName, PushVendor, ProviderOutcome } from './types.ts';

/** Column lists and row mapping shared by the SQLite and PostgreSQL push stores. */

export interface DeviceRow {
  user_id: string;
  device_id: string;
  platform: string;
  provider: string;
  token: string;
  vendor: string | null;
  sandbox: number | boolean;
  app_version: string;
  locale: string;
  time_zone: string;
  permission: string;
  last_seen: number | string;
  created_at: number | string;
  updated_at: number | string;
}

export function deviceFromRow(r: DeviceRow): PushDevice {
  return {
    userId: r.user_id,
    deviceId: r.device_id,
    platform: r.platform as Platform,
    provider: r.provider as PushProviderName,
    token: r.token,
    vendor: (r.vendor ?? null) as PushVendor | null,
    sandbox: r.sandbox === true || r.sandbox === 1,
    appVersion: r.app_version,
    locale: r.locale,
    timeZone: r.time_zone,
    permission: r.permission as PushPermission,
    lastSeen: Number(r.last_seen),
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
  };
}

export interface JobRow {
  id: string;
  lane: string;
  category: string;
  user_id: string;
  device_id: string;
  provider: string;
  collapse_key: string | null;
  conv: string | null;
  seq: number | string;
  count: number | string;
  title: string;
  body: string;
  data: string | Record<string, string>;
  not_before: number | string;
  expires_at: number | string;
  created_at: number | string;
  status: string;
  attempts: number | string;
  dispatched_at: number | string | null;
  sent_at: number | string | null;
  delivered_at: number | string | null;
  displayed_at: number | string | null;
  clicked_at: number | string | null;
  last_error: string | null;
}

const num = (v: number | string | null): number | null => (v === null || v === undefined ? null : Number(v));

export function jobFromRow(r: JobRow): PushJobRecord {
  return {
    id: r.id,
    lane: r.lane as PushLane,
    category: r.category as PushCategory,
    userId: r.user_id,
    deviceId: r.device_id,
    provider: r.provider as PushProviderName,
    collapseKey: r.collapse_key,
    conv: r.conv,
    seq: Number(r.seq),
    count: Number(r.count),
    title: r.title,
    body: r.body,
    data: typeof r.data === 'string' ? (JSON.parse(r.data) as Record<string, string>) : r.data,
    notBefore: Number(r.not_before),
    expiresAt: Number(r.expires_at),
    createdAt: Number(r.created_at),
    status: r.status as PushJobStatus,
    attempts: Number(r.attempts),
    dispatchedAt: num(r.dispatched_at),
    sentAt: num(r.sent_at),
    deliveredAt: num(r.delivered_at),
    displayedAt: num(r.displayed_at),
    clickedAt: num(r.clicked_at),
    lastError: r.last_error,
  };
}

export interface AttemptRow {
  job_id: string;
  attempt: number | string;
  at: number | string;
  provider: string;
  status: number | string;
  outcome: string;
  reason: string | null;
  latency_ms: number | string;
}

export function attemptFromRow(r: AttemptRow): PushAttemptRecord {
  return {
    jobId: r.job_id,
    attempt: Number(r.attempt),
    at: Number(r.at),
    provider: r.provider as PushProviderName,
    status: Number(r.status),
    outcome: r.outcome as ProviderOutcome,
    reason: r.reason,
    latencyMs: Number(r.latency_ms),
  };
}

/** Column holding each receipt event's time. */
export const EVENT_COLUMN = { delivered: 'delivered_at', displayed: 'displayed_at', clicked: 'clicked_at' } as const;
