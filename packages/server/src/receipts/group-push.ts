import type { Message, NotifyLevelName } from '@magpie/protocol';
import type { Store, InboxPointer } from '../store/store.ts';
import type { ReceiptStore } from './receipt-store.ts';
import type { SendExtras } from './receipt-service.ts';

/** The push service's two entry points this module uses. */
export interface PushSink {
  onCommitted(message: Message, pointers: InboxPointer[]): void;
  pushTo(message: Message, userIds: string[], lane?: 'live' | 'bulk'): void;
}

export interface GroupPushOptions {
  defaults: { group: NotifyLevelName; super: NotifyLevelName };
  /** Page size of the bulk lane's member walk (@all in super groups). */
  pageSize: number;
}

export interface SuperTargets {
  /** Pushed on the live lane: mentioned users, the replied-to sender, users with level `all`. */
  direct: string[];
  /** @all by an owner/admin: every member (minus level `none`), paged through the bulk lane. */
  all: boolean;
}

/**
 * Who gets an offline push for a group message, by the per-group notification level
 * (all / mentions / none) of each recipient:
 * - normal groups: the pointer list (write diffusion) filtered by the recipients' levels;
 * - super groups (no pointers): targets computed directly — the mentioned users, the sender of
 *   the message replied to, and the users whose level is `all` (an index range) — never by a
 *   scan of all members; @all (owner/admin only) walks the members on the bulk lane.
 * Mentions, @all and replies reach members whose level is `mentions`; `none` silences all.
 */
export class GroupPush {
  computed = 0;

  constructor(
    private readonly store: Store,
    private readonly rstore: ReceiptStore,
    private readonly push: PushSink,
    private readonly extrasOf: (m: Message) => SendExtras | undefined,
    private readonly o: GroupPushOptions,
  ) {}

  onCommitted = (m: Message, pointers: InboxPointer[]): void => {
    if (m.conv.startsWith('d:') || m.kind === 'system') {
      this.push.onCommitted(m, pointers);
      return;
    }
    const x = this.extrasOf(m);
    const extras: SendExtras = x ? { ...x } : {};
    void this.route(m, pointers, extras).catch(() => {});
  };

  private async route(m: Message, pointers: InboxPointer[], x: SendExtras): Promise<void> {
    if (pointers.length > 0) {
      const users = pointers.map((p) => p.userId).filter((u) => u !== m.sender);
      const keep = await this.filterNormal(m, users, x);
      this.push.onCommitted(m, pointers.filter((p) => keep.has(p.userId)));
      return;
    }
    const t = await this.superTargets(m, x);
    if (t.direct.length > 0) this.push.pushTo(m, t.direct, 'live');
    if (t.all) await this.walkAll(m, new Set(t.direct));
  }

  /** Normal group: drop recipients whose level refuses this message. */
  async filterNormal(m: Message, users: string[], x: SendExtras): Promise<Set<string>> {
    const levels = await this.rstore.notifyLevels(m.conv, users);
    const special = await this.specialTargets(m, x);
    const keep = new Set<string>();
    for (const u of users) {
      const level = levels.get(u) ?? this.o.defaults.group;
      if (level === 'all' || (level === 'mentions' && (special.everyone || special.users.has(u)))) keep.add(u);
    }
    keep.add(m.sender);
    return keep;
  }

  /** Super group targets without touching the member list (except @all, which goes to the bulk lane). */
  async superTargets(m: Message, x: SendExtras): Promise<SuperTargets> {
    this.computed++;
    const special = await this.specialTargets(m, x);
    const candidates = new Set(special.users);
    if (this.o.defaults.super === 'all') {
      // Default `all`: everyone except `none` — that is the @all walk.
      return { direct: [], all: true };
    }
    for (let after = ''; ; ) {
      const page = await this.rstore.usersWithLevel(m.conv, 'all', after, 1000);
      for (const u of page) candidates.add(u);
      if (page.length < 1000) break;
      after = page.at(-1)!;
    }
    candidates.delete(m.sender);
    const list = [...candidates];
    const levels = await this.rstore.notifyLevels(m.conv, list);
    const direct: string[] = [];
    for (const u of list) {
      const level = levels.get(u) ?? this.o.defaults.super;
      if (level === 'none') continue;
      if (level === 'all' || special.users.has(u)) direct.push(u);
    }
    // Mentioned users must still be members.
    const members = await Promise.all(direct.map(async (u) => ((await this.store.isMember(m.conv, u)) ? u : null)));
    return { direct: members.filter((u): u is string => u !== null), all: special.everyone };
  }

  /** Mentioned users, @all (owner/admin only), and the sender of the message replied to. */
  private async specialTargets(m: Message, x: SendExtras): Promise<{ users: Set<string>; everyone: boolean }> {
    const users = new Set<string>();
    let everyone = false;
    if (Array.isArray(x.mentions)) for (const u of x.mentions) users.add(u);
    else if (x.mentions === 'all') {
      const role = (await this.store.getMember(m.conv, m.sender))?.role;
      everyone = role === 'owner' || role === 'admin';
    }
    if (x.replyTo !== undefined && x.replyTo < m.seq) {
      const [orig] = await this.store.readHistory(m.conv, { after: x.replyTo - 1, limit: 1 });
      if (orig && orig.seq === x.replyTo && orig.sender !== m.sender) users.add(orig.sender);
    }
    users.delete(m.sender);
    return { users, everyone };
  }

  /** @all in a super group: page through the members on the bulk lane, skipping level `none` and those already pushed. */
  private async walkAll(m: Message, done: Set<string>): Promise<void> {
    for (let after = ''; ; ) {
      const page = await this.store.listMembers(m.conv, after, this.o.pageSize);
      const ids = page.map((p) => p.userId).filter((u) => u !== m.sender && !done.has(u));
      const levels = await this.rstore.notifyLevels(m.conv, ids);
      const targets = ids.filter((u) => levels.get(u) !== 'none');
      if (targets.length > 0) this.push.pushTo(m, targets, 'bulk');
      if (page.length < this.o.pageSize) break;
      after = page.at(-1)!.userId;
    }
  }
}
