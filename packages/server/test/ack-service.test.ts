import { it } from 'node:test';
import assert from 'node:assert/strict';
import { AckService } from '../src/services/ack-service.ts';
import type { Bus, NodeLink } from '../src/bus/bus.ts';
import type { Metrics } from '../src/metrics.ts';
import type { AckOutcome, DeviceAck, Store } from '../src/store/store.ts';

/**
 * ACK flushes while the previous one is still being written (issue 23): the waiting flush
 * takes every ACK pending when it starts, so ACKs that arrive meanwhile share one write.
 */
it('a flush that waits for the previous write takes every ACK pending when it starts (one write, not one per flush)', async () => {
  const writes: DeviceAck[][] = [];
  let release!: () => void;
  const first = new Promise<void>((r) => (release = r));
  const store = {
    async recordAcks(acks: DeviceAck[]): Promise<AckOutcome> {
      writes.push(acks.map((a) => ({ ...a })));
      if (writes.length === 1) await first;
      return { delivered: [{ conv: 'g:x', seq: acks.length, sender: 's', by: acks[0]!.userId }], counts: [] };
    },
  } as unknown as Store;
  const frames: string[] = [];
  const bus = { publish: (e: { frame: string }) => frames.push(e.frame) } as unknown as Bus;
  const metrics = { acks: { inc() {} } } as unknown as Metrics;
  const svc = new AckService(store, bus, metrics, 1);

  svc.ack('ua', 'd1', 1);
  const f1 = svc.flush(); // written at once, held by the store
  await new Promise((r) => setTimeout(r, 5));
  svc.ack('ub', 'd1', 2);
  const f2 = svc.flush(); // waits for the first write
  svc.ack('uc', 'd1', 3);
  svc.ack('ub', 'd1', 4); // the same device again: coalesced
  await new Promise((r) => setTimeout(r, 5)); // the timer's flush joins the waiting one
  const f3 = svc.flush();
  release();
  await Promise.all([f1, f2, f3]);
  assert.deepEqual(
    writes.map((w) => w.map((a) => `${a.userId}:${a.inboxSeq}`)),
    [['ua:1'], ['ub:4', 'uc:3']],
  );
  assert.equal(frames.length, 2, 'one delivered frame per write');

  // Idle again: the next ACK is written on its own, at once.
  svc.ack('ud', 'd1', 5);
  await svc.flush();
  assert.deepEqual(writes.at(-1)!.map((a) => a.userId), ['ud']);
  assert.equal(writes.length, 3);
});

/**
 * Issue 15: paced flushes (minIntervalMs): a timed write starts at least minIntervalMs after the
 * previous one — later, with more ACKs in it, while the node keeps writing; flushMs after the
 * first ACK when it has not written for that long. Off (0): every timed write flushMs after its first ACK.
 */
it('paced ACK flushes: at most one timed write per minIntervalMs, the first after an idle spell at flushMs', async () => {
  const starts: number[] = [];
  const writes: string[][] = [];
  const store = {
    async recordAcks(acks: DeviceAck[]): Promise<AckOutcome> {
      starts.push(performance.now());
      writes.push(acks.map((a) => `${a.userId}:${a.inboxSeq}`));
      return { delivered: [], counts: [] };
    },
  } as unknown as Store;
  const bus = { publish: () => {} } as unknown as Bus;
  const metrics = { acks: { inc() {} } } as unknown as Metrics;
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  const paced = new AckService(store, bus, metrics, 10, 150);
  const t0 = performance.now();
  paced.ack('ua', 'd', 1);
  await sleep(40); // written at ~10 ms
  assert.equal(writes.length, 1);
  paced.ack('ub', 'd', 2);
  await sleep(40);
  paced.ack('uc', 'd', 3);
  await sleep(40);
  assert.equal(writes.length, 1, 'not before 150 ms after the first write started');
  await sleep(100);
  assert.deepEqual(writes, [['ua:1'], ['ub:2', 'uc:3']]);
  assert.ok(starts[1]! - starts[0]! >= 145, `second write ${starts[1]! - starts[0]!} ms after the first`);
  assert.ok(starts[0]! - t0 < 60);
  // Idle for longer than the interval: the next write comes flushMs after its first ACK.
  await sleep(200);
  const t1 = performance.now();
  paced.ack('ud', 'd', 4);
  await sleep(60);
  assert.equal(writes.length, 3);
  assert.ok(starts[2]! - t1 < 55, `after an idle spell: ${starts[2]! - t1} ms`);

  // Off: two ACKs 40 ms apart are two writes.
  writes.length = 0;
  const plain = new AckService(store, bus, metrics, 10);
  plain.ack('ua', 'd', 1);
  await sleep(40);
  plain.ack('ub', 'd', 2);
  await sleep(40);
  assert.deepEqual(writes, [['ua:1'], ['ub:2']]);
});

/**
 * Issue 15: in a cluster the ACKs of a message fanned out by another node (the deliver event's
 * `via`) are forwarded there and written with that node's own: one write per message across
 * nodes. A device's ACKs keep their order across routes; a failed forward is written here.
 */
class PairLink implements NodeLink {
  handlers = new Map<string, (payload: string) => Promise<string>>();
  peers = new Map<string, PairLink>();
  down = false;
  requests = 0;
  constructor(readonly self: string) {}
  join(): void {}
  leave(): void {}
  live() {
    return { nodes: [this.self, ...this.peers.keys()].sort(), version: 1 };
  }
  async request(node: string, topic: string, payload: string): Promise<string> {
    this.requests++;
    const peer = this.peers.get(node);
    const h = peer?.handlers.get(topic);
    if (!peer || peer.down || !h) throw new Error('503 no responders');
    return h(payload);
  }
  serve(topic: string, handler: (payload: string) => Promise<string>): void {
    this.handlers.set(topic, handler);
  }
}

function routedPair(flushMs = 10) {
  const writes: { node: string; acks: string[] }[] = [];
  const frames: { node: string; userId: string; frame: string }[] = [];
  const metrics = { acks: { inc() {} } } as unknown as Metrics;
  const make = (node: string) => {
    const store = {
      async recordAcks(acks: DeviceAck[]): Promise<AckOutcome> {
        writes.push({ node, acks: acks.map((a) => `${a.userId}:${a.inboxSeq}:${(a.segments ?? []).map((s) => `${s.from}-${s.to}`).join(',')}`) });
        await new Promise((r) => setTimeout(r, 5));
        return { delivered: [], counts: acks.map((a) => ({ conv: 'g:x', seq: 1, sender: 's', count: a.inboxSeq })) };
      },
    } as unknown as Store;
    const bus = { publish: (e: { userId: string; frame: string }) => frames.push({ node, userId: e.userId, frame: e.frame }) } as unknown as Bus;
    return new AckService(store, bus, metrics, flushMs);
  };
  const la = new PairLink('A');
  const lb = new PairLink('B');
  la.peers.set('B', lb);
  lb.peers.set('A', la);
  const a = make('A');
  const b = make('B');
  a.route(la, { forwardMs: 2 });
  b.route(lb, { forwardMs: 2 });
  return { a, b, la, lb, writes, frames };
}

it('cluster: ACKs of a message fanned out by another node are written there, with its own, in one write', async () => {
  const { a, b, lb, writes, frames } = routedPair();
  a.ack('u1', 'd', 1, [{ from: 0, to: 1 }]); // A's own member (A fanned the message out)
  b.ack('u2', 'd', 1, [{ from: 0, to: 1 }], 'A'); // B's members got it in A's batched fan-out
  b.ack('u3', 'd', 1, [{ from: 0, to: 1 }], 'A');
  await new Promise((r) => setTimeout(r, 60));
  assert.deepEqual(writes, [{ node: 'A', acks: ['u1:1:0-1', 'u2:1:0-1', 'u3:1:0-1'] }]);
  assert.equal(lb.requests, 1, 'one forward for the batch');
  assert.equal(frames.filter((f) => f.frame.includes('delivered.counts')).length, 1, 'one delivered.counts frame for the message');
  // B's own fan-outs (no via, or via itself) are written on B.
  b.ack('u2', 'd', 2, [{ from: 1, to: 2 }]);
  b.ack('u3', 'd', 2, [{ from: 1, to: 2 }], 'B');
  await b.flush();
  assert.deepEqual(writes.at(-1), { node: 'B', acks: ['u2:2:1-2', 'u3:2:1-2'] });
});

it('cluster: a device whose ACKs are on their way to another node sends its next ones the same way (order kept)', async () => {
  const { a, b, writes } = routedPair(30);
  b.ack('u2', 'd', 1, [{ from: 0, to: 1 }], 'A');
  await new Promise((r) => setTimeout(r, 10)); // forwarded, waiting in A's batch
  b.ack('u2', 'd', 2, [{ from: 1, to: 2 }]); // a message of B's own, but the first ACK is not written yet
  b.ack('u9', 'd', 5, [{ from: 4, to: 5 }]); // another device: written on B
  await new Promise((r) => setTimeout(r, 120));
  await Promise.all([a.flush(), b.flush()]);
  const w = writes.map((x) => `${x.node}:${x.acks.join('|')}`);
  assert.deepEqual(w.filter((x) => x.includes('u2')), ['A:u2:1:0-1', 'A:u2:2:1-2']);
  assert.ok(w.includes('B:u9:5:4-5'), w.join(' '));
  // Once settled, the device's next ACK takes its own route again.
  b.ack('u2', 'd', 3, [{ from: 2, to: 3 }]);
  await b.flush();
  assert.equal(w.length + 1, writes.length);
  assert.deepEqual(writes.at(-1), { node: 'B', acks: ['u2:3:2-3'] });
});

it('cluster: a forward to a node that is gone is written here, before the device\'s later ACKs', async () => {
  const { b, la, writes } = routedPair();
  la.down = true;
  b.ack('u2', 'd', 1, [{ from: 0, to: 1 }], 'A');
  b.ack('u2', 'd', 2, [{ from: 1, to: 2 }], 'A');
  await new Promise((r) => setTimeout(r, 30));
  b.ack('u2', 'd', 3, [{ from: 2, to: 3 }], 'A');
  await b.flush();
  assert.deepEqual(writes, [
    { node: 'B', acks: ['u2:2:0-1,1-2'] },
    { node: 'B', acks: ['u2:3:2-3'] },
  ]);
});
