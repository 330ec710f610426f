import type { Profile, ProfileSummary, RelationChange, RelationChangeKind, RelationState } from '@magpie/protocol';
import type { PairState } from './relations.ts';

/** Row shapes of the social store (both engines), and their conversions. */

export interface ProfileRow {
  id: string;
  username: string;
  nickname: string;
  avatar: string | null;
  extra?: string | null;
}

export const summaryFromRow = (r: ProfileRow): ProfileSummary => ({ id: r.id, username: r.username, nickname: r.nickname, avatar: r.avatar ?? null });

export function profileFromRow(r: ProfileRow): Profile {
  let extra: Record<string, unknown> = {};
  if (r.extra) {
    const parsed = JSON.parse(r.extra) as unknown;
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) extra = parsed as Record<string, unknown>;
  }
  return { ...summaryFromRow(r), extra };
}

export interface ChangeRow {
  version: number | string;
  peer_id: string;
  kind: RelationChangeKind;
  state: RelationState;
  greeting: string | null;
  at: number | string;
}

export function changeFromRow(r: ChangeRow): RelationChange {
  const c: RelationChange = { version: Number(r.version), peer: r.peer_id, kind: r.kind, state: r.state, time: Number(r.at) };
  if (r.greeting !== null) c.greeting = r.greeting;
  return c;
}

/** One row: (peer_exists, friends, out_greeting, in_greeting, blocking, blocked_by) → PairState. */
export interface PairRow {
  peer_exists: unknown;
  peer_deleted: unknown;
  friends: unknown;
  out_greeting: string | null;
  in_greeting: string | null;
  blocking: unknown;
  blocked_by: unknown;
}

/** SQLite answers EXISTS with 0/1, PostgreSQL with a boolean. */
export const bool = (x: unknown): boolean => Boolean(Number(x));

export function pairFromRow(r: PairRow): PairState {
  return {
    peerExists: bool(r.peer_exists),
    peerDeleted: bool(r.peer_deleted),
    friends: bool(r.friends),
    outgoing: r.out_greeting === null ? null : { greeting: r.out_greeting },
    incoming: r.in_greeting === null ? null : { greeting: r.in_greeting },
    blocking: bool(r.blocking),
    blockedBy: bool(r.blocked_by),
  };
}

export interface EntryRow extends ProfileRow {
  at: number | string;
  greeting?: string;
}

/** Trim policy of the change log: once more than capacity + slack changes are held, drop down to `capacity`. */
export function trimFloor(version: number, floor: number, capacity: number): number | null {
  const slack = Math.max(1, Math.floor(capacity / 8));
  return version - floor > capacity + slack ? version - capacity : null;
}
