import { accountRoutes as R } from '@magpie/protocol';
import type { AccountService } from '../services/account-service.ts';
import type { MessagingService } from '../services/message-service.ts';
import type { RestApi } from './rest.ts';

/** The REST API under /api: account operations and reads; sends as a short-request fallback. Schemas: @magpie/protocol rest/accounts.ts. */
export function registerApiRoutes(api: RestApi, accounts: AccountService, messaging: MessagingService): void {
  api.route(R.health, async () => ({ ok: true as const }));
  api.route(R.register, async ({ body }) => ({ user: await accounts.register(body.username, body.password, body.nickname) }));
  api.route(R.login, async ({ body, raw }) => accounts.login({ ...body, ip: raw.ip }));
  api.route(R.password, async ({ principal, body, raw }) => ({ revoked: await accounts.changePassword(principal, body.currentPassword, body.newPassword, raw.ip) }));
  api.route(R.deleteAccount, async ({ principal, body, raw }) => {
    await accounts.deleteAccount(principal, body.password, raw.ip);
    return { ok: true as const };
  });
  api.route(R.logout, async ({ principal }) => {
    await accounts.logout(principal);
    return { ok: true as const };
  });
  api.route(R.logoutAll, async ({ principal }) => ({ revoked: await accounts.logoutAll(principal) }));
  api.route(R.me, async ({ principal }) => ({ user: await accounts.getUser(principal.userId) }));
  api.route(R.user, async ({ params }) => ({ user: await accounts.getUser(params.id) }));
  api.route(R.conversations, async ({ principal, query }) => messaging.conversations(principal.userId, query.since, query.limit));
  api.route(R.history, async ({ principal, params, query }) => messaging.history(principal.userId, params.conv, query));
  api.route(R.read, async ({ principal, params, body }) => ({ entry: await messaging.markRead(principal, params.conv, body.seq) }));
  api.route(R.updateEntry, async ({ principal, params, body }) => ({ entry: await messaging.updateEntry(principal, params.conv, body) }));
  api.route(R.send, async ({ principal, body }) => messaging.send(principal, body));
}
