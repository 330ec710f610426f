import { groupRoutes as R } from '@magpie/protocol';
import type { GroupService } from '../services/group-service.ts';
import type { GroupRecord, MemberRecord } from '../store/store.ts';
import type { RestApi } from './rest.ts';

/** Group routes under /api/groups (schemas: @magpie/protocol rest/groups.ts). Every change is also a system notice in the conversation. */
export function registerGroupRoutes(api: RestApi, groups: GroupService): void {
  const ok = { ok: true } as const;
  api.route(R.create, async ({ principal, body }) => ({ group: groupView(await groups.create(principal, body)) }));
  api.route(R.search, async ({ query }) => ({ groups: (await groups.search(query.query, query.limit)).map(groupView) }));
  api.route(R.info, async ({ params }) => ({ group: groupView(await groups.info(params.conv)) }));
  api.route(R.members, async ({ principal, params, query }) => ({ members: (await groups.members(principal, params.conv, query.after, query.limit)).map(memberView) }));
  api.route(R.changeUsers, async ({ principal, params, query }) => ({ users: await groups.changeUsers(principal, params.conv, params.seq, query.after, query.limit) }));
  api.route(R.join, async ({ principal, params, body }) => groups.join(principal, params.conv, body.message));
  api.route(R.invite, async ({ principal, params, body }) => groups.invite(principal, params.conv, body.users));
  api.route(R.requests, async ({ principal, params }) => ({ requests: await groups.requests(principal, params.conv) }));
  api.route(R.approve, async ({ principal, params }) => (await groups.resolveRequest(principal, params.conv, params.user, true), ok));
  api.route(R.reject, async ({ principal, params }) => (await groups.resolveRequest(principal, params.conv, params.user, false), ok));
  api.route(R.kick, async ({ principal, params, body }) => (await groups.kick(principal, params.conv, body.users), ok));
  api.route(R.leave, async ({ principal, params }) => (await groups.leave(principal, params.conv), ok));
  api.route(R.role, async ({ principal, params, body }) => (await groups.setRole(principal, params.conv, body.user, body.role), ok));
  api.route(R.mute, async ({ principal, params, body }) => (await groups.mute(principal, params.conv, body.user, body.durationMs), ok));
  api.route(R.transfer, async ({ principal, params, body }) => (await groups.transfer(principal, params.conv, body.to), ok));
  api.route(R.update, async ({ principal, params, body }) => ({ group: groupView(await groups.update(principal, params.conv, body)) }));
  api.route(R.dismiss, async ({ principal, params }) => (await groups.dismiss(principal, params.conv), ok));
}

function groupView(g: GroupRecord) {
  return {
    conv: g.conv,
    kind: g.kind,
    name: g.name,
    avatar: g.avatar,
    announcement: g.announcement,
    owner: g.owner,
    joinPolicy: g.joinPolicy,
    inviteNeedsApproval: g.inviteNeedsApproval,
    muteAll: g.muteAll,
    historyVisibility: g.historyVisibility,
    dismissed: g.dismissed,
    memberCount: g.memberCount,
    maxMembers: g.maxMembers,
    lastSeq: g.lastSeq,
    createdAt: g.createdAt,
  };
}

function memberView(m: MemberRecord) {
  return { userId: m.userId, role: m.role, mutedUntil: m.mutedUntil, joinedAt: m.joinedAt, joinedSeq: m.joinedSeq };
}
