/**
 * The one contract test suite for `Bus` (src/bus/bus.ts). Every implementation runs it:
 * test/bus-memory.test.ts (one node), test/bus-nats.test.ts (two nodes on one broker).
 *
 * Ids carry random suffixes and ids with ':' '.' '*' '>' and spaces, so the suite can run
 * next to other users of the same broker and proves that ids need no care from callers.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { Bus, BusEvent, DeliverEvent } from '../src/bus/bus.ts';
import { msgFrame } from '../src/delivery/msg-frame.ts';

export interface BusFactory {
  /**
   * Open one node's Bus. With `cluster`, every call is a separate node of one cluster
   * (events route between them by interest); without it there is one node, which receives
   * everything, and watch calls are no-ops.
   */
  open(): Promise<Bus>;
  cluster: boolean;
}

/** A node under test: its bus and everything its handler received. */
interface Node {
  bus: Bus;
  got: BusEvent[];
  /** Resolves with the first received event matching `pred` (seen already or later). */
  next(pred: (e: BusEvent) => boolean, timeoutMs?: number): Promise<BusEvent>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const id = (label: string) => `${label}:${randomBytes(4).toString('hex')}.x* >y z`;
const frameOf = (e: BusEvent) => ('frame' in e ? e.frame : undefined);
const forUser = (u: string) => (e: BusEvent) => (e.type === 'deliver' || e.type === 'kick') && e.userId === u;
const deliver = (userId: string, n: number): BusEvent => ({ type: 'deliver', userId, frame: `{"type":"msg","inboxSeq":${n}}`, inboxSeq: n });

export function runBusContract(name: string, factory: BusFactory): void {
  describe(`Bus contract: ${name}`, () => {
    const opened: Bus[] = [];
    after(async () => {
      await Promise.all(opened.map((b) => b.close()));
    });

    async function node(): Promise<Node> {
      const bus = await factory.open();
      opened.push(bus);
      const got: BusEvent[] = [];
      const waiters: { pred: (e: BusEvent) => boolean; resolve: (e: BusEvent) => void }[] = [];
      bus.subscribe((e) => {
        got.push(e);
        for (let i = waiters.length - 1; i >= 0; i--) {
          if (waiters[i]!.pred(e)) waiters.splice(i, 1)[0]!.resolve(e);
        }
      });
      return {
        bus,
        got,
        next(pred, timeoutMs = 5000) {
          const seen = got.find(pred);
          if (seen) return Promise.resolve(seen);
          return new Promise((resolve, reject) => {
            const t = setTimeout(() => reject(new Error(`no matching event in ${timeoutMs} ms; got ${JSON.stringify(got.slice(-3))}`)), timeoutMs);
            waiters.push({ pred, resolve: (e) => (clearTimeout(t), resolve(e)) });
          });
        },
      };
    }

    /** Two nodes of one cluster, or the single node twice. */
    async function pair(): Promise<[Node, Node]> {
      const a = await node();
      return [a, factory.cluster ? await node() : a];
    }

    /**
     * Everything `from` published before now has reached `to`: `from` sends a marker to a
     * user that `to` watches, and one publisher's events arrive in order.
     */
    async function barrier(from: Node, to: Node): Promise<void> {
      const u = id('barrier');
      await to.bus.watchUser(u);
      from.bus.publish({ type: 'deliver', userId: u, frame: '{"type":"barrier"}' });
      await to.next(forUser(u));
      to.bus.unwatchUser(u);
    }

    it('delivers a user’s events in publish order from one node, each exactly once', async () => {
      const [a, b] = await pair();
      const u = id('order');
      await b.bus.watchUser(u);
      await a.bus.watchUser(u);
      for (let i = 1; i <= 500; i++) a.bus.publish(i % 50 === 0 ? { type: 'kick', userId: u, tokenHashes: [`t${i}`], reason: 'new_login' } : deliver(u, i));
      await b.next((e) => e.type === 'kick' && e.userId === u && e.tokenHashes[0] === 't500');
      const seqOf = (e: BusEvent) => (e.type === 'deliver' ? e.inboxSeq : e.type === 'kick' ? Number(e.tokenHashes[0]!.slice(1)) : -1);
      const expected = Array.from({ length: 500 }, (_, i) => i + 1);
      assert.deepEqual(b.got.filter(forUser(u)).map(seqOf), expected, 'the watching node got every event once, in order');
      // The publishing node watches the user too: its own events reach it once, not echoed back.
      await barrier(b, a);
      if (b !== a) assert.deepEqual(a.got.filter(forUser(u)).map(seqOf), expected, 'the publisher got its own events once, in order');
      a.bus.unwatchUser(u);
      b.bus.unwatchUser(u);
    });

    it('publishDeliveries: a fan-out reaches each user as its own deliver event, in order with the publisher’s other events, once', async () => {
      const [a, b] = await pair();
      // A cluster's nodes that joined one scope know each other: big fan-outs then go as one event (nats-bus.ts).
      for (const joined of [false, true]) {
        if (joined && a.bus.nodes && b.bus.nodes) {
          const scope = id('scope');
          a.bus.nodes.join(scope, 200);
          b.bus.nodes.join(scope, 200);
          const t0 = Date.now();
          while (a.bus.nodes.live().nodes.length < 2 || b.bus.nodes.live().nodes.length < 2) {
            assert.ok(Date.now() - t0 < 5000, 'the nodes see each other');
            await sleep(20);
          }
        }
        const users = Array.from({ length: 24 }, (_, i) => id(`fan${i}`));
        const onB = users.filter((_, i) => i % 3 === 1);
        const onA = users.filter((_, i) => i % 3 === 0);
        for (const u of onB) await b.bus.watchUser(u);
        for (const u of onA) await a.bus.watchUser(u);
        const body = '{"id":"m1","text":"two\nlines é 😀"}';
        const fan = (n: number): DeliverEvent[] =>
          users.map((u, i) => ({ type: 'deliver', userId: u, frame: msgFrame(n * 100 + i, body), inboxSeq: n * 100 + i, msgId: `m${n}`, body, tp: '00-abc-def-01', ...(i === 1 ? { exceptSession: 'hash:1' } : {}) }));
        // Before and after the fan-outs: plain events to the same users (order per user from one node).
        for (const u of [onB[0]!, onA[0]!]) a.bus.publish({ type: 'deliver', userId: u, frame: '{"type":"before"}' });
        a.bus.publishDeliveries(fan(1));
        a.bus.publishDeliveries(fan(2).slice(0, 3));
        for (const u of [onB[0]!, onA[0]!]) a.bus.publish({ type: 'deliver', userId: u, frame: '{"type":"after"}' });
        await barrier(a, b);
        const expect = (watched: string[]) =>
          users.flatMap((u) => {
            if (!watched.includes(u)) return [];
            const mine = (n: number, count: number) =>
              fan(n)
                .slice(0, count)
                .filter((e) => e.userId === u)
                .map(({ body: _b, ...e }) => e);
            const around = u === onB[0] || u === onA[0];
            return [...(around ? [{ type: 'deliver', userId: u, frame: '{"type":"before"}' }] : []), ...mine(1, 24), ...mine(2, 3), ...(around ? [{ type: 'deliver', userId: u, frame: '{"type":"after"}' }] : [])];
          });
        // What each node got for the users of this round, grouped per user (no order across users); `body` is a local shortcut,
        // `via` the receiving node's note of who published a batched fan-out (bus-nats.test.ts checks it).
        const seen = (n: Node) => users.flatMap((u) => n.got.filter((e) => e.type === 'deliver' && e.userId === u).map((e) => ({ ...e, body: undefined, via: undefined })).map(({ body: _b, via: _v, ...e }) => e));
        if (b !== a) {
          assert.deepEqual(seen(b), expect(onB), `the other node got its users' deliveries once, in order (joined: ${joined})`);
          assert.deepEqual(seen(a), expect(onA), `the publisher got its own users' deliveries once, in order (joined: ${joined})`);
        } else assert.deepEqual(seen(a), expect(users), 'one node gets every delivery once, in order');
        for (const u of onB) b.bus.unwatchUser(u);
        for (const u of onA) a.bus.unwatchUser(u);
        for (const e of [a, b]) e.got.length = 0;
      }
    });

    it('a deliver event keeps every field; frames with newlines and any id survive the trip', async () => {
      const [a, b] = await pair();
      const u = id('fields');
      await b.bus.watchUser(u);
      const ev: BusEvent = { type: 'deliver', userId: u, frame: '{"type":"msg","text":"two\nlines é 😀"}', exceptSession: 'hash:1', inboxSeq: 7, devices: ['d1', 'd.2'] };
      a.bus.publish(ev);
      assert.deepEqual(await b.next(forUser(u)), ev);
      b.bus.unwatchUser(u);
    });

    it('routes a user’s events only to nodes that watch the user', { skip: !factory.cluster && 'one node receives everything' }, async () => {
      const [a, b] = await pair();
      const onA = id('onA');
      const onB = id('onB');
      const nowhere = id('nowhere');
      await a.bus.watchUser(onA);
      await b.bus.watchUser(onB);
      for (const u of [onA, onB, nowhere]) a.bus.publish(deliver(u, 1));
      for (const u of [onA, onB, nowhere]) b.bus.publish(deliver(u, 2));
      await barrier(a, b);
      await barrier(b, a);
      // Across publishers there is no order: compare sorted.
      const seen = (n: Node) => n.got.filter((e) => e.type === 'deliver' && [onA, onB, nowhere].includes(e.userId)).map((e) => [e.type === 'deliver' && e.userId, frameOf(e)]).sort();
      assert.deepEqual(seen(a), [
        [onA, '{"type":"msg","inboxSeq":1}'],
        [onA, '{"type":"msg","inboxSeq":2}'],
      ]);
      assert.deepEqual(seen(b), [
        [onB, '{"type":"msg","inboxSeq":1}'],
        [onB, '{"type":"msg","inboxSeq":2}'],
      ]);
      a.bus.unwatchUser(onA);
      b.bus.unwatchUser(onB);
    });

    it('watches are reference-counted; the last unwatch stops delivery', { skip: !factory.cluster && 'one node receives everything' }, async () => {
      const [a, b] = await pair();
      const u = id('refcount');
      await b.bus.watchUser(u);
      await b.bus.watchUser(u);
      b.bus.unwatchUser(u);
      // b's UNSUB reaches the broker before its barrier marker, so a publishes after it.
      await barrier(b, a);
      a.bus.publish(deliver(u, 1));
      await b.next((e) => forUser(u)(e) && frameOf(e)!.includes(':1}'));
      b.bus.unwatchUser(u);
      await barrier(b, a);
      a.bus.publish(deliver(u, 2));
      await barrier(a, b);
      assert.deepEqual(b.got.filter(forUser(u)).map(frameOf), ['{"type":"msg","inboxSeq":1}']);
      // Watching again resumes delivery.
      await b.bus.watchUser(u);
      a.bus.publish(deliver(u, 3));
      await b.next((e) => forUser(u)(e) && frameOf(e)!.includes(':3}'));
      b.bus.unwatchUser(u);
      // Unwatching what was never watched is harmless.
      b.bus.unwatchUser(id('never'));
      b.bus.unwatchConv(id('never'));
    });

    it('routes kick events to the user’s node', async () => {
      const [a, b] = await pair();
      const u = id('kick');
      await b.bus.watchUser(u);
      const kick: BusEvent = { type: 'kick', userId: u, tokenHashes: ['h1', 'h2'], reason: 'logout_all' };
      a.bus.publish(kick);
      assert.deepEqual(await b.next(forUser(u)), kick);
      b.bus.unwatchUser(u);
    });

    it('broadcasts supers events to every node, the publisher included, once each', async () => {
      const [a, b] = await pair();
      const conv = id('supers');
      const ev: BusEvent = { type: 'supers', conv, add: ['u1', 'u:2'], remove: ['u3'] };
      a.bus.publish(ev);
      const mine = (e: BusEvent) => e.type === 'supers' && e.conv === conv;
      assert.deepEqual(await b.next(mine), ev);
      await barrier(b, a);
      assert.equal(a.got.filter(mine).length, 1);
      assert.equal(b.got.filter(mine).length, 1);
    });

    it('routes advance events only to nodes that watch the conversation', async () => {
      const [a, b] = await pair();
      const conv = id('conv');
      const other = id('conv-unwatched');
      await b.bus.watchConv(conv);
      a.bus.publish({ type: 'advance', conv: other, frame: '{"n":0}' });
      a.bus.publish({ type: 'advance', conv, frame: '{"n":1}', exceptSession: 's' });
      assert.deepEqual(await b.next((e) => e.type === 'advance' && e.conv === conv), { type: 'advance', conv, frame: '{"n":1}', exceptSession: 's' });
      if (factory.cluster) {
        await barrier(a, b);
        assert.equal(b.got.filter((e) => e.type === 'advance' && e.conv === other).length, 0);
        assert.equal(a.got.filter((e) => e.type === 'advance').length, 0, 'the publisher does not follow the conversation');
        b.bus.unwatchConv(conv);
        await barrier(b, a);
        a.bus.publish({ type: 'advance', conv, frame: '{"n":2}' });
        await barrier(a, b);
        assert.deepEqual(b.got.filter((e) => e.type === 'advance' && e.conv === conv).map(frameOf), ['{"n":1}']);
      } else b.bus.unwatchConv(conv);
    });

    it('an advance published right after a supers join reaches the node that just gained the follower', async () => {
      const [a, b] = await pair();
      const conv = id('switch');
      const follower = id('follower');
      // Node b behaves like the gateway: a supers event for a user it holds makes it follow the conversation.
      await b.bus.watchUser(follower);
      b.bus.subscribe((e) => {
        if (e.type === 'supers' && e.conv === conv && e.add.includes(follower)) void b.bus.watchConv(conv);
      });
      a.bus.publish({ type: 'supers', conv, add: [follower], remove: [] });
      a.bus.publish({ type: 'advance', conv, frame: '{"first":true}' });
      assert.equal(frameOf(await b.next((e) => e.type === 'advance' && e.conv === conv)), '{"first":true}');
      await barrier(a, b);
      assert.equal(b.got.filter((e) => e.type === 'advance' && e.conv === conv).length, 1, 'exactly once');
      b.bus.unwatchConv(conv);
      b.bus.unwatchUser(follower);
    });

    it('remotePresence answers with the devices other nodes hold (none on one node)', async () => {
      const [a, b] = await pair();
      const here = id('present');
      const away = id('absent');
      a.bus.servePresence((ids) => new Map(ids.filter((u) => u === here).map((u) => [u, ['phone', 'web']])));
      await a.bus.check();
      const got = await b.bus.remotePresence([here, away]);
      if (factory.cluster) assert.deepEqual([...(got.get(here) ?? [])].sort(), ['phone', 'web']);
      else assert.equal(got.size, 0, 'one node: its own gateway is the only presence');
      assert.equal(got.get(away), undefined);
      assert.equal((await b.bus.remotePresence([])).size, 0);
    });

    it('askNodes collects the other nodes’ answers on a topic, not the asker’s own (none on one node)', async () => {
      const [a, b] = await pair();
      const topic = id('topic');
      a.bus.answerNodes(topic, (q) => ({ node: 'a', echo: (q as { x: number }).x }));
      b.bus.answerNodes(topic, () => ({ node: 'b' }));
      a.bus.answerNodes(`${topic}-async`, async (q) => ({ later: (q as { x: number }).x * 2 }));
      // The answerers' subscriptions are in effect once the broker has seen them (a round trip).
      await Promise.all([a.bus.check(), b.bus.check()]);
      const got = await b.bus.askNodes(topic, { x: 7 });
      if (factory.cluster) {
        assert.deepEqual(got, [{ node: 'a', echo: 7 }], 'only the other node answers');
        assert.deepEqual(await b.bus.askNodes(`${topic}-async`, { x: 4 }), [{ later: 8 }]);
        assert.deepEqual(await a.bus.askNodes(`${topic}-nobody`, {}), [], 'no answerer: no answers, no error');
      } else assert.deepEqual(got, [], 'one node: the asker answers itself');
    });

    it('close() delivers what was published before it', { skip: !factory.cluster && 'a closed single node has nobody to deliver to' }, async () => {
      const a = await factory.open();
      const b = await node();
      const u = id('drain');
      await b.bus.watchUser(u);
      for (let i = 1; i <= 200; i++) a.publish(deliver(u, i));
      await a.close();
      await b.next((e) => forUser(u)(e) && e.type === 'deliver' && e.inboxSeq === 200);
      assert.equal(b.got.filter(forUser(u)).length, 200);
      a.publish(deliver(u, 201)); // after close: dropped, never thrown
      await sleep(50);
      assert.equal(b.got.filter(forUser(u)).length, 200);
      b.bus.unwatchUser(u);
    });
  });
}
