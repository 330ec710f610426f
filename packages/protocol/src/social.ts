import { z } from 'zod';

/**
 * The social graph on the wire: profiles, relations between two users, and the per-user
 * relation change log (see docs/protocol.md, "Social graph").
 *
 * A relation is seen from one user towards one peer and is always exactly one of
 * RELATION_STATES. Every change of it takes the user's next relation `version` (1, 2, 3, …,
 * gap-free per user); a client that holds version V gets exactly what changed after V from
 * `GET /api/relations/changes?since=V`, and the same changes live as `relation` frames.
 */

/** This user's relation towards a peer. `blocked` means this user blocked the peer; being blocked by the peer shows as `none`. */
export const RELATION_STATES = ['none', 'friend', 'outgoing', 'incoming', 'blocked'] as const;
export type RelationState = (typeof RELATION_STATES)[number];

/**
 * What happened, from the point of view of the user whose log it is:
 * - `request_sent` / `request_received`: a friend request is now pending (state outgoing / incoming)
 * - `request_accepted`: the peer accepted this user's request (state friend)
 * - `friend_added`: this user accepted the peer's request, or requested a peer who had requested them (state friend)
 * - `request_rejected`: a pending request between the two was rejected (state none), on both sides
 * - `request_cancelled`: a pending request was withdrawn by its sender (or dropped by a block) (state none), on both sides
 * - `friend_removed`: the friendship ended (removed by either side, or by a block) (state none)
 * - `blocked` / `unblocked`: this user blocked / unblocked the peer (state blocked / none)
 */
export const RELATION_CHANGE_KINDS = [
  'request_sent',
  'request_received',
  'request_accepted',
  'friend_added',
  'request_rejected',
  'request_cancelled',
  'friend_removed',
  'blocked',
  'unblocked',
] as const;
export type RelationChangeKind = (typeof RELATION_CHANGE_KINDS)[number];

const Version = z.number().int().min(1);

export const RelationChangeSchema = z.strictObject({
  /** The user's relation version this change took. */
  version: Version,
  peer: z.string(),
  kind: z.enum(RELATION_CHANGE_KINDS),
  /** The relation towards `peer` after this change: apply changes in order by setting it. */
  state: z.enum(RELATION_STATES),
  /** The request's greeting, on `request_sent` and `request_received`. */
  greeting: z.string().optional(),
  time: z.number().int(),
});
export type RelationChange = z.infer<typeof RelationChangeSchema>;

/** Public profile. `avatar` is an http(s) URL or null; `extra` is app-defined JSON (an object). */
export const ProfileSchema = z.strictObject({
  id: z.string(),
  username: z.string(),
  nickname: z.string(),
  avatar: z.string().nullable(),
  extra: z.record(z.string(), z.unknown()),
});
export type Profile = z.infer<typeof ProfileSchema>;

/** A profile in lists and search results (without `extra`). */
export const ProfileSummarySchema = ProfileSchema.omit({ extra: true });
export type ProfileSummary = z.infer<typeof ProfileSummarySchema>;

export const FriendEntrySchema = z.strictObject({ user: ProfileSummarySchema, since: z.number().int() });
export type FriendEntry = z.infer<typeof FriendEntrySchema>;

export const FriendRequestEntrySchema = z.strictObject({ user: ProfileSummarySchema, greeting: z.string(), time: z.number().int() });
export type FriendRequestEntry = z.infer<typeof FriendRequestEntrySchema>;

export const BlockEntrySchema = z.strictObject({ user: ProfileSummarySchema, since: z.number().int() });
export type BlockEntry = z.infer<typeof BlockEntrySchema>;

/** Answer of every relation mutation: the caller's relation towards the peer now and the caller's relation version. */
export const RelationResultSchema = z.strictObject({
  peer: z.string(),
  state: z.enum(RELATION_STATES),
  version: z.number().int().nonnegative(),
  /** True when nothing changed (a repeated request, block, unblock or accept). */
  duplicate: z.boolean(),
});
export type RelationResult = z.infer<typeof RelationResultSchema>;

/**
 * `GET /api/relations/changes?since=V`: changes after V, oldest first. `more`: ask again from
 * the last change's version. `full`: V is older than the retained log (or ahead of the
 * server): reload the lists (friends, requests, blocks) and continue from `version`.
 */
export const RelationChangesResultSchema = z.strictObject({
  version: z.number().int().nonnegative(),
  changes: z.array(RelationChangeSchema),
  more: z.boolean(),
  full: z.boolean(),
});
export type RelationChangesResult = z.infer<typeof RelationChangesResultSchema>;

/** A page of a relation list. `version` is the caller's relation version when the page was read; `next` the cursor of the next page or null. */
export const listPageSchema = <T extends z.ZodType>(item: T) =>
  z.strictObject({ items: z.array(item), next: z.string().nullable(), version: z.number().int().nonnegative() });

export const SearchResultSchema = z.strictObject({
  /** Users whose id or username equals the query exactly (first page only). */
  exact: z.array(ProfileSummarySchema),
  /** Users whose nickname starts with the query, case-insensitively, ordered by nickname. */
  results: z.array(ProfileSummarySchema),
  next: z.string().nullable(),
});
export type SearchResult = z.infer<typeof SearchResultSchema>;
