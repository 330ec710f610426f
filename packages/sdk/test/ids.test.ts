/**
 * clientMsgIds grow with time (the server's idempotency index appends them at the end of the
 * sender's range) and stay as unique and as shaped as the random ids they replace.
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { randomId, timeOrderedId } from '../src/ids.ts';

it('a clientMsgId is 32 hex digits: the time in ms, then 80 random bits', () => {
  const id = timeOrderedId(0x18c_0000_0001);
  assert.match(id, /^[0-9a-f]{32}$/);
  assert.equal(id.slice(0, 12), '018c00000001');
  assert.match(randomId(), /^[0-9a-f]{32}$/);
});

it('clientMsgIds of later milliseconds sort after earlier ones, as strings', () => {
  const ids = [1_700_000_000_000, 1_700_000_000_001, 1_700_000_000_999, 1_800_000_000_000].map((t) => timeOrderedId(t));
  assert.deepEqual([...ids].sort(), ids);
});

it('clientMsgIds of one millisecond differ (80 random bits)', () => {
  const seen = new Set<string>();
  for (let i = 0; i < 10_000; i++) seen.add(timeOrderedId(1_700_000_000_000));
  assert.equal(seen.size, 10_000);
});

it('the client sends time-ordered clientMsgIds by default', async () => {
  const { harness, connectOnline } = await import('./helpers/setup.ts');
  const h = harness({ newId: undefined });
  await connectOnline(h);
  h.server.conv('g');
  const before = Date.now();
  const first = await h.client.sendText({ conv: 'g' }, 'one');
  const second = await h.client.sendText({ conv: 'g' }, 'two');
  await h.clock.advance(10);
  const sent = h.server.received('send').map((f) => (f as { clientMsgId: string }).clientMsgId);
  assert.deepEqual(sent, [first.clientMsgId, second.clientMsgId]);
  const after = Date.now();
  for (const id of sent) {
    assert.match(id, /^[0-9a-f]{32}$/);
    const at = parseInt(id.slice(0, 12), 16);
    assert.ok(at >= before && at <= after, `starts with the send time (${at} in [${before}, ${after}])`);
  }
  assert.notEqual(sent[0], sent[1]);
});
