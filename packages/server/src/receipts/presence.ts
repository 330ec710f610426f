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

/**
 * Presence: online / last seen, subscribed per connection. A node that sees a user's first
 * connection open or last one close waits `debounceMs` (a flapping link publishes nothing),
 * then asks the cluster whether the user is online anywhere and, when that differs from the
 * last known state, publishes a `presence` Bus event that every node forwards to its subscribers.
 */
export class PresenceHub {
  private readonly subs = new Map<string, Set<PresenceConn>>();
  private readonly subsOf = new WeakMap<PresenceConn, Set<string>>();
  private readonly known = new Map<string, boolean>();
  private readonly pending = new Map<string, NodeJS.Timeout>();
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
    const t = this.pending.get(userId);
    if (t) clearTimeout(t);
    const timer = setTimeout(() => {
      this.pending.delete(userId);
      void this.settle(userId).catch(() => {});
    }, this.d.debounceMs);
    timer.unref();
    this.pending.set(userId, timer);
  }

  private async settle(userId: string): Promise<void> {
    const asked = this.generation.get(userId);
    const online = ((await this.d.onlineDevicesOf([userId])).get(userId)?.length ?? 0) > 0;
    // A connection opened or closed here while the cluster was answering: that answer may be
    // stale (another node answered before its own change), and the newer change settles again.
    if (this.generation.get(userId) !== asked) return;
    if (this.known.get(userId) === online) return;
    this.known.set(userId, online);
    const lastSeen = online ? null : ((await this.d.store.lastSeen([userId])).get(userId) ?? this.now());
    this.d.bus.publish({ type: 'presence', userId, online, lastSeen });
  }

  private onBus(ev: BusEvent): void {
    if (ev.type !== 'presence') return;
    this.known.set(ev.userId, ev.online);
    const set = this.subs.get(ev.userId);
    if (!set) return;
    const frame = JSON.stringify({ type: 'presence', user: ev.userId, online: ev.online, lastSeen: ev.lastSeen });
    for (const c of set) c.send(frame);
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
    for (const t of this.pending.values()) clearTimeout(t);
    this.pending.clear();
  }
}
