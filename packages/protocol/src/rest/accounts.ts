import { z } from 'zod';
import { ConvEntrySchema, ConvsResult, HistoryResult, SendResult } from '../server-frames.ts';
import { PLATFORMS } from '../types.ts';
import { Username, displayName } from '../text.ts';
import { OkSchema, QuerySeq, Seq, queryLimit, restRoute } from './route.ts';

/** Accounts, sessions, conversations and the REST send fallback (server: http/routes.ts). */

export const PublicUserSchema = z.strictObject({ id: z.string(), username: z.string(), nickname: z.string() });
const UserReply = z.strictObject({ user: PublicUserSchema });
const Password = z.string().min(1).max(256);
const ConvParams = z.strictObject({ conv: z.string() });

export const accountRoutes = {
  register: restRoute({
    method: 'POST',
    url: '/api/register',
    summary: 'Create an account',
    auth: 'none',
    body: z.strictObject({ username: Username, password: z.string().min(8).max(256), nickname: displayName(64).optional() }),
    reply: { 201: UserReply },
  }),
  login: restRoute({
    method: 'POST',
    url: '/api/login',
    summary: 'Open a session for one device',
    auth: 'none',
    body: z.strictObject({
      username: z.string().min(1).max(64),
      password: Password,
      deviceId: z.string().regex(/^[a-zA-Z0-9_.:-]{1,64}$/),
      platform: z.enum(PLATFORMS),
      appVersion: z.string().max(32).optional(),
    }),
    reply: { 200: z.strictObject({ token: z.string(), userId: z.string(), deviceId: z.string(), expiresAt: z.number().int() }) },
  }),
  password: restRoute({
    method: 'POST',
    url: '/api/password',
    summary: 'Change the password (ends the other sessions)',
    auth: 'user',
    body: z.strictObject({ currentPassword: Password, newPassword: z.string().min(8).max(256) }),
    reply: { 200: z.strictObject({ revoked: Seq }) },
  }),
  deleteAccount: restRoute({
    method: 'POST',
    url: '/api/account/delete',
    summary: 'Delete the account',
    auth: 'user',
    body: z.strictObject({ password: Password }),
    reply: { 200: OkSchema },
  }),
  logout: restRoute({ method: 'POST', url: '/api/logout', summary: 'End this session', auth: 'user', reply: { 200: OkSchema } }),
  logoutAll: restRoute({ method: 'POST', url: '/api/logout-all', summary: 'End every session of the account', auth: 'user', reply: { 200: z.strictObject({ revoked: Seq }) } }),
  me: restRoute({ method: 'GET', url: '/api/me', summary: 'The signed-in user', auth: 'user', reply: { 200: UserReply } }),
  user: restRoute({ method: 'GET', url: '/api/users/:id', summary: 'A user by id', auth: 'user', params: z.strictObject({ id: z.string() }), reply: { 200: UserReply } }),
  conversations: restRoute({
    method: 'GET',
    url: '/api/conversations',
    summary: 'Conversation-list entries changed after `since`',
    auth: 'user',
    query: z.strictObject({ since: QuerySeq.default(0), limit: queryLimit(500).optional() }),
    reply: { 200: ConvsResult },
  }),
  history: restRoute({
    method: 'GET',
    url: '/api/conversations/:conv/messages',
    summary: 'Message history of a conversation',
    auth: 'user',
    params: ConvParams,
    query: z.strictObject({ before: QuerySeq.optional(), after: QuerySeq.optional(), limit: queryLimit(200).optional() }),
    reply: { 200: HistoryResult },
  }),
  read: restRoute({
    method: 'POST',
    url: '/api/conversations/:conv/read',
    summary: 'Mark read up to `seq`',
    auth: 'user',
    params: ConvParams,
    body: z.strictObject({ seq: Seq }),
    reply: { 200: z.strictObject({ entry: ConvEntrySchema }) },
  }),
  updateEntry: restRoute({
    method: 'PATCH',
    url: '/api/conversations/:conv',
    summary: 'Pin, mute, draft or delete a conversation-list entry',
    auth: 'user',
    params: ConvParams,
    body: z.strictObject({ pinned: z.boolean().optional(), muted: z.boolean().optional(), draft: z.string().max(4000).optional(), deleted: z.literal(true).optional() }),
    reply: { 200: z.strictObject({ entry: ConvEntrySchema }) },
  }),
  send: restRoute({
    method: 'POST',
    url: '/api/messages',
    summary: 'Send a message (short-request fallback of the `send` frame)',
    auth: 'user',
    body: z
      .strictObject({
        clientMsgId: z.string().min(1).max(64),
        to: z.string().min(1).max(64).optional(),
        conv: z.string().min(1).max(128).optional(),
        kind: z.string().min(1).max(32),
        body: z.unknown(),
        mentions: z.union([z.array(z.string().min(1).max(64)).min(1).max(100), z.literal('all')]).optional(),
      })
      .refine((f) => (f.to === undefined) !== (f.conv === undefined), { message: 'exactly one of `to` and `conv` is required' }),
    reply: { 200: SendResult },
  }),
  health: restRoute({ method: 'GET', url: '/api/health', summary: 'Liveness', auth: 'none', reply: { 200: OkSchema } }),
};
