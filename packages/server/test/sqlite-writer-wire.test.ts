/**
 * The append batch and its outcomes as they cross to and from the SQLite writer thread
 * (store/sqlite-writer-wire.ts): what arrives is what was sent, through a real structured clone.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { deserialize, serialize } from 'node:v8';
import { decodeBatch, decodeOutcomes, encodeBatch, encodeOutcomes } from '../src/store/sqlite-writer-wire.ts';
import { toMessage } from '../src/store/rows.ts';
import type { AppendOutcome, AppendRequest } from '../src/store/store.ts';

const clone = <T>(v: T): T => deserialize(serialize(v)) as T;

const dm = (i: number, extra: Partial<AppendRequest> = {}): AppendRequest => {
  const body = { text: `m${i} 你好` };
  return { sender: 'a', clientMsgId: `c${i}`, conv: 'd:a:b', directMembers: ['a', 'b'], kind: 'text', body, bodyJson: JSON.stringify(body), time: 1000 + i + 0.5, id: `id${i}`, ...extra };
};

describe('SQLite writer wire', () => {
  const batch: AppendRequest[] = [
    dm(1),
    dm(2, { bodyJson: undefined }),
    { sender: 'a', clientMsgId: 'g1', conv: 'g:1', kind: 'system', body: { op: 'add' }, time: 5, id: 'g1', effect: { op: 'add', users: ['c'], maxMembers: 10, superThreshold: 5 } },
    { sender: 'a', clientMsgId: 'g2', conv: 'g:1', kind: 'text', body: { text: '@c' }, bodyJson: '{"text":"@c"}', time: 6, id: 'g2', mentions: ['c'] },
    dm(3, { mentions: 'all' }),
  ];
  delete batch[1]!.bodyJson;

  it('carries every request field across; a body with its JSON crosses as that JSON only', () => {
    const got = decodeBatch(clone(encodeBatch(batch)));
    // The thread never reads the body of a request that has bodyJson (it writes bodyJson):
    // it arrives without it; a request without bodyJson brings its body.
    const expected = batch.map((r) => (r.bodyJson !== undefined ? { ...r, body: undefined } : r));
    assert.deepEqual(got, expected);
    for (const [i, r] of got.entries()) {
      if (batch[i]!.bodyJson !== undefined) assert.deepEqual(JSON.parse(r.bodyJson!), batch[i]!.body, `request ${i}: its JSON is its body`);
    }
    assert.deepEqual(got[1]!.body, batch[1]!.body);
  });

  it('sends the strings as a dense array (a holey one is cloned key by key and arrives as a dictionary)', () => {
    const wire = encodeBatch(batch);
    // v8 serialization: version header (0xFF, version), then the value's tag: 'A' dense array, 'a' sparse.
    const bytes = serialize(wire.s);
    assert.equal(String.fromCharCode(bytes[2]!), 'A');
    assert.equal(wire.s.length, batch.length * 8);
  });

  it('sends new messages stored as sent as seq and pointers, everything else whole, and gives the callers their own body objects back', () => {
    const onThread = decodeBatch(clone(encodeBatch(batch)));
    const outcomes: AppendOutcome[] = [
      { ok: true, duplicate: false, message: toMessage(onThread[0]!, 7), pointers: [{ userId: 'a', inboxSeq: 3 }, { userId: 'b', inboxSeq: 9 }] },
      { ok: true, duplicate: true, message: { ...toMessage(onThread[1]!, 2), body: { text: 'stored' } }, pointers: [{ userId: 'a', inboxSeq: 1 }] },
      { ok: true, duplicate: false, message: toMessage(onThread[2]!, 1), pointers: [], effect: { joined: ['c'], left: [], kind: 'group', becameSuper: false } },
      { ok: false, error: 'forbidden', reason: 'muted' },
      { ok: true, duplicate: false, message: toMessage(onThread[4]!, 8), pointers: [], epoch: 4 },
    ];
    const wire = clone(encodeOutcomes(onThread, outcomes));
    assert.deepEqual(Object.keys(wire.whole ?? {}).map(Number), [1, 2, 3, 4]);
    const got = decodeOutcomes(batch, wire);
    const expected = outcomes.map((o, i) => (o.ok && !o.duplicate ? { ...o, message: { ...o.message, body: batch[i]!.body } } : o));
    assert.deepEqual(got, expected);
    for (const i of [0, 2, 4]) assert.equal((got[i] as Extract<AppendOutcome, { ok: true }>).message.body, batch[i]!.body, `outcome ${i}: the request's own body`);
    // The message's keys in toMessage's order (its JSON is spliced into frames as is).
    assert.equal(JSON.stringify((got[0] as Extract<AppendOutcome, { ok: true }>).message), JSON.stringify(toMessage(batch[0]!, 7)));
  });
});
