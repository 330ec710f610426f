/** Shared data types of protocol v1. Times are milliseconds since the Unix epoch. */

export type ConversationKind = 'direct' | 'group' | 'super';

/** A stored message. `seq` is gap-free per conversation, starting at 1. */
export interface Message {
  id: string;
  conv: string;
  seq: number;
  sender: string;
  kind: string;
  body: unknown;
  time: number;
  clientMsgId: string;
  /**
   * Only in `sync` and `history` replies, only on the reader's own messages in group
   * conversations: how many other members have a device that stored it. Normal groups keep
   * it current; super groups do not count (messages sent after the switch read 0).
   */
  deliveredCount?: number;
}

/** One entry of a user's inbox ("domain ring"): the user's gap-free `inboxSeq` pointing at a message. */
export interface InboxItem {
  inboxSeq: number;
  message: Message;
}

/** A user's summary of one conversation (an entry of the conversation list). */
export interface ConvEntry {
  conv: string;
  kind: ConversationKind;
  /** For direct conversations: the other user. */
  peer: string | null;
  lastSeq: number;
  lastMessage: Message | null;
  readSeq: number;
  unread: number;
  /** Unread messages that mention this user (or @all), counted apart from `unread`. */
  mentions: number;
  /** Lowest seq above readSeq sent by someone else; null when nothing is unread. */
  oldestUnreadSeq: number | null;
  /** Highest seq of this user's own messages that a recipient's device has acknowledged. */
  deliveredSeq: number;
  pinned: boolean;
  muted: boolean;
  draft: string;
  /** Deleted for this user: hidden from the list until a new message arrives; history up to clearedSeq is hidden. */
  deleted: boolean;
  clearedSeq: number;
  /** The user's conversation-list version at this entry's last change. */
  version: number;
}

export interface PublicUser {
  id: string;
  username: string;
  nickname: string;
}

export const PLATFORMS = ['ios', 'android', 'web', 'desktop', 'other'] as const;
export type Platform = (typeof PLATFORMS)[number];
export const PLATFORM_CLASS: Record<Platform, 'mobile' | 'desktop' | 'web'> = {
  ios: 'mobile',
  android: 'mobile',
  web: 'web',
  desktop: 'desktop',
  other: 'desktop',
};

/** Client capabilities a device may announce in `hello`. */
export const CAPABILITIES = ['ack', 'batch'] as const;
