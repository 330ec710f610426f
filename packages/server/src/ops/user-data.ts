import { MagpieError, adminDataRoutes, type ConvEntry, type Message } from '@magpie/protocol';
import type { Store } from '../store/store.ts';
import type { AccountService } from '../services/account-service.ts';
import type { RestApi } from '../http/rest.ts';

const PAGE = 200;

/**
 * One account's data for an export request: the profile (no password hash), its sessions
 * (device, platform, app version, times; no token hashes), its conversation entries, and
 * every message it sent, read page by page from each of its conversations.
 */
export async function exportUser(store: Store, userId: string, now = Date.now()) {
  const user = await store.getUser(userId);
  if (!user) throw new MagpieError('not_found', 'no such user');
  const sessions = (await store.listSessions(userId, 0)).map((s) => ({ deviceId: s.deviceId, platform: s.platform, appVersion: s.appVersion, createdAt: s.createdAt, expiresAt: s.expiresAt }));
  const conversations: ConvEntry[] = [];
  for (let since = 0; ; ) {
    const page = await store.conversationChanges(userId, since, PAGE);
    conversations.push(...page.entries);
    if (page.entries.length < PAGE || page.version <= since) break;
    since = page.version;
  }
  const messages: Message[] = [];
  for (const c of conversations) {
    for (let after = 0; ; ) {
      const page = await store.readHistory(c.conv, { after, limit: PAGE, viewer: userId });
      messages.push(...page.filter((m) => m.sender === userId));
      if (page.length < PAGE) break;
      after = page[page.length - 1]!.seq;
    }
  }
  return {
    exportedAt: now,
    user: { id: user.id, username: user.username, nickname: user.nickname, createdAt: user.createdAt, disabledAt: user.disabledAt, deletedAt: user.deletedAt },
    sessions,
    conversations,
    messages,
  };
}

/** GET /api/admin/users/:id/export and POST /api/admin/users/:id/erase. */
export function registerUserDataRoutes(api: RestApi, store: Store, accounts: AccountService): void {
  api.route(adminDataRoutes.exportUser, async ({ params }) => exportUser(store, params.id));
  api.route(adminDataRoutes.eraseUser, async ({ params }) => {
    await accounts.adminDeleteAccount(params.id);
    return { ok: true as const };
  });
}
