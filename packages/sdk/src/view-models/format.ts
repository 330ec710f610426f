/**
 * Text of messages and system notices, shared by the list preview and the chat. Plug-in
 * kinds (cards, orders, app-defined `custom` types) register their own preview text with
 * `registerKindText`, so the messaging core does not need to know them.
 */
import { messagePreview, type Message } from '@magpie/protocol';
import type { LocalMessage } from '../history.ts';

export type NameOf = (userId: string) => string;

type KindText = (body: unknown, nameOf: NameOf) => string;
const kindTexts = new Map<string, KindText>();

/** Register how a message kind reads in previews and notices (extension point). */
export function registerKindText(kind: string, fn: KindText): void {
  kindTexts.set(kind, fn);
}

const names = (ids: unknown, nameOf: NameOf): string => (Array.isArray(ids) ? ids.filter((x): x is string => typeof x === 'string').map(nameOf).join(', ') : '');

/**
 * The users of a change notice: it names the first few and says `count` (the whole list is
 * GroupsApi.changeUsers), e.g. "Bob, Cat, Dan and 997 others".
 */
function changeNames(ids: unknown, count: unknown, nameOf: NameOf): string {
  const shown = names(ids, nameOf);
  const named = Array.isArray(ids) ? ids.length : 0;
  const rest = typeof count === 'number' ? count - named : 0;
  if (rest <= 0) return shown;
  return `${shown} and ${rest} ${rest === 1 ? 'other' : 'others'}`;
}

/** The sentence for a `system` message body `{event, data}` (group notices); starts with a capital. */
export function systemNoticeText(body: unknown, nameOf: NameOf): string {
  const s = noticeText(body, nameOf);
  return s.charAt(0).toUpperCase() + s.slice(1);
}

function noticeText(body: unknown, nameOf: NameOf): string {
  const b = (body ?? {}) as { event?: string; data?: Record<string, unknown> };
  const d = b.data ?? {};
  const by = typeof d.by === 'string' ? nameOf(d.by) : 'Someone';
  const user = typeof d.user === 'string' ? nameOf(d.user) : 'someone';
  switch (b.event) {
    case 'group_created':
      return `${typeof d.owner === 'string' ? nameOf(d.owner) : 'Someone'} created the group “${String(d.name ?? '')}”`;
    case 'members_invited':
      return `${by} invited ${changeNames(d.users, d.count, nameOf)}`;
    case 'member_joined':
      return `${changeNames(d.users, d.count, nameOf)} joined`;
    case 'member_approved':
      return `${changeNames(d.users, d.count, nameOf)} joined (approved by ${by})`;
    case 'members_removed':
      return `${by} removed ${changeNames(d.users, d.count, nameOf)}`;
    case 'member_left':
      return `${user} left`;
    case 'role_changed':
      return d.role === 'admin' ? `${by} made ${user} an admin` : `${by} made ${user} a member`;
    case 'owner_changed':
      return `${typeof d.to === 'string' ? nameOf(d.to) : 'Someone'} is now the owner`;
    case 'member_muted':
      return `${by} muted ${user}`;
    case 'member_unmuted':
      return `${by} unmuted ${user}`;
    case 'group_updated': {
      const parts: string[] = [];
      if (typeof d.name === 'string') parts.push(`renamed the group to “${d.name}”`);
      if (typeof d.announcement === 'string') parts.push(d.announcement ? `updated the announcement: “${d.announcement.length > 120 ? `${d.announcement.slice(0, 119)}…` : d.announcement}”` : 'cleared the announcement');
      if (typeof d.muteAll === 'boolean') parts.push(d.muteAll ? 'muted everyone' : 'unmuted everyone');
      if (typeof d.joinPolicy === 'string') parts.push(d.joinPolicy === 'open' ? 'opened the group to everyone' : 'made joining need approval');
      if (typeof d.avatar === 'string') parts.push('changed the picture');
      return `${by} ${parts.length ? parts.join(', ') : 'updated the group'}`;
    }
    case 'group_dismissed':
      return `${by} dismissed the group`;
    case 'subject':
      return `About: ${String(d.title ?? '')}`;
    default:
      return 'Group updated';
  }
}

/** One line for a message: its text, a bracketed label for other kinds, or an unknown kind's `fallback`. */
export function messageText(m: Pick<Message, 'kind' | 'body'>, nameOf: NameOf): string {
  const custom = kindTexts.get(m.kind);
  if (custom) return custom(m.body, nameOf);
  const body = (m.body ?? {}) as Record<string, unknown>;
  switch (m.kind) {
    case 'text':
      return typeof body.text === 'string' ? body.text : '';
    case 'system':
      return systemNoticeText(m.body, nameOf);
    case 'redpacket':
      return `[Red packet] ${typeof body.greeting === 'string' ? body.greeting : ''}`.trim();
    case 'redpacket.status':
      return '[Red packet finished]';
    case 'custom':
      return `[${typeof body.type === 'string' ? body.type : 'Card'}]`;
    default:
      // Media kinds read "[Image]", "[Voice] 0:12", …; a kind this build does not know shows
      // the text fallback every newer kind carries.
      return messagePreview(m.kind, m.body);
  }
}

/** Local calendar day of a time, `YYYY-MM-DD` (day separators). */
/**
 * The status line of an own message: "Sending…", "Sent", "Delivered" (direct chats, or a
 * group message whose count is not known), "Delivered to N" (normal groups), "Not sent".
 * Others' messages: ''.
 */
export function messageStatusText(m: Pick<LocalMessage, 'own' | 'state' | 'deliveredCount'>): string {
  if (!m.own) return '';
  switch (m.state) {
    case 'sending':
      return 'Sending…';
    case 'sent':
      return 'Sent';
    case 'delivered':
      return m.deliveredCount !== null && m.deliveredCount >= 1 ? `Delivered to ${m.deliveredCount}` : 'Delivered';
    case 'failed':
      return 'Not sent';
    default:
      return '';
  }
}

export function dayKey(time: number): string {
  const d = new Date(time);
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
}

/** "Today", "Yesterday", or a date. */
export function dayLabel(time: number, now = Date.now()): string {
  const k = dayKey(time);
  if (k === dayKey(now)) return 'Today';
  if (k === dayKey(now - 86_400_000)) return 'Yesterday';
  const d = new Date(time);
  const sameYear = d.getFullYear() === new Date(now).getFullYear();
  return d.toLocaleDateString(undefined, sameYear ? { weekday: 'short', month: 'short', day: 'numeric' } : { year: 'numeric', month: 'short', day: 'numeric' });
}

/** Time of day for a message, or a short date for older list rows. */
export function shortTime(time: number, now = Date.now()): string {
  const d = new Date(time);
  if (dayKey(time) === dayKey(now)) return d.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' });
  if (dayKey(time) === dayKey(now - 86_400_000)) return 'Yesterday';
  return d.toLocaleDateString(undefined, { month: 'short', day: 'numeric' });
}

/** Id of the direct conversation between two users (`d:<min>:<max>`). */
export function directConvId(a: string, b: string): string {
  return a < b ? `d:${a}:${b}` : `d:${b}:${a}`;
}

/**
 * Mentions in a group message: `@all`, and `@name` for each member whose username or
 * nickname follows an `@`. Returns undefined when nobody is mentioned.
 */
export function findMentions(text: string, members: { id: string; username: string; nickname: string }[]): string[] | 'all' | undefined {
  if (/(^|\s)@all\b/i.test(text)) return 'all';
  const ids = new Set<string>();
  const lower = text.toLowerCase();
  for (const m of members) {
    for (const n of [m.username, m.nickname]) {
      if (!n) continue;
      const i = lower.indexOf(`@${n.toLowerCase()}`);
      if (i >= 0 && (i === 0 || /\s/.test(lower[i - 1]!))) ids.add(m.id);
    }
  }
  return ids.size ? [...ids].slice(0, 100) : undefined;
}
