import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { startServer, registerAndLogin, RawClient, api, sleep, type ServerProcess } from './harness.ts';

/**
 * Health and graceful drain on one node (SQLite, in-process Bus): /api/live and /api/ready,
 * and what SIGTERM does — readiness turns 503 while liveness stays 200, new upgrades are
 * refused, a send that is running finishes and is ACKed, then the socket closes with 4506 and
 * a jittered `retryAfterMs`.
 */
describe('health and drain (one node, SQLite)', () => {
  let srv: ServerProcess;
  before(async () => {
    srv = await startServer({ env: { MAGPIE_NODE_ID: 'node-a', MAGPIE_DRAIN_DELAY_MS: '1500', MAGPIE_DRAIN_RECONNECT_MIN_MS: '200', MAGPIE_DRAIN_RECONNECT_MAX_MS: '900', MAGPIE_COMMIT_DELAY_MS: '0' } });
  });
  after(async () => {
    await srv.stop();
  });

  it('live and ready answer with the node name and the checks', async () => {
    const live = await api(srv.url, 'GET', '/api/live');
    assert.equal(live.status, 200);
    assert.deepEqual(live.body, { ok: true, node: 'node-a' });
    const ready = await api(srv.url, 'GET', '/api/ready');
    assert.equal(ready.status, 200);
    assert.deepEqual(ready.body, { ok: true, node: 'node-a', checks: { database: 'ok', bus: 'ok' } });
  });

  it('SIGTERM: ready 503 and live 200 during the delay, upgrades refused, a running send is ACKed, then 4506 with retryAfterMs', async () => {
    const a = await registerAndLogin(srv.url);
    const b = await registerAndLogin(srv.url);
    const { client } = await RawClient.connect(srv.wsUrl, a.token);
    srv.proc.kill('SIGTERM');
    // Readiness flips at once; the process keeps serving during drain.delayMs.
    await sleep(300);
    const ready = await api(srv.url, 'GET', '/api/ready');
    assert.equal(ready.status, 503);
    assert.equal(ready.body.error.code, 'unavailable');
    assert.match(ready.body.error.message, /draining/);
    assert.equal((await api(srv.url, 'GET', '/api/live')).status, 200);
    // Still open during the delay: a send goes through and is ACKed before the close.
    const sent = await client.request({ type: 'send', clientMsgId: 'during-drain', to: b.userId, kind: 'text', body: { text: 'made it' } });
    assert.equal(sent.message.seq, 1);
    // Once connections are being closed, a new upgrade is refused with 503.
    await client.waitClose(5000);
    assert.equal(client.closeCode, 4506);
    const m = /^retryAfterMs=(\d+)$/.exec(client.closeReason);
    assert.ok(m, `close reason: ${client.closeReason}`);
    assert.ok(Number(m[1]) >= 200 && Number(m[1]) <= 900, `delay ${m[1]} in [200, 900]`);
    const refused = await new Promise<number>((resolve) => {
      const ws = new WebSocket(srv.wsUrl);
      ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.on('error', () => resolve(-1));
      ws.on('open', () => resolve(101));
    });
    assert.ok(refused === 503 || refused === -1, `upgrade after drain: ${refused}`);
    await new Promise<void>((r) => (srv.proc.exitCode !== null ? r() : srv.proc.once('exit', () => r())));
    assert.equal(srv.proc.exitCode, 0);
    assert.deepEqual(client.schemaErrors, []);
  });
});
