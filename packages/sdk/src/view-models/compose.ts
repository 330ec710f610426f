/**
 * What the composer of a chat needs to know in words: why this user cannot send here
 * ("You are muted for 12 min"), why a message failed and whether a retry can help, which
 * members an `@` prefix matches (by display name too, any script), and whether a text fits
 * the server's message size limit.
 */
import type { ProfileSummary } from '@magpie/protocol';
import { ERROR_RETRYABLE } from '../protocol-constants.ts';

/** "1 min", "12 min", "2 h", "3 days": a remaining time, rounded up. */
export function durationText(ms: number): string {
  const min = Math.max(1, Math.ceil(ms / 60_000));
  if (min < 90) return `${min} min`;
  const h = Math.ceil(min / 60);
  if (h < 48) return `${h} h`;
  const d = Math.ceil(h / 24);
  return `${d} days`;
}

/** Where a group stops this user from sending, from the group and this user's membership. */
export interface SendRights {
  member: { role: 'owner' | 'admin' | 'member'; mutedUntil: number } | null;
  muteAll: boolean;
  dismissed: boolean;
}

/** Why this user cannot send in the group now, or null when they can. */
export function sendBlockText(r: SendRights, now: number): string | null {
  if (r.dismissed) return 'This group was dismissed. It is read-only.';
  if (!r.member) return 'You are not a member of this group.';
  if (r.member.mutedUntil > now) return `You are muted for ${durationText(r.member.mutedUntil - now)}.`;
  if (r.muteAll && r.member.role === 'member') return 'Only admins can send messages in this group.';
  return null;
}

const CLIENT_RETRYABLE = new Set(['disconnected', 'timeout', 'not_connected', 'network']);

/** Whether repeating a send that failed with this code may succeed (server table, or a lost connection). */
export function retryableCode(code: string): boolean {
  return ERROR_RETRYABLE[code] ?? CLIENT_RETRYABLE.has(code);
}

/**
 * A failed own message in words, and whether to offer Retry: only where a retry can succeed
 * (a lost connection, rate limits, a server hiccup; a mute once it is lifted).
 */
export function failureText(error: { code: string; message: string } | null, sendBlocked: boolean): { text: string; canRetry: boolean } {
  const code = error?.code ?? 'timeout';
  switch (code) {
    case 'muted':
      return sendBlocked ? { text: 'Not sent: you could not send messages here.', canRetry: false } : { text: 'Not sent: you could not send messages here then.', canRetry: true };
    case 'message_too_large':
    case 'frame_too_large':
      return { text: 'Not sent: the message is too long.', canRetry: false };
    case 'forbidden':
    case 'not_found':
      return { text: 'Not sent: you cannot send messages in this chat.', canRetry: false };
    case 'group_full':
      return { text: 'Not sent: the group is full.', canRetry: false };
    case 'invalid':
    case 'bad_frame':
      return { text: 'Not sent: the server did not accept this message.', canRetry: false };
    case 'rate_limited':
      return { text: 'Not sent: too many messages at once.', canRetry: true };
    default:
      return retryableCode(code) ? { text: 'Not sent: no connection to the server.', canRetry: true } : { text: 'Not sent.', canRetry: false };
  }
}

/** Size of a text message's body as the server counts it (UTF-8 bytes of its JSON). */
export function textBodyBytes(text: string): number {
  return new TextEncoder().encode(JSON.stringify({ text })).length;
}

/** Lower-cased, width- and compatibility-normalized (full-width Ａ → a), for matching in any script. */
export function fold(s: string): string {
  return s.normalize('NFKC').toLocaleLowerCase();
}

/** The name a member is shown (and inserted) by: the display name, else the username. */
export const displayName = (u: Pick<ProfileSummary, 'nickname' | 'username'>): string => u.nickname || u.username;

/**
 * Members matching the text typed after an `@`: display-name prefix first, then username
 * prefix, then a display name containing it (CJK names are often typed from the middle).
 */
export function matchMembers<U extends Pick<ProfileSummary, 'nickname' | 'username'>>(members: U[], typed: string, limit: number): U[] {
  const q = fold(typed);
  const rank = (u: U): number => {
    const n = fold(displayName(u));
    const un = fold(u.username);
    if (n.startsWith(q)) return 0;
    if (un.startsWith(q)) return 1;
    if (n.includes(q)) return 2;
    return 3;
  };
  return members
    .map((u) => ({ u, r: rank(u) }))
    .filter((x) => x.r < 3)
    .sort((a, b) => a.r - b.r || displayName(a.u).localeCompare(displayName(b.u)))
    .slice(0, limit)
    .map((x) => x.u);
}
