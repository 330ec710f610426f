import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { PushStore } from '../src/push/push-store.ts';
import type { DeviceUpsert, JobCompletion, NewPushJob } from '../src/push/types.ts';

/** The PushStore guarantees (src/push/push-store.ts), run against every implementation. */
export function runPushStoreContract(name: string, open: () => Promise<{ store: PushStore; cleanup: () => Promise<void> }>): void {
  describe(`PushStore contract: ${name}`, () => {
    let store: PushStore;
    let cleanup: () => Promise<void>;
    before(async () => {
      ({ store, cleanup } = await open());
    });
    after(async () => {
      await cleanup();
    });

    const uid = () => `u${randomBytes(5).toString('hex')}`;
    const dev = (userId: string, deviceId: string, token: string, extra: Partial<DeviceUpsert> = {}): DeviceUpsert => ({
      userId,
      deviceId,
      platform: 'ios',
      provider: 'apns',
      token,
      vendor: null,
      sandbox: false,
      appVersion: '1.0',
      locale: 'en',
      timeZone: 'UTC',
      permission: 'granted',
      now: 1000,
      ...extra,
    });
    let n = 0;
    const job = (userId: string, deviceId: string, extra: Partial<NewPushJob> = {}): NewPushJob => ({
      id: `j${++n}${randomBytes(3).toString('hex')}`,
      lane: 'live',
      category: 'im',
      userId,
      deviceId,
      provider: 'apns',
      collapseKey: null,
      conv: null,
      seq: 0,
      count: 1,
      title: 't',
      body: 'b',
      data: { k: 'v' },
      notBefore: 0,
      expiresAt: 10_000_000,
      createdAt: 1,
      ...extra,
    });
    const done = (id: string, attempt: number, next: JobCompletion['next'], extra: Partial<JobCompletion> = {}): JobCompletion => ({
      jobId: id,
      attempt,
      at: 5000,
      latencyMs: 3,
      result: { outcome: next.status === 'sent' ? 'ok' : 'transient', status: next.status === 'sent' ? 200 : 503 },
      next,
      ...extra,
    });
    /** Claim everything due in the live lane for this user (other tests' jobs are put back untouched by lane/user filtering). */
    const claimAll = async (now = 10_000) => (await store.claim('live', now, 1000, 60_000)).jobs;

    it('registry: upsert, patch, one row per device, a token belongs to one device', async () => {
      const u = uid();
      const d = await store.upsertDevice(dev(u, 'd1', 'tok-a'));
      assert.deepEqual([d.userId, d.deviceId, d.token, d.sandbox, d.lastSeen], [u, 'd1', 'tok-a', false, 1000]);
      await store.upsertDevice(dev(u, 'd1', 'tok-b', { now: 2000, timeZone: 'Asia/Tokyo' }));
      const list = (await store.devicesOf([u])).get(u)!;
      assert.equal(list.length, 1);
      assert.deepEqual([list[0]!.token, list[0]!.timeZone, list[0]!.createdAt, list[0]!.updatedAt], ['tok-b', 'Asia/Tokyo', 1000, 2000]);
      const v = uid();
      await store.upsertDevice(dev(v, 'x', 'tok-b'));
      assert.equal((await store.devicesOf([u])).get(u)!.length, 0, 'token moved to the other user');
      const p = await store.patchDevice(v, 'x', { permission: 'denied', locale: 'de' }, 3000);
      assert.deepEqual([p!.permission, p!.locale, p!.token, p!.lastSeen], ['denied', 'de', 'tok-b', 3000]);
      assert.equal(await store.patchDevice(v, 'nope', { locale: 'x' }, 1), null);
      await store.touchDevices([{ userId: v, deviceId: 'x' }], 9000);
      assert.equal((await store.getDevice(v, 'x'))!.lastSeen, 9000);
      assert.equal(await store.removeToken('apns', 'tok-b'), true);
      assert.equal(await store.getDevice(v, 'x'), null);
      assert.equal(await store.removeToken('apns', 'tok-b'), false);
    });

    it('enqueue folds into a queued job of the same key, skips covered seqs, and waits out the collapse window', async () => {
      const u = uid();
      await store.upsertDevice(dev(u, 'd', `t-${u}`));
      const [r1] = await store.enqueue([job(u, 'd', { collapseKey: 'c1', seq: 1, count: 1, body: 'one' })], 500);
      assert.equal(r1!.outcome, 'queued');
      const [r2, r3] = await store.enqueue(
        [job(u, 'd', { collapseKey: 'c1', seq: 3, count: 3, body: 'three' }), job(u, 'd', { collapseKey: 'c1', seq: 2, count: 2, body: 'two' })],
        500,
      );
      assert.deepEqual([r2!.outcome, r2!.id], ['merged', r1!.id]);
      assert.equal(r3!.outcome, 'duplicate');
      const j = (await store.getJob(r1!.id))!;
      assert.deepEqual([j.count, j.seq, j.body], [3, 3, 'three']);
      const claimed = (await claimAll(100)).filter((x) => x.userId === u);
      assert.equal(claimed.length, 1);
      await store.complete([done(r1!.id, 1, { status: 'sent' })]);
      const [dup] = await store.enqueue([job(u, 'd', { collapseKey: 'c1', seq: 3 })], 500);
      assert.equal(dup!.outcome, 'duplicate', 'seq 3 was already pushed');
      const [r4] = await store.enqueue([job(u, 'd', { collapseKey: 'c1', seq: 4, notBefore: 150 })], 500);
      assert.equal(r4!.outcome, 'queued');
      assert.equal((await store.getJob(r4!.id))!.notBefore, 100 + 500, 'waits for the collapse window after the last dispatch');
      const [other] = await store.enqueue([job(u, 'd', { collapseKey: null, seq: 0 }), job(u, 'd', { collapseKey: null, seq: 0 })], 500);
      assert.equal(other!.outcome, 'queued');
    });

    it('claim hands a job to one caller; a job of an unregistered device is dropped as unbound', async () => {
      const u = uid();
      await store.upsertDevice(dev(u, 'd', `t-${u}`));
      const ids = (await store.enqueue(Array.from({ length: 20 }, () => job(u, 'd')), 0)).map((r) => r.id);
      const gone = uid();
      const [orphan] = await store.enqueue([job(gone, 'nodevice')], 0);
      const [c1, c2] = await Promise.all([store.claim('live', 10_000, 15, 60_000), store.claim('live', 10_000, 15, 60_000)]);
      const mine = [...c1.jobs, ...c2.jobs].filter((j) => j.userId === u).map((j) => j.id);
      assert.equal(new Set(mine).size, mine.length, 'no job claimed twice');
      const rest = (await claimAll()).filter((j) => j.userId === u).map((j) => j.id);
      assert.deepEqual([...mine, ...rest].sort(), [...ids].sort());
      const unbound = [...c1.unbound, ...c2.unbound].map((j) => j.id);
      assert.ok(unbound.includes(orphan!.id));
      assert.equal((await store.getJob(orphan!.id))!.status, 'dropped');
      const claimed = [...c1.jobs, ...c2.jobs].find((j) => j.userId === u)!;
      assert.equal(claimed.device.token, `t-${u}`, 'claimed jobs carry the current token');
      assert.equal(claimed.attempts, 1);
    });

    it('complete records every attempt, ignores stale completions, removes only the exact token, folds a retry into a newer queued job', async () => {
      const u = uid();
      await store.upsertDevice(dev(u, 'd', `old-${u}`));
      const [a] = await store.enqueue([job(u, 'd', { collapseKey: 'k', seq: 1 })], 0);
      await claimAll();
      await store.complete([done(a!.id, 1, { status: 'queued', notBefore: 20_000 })]);
      assert.equal((await store.getJob(a!.id))!.status, 'queued');
      assert.equal((await store.nextDue('live')) !== null, true);
      const again = (await claimAll(30_000)).find((j) => j.id === a!.id)!;
      assert.equal(again.attempts, 2);
      await store.complete([done(a!.id, 1, { status: 'sent' })]); // stale: attempt 1
      assert.equal((await store.getJob(a!.id))!.status, 'sending');
      // A newer notification of the same key is queued while this one is in flight; the failed one folds into it.
      const [b] = await store.enqueue([job(u, 'd', { collapseKey: 'k', seq: 2 })], 0);
      assert.equal(b!.outcome, 'queued');
      // The device registered a new token meanwhile; the dead-token removal must not touch it.
      await store.upsertDevice(dev(u, 'd', `new-${u}`));
      await store.complete([
        done(a!.id, 2, { status: 'queued', notBefore: 1 }, { result: { outcome: 'invalid_token', status: 410, reason: 'Unregistered' }, removeToken: { provider: 'apns', token: `old-${u}` } }),
      ]);
      assert.equal((await store.getDevice(u, 'd'))!.token, `new-${u}`);
      const folded = (await store.getJob(a!.id))!;
      assert.deepEqual([folded.status, folded.lastError], ['dropped', 'collapsed']);
      const attempts = await store.attemptsOf(a!.id);
      assert.deepEqual(attempts.map((x) => [x.attempt, x.outcome]), [
        [1, 'transient'],
        [2, 'invalid_token'],
      ]);
      assert.equal(attempts[1]!.reason, 'Unregistered');
      assert.equal(attempts[1]!.provider, 'apns');
    });

    it('lease expiry returns in-flight jobs to the queue (crash recovery)', async () => {
      const u = uid();
      await store.upsertDevice(dev(u, 'd', `t-${u}`));
      const [a] = await store.enqueue([job(u, 'd')], 0);
      await store.claim('live', 10_000, 1000, 1000);
      assert.equal((await store.getJob(a!.id))!.status, 'sending');
      await store.requeueExpired(10_500);
      assert.equal((await store.getJob(a!.id))!.status, 'sending', 'lease still valid');
      assert.ok((await store.requeueExpired(11_001)) >= 1);
      assert.equal((await store.getJob(a!.id))!.status, 'queued');
      const re = (await claimAll(12_000)).find((j) => j.id === a!.id)!;
      assert.equal(re.attempts, 2);
    });

    it('expire drops queued jobs past their expiry; removeDevices drops queued jobs', async () => {
      const u = uid();
      await store.upsertDevice(dev(u, 'd', `t-${u}`));
      const [a, b] = await store.enqueue([job(u, 'd', { lane: 'bulk', notBefore: 50_000, expiresAt: 60_000 }), job(u, 'd', { lane: 'bulk', notBefore: 50_000, expiresAt: 90_000 })], 0);
      const expired = await store.expire(70_000);
      assert.ok(expired.some((j) => j.id === a!.id));
      assert.ok(!expired.some((j) => j.id === b!.id));
      assert.equal(await store.removeDevices([{ userId: u, deviceId: 'd' }]), 1);
      assert.deepEqual([(await store.getJob(b!.id))!.status, (await store.getJob(b!.id))!.lastError], ['dropped', 'unbound']);
      const depth = await store.queueDepth();
      assert.equal(typeof depth.live, 'number');
    });

    it('takeQuota is all-or-nothing', async () => {
      const day = `2099-01-${String(10 + (n % 18)).padStart(2, '0')}`;
      const u = uid();
      assert.equal(await store.takeQuota(day, [{ key: u, limit: 2 }, { key: `app-${u}`, limit: 3 }]), true);
      assert.equal(await store.takeQuota(day, [{ key: u, limit: 2 }, { key: `app-${u}`, limit: 3 }]), true);
      assert.equal(await store.takeQuota(day, [{ key: u, limit: 2 }, { key: `app-${u}`, limit: 3 }]), false);
      const v = uid();
      assert.equal(await store.takeQuota(day, [{ key: v, limit: 5 }, { key: `app-${u}`, limit: 3 }]), true, 'app count is 3 now');
      assert.equal(await store.takeQuota(day, [{ key: v, limit: 5 }, { key: `app-${u}`, limit: 3 }]), false);
      assert.equal(await store.takeQuota(day, [{ key: v, limit: 5 }]), true, 'the failed take did not count for v');
      assert.equal(await store.takeQuota(day, [{ key: uid(), limit: 0 }]), false);
      const w = uid();
      const app = `app2-${w}`;
      const got = await store.takeQuotas(day, [
        [{ key: w, limit: 1 }, { key: app, limit: 2 }],
        [{ key: w, limit: 1 }, { key: app, limit: 2 }],
        [{ key: `${w}-b`, limit: 1 }, { key: app, limit: 2 }],
        [{ key: `${w}-c`, limit: 1 }, { key: app, limit: 2 }],
      ]);
      assert.deepEqual(got, [true, false, true, false], 'each request all-or-nothing, in order');
      assert.equal(await store.takeQuota(day, [{ key: `${w}-c`, limit: 1 }]), true, 'the refused request left no count behind');
    });

    it('markEvent counts the first report only; settings, stats and secrets round-trip', async () => {
      const u = uid();
      await store.upsertDevice(dev(u, 'd', `t-${u}`));
      const [a] = await store.enqueue([job(u, 'd')], 0);
      const first = await store.markEvent(a!.id, 'delivered', 7000);
      const second = await store.markEvent(a!.id, 'delivered', 8000);
      assert.deepEqual([first!.first, second!.first, second!.job.deliveredAt], [true, false, 7000]);
      assert.equal(await store.markEvent('no-such-job', 'clicked', 1), null);
      assert.deepEqual((await store.getSettings([u])).get(u), { privacy: 'default', disabled: [], quietHours: null });
      await store.putSettings(u, { privacy: 'hide', disabled: ['marketing'], quietHours: 'off' });
      assert.deepEqual((await store.getSettings([u])).get(u), { privacy: 'hide', disabled: ['marketing'], quietHours: 'off' });
      const day = '2099-02-01';
      await store.addStats([{ day, category: 'im', provider: 'apns', stage: `requested-${u}`, n: 2 }]);
      await store.addStats([{ day, category: 'im', provider: 'apns', stage: `requested-${u}`, n: 3 }]);
      const rows = (await store.stats(day, day)).filter((r) => r.stage === `requested-${u}`);
      assert.deepEqual(rows.map((r) => r.n), [5]);
      const k = `secret-${u}`;
      const s1 = await store.getOrCreateSecret(k, () => 'first');
      const s2 = await store.getOrCreateSecret(k, () => 'second');
      assert.deepEqual([s1, s2], ['first', 'first']);
      const jobs = await store.jobsOf(u, 10);
      assert.equal(jobs[0]!.id, a!.id);
      assert.deepEqual(jobs[0]!.data, { k: 'v' });
    });
  });
}
