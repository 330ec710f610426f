import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { pgUnavailable, testDatabase } from './pg-test-helpers.ts';
import { NATS_URL, natsUnavailable } from './nats-test-helpers.ts';
import { startServer, registerAndLogin, RawClient, ClientSet, api, sleep, type ServerProcess, type Account } from './harness.ts';

/**
 * Issue 15: a normal group's posts are appended by one owner node (services/group-router.ts):
 * the sender's node forwards them over NATS. Three node processes on one PostgreSQL database
 * and the shared NATS; the owner is killed with SIGKILL mid-stream, and the node set changes
 * (one joins, one leaves) mid-stream. Needs PostgreSQL and NATS; skips without them.
 */
const skip = (await pgUnavailable()) ?? (await natsUnavailable());

type Route = 'forwarded' | 'retried_here' | 'served';

async function metric(node: ServerProcess, name: string, label?: string): Promise<number> {
  const text = await (await fetch(`${node.url}/metrics`)).text();
  const re = new RegExp(`^${name}${label ? `\\{route="${label}"\\}` : ''} (\\d+)`, 'm');
  return Number(re.exec(text)?.[1] ?? 0);
}

const routed = (node: ServerProcess, route: Route): Promise<number> => metric(node, 'magpie_group_posts_routed_total', route);

async function waitForNodes(nodes: ServerProcess[], n: number): Promise<void> {
  const until = Date.now() + 10_000;
  for (;;) {
    const seen = await Promise.all(nodes.map((x) => metric(x, 'magpie_cluster_nodes')));
    if (seen.every((s) => s === n)) return;
    if (Date.now() > until) throw new Error(`nodes see ${seen.join(',')} nodes, not ${n}`);
    await sleep(50);
  }
}

interface Result {
  i: number;
  seq: number | null;
  err?: string;
}

/** `count` sends of `client` into `conv`, pipelined (a pause every `every`), with ids `${tag}${i}`. */
async function stream(client: RawClient, conv: string, tag: string, count: number, opts: { every?: number; pauseMs?: number; timeoutMs?: number; onSent?: (i: number) => void | Promise<void> } = {}): Promise<Result[]> {
  const pending: Promise<Result>[] = [];
  for (let i = 0; i < count; i++) {
    pending.push(
      client
        .request({ type: 'send', clientMsgId: `${tag}${i}`, conv, kind: 'text', body: { text: `${tag}${i}` } }, opts.timeoutMs ?? 20_000)
        .then((r: any) => ({ i, seq: r.message.seq as number }))
        .catch((e: any) => ({ i, seq: null, err: String(e?.code ?? e?.message ?? e) })),
    );
    if ((i + 1) % (opts.every ?? 4) === 0) await sleep(opts.pauseMs ?? 2);
    await opts.onSent?.(i);
  }
  return Promise.all(pending);
}

/** The whole history of `conv` as `reader` sees it. */
async function historyOf(reader: RawClient, conv: string): Promise<any[]> {
  const all: any[] = [];
  for (let after = 0; ; ) {
    const page = (await reader.request({ type: 'history', conv, after, limit: 100 })).messages as any[];
    if (page.length === 0) return all;
    all.push(...page);
    after = Math.max(...page.map((m) => m.seq));
  }
}

/** Every acknowledged send is stored once, under the seq it was acknowledged with; the sender's messages are stored in send order. */
function assertStored(history: any[], sender: string, tag: string, results: Result[]): void {
  const mine = history.filter((m) => m.sender === sender && typeof m.clientMsgId === 'string' && m.clientMsgId.startsWith(tag) && /^\d+$/.test(m.clientMsgId.slice(tag.length)));
  const ids = mine.map((m) => m.clientMsgId as string);
  assert.equal(new Set(ids).size, ids.length, `no duplicate of ${tag}`);
  const order = mine.sort((x, y) => x.seq - y.seq).map((m) => Number(m.clientMsgId.slice(tag.length)));
  const sorted = [...order].sort((x, y) => x - y);
  assert.deepEqual(order, sorted, `${tag}: stored in send order`);
  const bySeq = new Map(mine.map((m) => [Number(m.clientMsgId.slice(tag.length)), m.seq as number]));
  for (const r of results) if (r.seq !== null) assert.equal(bySeq.get(r.i), r.seq, `${tag}${r.i} acknowledged with seq ${r.seq} is stored there`);
}

describe('cluster group routing (PostgreSQL + NATS, three nodes)', { skip: skip ?? false }, () => {
  const db = testDatabase('magpie_route');
  let env: Record<string, string>;
  const nodes: ServerProcess[] = [];
  before(async () => {
    const url = await db.create();
    env = {
      MAGPIE_STORE: url.toString(),
      MAGPIE_NATS: NATS_URL,
      MAGPIE_USER_RATE: '5000',
      MAGPIE_USER_BURST: '5000',
      MAGPIE_GROUP_FORWARD_TIMEOUT_MS: '1500',
      MAGPIE_NODE_HEARTBEAT_MS: '300',
    };
    // The first node migrates the database; the others start together.
    nodes.push(await startServer({ env }));
    nodes.push(...(await Promise.all([startServer({ env }), startServer({ env })])));
    await waitForNodes(nodes, 3);
  });
  after(async () => {
    clients.closeChecked();
    await Promise.all(nodes.map((n) => n.stop()));
    await db.drop();
  });

  const clients = new ClientSet();
  const connect = (node: ServerProcess, who: Account): Promise<RawClient> => clients.connect(node, who);
  async function group(creator: Account, members: Account[]): Promise<string> {
    const g = (await api(live()[0]!.url, 'POST', '/api/groups', { name: 'Routed', members: members.map((m) => m.userId) }, creator.token)).body.group;
    return g.conv as string;
  }
  const live = (): ServerProcess[] => nodes.filter((n) => n.proc.exitCode === null && n.proc.signalCode === null);
  async function counts(route: Route, of = live()): Promise<number[]> {
    return Promise.all(of.map((n) => routed(n, route)));
  }
  /** The node that appends `conv`'s posts: one probe send from `probe` (on `from`), and the node whose `served` moved (or `from` itself). */
  async function ownerOf(conv: string, probe: RawClient, from: ServerProcess): Promise<ServerProcess> {
    const of = live();
    const before = await counts('served', of);
    await probe.request({ type: 'send', clientMsgId: `probe-${Math.random().toString(36).slice(2)}`, conv, kind: 'text', body: { text: 'probe' } });
    const after = await counts('served', of);
    const moved = of.filter((_, k) => after[k]! > before[k]!);
    return moved[0] ?? from;
  }

  it('a normal group\'s posts from three nodes are all appended by one node', async () => {
    const [n1, n2, n3] = nodes as [ServerProcess, ServerProcess, ServerProcess];
    const [a, b, c] = await Promise.all([registerAndLogin(n1.url), registerAndLogin(n2.url), registerAndLogin(n3.url)]);
    const conv = await group(a!, [b!, c!]);
    const [ca, cb, cc] = await Promise.all([connect(n1, a!), connect(n2, b!), connect(n3, c!)]);
    const fwd0 = await counts('forwarded');
    const srv0 = await counts('served');
    const res = await Promise.all([stream(ca, conv, 'a', 10, { every: 1, pauseMs: 5 }), stream(cb, conv, 'b', 10, { every: 1, pauseMs: 5 }), stream(cc, conv, 'c', 10, { every: 1, pauseMs: 5 })]);
    for (const r of res) assert.deepEqual(r.filter((x) => x.seq === null), [], 'every send acknowledged');
    const fwd = (await counts('forwarded')).map((x, k) => x - fwd0[k]!);
    const srv = (await counts('served')).map((x, k) => x - srv0[k]!);
    // The owner appends its own sender's 10 and serves the other two nodes' 20.
    assert.equal(fwd.reduce((x, y) => x + y, 0), 20, `forwarded per node ${fwd.join(',')}`);
    assert.deepEqual([...srv].sort((x, y) => x - y), [0, 0, 20], `served per node ${srv.join(',')}`);
    assert.equal(fwd[srv.indexOf(20)], 0, 'the owner forwards nothing');
    // Fan-out as usual: each member gets the other members' 20 messages live.
    await cc.waitFor(() => new Set(cc.frames.filter((f) => f.type === 'msg' && f.message.conv === conv).map((f) => f.message.seq)).size >= 20, 10_000);
    const h = await historyOf(ca, conv);
    assertStored(h, a!.userId, 'a', res[0]!);
    assertStored(h, b!.userId, 'b', res[1]!);
    assertStored(h, c!.userId, 'c', res[2]!);
  });

  it('a bigger group (batched fan-out over NATS): every member on every node gets each post live once, its own inboxSeq in order', async () => {
    // 12 members, 4 per node: 11 recipients ≥ max(8, 2 × 3 nodes), so the owner sends each post's deliveries as one NATS event.
    const members = await Promise.all(Array.from({ length: 12 }, (_, i) => registerAndLogin(nodes[i % 3]!.url)));
    const conv = await group(members[0]!, members.slice(1));
    const cs = await Promise.all(members.map((m, i) => connect(nodes[i % 3]!, m)));
    const posts = 6;
    const res = await Promise.all([stream(cs[0]!, conv, 'p', posts, { every: 1, pauseMs: 5 }), stream(cs[4]!, conv, 'q', posts, { every: 1, pauseMs: 5 }), stream(cs[8]!, conv, 'r', posts, { every: 1, pauseMs: 5 })]);
    for (const r of res) assert.deepEqual(r.filter((x) => x.seq === null), [], 'every send acknowledged');
    for (const [i, c] of cs.entries()) {
      // Everyone else's posts (the sender's own connection gets no copy of its own).
      const want = [0, 4, 8].filter((k) => k !== i).length * posts;
      await c.waitFor(() => c.frames.filter((f) => f.type === 'msg' && f.message.conv === conv && f.message.sender !== members[i]!.userId).length >= want, 10_000);
      const got = c.frames.filter((f) => f.type === 'msg' && f.message.conv === conv);
      const seqs = got.map((f) => f.inboxSeq as number);
      assert.equal(new Set(got.map((f) => f.message.id)).size, got.length, `member ${i}: each post once`);
      assert.deepEqual(seqs, [...seqs].sort((x, y) => x - y), `member ${i}: inboxSeq in order`);
      assert.equal(new Set(seqs).size, seqs.length, `member ${i}: one inboxSeq per post`);
    }
  });

  it("members' ACKs of a batched fan-out are written by the node that fanned it out; every member counted once", async () => {
    // 12 members, 4 per node; one sender: its posts are appended (and fanned out) by the group's owner.
    const members = await Promise.all(Array.from({ length: 12 }, (_, i) => registerAndLogin(nodes[i % 3]!.url)));
    const conv = await group(members[0]!, members.slice(1));
    const cs = await Promise.all(members.map((m, i) => connect(nodes[i % 3]!, m)));
    const owner = await ownerOf(conv, cs[0]!, nodes[0]!);
    const ackRoute = (n: ServerProcess, route: string) => metric(n, 'magpie_acks_routed_total', route);
    const before = await Promise.all(nodes.map((n) => Promise.all(['forwarded', 'served', 'written_here'].map((r) => ackRoute(n, r)))));
    const posts = 4;
    const res = await stream(cs[0]!, conv, 'ack', posts, { every: 1, pauseMs: 20 });
    assert.deepEqual(res.filter((x) => x.seq === null), [], 'every send acknowledged');
    // Every member but the sender stores all of them and acknowledges each as it arrives.
    await Promise.all(
      cs.slice(1).map(async (c) => {
        for (let k = 0; k < posts; k++) {
          const f = await c.waitFor((x) => x.type === 'msg' && x.message.conv === conv && x.message.clientMsgId === `ack${k}`, 10_000);
          c.send({ type: 'ack', inboxSeq: f.inboxSeq });
        }
      }),
    );
    // The sender's counts reach 11 for each post (each member counted once, wherever its ACK was written).
    const seqs = res.map((r) => r.seq!);
    const until = Date.now() + 10_000;
    for (;;) {
      const h = await historyOf(cs[0]!, conv);
      const counts = h.filter((m) => seqs.includes(m.seq)).map((m) => m.deliveredCount);
      if (counts.length === posts && counts.every((x) => x === 11)) break;
      if (Date.now() > until) assert.fail(`delivered counts ${counts.join(',')}, want 11 each`);
      await sleep(100);
    }
    const after = await Promise.all(nodes.map((n) => Promise.all(['forwarded', 'served', 'written_here'].map((r) => ackRoute(n, r)))));
    const d = after.map((a, k) => a.map((x, j) => x - before[k]![j]!));
    const o = nodes.indexOf(owner);
    // The recipients on the two other nodes: their ACKs go to the owner (coalesced per device and forward: at least one each).
    const away = (k: number) => members.filter((_, i) => i > 0 && i % 3 === k).length;
    assert.equal(d[o]![0], 0, 'the owner forwards nothing');
    assert.ok(d[o]![1]! >= away((o + 1) % 3) + away((o + 2) % 3), `the owner wrote the others' ACKs (served ${d[o]![1]})`);
    for (const [k, x] of d.entries()) if (k !== o) assert.ok(x[0]! >= away(k) && x[2] === 0, `node ${k}: forwarded ${x[0]}, written here ${x[2]}`);
    assert.equal(d.reduce((t, x) => t + x[0]!, 0), d[o]![1], 'every forwarded ACK served');
  });

  it('pipelined posts of two senders on two nodes are each stored in send order, once', async () => {
    const [n1, n2] = nodes as [ServerProcess, ServerProcess];
    const [a, b] = await Promise.all([registerAndLogin(n1.url), registerAndLogin(n2.url)]);
    const conv = await group(a!, [b!]);
    const [ca, cb] = await Promise.all([connect(n1, a!), connect(n2, b!)]);
    const [ra, rb] = await Promise.all([stream(ca, conv, 'p', 150, { every: 8 }), stream(cb, conv, 'q', 150, { every: 8 })]);
    assert.deepEqual([...ra, ...rb].filter((x) => x.seq === null), [], 'every send acknowledged');
    const h = await historyOf(ca, conv);
    assertStored(h, a!.userId, 'p', ra);
    assertStored(h, b!.userId, 'q', rb);
    assert.deepEqual(h.map((m) => m.seq), Array.from({ length: h.length }, (_, k) => k + 1), 'no gap');
  });

  it('kill -9 of the owner mid-stream: every acknowledged post stored once, in send order', async () => {
    const [n1, n2] = nodes as [ServerProcess, ServerProcess];
    const [a, b] = await Promise.all([registerAndLogin(n1.url), registerAndLogin(n2.url)]);
    const conv = await group(a!, [b!]);
    const [ca, cb] = await Promise.all([connect(n1, a!), connect(n2, b!)]);
    // The sender is on a node that is not the owner.
    const owner = await ownerOf(conv, ca, n1);
    const [sender, client] = owner === n1 ? [b!, cb] : [a!, ca];
    const senderNode = owner === n1 ? n2 : n1;
    const retried0 = await routed(senderNode, 'retried_here');
    let killed: Promise<void> | undefined;
    const results = await stream(client, conv, 'k', 300, {
      every: 3,
      pauseMs: 3,
      onSent: (i) => {
        if (i === 120) killed = owner.kill('SIGKILL');
      },
    });
    await killed;
    assert.deepEqual(results.filter((x) => x.seq === null), [], 'every send acknowledged (forwards to the dead owner appended on the sender\'s node)');
    const h = await historyOf(client, conv);
    assertStored(h, sender.userId, 'k', results);
    assert.equal(h.filter((m) => m.clientMsgId?.startsWith('k')).length, 300);
    // Sends routed to the dead owner before the others noticed (its heartbeats stopped) were appended on the sender's node.
    assert.ok((await routed(senderNode, 'retried_here')) > retried0, 'forwards to the dead owner were appended on the sender\'s node');
    await waitForNodes(live(), 2);
  });

  it('the node set changes mid-stream (one node joins, the owner leaves): order kept, nothing lost or doubled', async () => {
    const [p, q] = live() as [ServerProcess, ServerProcess];
    const users = await Promise.all([registerAndLogin(p.url), registerAndLogin(q.url)]);
    const [a, b] = users as [Account, Account];
    const convs: string[] = [];
    for (let k = 0; k < 8; k++) convs.push(await group(a, [b]));
    const ca = await connect(p, a);
    let joined: Promise<void> | undefined;
    let left: Promise<void> | undefined;
    const all = await Promise.all(
      convs.map((conv, k) =>
        stream(ca, conv, `s${k}-`, 60, {
          every: 2,
          pauseMs: 6,
          onSent: async (i) => {
            if (k !== 0) return;
            if (i === 15) {
              joined = startServer({ env }).then(async (n) => {
                nodes.push(n);
                await waitForNodes(live(), 3);
              });
            }
            // The other node goes (gracefully: it says goodbye and answers what it holds).
            if (i === 40) {
              await joined;
              left = q.stop();
            }
          },
        }),
      ),
    );
    await left;
    for (const [k, results] of all.entries()) {
      assert.deepEqual(results.filter((x) => x.seq === null), [], `conv ${k}: every send acknowledged`);
      assertStored(await historyOf(ca, convs[k]!), a.userId, `s${k}-`, results);
    }
    await waitForNodes(live(), 2);
  });

  it('kill -9 of the sender\'s node mid-stream: the client resends what was not acknowledged through another node; each post stored once, in send order', async () => {
    const [p, q] = live() as [ServerProcess, ServerProcess];
    const [a, b] = (await Promise.all([registerAndLogin(p.url), registerAndLogin(q.url)])) as [Account, Account];
    const conv = await group(a, [b]);
    const [ca, cb] = await Promise.all([connect(p, a), connect(q, b)]);
    const owner = await ownerOf(conv, ca, p);
    // The sender is on the node that is not the owner; the owner survives.
    const [sender, client, senderNode] = owner === p ? [b, cb, q] : [a, ca, p];
    let killed: Promise<void> | undefined;
    const results = await stream(client, conv, 'x', 200, {
      every: 3,
      pauseMs: 3,
      timeoutMs: 3000,
      onSent: (i) => {
        if (i === 80) killed = senderNode.kill('SIGKILL');
      },
    });
    await killed;
    const unacked = results.filter((r) => r.seq === null).map((r) => r.i);
    assert.ok(unacked.length > 0, 'the kill cut the stream');
    // As the SDK does after a reconnect: resend what was not acknowledged, in order, with the same clientMsgIds.
    const again = await connect(owner, sender);
    for (const i of unacked) {
      const r = await again.request({ type: 'send', clientMsgId: `x${i}`, conv, kind: 'text', body: { text: `x${i}` } }, 10_000);
      results[i] = { i, seq: r.message.seq };
    }
    const h = await historyOf(again, conv);
    assertStored(h, sender.userId, 'x', results);
    assert.equal(h.filter((m) => m.clientMsgId?.startsWith('x')).length, 200);
  });
});
