import type { ConvEntry, Message, Platform } from '@magpie/protocol';
import type { GroupRecord, JoinRequestRecord, MemberRecord, SessionRecord, UserRecord } from './store.ts';

/** Row shapes shared by the SQL stores, and their conversion to Store types. */

export interface MessageRow {
  conv_id: string;
  seq: number | string;
  id: string;
  sender_id: string;
  client_msg_id: string;
  kind: string;
  body: string;
  time: number | string;
  sender_inbox_seq: number;
  delivered_count?: number | string;
}

export interface EntryRow {
  user_id: string;
  conv_id: string;
  conv_kind: ConvEntry['kind'];
  read_seq: number | string;
  unread: number | string;
  mentions: number | string;
  last_seq: number | string;
  delivered_seq: number | string;
  pinned: number;
  muted: number;
  draft: string;
  deleted: number;
  cleared_seq: number | string;
  version: number | string;
  oldest_unread: number | string | null;
  m_id: string | null;
  m_seq: number | string | null;
  m_sender_id: string;
  m_kind: string;
  m_body: string;
  m_time: number | string;
  m_client_msg_id: string;
}

/** A stored message; with `viewer`, the viewer's own group messages (not system notices) carry their delivered count. */
export function messageFromRow(r: MessageRow, viewer?: string): Message {
  const m: Message = {
    id: r.id,
    conv: r.conv_id,
    seq: Number(r.seq),
    sender: r.sender_id,
    kind: r.kind,
    body: JSON.parse(r.body) as unknown,
    time: Number(r.time),
    clientMsgId: r.client_msg_id,
  };
  if (viewer !== undefined && r.sender_id === viewer && r.kind !== 'system' && isGroupConv(r.conv_id)) m.deliveredCount = Number(r.delivered_count ?? 0);
  return m;
}

/** Group and super-group conversation ids start with `g:`. */
export function isGroupConv(conv: string): boolean {
  return conv.startsWith('g:');
}

export function peerOf(conv: string, userId: string): string | null {
  if (!conv.startsWith('d:')) return null;
  const [, a, b] = conv.split(':');
  return a === userId ? (b ?? null) : (a ?? null);
}

export function entryFromRow(r: EntryRow): ConvEntry {
  const lastMessage: Message | null =
    r.m_id === null
      ? null
      : {
          id: r.m_id,
          conv: r.conv_id,
          seq: Number(r.m_seq),
          sender: r.m_sender_id,
          kind: r.m_kind,
          body: JSON.parse(r.m_body) as unknown,
          time: Number(r.m_time),
          clientMsgId: r.m_client_msg_id,
        };
  return {
    conv: r.conv_id,
    kind: r.conv_kind,
    peer: peerOf(r.conv_id, r.user_id),
    lastSeq: Number(r.last_seq),
    lastMessage,
    readSeq: Number(r.read_seq),
    unread: Number(r.unread),
    mentions: Number(r.mentions),
    oldestUnreadSeq: r.oldest_unread === null ? null : Number(r.oldest_unread),
    deliveredSeq: Number(r.delivered_seq),
    pinned: Number(r.pinned) === 1,
    muted: Number(r.muted) === 1,
    draft: r.draft,
    deleted: Number(r.deleted) === 1,
    clearedSeq: Number(r.cleared_seq),
    version: Number(r.version),
  };
}

export function userFromRow(r: unknown): UserRecord {
  const u = r as {
    id: string;
    username: string;
    password_hash: string;
    nickname: string;
    created_at: number | string;
    inbox_seq: number | string;
    disabled_at?: number | string | null;
    deleted_at?: number | string | null;
  };
  return {
    id: u.id,
    username: u.username,
    passwordHash: u.password_hash,
    nickname: u.nickname,
    createdAt: Number(u.created_at),
    inboxSeq: Number(u.inbox_seq),
    disabledAt: u.disabled_at == null ? null : Number(u.disabled_at),
    deletedAt: u.deleted_at == null ? null : Number(u.deleted_at),
  };
}

export function sessionFromRow(r: unknown): SessionRecord {
  const s = r as {
    token_hash: string;
    user_id: string;
    device_id: string;
    platform: string;
    app_version: string;
    created_at: number | string;
    expires_at: number | string;
    revoked_at: number | string | null;
  };
  return {
    tokenHash: s.token_hash,
    userId: s.user_id,
    deviceId: s.device_id,
    platform: s.platform as Platform,
    appVersion: s.app_version,
    createdAt: Number(s.created_at),
    expiresAt: Number(s.expires_at),
    revokedAt: s.revoked_at === null ? null : Number(s.revoked_at),
  };
}

export interface GroupRow {
  conv_id: string;
  conv_kind: string;
  last_seq: number | string;
  name: string;
  avatar: string;
  announcement: string;
  owner: string;
  join_policy: string;
  invite_needs_approval: number;
  mute_all: number;
  history_visibility?: string;
  dismissed: number;
  member_count: number | string;
  max_members: number | string;
  created_at: number | string;
}

/** Groups joined with their conversation (kind, last_seq). */
export const GROUP_SELECT = 'SELECT g.*, c.kind AS conv_kind, c.last_seq FROM groups g JOIN conversations c ON c.id = g.conv_id';

export function groupFromRow(r: GroupRow): GroupRecord {
  return {
    conv: r.conv_id,
    kind: r.conv_kind === 'super' ? 'super' : 'group',
    name: r.name,
    avatar: r.avatar,
    announcement: r.announcement,
    owner: r.owner,
    joinPolicy: r.join_policy === 'open' ? 'open' : 'approval',
    inviteNeedsApproval: Number(r.invite_needs_approval) === 1,
    muteAll: Number(r.mute_all) === 1,
    historyVisibility: r.history_visibility === 'all' ? 'all' : 'since_join',
    dismissed: Number(r.dismissed) === 1,
    memberCount: Number(r.member_count),
    maxMembers: Number(r.max_members),
    lastSeq: Number(r.last_seq),
    createdAt: Number(r.created_at),
  };
}

export interface MemberRow {
  conv_id: string;
  user_id: string;
  role: string;
  muted_until: number | string;
  joined_at: number | string;
  joined_seq: number | string;
  left_seq: number | string | null;
}

export function memberFromRow(r: MemberRow): MemberRecord {
  return {
    conv: r.conv_id,
    userId: r.user_id,
    role: r.role === 'owner' || r.role === 'admin' ? r.role : 'member',
    mutedUntil: Number(r.muted_until),
    joinedAt: Number(r.joined_at),
    joinedSeq: Number(r.joined_seq),
  };
}

export interface JoinRequestRow {
  conv_id: string;
  user_id: string;
  inviter: string | null;
  message: string;
  created_at: number | string;
}

export function joinRequestFromRow(r: JoinRequestRow): JoinRequestRecord {
  return { conv: r.conv_id, userId: r.user_id, inviter: r.inviter, message: r.message, createdAt: Number(r.created_at) };
}

/** The stored message of a new append request at `seq`. */
export function toMessage(req: { id: string; conv: string; sender: string; kind: string; body: unknown; time: number; clientMsgId: string }, seq: number, body: unknown = req.body): Message {
  return { id: req.id, conv: req.conv, seq, sender: req.sender, kind: req.kind, body, time: req.time, clientMsgId: req.clientMsgId };
}

/** Search results: the exact-id match first, then the name matches (without it), at most `limit`. */
export function mergeSearch(exact: GroupRecord | null, byName: GroupRecord[], limit: number): GroupRecord[] {
  const out = exact ? [exact, ...byName.filter((g) => g.conv !== exact.conv)] : byName;
  return out.slice(0, limit);
}
