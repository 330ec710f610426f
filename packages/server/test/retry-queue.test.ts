import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { AdaptiveRetryTiming, FixedRetryTiming, type AdaptiveRetryConfig } from '../src/delivery/retry-policy.ts';
import { RetryQueue, type DeliveryEnd, type Timers } from '../src/delivery/retry-queue.ts';
import { IntervalLoopLag } from '../src/util/loop-lag.ts';
import { msgFrame } from '../src/delivery/msg-frame.ts';

/** A controllable clock: timers fire only when the test advances time. */
class FakeTimers implements Timers {
  t = 0;
  private seq = 0;
  private timers = new Map<number, { at: number; fn: () => void }>();
  now = () => this.t;
  setTimeout = (fn: () => void, ms: number) => {
    const id = ++this.seq;
    this.timers.set(id, { at: this.t + ms, fn });
    return id;
  };
  clearTimeout = (h: unknown) => {
    this.timers.delete(h as number);
  };
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      const next = [...this.timers.entries()].sort((a, b) => a[1].at - b[1].at)[0];
      if (!next || next[1].at > end) break;
      this.timers.delete(next[0]);
      this.t = next[1].at;
      next[1].fn();
    }
    this.t = end;
  }
}

const CFG: AdaptiveRetryConfig = { probeDelayMs: 1000, probeCount: 4, steppedStartMs: 5000, stepMs: 3000, maxDelayMs: 15_000, maxAttempts: 10, rememberCapacity: 100 };

function setup(cfg = CFG) {
  const timers = new FakeTimers();
  const timing = new AdaptiveRetryTiming(cfg);
  const ends: DeliveryEnd[] = [];
  const sends: { at: number; frame: string }[] = [];
  let alive = true;
  const target = { isAlive: () => alive, send: (frame: string) => sends.push({ at: timers.t, frame }) };
  const q = new RetryQueue(timing, (e) => ends.push(e), () => {}, { perDeviceCap: 4, totalCap: 100 }, timers);
  return { timers, timing, ends, sends, target, q, kill: () => (alive = false) };
}

/** Gaps between consecutive retries of one frame, starting at its first send at t0. */
function gaps(sends: { at: number; frame: string }[], frame: string, t0: number): number[] {
  const ats = [t0, ...sends.filter((s) => s.frame === frame).map((s) => s.at)];
  return ats.slice(1).map((a, i) => a - ats[i]!);
}

describe('adaptive downlink retry order (controllable clock)', () => {
  it('a new message starts with 4 short probes at N, then steps from the initial delay by M up to MAX, at most K retries', () => {
    const { timers, q, target, sends, ends } = setup();
    q.track('u', 'd', target, 1, 'f1');
    timers.advance(200_000);
    assert.deepEqual(gaps(sends, 'f1', 0), [1000, 1000, 1000, 1000, 5000, 8000, 11_000, 14_000, 15_000, 15_000]);
    assert.equal(ends.at(-1)!.kind, 'gave_up');
  });

  it('the stepped phase starts from the delay remembered for the device, but the probes come first on every new message', () => {
    const { timers, q, target, sends, timing } = setup();
    q.track('u', 'd', target, 1, 'f1');
    timers.advance(4000 + 5000 + 8000); // 4 probes + 2 stepped retries: remembered = 8000
    q.ack('u', 'd', 1); // answered in the stepped phase: the remembered delay stays
    assert.equal(timing.rememberedDelay(RetryQueue.key('u', 'd')), 8000);
    const t0 = timers.t;
    q.track('u', 'd', target, 2, 'f2');
    timers.advance(4000 + 8000 + 11_000);
    assert.deepEqual(gaps(sends, 'f2', t0), [1000, 1000, 1000, 1000, 8000, 11_000], 'probes at N first, then from the remembered 8 s');
  });

  it('an ACK within the short probes clears the remembered delay', () => {
    const { timers, q, target, sends, timing } = setup();
    q.track('u', 'd', target, 1, 'f1');
    timers.advance(4000 + 5000 + 8000 + 11_000);
    assert.equal(timing.rememberedDelay(RetryQueue.key('u', 'd')), 11_000);
    q.ack('u', 'd', 1);
    q.track('u', 'd', target, 2, 'f2');
    timers.advance(2500); // two probes, then the device answers
    q.ack('u', 'd', 2);
    assert.equal(timing.rememberedDelay(RetryQueue.key('u', 'd')), undefined, 'recovered: remembered delay cleared');
    const t0 = timers.t;
    q.track('u', 'd', target, 3, 'f3');
    timers.advance(4000 + 5000);
    assert.deepEqual(gaps(sends, 'f3', t0), [1000, 1000, 1000, 1000, 5000], 'back to the initial stepped delay');
  });

  it('cumulative ACK ends every delivery up to it; nothing is resent afterwards', () => {
    const { timers, q, target, sends, ends } = setup();
    for (let i = 1; i <= 3; i++) q.track('u', 'd', target, i, `f${i}`);
    timers.advance(500);
    q.ack('u', 'd', 2);
    timers.advance(1000);
    assert.deepEqual(sends.map((s) => s.frame), ['f3']);
    assert.deepEqual(ends.map((e) => e.kind), ['acked', 'acked']);
  });

  it('a retry first checks presence: a gone device hands every pending delivery to offline push', () => {
    const { timers, q, target, sends, ends, kill } = setup();
    q.track('u', 'd', target, 1, 'f1');
    q.track('u', 'd', target, 2, 'f2');
    kill();
    timers.advance(1000);
    assert.equal(sends.length, 0, 'nothing is written to a dead device');
    assert.deepEqual(ends.map((e) => e.kind), ['offline', 'offline']);
    assert.deepEqual(ends.map((e) => (e.kind === 'offline' ? e.message.inboxSeq : 0)), [1, 2]);
    assert.equal(q.size, 0);
  });

  it('items the device pulls by sync count as arrived by pull', () => {
    const { timers, q, target, ends } = setup();
    q.track('u', 'd', target, 5, 'f5');
    q.track('u', 'd', target, 6, 'f6');
    timers.advance(1500);
    q.pulled('u', 'd', 4, 5);
    assert.deepEqual(ends, [{ kind: 'pulled', attempts: 1, latencyMs: 1500 }]);
  });

  it('memory is bounded per device: beyond the cap the oldest tracking is dropped', () => {
    const { q, target, ends } = setup();
    for (let i = 1; i <= 10; i++) q.track('u', 'd', target, i, `f${i}`);
    assert.deepEqual(q.pendingFor('u', 'd'), [7, 8, 9, 10]);
    assert.equal(ends.filter((e) => e.kind === 'overflow').length, 6);
  });

  it('fixed timing retries at one delay a fixed number of times', () => {
    const timers = new FakeTimers();
    const sends: number[] = [];
    const q = new RetryQueue(new FixedRetryTiming(10_000, 6), () => {}, () => {}, undefined, timers);
    q.track('u', 'd', { isAlive: () => true, send: () => sends.push(timers.t) }, 1, 'f');
    timers.advance(1_000_000);
    assert.deepEqual(sends, [10_000, 20_000, 30_000, 40_000, 50_000, 60_000]);
  });
});

// Issue 14: "pulled" (and the compensation time) counted messages the device had received
// live but not yet ACKed (2 579 counted vs 561 really lost).
describe('retry queue: only what the device obtained by pulling counts as pulled', () => {
  it('regression: items the device said it holds (`have`) end as live arrivals, not as pulled', () => {
    const timers = new FakeTimers();
    const ends: DeliveryEnd[] = [];
    const target = { isAlive: () => true, send: () => {} };
    const q = new RetryQueue(new AdaptiveRetryTiming(CFG), (e) => ends.push(e), () => {}, { perDeviceCap: 64, totalCap: 100 }, timers);
    for (let s = 1; s <= 6; s++) q.track('u', 'd', target, s, `f${s}`);
    timers.advance(300);
    // The device merged 1 (not ACKed yet), lost 2 and 5, holds 3 and 4 behind the gap, 6 is on the wire.
    q.pulled('u', 'd', 1, 6, [3, 4]);
    assert.deepEqual(ends.map((e) => e.kind).sort(), ['acked', 'acked', 'pulled', 'pulled', 'pulled']);
    assert.deepEqual(q.pendingFor('u', 'd'), [1], 'merged but not yet ACKed: the next ACK ends it');
    q.ack('u', 'd', 6);
    assert.equal(ends.filter((e) => e.kind === 'pulled').length, 3, '2, 5 and 6 (on the wire, not yet received)');
    assert.equal(q.size, 0);
  });

  it('without `have` (older clients) everything not ACKed in the page counts as pulled, as before', () => {
    const timers = new FakeTimers();
    const ends: DeliveryEnd[] = [];
    const q = new RetryQueue(new AdaptiveRetryTiming(CFG), (e) => ends.push(e), () => {}, { perDeviceCap: 64, totalCap: 100 }, timers);
    for (let s = 1; s <= 3; s++) q.track('u', 'd', { isAlive: () => true, send: () => {} }, s, `f${s}`);
    q.pulled('u', 'd', 0, 3);
    assert.equal(ends.filter((e) => e.kind === 'pulled').length, 3);
  });
});

// Issue 23: an overloaded run sent 66 000 duplicate retries — the ACKs were late because the
// server itself read them late. Due retries are held while the event loop lags.
describe('retry queue: probes are held while the event loop lags', () => {
  function lagged(holdLagMs: number) {
    const timers = new FakeTimers();
    let lag = 0;
    let held = 0;
    const sends: number[] = [];
    const ends: DeliveryEnd[] = [];
    const loopLag = { lagMs: () => lag, stop: () => {} };
    const q = new RetryQueue(new AdaptiveRetryTiming(CFG), (e) => ends.push(e), () => {}, { perDeviceCap: 64, totalCap: 100, holdLagMs, loopLag, onHeld: (n) => (held += n) }, timers);
    const target = { isAlive: () => true, send: () => sends.push(timers.t) };
    return { timers, q, target, sends, ends, setLag: (ms: number) => (lag = ms), held: () => held };
  }

  it('no retry goes out while the loop lags; each due delivery counts as held once; an ACK read meanwhile ends it without a retry', () => {
    const { timers, q, target, sends, ends, setLag, held } = lagged(100);
    q.track('u', 'd', target, 1, 'f1');
    q.track('u', 'd', target, 2, 'f2');
    setLag(250);
    timers.advance(1000 + 1000);
    assert.deepEqual(sends, [], 'held for 1 s past the due time');
    assert.equal(held(), 2, 'two deliveries held, each counted once however often re-checked');
    q.ack('u', 'd', 2);
    setLag(0);
    timers.advance(30_000);
    assert.deepEqual(sends, []);
    assert.deepEqual(ends.map((e) => e.kind), ['acked', 'acked']);
    assert.equal(ends[0]!.kind === 'acked' && ends[0]!.attempts, 0, 'ended as a first-time arrival');
  });

  it('when the lag clears, one grace period passes, then what is still unacknowledged is retried', () => {
    const { timers, q, target, sends, setLag, held } = lagged(100);
    q.track('u', 'd', target, 1, 'f1');
    setLag(500);
    timers.advance(1500);
    assert.deepEqual(sends, []);
    setLag(0);
    timers.advance(150); // the next re-check (t=1600) sees a healthy loop and waits one more 100 ms
    assert.deepEqual(sends, []);
    timers.advance(100);
    assert.deepEqual(sends, [1700]);
    assert.equal(held(), 1);
    timers.advance(1000);
    assert.deepEqual(sends, [1700, 2700], 'probing continues at N from the retry that went out');
  });

  it('holdLagMs 0 never holds (a lagging loop retries on schedule)', () => {
    const { timers, q, target, sends, setLag, held } = lagged(0);
    q.track('u', 'd', target, 1, 'f1');
    setLag(1000);
    timers.advance(1000);
    assert.deepEqual(sends, [1000]);
    assert.equal(held(), 0);
  });

  it('a connection held unread by the server (its sends wait for the send budget) gets no retry until it is read again: its ACK may be queued behind them', () => {
    const { timers, q, sends, ends, held } = lagged(100);
    let unread = true;
    const target = { isAlive: () => true, send: () => sends.push(timers.t), heldUnread: () => unread };
    q.track('u', 'd', target, 1, 'f1');
    timers.advance(5000);
    assert.deepEqual(sends, [], 'no retry while held unread, however long');
    assert.equal(held(), 1, 'counted as held once for its first attempt');
    // Read again, and its ACK was there: it ends as a first-time arrival.
    unread = false;
    q.ack('u', 'd', 1);
    assert.equal(ends[0]!.kind === 'acked' && ends[0]!.attempts, 0);
    // Read again without an ACK: retried one delay after the last re-check, then probing continues at N.
    unread = true;
    q.track('u', 'd', target, 2, 'f2');
    timers.advance(2500); // due at 6000 and re-checked at 7000: held both times
    assert.deepEqual(sends, []);
    unread = false;
    timers.advance(500); // the re-check at 8000 finds it read again: retried
    assert.deepEqual(sends, [8000]);
    timers.advance(1000);
    assert.deepEqual(sends, [8000, 9000]);
    assert.equal(held(), 2);
  });

  /** Block the event loop for `ms` (an overloaded server). */
  const spin = (ms: number) => {
    const end = performance.now() + ms;
    while (performance.now() < end);
  };

  async function lateAckOnRealLoop(holdLagMs: number): Promise<{ sends: number; held: number; kinds: string[] }> {
    let held = 0;
    let sends = 0;
    const ends: DeliveryEnd[] = [];
    const q = new RetryQueue(
      new AdaptiveRetryTiming({ ...CFG, probeDelayMs: 50 }),
      (e) => ends.push(e),
      () => {},
      { perDeviceCap: 64, totalCap: 100, holdLagMs, loopLag: new IntervalLoopLag(), onHeld: (n) => (held += n) },
    );
    q.track('u', 'd', { isAlive: () => true, send: () => sends++ }, 1, 'f1');
    // The ACK is due 30 ms after the retry, but the loop is stuck for 300 ms: both come due
    // together, the retry's timer first.
    const acked = new Promise<void>((r) => setTimeout(() => (q.ack('u', 'd', 1), r()), 80));
    spin(300);
    await acked;
    await new Promise((r) => setTimeout(r, 400));
    q.stop();
    return { sends, held, kinds: ends.map((e) => e.kind) };
  }

  it('real, artificially lagged event loop: the late ACK ends the delivery and no duplicate is sent', async () => {
    const r = await lateAckOnRealLoop(100);
    assert.equal(r.sends, 0, 'no retry');
    assert.equal(r.held, 1);
    assert.deepEqual(r.kinds, ['acked']);
  });

  it('control: the same lagged loop without holding sends the duplicate', async () => {
    const r = await lateAckOnRealLoop(0);
    assert.equal(r.sends, 1);
    assert.equal(r.held, 0);
  });

  it('the loop-lag probe reads a blocked loop as lagging and a free one as healthy', async () => {
    const probe = new IntervalLoopLag(10, 3);
    await new Promise((r) => setTimeout(r, 50));
    assert.ok(probe.lagMs() < 100, `idle loop: ${probe.lagMs()} ms`);
    spin(200);
    assert.ok(probe.lagMs() >= 150, `right after a 200 ms block: ${probe.lagMs()} ms`);
    await new Promise((r) => setTimeout(r, 100));
    assert.ok(probe.lagMs() < 100, `recovered: ${probe.lagMs()} ms`);
    probe.stop();
  });
});

describe('the due-time heap holds only deliveries still waiting for their ACK', () => {
  it('an ACKed delivery leaves the heap at once (its frame is not kept until its retry would have been due)', () => {
    const timers = new FakeTimers();
    const q = new RetryQueue(new AdaptiveRetryTiming(CFG), () => {}, () => {}, { perDeviceCap: 10_000, totalCap: 100_000 }, timers);
    const target = { isAlive: () => true, send: () => {} };
    for (let i = 1; i <= 1000; i++) q.track('u', 'd', target, i, `frame ${i}`);
    assert.equal(q.scheduled, 1000);
    q.ack('u', 'd', 600);
    assert.equal(q.size, 400);
    assert.equal(q.scheduled, 400, "the 600 ACKed deliveries left the device's queue");
    q.ack('u', 'd', 1000);
    assert.equal(q.scheduled, 0);
  });

  it('with removals anywhere in the heap, exactly the unacknowledged deliveries are retried, each when due', () => {
    const timers = new FakeTimers();
    let seed = 7;
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const sends: { at: number; frame: string }[] = [];
    const target = (dev: string) => ({ isAlive: () => true, send: (frame: string) => sends.push({ at: timers.t, frame: `${dev}:${frame}` }) });
    const timing = new FixedRetryTiming(1000, 1);
    const q = new RetryQueue(timing, () => {}, () => {}, { perDeviceCap: 10_000, totalCap: 100_000 }, timers);
    const devices = ['a', 'b', 'c', 'd', 'e'].map((d) => ({ d, t: target(d), next: 1, tracked: [] as { seq: number; at: number }[] }));
    const expected: string[] = [];
    // Deliveries tracked over 900 ms in random order of devices, cumulative ACKs in between.
    for (let step = 0; step < 900; step++) {
      timers.advance(1);
      const dev = devices[Math.floor(random() * devices.length)]!;
      q.track('u', dev.d, dev.t, dev.next, `f${dev.next}`);
      dev.tracked.push({ seq: dev.next, at: timers.t });
      dev.next++;
      if (random() < 0.2) {
        const other = devices[Math.floor(random() * devices.length)]!;
        const upTo = Math.floor(random() * other.next);
        q.ack('u', other.d, upTo);
        other.tracked = other.tracked.filter((x) => x.seq > upTo);
      }
    }
    for (const dev of devices) for (const x of dev.tracked) expected.push(`${x.at + 1000} ${dev.d}:f${x.seq}`);
    assert.equal(q.scheduled, expected.length);
    timers.advance(5000);
    const got = sends.map((s) => `${s.at} ${s.frame}`);
    assert.deepEqual(got.slice().sort(), expected.slice().sort(), 'each unacknowledged delivery retried once, at its due time');
    assert.deepEqual(got.map((g) => Number(g.split(' ')[0])), got.map((g) => Number(g.split(' ')[0])).sort((x, y) => x - y), 'in due order');
  });
});

describe('retry queue: one message at a time per device (issue 23, open-loop chat)', () => {
  it('a device whose deliveries all ended is tracked again through the same connection, retried and ACKed as before', () => {
    const { timers, q, target, sends, ends } = setup();
    q.track('u', 'd', target, 1, 'f1');
    q.ack('u', 'd', 1);
    assert.equal(q.size, 0);
    assert.deepEqual(q.pendingFor('u', 'd'), []);
    // Tracked again after it ended: the same device, found by its key as well.
    q.track('u', 'd', target, 2, 'f2');
    assert.equal(q.size, 1);
    assert.deepEqual(q.pendingFor('u', 'd'), [2]);
    timers.advance(1000);
    assert.deepEqual(sends.map((s) => s.frame), ['f2'], 'the second delivery is retried');
    q.ack('u', 'd', 2);
    assert.equal(q.size, 0);
    assert.deepEqual(ends.map((e) => e.kind), ['acked', 'acked']);
    timers.advance(60_000);
    assert.deepEqual(sends.map((s) => s.frame), ['f2'], 'nothing after the ACK');
  });

  it('a device tracked through two connections keeps one state, also after its deliveries on one of them ended', () => {
    const { timers, q, target, sends } = setup();
    const other: typeof sends = [];
    const newer = { isAlive: () => true, send: (frame: string) => other.push({ at: timers.t, frame }) };
    q.track('u', 'd', target, 1, 'f1');
    q.ack('u', 'd', 1);
    q.track('u', 'd', newer, 2, 'f2');
    // The old connection's ended state must not come back in place of the device's current one.
    q.track('u', 'd', target, 3, 'f3');
    assert.deepEqual(q.pendingFor('u', 'd'), [2, 3]);
    timers.advance(1000);
    // One state per device, as before: each delivery retried once, through the connection that tracked last.
    assert.deepEqual([...other, ...sends].map((s) => s.frame).sort(), ['f2', 'f3']);
    assert.deepEqual(sends.map((s) => s.frame).sort(), ['f2', 'f3']);
    q.ack('u', 'd', 3);
    assert.equal(q.size, 0);
  });
});

// Issue 23: a device's not-yet-due deliveries are a ring in its state (one heap entry per
// device), not an object, a Map entry and a heap operation each.
describe('retry queue: one ordered queue and one heap entry per device', () => {
  const target = (sends: { at: number; frame: string }[], timers: FakeTimers) => ({ isAlive: () => true, send: (frame: string) => sends.push({ at: timers.t, frame }) });

  function queue(opts: Partial<ConstructorParameters<typeof RetryQueue>[3]> = {}) {
    const timers = new FakeTimers();
    const ends: { kind: string; seq: number; attempts: number; latencyMs?: number }[] = [];
    const retries: string[] = [];
    const q = new RetryQueue(
      new AdaptiveRetryTiming(CFG),
      (e, _u, d, ref) => ends.push({ kind: e.kind, seq: ref?.inboxSeq ?? -1, attempts: e.kind === 'overflow' ? 0 : e.attempts, ...(e.kind === 'acked' || e.kind === 'pulled' ? { latencyMs: e.latencyMs } : {}) }),
      (attempt, _u, d, seq) => retries.push(`${d}:${seq}#${attempt}`),
      { perDeviceCap: 512, totalCap: 100_000, ...opts },
      timers,
    );
    return { timers, q, ends, retries };
  }

  it('a thousand deliveries to a device are one heap entry; a cumulative ACK ends the prefix up to it, in order, with each latency', () => {
    const { timers, q, ends } = queue({ perDeviceCap: 2000 });
    const sends: { at: number; frame: string }[] = [];
    const t = target(sends, timers);
    for (let i = 1; i <= 1000; i++) {
      q.track('u', 'd', t, i, `f${i}`);
      if (i % 100 === 0) timers.advance(1);
    }
    assert.equal(q.heapEntries, 1);
    assert.equal(q.size, 1000);
    timers.advance(5);
    q.ack('u', 'd', 250);
    assert.equal(q.size, 750);
    assert.deepEqual(ends.map((e) => e.seq), Array.from({ length: 250 }, (_, i) => i + 1));
    assert.ok(ends.every((e) => e.kind === 'acked' && e.attempts === 0));
    assert.equal(ends[0]!.latencyMs, 15);
    assert.equal(ends[249]!.latencyMs, 13);
    q.ack('u', 'd', 249); // an older cumulative ACK: nothing more
    assert.equal(q.size, 750);
    q.ack('u', 'd', 1000);
    assert.equal(q.size, 0);
    assert.equal(q.scheduled, 0);
    timers.advance(60_000);
    assert.deepEqual(sends, [], 'nothing retried');
    assert.equal(q.heapEntries, 0, 'the device entry left the heap when it came up with nothing queued');
  });

  it('deliveries tracked out of inbox order (crossing on the bus) are ended by the ACK that covers them, and only those', () => {
    const { timers, q, ends } = queue();
    const sends: { at: number; frame: string }[] = [];
    const t = target(sends, timers);
    for (const s of [3, 1, 5, 2, 4, 7, 6]) q.track('u', 'd', t, s, `f${s}`);
    q.track('u', 'd', t, 5, 'f5'); // a repeat: still tracked once
    assert.equal(q.size, 7);
    q.ack('u', 'd', 4);
    assert.deepEqual(ends.map((e) => e.seq), [3, 1, 2, 4]);
    assert.deepEqual(q.pendingFor('u', 'd'), [5, 7, 6]);
    timers.advance(1000);
    assert.deepEqual(sends.map((s) => s.frame), ['f5', 'f7', 'f6'], 'the rest retried once each when due');
    q.ack('u', 'd', 7);
    assert.equal(q.size, 0);
    // In order again once empty: the next ACK takes a prefix.
    for (const s of [8, 9, 10]) q.track('u', 'd', t, s, `f${s}`);
    q.ack('u', 'd', 9);
    assert.deepEqual(q.pendingFor('u', 'd'), [10]);
  });

  it('queued deliveries tracked apart are each retried at their own due time, through the probes and the stepped phase', () => {
    const { timers, q } = queue();
    const sends: { at: number; frame: string }[] = [];
    const t = target(sends, timers);
    q.track('u', 'd', t, 1, 'f1');
    timers.advance(300);
    q.track('u', 'd', t, 2, 'f2');
    timers.advance(700);
    assert.deepEqual(sends.map((s) => `${s.at} ${s.frame}`), ['1000 f1']);
    timers.advance(300);
    assert.deepEqual(sends.map((s) => `${s.at} ${s.frame}`), ['1000 f1', '1300 f2']);
    timers.advance(30_000);
    assert.deepEqual(gaps(sends, 'f1', 0), [1000, 1000, 1000, 1000, 5000, 8000, 11_000]);
    assert.deepEqual(gaps(sends, 'f2', 300), [1000, 1000, 1000, 1000, 5000, 8000, 11_000]);
  });

  it('an ACK ends both deliveries that came due (being retried) and queued ones; a retried one ends with its attempts', () => {
    const { timers, q, ends } = queue();
    const sends: { at: number; frame: string }[] = [];
    const t = target(sends, timers);
    q.track('u', 'd', t, 1, 'f1');
    timers.advance(1500); // f1 retried once at 1000
    q.track('u', 'd', t, 2, 'f2');
    q.track('u', 'd', t, 3, 'f3');
    assert.equal(q.heapEntries, 2, 'the device and f1, which came due');
    q.ack('u', 'd', 2);
    assert.deepEqual(ends.map((e) => `${e.seq}:${e.attempts}`), ['1:1', '2:0']);
    assert.deepEqual(q.pendingFor('u', 'd'), [3]);
    timers.advance(1000);
    assert.deepEqual(sends.map((s) => `${s.at} ${s.frame}`), ['1000 f1', '2500 f3']);
  });

  it('reconnect mid-queue: the new connection takes over the queue; its hello ACK ends what the device holds; the rest is retried through it', () => {
    const { timers, q, ends } = queue();
    const oldSends: { at: number; frame: string }[] = [];
    const newSends: { at: number; frame: string }[] = [];
    let oldAlive = true;
    const oldConn = { isAlive: () => oldAlive, send: (frame: string) => oldSends.push({ at: timers.t, frame }) };
    const newConn = target(newSends, timers);
    for (let s = 1; s <= 5; s++) q.track('u', 'd', oldConn, s, `f${s}`);
    timers.advance(200);
    oldAlive = false;
    // hello on the new connection with inboxSeq 3 (what the device stored), then a new message through it.
    q.ack('u', 'd', 3);
    q.track('u', 'd', newConn, 6, 'f6');
    assert.deepEqual(q.pendingFor('u', 'd'), [4, 5, 6]);
    // An ACK through the old connection still counts for the device.
    q.ack('u', 'd', 4, oldConn);
    assert.deepEqual(q.pendingFor('u', 'd'), [5, 6]);
    timers.advance(1000);
    assert.deepEqual(oldSends, [], 'nothing through the dead connection');
    assert.deepEqual(newSends.map((s) => s.frame), ['f5', 'f6']);
    q.ack('u', 'd', 6, newConn);
    assert.equal(q.size, 0);
    assert.deepEqual(ends.map((e) => e.seq), [1, 2, 3, 4, 5, 6]);
  });

  it('a device gone before its queued deliveries come due hands them all to offline push, oldest first, with the ones already being retried', () => {
    const { timers, q, ends } = queue();
    let alive = true;
    const t = { isAlive: () => alive, send: () => {} };
    q.track('u', 'd', t, 1, 'f1');
    timers.advance(1200); // f1 came due and was retried
    q.track('u', 'd', t, 2, 'f2');
    q.track('u', 'd', t, 3, 'f3');
    alive = false;
    timers.advance(1000); // f1's next retry finds the device gone
    assert.deepEqual(ends.map((e) => `${e.kind}:${e.seq}:${e.attempts}`), ['offline:1:1', 'offline:2:0', 'offline:3:0']);
    assert.equal(q.size, 0);
    timers.advance(60_000);
    assert.equal(ends.length, 3);
  });

  it('sync in the middle of the queue: pulled and held (selective ACK) items end, the rest stays queued in order', () => {
    const { timers, q, ends } = queue();
    const sends: { at: number; frame: string }[] = [];
    const t = target(sends, timers);
    for (let s = 1; s <= 8; s++) q.track('u', 'd', t, s, `f${s}`);
    timers.advance(100);
    q.pulled('u', 'd', 2, 6, [4]);
    assert.deepEqual(ends.map((e) => `${e.kind}:${e.seq}`), ['pulled:3', 'acked:4', 'pulled:5', 'pulled:6']);
    assert.deepEqual(q.pendingFor('u', 'd'), [1, 2, 7, 8]);
    q.ack('u', 'd', 7);
    assert.deepEqual(q.pendingFor('u', 'd'), [8]);
    timers.advance(1000);
    assert.deepEqual(sends.map((s) => s.frame), ['f8']);
  });

  it('the queue grows past its first slots and wraps around without losing or reordering anything', () => {
    const { timers, q, ends } = queue({ perDeviceCap: 100 });
    const sends: { at: number; frame: string }[] = [];
    const t = target(sends, timers);
    let next = 1;
    let acked = 0;
    // Keep 3–40 queued while the ring's head moves around it.
    for (let round = 0; round < 200; round++) {
      const add = 1 + (round % 7);
      for (let i = 0; i < add; i++) q.track('u', 'd', t, next, `f${next++}`), timers.advance(1);
      if (round % 3 === 0 && next - 1 - acked > 3) {
        acked = next - 4;
        q.ack('u', 'd', acked);
      }
      assert.deepEqual(q.pendingFor('u', 'd'), Array.from({ length: next - 1 - acked }, (_, i) => acked + 1 + i));
    }
    assert.deepEqual(ends.map((e) => e.seq), Array.from({ length: acked }, (_, i) => i + 1));
    assert.deepEqual(sends, [], 'nothing came due (each waited < 1 s)');
  });

  it('the per-device cap drops the oldest queued delivery; the total cap drops the oldest of the device tracking', () => {
    const { q, ends } = queue({ perDeviceCap: 3, totalCap: 5 });
    const t = { isAlive: () => true, send: () => {} };
    for (let s = 1; s <= 5; s++) q.track('u', 'a', t, s, `f${s}`);
    assert.deepEqual(q.pendingFor('u', 'a'), [3, 4, 5]);
    const t2 = { isAlive: () => true, send: () => {} };
    for (let s = 1; s <= 3; s++) q.track('u', 'b', t2, s, `f${s}`);
    assert.equal(q.size, 5);
    assert.deepEqual(q.pendingFor('u', 'b'), [2, 3], 'at the total cap b gave up its own oldest');
    assert.equal(ends.filter((e) => e.kind === 'overflow').length, 3);
  });

  it('a connection held unread holds the whole queue: due ones counted once, none retried until it is read, then each retried once', () => {
    const timers = new FakeTimers();
    let held = 0;
    let unread = true;
    const sends: { at: number; frame: string }[] = [];
    const q = new RetryQueue(new AdaptiveRetryTiming(CFG), () => {}, () => {}, { perDeviceCap: 64, totalCap: 100, holdLagMs: 100, loopLag: { lagMs: () => 0, stop: () => {} }, onHeld: (n) => (held += n) }, timers);
    const t = { isAlive: () => true, send: (frame: string) => sends.push({ at: timers.t, frame }), heldUnread: () => unread };
    q.track('u', 'd', t, 1, 'f1');
    timers.advance(500);
    q.track('u', 'd', t, 2, 'f2');
    timers.advance(3000);
    assert.equal(sends.length, 0);
    assert.equal(held, 2, 'each counted once for its first attempt');
    q.ack('u', 'd', 1);
    unread = false;
    timers.advance(1000);
    assert.deepEqual(sends.map((s) => s.frame), ['f2']);
    timers.advance(1000);
    assert.deepEqual(sends.map((s) => s.frame), ['f2', 'f2'], 'probing goes on at N');
    assert.equal(held, 2);
  });

  it('while the loop lags, queued due deliveries are counted as held once; the ACK read meanwhile ends them as first arrivals', () => {
    const timers = new FakeTimers();
    let held = 0;
    let lag = 500;
    const sends: string[] = [];
    const ends: DeliveryEnd[] = [];
    const q = new RetryQueue(new AdaptiveRetryTiming(CFG), (e) => ends.push(e), () => {}, { perDeviceCap: 64, totalCap: 100, holdLagMs: 100, loopLag: { lagMs: () => lag, stop: () => {} }, onHeld: (n) => (held += n) }, timers);
    const t = { isAlive: () => true, send: (f: string) => sends.push(f) };
    for (let s = 1; s <= 3; s++) q.track('u', 'd', t, s, `f${s}`), timers.advance(100);
    timers.advance(1000); // all three due, the loop lagging
    assert.equal(held, 3);
    timers.advance(1000);
    assert.equal(held, 3, 'not counted again');
    q.ack('u', 'd', 2);
    lag = 0;
    timers.advance(1000);
    assert.deepEqual(sends, ['f3']);
    assert.deepEqual(ends.map((e) => (e.kind === 'acked' ? e.attempts : -1)), [0, 0]);
  });
});

describe('retry queue: a msg delivery keeps its message body, not each recipient frame', () => {
  it('tracked with its body, a delivery is retried with the same frame the fan-out wrote (made again from the body)', () => {
    const timers = new FakeTimers();
    const sends: string[] = [];
    const q = new RetryQueue(new AdaptiveRetryTiming(CFG), () => {}, () => {}, { perDeviceCap: 64, totalCap: 100 }, timers);
    const target = { isAlive: () => true, send: (f: string) => sends.push(f) };
    const body = JSON.stringify({ id: 'm1', conv: 'g:1', seq: 7, sender: 'a', kind: 'text', body: { text: 'héllo "x"\n' } });
    for (const seq of [41, 42]) q.track('u', 'd', target, seq, msgFrame(seq, body), 'm1', body);
    q.track('u', 'd', target, 43, '{"type":"msg","inboxSeq":43,"message":{"id":"m3"}}', 'm3'); // no body: the frame is kept
    timers.advance(1000);
    assert.deepEqual(sends, [msgFrame(41, body), msgFrame(42, body), '{"type":"msg","inboxSeq":43,"message":{"id":"m3"}}']);
    assert.deepEqual(JSON.parse(sends[0]!), { type: 'msg', inboxSeq: 41, message: JSON.parse(body) });
    timers.advance(1000);
    assert.equal(sends.length, 6, 'the second probe resends the same frames');
    assert.deepEqual(sends.slice(3).sort(), sends.slice(0, 3).sort(), '(deliveries due at the same time go in any order)');
  });
});
