import { MagpieError } from '@magpie/protocol';
import type { Bus } from '../bus/bus.ts';
import type { GroupEffect, GroupPatch, GroupRecord, HistoryVisibility, JoinRequestRecord, MemberRecord, Store } from '../store/store.ts';
import { timeId } from '../util/ids.ts';
import type { Principal } from './account-service.ts';
import { isAdmin } from '../store/group-rules.ts';
import type { MessagingService } from './message-service.ts';
import type { GroupChangeUsers } from './group-change-users.ts';

/** A notice names at most this many users; the rest is fetched on demand (changeUsers). */
export const NOTICE_USERS = 3;
/** Notice events that list users, and the data field holding the list. */
const LIST_FIELD: Record<string, 'users' | 'members'> = {
  group_created: 'members',
  members_invited: 'users',
  member_joined: 'users',
  member_approved: 'users',
  members_removed: 'users',
};

export interface GroupLimits {
  /** Largest group allowed. */
  maxMembers: number;
  /** Above this many members a group uses read diffusion (super group). */
  superThreshold: number;
}

export interface CreateGroupInput {
  name: string;
  members: string[];
  avatar?: string;
  joinPolicy?: 'open' | 'approval';
  inviteNeedsApproval?: boolean;
  historyVisibility?: HistoryVisibility;
}

/**
 * Groups: every change is a system notice whose effect the store applies in the same
 * transaction, so membership and the conversation's seq order never disagree.
 */
export class GroupService {
  constructor(
    private readonly store: Store,
    private readonly bus: Bus,
    private readonly messaging: MessagingService,
    private readonly limits: GroupLimits,
    private readonly changes: GroupChangeUsers,
    private readonly now: () => number = Date.now,
  ) {}

  async create(p: Principal, input: CreateGroupInput): Promise<GroupRecord> {
    const others = [...new Set(input.members)].filter((u) => u !== p.userId);
    if (others.length + 1 > this.limits.maxMembers) throw new MagpieError('group_full', `at most ${this.limits.maxMembers} members`);
    const found = await this.store.existingUsers(others);
    const missing = others.filter((u) => !found.has(u));
    if (missing.length) throw new MagpieError('not_found', `no such users: ${missing.slice(0, 5).join(', ')}`);
    const conv = timeId('g:');
    const group = {
      name: input.name,
      avatar: input.avatar ?? '',
      joinPolicy: input.joinPolicy ?? 'approval',
      inviteNeedsApproval: input.inviteNeedsApproval ?? false,
      historyVisibility: input.historyVisibility ?? 'since_join',
      maxMembers: this.limits.maxMembers,
      superThreshold: this.limits.superThreshold,
    };
    await this.apply(p, conv, { op: 'create', group, members: others }, 'group_created', { name: input.name, owner: p.userId }, others);
    return this.info(conv);
  }

  async info(conv: string): Promise<GroupRecord> {
    const g = await this.store.getGroup(conv);
    if (!g) throw new MagpieError('not_found', 'no such group');
    return g;
  }

  async search(prefix: string, limit: number): Promise<GroupRecord[]> {
    return this.store.searchGroups(prefix, limit);
  }

  async members(p: Principal, conv: string, after: string, limit: number): Promise<MemberRecord[]> {
    await this.requireMember(p, conv);
    return this.store.listMembers(conv, after, limit);
  }

  /** Join: open groups add at once; otherwise an application waits for an owner/admin. */
  async join(p: Principal, conv: string, message = ''): Promise<{ joined: boolean }> {
    const g = await this.info(conv);
    if (await this.store.getMember(conv, p.userId)) throw new MagpieError('conflict', 'already a member');
    if (g.joinPolicy === 'open') {
      await this.add(p, conv, [p.userId], 'member_joined');
      return { joined: true };
    }
    await this.store.putJoinRequest({ conv, userId: p.userId, inviter: null, message, createdAt: this.now() });
    this.notifyDeciders(conv, p.userId, 'filed', null, null);
    return { joined: false };
  }

  /** Invite: added at once, or a pending request when plain members' invitations need approval. */
  async invite(p: Principal, conv: string, users: string[]): Promise<{ added: string[]; pending: string[] }> {
    const g = await this.info(conv);
    const me = await this.requireMember(p, conv);
    const found = await this.store.existingUsers(users);
    const missing = users.filter((u) => !found.has(u));
    if (missing.length) throw new MagpieError('not_found', `no such users: ${missing.slice(0, 5).join(', ')}`);
    const fresh: string[] = [];
    for (const u of new Set(users)) if (!(await this.store.getMember(conv, u))) fresh.push(u);
    if (fresh.length === 0) return { added: [], pending: [] };
    if (g.inviteNeedsApproval && !isAdmin(me.role)) {
      for (const u of fresh) {
        await this.store.putJoinRequest({ conv, userId: u, inviter: p.userId, message: '', createdAt: this.now() });
        this.notifyDeciders(conv, u, 'filed', p.userId, null);
      }
      return { added: [], pending: fresh };
    }
    await this.add(p, conv, fresh, 'members_invited');
    return { added: fresh, pending: [] };
  }

  async requests(p: Principal, conv: string): Promise<JoinRequestRecord[]> {
    await this.requireAdmin(p, conv);
    return this.store.listJoinRequests(conv);
  }

  async resolveRequest(p: Principal, conv: string, userId: string, approve: boolean): Promise<void> {
    await this.requireAdmin(p, conv);
    const req = await this.store.takeJoinRequest(conv, userId);
    if (!req) throw new MagpieError('not_found', 'no pending request from this user');
    if (approve && !(await this.store.existingUsers([userId])).has(userId)) throw new MagpieError('not_found', 'this account was deleted');
    if (approve) await this.add(p, conv, [userId], 'member_approved', { inviter: req.inviter });
    this.notifyDeciders(conv, userId, approve ? 'approved' : 'rejected', req.inviter, p.userId);
  }

  /**
   * Tell the owner and admins (every device, through the per-user `deliver` path) that a join
   * request was filed or handled, so their badges and lists need no polling. Saved first;
   * this runs in the background and a failure never fails the request.
   */
  private notifyDeciders(conv: string, userId: string, event: 'filed' | 'approved' | 'rejected', inviter: string | null, by: string | null): void {
    const frame = JSON.stringify({ type: 'join_request', conv, userId, event, inviter, by });
    void (async () => {
      let after = '';
      for (;;) {
        const page = await this.store.listMembers(conv, after, 500);
        for (const m of page) if (isAdmin(m.role)) this.bus.publish({ type: 'deliver', userId: m.userId, frame });
        if (page.length < 500) return;
        after = page[page.length - 1]!.userId;
      }
    })().catch(() => undefined);
  }

  async kick(p: Principal, conv: string, users: string[]): Promise<void> {
    await this.apply(p, conv, { op: 'remove', users }, 'members_removed', { by: p.userId }, users);
  }

  async leave(p: Principal, conv: string): Promise<void> {
    await this.apply(p, conv, { op: 'leave' }, 'member_left', { user: p.userId });
  }

  async setRole(p: Principal, conv: string, user: string, role: 'admin' | 'member'): Promise<void> {
    await this.apply(p, conv, { op: 'role', user, role }, 'role_changed', { user, role, by: p.userId });
  }

  async transfer(p: Principal, conv: string, to: string): Promise<void> {
    await this.apply(p, conv, { op: 'transfer', to }, 'owner_changed', { from: p.userId, to });
  }

  /** Mute a member for `durationMs` (0 lifts the mute). */
  async mute(p: Principal, conv: string, user: string, durationMs: number): Promise<void> {
    const until = durationMs === 0 ? 0 : this.now() + durationMs;
    await this.apply(p, conv, { op: 'mute', user, until }, durationMs === 0 ? 'member_unmuted' : 'member_muted', { user, until, by: p.userId });
  }

  async update(p: Principal, conv: string, patch: GroupPatch): Promise<GroupRecord> {
    await this.apply(p, conv, { op: 'update', patch }, 'group_updated', { ...patch, by: p.userId });
    return this.info(conv);
  }

  async dismiss(p: Principal, conv: string): Promise<void> {
    await this.apply(p, conv, { op: 'dismiss' }, 'group_dismissed', { by: p.userId });
  }

  /**
   * Operator (admin console): dismiss a group, or hand it to another member. The notice is
   * committed as the owner's act (the group rules allow exactly these to the owner) and says
   * `by: "operator"` with the reason, so clients show who really did it.
   */
  async operatorDismiss(conv: string, reason: string): Promise<void> {
    const owner = await this.ownerOf(conv);
    await this.apply(owner, conv, { op: 'dismiss' }, 'group_dismissed', { by: 'operator', reason });
  }

  async operatorTransfer(conv: string, to: string, reason: string): Promise<void> {
    const owner = await this.ownerOf(conv);
    if (owner.userId === to) throw new MagpieError('invalid', 'that user owns the group already');
    await this.apply(owner, conv, { op: 'transfer', to }, 'owner_changed', { from: owner.userId, to, by: 'operator', reason });
  }

  private async ownerOf(conv: string): Promise<Principal> {
    const g = await this.store.getGroup(conv);
    if (!g) throw new MagpieError('not_found', `no such group: ${conv}`);
    if (g.dismissed) throw new MagpieError('forbidden', 'the group is dismissed');
    return { userId: g.owner, deviceId: 'operator', platform: 'other', tokenHash: '', appVersion: '' };
  }

  private add(p: Principal, conv: string, users: string[], event: string, extra: Record<string, unknown> = {}): Promise<void> {
    const effect: GroupEffect = { op: 'add', users, maxMembers: this.limits.maxMembers, superThreshold: this.limits.superThreshold };
    return this.apply(p, conv, effect, event, { by: p.userId, ...extra }, users);
  }

  /**
   * Every user of the change notice at `seq` (create, invite, join, approve, kick), one page
   * ordered by user id. Readable by whoever may read the notice itself.
   */
  async changeUsers(p: Principal, conv: string, seq: number, after: string, limit: number): Promise<string[]> {
    await this.requireMember(p, conv);
    const [m] = (await this.messaging.history(p.userId, conv, { after: seq - 1, limit: 1 })).messages;
    if (!m || m.seq !== seq) throw new MagpieError('not_found', 'no such notice visible to you');
    const body = (m.kind === 'system' ? m.body : null) as { event?: string; data?: Record<string, unknown> } | null;
    const field = body?.event ? LIST_FIELD[body.event] : undefined;
    if (!body || !field) throw new MagpieError('not_found', 'this message is not a change that lists users');
    const named = body.data?.[field];
    const count = body.data?.count;
    if (typeof count !== 'number' || count <= NOTICE_USERS) {
      // The notice names everyone (also every notice from before the list moved out).
      const all = Array.isArray(named) ? named.filter((u): u is string => typeof u === 'string') : [];
      return [...new Set(all)].sort().filter((u) => u > after).slice(0, limit);
    }
    return this.changes.page(conv, m.id, after, limit);
  }

  /**
   * Commit the notice with its effect. Its publication (MessagingService.publishMessage) also
   * keeps every node's super-group subscriptions current, in commit order with the messages.
   */
  private async apply(p: Principal, conv: string, effect: GroupEffect, event: string, data: Record<string, unknown>, list?: readonly string[]): Promise<void> {
    const id = timeId('m');
    let listed = false;
    if (list) {
      // Everyone online receives the notice: it names the first few and the count, and the
      // whole list waits in group_change_users (written first: a notice never lacks it).
      const users = [...new Set(list)];
      const field = LIST_FIELD[event] ?? 'users';
      data = { ...data, [field]: users.slice(0, NOTICE_USERS), count: users.length };
      if (users.length > NOTICE_USERS) {
        await this.changes.put(conv, id, users);
        listed = true;
      }
    }
    try {
      await this.messaging.commitAndPublish({
        sender: p.userId,
        clientMsgId: timeId('sys:'),
        conv,
        kind: 'system',
        body: { event, data: JSON.parse(JSON.stringify(data)) as unknown },
        time: this.now(),
        id,
        effect,
      });
    } catch (err) {
      if (listed) await this.changes.drop(conv, id).catch(() => undefined);
      throw err;
    }
  }

  private async requireMember(p: Principal, conv: string): Promise<MemberRecord> {
    const m = await this.store.getMember(conv, p.userId);
    if (!m) throw new MagpieError((await this.store.getGroup(conv)) ? 'forbidden' : 'not_found', 'not a member of this group');
    return m;
  }

  private async requireAdmin(p: Principal, conv: string): Promise<void> {
    const m = await this.requireMember(p, conv);
    if (!isAdmin(m.role)) throw new MagpieError('forbidden', 'only the owner or an admin can do this');
  }
}
