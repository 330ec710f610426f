import type { RelationChangeKind, RelationState } from '@magpie/protocol';

/**
 * The decision table of the social graph, shared by every SocialStore implementation: given
 * what is stored between two users, what an action writes and which change each side sees.
 * Pure: no I/O. Stores read a `PairState` inside their transaction, call `planAction`, and
 * execute the plan in the same transaction.
 */

export type RelationAction =
  | { type: 'request'; greeting: string }
  | { type: 'accept' }
  | { type: 'reject' }
  | { type: 'cancel' }
  | { type: 'remove' }
  | { type: 'block' }
  | { type: 'unblock' };

/** What is stored between actor `a` and peer `b`. */
export interface PairState {
  peerExists: boolean;
  /** The peer deleted the account: nothing new may start (requests, accepts); cleanups still work. */
  peerDeleted: boolean;
  friends: boolean;
  /** Pending request a → b. */
  outgoing: { greeting: string } | null;
  /** Pending request b → a. */
  incoming: { greeting: string } | null;
  /** a blocked b. */
  blocking: boolean;
  /** b blocked a. */
  blockedBy: boolean;
}

export type PlanWrite =
  | { op: 'addFriends' }
  | { op: 'removeFriends' }
  | { op: 'putRequest'; from: 'actor' | 'peer'; greeting: string }
  | { op: 'deleteRequest'; from: 'actor' | 'peer' }
  | { op: 'putBlock' }
  | { op: 'deleteBlock' };

export interface PlannedChange {
  who: 'actor' | 'peer';
  kind: RelationChangeKind;
  state: RelationState;
  greeting?: string;
}

export type Plan =
  | { ok: true; state: RelationState; duplicate: boolean; writes: PlanWrite[]; changes: PlannedChange[] }
  | { ok: false; error: 'not_found' | 'forbidden' | 'conflict'; reason: string };

/** The relation of `a` towards `b` (being blocked by `b` is not revealed: it shows as `none`). */
export function stateOf(s: Omit<PairState, 'peerExists'>): RelationState {
  if (s.blocking) return 'blocked';
  if (s.friends) return 'friend';
  if (s.outgoing) return 'outgoing';
  if (s.incoming) return 'incoming';
  return 'none';
}

/** The peer's relation towards the actor once only "the actor blocks it" may remain. */
const peerAfter = (s: PairState): RelationState => (s.blockedBy ? 'blocked' : 'none');

const refuse = (error: 'not_found' | 'forbidden' | 'conflict', reason: string): Plan => ({ ok: false, error, reason });
const same = (s: PairState): Plan => ({ ok: true, state: stateOf(s), duplicate: true, writes: [], changes: [] });

export function planAction(action: RelationAction, s: PairState): Plan {
  if (!s.peerExists) return refuse('not_found', 'no such user');
  if (s.peerDeleted && (action.type === 'request' || action.type === 'accept')) return refuse('not_found', 'this account was deleted');
  switch (action.type) {
    case 'request': {
      if (s.blockedBy) return refuse('forbidden', 'this user does not accept your requests');
      if (s.blocking) return refuse('forbidden', 'you blocked this user; unblock first');
      if (s.friends) return refuse('conflict', 'already friends');
      // Requesting someone who already requested you accepts their request.
      if (s.incoming) return accept();
      // A repeated request is idempotent: the first greeting stays, nothing is logged again.
      if (s.outgoing) return same(s);
      return {
        ok: true,
        state: 'outgoing',
        duplicate: false,
        writes: [{ op: 'putRequest', from: 'actor', greeting: action.greeting }],
        changes: [
          { who: 'actor', kind: 'request_sent', state: 'outgoing', greeting: action.greeting },
          { who: 'peer', kind: 'request_received', state: 'incoming', greeting: action.greeting },
        ],
      };
    }
    case 'accept':
      if (s.friends) return same(s);
      if (!s.incoming) return refuse('not_found', 'no pending request from this user');
      return accept();
    case 'reject':
      if (!s.incoming) return refuse('not_found', 'no pending request from this user');
      return {
        ok: true,
        state: 'none',
        duplicate: false,
        writes: [{ op: 'deleteRequest', from: 'peer' }],
        changes: [
          { who: 'actor', kind: 'request_rejected', state: 'none' },
          { who: 'peer', kind: 'request_rejected', state: 'none' },
        ],
      };
    case 'cancel':
      if (!s.outgoing) return refuse('not_found', 'no pending request to this user');
      return {
        ok: true,
        state: 'none',
        duplicate: false,
        writes: [{ op: 'deleteRequest', from: 'actor' }],
        changes: [
          { who: 'actor', kind: 'request_cancelled', state: 'none' },
          { who: 'peer', kind: 'request_cancelled', state: 'none' },
        ],
      };
    case 'remove':
      if (!s.friends) return refuse('not_found', 'not friends with this user');
      return {
        ok: true,
        state: 'none',
        duplicate: false,
        writes: [{ op: 'removeFriends' }],
        changes: [
          { who: 'actor', kind: 'friend_removed', state: 'none' },
          { who: 'peer', kind: 'friend_removed', state: 'none' },
        ],
      };
    case 'block': {
      if (s.blocking) return same(s);
      const writes: PlanWrite[] = [{ op: 'putBlock' }];
      const changes: PlannedChange[] = [{ who: 'actor', kind: 'blocked', state: 'blocked' }];
      // Blocking ends the friendship and drops a pending request either way; the peer sees
      // it as an ordinary removal, rejection or withdrawal (a block is not revealed).
      if (s.friends) {
        writes.push({ op: 'removeFriends' });
        changes.push({ who: 'peer', kind: 'friend_removed', state: peerAfter(s) });
      } else if (s.incoming) {
        writes.push({ op: 'deleteRequest', from: 'peer' });
        changes.push({ who: 'peer', kind: 'request_rejected', state: peerAfter(s) });
      } else if (s.outgoing) {
        writes.push({ op: 'deleteRequest', from: 'actor' });
        changes.push({ who: 'peer', kind: 'request_cancelled', state: peerAfter(s) });
      }
      return { ok: true, state: 'blocked', duplicate: false, writes, changes };
    }
    case 'unblock':
      if (!s.blocking) return same(s);
      return { ok: true, state: 'none', duplicate: false, writes: [{ op: 'deleteBlock' }], changes: [{ who: 'actor', kind: 'unblocked', state: 'none' }] };
  }

  function accept(): Plan {
    return {
      ok: true,
      state: 'friend',
      duplicate: false,
      writes: [{ op: 'deleteRequest', from: 'peer' }, { op: 'addFriends' }],
      changes: [
        { who: 'actor', kind: 'friend_added', state: 'friend' },
        { who: 'peer', kind: 'request_accepted', state: 'friend' },
      ],
    };
  }
}
