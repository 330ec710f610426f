import type { PresenceState } from '@magpie/protocol';
import type { Bus, BusEvent } from '../bus/bus.ts';
import type { ReceiptStore, PresencePrivacy } from './receipt-store.ts';

/** A connection as presence sees it: who it is and how to write to it. */
export interface PresenceConn {
  principal?: { userId: string } | undefined;
  send(frame: string): void;
}

export interface PresenceDeps {
  bus: Bus;
  store: ReceiptStore;
  /** Cluster-wide connected devices of these users (this node and the others, over the Bus). */
  onlineDevicesOf(userIds: string[]): Promise<Map<string, string[]>>;
  /** Devices of the user connected to this node. */
  localDevices(userId: string): number;
  /** Are `viewer` and `user` friends? */
  friends(viewer: string, user: string): Promise<boolean>;
  debounceMs: number;
  defaultPrivacy: PresencePrivacy;
  now?: () => number;
}

/** Users whose debounce ends within this many ms of the first are settled together. */
const SETTLE_SLACK_MS = 20;

/**
 * Presence: online / last seen, subscribed per connection. A node that sees a user's first
 * connection open or last one close waits `debounceMs` (a flapping link publishes nothing),
 * then asks the cluster whether the user is online anywhere and, when that differs from the
 * last known state, publishes a `presence` Bus event that every node forwards to its subscribers.
 *
 * The users whose debounce ends at about the same time are settled together: one timer for
 * all of them and one cluster question (`onlineDevicesOf`, on NATS a request to every node)
 * for the batch, not one per user — a reconnect storm of 10 000 users asked 10 000 times.
 */
export class PresenceHub {
  private readonly subs = new Map<string, Set<PresenceConn>>();
  private readonly subsOf = new WeakMap<PresenceConn, Set<string>>();
  private readonly known = new Map<string, boolean>();
  /** Users waiting for their debounce to end, each with its end (performance.now()), in that order. */
  private readonly pending = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  /** Per user: bumped by every change, so an answer to an older question is not published. */
  private readonly generation = new Map<string, number>();
  private readonly now: () => number;

  constructor(private readonly d: PresenceDeps) {
    this.now = d.now ?? Date.now;
    d.bus.subscribe((ev) => this.onBus(ev));
  }

  /** The gateway registered (`up`) or dropped a connection of `userId` on this node. */
  changed(userId: string, up: boolean): void {
    this.generation.set(userId, (this.generation.get(userId) ?? 0) + 1);
    if (!up && this.d.localDevices(userId) === 0) void this.d.store.setLastSeen(userId, this.now()).catch(() => {});
    // Re-inserted: the map stays in the order the debounces end.
    this.pending.delete(userId);
    this.pending.set(userId, performance.now() + this.d.debounceMs);
    this.arm();
  }

  private arm(): void {
    if (this.timer || this.pending.size === 0) return;
    const [, due] = this.pending.entries().next().value!;
    this.timer = setTimeout(() => this.due(), Math.max(0, due - performance.now()));
    this.timer.unref();
  }

  /** Settle every user whose debounce has ended (or ends within the slack), then wait for the next. */
  private due(): void {
    this.timer = undefined;
    const until = performance.now() + SETTLE_SLACK_MS;
    const batch: string[] = [];
    for (const [userId, due] of this.pending) {
      if (due > until) break;
      batch.push(userId);
    }
    for (const u of batch) this.pending.delete(u);
    if (batch.length > 0) void this.settle(batch).catch(() => {});
    this.arm();
  }

  private async settle(userIds: string[]): Promise<void> {
    const asked = userIds.map((u) => this.generation.get(u));
    const devices = await this.d.onlineDevicesOf(userIds);
    const changed: { userId: string; online: boolean }[] = [];
    userIds.forEach((userId, i) => {
      // A connection opened or closed here while the cluster was answering: that answer may be
      // stale (another node answered before its own change), and the newer change settles again.
      if (this.generation.get(userId) !== asked[i]) return;
      const online = (devices.get(userId)?.length ?? 0) > 0;
      if (this.known.get(userId) === online) return;
      this.known.set(userId, online);
      changed.push({ userId, online });
    });
    if (changed.length === 0) return;
    const offline = changed.filter((c) => !c.online).map((c) => c.userId);
    const seen = offline.length > 0 ? await this.d.store.lastSeen(offline) : new Map<string, number>();
    for (const { userId, online } of changed) this.d.bus.publish({ type: 'presence', userId, online, lastSeen: online ? null : (seen.get(userId) ?? this.now()) });
  }

  private onBus(ev: BusEvent): void {
    if (ev.type !== 'presence') return;
    this.known.set(ev.userId, ev.online);
    const set = this.subs.get(ev.userId);
    if (!set) return;
    const frame = JSON.stringify({ type: 'presence', user: ev.userId, online: ev.online, lastSeen: ev.lastSeen });
    for (const c of set) c.send(frame);
  }

  /**
   * Whether the cluster's latest presence event says `userId` is online anywhere (every node
   * hears every node's events; debounced by `debounceMs`), or undefined when none was seen
   * (e.g. a node started after the user connected). For counting only, never for delivery.
   */
  knownOnline(userId: string): boolean | undefined {
    return this.known.get(userId);
  }

  /** Replace `conn`'s subscriptions; answers the current state (hidden users: nulls, not subscribed). */
  async subscribe(conn: PresenceConn, viewer: string, users: string[]): Promise<PresenceState[]> {
    this.drop(conn);
    const wanted = [...new Set(users)];
    const privacy = await this.d.store.privacy(wanted);
    const visible: string[] = [];
    for (const u of wanted) {
      const p = privacy.get(u)?.presence ?? this.d.defaultPrivacy;
      if (u === viewer || p === 'everyone' || (p === 'friends' && (await this.d.friends(viewer, u)))) visible.push(u);
    }
    const mine = new Set(visible);
    this.subsOf.set(conn, mine);
    for (const u of visible) {
      let set = this.subs.get(u);
      if (!set) this.subs.set(u, (set = new Set()));
      set.add(conn);
    }
    const [online, seen] = await Promise.all([this.d.onlineDevicesOf(visible), this.d.store.lastSeen(visible)]);
    return wanted.map((u) => {
      if (!mine.has(u)) return { user: u, online: null, lastSeen: null };
      const on = (online.get(u)?.length ?? 0) > 0;
      return { user: u, online: on, lastSeen: on ? null : (seen.get(u) ?? null) };
    });
  }

  /** Forget a connection's subscriptions (on close). */
  drop(conn: PresenceConn): void {
    const mine = this.subsOf.get(conn);
    if (!mine) return;
    for (const u of mine) {
      const set = this.subs.get(u);
      set?.delete(conn);
      if (set?.size === 0) this.subs.delete(u);
    }
    this.subsOf.delete(conn);
  }

  close(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.pending.clear();
  }
}
