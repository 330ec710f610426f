import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { pgUnavailable, testDatabase } from './pg-test-helpers.ts';
import { NATS_URL, natsUnavailable } from './nats-test-helpers.ts';
import { startServer, registerAndLogin, RawClient, ClientSet, api, sleep, type ServerProcess, type Account } from './harness.ts';

/**
 * Issue 15: correctness of a cluster on PostgreSQL + NATS (two node processes, one
 * database, the shared NATS). Needs PostgreSQL and NATS; skips without them.
 */
const skip = (await pgUnavailable()) ?? (await natsUnavailable());

describe('cluster correctness (PostgreSQL + NATS, two nodes)', { skip: skip ?? false }, () => {
  const db = testDatabase('magpie_i15');
  let n1: ServerProcess;
  let n2: ServerProcess;
  before(async () => {
    const url = await db.create();
    const env = {
      MAGPIE_STORE: url.toString(),
      MAGPIE_NATS: NATS_URL,
      MAGPIE_USER_RATE: '5000',
      MAGPIE_USER_BURST: '5000',
      MAGPIE_SUPER_GROUP_THRESHOLD: '3',
    };
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

  it('pipelined direct messages of one sender are stored in the order they were sent (block/stranger checks finish in any order)', async () => {
    const a = await registerAndLogin(n1.url);
    const b = await registerAndLogin(n2.url);
    const ca = await connect(n1, a);
    const cb = await connect(n2, b);
    const total = 200;
    // Raw bursts of 8 frames written at once, without waiting for replies in between.
    for (let burst = 0; burst < total / 8; burst++) {
      for (let i = 0; i < 8; i++) {
        const n = burst * 8 + i;
        ca.send({ type: 'send', id: 10_000 + n, clientMsgId: `o${n}`, to: b.userId, kind: 'text', body: { text: `${n}` } });
      }
      await sleep(2);
    }
    await ca.waitFor(() => ca.frames.filter((f) => f.type === 'reply' && f.id >= 10_000).length === total, 20_000);
    const seqOf = new Map<number, number>(ca.frames.filter((f) => f.type === 'reply' && f.id >= 10_000).map((f) => [f.id - 10_000, f.result.message.seq]));
    const seqs = Array.from({ length: total }, (_, n) => seqOf.get(n));
    assert.deepEqual(seqs, Array.from({ length: total }, (_, n) => n + 1), 'seq follows send order');
    // This raw client never ACKs, so under load the server's retries repeat frames it already
    // sent: the order that counts is each message's first arrival.
    await cb.waitFor(() => cb.firstArrivals().length === total, 20_000);
    assert.deepEqual(cb.firstArrivals().map((m) => Number(m.message.body.text)), Array.from({ length: total }, (_, n) => n), 'the peer sees them in send order');
  });

  it('a super-group member removed through another node gets nothing after its removal notice; a switch through another node misses nothing', async () => {
    // Threshold 3: owner A (node 1) + B (node 2) + C (node 2) is normal; D joining makes it super.
    const [a, b, c, d] = await Promise.all([registerAndLogin(n1.url), registerAndLogin(n2.url), registerAndLogin(n2.url), registerAndLogin(n1.url)]);
    const g = (await api(n1.url, 'POST', '/api/groups', { name: 'Handover', members: [b!.userId, c!.userId], joinPolicy: 'open' }, a!.token)).body.group;
    const ca = await connect(n1, a!);
    const cb = await connect(n2, b!);
    const cc = await connect(n2, c!);
    // The switch goes through node 1 while B sends through node 2 at once: node 2 learns of it only from the Bus.
    const joined = api(n1.url, 'POST', `/api/groups/${g.conv}/join`, {}, d!.token);
    const burst1: Promise<any>[] = [];
    for (let i = 0; i < 30; i++) {
      burst1.push(cb.request({ type: 'send', clientMsgId: `w${i}`, conv: g.conv, kind: 'text', body: { text: `w${i}` } }).catch(() => null));
      if (i % 5 === 0) await sleep(3);
    }
    assert.equal((await joined).status, 200);
    const sent1 = (await Promise.all(burst1)).filter(Boolean);
    const info = (await api(n1.url, 'GET', `/api/groups/${g.conv}`, undefined, a!.token)).body.group;
    assert.equal(info.kind, 'super');
    // The join (the switch) is the newest system notice so far.
    const switchSeq = Math.max(0, ...(await cc.request({ type: 'history', conv: g.conv, limit: 100 })).messages.filter((m: any) => m.kind === 'system').map((m: any) => m.seq));
    assert.ok(switchSeq, 'the join notice is in the history');
    const afterSwitch = sent1.map((r) => r.message.seq).filter((s: number) => s > switchSeq);
    // C (node 2, other than the sender's session) gets every message after the switch live, once.
    await cc.waitFor(() => afterSwitch.every((s: number) => cc.frames.some((f) => f.type === 'advanced' && f.seq === s)), 10_000).catch(() => undefined);
    const missed = afterSwitch.filter((s: number) => !cc.frames.some((f) => (f.type === 'advanced' && f.seq === s) || (f.type === 'msg' && f.message.seq === s)));
    assert.deepEqual(missed, [], 'no live delivery missed after the switch');

    // Now B keeps sending through node 2 while A removes C through node 1.
    const burst2: Promise<any>[] = [];
    let stop = false;
    const sender = (async () => {
      for (let i = 0; !stop && i < 400; i++) {
        burst2.push(cb.request({ type: 'send', clientMsgId: `r${i}`, conv: g.conv, kind: 'text', body: { text: `r${i}` } }, 15_000).catch(() => null));
        if (i % 4 === 0) await sleep(2);
      }
    })();
    await sleep(60);
    const removed = await api(n1.url, 'POST', `/api/groups/${g.conv}/kick`, { users: [c!.userId] }, a!.token);
    await sleep(150);
    stop = true;
    await sender;
    await Promise.all(burst2);
    assert.ok(removed.status < 300, JSON.stringify(removed.body));
    let removalSeq = 0;
    for (let after = switchSeq; !removalSeq; ) {
      const page = (await cb.request({ type: 'history', conv: g.conv, after, limit: 100 })).messages;
      if (page.length === 0) break;
      removalSeq = page.find((m: any) => m.kind === 'system')?.seq ?? 0;
      after = Math.max(...page.map((m: any) => m.seq));
    }
    assert.ok(removalSeq);
    await sleep(500);
    const late = cc.frames.filter((f) => f.type === 'advanced' && f.conv === g.conv && f.seq > removalSeq).map((f) => f.seq);
    assert.deepEqual(late, [], `C got messages after its removal at ${removalSeq}`);
    assert.ok(cc.frames.some((f) => f.type === 'advanced' && f.seq === removalSeq), 'C got its removal notice');
    void ca;
  });
});
