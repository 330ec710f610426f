import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MagpieError } from '@magpie/protocol';
import type { NodeLink } from '../src/bus/bus.ts';
import { GroupRouter } from '../src/services/group-router.ts';
import type { Principal } from '../src/services/account-service.ts';
import type { Sent, SendInput } from '../src/services/message-service.ts';

/**
 * GroupRouter's lanes (issue 15): a sender's posts into one conversation keep their order
 * across owner switches and forward failures. A fake NodeLink whose requests the test answers.
 */
class FakeLink implements NodeLink {
  readonly self = 'A';
  private view: { nodes: readonly string[]; version: number } = { nodes: ['A', 'B'], version: 1 };
  readonly requests: { node: string; clientMsgId: string; resolve: (s: string) => void; reject: (e: Error) => void }[] = [];
  handler: ((payload: string) => Promise<string>) | undefined;
  setNodes(nodes: string[]): void {
    this.view = { nodes, version: this.view.version + 1 };
  }
  join(): void {}
  leave(): void {}
  live() {
    return this.view;
  }
  request(node: string, _topic: string, payload: string): Promise<string> {
    const clientMsgId = (JSON.parse(payload) as { i: SendInput }).i.clientMsgId;
    return new Promise((resolve, reject) => this.requests.push({ node, clientMsgId, resolve, reject }));
  }
  serve(_topic: string, handler: (payload: string) => Promise<string>): void {
    this.handler = handler;
  }
}

const p: Principal = { userId: 'u1', deviceId: 'd1', platform: 'web', tokenHash: 'h', appVersion: '1' };
const input = (conv: string, clientMsgId: string): SendInput => ({ clientMsgId, conv, kind: 'text', body: { text: clientMsgId } });
const tick = () => new Promise((r) => setImmediate(r));

function sent(conv: string, clientMsgId: string, seq: number, inboxSeq = seq): Sent {
  const message = { id: `m${seq}`, conv, seq, sender: p.userId, kind: 'text', body: { text: clientMsgId }, time: 1, clientMsgId };
  return { message, inboxSeq, duplicate: false, json: JSON.stringify(message) };
}
const okReply = (s: Sent): string => `${JSON.stringify({ ok: true, inboxSeq: s.inboxSeq, duplicate: false })}\n${s.json}`;

function setup() {
  const link = new FakeLink();
  const local: string[] = [];
  let seq = 0;
  const router = new GroupRouter(
    link,
    async (_p, i) => {
      local.push(i.clientMsgId);
      return sent(i.conv!, i.clientMsgId, ++seq);
    },
    { timeoutMs: 1000 },
  );
  // A group that node B owns while A and B are up.
  let conv = '';
  for (let k = 0; router.ownerOf(conv) !== 'B'; k++) conv = `g:${k}`;
  return { link, local, router, conv };
}

test('a post into a normal group owned by another node is forwarded; the owner\'s answer is the send\'s result', async () => {
  const { link, local, router, conv } = setup();
  const r = router.send(p, input(conv, 'c1'));
  assert.equal(link.requests.length, 1, 'forwarded at once');
  assert.equal(link.requests[0]!.node, 'B');
  link.requests[0]!.resolve(okReply(sent(conv, 'c1', 7)));
  const s = await r;
  assert.equal(s.message.seq, 7);
  assert.deepEqual(local, []);
});

test('the owner\'s typed refusal is the send\'s error (no local append)', async () => {
  const { link, local, router, conv } = setup();
  const r = router.send(p, input(conv, 'c1'));
  link.requests[0]!.resolve(JSON.stringify({ err: 'muted', msg: 'you are muted' }));
  await assert.rejects(r, (e: unknown) => e instanceof MagpieError && e.code === 'muted');
  assert.deepEqual(local, []);
});

test('the owner changes: the next post waits until the posts in flight to the old owner settled', async () => {
  const { link, local, router, conv } = setup();
  const r1 = router.send(p, input(conv, 'c1'));
  const r2 = router.send(p, input(conv, 'c2'));
  assert.equal(link.requests.length, 2, 'same owner: both sent at once');
  link.setNodes(['A']);
  const r3 = router.send(p, input(conv, 'c3'));
  await tick();
  assert.deepEqual(local, [], 'c3 (now local) waits for c1, c2');
  link.requests[1]!.resolve(okReply(sent(conv, 'c2', 2)));
  await tick();
  assert.deepEqual(local, [], 'c1 still in flight');
  link.requests[0]!.resolve(okReply(sent(conv, 'c1', 1)));
  await Promise.all([r1, r2, r3]);
  assert.deepEqual(local, ['c3']);
});

test('a forward that fails in transit is appended here, after every earlier post of the lane settled', async () => {
  const { link, local, router, conv } = setup();
  const r1 = router.send(p, input(conv, 'c1'));
  const r2 = router.send(p, input(conv, 'c2'));
  // c2 fails at once (no responders), c1 is still held by the owner.
  link.requests[1]!.reject(new Error('503 no responders'));
  await tick();
  assert.deepEqual(local, [], 'c2 waits for c1');
  link.requests[0]!.reject(new Error('TIMEOUT'));
  const [s1, s2] = await Promise.all([r1, r2]);
  assert.deepEqual(local, ['c1', 'c2'], 'retried here in lane order');
  assert.ok(s1.message.seq < s2.message.seq);
  // The next post goes to the owner again only after the retries (it is still B).
  const r3 = router.send(p, input(conv, 'c3'));
  assert.equal(link.requests.length, 3);
  link.requests[2]!.resolve(okReply(sent(conv, 'c3', 9)));
  await r3;
});

test('a group effect of the sender waits for the sender\'s forwarded posts (settled)', async () => {
  const { link, router, conv } = setup();
  assert.equal(router.settled(p.userId, conv), undefined, 'nothing pending: no wait');
  const r1 = router.send(p, input(conv, 'c1'));
  let effect = false;
  void router.settled(p.userId, conv)!.then(() => (effect = true));
  await tick();
  assert.equal(effect, false);
  link.requests[0]!.resolve(okReply(sent(conv, 'c1', 1)));
  await r1;
  await tick();
  assert.equal(effect, true);
});

test('alone (one live node) every post is appended here, in the same turn', async () => {
  const { link, local, router, conv } = setup();
  link.setNodes(['A']);
  const r = router.send(p, input(conv, 'c1'));
  assert.deepEqual(local, ['c1'], 'handed to the local path synchronously');
  await r;
  assert.equal(link.requests.length, 0);
});

test('a group found to be super (no inbox pointer for its sender) is no longer routed', async () => {
  const { link, router, conv } = setup();
  const r = router.send(p, input(conv, 'c1'));
  link.requests[0]!.resolve(okReply(sent(conv, 'c1', 3, 0)));
  await r;
  assert.equal(router.routes(conv), false);
  assert.equal(router.routes('g:other'), true);
  assert.equal(router.routes('d:a:b'), false);
});

test('the owner side runs a forwarded post on the local path and answers with its result or typed error', async () => {
  const link = new FakeLink();
  const router = new GroupRouter(
    link,
    async (_p, i) => {
      if (i.clientMsgId === 'bad') throw new MagpieError('forbidden', 'not a member');
      return sent(i.conv!, i.clientMsgId, 5);
    },
    { timeoutMs: 1000 },
  );
  router.serve();
  const payload = (id: string) => JSON.stringify({ p, i: input('g:x', id) });
  const ok = await link.handler!(payload('c1'));
  assert.match(ok, /^\{"ok":true,"inboxSeq":5,"duplicate":false\}\n\{"id":"m5"/);
  assert.deepEqual(JSON.parse(await link.handler!(payload('bad'))), { err: 'forbidden', msg: 'not a member' });
  assert.equal(JSON.parse(await link.handler!('{')).err, 'invalid');
});

test('leave: the forwarded posts being appended here are answered before the node goes (bounded)', async () => {
  const link = new FakeLink();
  let finish!: () => void;
  const router = new GroupRouter(
    link,
    (_p, i) => new Promise<Sent>((r) => (finish = () => r(sent(i.conv!, i.clientMsgId, 1)))),
    { timeoutMs: 1000 },
  );
  router.serve();
  const answered = link.handler!(JSON.stringify({ p, i: input('g:x', 'c1') }));
  let left = false;
  const leaving = router.leave(5000).then(() => (left = true));
  await tick();
  assert.equal(left, false, 'waits for the post in hand');
  finish();
  assert.match(await answered, /"ok":true/);
  await leaving;
  assert.equal(left, true);
  // Nothing in hand: at once; and a post that never ends costs at most the bound.
  const idle = new GroupRouter(link, () => new Promise<Sent>(() => {}), { timeoutMs: 1000 });
  await idle.leave(10);
  idle.serve();
  void link.handler!(JSON.stringify({ p, i: input('g:x', 'c2') }));
  const t0 = Date.now();
  await idle.leave(50);
  assert.ok(Date.now() - t0 < 1000);
});
