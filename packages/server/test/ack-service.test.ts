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
