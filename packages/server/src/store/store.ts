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
  /**
   * Whether the account row exists (deleted accounts included, as `getUser` finds them): the
   * send path's check of a direct message's recipient. Joins the batched reads of the next
   * event-loop turn (one read transaction for many; no row object).
   */
  userExists(id: string): Promise<boolean>;
  /** By login name: matched on usernameKey(username) (NFKC + case fold), so `Alice` finds `alice`. */
  getUserByUsername(username: string): Promise<UserRecord | null>;
  /** Replace the password hash; false when the user does not exist or is deleted. */
  setPasswordHash(userId: string, passwordHash: string): Promise<boolean>;
  /** Operator switch: `at` disables (login and connections refused), null enables. Null when the user does not exist. */
  setUserDisabled(userId: string, at: number | null): Promise<UserRecord | null>;
  /**
   * Turn the account into a tombstone: deleted_at set, password hash cleared (no login),
   * nickname replaced. The row stays so messages keep their sender and the username stays
   * reserved. Null when the user does not exist or was deleted already.
   */
  markUserDeleted(userId: string, at: number, tombstoneNickname: string): Promise<UserRecord | null>;
  /** Which of these user ids exist and are not deleted (a deleted account cannot join a group). */
  existingUsers(ids: string[]): Promise<Set<string>>;

  // --- sessions (one per device login) ---
  createSession(session: NewSession): Promise<void>;
  /** The live (not revoked, not expired at `now`) session for this token hash. */
  getSession(tokenHash: string, now: number): Promise<SessionRecord | null>;
  /**
   * `getSession` and its user's state in one read (a WebSocket `hello` authenticates with it):
   * `user` is null when the user row is gone.
   */
  getSessionAndUser(tokenHash: string, now: number): Promise<{ session: SessionRecord; user: { deletedAt: number | null; disabledAt: number | null } | null } | null>;
  /**
   * What a WebSocket `hello` reads once its connection is registered, in one statement: the
   * inbox state (`inboxState`), the retention purge mark (`inboxPurgedSeq`), the session's
   * expiry (null when no longer live, as `getSession`), whether the user is in any super group
   * (`superGroupsOf` non-empty) and whether the device has pending instructions (the
   * instruction store's `pendingFor` non-empty; same database, migration 0001).
   */
  helloState(userId: string, deviceId: string, tokenHash: string, now: number): Promise<HelloState>;
  listSessions(userId: string, now: number): Promise<SessionRecord[]>;
  /** Whether this device ever had a session of this user (live, expired or revoked): the login backoff trusts it. */
  knownDevice(userId: string, deviceId: string): Promise<boolean>;
  /** Revoke sessions by token hash; returns those that were live. */
  revokeSessions(tokenHashes: string[], now: number): Promise<SessionRecord[]>;
  /** Record the highest inboxSeq a device has stored (cumulative ACK); never moves back. */
  setDeviceAck(userId: string, deviceId: string, inboxSeq: number): Promise<void>;
  /**
   * Many cumulative device ACKs in one transaction: `setDeviceAck` then `markDelivered` for
   * each of its segments (after moving the delivered mark over the items a segment skips,
   * without raising anything for them). Returns the delivered updates with the acknowledging user as `by`, and the new
   * delivered counts of the normal-group messages the ACKs covered for the first time.
   */
  recordAcks(acks: DeviceAck[]): Promise<AckOutcome>;

  // --- messages ---
  /** Store a batch of messages in one transaction; see the interface guarantees. */
  appendMessages(batch: AppendRequest[]): Promise<AppendOutcome[]>;
  /** The user's inbox state: latest inboxSeq and the lowest one still in the ring. */
  inboxState(userId: string): Promise<{ latest: number; ringStart: number }>;
  /**
   * Inbox items with inboxSeq > after, oldest first, at most `limit`. The user's own messages
   * in group conversations (`g:`) carry `deliveredCount`.
   */
  readInbox(userId: string, after: number, limit: number): Promise<InboxItem[]>;
  /** The highest inboxSeq of this user whose pointer the retention purge removed (0 when none): the inbox is gap-free only above it. */
  inboxPurgedSeq(userId: string): Promise<number>;
  /** Every message of `conv` with seq ≤ this was deleted by the retention purge (0 when none). */
  purgedSeq(conv: string): Promise<number>;
  /** A message by its id (operator lookups), or null. */
  messageById(id: string): Promise<Message | null>;
  /**
   * Messages of a conversation: newest first below `before`, or oldest first above `after`.
   * With `viewer`, the viewer's own messages in a group conversation (`g:`) carry `deliveredCount`.
   */
  readHistory(conv: string, q: { before?: number; after?: number; limit: number; viewer?: string }): Promise<Message[]>;
  getConversation(conv: string): Promise<ConversationRecord | null>;
  /** Whether `userId` is an active member; joins the batched reads of the next event-loop turn (one read transaction for many). */
  isMember(conv: string, userId: string): Promise<boolean>;
  /** The same answer as `isMember`, read at once (one statement, no wait for the next turn): for paths that must not spend a turn. */
  isMemberNow(conv: string, userId: string): Promise<boolean>;
  members(conv: string): Promise<string[]>;

  // --- conversation list (per-user, versioned) ---
  /** Entries whose version > since, in version order, at most `limit`; `version` is the user's current list version. */
  conversationChanges(userId: string, since: number, limit: number): Promise<{ version: number; entries: ConvEntry[] }>;
  getEntry(userId: string, conv: string): Promise<ConvEntry | null>;
  /**
   * Message `seq` of `conv` was rewritten (recalled): bump the list version of every entry
   * (direct chats and normal groups) whose last message it is, so devices re-sync the
   * preview. Returns the users whose entry moved. Super-group entries carry no per-message
   * version; their devices apply the recall event itself.
   */
  touchLastMessage(conv: string, seq: number): Promise<string[]>;
  /** Mark read up to seq (clamped to the conversation's last seq). Never moves read state back. */
  markRead(userId: string, conv: string, seq: number): Promise<ConvEntry>;
  updateEntry(userId: string, conv: string, patch: EntryPatch): Promise<ConvEntry>;
  /**
   * A device of `userId` acknowledged its inbox up to `inboxSeq`. The first such ACK per
   * message moves the recipient's delivered mark; returns, per conversation and sender,
   * the highest newly delivered seq (the sender's entry `deliveredSeq` moves with it).
   * In the same transaction, every non-system message of another member in a group
   * conversation that the newly covered inbox range points at gets its delivered count
   * raised by one (set-based: `recordAcks` raises the counts of all its ranges with one
   * statement and reports the new counts). The mark never moves back, so each recipient is
   * counted at most once per message.
   */
  markDelivered(userId: string, inboxSeq: number): Promise<DeliveredUpdate[]>;

  // --- groups and super groups ---
  // Membership changes are written by `appendMessages` as the `effect` of a system notice,
  // so a change and its notice commit together and take their place in seq order.
  getGroup(conv: string): Promise<GroupRecord | null>;
  /** Member row of an active member, or null. */
  getMember(conv: string, userId: string): Promise<MemberRecord | null>;
  /** Active members ordered by user id, after `after` (exclusive), at most `limit`: paging without loading the whole list. */
  listMembers(conv: string, after: string, limit: number): Promise<MemberRecord[]>;
  /** Groups whose name starts with `prefix` (case-insensitive) or whose id equals it; not dismissed. */
  searchGroups(prefix: string, limit: number): Promise<GroupRecord[]>;
  /** The super groups the user belongs to, with their last seq (for sync by conversation seq). */
  superGroupsOf(userId: string): Promise<{ conv: string; lastSeq: number }[]>;
  /** For a member who left or was removed: the last seq they may read; null when never a member. */
  formerMemberLimit(conv: string, userId: string): Promise<number | null>;
  /** The user's membership row in `conv`: when they (last) joined, and for a former member the last seq they may read; null if never a member. */
  membership(conv: string, userId: string): Promise<{ joinedSeq: number; leftSeq: number | null } | null>;
  /** Pending join requests (applications and invitations needing approval) of a group. */
  listJoinRequests(conv: string): Promise<JoinRequestRecord[]>;
  /** Create or refresh a pending join request. */
  putJoinRequest(req: JoinRequestRecord): Promise<void>;
  /** Remove a pending request; returns it, or null when there was none. */
  takeJoinRequest(conv: string, userId: string): Promise<JoinRequestRecord | null>;
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
  /** When the operator disabled the account; null: enabled. */
  disabledAt: number | null;
  /** When the owner deleted the account; null: live. */
  deletedAt: number | null;
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

/** See Store.helloState. */
export interface HelloState {
  latest: number;
  ringStart: number;
  purgedInboxSeq: number;
  sessionExpiresAt: number | null;
  inSuperGroups: boolean;
  pendingInstructions: boolean;
}

export interface ConversationRecord {
  id: string;
  kind: ConversationKind;
  lastSeq: number;
  createdAt: number;
  /** Seq of the last membership change (see AppendOutcome.epoch); 0: none recorded. */
  memberEpoch?: number;
}

export interface AppendRequest {
  /** The author; for a system notice with an effect, the acting user (checked by the effect). */
  sender: string;
  clientMsgId: string;
  conv: string;
  /** For a direct conversation that may not exist yet: its two members. */
  directMembers?: [string, string];
  kind: string;
  body: unknown;
  /** JSON.stringify(body), when the caller made it already (the send path serializes a body once); must match `body`. */
  bodyJson?: string;
  time: number;
  /** Generated by the caller; used only when the message is new. */
  id: string;
  /** A membership/group change applied in the same transaction, before the message is stored (see GroupEffect). */
  effect?: GroupEffect;
  /** Users mentioned by this message (their entries count it in `mentions`); 'all' = every member. */
  mentions?: string[] | 'all';
}

/**
 * A group change committed together with its system notice. The store validates the
 * actor (`AppendRequest.sender`) against `canActOn` rules in store/group-rules.ts inside
 * the transaction, so a concurrent role change cannot slip through.
 *
 * Fan-out of the notice: `create`/`add` reach the new members too; `remove`/`leave` reach
 * the removed member too (then they are gone); `dismiss` reaches everyone, then the group is
 * read-only. A normal group whose active member count passes `superThreshold` becomes a
 * super group in the same transaction: from the next message on it gets no inbox pointers.
 */
export type GroupEffect =
  | { op: 'create'; group: NewGroup; members: string[] }
  | { op: 'add'; users: string[]; maxMembers: number; superThreshold: number }
  | { op: 'remove'; users: string[] }
  | { op: 'leave' }
  | { op: 'role'; user: string; role: 'admin' | 'member' }
  | { op: 'transfer'; to: string }
  | { op: 'mute'; user: string; until: number }
  | { op: 'update'; patch: GroupPatch }
  | { op: 'dismiss' };

export type GroupRole = 'owner' | 'admin' | 'member';

export interface NewGroup {
  name: string;
  avatar: string;
  /** 'open': anyone may join; 'approval': owner/admin approve applications. */
  joinPolicy: 'open' | 'approval';
  /** When true, invitations by plain members need owner/admin approval. */
  inviteNeedsApproval: boolean;
  /** What members may read; see `HistoryVisibility`. */
  historyVisibility: HistoryVisibility;
  maxMembers: number;
  superThreshold: number;
}

/**
 * What a group's members may read: 'since_join' (default) — from the notice of their (latest)
 * join on, so a new member does not read what was said before, and a member who is added
 * again does not read what was posted while they were away; 'all' — the whole history.
 */
export type HistoryVisibility = 'since_join' | 'all';

export interface GroupPatch {
  name?: string;
  historyVisibility?: HistoryVisibility;
  avatar?: string;
  announcement?: string;
  joinPolicy?: 'open' | 'approval';
  inviteNeedsApproval?: boolean;
  muteAll?: boolean;
}

export interface GroupRecord {
  conv: string;
  kind: 'group' | 'super';
  name: string;
  avatar: string;
  announcement: string;
  owner: string;
  joinPolicy: 'open' | 'approval';
  inviteNeedsApproval: boolean;
  muteAll: boolean;
  historyVisibility: HistoryVisibility;
  dismissed: boolean;
  memberCount: number;
  maxMembers: number;
  lastSeq: number;
  createdAt: number;
}

export interface MemberRecord {
  conv: string;
  userId: string;
  role: GroupRole;
  /** Muted until this time (ms); 0 = not muted. */
  mutedUntil: number;
  joinedAt: number;
  /** The conversation seq when the member joined (their history starts after the notice). */
  joinedSeq: number;
}

export interface JoinRequestRecord {
  conv: string;
  userId: string;
  /** null: the user applied; otherwise the member who invited them. */
  inviter: string | null;
  message: string;
  createdAt: number;
}

export type AppendError = 'not_found' | 'forbidden' | 'muted' | 'full' | 'dismissed' | 'invalid';

export type AppendOutcome =
  | {
      ok: true;
      message: Message;
      duplicate: boolean;
      pointers: InboxPointer[];
      effect?: EffectResult;
      /**
       * New super-group messages: the seq of the conversation's last membership change at or
       * before this message (join, leave, removal, the switch), its "member epoch". A node
       * delivers the message live only once it knows the memberships up to that change.
       */
      epoch?: number;
    }
  | { ok: false; error: AppendError; reason?: string };

/** What an effect changed, for live updates. */
export interface EffectResult {
  /** Users who became members / stopped being members. */
  joined: string[];
  left: string[];
  /** The conversation is (now) a super group: live delivery is a per-conversation signal. */
  kind: 'group' | 'super';
  /** It switched from normal to super group in this transaction. */
  becameSuper: boolean;
}

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

/** A group message's delivered count after an ACK flush raised it. */
export interface DeliveredCount {
  conv: string;
  seq: number;
  /** The message's sender (whose devices are told). */
  sender: string;
  /** Recipients (other members) whose device stored it. */
  count: number;
}

export interface AckOutcome {
  delivered: (DeliveredUpdate & { by: string })[];
  /**
   * The messages whose count the flush raised, each once with its count after the flush
   * (SQLite: one statement grouping the flush's newly covered items per message; PostgreSQL:
   * every range of the flush in one statement). Consumers keep the highest count per message.
   */
  counts: DeliveredCount[];
}

export interface DeviceAck {
  userId: string;
  deviceId: string;
  /** The device's cursor (stored as its ACK). */
  inboxSeq: number;
  /**
   * What this ACK makes delivered, in ascending order: for each segment, the user's delivered
   * mark moves over inbox items up to `from` raising nothing (items the device never obtained:
   * a full sync's gap), then up to `to` raising delivered state. Default: one segment
   * `{from: 0, to: inboxSeq}`.
   */
  segments?: AckSegment[];
}

export interface AckSegment {
  from: number;
  to: number;
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
