import { MagpieError, type Audience, type Notification, type NotificationPage, type ServiceAccount, type UserService } from '@magpie/protocol';
import type { Queryable } from '../db/index.ts';
import type { Store } from '../store/store.ts';
import { timeId } from '../util/ids.ts';
import { decodeCursor, encodeCursor } from './cursor.ts';
import { notificationOf, type BroadcastRecord, type NotificationStore, type Prefs } from './notification-store.ts';
import type { ScheduleRecord, ScheduleRequest, ScheduleStore } from './schedule-store.ts';

export interface BroadcastInput {
  audience: Audience;
  title: string;
  body: string;
  data: Record<string, string>;
}

/** What happens after a broadcast is stored: live frames and pushes (fan-out.ts). Never fails the broadcast. */
export interface BroadcastListener {
  (service: ServiceAccount, broadcast: BroadcastRecord, slots: [string, number][]): void;
}

export type { NotificationPage, UserService } from '@magpie/protocol';

/**
 * Service accounts and their notifications: the operator creates services and broadcasts
 * (now or scheduled); users read their notifications from a cursor, mute, unsubscribe and
 * mark read. Storage is NotificationStore (never the chat inbox); delivery is the listener's.
 */
export class NotificationService {
  private readonly listeners: BroadcastListener[] = [];

  constructor(
    private readonly store: NotificationStore,
    private readonly schedules: ScheduleStore,
    private readonly users: Pick<Store, 'getUser'>,
    private readonly now: () => number = Date.now,
  ) {}

  onBroadcast(l: BroadcastListener): void {
    this.listeners.push(l);
  }

  // --- operator ---

  createService(input: { name: string; avatar: string; description: string; marketing: boolean }): Promise<ServiceAccount> {
    return this.store.createService({ id: timeId('svc_'), ...input, now: this.now() });
  }

  async updateService(id: string, patch: { name?: string; avatar?: string; description?: string; marketing?: boolean }): Promise<ServiceAccount> {
    return (await this.store.updateService(id, patch)) ?? notFound(id);
  }

  services(): Promise<ServiceAccount[]> {
    return this.store.services();
  }

  async service(id: string): Promise<ServiceAccount> {
    return (await this.store.service(id)) ?? notFound(id);
  }

  /** Broadcast now: stored before it answers; live frames and pushes follow in the background. */
  async broadcast(serviceId: string, input: BroadcastInput): Promise<BroadcastRecord> {
    const service = await this.service(serviceId);
    const out = await this.store.broadcast({ id: timeId('b_'), service: serviceId, ...input, scheduleId: null, now: this.now() });
    if (!out) notFound(serviceId);
    this.announce(service, out.broadcast, out.slots);
    return out.broadcast;
  }

  async broadcasts(serviceId: string, before: number | undefined, limit: number): Promise<BroadcastRecord[]> {
    await this.service(serviceId);
    return this.store.broadcastsOf(serviceId, before, limit);
  }

  async schedule(serviceId: string, input: BroadcastInput & { sendAt: number }): Promise<ScheduleRecord> {
    await this.service(serviceId);
    const request: ScheduleRequest = { audience: input.audience, title: input.title, body: input.body, data: input.data };
    return this.schedules.create({ id: timeId('sch_'), service: serviceId, request, sendAt: input.sendAt, now: this.now() });
  }

  async schedulesOf(serviceId: string, before: number | undefined, limit: number): Promise<ScheduleRecord[]> {
    await this.service(serviceId);
    return this.schedules.list(serviceId, before, limit);
  }

  async cancelSchedule(id: string): Promise<ScheduleRecord> {
    const s = await this.schedules.get(id);
    if (!s) throw new MagpieError('not_found', `no such schedule: ${id}`);
    if (!(await this.schedules.cancel(id, this.now()))) throw new MagpieError('conflict', `the schedule is ${s.status}`, { details: { status: s.status } });
    return (await this.schedules.get(id))!;
  }

  /**
   * Send a schedule this node leased as `owner`. The broadcast and the schedule's "sent" mark
   * commit together; null when the schedule was no longer this node's to send.
   */
  async sendScheduled(s: ScheduleRecord, owner: string): Promise<BroadcastRecord | null> {
    const service = await this.store.service(s.service);
    if (!service) throw new Error(`service ${s.service} is gone`);
    const id = timeId('b_');
    const now = this.now();
    const out = await this.store.broadcast({ id, service: s.service, ...s.request, scheduleId: s.id, now }, (tx: Queryable) => this.schedules.markSent(tx, s.id, owner, id, now));
    if (!out) return null;
    this.announce(service, out.broadcast, out.slots);
    return out.broadcast;
  }

  private announce(service: ServiceAccount, b: BroadcastRecord, slots: [string, number][]): void {
    for (const l of this.listeners) l(service, b, slots);
  }

  async attributes(userId: string): Promise<Record<string, string>> {
    await this.user(userId);
    return this.store.attributes(userId);
  }

  async setAttributes(userId: string, attrs: Record<string, string | null>): Promise<Record<string, string>> {
    await this.user(userId);
    await this.store.setAttributes(userId, attrs);
    return this.store.attributes(userId);
  }

  private async user(userId: string): Promise<void> {
    const u = await this.users.getUser(userId);
    if (!u || u.deletedAt !== null) throw new MagpieError('not_found', `no such user: ${userId}`);
  }

  // --- a user ---

  async userServices(userId: string): Promise<UserService[]> {
    const [services, prefs] = await Promise.all([this.store.services(), this.store.prefsOf(userId)]);
    return Promise.all(services.map((s) => this.userService(userId, s, prefs.get(s.id))));
  }

  private async userService(userId: string, s: ServiceAccount, p: Prefs | undefined): Promise<UserService> {
    const readSeq = p?.readSeq ?? 0;
    return { ...s, muted: p?.muted ?? false, unsubscribed: p?.unsubscribed ?? false, readSeq, unread: await this.store.unread(userId, s.id, readSeq) };
  }

  async setPrefs(userId: string, serviceId: string, patch: { muted?: boolean; unsubscribed?: boolean }): Promise<UserService> {
    const s = await this.service(serviceId);
    const p = await this.store.setPrefs(userId, serviceId, patch, this.now());
    return this.userService(userId, s, p);
  }

  async markRead(userId: string, serviceId: string, seq: number): Promise<UserService> {
    const s = await this.service(serviceId);
    await this.store.markRead(userId, serviceId, Math.min(seq, s.lastSeq), this.now());
    return this.userService(userId, s, await this.store.prefs(userId, serviceId));
  }

  /**
   * Notifications after `cursor`, oldest first: the user's ring slots and each service's feed,
   * merged by time. A source's items are taken in order, so the returned cursor never skips one;
   * feed items the user may not see (unsubscribed) are stepped over.
   */
  async sync(userId: string, cursorText: string | undefined, limit: number): Promise<NotificationPage> {
    const cursor = decodeCursor(cursorText);
    // Heads first: every row up to a head read here is committed, so moving a cursor to it skips nothing.
    const heads = await this.store.feedHeads();
    const head = await this.store.ringHead(userId);
    const ring = await this.store.slotsAfter(userId, cursor.r, limit + 1);
    // Wrapped: slots after the cursor are missing (ring capacity or retention took them).
    const wrapped = cursor.r < head && (ring.lowest === null ? true : ring.lowest > cursor.r + 1);
    const candidates: { n: Notification; source: string; pos: number }[] = ring.items.slice(0, limit).map((i) => ({ n: notificationOf(i.b, i.slot), source: '', pos: i.slot }));
    let more = ring.items.length > limit;
    const next = { r: cursor.r, f: { ...cursor.f } };
    const feedDone = new Map<string, number>();
    for (const [service, last] of heads) {
      const after = cursor.f[service] ?? 0;
      if (last <= after) continue;
      const rows = await this.store.feedAfter(userId, service, after, limit + 1);
      if (rows.length > limit) more = true;
      // Everything up to `last` was seen (visible rows returned, hidden ones stepped over).
      else feedDone.set(service, Math.max(last, rows.at(-1)?.feedSeq ?? 0));
      for (const b of rows.slice(0, limit)) candidates.push({ n: notificationOf(b, null), source: service, pos: b.feedSeq! });
    }
    candidates.sort((a, b) => a.n.createdAt - b.n.createdAt || a.n.id.localeCompare(b.n.id));
    const taken = candidates.slice(0, limit);
    if (candidates.length > limit) more = true;
    for (const c of taken) {
      if (c.source === '') next.r = Math.max(next.r, c.pos);
      else next.f[c.source] = Math.max(next.f[c.source] ?? 0, c.pos);
    }
    // A feed whose rows were all taken moves to its head (past hidden rows).
    for (const [service, done] of feedDone) if (!candidates.some((c) => c.source === service && !taken.includes(c))) next.f[service] = Math.max(next.f[service] ?? 0, done);
    // A ring whose rows were all taken (or that lost slots) moves to its head.
    if (!ring.items.slice(0, limit).some((i) => !taken.some((t) => t.source === '' && t.pos === i.slot)) && ring.items.length <= limit) next.r = Math.max(next.r, head);
    return { notifications: taken.map((c) => c.n), cursor: encodeCursor(next), more, wrapped };
  }
}

function notFound(id: string): never {
  throw new MagpieError('not_found', `no such service: ${id}`);
}
