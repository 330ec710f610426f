import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { PLATFORMS, Username, displayName } from '@magpie/protocol';
import { bearer, parseBody } from './validation.ts';
import type { AccountService, Principal } from '../services/account-service.ts';
import type { MessagingService } from '../services/message-service.ts';

const Register = z.strictObject({
  username: Username,
  password: z.string().min(8).max(256),
  nickname: displayName(64).optional(),
});
const Login = z.strictObject({
  username: z.string().min(1).max(64),
  password: z.string().min(1).max(256),
  deviceId: z.string().regex(/^[a-zA-Z0-9_.:-]{1,64}$/),
  platform: z.enum(PLATFORMS),
  appVersion: z.string().max(32).optional(),
});
const Password = z.string().min(1).max(256);
const ChangePassword = z.strictObject({ currentPassword: Password, newPassword: z.string().min(8).max(256) });
const DeleteAccount = z.strictObject({ password: Password });
const Seq = z.coerce.number().int().nonnegative();
const ConvsQuery = z.strictObject({ since: Seq.default(0), limit: z.coerce.number().int().min(1).max(500).optional() });
const HistoryQuery = z.strictObject({
  before: Seq.optional(),
  after: Seq.optional(),
  limit: z.coerce.number().int().min(1).max(200).optional(),
});
const SendBody = z
  .strictObject({
    clientMsgId: z.string().min(1).max(64),
    to: z.string().min(1).max(64).optional(),
    conv: z.string().min(1).max(128).optional(),
    kind: z.string().min(1).max(32),
    body: z.unknown(),
    mentions: z.union([z.array(z.string().min(1).max(64)).min(1).max(100), z.literal('all')]).optional(),
  })
  .refine((f) => (f.to === undefined) !== (f.conv === undefined), { message: 'exactly one of `to` and `conv` is required' });
const ReadBody = z.strictObject({ seq: Seq });
const EntryPatch = z.strictObject({
  pinned: z.boolean().optional(),
  muted: z.boolean().optional(),
  draft: z.string().max(4000).optional(),
  deleted: z.literal(true).optional(),
});

/** The REST API under /api: account operations and reads; sends as a short-request fallback. */
export function registerApiRoutes(app: FastifyInstance, accounts: AccountService, messaging: MessagingService): void {
  const auth = (req: FastifyRequest): Promise<Principal> => accounts.authenticate(bearer(req));

  app.post('/api/register', async (req, reply) => {
    const b = parseBody(Register, req.body);
    reply.code(201);
    return { user: await accounts.register(b.username, b.password, b.nickname) };
  });
  app.post('/api/login', async (req) => accounts.login({ ...parseBody(Login, req.body), ip: req.ip }));
  app.post('/api/password', async (req) => {
    const p = await auth(req);
    const b = parseBody(ChangePassword, req.body);
    return { revoked: await accounts.changePassword(p, b.currentPassword, b.newPassword, req.ip) };
  });
  app.post('/api/account/delete', async (req) => {
    const p = await auth(req);
    await accounts.deleteAccount(p, parseBody(DeleteAccount, req.body).password, req.ip);
    return { ok: true };
  });
  app.post('/api/logout', async (req) => {
    await accounts.logout(await auth(req));
    return { ok: true };
  });
  app.post('/api/logout-all', async (req) => ({ revoked: await accounts.logoutAll(await auth(req)) }));
  app.get('/api/me', async (req) => ({ user: await accounts.getUser((await auth(req)).userId) }));
  app.get<{ Params: { id: string } }>('/api/users/:id', async (req) => {
    await auth(req);
    return { user: await accounts.getUser(req.params.id) };
  });
  app.get('/api/conversations', async (req) => {
    const p = await auth(req);
    const q = parseBody(ConvsQuery, req.query);
    return messaging.conversations(p.userId, q.since, q.limit);
  });
  app.get<{ Params: { conv: string } }>('/api/conversations/:conv/messages', async (req) => {
    const p = await auth(req);
    return messaging.history(p.userId, req.params.conv, parseBody(HistoryQuery, req.query));
  });
  app.post<{ Params: { conv: string } }>('/api/conversations/:conv/read', async (req) => {
    const p = await auth(req);
    return { entry: await messaging.markRead(p, req.params.conv, parseBody(ReadBody, req.body).seq) };
  });
  app.patch<{ Params: { conv: string } }>('/api/conversations/:conv', async (req) => {
    const p = await auth(req);
    return { entry: await messaging.updateEntry(p, req.params.conv, parseBody(EntryPatch, req.body)) };
  });
  app.post('/api/messages', async (req) => {
    const p = await auth(req);
    return messaging.send(p, parseBody(SendBody, req.body));
  });
}
