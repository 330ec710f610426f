import type { BlockEntry, FriendEntry, FriendRequestEntry, Profile, ProfileSummary, RelationChange, RelationState } from '@magpie/protocol';
import type { RelationAction } from './relations.ts';

export type { RelationAction } from './relations.ts';

/** One change for one user, as returned by `SocialStore.apply` (already durable, with its version). */
export interface UserChange {
  userId: string;
  change: RelationChange;
}

export type ApplyOutcome =
  | {
      ok: true;
      /** The actor's relation towards the peer after the action. */
      state: RelationState;
      /** The actor's relation version after the action. */
      version: number;
      /** Nothing changed (a repeated request, block, unblock or accept). */
      duplicate: boolean;
      /** One entry per user whose relation changed, each with the version it took. Empty when `duplicate`. */
      changes: UserChange[];
    }
  | { ok: false; error: 'not_found' | 'forbidden' | 'conflict'; reason: string };

export interface ProfilePatch {
  nickname?: string;
  /** null clears the avatar. */
  avatar?: string | null;
  /** Serialized JSON object (the service checks type and size). */
  extraJson?: string;
}

export interface ListPage<T> {
  items: T[];
  /** The user's relation version, read before the items. */
  version: number;
}

export interface DirectCheck {
  /** The recipient blocked the sender. */
  blockedByRecipient: boolean;
  /** The sender blocked the recipient. */
  blockedBySender: boolean;
  friends: boolean;
}

export interface NickSearchRow extends ProfileSummary {
  /** The sort key (the database's lower(nickname)); with `id`, the keyset cursor. */
  key: string;
}

/**
 * Durable state of the social graph: profiles (avatar, extra; the nickname lives in
 * `users`), friendships, pending friend requests, blocks, and a per-user relation change
 * log. One implementation, `SqlSocialStore` on the server's database (db/engine.ts, SQLite
 * or PostgreSQL); `test/social-store-contract.ts` runs it on both engines.
 *
 * Shared tables: it READS the `users` table of the messaging Store (to resolve users and
 * for search), UPDATES only `users.nickname` (profile edits), and adds one index to it,
 * `social_users_nick` on (lower(nickname), id), which serves nickname-prefix search.
 * Everything else lives in `social_*` tables (migration 0002) that only this store touches.
 *
 * Guarantees:
 * - A resolved promise means durable (SQLite synchronous=FULL by default, PostgreSQL commit).
 * - `apply` is one transaction: the decision (see `planAction` in relations.ts, the one
 *   decision table both implementations use), the writes and the change-log entries commit
 *   together or not at all. A refusal (`ok: false`) writes nothing.
 * - Actions on the same pair of users are serialized (SQLite: one writer; PostgreSQL: a
 *   transaction-scoped advisory lock per pair), so two users requesting each other at the same
 *   time become friends instead of holding two opposite requests.
 * - Invariants per pair: friendship is symmetric; at most one pending request between the
 *   two (a request to someone who requested you accepts theirs); no request and no
 *   friendship while either side blocks the other.
 * - Each user's relation version is 1, 2, 3, … with no gaps and no reuse; every change of
 *   that user's relations takes exactly one version, inside the transaction that makes it.
 *   `changesSince(u, v)` returns exactly the changes with version > v, oldest first.
 * - The log keeps at least the newest `changeLogCapacity` changes per user; `floor` is the
 *   highest version trimmed away (0 when nothing was), so `since < floor` cannot be served
 *   incrementally.
 * - List reads return the version read BEFORE the items: a client that loads the lists and
 *   then applies `changesSince(version)` in order ends at the current state.
 */
export interface SocialStore {
  readonly kind: 'sqlite' | 'postgres';
  /** Create the nickname index on `users` (idempotent; the tables come from migration 0002). The `users` table must exist. */
  migrate(): Promise<void>;
  close(): Promise<void>;

  /** Profile of a user; null when there is no such user. */
  getProfile(userId: string): Promise<Profile | null>;
  /** Update own profile in one transaction; null when there is no such user. */
  updateProfile(userId: string, patch: ProfilePatch, now: number): Promise<Profile | null>;
  /** Users whose id or username equals `q` (at most two, id match first). */
  findExact(q: string): Promise<ProfileSummary[]>;
  /**
   * Users whose lower(nickname) starts with lower(`prefix`) (the database's lower(): ASCII on
   * SQLite, the locale's on PostgreSQL), ordered by (lower(nickname), id), after the keyset
   * cursor `after` when given. Served by the `social_users_nick` index.
   */
  searchNickname(prefix: string, after: { key: string; id: string } | null, limit: number): Promise<NickSearchRow[]>;

  /** The user's relation towards `peer`. */
  relationOf(userId: string, peer: string): Promise<RelationState>;
  /** Blocks and friendship between a sender and a recipient (one read, for the direct-message policy). */
  directCheck(sender: string, recipient: string): Promise<DirectCheck>;
  /** Perform one relation action of `actor` towards `peer` atomically; see the guarantees above. */
  apply(actor: string, peer: string, action: RelationAction, now: number): Promise<ApplyOutcome>;

  /** Friends of `userId` ordered by user id, after `after`. */
  listFriends(userId: string, after: string | null, limit: number): Promise<ListPage<FriendEntry>>;
  /** Pending requests to (`incoming`) or from (`outgoing`) `userId`, ordered by the other user's id, after `after`. */
  listRequests(userId: string, direction: 'incoming' | 'outgoing', after: string | null, limit: number): Promise<ListPage<FriendRequestEntry>>;
  /** Users `userId` blocked, ordered by user id, after `after`. */
  listBlocks(userId: string, after: string | null, limit: number): Promise<ListPage<BlockEntry>>;

  /** The user's relation version, the trimmed floor, and up to `limit` changes with version > `since`, oldest first. */
  changesSince(userId: string, since: number, limit: number): Promise<{ version: number; floor: number; changes: RelationChange[] }>;
}

/** Default number of relation changes kept per user. */
export const DEFAULT_CHANGE_LOG_CAPACITY = 1000;
