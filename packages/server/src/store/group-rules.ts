import type { GroupEffect, GroupRecord, GroupRole, MemberRecord } from '../store/store.ts';

/**
 * Who may do what in a group. Pure functions, used by both stores inside the transaction
 * that applies a change, and by the service for early, friendly refusals.
 */

const RANK: Record<GroupRole, number> = { owner: 3, admin: 2, member: 1 };

export function isAdmin(role: GroupRole | undefined): boolean {
  return role === 'owner' || role === 'admin';
}

/** An actor outranks a target when strictly higher (owner > admin > member). */
export function outranks(actor: GroupRole, target: GroupRole): boolean {
  return RANK[actor] > RANK[target];
}

/**
 * Check one effect. `actor` is the acting member row (null when the actor is not a member),
 * `targets` the member rows of the users it names (missing ones are absent). Returns null
 * when allowed, else the reason.
 */
export function checkEffect(
  effect: GroupEffect,
  group: GroupRecord | null,
  actorId: string,
  actor: MemberRecord | null,
  targets: Map<string, MemberRecord>,
  now: number,
): { error: 'forbidden' | 'invalid' | 'full' | 'not_found' | 'dismissed'; reason: string } | null {
  if (effect.op === 'create') {
    if (group) return { error: 'invalid', reason: 'group exists' };
    if (!effect.group.name.trim()) return { error: 'invalid', reason: 'name is empty' };
    return null;
  }
  if (!group) return { error: 'not_found', reason: 'no such group' };
  if (group.dismissed) return { error: 'dismissed', reason: 'the group was dismissed' };
  switch (effect.op) {
    case 'add': {
      const selfJoin = effect.users.length === 1 && effect.users[0] === actorId && !actor;
      if (selfJoin) {
        if (group.joinPolicy !== 'open') return { error: 'forbidden', reason: 'this group needs approval to join' };
      } else {
        if (!actor) return { error: 'forbidden', reason: 'only members can invite' };
        if (group.inviteNeedsApproval && !isAdmin(actor.role)) return { error: 'forbidden', reason: 'invitations need owner/admin approval' };
      }
      const fresh = effect.users.filter((u) => !targets.has(u));
      if (fresh.length === 0) return { error: 'invalid', reason: 'already members' };
      if (group.memberCount + fresh.length > Math.min(group.maxMembers, effect.maxMembers)) return { error: 'full', reason: 'the group is full' };
      return null;
    }
    case 'remove': {
      if (!actor || !isAdmin(actor.role)) return { error: 'forbidden', reason: 'only the owner or an admin can remove members' };
      for (const u of effect.users) {
        const t = targets.get(u);
        if (!t) return { error: 'not_found', reason: `${u} is not a member` };
        if (u === actorId) return { error: 'invalid', reason: 'use leave to leave' };
        if (!outranks(actor.role, t.role)) return { error: 'forbidden', reason: `cannot remove a ${t.role}` };
      }
      return null;
    }
    case 'leave':
      if (!actor) return { error: 'forbidden', reason: 'not a member' };
      if (actor.role === 'owner') return { error: 'forbidden', reason: 'the owner must transfer ownership or dismiss the group' };
      return null;
    case 'role': {
      if (actor?.role !== 'owner') return { error: 'forbidden', reason: 'only the owner can change roles' };
      const t = targets.get(effect.user);
      if (!t) return { error: 'not_found', reason: 'not a member' };
      if (t.role === 'owner') return { error: 'invalid', reason: 'cannot change the owner role' };
      return null;
    }
    case 'transfer': {
      if (actor?.role !== 'owner') return { error: 'forbidden', reason: 'only the owner can transfer ownership' };
      if (!targets.has(effect.to) || effect.to === actorId) return { error: 'invalid', reason: 'transfer to another member' };
      return null;
    }
    case 'mute': {
      if (!actor || !isAdmin(actor.role)) return { error: 'forbidden', reason: 'only the owner or an admin can mute' };
      const t = targets.get(effect.user);
      if (!t) return { error: 'not_found', reason: 'not a member' };
      if (!outranks(actor.role, t.role)) return { error: 'forbidden', reason: `cannot mute a ${t.role}` };
      if (effect.until !== 0 && effect.until <= now) return { error: 'invalid', reason: 'mute end is in the past' };
      return null;
    }
    case 'update':
      if (!actor || !isAdmin(actor.role)) return { error: 'forbidden', reason: 'only the owner or an admin can change the group' };
      return null;
    case 'dismiss':
      if (actor?.role !== 'owner') return { error: 'forbidden', reason: 'only the owner can dismiss the group' };
      return null;
  }
}

/** Whether a member may post now (mute and mute-all; owner and admins are exempt from mute-all). */
export function checkPost(group: GroupRecord, member: MemberRecord | null, now: number): { error: 'forbidden' | 'muted' | 'dismissed'; reason: string } | null {
  if (group.dismissed) return { error: 'dismissed', reason: 'the group was dismissed' };
  if (!member) return { error: 'forbidden', reason: 'not a member of this group' };
  if (member.mutedUntil > now) return { error: 'muted', reason: `muted until ${new Date(member.mutedUntil).toISOString()}` };
  if (group.muteAll && !isAdmin(member.role)) return { error: 'muted', reason: 'the group is muted' };
  return null;
}

/** Users an effect names (whose member rows the store must load). */
export function effectTargets(effect: GroupEffect): string[] {
  switch (effect.op) {
    case 'add':
    case 'remove':
      return effect.users;
    case 'role':
    case 'mute':
      return [effect.user];
    case 'transfer':
      return [effect.to];
    default:
      return [];
  }
}
