/** Store-level requests for tests that drive SqlStore directly: a text post and a group spec. */
import type { AppendRequest, NewGroup } from '../src/store/store.ts';

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
