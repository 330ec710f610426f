/**
 * ACK flush pacing (services/ack-service.ts, issue 15): a flush goes `flushMs` after the first
 * pending ACK, but no sooner than `minIntervalMs` after the previous flush started, so a busy
 * node (in a cluster: every node, each flushing its own members' ACKs) writes one flush per
 * interval for all the messages acknowledged meanwhile instead of one per message. Nothing
 * acknowledged is dropped: the last flush carries every device's latest cumulative ACK.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { AckService } from '../src/services/ack-service.ts';
import { CONFIG_ENV_NAMES, loadConfig } from '../src/config/config.ts';
import type { Bus } from '../src/bus/bus.ts';
import type { Metrics } from '../src/metrics.ts';
import type { DeviceAck, Store } from '../src/store/store.ts';

function harness(flushMs: number, minIntervalMs: number) {
  const flushes: { at: number; acks: DeviceAck[] }[] = [];
  const store = {
    async recordAcks(acks: DeviceAck[]) {
      flushes.push({ at: performance.now(), acks });
      return { delivered: [], counts: [] };
    },
  } as unknown as Store;
  const bus = { publish() {} } as unknown as Bus;
  const metrics = { acks: { inc() {} } } as unknown as Metrics;
  return { flushes, acks: new AckService(store, bus, metrics, flushMs, minIntervalMs) };
}

test('an ACK on an idle node is written flushMs after it arrives, whatever the interval', async () => {
  const { flushes, acks } = harness(20, 100);
  const t0 = performance.now();
  acks.ack('u1', 'd1', 5);
  await sleep(5);
  assert.equal(flushes.length, 0, 'not before flushMs');
  for (let i = 0; i < 100 && flushes.length === 0; i++) await sleep(5);
  assert.equal(flushes.length, 1);
  assert.ok(flushes[0]!.at - t0 >= 19, `written after ${(flushes[0]!.at - t0).toFixed(1)} ms`);
  assert.deepEqual(flushes[0]!.acks.map((a) => [a.userId, a.deviceId, a.inboxSeq]), [['u1', 'd1', 5]]);
});

test('a busy node flushes at most once per interval, and the last flush has every latest ACK', async () => {
  const { flushes, acks } = harness(20, 100);
  // Three devices acknowledging a message every 10 ms for ~600 ms (a message every 10 ms).
  let seq = 0;
  const until = performance.now() + 600;
  while (performance.now() < until) {
    seq++;
    for (const d of ['a', 'b', 'c']) acks.ack(`u-${d}`, d, seq);
    await sleep(10);
  }
  await acks.flush();
  const gaps = flushes.slice(1).map((f, i) => f.at - flushes[i]!.at);
  // The explicit flush() at the end may follow the last timed one at once; every timed one waits the interval.
  for (const g of gaps.slice(0, -1)) assert.ok(g >= 95, `flushes ${g.toFixed(1)} ms apart: ${gaps.map((x) => x.toFixed(0)).join(', ')}`);
  assert.ok(flushes.length <= 9, `${flushes.length} flushes for ${seq} ACK rounds`);
  // Nothing lost: per device, the highest inboxSeq written is the last one acknowledged.
  for (const d of ['a', 'b', 'c']) {
    const top = Math.max(...flushes.flatMap((f) => f.acks.filter((a) => a.deviceId === d).map((a) => a.inboxSeq)));
    assert.equal(top, seq, `device ${d}`);
  }
});

test('interval 0 keeps one flush per flushMs window (the former pacing)', async () => {
  const { flushes, acks } = harness(20, 0);
  let seq = 0;
  const until = performance.now() + 300;
  while (performance.now() < until) {
    acks.ack('u', 'd', ++seq);
    await sleep(40);
  }
  await acks.flush();
  // One per ACK (each 40 ms apart, the window is 20 ms): far more than 300 / 100.
  assert.ok(flushes.length >= 5, `${flushes.length} flushes`);
  assert.equal(Math.max(...flushes.flatMap((f) => f.acks.map((a) => a.inboxSeq))), seq);
});

test('flush() writes what is pending at once (shutdown), regardless of the interval', async () => {
  const { flushes, acks } = harness(20, 1000);
  acks.ack('u', 'd', 1);
  await acks.flush();
  acks.ack('u', 'd', 2);
  await acks.flush();
  assert.deepEqual(flushes.map((f) => f.acks[0]!.inboxSeq), [1, 2]);
});

test('the ACK flush settings have environment variables (MAGPIE_ACK_FLUSH_MS, MAGPIE_ACK_FLUSH_INTERVAL_MS)', () => {
  const d = loadConfig({ MAGPIE_CONFIG: '' } as NodeJS.ProcessEnv);
  assert.deepEqual([d.ackFlushMs, d.ackFlushIntervalMs], [20, 100]);
  const c = loadConfig({ MAGPIE_CONFIG: '', MAGPIE_ACK_FLUSH_MS: '5', MAGPIE_ACK_FLUSH_INTERVAL_MS: '0' } as NodeJS.ProcessEnv);
  assert.deepEqual([c.ackFlushMs, c.ackFlushIntervalMs], [5, 0]);
  assert.ok(CONFIG_ENV_NAMES.includes('MAGPIE_ACK_FLUSH_MS') && CONFIG_ENV_NAMES.includes('MAGPIE_ACK_FLUSH_INTERVAL_MS'));
  assert.throws(() => loadConfig({ MAGPIE_CONFIG: '', MAGPIE_ACK_FLUSH_MS: '0' } as NodeJS.ProcessEnv), /ackFlushMs/);
  assert.throws(() => loadConfig({ MAGPIE_CONFIG: '', MAGPIE_ACK_FLUSH_INTERVAL_MS: '-1' } as NodeJS.ProcessEnv), /ackFlushIntervalMs/);
});
