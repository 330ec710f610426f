/** PresenceHub settles users whose debounce ends together with one cluster question (a reconnect storm). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { PresenceHub } from '../src/receipts/presence.ts';
import type { Bus, BusEvent } from '../src/bus/bus.ts';
import type { ReceiptStore } from '../src/receipts/receipt-store.ts';

test('presence: a storm of changes is settled in batches, each user once, flapping users by their last change', async () => {
  const published: BusEvent[] = [];
  const listeners: ((ev: BusEvent) => void)[] = [];
  const bus = {
    subscribe: (l: (ev: BusEvent) => void) => listeners.push(l),
    publish: (ev: BusEvent) => {
      published.push(ev);
      for (const l of listeners) l(ev);
    },
  } as unknown as Bus;
  const online = new Set<string>();
  const questions: string[][] = [];
  const seen = new Map<string, number>();
  const store = {
    setLastSeen: async (u: string, at: number) => void seen.set(u, at),
    lastSeen: async (users: string[]) => new Map(users.flatMap((u) => (seen.has(u) ? [[u, seen.get(u)!] as [string, number]] : []))),
  } as unknown as ReceiptStore;
  const hub = new PresenceHub({
    bus,
    store,
    onlineDevicesOf: async (users) => {
      questions.push([...users]);
      return new Map(users.map((u) => [u, online.has(u) ? ['d'] : []]));
    },
    localDevices: (u) => (online.has(u) ? 1 : 0),
    friends: async () => false,
    debounceMs: 100,
    defaultPrivacy: 'everyone',
    now: () => 5000,
  });
  const users = Array.from({ length: 200 }, (_, i) => `u${i}`);
  for (const u of users) {
    online.add(u);
    hub.changed(u, true);
  }
  // u0 flaps: down, then up again before its debounce ends; u1 goes down for good.
  online.delete('u0');
  hub.changed('u0', false);
  online.add('u0');
  hub.changed('u0', true);
  online.delete('u1');
  hub.changed('u1', false);
  await sleep(300);
  assert.ok(questions.length <= 2, `asked the cluster ${questions.length} times`);
  assert.deepEqual(questions.flat().sort(), [...users].sort(), 'each user asked about once');
  const byUser = new Map(published.map((ev) => [(ev as { userId: string }).userId, ev]));
  assert.equal(published.length, 200);
  assert.deepEqual(byUser.get('u0'), { type: 'presence', userId: 'u0', online: true, lastSeen: null });
  assert.deepEqual(byUser.get('u1'), { type: 'presence', userId: 'u1', online: false, lastSeen: 5000 });
  assert.equal(published.filter((ev) => (ev as { online: boolean }).online).length, 199);
  // Nothing changed since: a later change of one user asks about that user only.
  online.delete('u5');
  hub.changed('u5', false);
  await sleep(200);
  assert.deepEqual(questions.at(-1), ['u5']);
  assert.deepEqual(published.at(-1), { type: 'presence', userId: 'u5', online: false, lastSeen: 5000 });
  hub.close();
});
