import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { pgUnavailable, testDatabase } from './pg-test-helpers.ts';
import { NATS_URL, natsUnavailable } from './nats-test-helpers.ts';
import { startServer, registerAndLogin, login, RawClient, api, sleep, type ServerProcess } from './harness.ts';

/**
 * Receipts, typing and presence across two nodes (PostgreSQL + NATS): group readers on both
 * nodes set bits of one message without a lock (no bit lost); notices, typing and presence
 * reach users on the other node. Needs PostgreSQL and NATS; skips without them.
 */
const skip = (await pgUnavailable()) ?? (await natsUnavailable());

describe('receipts and presence on a cluster of two nodes (PostgreSQL + NATS)', { skip: skip ?? false }, () => {
  const db = testDatabase('magpie_receipts');
  let n1: ServerProcess;
  let n2: ServerProcess;
  const clients: RawClient[] = [];
  before(async () => {
    const url = await db.create();
    const env = { MAGPIE_STORE: url.toString(), MAGPIE_NATS: NATS_URL, MAGPIE_PRESENCE_DEBOUNCE_MS: '100', MAGPIE_RECEIPTS_FLUSH_MS: '20', MAGPIE_USER_RATE: '2000', MAGPIE_USER_BURST: '2000' };
    n1 = await startServer({ env });
    n2 = await startServer({ env });
  });
  after(async () => {
    for (const c of clients) c.close();
    assert.deepEqual(clients.flatMap((c) => c.schemaErrors), []);
    await Promise.all([n1?.stop(), n2?.stop()]);
    await db.drop();
  });
  const connect = async (node: ServerProcess, token: string) => {
    const { client } = await RawClient.connect(node.wsUrl, token);
    clients.push(client);
    return client;
  };

  it('readers on both nodes: every read counted once, the sender on node 1 sees 0 unread; read.receipt and typing cross nodes', async () => {
    const a = await registerAndLogin(n1.url);
    const readers = await Promise.all(Array.from({ length: 12 }, () => registerAndLogin(n1.url)));
    const created = await api(n1.url, 'POST', '/api/groups', { name: 'Cluster', members: readers.map((r) => r.userId) }, a.token);
    const conv: string = created.body.group.conv;
    const ca = await connect(n1, a.token);
    const rc = await Promise.all(readers.map((r, i) => connect(i % 2 ? n1 : n2, r.token)));
    const sent = await ca.request({ type: 'send', clientMsgId: 'c1', conv, kind: 'text', body: { text: 'everyone open this' } });
    const seq = sent.message.seq;
    await sleep(200);
    // Everyone opens at once, half on each node.
    await Promise.all(rc.map((c) => c.request({ type: 'read', conv, seq })));
    await ca.waitFor((f) => f.type === 'read.counts' && f.counts.some((x: number[]) => x[0] === seq && x[1] === 0), 8000);
    assert.deepEqual((await ca.request({ type: 'receipts.query', conv, seqs: [seq] })).counts, [[seq, 0, 12]]);
    const lists = await ca.request({ type: 'receipts.members', conv, seq });
    assert.equal(lists.read.length, 12);
    assert.deepEqual(lists.unread, []);

    // 1:1 read receipt and typing from node 2 to node 1.
    const b = readers[1]!; // on n1
    const bOn2 = await login(n1.url, b.username, 'desk', 'desktop');
    const cb2 = await connect(n2, bOn2.token);
    const d = await ca.request({ type: 'send', clientMsgId: 'c2', to: b.userId, kind: 'text', body: { text: 'hi' } });
    await cb2.waitFor((f) => f.type === 'msg' && f.message.conv === d.message.conv);
    await cb2.request({ type: 'typing', conv: d.message.conv });
    await ca.waitFor((f) => f.type === 'typing' && f.user === b.userId);
    await cb2.request({ type: 'read', conv: d.message.conv, seq: 1 });
    await ca.waitFor((f) => f.type === 'read.receipt' && f.by === b.userId);
  });

  it('presence is cluster-wide: online on node 2 is online for a subscriber on node 1; offline is published once the last device anywhere leaves', async () => {
    const a = await registerAndLogin(n1.url);
    const b = await registerAndLogin(n1.url, { deviceId: 'phone', platform: 'ios' });
    const bDesk = await login(n1.url, b.username, 'desk', 'desktop');
    assert.equal((await api(n1.url, 'PUT', '/api/me/privacy', { presence: 'everyone' }, b.token)).status, 200);
    const b2 = await connect(n2, b.token);
    const ca = await connect(n1, a.token);
    const sub = await ca.request({ type: 'presence.sub', users: [b.userId] });
    assert.equal(sub.presence[0].online, true, 'online on the other node');
    const b1 = await connect(n1, bDesk.token);
    b2.close();
    await sleep(600);
    assert.equal(ca.frames.filter((f) => f.type === 'presence' && f.online === false).length, 0, 'still online on node 1: ' + JSON.stringify(ca.frames.filter((f) => f.type === 'presence')));
    b1.close();
    const off = await ca.waitFor((f) => f.type === 'presence' && f.user === b.userId && f.online === false, 5000);
    assert.ok(off.lastSeen > 0);
  });
  // Issue 15: the node that appends a group message counted every device-less member connected
  // to the OTHER node as offline in the push funnel (requested + no_device, and their
  // push_stats writes): local presence only. It now reads the cluster's presence events.
  it('the push funnel counts device-less members connected to the other node as online, and one never connected as offline once', async () => {
    const noDevice = async () => {
      let n = 0;
      for (const node of [n1, n2]) {
        const text = await (await fetch(`${node.url}/metrics`)).text();
        for (const m of text.matchAll(/^magpie_push_dropped_total\{([^}]*)\} (\S+)$/gm)) if (m[1]!.includes('reason="no_device"') && m[1]!.includes('category="im"')) n += Number(m[2]);
      }
      return n;
    };
    const a = await registerAndLogin(n1.url);
    const members = await Promise.all(Array.from({ length: 6 }, () => registerAndLogin(n1.url)));
    const away = await registerAndLogin(n1.url);
    const created = await api(n1.url, 'POST', '/api/groups', { name: 'Funnel', members: [...members, away].map((r) => r.userId) }, a.token);
    const conv: string = created.body.group.conv;
    const ca = await connect(n1, a.token);
    const mc = await Promise.all(members.map((r, i) => connect(i % 2 ? n1 : n2, r.token)));
    await sleep(500); // presence settles (100 ms debounce) and reaches both nodes
    const before = await noDevice();
    await ca.request({ type: 'send', clientMsgId: 'f1', conv, kind: 'text', body: { text: 'counted right' } });
    for (const c of mc) {
      const f = await c.waitFor((x) => x.type === 'msg' && x.message.conv === conv);
      c.send({ type: 'ack', inboxSeq: f.inboxSeq });
    }
    await sleep(500); // the offline-push intake runs after the commit
    assert.equal((await noDevice()) - before, 1, 'only the member who never connected is counted as offline');
  });
});
