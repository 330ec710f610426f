import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { MagpieClient } from '@magpie/sdk';
import { startServer, registerAndLogin, type ServerProcess } from './harness.ts';
import { sdkClient, eventually } from './sdk-client.ts';

// Issue 14: a burst of sends under the server's rate limit was stored out of the order the
// user typed it (with 8 sends in flight, a refused one was resent after later ones committed).
describe('SDK send order against the real server (rate limited burst)', () => {
  let srv: ServerProcess;
  const clients: MagpieClient[] = [];
  before(async () => {
    srv = await startServer({ env: { MAGPIE_USER_RATE: '20', MAGPIE_USER_BURST: '5' } });
  });
  after(async () => {
    for (const c of clients) c.close();
    await srv.stop();
  });

  it('regression: a burst of 60 messages under a 5-message rate-limit burst is stored in typing order', async () => {
    const a = await registerAndLogin(srv.url);
    const b = await registerAndLogin(srv.url);
    const ca = sdkClient({ baseUrl: srv.url, token: a.token });
    const cb = sdkClient({ baseUrl: srv.url, token: b.token });
    clients.push(ca, cb);
    await Promise.all([ca.connect(), cb.connect()]);
    const N = 60;
    const typed: string[] = [];
    for (let i = 0; i < N; i++) typed.push((await ca.sendText({ to: b.userId }, `m${i}`)).clientMsgId);
    await eventually(() => ca.outgoing().every((m) => m.state !== 'sending'), 'every send answered', 60_000);
    assert.ok(ca.outgoing().every((m) => m.state !== 'failed'), 'none failed');
    const conv = (await ca.getConversations())[0]!.conv;
    await eventually(async () => (await cb.getMessages(conv, { after: 0, limit: 1000 })).messages.length === N, 'B has all messages', 30_000);
    const stored = (await cb.getMessages(conv, { after: 0, limit: 1000 })).messages;
    assert.deepEqual(stored.map((m) => m.seq), Array.from({ length: N }, (_, i) => i + 1));
    assert.deepEqual(stored.map((m) => m.clientMsgId), typed, 'conversation order = typing order');
    const metrics = await (await fetch(srv.url + '/metrics')).text();
    assert.match(metrics, /magpie_errors_total\{code="rate_limited"\} [1-9]/, 'the burst did hit the rate limit');
  });
});
