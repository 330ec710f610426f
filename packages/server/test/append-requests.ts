/** Store-level requests for tests that drive SqlStore directly: a text post, a group spec, a seeded group. */
import assert from 'node:assert/strict';
import type { AppendRequest, NewGroup, Store } from '../src/store/store.ts';

let n = 0;

/** A text message from `sender` into `conv` (fresh clientMsgId and id each call); `extra` overrides fields. */
export const post = (sender: string, conv: string, extra: Partial<AppendRequest> = {}): AppendRequest => ({
  sender,
  conv,
  clientMsgId: `c${++n}`,
  id: `m${n}_${Date.now()}`,
  kind: 'text',
  body: { text: `hello ${n}` },
  time: Date.now(),
  ...extra,
});

/** An open normal group of up to 100 members. */
export const spec: NewGroup = { name: 'G', avatar: '', joinPolicy: 'open', inviteNeedsApproval: false, historyVisibility: 'since_join', maxMembers: 100, superThreshold: 500 };

/** A group-creation notice: `owner` creates `conv` (group `spec`) with `members`. */
export const createGroup = (owner: string, conv: string, members: string[]): AppendRequest => post(owner, conv, { kind: 'system', body: {}, effect: { op: 'create', group: spec, members } });

/** Users alice, bob and carol, and the group `conv` of alice with bob and carol. */
export async function seedGroup(store: Pick<Store, 'createUser' | 'appendMessages'>, conv = 'g:one'): Promise<void> {
  for (const id of ['alice', 'bob', 'carol']) await store.createUser({ id, username: id, passwordHash: 'x', nickname: id, createdAt: 1 });
  const [c] = await store.appendMessages([createGroup('alice', conv, ['bob', 'carol'])]);
  assert.equal(c?.ok, true);
}
