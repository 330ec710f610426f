import type { Logger } from 'pino';
import type { ServiceAccount } from '@magpie/protocol';
import type { Bus, BusEvent } from '../bus/bus.ts';
import type { NotifyRequest, NotifyResult } from '../push/push-service.ts';
import { notificationOf, type BroadcastRecord, type NotificationStore } from './notification-store.ts';

/** The connections of this node (the gateway's registry). */
export interface LocalConnections {
  all(): Iterable<{ principal?: { userId: string } | null; send(frame: string): void }>;
}

const PUSH_PAGE = 500;

/**
 * Delivery of a stored broadcast: a `notification` frame to online recipients and a push to
 * the offline ones, in the marketing category (or `followed` for a service that is not
 * marketing) with its quotas. Audience all goes to every node as one Bus `broadcast` event;
 * each node writes it to its own connections of users who did not unsubscribe. Muted users get
 * the frame but no push. Runs after the commit and never fails the broadcast: a node that dies
 * meanwhile skips frames and pushes, and the notification is still seen on the next sync.
 */
export class NotificationFanOut {
  constructor(
    private readonly d: {
      store: NotificationStore;
      bus: Bus;
      connections: LocalConnections;
      push: { notify(req: NotifyRequest): Promise<NotifyResult> };
      log: Logger;
    },
  ) {
    d.bus.subscribe((ev) => this.onBus(ev));
  }

  /** A broadcast was stored (the service's listener). */
  deliver(service: ServiceAccount, b: BroadcastRecord, slots: [string, number][]): void {
    void this.run(service, b, slots).catch((err: unknown) => this.d.log.warn({ err: (err as Error).message, broadcast: b.id }, 'notification fan-out failed (stored; clients see it on sync)'));
  }

  private async run(service: ServiceAccount, b: BroadcastRecord, slots: [string, number][]): Promise<void> {
    if (b.audience.kind === 'all') {
      this.d.bus.publish({ type: 'broadcast', service: b.service, frame: JSON.stringify({ type: 'notification', notification: notificationOf(b, null) }) });
      for (let after = ''; ; ) {
        const users = await this.d.store.pushUsersAfter(after, PUSH_PAGE);
        if (users.length === 0) break;
        await this.push(service, b, users);
        after = users.at(-1)!;
      }
      return;
    }
    for (const [userId, slot] of slots) this.d.bus.publish({ type: 'deliver', userId, frame: JSON.stringify({ type: 'notification', notification: notificationOf(b, slot) }) });
    for (let i = 0; i < slots.length; i += PUSH_PAGE) await this.push(service, b, slots.slice(i, i + PUSH_PAGE).map(([u]) => u));
  }

  /** Push to these users unless they muted or unsubscribed (the push service keeps to offline devices). */
  private async push(service: ServiceAccount, b: BroadcastRecord, users: string[]): Promise<void> {
    const out = await this.d.store.optedOut(b.service, users, { muted: true });
    const userIds = users.filter((u) => !out.has(u));
    if (userIds.length === 0) return;
    await this.d.push.notify({
      userIds,
      category: service.marketing ? 'marketing' : 'followed',
      title: service.name,
      body: b.body ? `${b.title}: ${b.body}` : b.title,
      collapseKey: `svc:${b.service}`,
      data: { ...b.data, service: b.service, notification: b.id },
    });
  }

  /** Audience all, on every node: write the frame to this node's users who did not unsubscribe. */
  private onBus(ev: BusEvent): void {
    if (ev.type !== 'broadcast') return;
    const byUser = new Map<string, { send(frame: string): void }[]>();
    for (const c of this.d.connections.all()) {
      const u = c.principal?.userId;
      if (!u) continue;
      const list = byUser.get(u);
      if (list) list.push(c);
      else byUser.set(u, [c]);
    }
    if (byUser.size === 0) return;
    void (async () => {
      const users = [...byUser.keys()];
      for (let i = 0; i < users.length; i += PUSH_PAGE) {
        const page = users.slice(i, i + PUSH_PAGE);
        const out = await this.d.store.optedOut(ev.service, page, { muted: false });
        for (const u of page) if (!out.has(u)) for (const c of byUser.get(u)!) c.send(ev.frame);
      }
    })().catch((err: unknown) => this.d.log.warn({ err: (err as Error).message }, 'notification frames to this node failed (clients see it on sync)'));
  }
}
