import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Message } from '@magpie/protocol';
import { openSqliteStore } from '../src/store/open.ts';
import { MemoryBus } from '../src/bus/memory-bus.ts';
import { AccountService } from '../src/services/account-service.ts';
import { MessagingService, messageText } from '../src/services/message-service.ts';
import { createMetrics } from '../src/metrics.ts';

describe('a send serializes its body once on the service path (issue 16 debt)', () => {
  it('messageText splices the body text into exactly what JSON.stringify gives', () => {
    const bodies: unknown[] = [{ text: 'x"body":0 \\"body\\":0' }, { text: '', nested: { body: 0, a: [1, { body: 0 }] } }, 'plain', 0, null, [1, 2]];
    for (const body of bodies) {
      const m: Message = { id: 'm1', conv: 'd:a:b', seq: 3, sender: 'a"body":0', kind: 'text', body, time: 5, clientMsgId: 'c"body":0' };
      assert.equal(messageText(m, JSON.stringify(body)), JSON.stringify(m));
      assert.equal(messageText({ ...m, mentions: ['u1'] } as Message, JSON.stringify(body)), JSON.stringify({ ...m, mentions: ['u1'] }));
    }
  });

  it('send → commit → fan-out → reply text: the body is stringified once, the store included', async () => {
    const store = await openSqliteStore({ path: ':memory:', ringCapacity: 100 });
    const bus = new MemoryBus();
    const accounts = new AccountService(store, bus, { tokenTtlMs: 3600_000, devicesPerPlatformClass: 5 });
    const messaging = new MessagingService(store, bus, createMetrics(), { ringCapacity: 100, syncGapThreshold: 50, syncPageSize: 50, maxMessageBytes: 16_384, commitDelayMs: 0, maxBatch: 10 });
    const a = await accounts.register('sera', 'correct horse', 'A');
    const b = await accounts.register('serb', 'correct horse', 'B');
    const pa = await accounts.authenticate((await accounts.login({ username: 'sera', password: 'correct horse', deviceId: 'd', platform: 'web' })).token);
    const original = JSON.stringify;
    const marker = 'marker-7f3a';
    const body = { text: marker };
    let bodySerializations = 0;
    const sent = await (async () => {
      JSON.stringify = ((v: unknown, ...rest: unknown[]) => {
        const out = (original as (...x: unknown[]) => string)(v, ...rest);
        if (typeof out === 'string' && out.includes(marker)) bodySerializations++;
        return out;
      }) as typeof JSON.stringify;
      try {
        const r = await messaging.sendWithJson(pa, { clientMsgId: 'c1', to: b.id, kind: 'text', body });
        const reply = r.json;
        return { r, reply };
      } finally {
        JSON.stringify = original;
      }
    })();
    assert.equal(sent.reply, JSON.stringify(sent.r.message));
    // Once for the size check, reused by the store's column (AppendRequest.bodyJson), the
    // fan-out frames and the reply (was four: size check, store, fan-out, reply).
    assert.equal(bodySerializations, 1);
    const [row] = await store.readHistory(sent.r.message.conv, { after: 0, limit: 1 });
    assert.deepEqual(row?.body, body, 'the stored row holds that text');
    void a;
  });
  it('a body hook that returns a new object is what is stored and sent; one that returns its argument costs no second serialization', async () => {
    const store = await openSqliteStore({ path: ':memory:', ringCapacity: 100 });
    const bus = new MemoryBus();
    const accounts = new AccountService(store, bus, { tokenTtlMs: 3600_000, devicesPerPlatformClass: 5 });
    const messaging = new MessagingService(store, bus, createMetrics(), { ringCapacity: 100, syncGapThreshold: 50, syncPageSize: 50, maxMessageBytes: 16_384, commitDelayMs: 0, maxBatch: 10 });
    await accounts.register('hooka', 'correct horse', 'A');
    const b = await accounts.register('hookb', 'correct horse', 'B');
    const pa = await accounts.authenticate((await accounts.login({ username: 'hooka', password: 'correct horse', deviceId: 'd', platform: 'web' })).token);
    messaging.addBodyHook(async (_s, _k, body) => body);
    messaging.addBodyHook(async (_s, _k, body) => ((body as { text: string }).text === 'swap' ? { text: 'swapped' } : body));
    const original = JSON.stringify;
    let count = 0;
    JSON.stringify = ((v: unknown, ...rest: unknown[]) => {
      const out = (original as (...x: unknown[]) => string)(v, ...rest);
      if (typeof out === 'string' && out.includes('keep-9c1')) count++;
      return out;
    }) as typeof JSON.stringify;
    try {
      await messaging.send(pa, { clientMsgId: 'k1', to: b.id, kind: 'text', body: { text: 'keep-9c1' } });
    } finally {
      JSON.stringify = original;
    }
    assert.equal(count, 1, 'hooks returned the same object: no second serialization');
    const r = await messaging.sendWithJson(pa, { clientMsgId: 'k2', to: b.id, kind: 'text', body: { text: 'swap' } });
    assert.deepEqual(r.message.body, { text: 'swapped' });
    assert.equal(r.json, JSON.stringify(r.message));
    const again = await messaging.sendWithJson(pa, { clientMsgId: 'k2', to: b.id, kind: 'text', body: { text: 'swap' } });
    assert.equal(again.duplicate, true);
    assert.equal(again.json, undefined, 'a duplicate was not fanned out: the gateway serializes its reply itself');
    const [row] = await store.readHistory(r.message.conv, { after: 1, limit: 1 });
    assert.deepEqual(row?.body, { text: 'swapped' }, 'the stored row holds the hook\'s body');
    await store.close();
  });

  it('sends that go to the committer at once (no await) still wait behind an earlier send of the same chat that is waiting', async () => {
    const store = await openSqliteStore({ path: ':memory:', ringCapacity: 100 });
    const bus = new MemoryBus();
    const accounts = new AccountService(store, bus, { tokenTtlMs: 3600_000, devicesPerPlatformClass: 5 });
    const messaging = new MessagingService(store, bus, createMetrics(), { ringCapacity: 100, syncGapThreshold: 50, syncPageSize: 50, maxMessageBytes: 16_384, commitDelayMs: 0, maxBatch: 10 });
    await accounts.register('orda', 'correct horse', 'A');
    const b = await accounts.register('ordb', 'correct horse', 'B');
    const pa = await accounts.authenticate((await accounts.login({ username: 'orda', password: 'correct horse', deviceId: 'd', platform: 'web' })).token);
    // The recipient is known from here on: the sends below need no read.
    await messaging.send(pa, { clientMsgId: 'o0', to: b.id, kind: 'text', body: { text: 'first' } });
    // A hook that waits only for the messages marked slow; every other send is handed over in its own turn.
    messaging.addBodyHook((_s, _k, body) => ((body as { text: string }).text.startsWith('slow') ? new Promise((r) => setTimeout(() => r(body), 20)) : body));
    const texts = ['slow-1', 'fast-2', 'fast-3', 'slow-4', 'fast-5'];
    const sent = await Promise.all(texts.map((text, i) => messaging.send(pa, { clientMsgId: `o${i + 1}`, to: b.id, kind: 'text', body: { text } })));
    assert.deepEqual(
      sent.map((s) => s.message.seq),
      [2, 3, 4, 5, 6],
      'stored in the order sent',
    );
    // Another chat of the same sender is not held by this one's waiting send.
    const c = await accounts.register('ordc', 'correct horse', 'C');
    const slow = messaging.send(pa, { clientMsgId: 'p1', to: b.id, kind: 'text', body: { text: 'slow-6' } });
    const other = await messaging.send(pa, { clientMsgId: 'p2', to: c.id, kind: 'text', body: { text: 'fast-7' } });
    assert.equal(other.message.seq, 1);
    assert.equal((await slow).message.seq, 7);
    await store.close();
  });
});
