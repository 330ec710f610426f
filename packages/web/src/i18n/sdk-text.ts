/**
 * The SDK's view models are framework- and language-neutral, but a few of their fields are
 * English sentences (group notices, message states, the connection banner, action notices).
 * Here the web client says them in the UI language: notices through the SDK's extension
 * point (`registerKindText`), the rest from the structured fields next to them.
 */
import { messagePreview, registerKindText, type ConnectionState, type ConversationRow, type LocalMessage, type NameOf } from '@magpie/sdk';
import { currentLanguage, i18next, t } from './index.ts';
import type { Messages } from './en.ts';

const capital = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);

/** The SDK's nameOf calls the signed-in user "you" (lower case) in notices. */
function name(nameOf: NameOf, id: unknown, fallback: 'someone' | 'Someone'): string {
  if (typeof id !== 'string') return fallback === 'Someone' ? t('app.someone') : t('app.someoneLower');
  const n = nameOf(id);
  return n === 'you' ? t('app.youLower') : n;
}

function names(nameOf: NameOf, ids: unknown): string {
  return Array.isArray(ids)
    ? ids
        .filter((x): x is string => typeof x === 'string')
        .map((id) => name(nameOf, id, 'someone'))
        .join(t('notice.listSeparator'))
    : '';
}

/** The users of a change notice: the first few by name and how many more (`count` is the total). */
function changeNames(nameOf: NameOf, ids: unknown, count: unknown): string {
  const shown = names(nameOf, ids);
  const rest = typeof count === 'number' ? count - (Array.isArray(ids) ? ids.length : 0) : 0;
  return rest > 0 ? t('notice.andOthers', { users: shown, count: rest }) : shown;
}

/** A group notice (`system` message body `{event, data}`) in the UI language. */
export function noticeText(body: unknown, nameOf: NameOf): string {
  const b = (body ?? {}) as { event?: string; data?: Record<string, unknown> };
  const d = b.data ?? {};
  const by = name(nameOf, d.by, 'Someone');
  const user = name(nameOf, d.user, 'someone');
  const users = changeNames(nameOf, d.users, d.count);
  let s: string;
  switch (b.event) {
    case 'group_created':
      s = t('notice.created', { owner: name(nameOf, d.owner, 'Someone'), name: String(d.name ?? '') });
      break;
    case 'members_invited':
      s = t('notice.invited', { by, users });
      break;
    case 'member_joined':
      s = t('notice.joined', { users });
      break;
    case 'member_approved':
      s = t('notice.approved', { users, by });
      break;
    case 'members_removed':
      s = t('notice.removed', { by, users });
      break;
    case 'member_left':
      s = t('notice.left', { user });
      break;
    case 'role_changed':
      s = t(d.role === 'admin' ? 'notice.madeAdmin' : 'notice.madeMember', { by, user });
      break;
    case 'owner_changed':
      s = t('notice.owner', { user: name(nameOf, d.to, 'Someone') });
      break;
    case 'member_muted':
      s = t('notice.muted', { by, user });
      break;
    case 'member_unmuted':
      s = t('notice.unmuted', { by, user });
      break;
    case 'group_updated': {
      const parts: string[] = [];
      if (typeof d.name === 'string') parts.push(t('notice.renamed', { name: d.name }));
      if (typeof d.announcement === 'string') parts.push(d.announcement ? t('notice.announcedText', { text: d.announcement.length > 120 ? `${d.announcement.slice(0, 119)}…` : d.announcement }) : t('notice.announcementCleared'));
      if (typeof d.muteAll === 'boolean') parts.push(d.muteAll ? t('notice.mutedAll') : t('notice.unmutedAll'));
      if (typeof d.joinPolicy === 'string') parts.push(d.joinPolicy === 'open' ? t('notice.opened') : t('notice.approval'));
      if (typeof d.avatar === 'string') parts.push(t('notice.picture'));
      s = t('notice.updated', { by, changes: parts.length ? parts.join(t('notice.changesSeparator')) : t('notice.updatedGroup') });
      break;
    }
    case 'group_dismissed':
      s = t('notice.dismissed', { by });
      break;
    case 'subject':
      s = t('notice.subject', { title: String(d.title ?? '') });
      break;
    default:
      s = t('notice.generic');
  }
  return capital(s);
}

registerKindText('system', noticeText);
registerKindText('redpacket', (body) => {
  const g = (body as { greeting?: unknown } | null)?.greeting;
  return typeof g === 'string' && g ? t('kinds.redpacket', { greeting: g }) : t('kinds.redpacketEmpty');
});
registerKindText('redpacket.status', () => t('kinds.redpacketFinished'));
// Media kinds: "[Image]", "[Voice] 0:12", "[File] a.pdf" — "[图片]", "[语音] 0:12" in Chinese.
// Recalled messages and chat-history cards (list previews) read in the UI language too.
for (const kind of ['image', 'video', 'voice', 'file', 'location', 'card', 'recalled', 'bundle']) registerKindText(kind, (body) => messagePreview(kind, body, currentLanguage()));

/** The state line of an own message ("Sent", "Delivered to 2"); '' for others' messages. */
export function statusText(m: Pick<LocalMessage, 'own' | 'state' | 'deliveredCount'>): string {
  if (!m.own) return '';
  switch (m.state) {
    case 'sending':
      return t('status.sending');
    case 'sent':
      return t('status.sent');
    case 'delivered':
      return m.deliveredCount !== null && m.deliveredCount >= 1 ? t('status.deliveredTo', { count: m.deliveredCount }) : t('status.delivered');
    case 'failed':
      return t('status.failed');
    default:
      return '';
  }
}

/** The connection banner's sentence (with `offlineReason` where the SDK gives one); in English, the SDK's own. */
export function connectionText(c: Pick<ConnectionState, 'status' | 'received' | 'network' | 'label'> & { offlineReason?: string | null }): string {
  if (currentLanguage() === 'en' && c.label) return c.label;
  switch (c.offlineReason) {
    case 'no_network':
      return t('conn.noNetwork');
    case 'server_unreachable':
      return t('conn.serverUnreachable');
    case 'connection_lost':
      return t('conn.connectionLost');
  }
  switch (c.status) {
    case 'connecting':
      return t('conn.connecting');
    case 'syncing':
      return c.received > 0 ? t('conn.syncingCount', { count: c.received }) : t('conn.syncing');
    case 'online':
      return t('conn.connected');
    case 'waiting_for_network':
      return t('conn.waitingForNetwork');
    case 'signed_out':
      return t('conn.signedOut');
    default:
      return c.network ? t('conn.offline') : t('conn.waitingForNetwork');
  }
}

/**
 * When the client retries by itself, for the banner: "retrying in 12 s" (`nextRetryAt` is epoch
 * ms; `now` the same clock). Empty when no attempt is scheduled.
 */
export function retryCountdownText(nextRetryAt: number | null, now: number): string {
  if (nextRetryAt === null) return '';
  const seconds = Math.ceil((nextRetryAt - now) / 1000);
  return seconds > 0 ? t('conn.retryIn', { seconds }) : t('conn.retryingNow');
}

/** The banner's first half without the SDK's "— retrying" tail, which the countdown replaces. */
export function offlineReasonText(reason: string): string {
  switch (reason) {
    case 'no_network':
      return t('conn.noNetworkShort');
    case 'server_unreachable':
      return t('conn.serverUnreachableShort');
    default:
      return t('conn.connectionLostShort');
  }
}

type ComposeKey = `compose.${keyof Messages['compose']}`;

const EXACT: Record<string, ComposeKey> = {
  'This group was dismissed. It is read-only.': 'compose.dismissed',
  'You are not a member of this group.': 'compose.notMember',
  'Only admins can send messages in this group.': 'compose.adminsOnly',
  'Not sent: you could not send messages here.': 'compose.failMutedNow',
  'Not sent: you could not send messages here then.': 'compose.failMutedThen',
  'Not sent: the message is too long.': 'compose.failTooLong',
  'Not sent: you cannot send messages in this chat.': 'compose.failForbidden',
  'Not sent: the group is full.': 'compose.failFull',
  'Not sent: the server did not accept this message.': 'compose.failInvalid',
  'Not sent: too many messages at once.': 'compose.failRate',
  'Not sent: no connection to the server.': 'compose.failNetwork',
  'Not sent.': 'compose.failOther',
};

const UNITS: Record<string, string> = { min: 'minute', h: 'hour', days: 'day' };

/** "12 min" / "2 h" / "3 days" (the SDK's durationText) as the UI language says it. */
function durationOf(n: string, unit: string): string {
  return new Intl.NumberFormat(currentLanguage(), { style: 'unit', unit: UNITS[unit] ?? 'minute', unitDisplay: 'long' }).format(Number(n));
}

/**
 * A sentence a view model made in English (an action's notice, why the composer is off, why
 * a message failed) in the UI language; anything unknown (a server's own error message)
 * is shown as it is.
 */
export function sdkText(s: string): string;
export function sdkText(s: string | null): string | null;
export function sdkText(s: string | null): string | null {
  // The SDK's sentences are English already (and may be newer than this table).
  if (!s || currentLanguage() === 'en') return s;
  const exact = EXACT[s];
  if (exact) return t(exact);
  let m = /^You are muted for (\d+) (min|h|days)\.$/.exec(s);
  if (m) return t('compose.mutedFor', { duration: durationOf(m[1]!, m[2]!) });
  m = /^This message is too long to send \((\d+) KB; the limit is (\d+) KB\)\.$/.exec(s);
  if (m) return t('compose.tooLong', { size: m[1], limit: m[2] });
  m = /^The file is too large \((.+); at most (.+)\)\.$/.exec(s);
  if (m) return t('media.tooLarge', { size: m[1], max: m[2] });
  m = /^Invitation waits for approval \((\d+)\)$/.exec(s);
  if (m) return t('vm.invitationPending', { count: Number(m[1]) });
  const key = `vm.${s}`;
  return i18next.exists(key) ? t(key as 'vm.Saved') : s;
}

/** The SDK names the signed-in user "You" in search hits and sender names. */
export function youText(name: string): string {
  return name === 'You' ? t('app.you') : name;
}

/** A conversation row's preview: the draft, "You: …" in groups, or the SDK's text (notices in the UI language). */
export function previewText(r: Pick<ConversationRow, 'draft' | 'preview' | 'kind'>): string {
  if (r.draft) return t('list.draft', { text: r.draft });
  if (r.kind === 'direct') return r.preview;
  if (r.preview.startsWith('You: ')) return t('list.ownPrefix', { text: r.preview.slice(5) });
  // Others' group messages read "Name: text" (the SDK's); other languages punctuate it their way.
  const i = r.preview.indexOf(': ');
  if (currentLanguage() !== 'en' && i > 0) return t('list.senderPrefix', { name: r.preview.slice(0, i), text: r.preview.slice(i + 2) });
  return r.preview;
}
