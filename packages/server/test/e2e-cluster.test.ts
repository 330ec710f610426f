import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { pgUnavailable, testDatabase } from './pg-test-helpers.ts';
import { NATS_URL, natsUnavailable } from './nats-test-helpers.ts';
import { startServer, registerAndLogin, login, RawClient, ClientSet, api, sleep, type ServerProcess, type Account } from './harness.ts';

/**
 * Two Magpie nodes (separate processes, each its own port) sharing one PostgreSQL database
 * and NATS, as behind a load balancer: what one node does reaches the other's connections.
 * Needs PostgreSQL and NATS; skips without them unless MAGPIE_REQUIRE_SERVICES=1.
 */
const skip = (await pgUnavailable()) ?? (await natsUnavailable());

describe('a cluster of two nodes (PostgreSQL + NATS)', { skip: skip ?? false }, () => {
  const db = testDatabase('magpie_cluster');
  let n1: ServerProcess;
  let n2: ServerProcess;
  before(async () => {
    const url = await db.create();
    const env = {
      MAGPIE_STORE: url.toString(),
      MAGPIE_NATS: NATS_URL,
      MAGPIE_USER_RATE: '2000',
      MAGPIE_USER_BURST: '2000',
      MAGPIE_SUPER_GROUP_THRESHOLD: '3',
      MAGPIE_DEVICES_PER_PLATFORM_CLASS: '1',
    };
    // One after the other, as in a rolling start (concurrent migrations are serialized anyway).
    n1 = await startServer({ env });
    n2 = await startServer({ env });
  });
  after(async () => {
    await Promise.all([n1?.stop(), n2?.stop()]);
    await db.drop();
  });

  const clients = new ClientSet();
  const connect = (node: ServerProcess, who: Account): Promise<RawClient> => clients.connect(node, who);
  after(() => clients.closeChecked());

  it('a message sent on node 1 arrives live on node 2, and its delivered receipt comes back', async () => {
    const a = await registerAndLogin(n1.url);
    const b = await registerAndLogin(n2.url);
    const ca = await connect(n1, a);
    const cb = await connect(n2, b);
    const sent = await ca.request({ type: 'send', clientMsgId: 'x1', to: b.userId, kind: 'text', body: { text: 'across nodes' } });
    const got = await cb.waitFor((f) => f.type === 'msg' && f.message.clientMsgId === 'x1');
    assert.equal(got.message.body.text, 'across nodes');
    assert.equal(got.message.seq, sent.message.seq);
    cb.send({ type: 'ack', inboxSeq: got.inboxSeq });
    const receipt = await ca.waitFor((f) => f.type === 'delivered' && f.conv === sent.message.conv);
    assert.equal(receipt.seq, sent.message.seq);
    // And back the other way, in order.
    for (let i = 0; i < 20; i++) cb.send({ type: 'send', id: 1000 + i, clientMsgId: `y${i}`, to: a.userId, kind: 'text', body: { text: `y${i}` } });
    await ca.waitFor(() => ca.firstArrivals().filter((m) => m.message.sender === b.userId).length === 20);
    const seqs = ca.firstArrivals().filter((m) => m.message.sender === b.userId).map((m) => m.message.seq);
    assert.deepEqual(seqs, [...seqs].sort((x, y) => x - y), 'in order');
  });

  it('a block made through node 2 refuses the very next send on node 1 (no stale policy cache on a cluster node)', async () => {
    const a = await registerAndLogin(n1.url);
    const b = await registerAndLogin(n2.url);
    const ca = await connect(n1, a);
    // Sends on node 1 before the block: its policy answer for the pair would be cached on a single node.
    for (let i = 0; i < 3; i++) await ca.request({ type: 'send', clientMsgId: `pre${i}`, to: b.userId, kind: 'text', body: { text: `pre ${i}` } });
    const blk = await api(n2.url, 'PUT', `/api/blocks/${a.userId}`, undefined, b.token);
    assert.equal(blk.status, 200, JSON.stringify(blk.body));
    const err = await ca.requestError({ type: 'send', clientMsgId: 'post', to: b.userId, kind: 'text', body: { text: 'after the block' } });
    assert.equal(err.code, 'forbidden');
  });

  it('a login on node 1 kicks the same device class connected to node 2', async () => {
    const b = await registerAndLogin(n2.url, { deviceId: 'old-web' });
    const old = await connect(n2, b);
    await login(n1.url, b.username, 'new-web', 'web');
    const kicked = await old.waitFor((f) => f.type === 'kicked');
    assert.equal(kicked.reason, 'new_login');
    await old.waitClose();
    assert.equal(old.closeCode, 4102);
  });

  it('a super group’s advanced signal fans out across nodes, from the switch on', async () => {
    const [a, b, c, d] = await Promise.all([registerAndLogin(n1.url), registerAndLogin(n2.url), registerAndLogin(n1.url), registerAndLogin(n2.url)]);
    const g = (await api(n1.url, 'POST', '/api/groups', { name: 'Cluster', members: [b!.userId], joinPolicy: 'open' }, a!.token)).body.group;
    const ca = await connect(n1, a!);
    const cb = await connect(n2, b!);
    // Joins through node 1 push the group past the threshold (3): node 2 learns it from the bus.
    for (const u of [c, d]) assert.equal((await api(n1.url, 'POST', `/api/groups/${g.conv}/join`, {}, u!.token)).status, 200);
    const info = (await api(n1.url, 'GET', `/api/groups/${g.conv}`, undefined, a!.token)).body.group;
    assert.equal(info.kind, 'super');
    // The first message right after the switch already reaches node 2's follower.
    await ca.request({ type: 'send', clientMsgId: 's1', conv: g.conv, kind: 'text', body: { text: 'first super message' } });
    const first = await cb.waitFor((f) => f.type === 'advanced' && f.conv === g.conv && f.message.clientMsgId === 's1');
    assert.equal(first.seq, info.lastSeq + 1);
    // Later followers: D connects to node 2, C to node 1 (followers from the welcome).
    await sleep(2100); // past the switch's transition window: advances take the conversation's own subject
    const cd = await connect(n2, d!);
    const cc = await connect(n1, c!);
    await cb.request({ type: 'send', clientMsgId: 's2', conv: g.conv, kind: 'text', body: { text: 'from node 2' } });
    for (const x of [ca, cc, cd]) await x.waitFor((f) => f.type === 'advanced' && f.message.clientMsgId === 's2');
    await ca.request({ type: 'send', clientMsgId: 's3', conv: g.conv, kind: 'text', body: { text: 'from node 1' } });
    for (const x of [cb, cc, cd]) await x.waitFor((f) => f.type === 'advanced' && f.message.clientMsgId === 's3');
    // Each follower got each signal once; the sender's own session none.
    await sleep(200); // time for a duplicate to show
    const count = (x: RawClient, id: string) => x.frames.filter((f) => f.type === 'advanced' && f.message.clientMsgId === id).length;
    assert.deepEqual([ca, cb, cc, cd].map((x) => [count(x, 's1'), count(x, 's2'), count(x, 's3')]), [
      [0, 1, 0],
      [1, 0, 1],
      [0, 1, 1],
      [0, 1, 1],
    ]);
  });
});
