import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fcmToken } from '../src/testing/fcm-server.ts';
import { Clock, pushEnv, startFakes, stopFakes } from './push-harness.ts';
import { sqlitePush } from './sql-engines.ts';
import { MemoryBus } from '../src/bus/memory-bus.ts';
import { setTimeout as sleep } from 'node:timers/promises';

/** The push job queue lives in the database: a restart (or a crash mid-send) loses no push. */
describe('durable push queue', () => {
  it('a job waiting for its retry survives a restart and is sent by the next process', async () => {
    const fakes = await startFakes();
    const dir2 = mkdtempSync(join(tmpdir(), 'magpie-push-durable-'));
    const path2 = join(dir2, 'magpie.db');
    try {
      const token = fcmToken();
      fakes.fcm.failures.set(token, 1, { code: 'UNAVAILABLE', retryAfter: 2 });
      const env1 = await pushEnv({ fakes, pushStore: await sqlitePush(path2) });
      const a = await env1.user('ann', 'a1');
      const b = await env1.user('bob', 'phone', { platform: 'android', offline: true });
      await env1.api('PUT', '/api/push/device', { provider: 'fcm', token }, b.token);
      await env1.text(a.p, b.userId, 'survive the restart');
      await env1.push.service.drained();
      // Wait for the first (failed) attempt to be recorded, then stop the node.
      for (let i = 0; i < 100 && fakes.fcm.log.filter(([t]) => t === token).length === 0; i++) await new Promise((r) => setTimeout(r, 20));
      await new Promise((r) => setTimeout(r, 100));
      const [before] = await env1.push.service.history(b.userId);
      assert.equal(before!.status, 'queued', 'waiting for its retry');
      assert.equal(before!.attemptLog.length, 1);
      await env1.close();
      assert.equal(fakes.fcm.received.count((x) => x.token === token), 0);

      const env2 = await pushEnv({ fakes, pushStore: await sqlitePush(path2) });
      try {
        const [got] = (await fakes.fcm.received.until((xs) => xs.some((x) => x.token === token), 6000)).filter((x) => x.token === token);
        assert.equal(got!.message.data.body, 'survive the restart');
        assert.equal(got!.message.data.uid, b.userId);
        await env2.settle();
        const [after] = await env2.push.service.history(b.userId);
        assert.equal(after!.status, 'sent');
        assert.deepEqual(after!.attemptLog.map((x) => [x.attempt, x.outcome]), [
          [1, 'transient'],
          [2, 'ok'],
        ]);
      } finally {
        await env2.close();
      }
    } finally {
      await stopFakes(fakes);
      rmSync(dir2, { recursive: true, force: true });
    }
  });

  it('a job claimed by a node that died mid-send is sent again after its lease expires', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'magpie-push-lease-'));
    const path = join(dir, 'magpie.db');
    const fakes = await startFakes();
    const clock = new Clock(Date.now());
    const env = await pushEnv({ fakes, now: clock.now, pushStore: await sqlitePush(path), push: { leaseMs: 5000 } });
    try {
      const token = fcmToken();
      const [uid] = await env.fastUsers(1, () => ({ provider: 'fcm', token }));
      // Another node's store connection claims the job and dies before sending.
      await env.push.dispatcher.stop();
      const crashed = await sqlitePush(path);
      const r = await env.push.service.notify({ userIds: [uid!], category: 'transaction', title: 'Paid', body: '¥12.00' });
      assert.equal(r.accepted, 1);
      const claimed = await crashed.claim('live', clock.t, 10, 5000);
      assert.equal(claimed.jobs.length, 1);
      await crashed.close();
      await env.push.dispatcher.start();
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(fakes.fcm.received.count((x) => x.token === token), 0, 'lease still held by the dead node');
      clock.advance(5001);
      await env.push.dispatcher.sweep();
      const [got] = (await fakes.fcm.received.until((xs) => xs.some((x) => x.token === token))).filter((x) => x.token === token);
      assert.equal(got!.message.data.title, 'Paid');
      await env.settle();
      const [job] = await env.push.service.history(uid!);
      assert.deepEqual([job!.status, job!.attempts], ['sent', 2]);
    } finally {
      await env.close();
      await stopFakes(fakes);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('nodes on one queue: idle ones do not poll every second; a node that claims full batches wakes the others over the Bus', async () => {
    const fakes = await startFakes();
    const dir = mkdtempSync(join(tmpdir(), 'magpie-push-backlog-'));
    const path = join(dir, 'magpie.db');
    // Two nodes' push modules on one queue and one Bus.
    const bus = new MemoryBus();
    const storeA = await sqlitePush(path);
    const storeB = await sqlitePush(path);
    const claimed = { a: 0, b: 0, bPasses: 0 };
    const countClaims = (s: typeof storeA, k: 'a' | 'b'): void => {
      const claim = s.claim.bind(s);
      s.claim = async (...args) => {
        const r = await claim(...args);
        claimed[k] += r.jobs.length;
        if (k === 'b') claimed.bPasses++;
        return r;
      };
    };
    countClaims(storeA, 'a');
    countClaims(storeB, 'b');
    // Node A takes 2 jobs at a time (its batches are always full while jobs are due).
    const a = await pushEnv({ fakes, pushStore: storeA, pushBus: bus, push: { lanes: { live: { concurrency: 2 } } } });
    const b = await pushEnv({ fakes, pushStore: storeB, pushBus: bus });
    try {
      await sleep(2500);
      const idlePasses = claimed.bPasses;
      assert.ok(idlePasses <= 2, `an idle node claimed ${idlePasses} times in 2.5 s: once per lane at its start, then nothing until its idle poll (5 s)`);
      const users = await a.fastUsers(60, () => ({ provider: 'fcm', token: fcmToken() }));
      const r = await a.push.service.notify({ userIds: users, category: 'transaction', title: 'Paid', body: '¥1.00' });
      assert.equal(r.accepted, 60);
      await fakes.fcm.received.until((xs) => xs.length >= 60, 4000);
      assert.equal(claimed.a + claimed.b, 60, 'every job claimed once');
      assert.ok(claimed.b > 0, `node B, woken by A's backlog hint long before its idle poll (5 s), took part (A ${claimed.a}, B ${claimed.b})`);
      await a.settle();
      await b.settle();
    } finally {
      await a.close();
      await b.close();
      await stopFakes(fakes);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
