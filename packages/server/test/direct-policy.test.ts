import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { MagpieError } from '@magpie/protocol';
import type { SqlEngine } from '../src/db/engine.ts';
import { SqlStore } from '../src/store/sql-store.ts';
import type { Store } from '../src/store/store.ts';
import { SqlSocialStore } from '../src/social/sql-social-store.ts';
import type { SocialStore } from '../src/social/social-store.ts';
import { SocialService } from '../src/social/social-service.ts';
import { DirectGate } from '../src/social/direct-gate.ts';
import { MemoryBus } from '../src/bus/memory-bus.ts';
import { MessagingService } from '../src/services/message-service.ts';
import type { Principal } from '../src/services/account-service.ts';
import { createMetrics } from '../src/metrics.ts';
import { sqliteDb, pgDb } from './sql-engines.ts';
import { freshSchemaName, pgUnavailable, rawClient } from './pg-test-helpers.ts';

/**
 * The direct-message policy (blocks, stranger policy) as the send path uses it: answered from
 * memory on a single node (social/direct-gate.ts), and still exactly ordered against relation
 * changes — a block committed before a send is appended refuses that send, however the send's
 * check and the block interleave; a send already in the committer is appended before the
 * block's transaction runs. On a cluster node (no cache) a block made through another node
 * applies to the next send.
 */

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const forbidden = (e: unknown) => e instanceof MagpieError && e.code === 'forbidden';

interface Node {
  messaging: MessagingService;
  social: SocialService;
  /** directCheck reads so far. */
  reads(): number;
  /** While set, appendMessages waits for this promise before writing. */
  holdAppends(p: Promise<void> | null): void;
  /** Appended message ids, in commit order, and the block commits, as they happened. */
  events: string[];
}

function principal(userId: string): Principal {
  return { userId, deviceId: 'd', platform: 'web', tokenHash: `t-${userId}`, appVersion: '1' };
}

async function node(db: SqlEngine, opts: { cache: boolean; friendsOnly?: boolean }): Promise<Node> {
  const store = new SqlStore(db, { ringCapacity: 100 });
  await store.migrate();
  const socialStore = new SqlSocialStore(db, { changeLogCapacity: 100 });
  await socialStore.migrate();
  const events: string[] = [];
  let held: Promise<void> | null = null;
  let reads = 0;
  const gatedStore = new Proxy(store, {
    get(t, k) {
      if (k === 'appendMessages') {
        return async (batch: Parameters<Store['appendMessages']>[0]) => {
          if (held) await held;
          const out = await t.appendMessages(batch);
          for (const o of out) if (o.ok && !o.duplicate) events.push(`append ${(o.message.body as { text: string }).text}`);
          return out;
        };
      }
      const v = (t as unknown as Record<string | symbol, unknown>)[k];
      return typeof v === 'function' ? v.bind(t) : v;
    },
  }) as Store;
  const countingSocial = new Proxy(socialStore, {
    get(t, k) {
      if (k === 'directCheck') return (a: string, b: string) => (reads++, t.directCheck(a, b));
      if (k === 'apply') {
        return async (...args: Parameters<SocialStore['apply']>) => {
          const out = await t.apply(...args);
          events.push(`${args[2].type} committed`);
          return out;
        };
      }
      const v = (t as unknown as Record<string | symbol, unknown>)[k];
      return typeof v === 'function' ? v.bind(t) : v;
    },
  }) as SocialStore;
  const bus = new MemoryBus();
  const messaging = new MessagingService(gatedStore, bus, createMetrics(), { ringCapacity: 100, syncGapThreshold: 50, syncPageSize: 50, maxMessageBytes: 16_384, commitDelayMs: 0, maxBatch: 10 });
  const social = new SocialService(countingSocial, bus, { strangerMessages: opts.friendsOnly ? 'friends_only' : 'allow', maxExtraBytes: 1000, cacheDirectPolicy: opts.cache });
  messaging.addDirectPolicy(social.directPolicy);
  return { messaging, social, reads: () => reads, holdAppends: (p) => (held = p), events };
}

let seq = 0;
async function users(db: SqlEngine, n: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const id = `u${process.pid}x${++seq}x${Math.random().toString(36).slice(2, 8)}`;
    await db.run('INSERT INTO users (id, username, password_hash, nickname, created_at) VALUES (?, ?, ?, ?, ?)', [id, id, 'x', id, Date.now()]);
    ids.push(id);
  }
  return ids;
}

const text = (t: string) => ({ kind: 'text', body: { text: t } });

function suite(name: string, open: () => Promise<{ db: SqlEngine; db2?: SqlEngine; cleanup(): Promise<void> }>): void {
  describe(`direct-message policy: ${name}`, () => {
    let db: SqlEngine;
    let db2: SqlEngine | undefined;
    let cleanup: () => Promise<void>;
    before(async () => {
      ({ db, db2, cleanup } = await open());
    });
    after(async () => cleanup());

    it('answers repeated sends from memory; a block refuses the next send both ways, an unblock allows it again', async () => {
      const n = await node(db, { cache: true });
      const [a, b] = await users(db, 2);
      await n.messaging.send(principal(a!), { clientMsgId: 'c1', to: b!, ...text('1') });
      const after1 = n.reads();
      for (let i = 2; i <= 5; i++) await n.messaging.send(principal(a!), { clientMsgId: `c${i}`, to: b!, ...text(String(i)) });
      await n.messaging.send(principal(b!), { clientMsgId: 'r1', to: a!, ...text('r') });
      assert.equal(n.reads(), after1, 'the pair was read once, for both directions');
      await n.social.block(b!, a!);
      await assert.rejects(n.messaging.send(principal(a!), { clientMsgId: 'c6', to: b!, ...text('6') }), forbidden);
      await assert.rejects(n.messaging.send(principal(b!), { clientMsgId: 'r2', to: a!, ...text('r2') }), forbidden);
      await n.social.unblock(b!, a!);
      await n.messaging.send(principal(a!), { clientMsgId: 'c7', to: b!, ...text('7') });
    });

    it('a send checked before a block but queued after the block committed is refused', async () => {
      const n = await node(db, { cache: true });
      const [a, b] = await users(db, 2);
      await n.messaging.send(principal(a!), { clientMsgId: 'w', to: b!, ...text('warm') });
      // The send passes its check at once (cached), then waits in a body hook while the block commits.
      let releaseHook!: () => void;
      const hook = new Promise<void>((r) => (releaseHook = r));
      n.messaging.addBodyHook((_s, _k, body) => ((body as { text: string }).text === 'slow' ? hook.then(() => body) : body));
      const slow = n.messaging.send(principal(a!), { clientMsgId: 's', to: b!, ...text('slow') });
      await sleep(5);
      await n.social.block(b!, a!);
      releaseHook();
      await assert.rejects(slow, forbidden);
      assert.deepEqual(n.events.slice(-2), ['append warm', 'block committed']);
    });

    it('a send already in the committer is appended before the block’s transaction runs; the next one is refused', async () => {
      const n = await node(db, { cache: true });
      const [a, b] = await users(db, 2);
      await n.messaging.send(principal(a!), { clientMsgId: 'w', to: b!, ...text('warm2') });
      let releaseAppend!: () => void;
      n.holdAppends(new Promise<void>((r) => (releaseAppend = r)));
      const inFlight = n.messaging.send(principal(a!), { clientMsgId: 'f', to: b!, ...text('in flight') });
      await sleep(5);
      let blocked = false;
      const block = n.social.block(b!, a!).then(() => (blocked = true));
      // Behind the block in arrival order: refused once the block is done.
      await sleep(5);
      const later = n.messaging.send(principal(a!), { clientMsgId: 'l', to: b!, ...text('later') });
      await sleep(30);
      assert.equal(blocked, false, 'the block waits for the send it let through');
      n.holdAppends(null);
      releaseAppend();
      await inFlight;
      await block;
      await assert.rejects(later, forbidden);
      assert.deepEqual(n.events.slice(-2), ['append in flight', 'block committed']);
    });

    it('a stream of pipelined sends stays in arrival order across a block: a prefix is appended, the rest refused', async () => {
      const n = await node(db, { cache: true });
      const [a, b] = await users(db, 2);
      await n.messaging.send(principal(a!), { clientMsgId: 'w', to: b!, ...text('warm3') });
      const sends: Promise<unknown>[] = [];
      let block: Promise<unknown> | undefined;
      for (let i = 0; i < 60; i++) {
        const sent = n.messaging.send(principal(a!), { clientMsgId: `p${i}`, to: b!, ...text(`p${i}`) });
        sent.catch(() => {}); // settled below
        sends.push(sent);
        if (i === 30) block = n.social.block(b!, a!);
        if (i % 7 === 0) await sleep(1);
      }
      const results = await Promise.allSettled(sends);
      await block;
      const okCount = results.findIndex((r) => r.status === 'rejected');
      assert.ok(okCount > 0, 'some sends before the block went through');
      assert.ok(results.slice(okCount).every((r) => r.status === 'rejected' && forbidden(r.reason)), 'every send after the first refusal is refused');
      const appended = n.events.filter((e) => e.startsWith('append p')).map((e) => e.slice(7));
      assert.deepEqual(appended, Array.from({ length: okCount }, (_, i) => `p${i}`), 'appended in arrival order');
      assert.equal(n.events.at(-1), 'block committed', 'nothing of the pair appended after the block');
    });

    it('friends_only: an unfriend refuses the next send; cached friendship does not outlive it', async () => {
      const n = await node(db, { cache: true, friendsOnly: true });
      const [a, b] = await users(db, 2);
      await assert.rejects(n.messaging.send(principal(a!), { clientMsgId: 'x1', to: b!, ...text('stranger') }), forbidden);
      await n.social.request(a!, b!, 'hi');
      await n.social.accept(b!, a!);
      await n.messaging.send(principal(a!), { clientMsgId: 'x2', to: b!, ...text('friend') });
      await n.social.remove(a!, b!);
      await assert.rejects(n.messaging.send(principal(b!), { clientMsgId: 'x3', to: a!, ...text('gone') }), forbidden);
    });

    it('the cache is bounded; an evicted pair is read again and still refused', async () => {
      const reads: string[] = [];
      const blocked = new Set<string>(['u0>u1']);
      const gate = new DirectGate(
        async (s, r) => {
          reads.push(`${s}>${r}`);
          return { blockedByRecipient: blocked.has(`${r}>${s}`), blockedBySender: blocked.has(`${s}>${r}`), friends: false };
        },
        { friendsOnly: false, cache: true, cap: 3 },
      );
      const check = async (s: string, r: string) => gate.check(s, r);
      await assert.rejects(check('u1', 'u0'), forbidden);
      for (let i = 2; i < 10; i++) await check('u1', `u${i}`);
      assert.ok(gate.cachedPairs <= 3, `${gate.cachedPairs} pairs cached`);
      const before = reads.length;
      await assert.rejects(check('u1', 'u0'), forbidden);
      assert.equal(reads.length, before + 1, 'read again after eviction');
    });

    it('cluster node (no cache): every send reads, so a block made through another node applies to the next send', async () => {
      const other = db2 ?? db;
      const here = await node(db, { cache: false });
      const there = await node(other, { cache: false });
      const [a, b] = await users(db, 2);
      await here.messaging.send(principal(a!), { clientMsgId: 'n1', to: b!, ...text('n1') });
      await here.messaging.send(principal(a!), { clientMsgId: 'n2', to: b!, ...text('n2') });
      assert.equal(here.reads(), 2);
      await there.social.block(b!, a!);
      await assert.rejects(here.messaging.send(principal(a!), { clientMsgId: 'n3', to: b!, ...text('n3') }), forbidden);
    });
  });
}

suite('sqlite', async () => {
  const db = await sqliteDb();
  return { db, cleanup: () => db.close() };
});

const skip = await pgUnavailable();
if (skip) {
  describe('direct-message policy: postgres', () => {
    it(`skipped: ${skip}`, { skip }, () => {});
  });
} else {
  suite('postgres', async () => {
    const schema = freshSchemaName('direct_policy');
    const db = await pgDb(schema);
    const db2 = await pgDb(schema, { node: 'other-node' });
    return {
      db,
      db2,
      cleanup: async () => {
        await db.close();
        await db2.close();
        await rawClient(schema).drop();
      },
    };
  });
}
