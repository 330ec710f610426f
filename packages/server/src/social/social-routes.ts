import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { MagpieError, avatarUrl, displayName, issuesOf, safeText } from '@magpie/protocol';
import type { AccountService, Principal } from '../services/account-service.ts';
import type { SocialService } from './social-service.ts';

const UserId = z.string().min(1).max(64);
const Nickname = displayName(64);
const Avatar = avatarUrl(2048).refine((s) => s !== '', 'use null to clear the avatar');
const ProfilePatch = z
  .strictObject({
    nickname: Nickname.optional(),
    /** An http(s) URL or a path on this server; null clears it. */
    avatar: Avatar.nullable().optional(),
    /** App-defined JSON object, size-limited by the service. */
    extra: z.record(z.string(), z.unknown()).optional(),
  })
  .refine((p) => p.nickname !== undefined || p.avatar !== undefined || p.extra !== undefined, { message: 'nothing to update' });
const RequestBody = z.strictObject({ to: UserId, greeting: safeText(200).default('') });
const Limit = (max: number, def: number) => z.coerce.number().int().min(1).max(max).default(def);
const ListQuery = z.strictObject({ after: UserId.optional(), limit: Limit(500, 100) });
const RequestsQuery = z.strictObject({ direction: z.enum(['incoming', 'outgoing']).default('incoming'), after: UserId.optional(), limit: Limit(500, 100) });
const SearchQuery = z.strictObject({ q: z.string().min(1).max(64), limit: Limit(50, 20), cursor: z.string().min(1).max(512).optional() });
const ChangesQuery = z.strictObject({ since: z.coerce.number().int().nonnegative(), limit: z.coerce.number().int().min(1).max(1000).optional() });
const Peer = z.strictObject({ userId: UserId });

function parse<T>(schema: z.ZodType<T>, value: unknown): T {
  const r = schema.safeParse(value ?? {});
  if (!r.success) throw new MagpieError('invalid', 'request fails the schema', { details: issuesOf(r.error) });
  return r.data;
}

function bearer(req: FastifyRequest): string | undefined {
  const h = req.headers.authorization;
  return h?.startsWith('Bearer ') ? h.slice(7) : undefined;
}

/**
 * REST routes of the social graph (all authenticated):
 *   GET    /api/profile                             own profile
 *   PATCH  /api/profile                             {nickname?, avatar?, extra?}
 *   GET    /api/users/search?q=&limit=&cursor=      exact id/username, nickname prefix (paged)
 *   GET    /api/users/:userId/profile               {profile, relation}
 *   POST   /api/friends/requests                    {to, greeting?}
 *   GET    /api/friends/requests?direction=&after=&limit=
 *   POST   /api/friends/requests/:userId/accept
 *   POST   /api/friends/requests/:userId/reject
 *   DELETE /api/friends/requests/:userId            withdraw own request
 *   GET    /api/friends?after=&limit=
 *   DELETE /api/friends/:userId
 *   GET    /api/blocks?after=&limit=
 *   PUT    /api/blocks/:userId
 *   DELETE /api/blocks/:userId
 *   GET    /api/relations/changes?since=&limit=
 */
export function registerSocialRoutes(app: FastifyInstance, deps: { accounts: AccountService; social: SocialService }): void {
  const { accounts, social } = deps;
  const auth = (req: FastifyRequest): Promise<Principal> => accounts.authenticate(bearer(req));
  const peerOf = (req: FastifyRequest): string => parse(Peer, req.params).userId;

  app.get('/api/profile', async (req) => ({ profile: await social.profile((await auth(req)).userId) }));
  app.patch('/api/profile', async (req) => {
    const p = await auth(req);
    return { profile: await social.updateProfile(p.userId, parse(ProfilePatch, req.body)) };
  });
  app.get('/api/users/search', async (req) => {
    await auth(req);
    const q = parse(SearchQuery, req.query);
    return social.search(q.q, q.limit, q.cursor);
  });
  app.get('/api/users/:userId/profile', async (req) => {
    const p = await auth(req);
    return social.userProfile(p.userId, peerOf(req));
  });

  app.post('/api/friends/requests', async (req) => {
    const p = await auth(req);
    const b = parse(RequestBody, req.body);
    return social.request(p.userId, b.to, b.greeting);
  });
  app.get('/api/friends/requests', async (req) => {
    const p = await auth(req);
    const q = parse(RequestsQuery, req.query);
    return social.requests(p.userId, q.direction, q.after, q.limit);
  });
  app.post('/api/friends/requests/:userId/accept', async (req) => social.accept((await auth(req)).userId, peerOf(req)));
  app.post('/api/friends/requests/:userId/reject', async (req) => social.reject((await auth(req)).userId, peerOf(req)));
  app.delete('/api/friends/requests/:userId', async (req) => social.cancel((await auth(req)).userId, peerOf(req)));

  app.get('/api/friends', async (req) => {
    const p = await auth(req);
    const q = parse(ListQuery, req.query);
    return social.friends(p.userId, q.after, q.limit);
  });
  app.delete('/api/friends/:userId', async (req) => social.remove((await auth(req)).userId, peerOf(req)));

  app.get('/api/blocks', async (req) => {
    const p = await auth(req);
    const q = parse(ListQuery, req.query);
    return social.blocks(p.userId, q.after, q.limit);
  });
  app.put('/api/blocks/:userId', async (req) => social.block((await auth(req)).userId, peerOf(req)));
  app.delete('/api/blocks/:userId', async (req) => social.unblock((await auth(req)).userId, peerOf(req)));

  app.get('/api/relations/changes', async (req) => {
    const p = await auth(req);
    const q = parse(ChangesQuery, req.query);
    return social.changes(p.userId, q.since, q.limit);
  });
}
