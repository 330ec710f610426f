import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { pgUnavailable, testDatabase } from './pg-test-helpers.ts';
import { NATS_URL, natsUnavailable } from './nats-test-helpers.ts';
import { startServer, registerAndLogin, RawClient, api, sleep, type ServerProcess } from './harness.ts';

const ADMIN = 'trace-cluster-admin-token-0123456789';

/**
 * A message's trace across a cluster: two nodes (processes) on one PostgreSQL database and
 * NATS; the sender is on node 1, the receiver on node 2. Asked on either node, the trace has
 * the sender's stages from node 1 and the delivery and ACK from node 2. Needs PostgreSQL and
 * NATS; skips without them unless MAGPIE_REQUIRE_SERVICES=1.
 */
const skip = (await pgUnavailable()) ?? (await natsUnavailable());

describe('message trace across two nodes (PostgreSQL + NATS)', { skip: skip ?? false }, () => {
  const db = testDatabase('magpie_trace');
  let n1: ServerProcess;
  let n2: ServerProcess;
  before(async () => {
    const url = await db.create();
    const env = { MAGPIE_STORE: url.toString(), MAGPIE_NATS: NATS_URL, MAGPIE_ADMIN_TOKEN: ADMIN };
    n1 = await startServer({ env: { ...env, MAGPIE_NODE_ID: 'node-1' } });
    n2 = await startServer({ env: { ...env, MAGPIE_NODE_ID: 'node-2' } });
  });
  after(async () => {
    await Promise.all([n1?.stop(), n2?.stop()]);
    await db.drop();
  });

  it('the trace has the send on node 1 and the delivery and ACK on node 2, from either node and the console', async () => {
    const a = await registerAndLogin(n1.url, { deviceId: 'a-1' });
    const b = await registerAndLogin(n2.url, { deviceId: 'b-1' });
    const { client: ca } = await RawClient.connect(n1.wsUrl, a.token);
    const { client: cb } = await RawClient.connect(n2.wsUrl, b.token);
    const sent = await ca.request({ type: 'send', clientMsgId: 'c1', to: b.userId, kind: 'text', body: { text: 'across the cluster' } });
    const msgId: string = sent.message.id;
    const got = await cb.waitFor((f) => f.type === 'msg' && f.message.id === msgId);
    cb.send({ type: 'ack', inboxSeq: got.inboxSeq });

    const traceOn = async (node: ServerProcess, path = `/api/admin/messages/${msgId}/trace`, token = ADMIN) => {
      for (let i = 0; ; i++) {
        const r = await api(node.url, 'GET', path, undefined, token);
        if (r.status === 200 && r.body.events.some((e: any) => e.stage === 'ack')) return r.body;
        if (i >= 50) assert.fail(`no complete trace on ${node.url}: ${r.status} ${JSON.stringify(r.body)}`);
        await sleep(100);
      }
    };
    for (const [node, self, other] of [[n1, 'node-1', 'node-2'], [n2, 'node-2', 'node-1']] as const) {
      const trace = await traceOn(node);
      // This node first, then those that answered over the Bus (other tests' clusters on the same NATS may answer too).
      assert.equal(trace.nodes[0], self);
      assert.ok(trace.nodes.includes(other), JSON.stringify(trace.nodes));
      const stages = trace.events.map((e: any) => `${e.stage}@${e.node}`);
      for (const s of ['send@node-1', 'commit@node-1', 'fanout@node-1', 'deliver@node-2', 'ack@node-2']) assert.ok(stages.includes(s), `${s} in ${stages}`);
      const deliver = trace.events.find((e: any) => e.stage === 'deliver');
      assert.equal(deliver.userId, b.userId);
      assert.equal(deliver.deviceId, 'b-1');
      assert.equal(deliver.inboxSeq, got.inboxSeq);
    }

    // The console's route: any console role, and only with a console session.
    const created = await api(n1.url, 'POST', '/api/admin/console/admins', { username: `viewer${randomBytes(3).toString('hex')}`, password: 'a long console password', role: 'viewer' }, ADMIN);
    assert.equal(created.status, 201);
    const session = await api(n2.url, 'POST', '/api/console/login', { username: created.body.admin.username, password: 'a long console password' });
    assert.equal(session.status, 200);
    const viaConsole = await traceOn(n2, `/api/console/messages/${msgId}/trace`, session.body.token);
    assert.deepEqual(new Set(viaConsole.events.map((e: any) => e.node)), new Set(['node-1', 'node-2']));
    assert.equal((await api(n2.url, 'GET', `/api/console/messages/${msgId}/trace`, undefined, a.token)).status, 401);
    ca.close();
    cb.close();
  });
});
