/**
 * The one contract suite of `SocialStore` (src/social/social-store.ts), run by
 * test/social-store-sqlite.test.ts and test/social-store-postgres.test.ts against a fresh
 * database each (the messaging `users` table included, created by migration 0004-core).
 * User ids carry random suffixes so tests do not see each other.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { RelationChange } from '@magpie/protocol';
import type { ApplyOutcome, SocialStore } from '../src/social/social-store.ts';
import type { RelationAction } from '../src/social/relations.ts';

export interface SocialStoreFixture {
  store: SocialStore;
  /** Insert a row into `users` (as the messaging Store would at registration). */
  addUser(id: string, username: string, nickname: string): Promise<void>;
  /** Count rows of a social table (to show that refusals write nothing). */
  count(table: string): Promise<number>;
  /** The plan of a nickname search; must name the social_users_nick index. */
  explainSearch(): Promise<string>;
  cleanup(): Promise<void>;
}

export type SocialStoreFactory = (opts: { changeLogCapacity: number }) => Promise<SocialStoreFixture>;

const rand = (): string => randomBytes(5).toString('hex');
let clock = 1_000_000;
const now = (): number => ++clock;

function ok(o: ApplyOutcome): Extract<ApplyOutcome, { ok: true }> {
  assert.equal(o.ok, true, `expected success, got ${JSON.stringify(o)}`);
  return o as Extract<ApplyOutcome, { ok: true }>;
}

function refused(o: ApplyOutcome, error: 'not_found' | 'forbidden' | 'conflict'): void {
  assert.equal(o.ok, false, `expected a refusal, got ${JSON.stringify(o)}`);
  assert.equal((o as { error: string }).error, error);
}

/** The change each user got, as [userId, kind, state]. */
const kinds = (o: ApplyOutcome) => ok(o).changes.map((c) => [c.userId, c.change.kind, c.change.state]).sort();

export function runSocialStoreContract(name: string, factory: SocialStoreFactory): void {
  describe(`SocialStore contract: ${name}`, () => {
    let fx: SocialStoreFixture;
    let store: SocialStore;
    const users = async (n: number, nick = 'user'): Promise<string[]> => {
      const ids: string[] = [];
      for (let i = 0; i < n; i++) {
        const id = `u${rand()}`;
        await fx.addUser(id, `n${rand()}`, nick);
        ids.push(id);
      }
      return ids;
    };
    const act = (a: string, b: string, action: RelationAction) => store.apply(a, b, action, now());
    const request = (a: string, b: string, greeting = 'hi') => act(a, b, { type: 'request', greeting });
    const all = async (u: string, since = 0): Promise<RelationChange[]> => (await store.changesSince(u, since, 10_000)).changes;

    before(async () => {
      fx = await factory({ changeLogCapacity: 1000 });
      store = fx.store;
      await store.migrate();
      await store.migrate(); // idempotent
    });
    after(async () => fx.cleanup());

    describe('profiles', () => {
      it('an unknown user has no profile; a new one has defaults', async () => {
        assert.equal(await store.getProfile(`nobody${rand()}`), null);
        const [a] = await users(1, 'Alice');
        assert.deepEqual(await store.getProfile(a!), { id: a, username: (await store.getProfile(a!))!.username, nickname: 'Alice', avatar: null, extra: {} });
      });

      it('updates are partial: each field keeps its value unless given; nickname lives in users', async () => {
        const [a] = await users(1, 'Before');
        const p1 = await store.updateProfile(a!, { avatar: 'https://cdn.example/a.png' }, now());
        assert.equal(p1?.avatar, 'https://cdn.example/a.png');
        assert.equal(p1?.nickname, 'Before');
        const p2 = await store.updateProfile(a!, { extraJson: JSON.stringify({ city: 'Hangzhou', tags: [1, 2] }) }, now());
        assert.equal(p2?.avatar, 'https://cdn.example/a.png', 'avatar kept');
        assert.deepEqual(p2?.extra, { city: 'Hangzhou', tags: [1, 2] });
        const p3 = await store.updateProfile(a!, { nickname: 'After', avatar: null }, now());
        assert.equal(p3?.nickname, 'After');
        assert.equal(p3?.avatar, null);
        assert.deepEqual(p3?.extra, { city: 'Hangzhou', tags: [1, 2] }, 'extra kept');
        assert.deepEqual(await store.getProfile(a!), p3);
        assert.deepEqual((await store.findExact(a!))[0]?.nickname, 'After');
      });

      it('updating an unknown user changes nothing', async () => {
        const before = await fx.count('social_profiles');
        assert.equal(await store.updateProfile(`nobody${rand()}`, { nickname: 'x', avatar: 'https://x.example/' }, now()), null);
        assert.equal(await fx.count('social_profiles'), before);
      });
    });

    describe('search', () => {
      it('finds by exact id or exact username, nothing by a partial one', async () => {
        const id = `u${rand()}`;
        const username = `exact${rand()}`;
        await fx.addUser(id, username, 'Someone');
        assert.deepEqual((await store.findExact(id)).map((p) => p.id), [id]);
        assert.deepEqual((await store.findExact(username)).map((p) => p.id), [id]);
        assert.deepEqual(await store.findExact(username.slice(0, -1)), []);
        assert.deepEqual(await store.findExact(username.toUpperCase()), [], 'usernames match exactly');
      });

      it('finds by nickname prefix, case-insensitively, ordered by (nickname, id), paged by keyset', async () => {
        const tag = rand().replace(/[0-9]/g, 'q');
        const names = [`${tag}Bob`, `${tag}bob`, `${tag}BOB`, `${tag}Bobby`, `${tag}Bo`, `${tag}Carl`, `x${tag}Bob`];
        for (const n of names) await fx.addUser(`u${rand()}`, `n${rand()}`, n);
        const prefix = `${tag}BO`;
        const got: { id: string; nickname: string; key: string }[] = [];
        let cursor: { key: string; id: string } | null = null;
        for (let page = 0; page < 10; page++) {
          const rows = await store.searchNickname(prefix, cursor, 2);
          got.push(...rows);
          if (rows.length < 2) break;
          cursor = { key: rows.at(-1)!.key, id: rows.at(-1)!.id };
        }
        assert.deepEqual(got.map((r) => r.nickname.toLowerCase()).sort(), [`${tag}bo`, `${tag}bob`, `${tag}bob`, `${tag}bob`, `${tag}bobby`].map((s) => s.toLowerCase()).sort());
        assert.equal(new Set(got.map((r) => r.id)).size, 5, 'no user twice across pages');
        const order = got.map((r) => [r.key, r.id] as const);
        const sorted = [...order].sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : x[1] < y[1] ? -1 : x[1] > y[1] ? 1 : 0));
        assert.deepEqual(order, sorted);
        assert.deepEqual(await store.searchNickname(`${tag}Bobbyx`, null, 10), []);
      });

      it('treats LIKE wildcards in the prefix literally', async () => {
        const tag = rand().replace(/[0-9]/g, 'z');
        for (const n of [`${tag}a_b`, `${tag}a%b`, `${tag}axb`]) await fx.addUser(`u${rand()}`, `n${rand()}`, n);
        assert.deepEqual((await store.searchNickname(`${tag}a_`, null, 10)).map((r) => r.nickname), [`${tag}a_b`]);
        assert.deepEqual((await store.searchNickname(`${tag}a%`, null, 10)).map((r) => r.nickname), [`${tag}a%b`]);
      });

      it('is served by the social_users_nick index', async () => {
        assert.match(await fx.explainSearch(), /social_users_nick/);
      });
    });

    describe('friend requests and friends', () => {
      it('request → pending on both sides with the greeting; accept → friends on both sides', async () => {
        const [a, b] = await users(2);
        const r = await request(a!, b!, 'I am Alice');
        assert.deepEqual(kinds(r), [
          [a, 'request_sent', 'outgoing'],
          [b, 'request_received', 'incoming'],
        ].sort());
        assert.equal(ok(r).state, 'outgoing');
        assert.equal(ok(r).version, 1);
        assert.equal(await store.relationOf(a!, b!), 'outgoing');
        assert.equal(await store.relationOf(b!, a!), 'incoming');
        const inc = await store.listRequests(b!, 'incoming', null, 10);
        assert.deepEqual(inc.items.map((x) => [x.user.id, x.greeting]), [[a, 'I am Alice']]);
        assert.equal(inc.version, 1);
        assert.deepEqual((await store.listRequests(a!, 'outgoing', null, 10)).items.map((x) => x.user.id), [b]);

        const acc = await act(b!, a!, { type: 'accept' });
        assert.deepEqual(kinds(acc), [
          [a, 'request_accepted', 'friend'],
          [b, 'friend_added', 'friend'],
        ].sort());
        assert.equal(ok(acc).version, 2);
        assert.equal(await store.relationOf(a!, b!), 'friend');
        assert.equal(await store.relationOf(b!, a!), 'friend');
        assert.deepEqual((await store.listFriends(a!, null, 10)).items.map((x) => x.user.id), [b]);
        assert.deepEqual((await store.listFriends(b!, null, 10)).items.map((x) => x.user.id), [a]);
        assert.equal((await store.listRequests(b!, 'incoming', null, 10)).items.length, 0);
        assert.equal((await store.listRequests(a!, 'outgoing', null, 10)).items.length, 0);
        assert.deepEqual((await all(a!)).map((c) => [c.version, c.kind, c.greeting]), [
          [1, 'request_sent', 'I am Alice'],
          [2, 'request_accepted', undefined],
        ]);
        // A repeated accept (a lost answer, retried) changes nothing.
        const again = ok(await act(b!, a!, { type: 'accept' }));
        assert.deepEqual([again.duplicate, again.state, again.version, again.changes.length], [true, 'friend', 2, 0]);
      });

      it('a repeated request is idempotent: same state, first greeting kept, nothing logged', async () => {
        const [a, b] = await users(2);
        ok(await request(a!, b!, 'first'));
        const dup = ok(await request(a!, b!, 'second'));
        assert.deepEqual([dup.duplicate, dup.state, dup.version, dup.changes.length], [true, 'outgoing', 1, 0]);
        assert.equal((await store.listRequests(b!, 'incoming', null, 10)).items[0]?.greeting, 'first');
        assert.equal((await all(b!)).length, 1);
      });

      it('requesting someone who already requested you accepts their request', async () => {
        const [a, b] = await users(2);
        ok(await request(a!, b!));
        const r = await request(b!, a!);
        assert.deepEqual(kinds(r), [
          [a, 'request_accepted', 'friend'],
          [b, 'friend_added', 'friend'],
        ].sort());
        assert.equal(await store.relationOf(a!, b!), 'friend');
        assert.equal((await store.listRequests(a!, 'outgoing', null, 10)).items.length, 0);
      });

      it('two users requesting each other at the same time become friends', async () => {
        const pairs = await Promise.all(Array.from({ length: 10 }, () => users(2)));
        const outs = await Promise.all(pairs.flatMap(([a, b]) => [request(a!, b!), request(b!, a!)]));
        for (const o of outs) ok(o);
        for (const [a, b] of pairs) {
          assert.equal(await store.relationOf(a!, b!), 'friend');
          assert.equal(await store.relationOf(b!, a!), 'friend');
          assert.equal((await store.listRequests(a!, 'incoming', null, 10)).items.length + (await store.listRequests(a!, 'outgoing', null, 10)).items.length, 0);
          assert.deepEqual((await all(a!)).map((c) => c.version), [1, 2]);
        }
      });

      it('reject removes the request on both sides; a second reject is not_found', async () => {
        const [a, b] = await users(2);
        ok(await request(a!, b!));
        assert.deepEqual(kinds(await act(b!, a!, { type: 'reject' })), [
          [a, 'request_rejected', 'none'],
          [b, 'request_rejected', 'none'],
        ].sort());
        assert.equal(await store.relationOf(a!, b!), 'none');
        refused(await act(b!, a!, { type: 'reject' }), 'not_found');
        // Rejected is not final: a may ask again.
        assert.equal(ok(await request(a!, b!)).state, 'outgoing');
      });

      it('the sender can withdraw a request; accept without a request is not_found', async () => {
        const [a, b] = await users(2);
        ok(await request(a!, b!));
        refused(await act(a!, b!, { type: 'accept' }), 'not_found');
        refused(await act(b!, a!, { type: 'cancel' }), 'not_found');
        assert.deepEqual(kinds(await act(a!, b!, { type: 'cancel' })), [
          [a, 'request_cancelled', 'none'],
          [b, 'request_cancelled', 'none'],
        ].sort());
        assert.equal((await store.listRequests(b!, 'incoming', null, 10)).items.length, 0);
      });

      it('remove ends the friendship for both; requesting a friend is a conflict', async () => {
        const [a, b] = await users(2);
        refused(await act(a!, b!, { type: 'remove' }), 'not_found');
        ok(await request(a!, b!));
        ok(await act(b!, a!, { type: 'accept' }));
        refused(await request(b!, a!), 'conflict');
        assert.deepEqual(kinds(await act(b!, a!, { type: 'remove' })), [
          [a, 'friend_removed', 'none'],
          [b, 'friend_removed', 'none'],
        ].sort());
        assert.equal((await store.listFriends(a!, null, 10)).items.length, 0);
        assert.equal((await store.listFriends(b!, null, 10)).items.length, 0);
      });

      it('an unknown peer is not_found and writes nothing', async () => {
        const [a] = await users(1);
        const before = await Promise.all(['social_requests', 'social_changes', 'social_versions', 'social_blocks'].map((t) => fx.count(t)));
        refused(await request(a!, `ghost${rand()}`), 'not_found');
        refused(await act(a!, `ghost${rand()}`, { type: 'block' }), 'not_found');
        const afterCounts = await Promise.all(['social_requests', 'social_changes', 'social_versions', 'social_blocks'].map((t) => fx.count(t)));
        assert.deepEqual(afterCounts, before);
        assert.equal((await store.changesSince(a!, 0, 10)).version, 0);
      });

      it('lists page by user id after a cursor', async () => {
        const [me] = await users(1);
        const others = await users(7);
        for (const o of others) {
          ok(await request(o, me!));
          ok(await act(me!, o, { type: 'accept' }));
        }
        const ids: string[] = [];
        let cursor: string | null = null;
        for (;;) {
          const page = await store.listFriends(me!, cursor, 3);
          ids.push(...page.items.map((x) => x.user.id));
          assert.equal(page.version, 14);
          if (page.items.length < 3) break;
          cursor = page.items.at(-1)!.user.id;
        }
        assert.deepEqual(ids, [...others].sort());
      });
    });

    describe('blocks', () => {
      it('blocking a friend ends the friendship; the peer sees only a removal', async () => {
        const [a, b] = await users(2);
        ok(await request(a!, b!));
        ok(await act(b!, a!, { type: 'accept' }));
        const r = await act(a!, b!, { type: 'block' });
        assert.deepEqual(kinds(r), [
          [a, 'blocked', 'blocked'],
          [b, 'friend_removed', 'none'],
        ].sort());
        assert.equal(await store.relationOf(a!, b!), 'blocked');
        assert.equal(await store.relationOf(b!, a!), 'none', 'being blocked is not revealed');
        assert.equal((await store.listFriends(b!, null, 10)).items.length, 0);
        assert.deepEqual((await store.listBlocks(a!, null, 10)).items.map((x) => x.user.id), [b]);
        assert.deepEqual((await store.listBlocks(b!, null, 10)).items, []);
      });

      it('blocking drops a pending request either way', async () => {
        const [a, b, c] = await users(3);
        ok(await request(b!, a!)); // b → a pending; a blocks b: b's request is rejected
        assert.deepEqual(kinds(await act(a!, b!, { type: 'block' })), [
          [a, 'blocked', 'blocked'],
          [b, 'request_rejected', 'none'],
        ].sort());
        ok(await request(a!, c!)); // a → c pending; a blocks c: a's request is withdrawn
        assert.deepEqual(kinds(await act(a!, c!, { type: 'block' })), [
          [a, 'blocked', 'blocked'],
          [c, 'request_cancelled', 'none'],
        ].sort());
        assert.equal((await store.listRequests(a!, 'incoming', null, 10)).items.length, 0);
        assert.equal((await store.listRequests(a!, 'outgoing', null, 10)).items.length, 0);
      });

      it('a blocked user cannot send requests, nor can the blocker until unblocking; block and unblock are idempotent', async () => {
        const [a, b] = await users(2);
        assert.deepEqual(kinds(await act(a!, b!, { type: 'block' })), [[a, 'blocked', 'blocked']]);
        const dup = ok(await act(a!, b!, { type: 'block' }));
        assert.deepEqual([dup.duplicate, dup.changes.length, dup.version], [true, 0, 1]);
        const before = await fx.count('social_changes');
        refused(await request(b!, a!), 'forbidden');
        refused(await request(a!, b!), 'forbidden');
        assert.equal(await fx.count('social_changes'), before, 'refusals log nothing');
        assert.equal((await store.listRequests(a!, 'incoming', null, 10)).items.length, 0);
        assert.deepEqual(kinds(await act(a!, b!, { type: 'unblock' })), [[a, 'unblocked', 'none']]);
        assert.equal(ok(await act(a!, b!, { type: 'unblock' })).duplicate, true);
        assert.equal(ok(await request(b!, a!)).state, 'outgoing');
      });

      it('directCheck reports blocks each way and friendship', async () => {
        const [a, b, c] = await users(3);
        assert.deepEqual(await store.directCheck(a!, b!), { blockedByRecipient: false, blockedBySender: false, friends: false });
        ok(await request(a!, c!));
        ok(await act(c!, a!, { type: 'accept' }));
        assert.deepEqual(await store.directCheck(a!, c!), { blockedByRecipient: false, blockedBySender: false, friends: true });
        ok(await act(b!, a!, { type: 'block' }));
        assert.deepEqual(await store.directCheck(a!, b!), { blockedByRecipient: true, blockedBySender: false, friends: false });
        assert.deepEqual(await store.directCheck(b!, a!), { blockedByRecipient: false, blockedBySender: true, friends: false });
      });
    });

    describe('change log', () => {
      it('versions are gap-free per user and changesSince returns exactly what follows', async () => {
        const [me] = await users(1);
        const others = await users(6);
        // Concurrent actions of many peers against one user.
        const outs = await Promise.all(others.map((o) => request(o, me!)));
        for (const o of outs) ok(o);
        await Promise.all(others.slice(0, 3).map((o) => act(me!, o, { type: 'accept' })));
        await Promise.all(others.slice(3, 5).map((o) => act(me!, o, { type: 'reject' })));
        ok(await act(me!, others[5]!, { type: 'block' }));
        const log = await all(me!);
        assert.deepEqual(log.map((c) => c.version), Array.from({ length: 12 }, (_, i) => i + 1));
        for (let since = 0; since <= 12; since++) {
          const page = await store.changesSince(me!, since, 100);
          assert.equal(page.version, 12);
          assert.deepEqual(page.changes, log.slice(since));
        }
        assert.deepEqual((await store.changesSince(me!, 4, 3)).changes.map((c) => c.version), [5, 6, 7]);
        // The final state per peer is the state of its last change.
        const last = new Map(log.map((c) => [c.peer, c.state]));
        for (const o of others) assert.equal(await store.relationOf(me!, o), last.get(o));
      });

      it('list pages carry the version read before them', async () => {
        const [a, b] = await users(2);
        ok(await request(a!, b!));
        assert.equal((await store.listFriends(b!, null, 10)).version, 1);
        assert.equal((await store.listBlocks(b!, null, 10)).version, 1);
        assert.equal((await store.listRequests(b!, 'incoming', null, 10)).version, 1);
      });
    });

    describe('change log capacity', () => {
      let small: SocialStoreFixture;
      before(async () => {
        small = await factory({ changeLogCapacity: 8 });
        await small.store.migrate();
      });
      after(async () => small.cleanup());

      it('keeps at least the newest `capacity` changes and reports the trimmed floor', async () => {
        const me = `u${rand()}`;
        const peer = `u${rand()}`;
        await small.addUser(me, `n${rand()}`, 'me');
        await small.addUser(peer, `n${rand()}`, 'peer');
        for (let i = 0; i < 15; i++) ok(await small.store.apply(me, peer, { type: i % 2 === 0 ? 'block' : 'unblock' }, now()));
        const page = await small.store.changesSince(me, 0, 100);
        assert.equal(page.version, 15);
        assert.ok(page.floor > 0 && page.floor <= 15 - 8, `floor ${page.floor}`);
        const kept = (await small.store.changesSince(me, page.floor, 100)).changes;
        assert.deepEqual(kept.map((c) => c.version), Array.from({ length: 15 - page.floor }, (_, i) => page.floor + i + 1));
        assert.ok(kept.length >= 8);
        assert.ok(page.changes[0]!.version > 1, 'trimmed changes are gone');
      });
    });
  });
}
