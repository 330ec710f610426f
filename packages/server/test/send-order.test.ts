import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MagpieError } from '@magpie/protocol';
import { SendOrderGuard } from '../src/gateway/send-order.ts';

test('a retryable refusal holds the conversation until the refused message comes again', () => {
  let now = 1_000;
  const g = new SendOrderGuard(() => now);
  g.check({ clientMsgId: 'a', conv: 'g:1' });
  g.refused({ clientMsgId: 'b', conv: 'g:1' }, new MagpieError('rate_limited', 'slow', { retryAfterMs: 500 }));
  // c was pipelined behind b: refused the same way, with the time left
  assert.throws(() => g.check({ clientMsgId: 'c', conv: 'g:1' }), (e: unknown) => e instanceof MagpieError && e.code === 'rate_limited' && e.retryAfterMs === 500);
  g.check({ clientMsgId: 'x', conv: 'g:2' }); // another conversation is not held
  g.check({ clientMsgId: 'x', to: 'u1' });
  now += 100;
  g.check({ clientMsgId: 'b', conv: 'g:1' }); // the refused one again: released
  g.check({ clientMsgId: 'c', conv: 'g:1' });
});

test('non-retryable refusals do not hold; a hold expires after a minute', () => {
  let now = 0;
  const g = new SendOrderGuard(() => now);
  g.refused({ clientMsgId: 'a', to: 'u1' }, new MagpieError('message_too_large'));
  g.check({ clientMsgId: 'b', to: 'u1' });
  g.refused({ clientMsgId: 'c', to: 'u1' }, new MagpieError('internal'));
  assert.throws(() => g.check({ clientMsgId: 'd', to: 'u1' }));
  now += 60_000;
  g.check({ clientMsgId: 'd', to: 'u1' });
});
