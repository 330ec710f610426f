import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { avatarUrl, displayName, safeText } from '@magpie/protocol';
import type { AccountService, Principal } from '../services/account-service.ts';
import type { GroupService } from '../services/group-service.ts';
import type { GroupRecord, MemberRecord } from '../store/store.ts';
import { parseBody, bearer } from './validation.ts';

const UserId = z.string().min(1).max(64);
const Create = z.strictObject({
  name: displayName(64),
  members: z.array(UserId).max(1000).default([]),
  avatar: avatarUrl(512).optional(),
  joinPolicy: z.enum(['open', 'approval']).optional(),
  inviteNeedsApproval: z.boolean().optional(),
  historyVisibility: z.enum(['since_join', 'all']).optional(),
});
const Users = z.strictObject({ users: z.array(UserId).min(1).max(1000) });
const Join = z.strictObject({ message: safeText(200).optional() });
const Role = z.strictObject({ user: UserId, role: z.enum(['admin', 'member']) });
const Mute = z.strictObject({ user: UserId, durationMs: z.number().int().min(0).max(366 * 24 * 3600 * 1000) });
const Transfer = z.strictObject({ to: UserId });
const Patch = z.strictObject({
  name: displayName(64).optional(),
  avatar: avatarUrl(512).optional(),
  announcement: safeText(4000).optional(),
  joinPolicy: z.enum(['open', 'approval']).optional(),
  inviteNeedsApproval: z.boolean().optional(),
  muteAll: z.boolean().optional(),
  historyVisibility: z.enum(['since_join', 'all']).optional(),
});
const Search = z.strictObject({ query: z.string().min(1).max(64), limit: z.coerce.number().int().min(1).max(100).default(20) });
const Page = z.strictObject({ after: z.string().max(64).default(''), limit: z.coerce.number().int().min(1).max(1000).default(200) });

type ConvParams = { Params: { conv: string } };

/** Group routes under /api/groups. Every change is also a system notice in the conversation. */
export function registerGroupRoutes(app: FastifyInstance, accounts: AccountService, groups: GroupService): void {
  const auth = (req: FastifyRequest): Promise<Principal> => accounts.authenticate(bearer(req));

  app.post('/api/groups', async (req, reply) => {
    const p = await auth(req);
    reply.code(201);
    return { group: groupView(await groups.create(p, parseBody(Create, req.body))) };
  });
  app.get('/api/groups', async (req) => {
    await auth(req);
    const q = parseBody(Search, req.query);
    return { groups: (await groups.search(q.query, q.limit)).map(groupView) };
  });
  app.get<ConvParams>('/api/groups/:conv', async (req) => {
    await auth(req);
    return { group: groupView(await groups.info(req.params.conv)) };
  });
  app.get<ConvParams>('/api/groups/:conv/members', async (req) => {
    const q = parseBody(Page, req.query);
    return { members: (await groups.members(await auth(req), req.params.conv, q.after, q.limit)).map(memberView) };
  });
  app.post<ConvParams>('/api/groups/:conv/join', async (req) => groups.join(await auth(req), req.params.conv, parseBody(Join, req.body).message));
  app.post<ConvParams>('/api/groups/:conv/invite', async (req) => groups.invite(await auth(req), req.params.conv, parseBody(Users, req.body).users));
  app.get<ConvParams>('/api/groups/:conv/requests', async (req) => ({ requests: await groups.requests(await auth(req), req.params.conv) }));
  app.post<{ Params: { conv: string; user: string } }>('/api/groups/:conv/requests/:user/approve', async (req) => {
    await groups.resolveRequest(await auth(req), req.params.conv, req.params.user, true);
    return { ok: true };
  });
  app.post<{ Params: { conv: string; user: string } }>('/api/groups/:conv/requests/:user/reject', async (req) => {
    await groups.resolveRequest(await auth(req), req.params.conv, req.params.user, false);
    return { ok: true };
  });
  app.post<ConvParams>('/api/groups/:conv/kick', async (req) => {
    await groups.kick(await auth(req), req.params.conv, parseBody(Users, req.body).users);
    return { ok: true };
  });
  app.post<ConvParams>('/api/groups/:conv/leave', async (req) => {
    await groups.leave(await auth(req), req.params.conv);
    return { ok: true };
  });
  app.post<ConvParams>('/api/groups/:conv/role', async (req) => {
    const b = parseBody(Role, req.body);
    await groups.setRole(await auth(req), req.params.conv, b.user, b.role);
    return { ok: true };
  });
  app.post<ConvParams>('/api/groups/:conv/mute', async (req) => {
    const b = parseBody(Mute, req.body);
    await groups.mute(await auth(req), req.params.conv, b.user, b.durationMs);
    return { ok: true };
  });
  app.post<ConvParams>('/api/groups/:conv/transfer', async (req) => {
    await groups.transfer(await auth(req), req.params.conv, parseBody(Transfer, req.body).to);
    return { ok: true };
  });
  app.patch<ConvParams>('/api/groups/:conv', async (req) => ({ group: groupView(await groups.update(await auth(req), req.params.conv, parseBody(Patch, req.body))) }));
  app.post<ConvParams>('/api/groups/:conv/dismiss', async (req) => {
    await groups.dismiss(await auth(req), req.params.conv);
    return { ok: true };
  });
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
