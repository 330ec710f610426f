import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Message } from '@magpie/protocol';
import { pushEnv, startFakes, stopFakes, type Fakes, type PushEnv } from './push-harness.ts';

/**
 * PushService.idle — what a normal group's push routing (receipts/group-push.ts) leaves out
 * before it reads the members' levels: it must be true only where onCommitted would do
 * nothing for the user, whatever the level.
 */
describe('push: idle users of a group fan-out', () => {
  let fakes: Fakes;
  let env: PushEnv;
  before(async () => {
    fakes = await startFakes();
    env = await pushEnv({ fakes });
  });
  after(async () => {
    await env.close();
    await stopFakes(fakes);
  });

  it('is idle only for a silent kind or a user known without a push device who is connected here', async () => {
    const a = await env.user('ida', 'a1');
    const b = await env.user('ivo', 'b1', { offline: true });
    const msg = (kind = 'text'): Message => ({ id: 'm1', conv: 'g:x', seq: 1, sender: a.userId, kind, body: { text: 'x' }, time: 0, clientMsgId: 'c1' });
    const idle = (m: Message, u: string) => env.push.service.idle(m, u);
    assert.equal(idle(msg(), b.userId), false, 'not known to be without a device yet');
    await env.text(a.p, b.userId, 'hi');
    await env.settle();
    assert.equal(idle(msg(), b.userId), false, 'without a device but offline: onCommitted counts it in the funnel');
    env.presence.set(b.userId, 'b1', true);
    assert.equal(idle(msg(), b.userId), true, 'without a device and connected: nothing to do');
    assert.equal(idle(msg('system'), a.userId), true, 'a kind never pushed');
    assert.equal(idle(msg('reaction'), a.userId), true, 'a kind never pushed');
    assert.equal(idle(msg(), a.userId), false, 'not known to be without a device');
  });
});
