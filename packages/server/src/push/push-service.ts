import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Logger } from 'pino';
import { MagpieError, type Message, type Platform } from '@magpie/protocol';
import type { Store, InboxPointer } from '../store/store.ts';
import type { Principal } from '../services/account-service.ts';
import type { OfflineHandoff } from '../delivery/offline-handoff.ts';
import type { MessageTracer } from '../tracing/tracer.ts';
import type { PushConfig } from '../config/push-config.ts';
import type { PushStore } from './push-store.ts';
import type { PushFunnel } from './funnel.ts';
import type { PushDispatcher } from './dispatcher.ts';
import type { ProviderMessage, PushProviderAdapter } from './providers/provider.ts';
import { endpointAllowed } from './providers/webpush.ts';
import { hiddenText, imText, isTimeZone, quietDelayMs, quietWindowFor, requiresAccount, utcDay } from './policy.ts';
import {
  LANE_OF,
  type ClaimedJob,
  type DevicePatch,
  type DropReason,
  type EnqueueResult,
  type NewPushJob,
  type PushCategory,
  type PushDevice,
  type PushJobRecord,
  type PushPermission,
  type PushProviderName,
  type PushUserSettings,
  type PushVendor,
} from './types.ts';

/** Who is connected right now (the gateway). */
export interface Presence {
  /** Devices of the user connected to this node. */
  onlineDevices(userId: string): string[];
  /**
   * Devices of these users connected anywhere in the cluster (this node and the others, asked
   * over the Bus). Push decisions use it when present, so a user online on another node gets
   * no offline push.
   */
  onlineDevicesOf?(userIds: string[]): Promise<Map<string, string[]>>;
  /** Every connected (user, device), to keep `lastSeen` fresh. */
  connected?(): Iterable<{ userId: string; deviceId: string }>;
  /**
   * Cluster: whether the latest presence event says the user is online on some node
   * (receipts/presence.ts PresenceHub.knownOnline; debounced, undefined when none seen). The
   * funnel reads it for users without a push device — who get no push either way — instead
   * of counting one connected to another node as offline; no Bus question per batch.
   */
  knownOnline?(userId: string): boolean | undefined;
}

/** The offline push entry point for other parts of the server. */
export interface OfflinePush {
  /** A delivery to this device (or to the user's offline devices) could not complete live. */
  handoffMessage(userId: string, deviceId: string | undefined, message: Message, reason: string): Promise<void>;
  /** A non-IM push (order status, followed content, marketing). No category = marketing. */
  notify(req: NotifyRequest): Promise<NotifyResult>;
}

export interface NotifyRequest {
  userIds: string[];
  category?: PushCategory;
  title: string;
  body: string;
  /** Conversation to open on click, if any. */
  conv?: string;
  /** Same key on a device: the newer notification replaces the older. */
  collapseKey?: string;
  data?: Record<string, string>;
}

export interface NotifyResult {
  requested: number;
  accepted: number;
  dropped: Partial<Record<DropReason, number>>;
}

export interface RegisterInput {
  provider: PushProviderName;
  token?: string;
  subscription?: { endpoint: string; keys: { p256dh: string; auth: string } };
  vendor?: PushVendor;
  sandbox?: boolean;
  platform?: Platform;
  appVersion?: string;
  locale?: string;
  timeZone?: string;
  permission?: PushPermission;
}

export interface ClickResult {
  open: boolean;
  reason?: 'account_mismatch' | 'signed_out';
  category: PushCategory;
  /** The account the push was for. */
  userId: string;
  conv: string | null;
  seq: number;
  data: Record<string, string>;
}

export interface PushServiceDeps {
  config: PushConfig;
  store: Store;
  pushStore: PushStore;
  presence: Presence;
  providers: Partial<Record<PushProviderName, PushProviderAdapter>>;
  funnel: PushFunnel;
  log: Logger;
  receiptKey: Buffer;
  vapidPublicKey: string | null;
  now?: () => number;
  /** Campaign intake pauses between slices while the event loop lags. */
  guard?: { pauseMs(): number; busy?(): void };
  /**
   * Remember users found without any registered device, so their messages skip the intake
   * (no devicesOf read per batch). On one node; on a cluster only with `devicelessSync`: a
   * device registered through another node must make this node forget its user first.
   */
  cacheDeviceless?: boolean;
  /** Cluster: how registrations reach the other nodes' memory of users without a device (push/index.ts). */
  devicelessSync?: DevicelessSync;
}

/**
 * A cluster's side of the memory of users without a device (PushServiceDeps.cacheDeviceless):
 * every node forgets a user before a registration of theirs is answered anywhere.
 */
export interface DevicelessSync {
  /** Whether this node may remember now: every node that could register a device tells it first (and its Bus is up). */
  trusted(): boolean;
  /** After a registration's write committed: every other node forgets `userId`; resolves once they confirmed (or after a timeout). */
  registered(userId: string): Promise<void>;
}

/** Bound on the users remembered without a registered device (~80 bytes each). */
const DEVICELESS_CAP = 200_000;

interface ImIntake {
  message: Message;
  userIds: string[];
  /** Only this device (retry handoff). */
  onlyDevice?: string;
  /** Push even if the device looks connected (the retry queue gave up on it). */
  force?: boolean;
  /** `bulk` for super-group fan-outs (@all, "all messages"): they cannot starve 1:1 pushes. */
  lane?: 'live' | 'bulk';
}

/** Kinds that never notify. */
/** Kinds never pushed: notices, and lifecycle events other than a recall (which replaces the conversation's notification, collapse key = conv). */
const SILENT_KINDS = new Set(['system', 'edit', 'reaction']);
const INTAKE_CAP = 200_000;
/**
 * Store calls here are synchronous under their promises (SQLite): a batch runs without
 * letting the event loop in. Small batches with a macrotask yield between them keep push
 * work from delaying live chat by more than a few milliseconds.
 */
const INTAKE_BATCH = 64;
const NOTIFY_BATCH = 50;
const yieldToIo = (): Promise<void> => new Promise((r) => setImmediate(r));

/** Registered devices not connected right now. */
function withoutOnline<T extends { deviceId: string }>(regs: T[], online: readonly string[]): T[] {
  if (online.length === 0) return regs;
  const set = new Set(online);
  return regs.filter((x) => !set.has(x.deviceId));
}

/** Push job ids: time-ordered, unique across nodes (random node prefix) without a random draw per id. */
const NODE = randomBytes(6).toString('base64url');
let counter = 0;
function pushId(): string {
  counter = (counter + 1) % 0x7fffffff;
  return `p${Date.now().toString(36).padStart(9, '0')}${NODE}${counter.toString(36)}`;
}

/**
 * Offline push: turns committed messages (and other services' notify calls) into push jobs
 * for exactly the devices the policy allows, and serves the device registry, the receipts
 * and clicks. Sending is the dispatcher's job.
 *
 * Policy, in order: resolve the user's registered devices (with a live session) → keep the
 * offline ones → conversation mute / category switched off → notification permission →
 * provider configured → marketing quota (per user and app per day; unmarked = marketing) →
 * quiet hours in the device's time zone (non-IM waits) → privacy mode decides the text →
 * one job per device, collapsed per conversation.
 */
export class PushService implements OfflinePush, OfflineHandoff {
  private readonly now: () => number;
  private intake: ImIntake[] = [];
  private intakeRunning: Promise<void> | null = null;
  private readonly names = new Map<string, string>();
  private touchTimer: NodeJS.Timeout | null = null;
  dispatcher: PushDispatcher | null = null;
  /** Records each message's push jobs in its trace (tracing/); set by app.ts. */
  tracer: MessageTracer | null = null;
  /**
   * Users with no registered device as of a devicesOf read (cacheDeviceless). A registration
   * removes its user before it writes and keeps reads that overlap it from adding anyone
   * (deviceEpoch, registering), so a message committed after a registration sees the device.
   */
  private readonly deviceless = new Set<string>();
  private deviceEpoch = 0;
  private registering = 0;

  constructor(private readonly d: PushServiceDeps) {
    this.now = d.now ?? Date.now;
  }

  get config(): PushConfig {
    return this.d.config;
  }

  get vapidPublicKey(): string | null {
    return this.d.vapidPublicKey;
  }

  get enabledProviders(): PushProviderName[] {
    return (Object.keys(this.d.providers) as PushProviderName[]).filter((p) => this.d.providers[p]);
  }

  start(): void {
    this.touchTimer = setInterval(() => void this.touchConnected(), 60_000);
    this.touchTimer.unref();
  }

  async stop(): Promise<void> {
    if (this.touchTimer) clearInterval(this.touchTimer);
    await this.drained();
  }

  /** Resolves when every message handed in so far has become jobs (or drops). */
  async drained(): Promise<void> {
    while (this.intakeRunning) await this.intakeRunning;
  }

  // --- intake: committed messages and retry handoffs ---

  /** MessagingService.onCommitted listener: cheap, never throws, never blocks the send. */
  onCommitted = (message: Message, pointers: InboxPointer[]): void => {
    if (!this.d.config.enabled || SILENT_KINDS.has(message.kind)) return;
    const userIds: string[] = [];
    for (const p of pointers) {
      const u = p.userId;
      if (u === message.sender) continue;
      // Known without a device: what processIm would do for them, here (most 1:1 traffic of a busy node).
      if (this.deviceless.has(u)) this.noDevice(u, false);
      else userIds.push(u);
    }
    if (userIds.length === 0) return;
    this.accept({ message, userIds });
  };

  /** A user without a registered device: counted in the funnel when offline — not connected here, nor online elsewhere by the cluster's presence — or when a retry handed over one device. */
  private noDevice(userId: string, onlyDevice: boolean, present?: Map<string, string[]>): void {
    if (onlyDevice || ((present?.get(userId) ?? this.d.presence.onlineDevices(userId)).length === 0 && this.d.presence.knownOnline?.(userId) !== true)) {
      this.d.funnel.stage('requested', 'im', 'none');
      this.d.funnel.drop('no_device', 'im', 'none');
    }
  }

  /** The registered devices of these users; those found without any are remembered (cacheDeviceless). */
  private async devicesOf(userIds: string[]): Promise<Map<string, PushDevice[]>> {
    if (!this.d.cacheDeviceless) return this.d.pushStore.devicesOf(userIds);
    const ask = userIds.filter((u) => !this.deviceless.has(u));
    if (ask.length === 0) return new Map();
    const epoch = this.deviceEpoch;
    const devices = await this.d.pushStore.devicesOf(ask);
    // A read that overlapped a registration (here or, on a cluster, anywhere) may predate it:
    // nothing learnt from it; nor while other nodes' registrations might not reach this one.
    if (epoch === this.deviceEpoch && this.registering === 0 && (this.d.devicelessSync?.trusted() ?? true)) {
      for (const u of ask) {
        if ((devices.get(u)?.length ?? 0) > 0) continue;
        if (this.deviceless.size >= DEVICELESS_CAP) this.deviceless.clear();
        this.deviceless.add(u);
      }
    }
    return devices;
  }

  /**
   * Another node registered a device of `userId` (its write committed): forget them here, and
   * learn nothing from reads that overlap this (they may predate the write).
   */
  forgetDeviceless(userId: string): void {
    this.deviceEpoch++;
    this.deviceless.delete(userId);
  }

  /** This node may have missed another node's registration (Bus down or back, nodes changed): forget everyone. */
  dropDeviceless(): void {
    this.deviceEpoch++;
    this.deviceless.clear();
  }

  /** Push a committed message to these users (receipts/group-push.ts decides who; super groups have no inbox pointers). */
  pushTo(message: Message, userIds: string[], lane: 'live' | 'bulk' = 'live'): void {
    if (!this.d.config.enabled || SILENT_KINDS.has(message.kind)) return;
    const targets = userIds.filter((u) => u !== message.sender);
    if (targets.length > 0) this.accept({ message, userIds: targets, lane });
  }

  /** The retry queue's handoff (delivery/offline-handoff.ts): find the message, push it to that device. */
  handoff(ref: { userId: string; deviceId: string; inboxSeq: number }, reason: 'offline' | 'gave_up'): void {
    if (!this.d.config.enabled) return;
    void this.d.store
      .readInbox(ref.userId, ref.inboxSeq - 1, 1)
      .then(([item]) => {
        if (item && item.inboxSeq === ref.inboxSeq && item.message.sender !== ref.userId) return this.handoffMessage(ref.userId, ref.deviceId, item.message, reason);
      })
      .catch((err: unknown) => this.d.log.error({ err, ...ref }, 'push handoff failed'));
  }

  async handoffMessage(userId: string, deviceId: string | undefined, message: Message, reason: string): Promise<void> {
    if (!this.d.config.enabled || SILENT_KINDS.has(message.kind)) return;
    this.accept({ message, userIds: [userId], ...(deviceId ? { onlyDevice: deviceId } : {}), force: reason === 'gave_up' });
    await this.drained();
  }

  private accept(item: ImIntake): void {
    if (this.intake.length >= INTAKE_CAP) {
      this.d.funnel.drop('failed', 'im', 'none', item.userIds.length);
      return;
    }
    this.intake.push(item);
    if (!this.intakeRunning) {
      this.intakeRunning = new Promise<void>((resolve) => setImmediate(resolve)).then(() => this.runIntake());
    }
  }

  private async runIntake(): Promise<void> {
    try {
      while (this.intake.length > 0) {
        const batch = this.intake.splice(0, INTAKE_BATCH);
        try {
          await this.processIm(batch);
        } catch (err) {
          this.d.log.error({ err, n: batch.length }, 'offline push intake failed');
          this.d.funnel.drop('failed', 'im', 'none', batch.reduce((n, b) => n + b.userIds.length, 0));
        }
        if (this.intake.length > 0) await yieldToIo();
      }
    } finally {
      this.intakeRunning = null;
    }
  }

  private async processIm(batch: ImIntake[]): Promise<void> {
    const { config, funnel, pushStore, store } = this.d;
    const now = this.now();
    const userIds = [...new Set(batch.flatMap((b) => b.userIds))];
    const devices = await this.devicesOf(userIds);
    const withDevices = userIds.filter((u) => (devices.get(u)?.length ?? 0) > 0);
    const settings = await pushStore.getSettings(withDevices);
    const present = await this.presentDevices(withDevices);
    const liveCache = new Map<string, Set<string>>();
    const jobs: NewPushJob[] = [];
    /** The message id of each job, for its trace. */
    const traced: string[] = [];
    for (const item of batch) {
      const m = item.message;
      for (const userId of item.userIds) {
        const registered = devices.get(userId);
        if (registered === undefined || registered.length === 0) {
          // No registered device (most users of a busy node's 1:1 traffic): nothing to push, no presence to look up
          // unless the funnel counts the request (the user is offline, or a retry handed over one device).
          this.noDevice(userId, item.onlyDevice !== undefined, present);
          continue;
        }
        const onlineNow = present.get(userId) ?? this.d.presence.onlineDevices(userId);
        let regs = registered;
        if (item.onlyDevice !== undefined) regs = regs.filter((x) => x.deviceId === item.onlyDevice);
        // Connected devices need no push (checked first: it is free); the rest must still have a live session.
        let targets = item.force || regs.length === 0 ? regs : withoutOnline(regs, onlineNow);
        if (targets.length > 0) targets = await this.withLiveSession(userId, targets, now, liveCache);
        if (targets.length === 0) {
          if (item.onlyDevice !== undefined || onlineNow.length === 0) {
            funnel.stage('requested', 'im', 'none');
            funnel.drop('no_device', 'im', 'none');
          }
          continue;
        }
        const entry = await store.getEntry(userId, m.conv);
        // Already read on another device (a late retry handoff): nothing to notify about.
        if (entry && m.seq <= entry.readSeq) continue;
        for (const t of targets) funnel.stage('requested', 'im', t.provider);
        if (entry?.muted) {
          for (const t of targets) funnel.drop('muted', 'im', t.provider);
          continue;
        }
        const s = settings.get(userId)!;
        const hide = (s.privacy === 'default' ? config.privacyDefault : s.privacy) === 'hide';
        const count = Math.max(1, entry?.unread ?? 1);
        const senderName = hide ? '' : await this.senderName(m.sender);
        for (const t of targets) {
          const why = this.blocked(t);
          if (why) {
            funnel.drop(why, 'im', t.provider);
            continue;
          }
          const text = imText({ senderName, message: m, count, hide, appName: config.appName, locale: t.locale });
          jobs.push({
            id: pushId(),
            lane: item.lane ?? 'live',
            category: 'im',
            userId,
            deviceId: t.deviceId,
            provider: t.provider,
            collapseKey: m.conv,
            conv: m.conv,
            seq: m.seq,
            count,
            title: text.title,
            body: text.body,
            data: {},
            notBefore: now,
            expiresAt: now + config.ttlSeconds.im * 1000,
            createdAt: now,
          });
          traced.push(m.id);
        }
      }
    }
    const results = await this.enqueue(jobs);
    if (this.tracer) {
      results.forEach((r, i) => {
        const j = jobs[i]!;
        this.tracer!.pushed(traced[i]!, j.userId, j.deviceId, { provider: j.provider, outcome: r.outcome, job: r.id, lane: j.lane });
      });
    }
  }

  /** Permission and provider checks shared by all categories: why this device cannot get a push, or null. */
  private blocked(t: PushDevice): DropReason | null {
    if (t.permission === 'denied') return 'notifications_off';
    if (!this.d.providers[t.provider]) return 'provider_unconfigured';
    return null;
  }

  /** Never push to a device whose session ended (logout unbinds too; this also covers expiry). */
  private async withLiveSession(userId: string, regs: PushDevice[], now: number, cache: Map<string, Set<string>>): Promise<PushDevice[]> {
    let live = cache.get(userId);
    if (!live) {
      live = new Set((await this.d.store.listSessions(userId, now)).map((s) => s.deviceId));
      cache.set(userId, live);
    }
    return regs.filter((r) => live.has(r.deviceId));
  }

  private async senderName(userId: string): Promise<string> {
    const have = this.names.get(userId);
    if (have !== undefined) return have;
    const u = await this.d.store.getUser(userId);
    const name = u?.nickname ?? u?.username ?? 'Someone';
    if (this.names.size > 10_000) this.names.clear();
    this.names.set(userId, name);
    return name;
  }

  private async enqueue(jobs: NewPushJob[]): Promise<EnqueueResult[]> {
    if (jobs.length === 0) return [];
    const results = await this.d.pushStore.enqueue(jobs, this.d.config.collapseWindowMs);
    const lanes = new Set<'live' | 'bulk'>();
    results.forEach((r, i) => {
      const j = jobs[i]!;
      if (r.outcome === 'queued') {
        this.d.funnel.stage('accepted', j.category, j.provider);
        lanes.add(j.lane);
      } else this.d.funnel.drop(r.outcome === 'merged' ? 'collapsed' : 'duplicate', j.category, j.provider);
      if (r.outcome === 'merged') lanes.add(j.lane);
    });
    for (const l of lanes) this.dispatcher?.kick(l);
    return results;
  }

  // --- other categories ---

  async notify(req: NotifyRequest): Promise<NotifyResult> {
    const out: NotifyResult = { requested: 0, accepted: 0, dropped: {} };
    if (!this.d.config.enabled) return out;
    const category: PushCategory = req.category ?? 'marketing';
    const ids = [...new Set(req.userIds)];
    // A campaign of several chunks: the loop guard watches the loop from the first one on.
    if (ids.length > NOTIFY_BATCH && LANE_OF[category] === 'bulk') this.d.guard?.busy?.();
    for (let i = 0; i < ids.length; i += NOTIFY_BATCH) {
      await this.notifyChunk(ids.slice(i, i + NOTIFY_BATCH), category, req, out);
      // A campaign of many users yields between chunks so live traffic keeps flowing, and
      // pauses while the event loop lags (bulk work never competes with chat).
      if (i + NOTIFY_BATCH < ids.length) {
        const pause = LANE_OF[category] === 'bulk' ? (this.d.guard?.pauseMs() ?? 0) : 0;
        if (pause > 0) await new Promise((r) => setTimeout(r, pause));
        else await yieldToIo();
      }
    }
    return out;
  }

  private async notifyChunk(userIds: string[], category: PushCategory, req: NotifyRequest, out: NotifyResult): Promise<void> {
    const { config, funnel, pushStore } = this.d;
    const now = this.now();
    const devices = await pushStore.devicesOf(userIds);
    const settings = await pushStore.getSettings(userIds);
    const liveCache = new Map<string, Set<string>>();
    const drop = (reason: DropReason, provider: PushProviderName | 'none', n = 1) => {
      funnel.drop(reason, category, provider, n);
      out.dropped[reason] = (out.dropped[reason] ?? 0) + n;
    };
    // Pass 1: who can get it (devices, sessions, presence, settings, permission).
    const candidates: { userId: string; s: PushUserSettings; eligible: PushDevice[] }[] = [];
    const present = await this.presentDevices(userIds.filter((u) => (devices.get(u)?.length ?? 0) > 0));
    for (const userId of userIds) {
      const online = new Set(present.get(userId) ?? this.d.presence.onlineDevices(userId));
      let targets = (devices.get(userId) ?? []).filter((x) => !online.has(x.deviceId));
      if (targets.length > 0) targets = await this.withLiveSession(userId, targets, now, liveCache);
      if (targets.length === 0) {
        if (online.size === 0) {
          funnel.stage('requested', category, 'none');
          out.requested++;
          drop('no_device', 'none');
        }
        continue;
      }
      for (const t of targets) funnel.stage('requested', category, t.provider);
      out.requested += targets.length;
      const s = settings.get(userId)!;
      if (s.disabled.includes(category)) {
        for (const t of targets) drop('category_off', t.provider);
        continue;
      }
      const eligible = targets.filter((t) => {
        const why = this.blocked(t);
        if (why) drop(why, t.provider);
        return why === null;
      });
      if (eligible.length > 0) candidates.push({ userId, s, eligible });
    }
    // Pass 2: marketing quotas (per user and per app per day), one transaction for the chunk.
    let allowed = candidates.map(() => true);
    if (category === 'marketing' && candidates.length > 0) {
      allowed = await pushStore.takeQuotas(
        utcDay(now),
        candidates.map((c) => [
          { key: `user:${c.userId}`, limit: config.marketingPerUserPerDay },
          { key: 'app', limit: config.marketingPerAppPerDay },
        ]),
      );
    }
    // Pass 3: one job per device, timed by the device's quiet hours.
    const jobs: NewPushJob[] = [];
    candidates.forEach(({ userId, s, eligible }, i) => {
      if (!allowed[i]) {
        for (const t of eligible) drop('quota', t.provider);
        return;
      }
      const hide = requiresAccount(category) && (s.privacy === 'default' ? config.privacyDefault : s.privacy) === 'hide';
      const window = quietWindowFor(s, config.quietHours);
      for (const t of eligible) {
        const tz = t.timeZone || config.defaultTimeZone;
        const notBefore = category === 'im' ? now : now + quietDelayMs(now, tz, window);
        const text = hide ? hiddenText(config.appName, t.locale) : { title: req.title, body: req.body };
        jobs.push({
          id: pushId(),
          lane: LANE_OF[category],
          category,
          userId,
          deviceId: t.deviceId,
          provider: t.provider,
          collapseKey: req.collapseKey ?? null,
          conv: req.conv ?? null,
          seq: 0,
          count: 1,
          title: text.title,
          body: text.body,
          data: req.data ?? {},
          notBefore,
          expiresAt: notBefore + config.ttlSeconds[category] * 1000,
          createdAt: now,
        });
      }
    });
    const results = await this.enqueue(jobs);
    for (const r of results) {
      if (r.outcome === 'queued') out.accepted++;
      else out.dropped[r.outcome === 'merged' ? 'collapsed' : 'duplicate'] = (out.dropped[r.outcome === 'merged' ? 'collapsed' : 'duplicate'] ?? 0) + 1;
    }
  }

  // --- device registry ---

  async registerDevice(p: Principal, input: RegisterInput): Promise<PushDevice> {
    const { config } = this.d;
    if (!this.d.providers[input.provider]) throw new MagpieError('invalid', `push provider ${input.provider} is not enabled on this server`, { details: { enabled: this.enabledProviders } });
    let token: string;
    switch (input.provider) {
      case 'webpush': {
        const sub = input.subscription;
        if (!sub) throw new MagpieError('invalid', 'webpush needs `subscription` {endpoint, keys: {p256dh, auth}}');
        if (!endpointAllowed(sub.endpoint, config.webpush.allowedHosts, config.webpush.allowInsecure)) {
          throw new MagpieError('invalid', 'subscription endpoint is not an allowed push service (https on a known host)');
        }
        if (Buffer.from(sub.keys.p256dh, 'base64url').length !== 65 || Buffer.from(sub.keys.auth, 'base64url').length !== 16) {
          throw new MagpieError('invalid', 'subscription keys: p256dh must be a 65-byte P-256 point and auth 16 bytes (base64url)');
        }
        token = JSON.stringify({ endpoint: sub.endpoint, keys: { p256dh: sub.keys.p256dh, auth: sub.keys.auth } });
        break;
      }
      case 'apns':
        if (!input.token || !/^[0-9a-fA-F]{64,200}$/.test(input.token)) throw new MagpieError('invalid', 'apns token must be the device token in hex');
        token = input.token.toLowerCase();
        break;
      case 'fcm':
        if (!input.token || !/^[\w:.-]{16,4096}$/.test(input.token)) throw new MagpieError('invalid', 'fcm token must be an FCM registration token');
        token = input.token;
        break;
      case 'webhook':
        if (!input.vendor) throw new MagpieError('invalid', 'webhook devices need `vendor` (huawei, xiaomi, oppo, vivo, honor)');
        if (!input.token || input.token.length > 1024) throw new MagpieError('invalid', 'webhook devices need the vendor `token`');
        token = input.token;
        break;
    }
    const timeZone = input.timeZone ?? config.defaultTimeZone;
    if (!isTimeZone(timeZone)) throw new MagpieError('invalid', `unknown time zone: ${timeZone}`);
    // Before the write: from here on no read may mark this user deviceless (devicesOf).
    this.registering++;
    this.deviceEpoch++;
    this.deviceless.delete(p.userId);
    try {
      const device = await this.upsert(p, input, token, timeZone);
      // A cluster: answered only once the other nodes forgot this user (a message committed
      // anywhere after this answer sees the device).
      await this.d.devicelessSync?.registered(p.userId);
      return device;
    } finally {
      this.registering--;
      this.deviceEpoch++;
    }
  }

  private upsert(p: Principal, input: RegisterInput, token: string, timeZone: string): Promise<PushDevice> {
    return this.d.pushStore.upsertDevice({
      userId: p.userId,
      deviceId: p.deviceId,
      platform: input.platform ?? p.platform,
      provider: input.provider,
      token,
      vendor: input.provider === 'webhook' ? (input.vendor ?? null) : null,
      sandbox: input.provider === 'apns' && input.sandbox === true,
      appVersion: input.appVersion ?? p.appVersion,
      locale: input.locale ?? '',
      timeZone,
      permission: input.permission ?? 'granted',
      now: this.now(),
    });
  }

  async updateDevice(p: Principal, patch: DevicePatch): Promise<PushDevice> {
    if (patch.timeZone !== undefined && !isTimeZone(patch.timeZone)) throw new MagpieError('invalid', `unknown time zone: ${patch.timeZone}`);
    const d = await this.d.pushStore.patchDevice(p.userId, p.deviceId, patch, this.now());
    if (!d) throw new MagpieError('not_found', 'this device has no push registration');
    return d;
  }

  async unregisterDevice(p: Principal): Promise<boolean> {
    return (await this.d.pushStore.removeDevices([{ userId: p.userId, deviceId: p.deviceId }])) > 0;
  }

  /** Logout hook: the devices of these ended sessions lose their push binding at once. */
  async unbindSessions(sessions: { userId: string; deviceId: string }[]): Promise<void> {
    if (sessions.length === 0) return;
    await this.d.pushStore.removeDevices(sessions.map((s) => ({ userId: s.userId, deviceId: s.deviceId })));
  }

  async devices(userId: string): Promise<PushDevice[]> {
    return (await this.d.pushStore.devicesOf([userId])).get(userId) ?? [];
  }

  async settings(userId: string): Promise<PushUserSettings> {
    return (await this.d.pushStore.getSettings([userId])).get(userId)!;
  }

  async putSettings(userId: string, s: PushUserSettings): Promise<PushUserSettings> {
    await this.d.pushStore.putSettings(userId, s);
    return s;
  }

  /** Cluster-wide connected devices of users that have push devices (one Bus question per batch). */
  private async presentDevices(userIds: string[]): Promise<Map<string, string[]>> {
    if (!this.d.presence.onlineDevicesOf || userIds.length === 0) return new Map();
    return this.d.presence.onlineDevicesOf(userIds);
  }

  private async touchConnected(): Promise<void> {
    const all = this.d.presence.connected?.();
    if (!all) return;
    try {
      await this.d.pushStore.touchDevices([...all], this.now());
    } catch (err) {
      this.d.log.warn({ err }, 'push lastSeen update failed');
    }
  }

  // --- what a provider gets ---

  buildMessage = (job: ClaimedJob): ProviderMessage => {
    const ttl = this.d.config.ttlSeconds[job.category];
    return {
      pushId: job.id,
      receipt: this.receiptFor(job.id),
      category: job.category,
      title: job.title,
      body: job.body,
      count: job.count,
      collapseKey: job.collapseKey,
      targetUserId: job.userId,
      conv: job.conv,
      seq: job.seq,
      data: job.data,
      ttlSeconds: Math.max(1, Math.min(ttl, Math.floor((job.expiresAt - this.now()) / 1000))),
    };
  };

  // --- receipts and clicks ---

  receiptFor(jobId: string): string {
    return `${jobId}.${createHmac('sha256', this.d.receiptKey).update(jobId).digest('base64url').slice(0, 22)}`;
  }

  /** The job id of a genuine receipt, or null. */
  parseReceipt(receipt: string): string | null {
    const dot = receipt.lastIndexOf('.');
    if (dot <= 0) return null;
    const id = receipt.slice(0, dot);
    const want = Buffer.from(this.receiptFor(id));
    const got = Buffer.from(receipt);
    return want.length === got.length && timingSafeEqual(want, got) ? id : null;
  }

  /** Delivered / displayed reports from the service worker or SDK. Idempotent. */
  async report(receipt: string, event: 'delivered' | 'displayed'): Promise<PushJobRecord> {
    const id = this.parseReceipt(receipt);
    if (!id) throw new MagpieError('invalid', 'unknown push receipt');
    const job = await this.mark(id, event === 'displayed' ? ['delivered', 'displayed'] : ['delivered']);
    if (!job) throw new MagpieError('not_found', 'push not found (expired from the log?)');
    return job;
  }

  /**
   * A click. IM and transaction pushes open their conversation only for the account they
   * were for: with another account (or none) signed in, the answer is `open: false` and the
   * click does not count as one.
   */
  async click(receipt: string, who: Principal | null): Promise<ClickResult> {
    const id = this.parseReceipt(receipt);
    if (!id) throw new MagpieError('invalid', 'unknown push receipt');
    const job = await this.d.pushStore.getJob(id);
    if (!job) throw new MagpieError('not_found', 'push not found (expired from the log?)');
    const base = { category: job.category, userId: job.userId, conv: job.conv, seq: job.seq, data: job.data };
    if (requiresAccount(job.category) && who?.userId !== job.userId) {
      this.d.funnel.drop('account_mismatch', job.category, job.provider);
      return { ...base, open: false, reason: who ? 'account_mismatch' : 'signed_out' };
    }
    await this.mark(id, ['delivered', 'displayed', 'clicked']);
    return { ...base, open: true };
  }

  private async mark(id: string, events: ('delivered' | 'displayed' | 'clicked')[]): Promise<PushJobRecord | null> {
    let job: PushJobRecord | null = null;
    for (const ev of events) {
      const r = await this.d.pushStore.markEvent(id, ev, this.now());
      if (!r) return null;
      job = r.job;
      if (r.first) this.d.funnel.stage(ev, r.job.category, r.job.provider);
    }
    return job;
  }

  /** For operators and tests: a user's recent push jobs with their attempts. */
  async history(userId: string, limit = 50) {
    const jobs = await this.d.pushStore.jobsOf(userId, limit);
    return Promise.all(jobs.map(async (j) => ({ ...j, attemptLog: await this.d.pushStore.attemptsOf(j.id) })));
  }
}
