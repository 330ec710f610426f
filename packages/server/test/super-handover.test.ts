import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { SuperHandover } from '../src/gateway/super-handover.ts';
import { SuperGroupIndex } from '../src/gateway/super-index.ts';
import type { Connection } from '../src/gateway/connection.ts';

/**
 * Issue 15: the exact super-group handover on one node, with Bus events arriving in the
 * orders another node's publications can produce (deterministic; the two-node test in
 * cluster-correctness.test.ts exercises the same over NATS, where the race is timing-bound).
 */
function fakeConn(userId: string): Connection & { got: number[] } {
  const got: number[] = [];
  return {
    principal: { userId, deviceId: 'd', tokenHash: `t-${userId}` },
    got,
    send(f: unknown) {
      const text = typeof f === 'string' ? f : (f as { text: string }).text;
      got.push(JSON.parse(text).seq);
    },
    sendShared(f: unknown) {
      got.push(JSON.parse((f as { text: string }).text).seq);
    },
  } as unknown as Connection & { got: number[] };
}

function setup(epoch: number) {
  const index = new SuperGroupIndex();
  const conns = new Map<string, Connection & { got: number[] }>();
  const handover = new SuperHandover({
    index,
    connectionsOf: (u) => (conns.has(u) ? [conns.get(u)!] : []),
    memberEpoch: async () => epoch,
    messagesAfter: async () => [],
    frameOf: (conv, seq, body) => `{"type":"advanced","conv":${JSON.stringify(conv)},"seq":${seq},"message":${body}}`,
    delivered: () => {},
    holdMs: 60_000,
  });
  const follow = async (u: string) => {
    const c = fakeConn(u);
    conns.set(u, c);
    await index.add('g', c);
    await handover.learnEpoch('g');
    return c;
  };
  const advance = (seq: number, ep: number) => handover.onAdvance({ type: 'advance', conv: 'g', seq, epoch: ep, frame: `{"seq":${seq}}` });
  return { handover, follow, advance };
}

describe('super-group handover (member epochs)', () => {
  it('a removal published by another node: messages after it that overtake the removal event are not delivered to the removed member', async () => {
    const { handover, follow, advance } = setup(5);
    const b = await follow('b');
    const c = await follow('c');
    advance(6, 5);
    // Node 1 commits the removal of C at 7; node 2's messages 8 and 9 (epoch 7) arrive first.
    advance(8, 7);
    advance(9, 7);
    assert.deepEqual(c.got, [6], 'held until the removal is known');
    handover.onSupers({ type: 'supers', conv: 'g', add: [], remove: ['c'], epoch: 7 });
    // The removal notice (seq 7) arrives last, from node 1.
    advance(7, 7);
    advance(10, 7);
    assert.deepEqual(c.got, [6, 7], 'C got its notice and nothing after it');
    assert.deepEqual(b.got, [6, 8, 9, 7, 10], 'B missed nothing');
  });

  it('a join: the new member gets nothing before the change and everything after; duplicates are dropped', async () => {
    const { handover, follow, advance } = setup(3);
    const b = await follow('b');
    advance(4, 3);
    const d = { got: [] as number[] };
    // D joins at 5 (its connection is here); node 2's message 6 (epoch 5) overtakes the event.
    advance(6, 5);
    assert.deepEqual(b.got, [4]);
    const dc = await follow('d');
    handover.onSupers({ type: 'supers', conv: 'g', add: ['d'], remove: [], epoch: 5 });
    advance(5, 5);
    advance(6, 5); // the same message again (live and catch-up)
    assert.deepEqual(b.got, [4, 6, 5]);
    assert.deepEqual(dc.got, [6, 5]);
    void d;
  });
});
