import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, registerAndLogin, RawClient, type ServerProcess } from './harness.ts';

/** A Prometheus histogram's cumulative bucket count (le) or, without `le`, its total count. */
function bucket(metrics: string, name: string, le?: string): number {
  const re = le === undefined ? new RegExp(`^${name}_count (\\d+)`, 'm') : new RegExp(`^${name}_bucket\\{le="${le}"\\} (\\d+)`, 'm');
  return Number(metrics.match(re)?.[1] ?? NaN);
}

// Issue 23: sends have a per-connection window of their own (limits.maxSendsInFlightPerConnection,
// default 32), so one connection's pipelined sends reach the group commit together, more than
// the 8 of maxInflightPerConnection — and they are still stored in the order sent.
describe('a connection pipelining sends beyond 8 in flight (the send window)', () => {
  let srv: ServerProcess;
  before(async () => {
    // A commit collects sends for 20 ms: every send the connection has admitted by then is in it.
    srv = await startServer({ env: { MAGPIE_USER_RATE: '100000', MAGPIE_USER_BURST: '100000', MAGPIE_COMMIT_DELAY_MS: '20' } });
  });
  after(async () => {
    await srv.stop();
  });

  it('300 sends written at once: commits of more than 8 (at most 32) of them, stored and ACKed in send order', async () => {
    const a = await registerAndLogin(srv.url);
    const b = await registerAndLogin(srv.url);
    const { client } = await RawClient.connect(srv.wsUrl, a.token);
    const before = await (await fetch(srv.url + '/metrics')).text();
    const N = 300;
    for (let i = 0; i < N; i++) client.send({ type: 'send', id: 1000 + i, clientMsgId: `w${i}`, to: b.userId, kind: 'text', body: { text: `w${i}` } });
    await client.waitFor((f) => f.type === 'reply' && f.id === 1000 + N - 1, 30_000);
    const replies = client.frames.filter((f) => f.type === 'reply' && f.id >= 1000);
    assert.equal(replies.length, N);
    assert.deepEqual(replies.map((r) => r.id), Array.from({ length: N }, (_, i) => 1000 + i), 'ACKs in send order');
    assert.deepEqual(replies.map((r) => r.result.message.seq), Array.from({ length: N }, (_, i) => i + 1), 'seq in send order');
    const conv = replies[0].result.message.conv;
    const stored: any[] = [];
    for (let after = 0; ; ) {
      const page = await client.request({ type: 'history', conv, after, limit: 200 });
      stored.push(...page.messages);
      if (!page.more) break;
      after = page.messages.at(-1).seq;
    }
    assert.deepEqual(stored.map((m) => m.clientMsgId), Array.from({ length: N }, (_, i) => `w${i}`), 'conversation order = send order');
    const now = await (await fetch(srv.url + '/metrics')).text();
    const name = 'magpie_commit_batch_size';
    const commits = bucket(now, name) - (bucket(before, name) || 0);
    const upTo10 = bucket(now, name, '10') - (bucket(before, name, '10') || 0);
    const upTo50 = bucket(now, name, '50') - (bucket(before, name, '50') || 0);
    assert.ok(commits >= N / 32, `${commits} commits`);
    assert.ok(upTo10 < commits, `some commit took more than 10 sends of the connection (${commits - upTo10} of ${commits})`);
    assert.equal(upTo50, commits, 'none more than the window of 32');
    client.close();
  });
});
