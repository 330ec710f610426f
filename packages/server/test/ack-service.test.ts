import { it } from 'node:test';
import assert from 'node:assert/strict';
import { AckService } from '../src/services/ack-service.ts';
import type { Bus } from '../src/bus/bus.ts';
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
