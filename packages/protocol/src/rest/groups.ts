import { z } from 'zod';
import { avatarUrl, displayName, safeText } from '../text.ts';
import { OkSchema, Seq, queryLimit, restRoute } from './route.ts';

/** Group routes under /api/groups (server: http/group-routes.ts). Every change is also a system notice in the conversation. */

const UserId = z.string().min(1).max(64);
const JoinPolicy = z.enum(['open', 'approval']);
const HistoryVisibility = z.enum(['since_join', 'all']);

export const GroupSchema = z.strictObject({
  conv: z.string(),
  kind: z.enum(['group', 'super']),
  name: z.string(),
  avatar: z.string(),
  announcement: z.string(),
  owner: z.string(),
  joinPolicy: JoinPolicy,
  inviteNeedsApproval: z.boolean(),
  muteAll: z.boolean(),
  historyVisibility: HistoryVisibility,
  dismissed: z.boolean(),
  memberCount: Seq,
  maxMembers: Seq,
  lastSeq: Seq,
  createdAt: z.number().int(),
});
export const GroupMemberSchema = z.strictObject({
  userId: z.string(),
  role: z.enum(['owner', 'admin', 'member']),
  /** Muted until this time (ms); 0 = not muted. */
  mutedUntil: z.number().int(),
  joinedAt: z.number().int(),
  joinedSeq: Seq,
});
export const JoinRequestSchema = z.strictObject({ conv: z.string(), userId: z.string(), inviter: z.string().nullable(), message: z.string(), createdAt: z.number().int() });

const GroupReply = z.strictObject({ group: GroupSchema });
const Conv = z.strictObject({ conv: z.string() });
const ConvUser = z.strictObject({ conv: z.string(), user: z.string() });
const Users = z.strictObject({ users: z.array(UserId).min(1).max(1000) });

export const groupRoutes = {
  create: restRoute({
    method: 'POST',
    url: '/api/groups',
    summary: 'Create a group',
    auth: 'user',
    body: z.strictObject({
      name: displayName(64),
      members: z.array(UserId).max(1000).default([]),
      avatar: avatarUrl(512).optional(),
      joinPolicy: JoinPolicy.optional(),
      inviteNeedsApproval: z.boolean().optional(),
      historyVisibility: HistoryVisibility.optional(),
    }),
    reply: { 201: GroupReply },
  }),
  search: restRoute({
    method: 'GET',
    url: '/api/groups',
    summary: 'Search groups by name prefix',
    auth: 'user',
    query: z.strictObject({ query: z.string().min(1).max(64), limit: queryLimit(100).default(20) }),
    reply: { 200: z.strictObject({ groups: z.array(GroupSchema) }) },
  }),
  info: restRoute({ method: 'GET', url: '/api/groups/:conv', summary: 'A group', auth: 'user', params: Conv, reply: { 200: GroupReply } }),
  members: restRoute({
    method: 'GET',
    url: '/api/groups/:conv/members',
    summary: 'Members, paged by user id',
    auth: 'user',
    params: Conv,
    query: z.strictObject({ after: z.string().max(64).default(''), limit: queryLimit(1000).default(200) }),
    reply: { 200: z.strictObject({ members: z.array(GroupMemberSchema) }) },
  }),
  changeUsers: restRoute({
    method: 'GET',
    url: '/api/groups/:conv/changes/:seq/users',
    summary: 'Every user of a group change notice (its notice names the first 3 and the count), paged by user id',
    auth: 'user',
    params: z.strictObject({ conv: z.string(), seq: z.coerce.number().int().min(1).max(Number.MAX_SAFE_INTEGER) }),
    query: z.strictObject({ after: z.string().max(64).default(''), limit: queryLimit(1000).default(200) }),
    reply: { 200: z.strictObject({ users: z.array(z.string()) }) },
  }),
  join: restRoute({
    method: 'POST',
    url: '/api/groups/:conv/join',
    summary: 'Join (or apply to) a group',
    auth: 'user',
    params: Conv,
    body: z.strictObject({ message: safeText(200).optional() }),
    reply: { 200: z.strictObject({ joined: z.boolean() }) },
  }),
  invite: restRoute({
    method: 'POST',
    url: '/api/groups/:conv/invite',
    summary: 'Invite users',
    auth: 'user',
    params: Conv,
    body: Users,
    reply: { 200: z.strictObject({ added: z.array(z.string()), pending: z.array(z.string()) }) },
  }),
  requests: restRoute({ method: 'GET', url: '/api/groups/:conv/requests', summary: 'Pending join requests', auth: 'user', params: Conv, reply: { 200: z.strictObject({ requests: z.array(JoinRequestSchema) }) } }),
  approve: restRoute({ method: 'POST', url: '/api/groups/:conv/requests/:user/approve', summary: 'Approve a join request', auth: 'user', params: ConvUser, reply: { 200: OkSchema } }),
  reject: restRoute({ method: 'POST', url: '/api/groups/:conv/requests/:user/reject', summary: 'Reject a join request', auth: 'user', params: ConvUser, reply: { 200: OkSchema } }),
  kick: restRoute({ method: 'POST', url: '/api/groups/:conv/kick', summary: 'Remove members', auth: 'user', params: Conv, body: Users, reply: { 200: OkSchema } }),
  leave: restRoute({ method: 'POST', url: '/api/groups/:conv/leave', summary: 'Leave the group', auth: 'user', params: Conv, reply: { 200: OkSchema } }),
  role: restRoute({
    method: 'POST',
    url: '/api/groups/:conv/role',
    summary: 'Make a member admin or member',
    auth: 'user',
    params: Conv,
    body: z.strictObject({ user: UserId, role: z.enum(['admin', 'member']) }),
    reply: { 200: OkSchema },
  }),
  mute: restRoute({
    method: 'POST',
    url: '/api/groups/:conv/mute',
    summary: 'Mute a member for a while (0 unmutes)',
    auth: 'user',
    params: Conv,
    body: z.strictObject({ user: UserId, durationMs: z.number().int().min(0).max(366 * 24 * 3600 * 1000) }),
    reply: { 200: OkSchema },
  }),
  transfer: restRoute({ method: 'POST', url: '/api/groups/:conv/transfer', summary: 'Transfer ownership', auth: 'user', params: Conv, body: z.strictObject({ to: UserId }), reply: { 200: OkSchema } }),
  update: restRoute({
    method: 'PATCH',
    url: '/api/groups/:conv',
    summary: 'Change name, avatar, announcement or settings',
    auth: 'user',
    params: Conv,
    body: z.strictObject({
      name: displayName(64).optional(),
      avatar: avatarUrl(512).optional(),
      announcement: safeText(4000).optional(),
      joinPolicy: JoinPolicy.optional(),
      inviteNeedsApproval: z.boolean().optional(),
      muteAll: z.boolean().optional(),
      historyVisibility: HistoryVisibility.optional(),
    }),
    reply: { 200: GroupReply },
  }),
  dismiss: restRoute({ method: 'POST', url: '/api/groups/:conv/dismiss', summary: 'Dismiss the group (owner)', auth: 'user', params: Conv, reply: { 200: OkSchema } }),
};
