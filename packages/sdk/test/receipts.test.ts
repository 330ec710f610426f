import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Receipts, type ReceiptsTransport } from '../src/receipts.ts';
import type { Clock } from '../src/clock.ts';

class FakeClock implements Clock {
  t = 0;
  timers: { at: number; fn: () => void; id: number }[] = [];
  private id = 0;
  now() {
    return this.t;
  }
  setTimeout(fn: () => void, ms: number) {
    const id = ++this.id;
    this.timers.push({ at: this.t + ms, fn, id });
    return id;
  }
  clearTimeout(h: unknown) {
    this.timers = this.timers.filter((x) => x.id !== h);
  }
  advance(ms: number) {
    this.t += ms;
    const due = this.timers.filter((x) => x.at <= this.t);
    this.timers = this.timers.filter((x) => x.at > this.t);
    for (const d of due) d.fn();
  }
}

describe('SDK receipts: state per message, typing, presence, settings', () => {
  const sent: { type: string }[] = [];
  const transport: ReceiptsTransport = {
    request: (async (f: { type: string; conv?: string }) => {
      sent.push(f);
      if (f.type === 'receipts.query') return f.conv!.startsWith('d:') ? { readSeq: 4, counts: [] } : { counts: [[2, 3, 5], [3, 5, 5]] };
      if (f.type === 'presence.sub') return { presence: [{ user: 'bob', online: true, lastSeen: null }] };
      return { sent: true };
    }) as ReceiptsTransport['request'],
  };

  it('1:1: sent → read as the peer reads; groups: unread counts only fall', async () => {
    const r = new Receipts(transport);
    const events: unknown[] = [];
    r.events.on('receipts', (e) => events.push(e));
    assert.deepEqual(r.stateOf('d:a:b', 3), { kind: 'direct', read: false });
    r.handleFrame({ type: 'read.receipt', conv: 'd:a:b', seq: 3, by: 'b' });
    assert.deepEqual(r.stateOf('d:a:b', 3), { kind: 'direct', read: true });
    assert.deepEqual(r.stateOf('d:a:b', 4), { kind: 'direct', read: false });
    await r.load('d:a:b', [4]);
    assert.deepEqual(r.stateOf('d:a:b', 4), { kind: 'direct', read: true });

    assert.deepEqual(r.stateOf('g1', 2), { kind: 'none' });
    await r.load('g1', [2, 3]);
    assert.deepEqual(r.stateOf('g1', 2), { kind: 'group', unread: 3, total: 5 });
    r.handleFrame({ type: 'read.counts', conv: 'g1', counts: [[2, 1, 5]] });
    r.handleFrame({ type: 'read.counts', conv: 'g1', counts: [[2, 2, 5]] }); // late, stale
    assert.deepEqual(r.stateOf('g1', 2), { kind: 'group', unread: 1, total: 5 });
    assert.ok(events.length >= 3);
  });

  it('typing: shown until it expires, cleared by a message, sent at most every 3 s', () => {
    const clock = new FakeClock();
    const r = new Receipts(transport, undefined, clock);
    const seen: string[][] = [];
    r.events.on('typing', (e) => seen.push(e.users));
    r.handleFrame({ type: 'typing', conv: 'c', user: 'bob', expiresIn: 6000 });
    assert.deepEqual(r.typingIn('c'), ['bob']);
    clock.advance(5000);
    r.handleFrame({ type: 'typing', conv: 'c', user: 'bob', expiresIn: 6000 });
    clock.advance(5000);
    assert.deepEqual(r.typingIn('c'), ['bob'], 'refreshed');
    clock.advance(1001);
    assert.deepEqual(r.typingIn('c'), []);
    r.handleFrame({ type: 'typing', conv: 'c', user: 'bob', expiresIn: 6000 });
    r.typingStopped('c', 'bob');
    assert.deepEqual(seen.at(-1), []);
    const before = sent.filter((f) => f.type === 'typing').length;
    r.typing('c');
    r.typing('c');
    clock.advance(3000);
    r.typing('c');
    assert.equal(sent.filter((f) => f.type === 'typing').length - before, 2);
  });

  it('presence and notify settings keep the newest', async () => {
    const r = new Receipts(transport);
    assert.deepEqual(await r.subscribePresence(['bob']), [{ user: 'bob', online: true, lastSeen: null }]);
    r.handleFrame({ type: 'presence', user: 'bob', online: false, lastSeen: 5 });
    assert.deepEqual(r.presence('bob'), { user: 'bob', online: false, lastSeen: 5 });
    r.handleFrame({ type: 'notify.setting', setting: { conv: 'g', level: 'none', version: 2 } });
    r.handleFrame({ type: 'notify.setting', setting: { conv: 'g', level: 'all', version: 1 } });
    assert.equal(r.notifyLevel('g'), 'none');
    assert.equal(r.handleFrame({ type: 'msg' }), false);
  });
});
