import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { PushDispatcher } from '../src/push/dispatcher.ts';
import { PushFunnel } from '../src/push/funnel.ts';
import type { PushStore } from '../src/push/push-store.ts';
import { sqlitePush } from './sql-engines.ts';

/** A logger whose error lines the test can read. */
function capturingLogger(): { log: pino.Logger; errors: string[] } {
  const errors: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n')) if (line && JSON.parse(line).level >= 50) errors.push(line);
      done();
    },
  });
  return { log: pino({ level: 'info' }, sink), errors };
}

const OPTS = {
  lanes: { live: { concurrency: 1, ratePerSec: 0 }, bulk: { concurrency: 1, ratePerSec: 0 } },
  maxAttempts: 3,
  backoffBaseMs: 100,
  backoffMaxMs: 1000,
  leaseMs: 30_000,
  retentionMs: 86_400_000,
  sweepMs: 20,
};

test('stop() waits for a housekeeping pass in flight: closing the store afterwards logs no error (a clean shutdown)', async () => {
  const real = await sqlitePush();
  // The real store, with its queue-depth read held open until the test releases it: the sweep
  // is then mid-pass (its first two statements done) when the server shuts down.
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  let reached!: () => void;
  const reachedDepth = new Promise<void>((r) => (reached = r));
  let holdNext = false;
  const store = new Proxy(real, {
    get(target, key, receiver) {
      if (key === 'queueDepth') {
        return async () => {
          if (holdNext) {
            holdNext = false;
            reached();
            await held;
          }
          return target.queueDepth();
        };
      }
      const v = Reflect.get(target, key, receiver) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  }) as PushStore;
  const { log, errors } = capturingLogger();
  const funnel = new PushFunnel(new Registry(), store, Date.now, log);
  const d = new PushDispatcher(store, {}, funnel, () => ({}) as never, OPTS, log);
  const keepAlive = setInterval(() => {}, 1000); // the sweep timer is unref'd
  await d.start();
  holdNext = true;
  await reachedDepth; // a timer's pass is now waiting inside the store

  let stopped = false;
  const stopping = d.stop().then(() => (stopped = true));
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(stopped, false, 'stop() returned while a sweep was still using the store');
  release();
  await stopping;
  await funnel.stop();
  await real.close();
  await new Promise((r) => setTimeout(r, 50));
  clearInterval(keepAlive);
  assert.deepEqual(errors, []);
});

test('sweep() calls while a pass runs join it instead of stacking passes', async () => {
  const real = await sqlitePush();
  let depthReads = 0;
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  const store = new Proxy(real, {
    get(target, key, receiver) {
      if (key === 'queueDepth') {
        return async () => {
          depthReads++;
          await held;
          return target.queueDepth();
        };
      }
      const v = Reflect.get(target, key, receiver) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  }) as PushStore;
  const { log } = capturingLogger();
  const d = new PushDispatcher(store, {}, new PushFunnel(new Registry(), store, Date.now, log), () => ({}) as never, { ...OPTS, sweepMs: 60_000 }, log);
  const a = d.sweep();
  const b = d.sweep();
  const c = d.sweep();
  await new Promise((r) => setTimeout(r, 30));
  assert.equal(depthReads, 1, 'three calls during one pass ran one pass');
  release();
  await Promise.all([a, b, c]);
  await d.sweep();
  assert.equal(depthReads, 2, 'a call after the pass ended runs a new one');
  await real.close();
});
