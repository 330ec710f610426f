import type { PUSH_CATEGORIES, PUSH_PERMISSIONS, PUSH_PROVIDERS, PUSH_VENDORS, Platform } from '@magpie/protocol';

/**
 * Shared types of offline push. Every push is marked with a category; an unmarked push is
 * treated as marketing (vendors count unmarked pushes against the marketing quota too).
 */
export { PUSH_CATEGORIES, PUSH_PERMISSIONS, PUSH_PROVIDERS, PUSH_VENDORS } from '@magpie/protocol';
export type PushCategory = (typeof PUSH_CATEGORIES)[number];
export type PushProviderName = (typeof PUSH_PROVIDERS)[number];
export type PushVendor = (typeof PUSH_VENDORS)[number];
export type PushPermission = (typeof PUSH_PERMISSIONS)[number];

/** Two lanes with separate queues, concurrency and rate: bulk work never slows live chat. */
export type PushLane = 'live' | 'bulk';
export const LANE_OF: Record<PushCategory, PushLane> = { im: 'live', transaction: 'live', followed: 'bulk', marketing: 'bulk' };

/** One device in the registry: how to reach it, and what it told us about itself. */
export interface PushDevice {
  userId: string;
  deviceId: string;
  platform: Platform;
  provider: PushProviderName;
  /** APNs/FCM registration token; Web Push: the subscription JSON; webhook: the vendor token. */
  token: string;
  /** Webhook only: which phone maker's channel. */
  vendor: PushVendor | null;
  /** APNs only: the token belongs to the sandbox (development) environment. */
  sandbox: boolean;
  appVersion: string;
  locale: string;
  timeZone: string;
  permission: PushPermission;
  lastSeen: number;
  createdAt: number;
  updatedAt: number;
}

export type DeviceUpsert = Omit<PushDevice, 'createdAt' | 'updatedAt' | 'lastSeen'> & { now: number };

export interface DevicePatch {
  appVersion?: string;
  locale?: string;
  timeZone?: string;
  permission?: PushPermission;
}

/** Per-user push preferences ("user settings respected"). */
export interface PushUserSettings {
  /** 'hide': no sender or text in notifications; 'show': previews; 'default': the server's `privacyDefault`. */
  privacy: 'default' | 'hide' | 'show';
  /** Categories the user switched off (im cannot be switched off here: mute conversations instead). */
  disabled: PushCategory[];
  /** Own quiet hours "HH:MM"–"HH:MM" in the device's time zone; null: the server default; 'off': none. */
  quietHours: { start: string; end: string } | 'off' | null;
}

export const DEFAULT_SETTINGS: PushUserSettings = { privacy: 'default', disabled: [], quietHours: null };

/** A push job as the queue stores it: one notification for one device. */
export interface NewPushJob {
  id: string;
  lane: PushLane;
  category: PushCategory;
  userId: string;
  deviceId: string;
  provider: PushProviderName;
  /** Notifications with the same key on one device replace each other (conversation id for IM). */
  collapseKey: string | null;
  conv: string | null;
  /** Highest conversation seq this notification covers (IM), for de-duplication. */
  seq: number;
  /** Messages (or events) this notification stands for; shown as a count when > 1. */
  count: number;
  /** Content as it will be shown: privacy mode was applied before it was stored. */
  title: string;
  body: string;
  /** Extra string data for the client (deep link, campaign id). */
  data: Record<string, string>;
  notBefore: number;
  expiresAt: number;
  createdAt: number;
}

export type PushJobStatus = 'queued' | 'sending' | 'sent' | 'failed' | 'dropped';

export interface PushJobRecord extends NewPushJob {
  status: PushJobStatus;
  attempts: number;
  /** Time of the latest dispatch (claim) of this job. */
  dispatchedAt: number | null;
  sentAt: number | null;
  deliveredAt: number | null;
  displayedAt: number | null;
  clickedAt: number | null;
  lastError: string | null;
}

/** A job handed to a worker, with the device's current token (read at claim time, never earlier). */
export interface ClaimedJob extends PushJobRecord {
  device: PushDevice;
}

export type EnqueueResult =
  | { outcome: 'queued'; id: string }
  /** Folded into a queued notification of the same collapse key (count and content updated). */
  | { outcome: 'merged'; id: string }
  /** A notification of this key already covers this seq. */
  | { outcome: 'duplicate'; id: string };

/** What a provider said about one attempt. */
export type ProviderOutcome =
  | 'ok'
  /** Token unknown, expired or unregistered: remove it now. */
  | 'invalid_token'
  /** The request was wrong (payload, topic, collapse id): do not retry, keep the token. */
  | 'bad_request'
  /** Throttled, provider down, network error: retry with backoff. */
  | 'transient'
  /** Our credentials were refused (expired JWT, bad key): refresh and retry; counts as transient. */
  | 'auth';

export interface ProviderResult {
  outcome: ProviderOutcome;
  status: number;
  /** Provider reason (APNs `reason`, FCM `errorCode`, HTTP text). */
  reason?: string;
  /** Provider's message id when accepted (apns-id, FCM name). */
  providerId?: string;
  retryAfterMs?: number;
}

export interface JobCompletion {
  jobId: string;
  /** The attempt number this completion belongs to; stale completions (after a lease expired) are ignored. */
  attempt: number;
  at: number;
  latencyMs: number;
  result: ProviderResult;
  /** What the job becomes. */
  next: { status: 'sent' } | { status: 'queued'; notBefore: number } | { status: 'failed' | 'dropped'; reason: string };
  /** For invalid_token: remove this exact token (not a newer one registered since). */
  removeToken?: { provider: PushProviderName; token: string };
}

export interface PushAttemptRecord {
  jobId: string;
  attempt: number;
  at: number;
  provider: PushProviderName;
  status: number;
  outcome: ProviderOutcome;
  reason: string | null;
  latencyMs: number;
}

/** Funnel stages (the order they happen in) and drop reasons. */
export const FUNNEL_STAGES = ['requested', 'accepted', 'provider_accepted', 'delivered', 'displayed', 'clicked'] as const;
export type FunnelStage = (typeof FUNNEL_STAGES)[number];
export const DROP_REASONS = [
  'no_device',
  'notifications_off',
  'category_off',
  'muted',
  'quota',
  'collapsed',
  'duplicate',
  'provider_unconfigured',
  'invalid_token',
  'bad_request',
  'failed',
  'expired',
  'unbound',
  'account_mismatch',
] as const;
export type DropReason = (typeof DROP_REASONS)[number];

export interface StatDelta {
  day: string;
  category: PushCategory;
  provider: PushProviderName | 'none';
  /** A funnel stage or `dropped:<reason>`. */
  stage: string;
  n: number;
}

export type ReceiptEvent = 'delivered' | 'displayed' | 'clicked';
