import type { Logger } from 'pino';
import type { Store } from '../store/store.ts';
import type { SocialService } from '../social/social-service.ts';
import type { Principal } from './account-service.ts';
import type { GroupService } from './group-service.ts';

/** The acting principal of clean-up after an account deletion (no session: the sessions are revoked). */
function deletedPrincipal(userId: string): Principal {
  return { userId, deviceId: 'account-deletion', platform: 'web', tokenHash: '', appVersion: '' };
}

/**
 * A deleted account leaves every group it belongs to, through the normal group operations
 * (members see the usual notices). A group it owns passes to an admin, else to another
 * member (first by user id); a group with no other member is dismissed.
 * Best effort per group: one failure is logged and the rest go on.
 */
export async function leaveAllGroups(store: Store, groups: GroupService, userId: string, log: Logger): Promise<void> {
  const p = deletedPrincipal(userId);
  const convs: string[] = [];
  for (let since = 0; ; ) {
    const page = await store.conversationChanges(userId, since, 500);
    for (const e of page.entries) if (e.conv.startsWith('g:')) convs.push(e.conv);
    if (page.entries.length < 500) break;
    since = Math.max(...page.entries.map((e) => e.version));
  }
  for (const conv of new Set(convs)) {
    try {
      const member = await store.getMember(conv, userId);
      const group = member && (await store.getGroup(conv));
      if (!member || !group || group.dismissed) continue;
      if (member.role === 'owner') {
        const heir = await pickHeir(store, conv, userId);
        if (!heir) {
          await groups.dismiss(p, conv);
          continue;
        }
        await groups.transfer(p, conv, heir);
      }
      await groups.leave(p, conv);
    } catch (err) {
      log.warn({ err, conv, userId }, 'account deletion: leaving a group failed');
    }
  }
}

async function pickHeir(store: Store, conv: string, userId: string): Promise<string | null> {
  let fallback: string | null = null;
  for (let after = ''; ; ) {
    const page = await store.listMembers(conv, after, 500);
    for (const m of page) {
      if (m.userId === userId) continue;
      if (m.role === 'admin') return m.userId;
      fallback ??= m.userId;
    }
    if (page.length < 500) return fallback;
    after = page.at(-1)!.userId;
  }
}

/** A deleted account's profile is cleared, its friendships end and its pending friend requests are withdrawn or declined (blocks it made stay). */
export async function dropRelations(social: SocialService, userId: string, log: Logger): Promise<void> {
  try {
    await social.updateProfile(userId, { avatar: null, extra: {} });
  } catch (err) {
    log.warn({ err, userId }, 'account deletion: clearing the profile failed');
  }
  const each = async (list: () => Promise<{ items: { user: { id: string } }[] }>, act: (peer: string) => Promise<unknown>) => {
    // Each action removes the entry from the list, so the first page is re-read until empty.
    for (let round = 0; round < 10_000; round++) {
      const page = await list();
      if (page.items.length === 0) return;
      for (const it of page.items) {
        try {
          await act(it.user.id);
        } catch (err) {
          log.warn({ err, userId, peer: it.user.id }, 'account deletion: dropping a relation failed');
          return;
        }
      }
    }
  };
  await each(() => social.friends(userId, undefined, 200), (peer) => social.remove(userId, peer));
  await each(() => social.requests(userId, 'outgoing', undefined, 200), (peer) => social.cancel(userId, peer));
  await each(() => social.requests(userId, 'incoming', undefined, 200), (peer) => social.reject(userId, peer));
}
