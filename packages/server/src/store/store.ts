import type { ConvEntry, ConversationKind, InboxItem, Message, Platform } from '@magpie/protocol';

/**
 * Store: the durable state of Magpie. Implementations: SQLite (embedded, default) and
 * PostgreSQL (cluster). Both pass test/store-contract.ts.
 *
 * Guarantees every implementation gives:
 * - A promise that resolves means the change is durable (committed; on SQLite with
 *   synchronous=FULL, fsynced). A rejected promise means nothing of that call was stored.
 * - Conversation `seq` and user `inboxSeq` are gap-free and never reused: each is assigned
 *   inside the same transaction that stores the message or the pointer.
 * - `appendMessages` is one transaction for the whole batch (group commit) and is
 *   idempotent per (sender, clientMsgId): a repeat returns the first message, `duplicate: true`.
 * - Only the types of this file cross the boundary; no driver type leaks.
 */
export interface Store {
  readonly kind: 'sqlite' | 'postgres';
  /** Create tables and indexes if missing. Safe to call on every start. */
  migrate(): Promise<void>;
  close(): Promise<void>;

  // --- accounts ---
  /** Throws StoreConflictError when the username is taken. */
  createUser(user: NewUser): Promise<UserRecord>;
  getUser(id: string): Promise<UserRecord | null>;
  getUserByUsername(username: string): Promise<UserRecord | null>;
  /** Which of these user ids exist. */
  existingUsers(ids: string[]): Promise<Set<string>>;

  // --- sessions (one per device login) ---
  createSession(session: NewSession): Promise<void>;
  /** The live (not revoked, not expired at `now`) session for this token hash. */
  getSession(tokenHash: string, now: number): Promise<SessionRecord | null>;
  listSessions(userId: string, now: number): Promise<SessionRecord[]>;
  /** Revoke sessions by token hash; returns those that were live. */
  revokeSessions(tokenHashes: string[], now: number): Promise<SessionRecord[]>;
  /** Record the highest inboxSeq a device has stored (cumulative ACK); never moves back. */
  setDeviceAck(userId: string, deviceId: string, inboxSeq: number): Promise<void>;
  /**
   * Many cumulative device ACKs in one transaction: `setDeviceAck` then `markDelivered` for
   * each. Returns the delivered updates with the acknowledging user as `by`.
   */
  recordAcks(acks: DeviceAck[]): Promise<(DeliveredUpdate & { by: string })[]>;

  // --- messages ---
  /** Store a batch of messages in one transaction; see the interface guarantees. */
  appendMessages(batch: AppendRequest[]): Promise<AppendOutcome[]>;
  /** The user's inbox state: latest inboxSeq and the lowest one still in the ring. */
  inboxState(userId: string): Promise<{ latest: number; ringStart: number }>;
  /** Inbox items with inboxSeq > after, oldest first, at most `limit`. */
  readInbox(userId: string, after: number, limit: number): Promise<InboxItem[]>;
  /** Messages of a conversation: newest first below `before`, or oldest first above `after`. */
  readHistory(conv: string, q: { before?: number; after?: number; limit: number }): Promise<Message[]>;
  getConversation(conv: string): Promise<ConversationRecord | null>;
  isMember(conv: string, userId: string): Promise<boolean>;
  members(conv: string): Promise<string[]>;

  // --- conversation list (per-user, versioned) ---
  /** Entries whose version > since, in version order, at most `limit`; `version` is the user's current list version. */
  conversationChanges(userId: string, since: number, limit: number): Promise<{ version: number; entries: ConvEntry[] }>;
  getEntry(userId: string, conv: string): Promise<ConvEntry | null>;
  /** Mark read up to seq (clamped to the conversation's last seq). Never moves read state back. */
  markRead(userId: string, conv: string, seq: number): Promise<ConvEntry>;
  updateEntry(userId: string, conv: string, patch: EntryPatch): Promise<ConvEntry>;
  /**
   * A device of `userId` acknowledged its inbox up to `inboxSeq`. The first such ACK per
   * message moves the recipient's delivered mark; returns, per conversation and sender,
   * the highest newly delivered seq (the sender's entry `deliveredSeq` moves with it).
   */
  markDelivered(userId: string, inboxSeq: number): Promise<DeliveredUpdate[]>;
}

export interface NewUser {
  id: string;
  username: string;
  passwordHash: string;
  nickname: string;
  createdAt: number;
}

export interface UserRecord extends NewUser {
  inboxSeq: number;
}

export interface NewSession {
  tokenHash: string;
  userId: string;
  deviceId: string;
  platform: Platform;
  appVersion: string;
  createdAt: number;
  expiresAt: number;
}

export interface SessionRecord extends NewSession {
  revokedAt: number | null;
}

export interface ConversationRecord {
  id: string;
  kind: ConversationKind;
  lastSeq: number;
  createdAt: number;
}

export interface AppendRequest {
  sender: string;
  clientMsgId: string;
  conv: string;
  /** For a direct conversation that may not exist yet: its two members. */
  directMembers?: [string, string];
  kind: string;
  body: unknown;
  time: number;
  /** Generated by the caller; used only when the message is new. */
  id: string;
}

export type AppendOutcome =
  | { ok: true; message: Message; duplicate: boolean; pointers: InboxPointer[] }
  | { ok: false; error: 'not_found' | 'forbidden' };

export interface InboxPointer {
  userId: string;
  inboxSeq: number;
}

export interface EntryPatch {
  pinned?: boolean;
  muted?: boolean;
  draft?: string;
  deleted?: true;
}

export interface DeliveredUpdate {
  conv: string;
  /** Highest seq of `sender`'s messages in `conv` now delivered to the acknowledging user. */
  seq: number;
  sender: string;
}

export interface DeviceAck {
  userId: string;
  deviceId: string;
  inboxSeq: number;
}

export class StoreConflictError extends Error {
  constructor(what: string) {
    super(`already exists: ${what}`);
    this.name = 'StoreConflictError';
  }
}

export class StoreNotFoundError extends Error {
  constructor(what: string) {
    super(`not found: ${what}`);
    this.name = 'StoreNotFoundError';
  }
}

export interface StoreOptions {
  /** Inbox ring capacity K: pointers kept per user. */
  ringCapacity: number;
}

export function directConversationId(a: string, b: string): string {
  return a < b ? `d:${a}:${b}` : `d:${b}:${a}`;
}
