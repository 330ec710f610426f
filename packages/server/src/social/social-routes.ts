import { socialRoutes as R } from '@magpie/protocol';
import type { RestApi } from '../http/rest.ts';
import type { SocialService } from './social-service.ts';

/** REST routes of the social graph, all authenticated (schemas and paths: @magpie/protocol rest/social.ts). */
export function registerSocialRoutes(api: RestApi, deps: { social: SocialService }): void {
  const { social } = deps;
  api.route(R.profile, async ({ principal }) => ({ profile: await social.profile(principal.userId) }));
  api.route(R.updateProfile, async ({ principal, body }) => ({ profile: await social.updateProfile(principal.userId, body) }));
  api.route(R.search, async ({ query }) => social.search(query.q, query.limit, query.cursor));
  api.route(R.userProfile, async ({ principal, params }) => social.userProfile(principal.userId, params.userId));
  api.route(R.request, async ({ principal, body }) => social.request(principal.userId, body.to, body.greeting));
  api.route(R.requests, async ({ principal, query }) => social.requests(principal.userId, query.direction, query.after, query.limit));
  api.route(R.accept, async ({ principal, params }) => social.accept(principal.userId, params.userId));
  api.route(R.reject, async ({ principal, params }) => social.reject(principal.userId, params.userId));
  api.route(R.cancel, async ({ principal, params }) => social.cancel(principal.userId, params.userId));
  api.route(R.friends, async ({ principal, query }) => social.friends(principal.userId, query.after, query.limit));
  api.route(R.remove, async ({ principal, params }) => social.remove(principal.userId, params.userId));
  api.route(R.blocks, async ({ principal, query }) => social.blocks(principal.userId, query.after, query.limit));
  api.route(R.block, async ({ principal, params }) => social.block(principal.userId, params.userId));
  api.route(R.unblock, async ({ principal, params }) => social.unblock(principal.userId, params.userId));
  api.route(R.changes, async ({ principal, query }) => social.changes(principal.userId, query.since, query.limit));
}
