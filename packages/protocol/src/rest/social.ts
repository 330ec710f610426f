import { z } from 'zod';
import {
  BlockEntrySchema,
  FriendEntrySchema,
  FriendRequestEntrySchema,
  ProfileSchema,
  RELATION_STATES,
  RelationChangesResultSchema,
  RelationResultSchema,
  SearchResultSchema,
  listPageSchema,
} from '../social.ts';
import { avatarUrl, displayName, safeText } from '../text.ts';
import { QuerySeq, queryLimit, restRoute } from './route.ts';

/** The social graph: profiles, friends, requests, blocks (server: social/social-routes.ts). All authenticated. */

const UserId = z.string().min(1).max(64);
const Peer = z.strictObject({ userId: UserId });
const ListQuery = z.strictObject({ after: UserId.optional(), limit: queryLimit(500).default(100) });
const ProfileReply = z.strictObject({ profile: ProfileSchema });

const relation = (method: 'POST' | 'PUT' | 'DELETE', url: `/api/${string}`, summary: string) =>
  restRoute({ method, url, summary, auth: 'user', params: Peer, reply: { 200: RelationResultSchema } });

export const socialRoutes = {
  profile: restRoute({ method: 'GET', url: '/api/profile', summary: 'Own profile', auth: 'user', reply: { 200: ProfileReply } }),
  updateProfile: restRoute({
    method: 'PATCH',
    url: '/api/profile',
    summary: 'Change nickname, avatar or extra',
    auth: 'user',
    body: z
      .strictObject({
        nickname: displayName(64).optional(),
        /** An http(s) URL or a path on this server; null clears it. */
        avatar: avatarUrl(2048)
          .refine((s) => s !== '', 'use null to clear the avatar')
          .nullable()
          .optional(),
        /** App-defined JSON object, size-limited by the service. */
        extra: z.record(z.string(), z.unknown()).optional(),
      })
      .refine((p) => p.nickname !== undefined || p.avatar !== undefined || p.extra !== undefined, { message: 'nothing to update' }),
    reply: { 200: ProfileReply },
  }),
  search: restRoute({
    method: 'GET',
    url: '/api/users/search',
    summary: 'Exact id/username, then nickname prefix (paged)',
    auth: 'user',
    query: z.strictObject({ q: z.string().min(1).max(64), limit: queryLimit(50).default(20), cursor: z.string().min(1).max(512).optional() }),
    reply: { 200: SearchResultSchema },
  }),
  userProfile: restRoute({
    method: 'GET',
    url: '/api/users/:userId/profile',
    summary: "A user's profile and the caller's relation to them",
    auth: 'user',
    params: Peer,
    reply: { 200: z.strictObject({ profile: ProfileSchema, relation: z.enum(RELATION_STATES) }) },
  }),
  request: restRoute({
    method: 'POST',
    url: '/api/friends/requests',
    summary: 'Send a friend request',
    auth: 'user',
    body: z.strictObject({ to: UserId, greeting: safeText(200).default('') }),
    reply: { 200: RelationResultSchema },
  }),
  requests: restRoute({
    method: 'GET',
    url: '/api/friends/requests',
    summary: 'Incoming or outgoing friend requests',
    auth: 'user',
    query: z.strictObject({ direction: z.enum(['incoming', 'outgoing']).default('incoming'), after: UserId.optional(), limit: queryLimit(500).default(100) }),
    reply: { 200: listPageSchema(FriendRequestEntrySchema) },
  }),
  accept: relation('POST', '/api/friends/requests/:userId/accept', 'Accept a friend request'),
  reject: relation('POST', '/api/friends/requests/:userId/reject', 'Reject a friend request'),
  cancel: relation('DELETE', '/api/friends/requests/:userId', 'Withdraw an own friend request'),
  friends: restRoute({ method: 'GET', url: '/api/friends', summary: 'Friends, paged', auth: 'user', query: ListQuery, reply: { 200: listPageSchema(FriendEntrySchema) } }),
  remove: relation('DELETE', '/api/friends/:userId', 'Remove a friend'),
  blocks: restRoute({ method: 'GET', url: '/api/blocks', summary: 'Blocked users, paged', auth: 'user', query: ListQuery, reply: { 200: listPageSchema(BlockEntrySchema) } }),
  block: relation('PUT', '/api/blocks/:userId', 'Block a user'),
  unblock: relation('DELETE', '/api/blocks/:userId', 'Unblock a user'),
  changes: restRoute({
    method: 'GET',
    url: '/api/relations/changes',
    summary: 'Relation changes after version `since`',
    auth: 'user',
    query: z.strictObject({ since: QuerySeq, limit: queryLimit(1000).optional() }),
    reply: { 200: RelationChangesResultSchema },
  }),
};
