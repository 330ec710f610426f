/**
 * The one contract test suite for `Store` (src/store/store.ts). Every implementation runs it:
 * test/store-sqlite.test.ts, test/store-postgres.test.ts.
 *
 * All ids carry random suffixes, so the suite can run repeatedly against a shared database.
 * The factory must return a migrated store whose ring capacity is `opts.ringCapacity`
 * (default CONTRACT_RING_CAPACITY).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { ConvEntry, Message } from '@magpie/protocol';
import {
  StoreConflictError,
  StoreNotFoundError,
  directConversationId,
  type AppendOutcome,
  type AppendRequest,
  type DeviceAck,
  type GroupEffect,
  type InboxPointer,
  type JoinRequestRecord,
  type NewGroup,
  type NewSession,
  type Store,
  type UserRecord,
} from '../src/store/store.ts';

export const CONTRACT_RING_CAPACITY = 8;

export interface StoreContractOptions {
  ringCapacity?: number;
}

type Ok = Extract<AppendOutcome, { ok: true }>;
type Refused = Extract<AppendOutcome, { ok: false }>;

/** What a store factory returns; `countRows` (rows of one table) lets the suite show storage per message. */
export interface StoreUnderTest {
  store: Store;
  cleanup: () => Promise<void>;
  countRows?: (table: string) => Promise<number>;
}

const rand = (): string => randomBytes(6).toString('hex');

function expectOk(o: AppendOutcome | undefined): Ok {
  assert.ok(o, 'missing outcome');
  assert.equal(o.ok, true, `expected ok outcome, got ${JSON.stringify(o)}`);
  return o as Ok;
}

function pointerOf(o: Ok, userId: string): number {
  const p = o.pointers.find((x) => x.userId === userId);
  assert.ok(p, `no pointer for ${userId} in ${JSON.stringify(o.pointers)}`);
  return p.inboxSeq;
}

function sortPointers(p: InboxPointer[]): InboxPointer[] {
  return [...p].sort((a, b) => (a.userId < b.userId ? -1 : a.userId > b.userId ? 1 : 0));
}

function range(from: number, to: number): number[] {
  const out: number[] = [];
  for (let i = from; i <= to; i++) out.push(i);
  return out;
}

export function runStoreContract(
  name: string,
  factory: () => Promise<StoreUnderTest>,
  opts: StoreContractOptions = {},
): void {
  const K = opts.ringCapacity ?? CONTRACT_RING_CAPACITY;

  describe(`Store contract: ${name}`, () => {
    let store: Store;
    let cleanup: (() => Promise<void>) | undefined;
    let countRows: ((table: string) => Promise<number>) | undefined;
    const run = rand();
    let counter = 0;
    const t0 = 1_700_000_000_000;

    before(async () => {
      const made = await factory();
      store = made.store;
      cleanup = made.cleanup;
      countRows = made.countRows;
    });
    after(async () => {
      if (cleanup) await cleanup();
    });

    async function newUser(label = 'u'): Promise<UserRecord> {
      const id = `${label}_${run}_${++counter}_${rand()}`;
      return store.createUser({ id, username: `name_${id}`, passwordHash: `hash:${id}`, nickname: `Nick ${label}`, createdAt: t0 + counter });
    }

    /** A direct-message request from `from` to `to` (conversation auto-created). */
    function dm(from: string, to: string, extra: Partial<AppendRequest> = {}): AppendRequest {
      const n = ++counter;
      return {
        sender: from,
        clientMsgId: `c_${n}_${rand()}`,
        conv: directConversationId(from, to),
        directMembers: [from, to],
        kind: 'text',
        body: { text: `message ${n}` },
        time: t0 + n,
        id: `m_${run}_${n}_${rand()}`,
        ...extra,
      };
    }

    async function sendOne(req: AppendRequest): Promise<Ok> {
      const out = await store.appendMessages([req]);
      assert.equal(out.length, 1);
      return expectOk(out[0]);
    }

    async function sendMany(reqs: AppendRequest[]): Promise<Ok[]> {
      const out = await store.appendMessages(reqs);
      assert.equal(out.length, reqs.length);
      return out.map(expectOk);
    }

    async function entry(userId: string, conv: string): Promise<ConvEntry> {
      const e = await store.getEntry(userId, conv);
      assert.ok(e, `no entry for ${userId} in ${conv}`);
      return e;
    }

    it('has a kind and migrate() is idempotent', async () => {
      assert.ok(store.kind === 'sqlite' || store.kind === 'postgres');
      await store.migrate();
      await store.migrate();
    });

    // ------------------------------------------------------------------ users
    describe('users', () => {
      it('creates a user and finds it by id and by username', async () => {
        const id = `user_${run}_${rand()}`;
        const nu = { id, username: `alice_${rand()}`, passwordHash: 'scrypt$abc', nickname: 'Alice ✨', createdAt: t0 + 5 };
        const created = await store.createUser(nu);
        const want = { ...nu, inboxSeq: 0, disabledAt: null, deletedAt: null };
        assert.deepEqual(created, want);
        assert.deepEqual(await store.getUser(id), want);
        assert.deepEqual(await store.getUserByUsername(nu.username), want);
      });

      it('usernames are unique and found by their NFKC + case-folded key (issue 13)', async () => {
        const suffix = rand();
        const a = await store.createUser({ id: `ci_${rand()}`, username: `Alice_${suffix}`, passwordHash: 'x', nickname: 'A', createdAt: t0 });
        assert.equal((await store.getUserByUsername(`alice_${suffix}`))?.id, a.id);
        assert.equal((await store.getUserByUsername(`ALICE_${suffix.toUpperCase()}`))?.id, a.id);
        // Fullwidth forms fold to ASCII under NFKC.
        const fullwidth = `ａｌｉｃｅ_${suffix}`;
        assert.equal((await store.getUserByUsername(fullwidth))?.id, a.id);
        await assert.rejects(
          store.createUser({ id: `ci2_${rand()}`, username: `aLiCe_${suffix}`, passwordHash: 'x', nickname: 'B', createdAt: t0 }),
          StoreConflictError,
        );
        assert.equal((await store.getUserByUsername(`Alice_${suffix}`))?.username, `Alice_${suffix}`, 'the spelling given at register is kept');
      });

      it('userExists: an account row, deleted ones included (as getUser finds them); several in one turn (issue 23)', async () => {
        const a = await newUser();
        const b = await newUser();
        await store.markUserDeleted(b.id, t0 + 9, 'Deleted account');
        const ghost = `ghost_${rand()}`;
        // Asked together, as the send path does for the sends of one turn (one batched read on SQLite).
        assert.deepEqual(await Promise.all([store.userExists(a.id), store.userExists(ghost), store.userExists(b.id)]), [true, false, true]);
        assert.equal(await store.userExists(ghost), (await store.getUser(ghost)) !== null);
        assert.equal(await store.userExists(b.id), (await store.getUser(b.id)) !== null);
      });

      it('setPasswordHash, setUserDisabled and markUserDeleted change the user row (issue 13)', async () => {
        const a = await newUser();
        assert.equal(await store.setPasswordHash(a.id, 'new-hash'), true);
        assert.equal((await store.getUser(a.id))?.passwordHash, 'new-hash');
        assert.equal(await store.setPasswordHash(`ghost_${rand()}`, 'h'), false);
        const disabled = await store.setUserDisabled(a.id, t0 + 7);
        assert.equal(disabled?.disabledAt, t0 + 7);
        assert.equal((await store.getUserByUsername(a.username))?.disabledAt, t0 + 7);
        assert.equal((await store.setUserDisabled(a.id, null))?.disabledAt, null);
        assert.equal(await store.setUserDisabled(`ghost_${rand()}`, 1), null);
        const gone = await store.markUserDeleted(a.id, t0 + 9, 'Deleted account');
        assert.equal(gone?.deletedAt, t0 + 9);
        assert.equal(gone?.passwordHash, '');
        assert.equal(gone?.nickname, 'Deleted account');
        assert.equal(await store.markUserDeleted(a.id, t0 + 10, 'x'), null, 'only once');
        assert.equal(await store.setPasswordHash(a.id, 'again'), false, 'a deleted account gets no password');
        const row = await store.getUserByUsername(a.username);
        assert.equal(row?.id, a.id, 'the username stays reserved');
        await assert.rejects(store.createUser({ id: `re_${rand()}`, username: a.username, passwordHash: 'x', nickname: 'X', createdAt: t0 }), StoreConflictError);
      });

      it('returns null for unknown users', async () => {
        assert.equal(await store.getUser(`nobody_${rand()}`), null);
        assert.equal(await store.getUserByUsername(`nobody_${rand()}`), null);
      });

      it('rejects a duplicate username with StoreConflictError and keeps the first user', async () => {
        const a = await newUser();
        await assert.rejects(
          store.createUser({ id: `other_${rand()}`, username: a.username, passwordHash: 'x', nickname: 'X', createdAt: t0 }),
          StoreConflictError,
        );
        assert.deepEqual(await store.getUserByUsername(a.username), a);
      });

      it('rejects a duplicate id and keeps the first user', async () => {
        const a = await newUser();
        await assert.rejects(store.createUser({ id: a.id, username: `fresh_${rand()}`, passwordHash: 'x', nickname: 'X', createdAt: t0 }));
        assert.deepEqual(await store.getUser(a.id), a);
      });

      it('existingUsers returns exactly the ids that exist', async () => {
        const a = await newUser();
        const b = await newUser();
        const missing = `ghost_${rand()}`;
        const found = await store.existingUsers([a.id, missing, b.id, a.id]);
        assert.ok(found instanceof Set);
        assert.deepEqual([...found].sort(), [a.id, b.id].sort());
        assert.equal((await store.existingUsers([])).size, 0);
        assert.equal((await store.existingUsers([missing])).size, 0);
      });
    });

    // --------------------------------------------------------------- sessions
    describe('sessions', () => {
      const now = t0 + 1_000_000;
      function session(userId: string, over: Partial<NewSession> = {}): NewSession {
        return {
          tokenHash: `th_${rand()}${rand()}`,
          userId,
          deviceId: `dev_${rand()}`,
          platform: 'ios',
          appVersion: '1.2.3',
          createdAt: now - 1000 + ++counter,
          expiresAt: now + 60_000,
          ...over,
        };
      }

      it('returns a live session with all its fields', async () => {
        const u = await newUser();
        const s = session(u.id, { platform: 'web', appVersion: '9.9.9' });
        await store.createSession(s);
        assert.deepEqual(await store.getSession(s.tokenHash, now), { ...s, revokedAt: null });
        assert.equal(await store.getSession(`th_unknown_${rand()}`, now), null);
      });

      it('getSessionAndUser: the live session with its user state in one read; null when not live (hello)', async () => {
        const u = await newUser();
        const s = session(u.id);
        await store.createSession(s);
        assert.deepEqual(await store.getSessionAndUser(s.tokenHash, now), { session: { ...s, revokedAt: null }, user: { deletedAt: null, disabledAt: null } });
        await store.setUserDisabled(u.id, now - 5);
        assert.deepEqual((await store.getSessionAndUser(s.tokenHash, now))?.user, { deletedAt: null, disabledAt: now - 5 });
        assert.equal(await store.getSessionAndUser(s.tokenHash, s.expiresAt), null, 'expired');
        assert.equal(await store.getSessionAndUser(`th_unknown_${rand()}`, now), null);
        await store.revokeSessions([s.tokenHash], now);
        assert.equal(await store.getSessionAndUser(s.tokenHash, now), null, 'revoked');
        const orphan = session(`ghost_${rand()}`);
        await store.createSession(orphan);
        assert.deepEqual(await store.getSessionAndUser(orphan.tokenHash, now), { session: { ...orphan, revokedAt: null }, user: null });
      });

      it('helloState: inbox state, purge mark, session expiry, super groups and instructions in one read', async () => {
        const u = await newUser();
        const s = session(u.id);
        await store.createSession(s);
        assert.deepEqual(await store.helloState(u.id, s.deviceId, s.tokenHash, now), {
          latest: 0,
          ringStart: 1,
          purgedInboxSeq: 0,
          sessionExpiresAt: s.expiresAt,
          inSuperGroups: false,
          pendingInstructions: false,
        });
        assert.equal((await store.helloState(u.id, s.deviceId, s.tokenHash, s.expiresAt)).sessionExpiresAt, null, 'expired');
        await store.revokeSessions([s.tokenHash], now);
        assert.equal((await store.helloState(u.id, s.deviceId, s.tokenHash, now)).sessionExpiresAt, null, 'revoked');
        const ghost = await store.helloState(`ghost_${rand()}`, 'd', `th_unknown_${rand()}`, now);
        assert.deepEqual([ghost.latest, ghost.ringStart, ghost.sessionExpiresAt, ghost.inSuperGroups], [0, 1, null, false]);
      });

      it('does not return an expired session', async () => {
        const u = await newUser();
        const s = session(u.id, { expiresAt: now - 1 });
        await store.createSession(s);
        assert.equal(await store.getSession(s.tokenHash, now), null);
        // the same session was live before it expired
        assert.equal((await store.getSession(s.tokenHash, now - 10))?.tokenHash, s.tokenHash);
      });

      it('listSessions returns only the live sessions of that user', async () => {
        const u = await newUser();
        const other = await newUser();
        const s1 = session(u.id, { platform: 'android' });
        const s2 = session(u.id, { platform: 'desktop' });
        const expired = session(u.id, { expiresAt: now - 5 });
        const revoked = session(u.id);
        const foreign = session(other.id);
        for (const s of [s1, s2, expired, revoked, foreign]) await store.createSession(s);
        await store.revokeSessions([revoked.tokenHash], now);
        const list = await store.listSessions(u.id, now);
        assert.deepEqual(
          list.map((s) => s.tokenHash).sort(),
          [s1.tokenHash, s2.tokenHash].sort(),
        );
        for (const s of list) assert.equal(s.revokedAt, null);
        const byHash = new Map(list.map((s) => [s.tokenHash, s]));
        assert.deepEqual(byHash.get(s1.tokenHash), { ...s1, revokedAt: null });
        assert.deepEqual(await store.listSessions(`nobody_${rand()}`, now), []);
      });

      it('knownDevice is true for a device that ever had a session of that user, revoked or not (issue 13)', async () => {
        const u = await newUser();
        const other = await newUser();
        const s = session(u.id, { deviceId: `known_${rand()}` });
        assert.equal(await store.knownDevice(u.id, s.deviceId), false);
        await store.createSession(s);
        assert.equal(await store.knownDevice(u.id, s.deviceId), true);
        await store.revokeSessions([s.tokenHash], now);
        assert.equal(await store.knownDevice(u.id, s.deviceId), true, 'still known after logout');
        assert.equal(await store.knownDevice(other.id, s.deviceId), false, 'per user');
      });

      it('revokeSessions returns the sessions that were live and revokes them', async () => {
        const u = await newUser();
        const live1 = session(u.id);
        const live2 = session(u.id);
        const keep = session(u.id);
        const expired = session(u.id, { expiresAt: now - 1 });
        for (const s of [live1, live2, keep, expired]) await store.createSession(s);
        const revoked = await store.revokeSessions([live1.tokenHash, expired.tokenHash, `th_unknown_${rand()}`, live2.tokenHash], now);
        assert.deepEqual(revoked.map((s) => s.tokenHash).sort(), [live1.tokenHash, live2.tokenHash].sort());
        for (const s of revoked) {
          assert.equal(s.userId, u.id);
          const orig = s.tokenHash === live1.tokenHash ? live1 : live2;
          assert.equal(s.deviceId, orig.deviceId);
          assert.equal(s.platform, orig.platform);
        }
        assert.equal(await store.getSession(live1.tokenHash, now), null);
        assert.equal(await store.getSession(live2.tokenHash, now), null);
        assert.equal((await store.getSession(keep.tokenHash, now))?.tokenHash, keep.tokenHash);
        assert.deepEqual((await store.listSessions(u.id, now)).map((s) => s.tokenHash), [keep.tokenHash]);
        // revoking again: nothing was live
        assert.deepEqual(await store.revokeSessions([live1.tokenHash, live2.tokenHash], now + 1), []);
        assert.deepEqual(await store.revokeSessions([], now), []);
      });

      it('setDeviceAck accepts increasing, repeated and lower values', async () => {
        const u = await newUser();
        const dev = `dev_${rand()}`;
        await store.setDeviceAck(u.id, dev, 5);
        await store.setDeviceAck(u.id, dev, 9);
        await store.setDeviceAck(u.id, dev, 3);
        await store.setDeviceAck(u.id, dev, 9);
        await store.setDeviceAck(u.id, `dev_${rand()}`, 1);
      });
    });

    // --------------------------------------------------------------- messages
    describe('appendMessages', () => {
      it('auto-creates a direct conversation from directMembers', async () => {
        const a = await newUser('a');
        const b = await newUser('b');
        const c = await newUser('c');
        const conv = directConversationId(a.id, b.id);
        assert.equal(await store.getConversation(conv), null);
        assert.deepEqual(await store.members(conv), []);
        const req = dm(a.id, b.id);
        const o = await sendOne(req);
        assert.equal(o.duplicate, false);
        assert.deepEqual(o.message, {
          id: req.id,
          conv,
          seq: 1,
          sender: a.id,
          kind: req.kind,
          body: req.body,
          time: req.time,
          clientMsgId: req.clientMsgId,
        });
        assert.deepEqual(sortPointers(o.pointers), sortPointers([{ userId: a.id, inboxSeq: 1 }, { userId: b.id, inboxSeq: 1 }]));
        const rec = await store.getConversation(conv);
        assert.ok(rec);
        assert.equal(rec.id, conv);
        assert.equal(rec.kind, 'direct');
        assert.equal(rec.lastSeq, 1);
        assert.equal(typeof rec.createdAt, 'number');
        assert.deepEqual((await store.members(conv)).sort(), [a.id, b.id].sort());
        assert.equal(await store.isMember(conv, a.id), true);
        assert.equal(await store.isMemberNow(conv, a.id), true);
        assert.equal(await store.isMember(conv, b.id), true);
        assert.equal(await store.isMember(conv, c.id), false);
        assert.equal(await store.isMemberNow(conv, c.id), false);
        assert.equal(await store.isMember(`nope_${rand()}`, a.id), false);
        // the other direction uses the same conversation
        const back = await sendOne(dm(b.id, a.id));
        assert.equal(back.message.conv, conv);
        assert.equal(back.message.seq, 2);
      });

      it('assigns seq 1,2,3 per conversation and a gap-free inboxSeq per member', async () => {
        const a = await newUser('a');
        const b = await newUser('b');
        const c = await newUser('c');
        const ab = directConversationId(a.id, b.id);
        const ac = directConversationId(a.id, c.id);
        // interleave two conversations that share user a, in several batches
        const r1 = await sendMany([dm(a.id, b.id), dm(a.id, c.id), dm(b.id, a.id)]);
        const r2 = await sendMany([dm(c.id, a.id)]);
        const r3 = await sendMany([dm(a.id, b.id), dm(a.id, c.id), dm(a.id, b.id)]);
        const all = [...r1, ...r2, ...r3];
        assert.deepEqual(all.filter((o) => o.message.conv === ab).map((o) => o.message.seq), [1, 2, 3, 4]);
        assert.deepEqual(all.filter((o) => o.message.conv === ac).map((o) => o.message.seq), [1, 2, 3]);
        for (const o of all) {
          assert.equal(o.duplicate, false);
          assert.equal(o.pointers.length, 2, 'one pointer per member, the sender included');
          assert.ok(o.pointers.some((p) => p.userId === o.message.sender), 'sender has a pointer');
        }
        assert.deepEqual(all.map((o) => pointerOf(o, a.id)), range(1, 7));
        assert.deepEqual(all.filter((o) => o.message.conv === ab).map((o) => pointerOf(o, b.id)), [1, 2, 3, 4]);
        assert.deepEqual(all.filter((o) => o.message.conv === ac).map((o) => pointerOf(o, c.id)), [1, 2, 3]);
        assert.equal((await store.getUser(a.id))?.inboxSeq, 7);
        assert.equal((await store.getUser(b.id))?.inboxSeq, 4);
        assert.equal((await store.getUser(c.id))?.inboxSeq, 3);
        assert.equal((await store.getConversation(ab))?.lastSeq, 4);
        assert.equal((await store.getConversation(ac))?.lastSeq, 3);
        // the inbox points at the right messages
        const inbox = await store.readInbox(a.id, 0, 100);
        assert.deepEqual(
          inbox.map((i) => i.inboxSeq),
          range(1, 7),
        );
        assert.deepEqual(
          inbox.map((i) => i.message),
          all.map((o) => o.message),
        );
      });

      it('is idempotent per (sender, clientMsgId) within one batch', async () => {
        const a = await newUser('a');
        const b = await newUser('b');
        const first = dm(a.id, b.id);
        const again = { ...dm(a.id, b.id), clientMsgId: first.clientMsgId, body: { text: 'different' } };
        const out = await sendMany([first, dm(a.id, b.id), again]);
        assert.equal(out[0]!.duplicate, false);
        assert.equal(out[2]!.duplicate, true);
        assert.deepEqual(out[2]!.message, out[0]!.message);
        assert.equal(out[2]!.message.id, first.id);
        assert.deepEqual(out[2]!.pointers, [{ userId: a.id, inboxSeq: pointerOf(out[0]!, a.id) }]);
        const conv = directConversationId(a.id, b.id);
        assert.equal((await store.getConversation(conv))?.lastSeq, 2);
        assert.equal((await store.getUser(a.id))?.inboxSeq, 2);
        assert.equal((await store.getUser(b.id))?.inboxSeq, 2);
        assert.deepEqual((await store.readHistory(conv, { after: 0, limit: 10 })).map((m) => m.id), [first.id, out[1]!.message.id]);
      });

      it('is idempotent per (sender, clientMsgId) across batches', async () => {
        const a = await newUser('a');
        const b = await newUser('b');
        const first = dm(a.id, b.id);
        const o1 = await sendOne(first);
        await sendOne(dm(b.id, a.id));
        await sendOne(dm(a.id, b.id));
        const retry = { ...first, id: `m_retry_${rand()}`, time: first.time + 999 };
        const o2 = await sendOne(retry);
        assert.equal(o2.duplicate, true);
        assert.deepEqual(o2.message, o1.message);
        assert.deepEqual(o2.pointers, [{ userId: a.id, inboxSeq: pointerOf(o1, a.id) }]);
        const conv = directConversationId(a.id, b.id);
        assert.equal((await store.getConversation(conv))?.lastSeq, 3);
        assert.equal((await store.getUser(a.id))?.inboxSeq, 3);
        // the same clientMsgId from another sender is a different message
        const o3 = await sendOne({ ...dm(b.id, a.id), clientMsgId: first.clientMsgId });
        assert.equal(o3.duplicate, false);
        assert.equal(o3.message.seq, 4);
      });

      it('finds every retry of a batch of more than 512 requests (the SQLite idempotency read is chunked)', async () => {
        const a = await newUser('a');
        const b = await newUser('b');
        const firsts = Array.from({ length: 600 }, (_, i) => (i % 2 === 0 ? dm(a.id, b.id) : dm(b.id, a.id)));
        const o1 = await sendMany(firsts);
        const fresh = dm(a.id, b.id);
        const retries = [...firsts.map((r) => ({ ...r, id: `m_retry_${rand()}` })).reverse(), fresh];
        const o2 = await sendMany(retries);
        for (let i = 0; i < 600; i++) {
          assert.equal(o2[i]!.duplicate, true, `retry ${i}`);
          assert.deepEqual(o2[i]!.message, o1[599 - i]!.message);
        }
        assert.equal(o2[600]!.duplicate, false);
        assert.equal(o2[600]!.message.seq, 601);
        assert.equal((await store.getConversation(directConversationId(a.id, b.id)))?.lastSeq, 601);
      });

      it('returns not_found for an unknown conversation without directMembers', async () => {
        const a = await newUser('a');
        const conv = `g:${run}:${rand()}`;
        const req: AppendRequest = { ...dm(a.id, `x_${rand()}`), conv };
        delete req.directMembers;
        const out = await store.appendMessages([req]);
        assert.deepEqual(out, [{ ok: false, error: 'not_found' }]);
        assert.equal(await store.getConversation(conv), null);
        assert.equal((await store.getUser(a.id))?.inboxSeq, 0);
      });

      it('returns forbidden for a sender who is not a member, and stores nothing', async () => {
        const a = await newUser('a');
        const b = await newUser('b');
        const c = await newUser('c');
        const conv = directConversationId(a.id, b.id);
        // not yet existing: a stranger cannot create someone else's direct conversation
        const stranger: AppendRequest = { ...dm(c.id, a.id), conv, directMembers: [a.id, b.id] };
        assert.deepEqual(await store.appendMessages([stranger]), [{ ok: false, error: 'forbidden' }]);
        assert.equal(await store.getConversation(conv), null);
        await sendOne(dm(a.id, b.id));
        // existing conversation
        const intruder: AppendRequest = { ...dm(c.id, a.id), conv };
        delete intruder.directMembers;
        assert.deepEqual(await store.appendMessages([intruder]), [{ ok: false, error: 'forbidden' }]);
        assert.equal((await store.getConversation(conv))?.lastSeq, 1);
        assert.equal((await store.getUser(c.id))?.inboxSeq, 0);
        assert.equal((await store.getUser(a.id))?.inboxSeq, 1);
        assert.equal(await store.getEntry(c.id, conv), null);
      });

      it('returns one outcome per request, in order, failures not affecting the others', async () => {
        const a = await newUser('a');
        const b = await newUser('b');
        const c = await newUser('c');
        const conv = directConversationId(a.id, b.id);
        const bad: AppendRequest = { ...dm(c.id, a.id), conv };
        delete bad.directMembers;
        const missing: AppendRequest = { ...dm(a.id, b.id), conv: `g:${rand()}` };
        delete missing.directMembers;
        const out = await store.appendMessages([dm(a.id, b.id), bad, missing, dm(b.id, a.id)]);
        assert.equal(out.length, 4);
        assert.equal(expectOk(out[0]).message.seq, 1);
        assert.deepEqual(out[1], { ok: false, error: 'forbidden' });
        assert.deepEqual(out[2], { ok: false, error: 'not_found' });
        assert.equal(expectOk(out[3]).message.seq, 2);
        assert.deepEqual(await store.appendMessages([]), []);
      });

      it('stores nothing of a batch that fails as a whole', async () => {
        const a = await newUser('a');
        const b = await newUser('b');
        const conv = directConversationId(a.id, b.id);
        const o1 = await sendOne(dm(a.id, b.id));
        // the second request reuses an existing message id: the batch must fail atomically
        const good = dm(a.id, b.id);
        const clash = { ...dm(b.id, a.id), id: o1.message.id };
        await assert.rejects(store.appendMessages([good, clash]));
        assert.equal((await store.getConversation(conv))?.lastSeq, 1);
        assert.equal((await store.getUser(a.id))?.inboxSeq, 1);
        assert.equal((await store.getUser(b.id))?.inboxSeq, 1);
        assert.equal((await store.readHistory(conv, { after: 0, limit: 10 })).length, 1);
        // and the message that was rolled back can be sent again as new
        const again = await sendOne(good);
        assert.equal(again.duplicate, false);
        assert.equal(again.message.seq, 2);
      });

      it('round-trips bodies through JSON (nested objects, arrays, unicode, primitives)', async () => {
        const a = await newUser('a');
        const b = await newUser('b');
        const bodies: unknown[] = [
          { text: 'héllo 👋 — "quotes" \\ back\nslash', nested: { arr: [1, 'two', { three: [3, null, true] }], empty: {}, list: [] } },
          { amount: 12345, max: Number.MAX_SAFE_INTEGER, neg: -7, frac: 0.25, f: false, n: null },
          'a plain string',
          [1, [2, [3, { deep: { deeper: { deepest: 'ok' } } }]]],
          42,
          null,
        ];
        const reqs = bodies.map((body, i) => dm(i % 2 ? b.id : a.id, i % 2 ? a.id : b.id, { body, kind: `k${i}` }));
        const out = await sendMany(reqs);
        const conv = directConversationId(a.id, b.id);
        const history = await store.readHistory(conv, { after: 0, limit: 100 });
        assert.deepEqual(history.map((m) => m.body), bodies);
        assert.deepEqual(history.map((m) => m.kind), bodies.map((_, i) => `k${i}`));
        assert.deepEqual(history, out.map((o) => o.message));
        const inbox = await store.readInbox(b.id, 0, 100);
        assert.deepEqual(inbox.map((i) => i.message.body), bodies);
      });
    });

    // ------------------------------------------------------------ inbox / ring
    describe('inbox', () => {
      it('inboxState of a user without messages (or unknown) is latest 0, ringStart 1', async () => {
        const a = await newUser();
        assert.deepEqual(await store.inboxState(a.id), { latest: 0, ringStart: 1 });
        assert.deepEqual(await store.inboxState(`ghost_${rand()}`), { latest: 0, ringStart: 1 });
        assert.deepEqual(await store.readInbox(a.id, 0, 10), []);
      });

      it('inboxState below ring capacity starts at 1', async () => {
        const a = await newUser('a');
        const b = await newUser('b');
        await sendMany([dm(a.id, b.id), dm(b.id, a.id), dm(a.id, b.id)]);
        assert.deepEqual(await store.inboxState(a.id), { latest: 3, ringStart: 1 });
        assert.deepEqual((await store.readInbox(a.id, 0, 10)).map((i) => i.inboxSeq), [1, 2, 3]);
      });

      it(`keeps the newest K=${K} pointers: ringStart = latest-K+1 and readInbox(ringStart-1) returns exactly them`, async () => {
        const a = await newUser('a');
        const b = await newUser('b');
        const c = await newUser('c');
        const total = 20 * K + 13;
        const sent: Ok[] = [];
        for (let i = 0; i < total; ) {
          const batch: AppendRequest[] = [];
          for (let j = 0; j < 7 && i < total; j++, i++) batch.push(i % 3 === 0 ? dm(c.id, a.id) : i % 2 ? dm(a.id, b.id) : dm(b.id, a.id));
          sent.push(...(await sendMany(batch)));
        }
        const st = await store.inboxState(a.id);
        assert.deepEqual(st, { latest: total, ringStart: total - K + 1 });
        const items = await store.readInbox(a.id, st.ringStart - 1, 1000);
        assert.deepEqual(items.map((i) => i.inboxSeq), range(st.ringStart, st.latest));
        assert.deepEqual(items.map((i) => i.message), sent.slice(-K).map((o) => o.message));
        for (const item of items) assert.equal(pointerOf(sent[item.inboxSeq - 1]!, a.id), item.inboxSeq);
        // newer than latest: nothing
        assert.deepEqual(await store.readInbox(a.id, st.latest, 10), []);
      });

      it('pages readInbox: after/limit, oldest first, no overlap and no gaps', async () => {
        const a = await newUser('a');
        const b = await newUser('b');
        const total = K + 5;
        const sent = await sendMany(range(1, total).map((i) => (i % 2 ? dm(b.id, a.id) : dm(a.id, b.id))));
        const st = await store.inboxState(a.id);
        assert.equal(st.latest, total);
        const pages: number[][] = [];
        let after = st.ringStart - 1;
        for (;;) {
          const page = await store.readInbox(a.id, after, 3);
          if (page.length === 0) break;
          assert.ok(page.length <= 3);
          pages.push(page.map((p) => p.inboxSeq));
          for (const item of page) assert.deepEqual(item.message, sent[item.inboxSeq - 1]!.message);
          after = page[page.length - 1]!.inboxSeq;
        }
        assert.deepEqual(pages.flat(), range(st.ringStart, total));
        assert.ok(pages.slice(0, -1).every((p) => p.length === 3), 'full pages until the last');
        const two = await store.readInbox(a.id, total - 2, 100);
        assert.deepEqual(two.map((i) => i.inboxSeq), [total - 1, total]);
      });
    });

    // --------------------------------------------------------------- history
    describe('readHistory', () => {
      it('reads newest first below `before` and oldest first above `after`, honouring limits', async () => {
        const a = await newUser('a');
        const b = await newUser('b');
        const conv = directConversationId(a.id, b.id);
        const sent = await sendMany(range(1, 10).map((i) => (i % 3 ? dm(a.id, b.id) : dm(b.id, a.id))));
        const seqs = (ms: Message[]) => ms.map((m) => m.seq);
        assert.deepEqual(seqs(await store.readHistory(conv, { limit: 3 })), [10, 9, 8]);
        assert.deepEqual(seqs(await store.readHistory(conv, { before: 5, limit: 10 })), [4, 3, 2, 1]);
        assert.deepEqual(seqs(await store.readHistory(conv, { before: 5, limit: 2 })), [4, 3]);
        assert.deepEqual(seqs(await store.readHistory(conv, { before: 1, limit: 10 })), []);
        assert.deepEqual(seqs(await store.readHistory(conv, { before: 1000, limit: 2 })), [10, 9]);
        assert.deepEqual(seqs(await store.readHistory(conv, { after: 0, limit: 3 })), [1, 2, 3]);
        assert.deepEqual(seqs(await store.readHistory(conv, { after: 8, limit: 10 })), [9, 10]);
        assert.deepEqual(seqs(await store.readHistory(conv, { after: 10, limit: 10 })), []);
        assert.deepEqual(await store.readHistory(conv, { after: 0, limit: 100 }), sent.map((o) => o.message));
        assert.deepEqual(await store.readHistory(`nope_${rand()}`, { limit: 10 }), []);
      });
    });

    // ------------------------------------------------------ conversation list
    describe('conversation list', () => {
      it('entries carry lastMessage, unread, readSeq and oldestUnreadSeq', async () => {
        const a = await newUser('a');
        const b = await newUser('b');
        const conv = directConversationId(a.id, b.id);
        const o1 = await sendOne(dm(a.id, b.id));
        const o2 = await sendOne(dm(a.id, b.id));
        const eb = await entry(b.id, conv);
        assert.deepEqual(
          { ...eb, version: 0 },
          {
            conv,
            kind: 'direct',
            peer: a.id,
            lastSeq: 2,
            lastMessage: o2.message,
            readSeq: 0,
            unread: 2,
            mentions: 0,
            oldestUnreadSeq: 1,
            deliveredSeq: 0,
            pinned: false,
            muted: false,
            draft: '',
            deleted: false,
            clearedSeq: 0,
            version: 0,
          },
        );
        assert.ok(eb.version > 0);
        const ea = await entry(a.id, conv);
        assert.equal(ea.peer, b.id);
        assert.equal(ea.unread, 0, 'own messages are not unread');
        assert.equal(ea.readSeq, 2, 'sending reads up to the own message');
        assert.equal(ea.oldestUnreadSeq, null);
        assert.deepEqual(ea.lastMessage, o2.message);
        assert.equal(o1.message.seq, 1);
        assert.equal(await store.getEntry(`ghost_${rand()}`, conv), null);
      });

      it('conversationChanges: strictly increasing versions, since-filter, limit', async () => {
        const a = await newUser('a');
        const b = await newUser('b');
        const c = await newUser('c');
        const d = await newUser('d');
        const ab = directConversationId(a.id, b.id);
        const ac = directConversationId(a.id, c.id);
        const ad = directConversationId(a.id, d.id);
        assert.deepEqual(await store.conversationChanges(a.id, 0, 100), { version: 0, entries: [] });
        assert.deepEqual(await store.conversationChanges(`ghost_${rand()}`, 0, 100), { version: 0, entries: [] });

        await sendOne(dm(b.id, a.id));
        const v1 = await store.conversationChanges(a.id, 0, 100);
        assert.equal(v1.entries.length, 1);
        assert.ok(v1.version > 0);
        assert.equal(v1.entries[0]!.version, v1.version);

        await sendOne(dm(c.id, a.id));
        const lastAd = await sendOne(dm(a.id, d.id));
        const v2 = await store.conversationChanges(a.id, 0, 100);
        assert.ok(v2.version > v1.version);
        assert.deepEqual(v2.entries.map((e) => e.conv), [ab, ac, ad]);
        const versions = v2.entries.map((e) => e.version);
        for (let i = 1; i < versions.length; i++) assert.ok(versions[i]! > versions[i - 1]!, `versions increase: ${versions.join(',')}`);
        assert.ok(versions.every((v) => v <= v2.version));
        assert.deepEqual(v2.entries[2]!.lastMessage, lastAd.message);

        // since-filter: only the entries changed after v1
        const since = await store.conversationChanges(a.id, v1.version, 100);
        assert.equal(since.version, v2.version);
        assert.deepEqual(since.entries.map((e) => e.conv), [ac, ad]);
        // limit: the oldest changes first
        const limited = await store.conversationChanges(a.id, 0, 2);
        assert.deepEqual(limited.entries.map((e) => e.conv), [ab, ac]);
        assert.equal(limited.version, v2.version);
        // nothing newer than the current version
        assert.deepEqual(await store.conversationChanges(a.id, v2.version, 100), { version: v2.version, entries: [] });

        // a new message moves its conversation to the end with a higher version
        const o = await sendOne(dm(b.id, a.id));
        const v3 = await store.conversationChanges(a.id, v2.version, 100);
        assert.ok(v3.version > v2.version);
        assert.equal(v3.entries.length, 1);
        const e = v3.entries[0]!;
        assert.equal(e.conv, ab);
        assert.ok(e.version > v2.version);
        assert.deepEqual(e.lastMessage, o.message);
        assert.equal(e.lastSeq, 2);
        assert.equal(e.unread, 2);
        assert.equal(e.oldestUnreadSeq, 1);
        // b's list is independent of a's
        const bl = await store.conversationChanges(b.id, 0, 100);
        assert.deepEqual(bl.entries.map((x) => x.conv), [ab]);
        assert.equal(bl.entries[0]!.unread, 0);
      });
    });

    describe('markRead', () => {
      it('clamps to lastSeq, never goes back, recomputes unread from others’ messages', async () => {
        const a = await newUser('a');
        const b = await newUser('b');
        const conv = directConversationId(a.id, b.id);
        await sendMany([dm(a.id, b.id), dm(a.id, b.id), dm(b.id, a.id), dm(a.id, b.id), dm(a.id, b.id), dm(a.id, b.id)]);
        let eb = await entry(b.id, conv);
        assert.equal(eb.readSeq, 3);
        assert.equal(eb.unread, 3);
        assert.equal(eb.oldestUnreadSeq, 4);
        let ea = await entry(a.id, conv);
        assert.equal(ea.readSeq, 6);
        assert.equal(ea.unread, 0);
        assert.equal(ea.oldestUnreadSeq, null);

        const before = eb.version;
        eb = await store.markRead(b.id, conv, 4);
        assert.equal(eb.readSeq, 4);
        assert.equal(eb.unread, 2);
        assert.equal(eb.oldestUnreadSeq, 5);
        assert.ok(eb.version > before, 'markRead bumps the entry version');
        assert.deepEqual(await entry(b.id, conv), eb);
        const changes = await store.conversationChanges(b.id, before, 10);
        assert.deepEqual(changes.entries, [eb]);

        // never moves back
        const same = await store.markRead(b.id, conv, 2);
        assert.equal(same.readSeq, 4);
        assert.equal(same.unread, 2);
        assert.equal(same.oldestUnreadSeq, 5);

        // clamps to the last seq
        eb = await store.markRead(b.id, conv, 1_000_000);
        assert.equal(eb.readSeq, 6);
        assert.equal(eb.unread, 0);
        assert.equal(eb.oldestUnreadSeq, null);
        assert.equal(eb.lastSeq, 6);

        // a's entry is untouched by b reading
        ea = await entry(a.id, conv);
        assert.equal(ea.readSeq, 6);
        // a new message from a after reading all
        await sendOne(dm(a.id, b.id));
        eb = await entry(b.id, conv);
        assert.equal(eb.unread, 1);
        assert.equal(eb.oldestUnreadSeq, 7);
      });

      it('own sends read up to them; unread counts only others’ messages above readSeq', async () => {
        const a = await newUser('a');
        const b = await newUser('b');
        const conv = directConversationId(a.id, b.id);
        // a: 1 2 ; b: 3 ; a: 4 ; b: 5 ; a: 6 7
        await sendMany([dm(a.id, b.id), dm(a.id, b.id), dm(b.id, a.id), dm(a.id, b.id), dm(b.id, a.id), dm(a.id, b.id), dm(a.id, b.id)]);
        let ea = await entry(a.id, conv);
        assert.equal(ea.unread, 0);
        const eb = await entry(b.id, conv);
        assert.equal(eb.readSeq, 5);
        assert.equal(eb.unread, 2);
        assert.equal(eb.oldestUnreadSeq, 6);
        // a gets a message from b then reads part of it
        await sendMany([dm(b.id, a.id), dm(b.id, a.id), dm(b.id, a.id)]);
        ea = await entry(a.id, conv);
        assert.equal(ea.unread, 3);
        assert.equal(ea.oldestUnreadSeq, 8);
        ea = await store.markRead(a.id, conv, 9);
        assert.equal(ea.unread, 1);
        assert.equal(ea.oldestUnreadSeq, 10);
      });

      it('rejects with StoreNotFoundError for a conversation the user has no entry for', async () => {
        const a = await newUser('a');
        await assert.rejects(store.markRead(a.id, `nope_${rand()}`, 1), StoreNotFoundError);
        await assert.rejects(store.updateEntry(a.id, `nope_${rand()}`, { pinned: true }), StoreNotFoundError);
      });
    });

    describe('updateEntry', () => {
      it('sets pinned, muted and draft; unpatched fields stay; each change bumps the version', async () => {
        const a = await newUser('a');
        const b = await newUser('b');
        const conv = directConversationId(a.id, b.id);
        await sendOne(dm(b.id, a.id));
        const e0 = await entry(a.id, conv);
        const e1 = await store.updateEntry(a.id, conv, { pinned: true });
        assert.equal(e1.pinned, true);
        assert.equal(e1.muted, false);
        assert.equal(e1.draft, '');
        assert.ok(e1.version > e0.version);
        const e2 = await store.updateEntry(a.id, conv, { muted: true, draft: 'half a thought… 草稿' });
        assert.equal(e2.pinned, true);
        assert.equal(e2.muted, true);
        assert.equal(e2.draft, 'half a thought… 草稿');
        assert.ok(e2.version > e1.version);
        const e3 = await store.updateEntry(a.id, conv, { pinned: false, draft: '' });
        assert.equal(e3.pinned, false);
        assert.equal(e3.muted, true);
        assert.equal(e3.draft, '');
        assert.deepEqual({ ...e3, pinned: false, muted: false, draft: '', version: 0 }, { ...e0, version: 0 });
        assert.deepEqual(await entry(a.id, conv), e3);
        const changes = await store.conversationChanges(a.id, e2.version, 10);
        assert.deepEqual(changes, { version: e3.version, entries: [e3] });
        // b's entry is not touched
        assert.equal((await entry(b.id, conv)).pinned, false);
      });

      it('deleted=true marks deleted, clearedSeq=lastSeq, unread 0; a later message un-deletes', async () => {
        const a = await newUser('a');
        const b = await newUser('b');
        const conv = directConversationId(a.id, b.id);
        await sendMany([dm(a.id, b.id), dm(a.id, b.id), dm(a.id, b.id)]);
        const before = await entry(b.id, conv);
        assert.equal(before.unread, 3);
        const del = await store.updateEntry(b.id, conv, { deleted: true });
        assert.equal(del.deleted, true);
        assert.equal(del.clearedSeq, 3);
        assert.equal(del.lastSeq, 3);
        assert.equal(del.unread, 0);
        assert.equal(del.oldestUnreadSeq, null);
        assert.equal(del.lastMessage, null, 'cleared history hides the last message');
        assert.ok(del.version > before.version);
        // the deletion is a change in the list
        const ch = await store.conversationChanges(b.id, before.version, 10);
        assert.deepEqual(ch.entries, [del]);
        // a's entry is not affected
        const ea = await entry(a.id, conv);
        assert.equal(ea.deleted, false);
        assert.equal(ea.clearedSeq, 0);
        // a new message brings it back
        const o = await sendOne(dm(a.id, b.id));
        const back = await entry(b.id, conv);
        assert.equal(back.deleted, false);
        assert.equal(back.clearedSeq, 3);
        assert.equal(back.lastSeq, 4);
        assert.equal(back.unread, 1);
        assert.equal(back.oldestUnreadSeq, 4);
        assert.deepEqual(back.lastMessage, o.message);
        assert.ok(back.version > del.version);
      });
    });

    // -------------------------------------------------------------- delivery
    describe('markDelivered', () => {
      it('the first ack moves the sender’s deliveredSeq; repeated or lower acks return []', async () => {
        const a = await newUser('a');
        const b = await newUser('b');
        const conv = directConversationId(a.id, b.id);
        const [m1, m2] = await sendMany([dm(a.id, b.id), dm(a.id, b.id)]);
        const p1 = pointerOf(m1!, b.id);
        const p2 = pointerOf(m2!, b.id);
        const ea0 = await entry(a.id, conv);
        assert.equal(ea0.deliveredSeq, 0);

        assert.deepEqual(await store.markDelivered(b.id, p1), [{ conv, seq: 1, sender: a.id }]);
        const ea1 = await entry(a.id, conv);
        assert.equal(ea1.deliveredSeq, 1);
        assert.ok(ea1.version > ea0.version, 'the sender’s entry changes');
        assert.equal((await entry(b.id, conv)).deliveredSeq, 0, 'the recipient’s own deliveredSeq is about its own messages');

        assert.deepEqual(await store.markDelivered(b.id, p1), []);
        assert.deepEqual(await store.markDelivered(b.id, p1 - 1), []);
        assert.deepEqual(await store.markDelivered(b.id, p2), [{ conv, seq: 2, sender: a.id }]);
        assert.equal((await entry(a.id, conv)).deliveredSeq, 2);
        assert.deepEqual(await store.markDelivered(b.id, p2), []);

        // the recipient's own messages are not "delivered" to itself
        const own = await sendOne(dm(b.id, a.id));
        assert.deepEqual(await store.markDelivered(b.id, pointerOf(own, b.id)), []);
        // a acknowledging b's message moves b's entry
        assert.deepEqual(await store.markDelivered(a.id, pointerOf(own, a.id)), [{ conv, seq: 3, sender: b.id }]);
        assert.equal((await entry(b.id, conv)).deliveredSeq, 3);
        assert.equal((await entry(a.id, conv)).deliveredSeq, 2);
        assert.deepEqual(await store.markDelivered(`ghost_${rand()}`, 5), []);
      });

      it('one cumulative ack reports the highest seq per conversation and sender', async () => {
        const a = await newUser('a');
        const b = await newUser('b');
        const c = await newUser('c');
        const ab = directConversationId(a.id, b.id);
        const bc = directConversationId(b.id, c.id);
        const out = await sendMany([dm(a.id, b.id), dm(c.id, b.id), dm(a.id, b.id), dm(b.id, a.id), dm(c.id, b.id), dm(c.id, b.id), dm(a.id, b.id)]);
        const last = pointerOf(out[out.length - 1]!, b.id);
        const res = await store.markDelivered(b.id, last);
        const key = (u: { conv: string; sender: string }) => `${u.conv}|${u.sender}`;
        assert.deepEqual(
          [...res].sort((x, y) => (key(x) < key(y) ? -1 : 1)),
          [
            { conv: ab, seq: 4, sender: a.id },
            { conv: bc, seq: 3, sender: c.id },
          ].sort((x, y) => (key(x) < key(y) ? -1 : 1)),
        );
        assert.equal((await entry(a.id, ab)).deliveredSeq, 4);
        assert.equal((await entry(c.id, bc)).deliveredSeq, 3);
      });

      it('an ack beyond the latest inboxSeq does not swallow later messages', async () => {
        const a = await newUser('a');
        const b = await newUser('b');
        const conv = directConversationId(a.id, b.id);
        await sendOne(dm(a.id, b.id));
        assert.deepEqual(await store.markDelivered(b.id, 1_000_000), [{ conv, seq: 1, sender: a.id }]);
        const o = await sendOne(dm(a.id, b.id));
        assert.deepEqual(await store.markDelivered(b.id, pointerOf(o, b.id)), [{ conv, seq: 2, sender: a.id }]);
        assert.equal((await entry(a.id, conv)).deliveredSeq, 2);
      });
    });

    describe('recordAcks', () => {
      it('records device acks and returns the delivered updates with the acknowledging user as `by`', async () => {
        const a = await newUser('a');
        const b = await newUser('b');
        const c = await newUser('c');
        const ab = directConversationId(a.id, b.id);
        const bc = directConversationId(b.id, c.id);
        const out = await sendMany([dm(a.id, b.id), dm(a.id, b.id), dm(b.id, c.id), dm(c.id, a.id)]);
        assert.deepEqual(await store.recordAcks([]), { delivered: [], counts: [] });
        const { delivered: res, counts } = await store.recordAcks([
          { userId: b.id, deviceId: 'phone', inboxSeq: pointerOf(out[1]!, b.id) },
          { userId: c.id, deviceId: 'laptop', inboxSeq: pointerOf(out[2]!, c.id) },
          { userId: b.id, deviceId: 'tablet', inboxSeq: pointerOf(out[0]!, b.id) },
        ]);
        const key = (u: { conv: string; sender: string; by: string }) => `${u.by}|${u.conv}|${u.sender}`;
        const sortU = <T extends { conv: string; sender: string; by: string }>(xs: T[]) => [...xs].sort((x, y) => (key(x) < key(y) ? -1 : 1));
        assert.deepEqual(
          sortU(res),
          sortU([
            { conv: ab, seq: 2, sender: a.id, by: b.id },
            { conv: bc, seq: 1, sender: b.id, by: c.id },
          ]),
        );
        assert.deepEqual(counts, [], 'direct messages have no delivered count');
        assert.equal((await entry(a.id, ab)).deliveredSeq, 2);
        assert.equal((await entry(b.id, bc)).deliveredSeq, 1);
        // the same acks again: nothing new
        assert.deepEqual(await store.recordAcks([{ userId: b.id, deviceId: 'phone', inboxSeq: pointerOf(out[1]!, b.id) }]), { delivered: [], counts: [] });
        // a's ack of c's message
        assert.deepEqual(await store.recordAcks([{ userId: a.id, deviceId: 'web', inboxSeq: 1_000 }]), {
          delivered: [{ conv: directConversationId(a.id, c.id), seq: 1, sender: c.id, by: a.id }],
          counts: [],
        });
      });

      it('ack segments: only the items a device obtained are raised; skipped ones never become delivered', async () => {
        const a = await newUser('a');
        const b = await newUser('b');
        const ab = directConversationId(a.id, b.id);
        const out = await sendMany([dm(a.id, b.id), dm(a.id, b.id), dm(a.id, b.id)]);
        const p = (i: number) => pointerOf(out[i]!, b.id);
        // The device acks everything but was given only the first message.
        const r1 = await store.recordAcks([{ userId: b.id, deviceId: 'phone', inboxSeq: p(2), segments: [{ from: 0, to: p(0) }] }]);
        assert.deepEqual(r1.delivered, [{ conv: ab, seq: 1, sender: a.id, by: b.id }]);
        assert.equal((await entry(a.id, ab)).deliveredSeq, 1);
        // A full sync skipped everything up to the third: the mark moves, nothing is raised.
        const r2 = await store.recordAcks([{ userId: b.id, deviceId: 'tablet', inboxSeq: p(2), segments: [{ from: p(2), to: p(2) }] }]);
        assert.deepEqual(r2, { delivered: [], counts: [] });
        assert.equal((await entry(a.id, ab)).deliveredSeq, 1, 'skipped messages are not delivered');
        // Later messages the device was given are delivered as usual.
        const [m4] = await sendMany([dm(a.id, b.id)]);
        const r3 = await store.recordAcks([{ userId: b.id, deviceId: 'tablet', inboxSeq: pointerOf(m4!, b.id), segments: [{ from: p(2), to: pointerOf(m4!, b.id) }] }]);
        assert.deepEqual(r3.delivered, [{ conv: ab, seq: 4, sender: a.id, by: b.id }]);
      });

      it('concurrent ack flushes and sends do not deadlock or lose delivered marks', async () => {
        const us = await Promise.all(range(1, 4).map(() => newUser('q')));
        const ids = us.map((u) => u.id);
        const ops: Promise<unknown>[] = [];
        for (let round = 0; round < 8; round++) {
          const batch: AppendRequest[] = [];
          for (let i = 0; i < ids.length; i++) batch.push(dm(ids[i]!, ids[(i + 1 + (round % (ids.length - 1))) % ids.length]!));
          ops.push(store.appendMessages(batch));
          ops.push(store.recordAcks(ids.map((id, i) => ({ userId: id, deviceId: `d${(i + round) % 2}`, inboxSeq: round * 2 + 1 }))));
          ops.push(store.recordAcks([...ids].reverse().map((id) => ({ userId: id, deviceId: 'z', inboxSeq: round + 1 }))));
        }
        await Promise.all(ops);
        // a final ack of everything: every received message ends up delivered
        await store.recordAcks(ids.map((id) => ({ userId: id, deviceId: 'final', inboxSeq: 1_000_000 })));
        for (const id of ids) {
          const { entries } = await store.conversationChanges(id, 0, 100);
          for (const e of entries) {
            const mine = (await store.readHistory(e.conv, { after: 0, limit: 1000 })).filter((m) => m.sender === id);
            assert.equal(e.deliveredSeq, mine.length ? mine[mine.length - 1]!.seq : 0, `deliveredSeq of ${id} in ${e.conv}`);
          }
        }
      });
    });

    // ---------------------------------------------------------------- groups
    describe('groups', () => {
      const newConv = () => `g:${run}:${rand()}`;
      function spec(over: Partial<NewGroup> = {}): NewGroup {
        return { name: `Group ${rand()}`, avatar: 'https://img.example/a.png', joinPolicy: 'open', inviteNeedsApproval: false, historyVisibility: 'since_join', maxMembers: 50, superThreshold: 500, ...over };
      }
      function greq(sender: string, conv: string, extra: Partial<AppendRequest> = {}): AppendRequest {
        const n = ++counter;
        return {
          sender,
          clientMsgId: `g_${n}_${rand()}`,
          conv,
          kind: 'text',
          body: { text: `group message ${n}` },
          time: t0 + n,
          id: `m_${run}_${n}_${rand()}`,
          ...extra,
        };
      }
      function notice(sender: string, conv: string, effect: GroupEffect, extra: Partial<AppendRequest> = {}): AppendRequest {
        return greq(sender, conv, { kind: 'system', body: { notice: effect.op }, effect, ...extra });
      }
      const add = (users: string[], over: { maxMembers?: number; superThreshold?: number } = {}): GroupEffect => ({
        op: 'add',
        users,
        maxMembers: over.maxMembers ?? 1000,
        superThreshold: over.superThreshold ?? 500,
      });
      async function one(req: AppendRequest): Promise<AppendOutcome> {
        const out = await store.appendMessages([req]);
        assert.equal(out.length, 1);
        return out[0]!;
      }
      function expectRefused(o: AppendOutcome | undefined, error: string): void {
        assert.ok(o);
        assert.equal(o.ok, false, `expected refusal ${error}, got ${JSON.stringify(o)}`);
        assert.equal((o as Refused).error, error, JSON.stringify(o));
        assert.equal(typeof (o as Refused).reason, 'string');
      }
      async function makeGroup(owner: string, members: string[], over: Partial<NewGroup> = {}): Promise<{ conv: string; created: Ok }> {
        const conv = newConv();
        const created = await sendOne(notice(owner, conv, { op: 'create', group: spec(over), members }));
        return { conv, created };
      }
      async function users(n: number, label = 'g'): Promise<string[]> {
        const out: string[] = [];
        for (let i = 0; i < n; i += 100) out.push(...(await Promise.all(range(i, Math.min(n, i + 100) - 1).map(() => newUser(label)))).map((u) => u.id));
        return out;
      }
      async function history(conv: string): Promise<Message[]> {
        return store.readHistory(conv, { after: 0, limit: 100_000 });
      }

      describe('delivered counts', () => {
        const byMsg = (cs: { conv: string; seq: number; sender: string; count: number }[]) => {
          const m = new Map<string, number>();
          for (const c of cs) m.set(`${c.conv}|${c.seq}|${c.sender}`, Math.max(m.get(`${c.conv}|${c.seq}|${c.sender}`) ?? 0, c.count));
          return Object.fromEntries([...m].sort());
        };
        const k = (conv: string, seq: number, sender: string) => `${conv}|${seq}|${sender}`;

        it('each recipient’s first ACK raises a group message’s count once (two devices count once; the sender never counts)', async () => {
          const [a, b, c] = await users(3);
          const { conv } = await makeGroup(a!, [b!, c!]);
          const [m1, m2, m3] = await sendMany([greq(a!, conv), greq(a!, conv), greq(b!, conv)]);
          // b stores a's first two messages
          const r1 = await store.recordAcks([{ userId: b!, deviceId: 'phone', inboxSeq: pointerOf(m2!, b!) }]);
          assert.deepEqual(byMsg(r1.counts), { [k(conv, 2, a!)]: 1, [k(conv, 3, a!)]: 1 });
          assert.deepEqual(r1.delivered, [{ conv, seq: 3, sender: a!, by: b! }], 'the first recipient still moves the sender’s deliveredSeq');
          // the same ACK again, and b's other device at the same position: nothing
          assert.deepEqual(await store.recordAcks([{ userId: b!, deviceId: 'phone', inboxSeq: pointerOf(m2!, b!) }]), { delivered: [], counts: [] });
          assert.deepEqual((await store.recordAcks([{ userId: b!, deviceId: 'laptop', inboxSeq: pointerOf(m2!, b!) }])).counts, []);
          // c's two devices in one flush: c is counted once; b's message (m3) counts c too
          const r2 = await store.recordAcks([
            { userId: c!, deviceId: 'phone', inboxSeq: pointerOf(m3!, c!) },
            { userId: c!, deviceId: 'laptop', inboxSeq: pointerOf(m1!, c!) },
          ]);
          assert.deepEqual(byMsg(r2.counts), { [k(conv, 2, a!)]: 2, [k(conv, 3, a!)]: 2, [k(conv, 4, b!)]: 1 });
          assert.deepEqual((await store.recordAcks([{ userId: c!, deviceId: 'tablet', inboxSeq: 1_000_000 }])).counts, []);
          // a (the sender of m1, m2) acknowledges everything: only b's message gains
          const r3 = await store.recordAcks([{ userId: a!, deviceId: 'web', inboxSeq: 1_000_000 }]);
          assert.deepEqual(byMsg(r3.counts), { [k(conv, 4, b!)]: 2 });
          // b finally stores its own message's position: nothing (own messages never count)
          assert.deepEqual((await store.recordAcks([{ userId: b!, deviceId: 'phone', inboxSeq: 1_000_000 }])).counts, []);

          // Reads: the reader's own (non-system) group messages carry deliveredCount.
          const inboxA = await store.readInbox(a!, 0, 100);
          assert.deepEqual(
            inboxA.map((i) => [i.message.seq, i.message.deliveredCount]),
            [
              [1, undefined],
              [2, 2],
              [3, 2],
              [4, undefined],
            ],
          );
          assert.equal((await store.readInbox(b!, 0, 100)).find((i) => i.message.seq === 4)?.message.deliveredCount, 2);
          const histA = await store.readHistory(conv, { after: 0, limit: 10, viewer: a! });
          assert.deepEqual(histA.map((m) => m.deliveredCount), [undefined, 2, 2, undefined]);
          const histB = await store.readHistory(conv, { before: 100, limit: 10, viewer: b! });
          assert.deepEqual(histB.map((m) => m.deliveredCount), [2, undefined, undefined, undefined]);
          assert.ok((await history(conv)).every((m) => !('deliveredCount' in m)), 'no viewer, no counts');
          // m2's stored message (from the append) is unchanged apart from the count
          assert.deepEqual({ ...histA[2]!, deliveredCount: undefined }, { ...m2!.message, deliveredCount: undefined });
        });

        it('direct messages carry no count; counts start at 0 for a new group message', async () => {
          const [a, b] = await users(2);
          const d = await sendOne(dm(a!, b!));
          assert.equal((await store.readInbox(a!, 0, 10)).at(-1)?.message.deliveredCount, undefined);
          assert.equal((await store.readHistory(d.message.conv, { after: 0, limit: 10, viewer: a! }))[0]?.deliveredCount, undefined);
          assert.deepEqual((await store.recordAcks([{ userId: b!, deviceId: 'x', inboxSeq: pointerOf(d, b!) }])).counts, []);
          const { conv } = await makeGroup(a!, [b!]);
          await sendOne(greq(a!, conv));
          assert.deepEqual((await store.readHistory(conv, { before: 100, limit: 1, viewer: a! }))[0]?.deliveredCount, 0);
        });

        it('a member who left still counts for what they received; a later member does not count for older messages', async () => {
          const [a, b, c] = await users(3);
          const { conv } = await makeGroup(a!, [b!]);
          const m1 = await sendOne(greq(a!, conv));
          await sendOne(notice(b!, conv, { op: 'leave' }));
          await sendOne(notice(a!, conv, add([c!])));
          const m2 = await sendOne(greq(a!, conv));
          assert.deepEqual(byMsg((await store.recordAcks([{ userId: c!, deviceId: 'x', inboxSeq: pointerOf(m2, c!) }])).counts), { [k(conv, m2.message.seq, a!)]: 1 });
          assert.deepEqual(byMsg((await store.recordAcks([{ userId: b!, deviceId: 'x', inboxSeq: 1_000_000 }])).counts), { [k(conv, m1.message.seq, a!)]: 1 });
          const hist = await store.readHistory(conv, { after: 0, limit: 10, viewer: a! });
          assert.deepEqual(
            hist.filter((m) => m.kind !== 'system').map((m) => [m.seq, m.deliveredCount]),
            [
              [m1.message.seq, 1],
              [m2.message.seq, 1],
            ],
          );
        });

        it('super-group messages carry the member epoch: the seq of the last join, leave or switch', async () => {
          const [a, b, c, d] = await users(4);
          const { conv } = await makeGroup(a!, [b!], { superThreshold: 2 });
          const normal = await sendOne(greq(a!, conv));
          assert.equal(normal.epoch, undefined, 'normal groups have none');
          const switched = await sendOne(notice(a!, conv, add([c!], { superThreshold: 2 })));
          assert.equal(switched.effect?.becameSuper, true);
          const first = await sendOne(greq(b!, conv));
          assert.equal(first.epoch, switched.message.seq);
          const removed = await sendOne(notice(a!, conv, { op: 'remove', users: [c!] }));
          assert.equal(removed.epoch, removed.message.seq);
          const [after, joined, last] = (await store.appendMessages([greq(a!, conv), notice(a!, conv, add([d!], { superThreshold: 2 })), greq(b!, conv)])) as Ok[];
          assert.equal(after!.epoch, removed.message.seq);
          assert.equal(joined!.epoch, joined!.message.seq);
          assert.equal(last!.epoch, joined!.message.seq, 'in one batch too');
          assert.equal((await store.getConversation(conv))?.memberEpoch, joined!.message.seq);
        });

        it('super groups keep no count (no inbox pointers, nothing acknowledged per member)', async () => {
          const [a, b, c] = await users(3);
          const { conv, created } = await makeGroup(a!, [b!, c!], { superThreshold: 2 });
          assert.equal(created.effect?.kind, 'super');
          await sendOne(greq(a!, conv));
          const acked = await store.recordAcks([
            { userId: b!, deviceId: 'x', inboxSeq: 1_000_000 },
            { userId: c!, deviceId: 'x', inboxSeq: 1_000_000 },
          ]);
          assert.deepEqual(acked.counts, []);
          assert.deepEqual((await store.readHistory(conv, { before: 100, limit: 1, viewer: a! }))[0]?.deliveredCount, 0);
        });

        it('concurrent ACK flushes of many members lose no count', async () => {
          const [a, ...rest] = await users(7);
          const { conv } = await makeGroup(a!, rest);
          const sent = await sendMany(range(1, 5).map(() => greq(a!, conv)));
          const ops: Promise<unknown>[] = [];
          for (const u of rest) {
            // each member in two flushes racing each other and the others
            ops.push(store.recordAcks([{ userId: u, deviceId: 'p', inboxSeq: pointerOf(sent[2]!, u) }]));
            ops.push(store.recordAcks([{ userId: u, deviceId: 'q', inboxSeq: pointerOf(sent[4]!, u) }]));
          }
          ops.push(store.appendMessages([greq(rest[0]!, conv)]));
          await Promise.all(ops);
          const hist = await store.readHistory(conv, { after: 0, limit: 100, viewer: a! });
          for (const o of sent) assert.equal(hist.find((m) => m.seq === o.message.seq)?.deliveredCount, rest.length, `count of seq ${o.message.seq}`);
        });

        it('flushes in several parts, out of order, across commits: counts, delivered updates and `by` as a walk over every acknowledged item (issue 23)', async () => {
          // Six members (sorted by id, so the sender with the smallest id comes first in a flush),
          // three groups' worth of traffic in one group and a direct conversation beside it.
          const us = (await users(6, 'w')).sort();
          const [u0, u1, u2, u3, u4, u5] = us as [string, string, string, string, string, string];
          const { conv } = await makeGroup(u0, us.slice(1));
          const sent: Ok[] = [];
          sent.push(...(await sendMany([greq(u0, conv), greq(u3, conv), dm(u1, u0), greq(u0, conv)])));
          sent.push(await sendOne(notice(u0, conv, { op: 'update', patch: { announcement: 'hello' } })));
          sent.push(...(await sendMany([greq(u5, conv), greq(u0, conv), dm(u0, u1), greq(u1, conv)])));
          sent.push(...(await sendMany([greq(u4, conv), greq(u0, conv)])));

          // The reference: every user's inbox, walked item by item as the Store contract says.
          const inbox = new Map<string, { inboxSeq: number; conv: string; seq: number; sender: string; kind: string }[]>();
          for (const u of us) inbox.set(u, (await store.readInbox(u, 0, 1000)).map((i) => ({ inboxSeq: i.inboxSeq, conv: i.message.conv, seq: i.message.seq, sender: i.message.sender, kind: i.message.kind })));
          const mark = new Map(us.map((u) => [u, 0]));
          const entrySeq = new Map<string, number>();
          const counts = new Map<string, number>();
          const expected = (acks: DeviceAck[]) => {
            const delivered: { conv: string; seq: number; sender: string; by: string }[] = [];
            const raised = new Map<string, number>();
            const sorted = [...acks].sort((x, y) => (x.userId < y.userId ? -1 : x.userId > y.userId ? 1 : x.deviceId < y.deviceId ? -1 : x.deviceId > y.deviceId ? 1 : 0));
            for (const a of sorted) {
              const items = inbox.get(a.userId)!;
              const top = items.at(-1)?.inboxSeq ?? 0;
              for (const g of a.segments ?? [{ from: 0, to: a.inboxSeq }]) {
                let m = mark.get(a.userId)!;
                if (g.from > 0 && m < g.from && m < top) m = Math.min(g.from, top);
                const upTo = Math.min(g.to, top);
                if (upTo <= m) {
                  mark.set(a.userId, m);
                  continue;
                }
                const covered = items.filter((i) => i.inboxSeq > m && i.inboxSeq <= upTo && i.sender !== a.userId);
                mark.set(a.userId, upTo);
                const newest = new Map<string, { conv: string; sender: string; seq: number }>();
                for (const i of covered) {
                  if (i.conv.startsWith('g:') && i.kind !== 'system') {
                    const key = k(i.conv, i.seq, i.sender);
                    counts.set(key, (counts.get(key) ?? 0) + 1);
                    raised.set(key, counts.get(key)!);
                  }
                  const key = `${i.conv}|${i.sender}`;
                  if ((newest.get(key)?.seq ?? -1) < i.seq) newest.set(key, { conv: i.conv, sender: i.sender, seq: i.seq });
                }
                const rows = [...newest.values()].sort((x, y) => (x.conv < y.conv ? -1 : x.conv > y.conv ? 1 : x.sender < y.sender ? -1 : x.sender > y.sender ? 1 : 0));
                for (const r of rows) {
                  const key = `${r.sender}|${r.conv}`;
                  if ((entrySeq.get(key) ?? 0) >= r.seq) continue;
                  entrySeq.set(key, r.seq);
                  delivered.push({ ...r, by: a.userId });
                }
              }
            }
            return { delivered, counts: Object.fromEntries([...raised].sort()) };
          };
          const p = (i: number, u: string) => pointerOf(sent[i]!, u);
          const flushes: DeviceAck[][] = [
            // u0 (smallest id) acknowledges its own messages with the others: it is the first range over them.
            [
              { userId: u3, deviceId: 'b', inboxSeq: p(3, u3) },
              { userId: u0, deviceId: 'a', inboxSeq: p(5, u0) },
              { userId: u3, deviceId: 'a', inboxSeq: p(1, u3) },
              { userId: u2, deviceId: 'a', inboxSeq: p(0, u2) },
            ],
            // Out of order and across commits; u1 with a gap it never obtained (a full sync).
            [
              { userId: u4, deviceId: 'z', inboxSeq: p(9, u4) },
              { userId: u1, deviceId: 'a', inboxSeq: p(8, u1), segments: [{ from: 0, to: p(0, u1) }, { from: p(5, u1), to: p(8, u1) }] },
              { userId: u2, deviceId: 'b', inboxSeq: p(6, u2) },
              { userId: u0, deviceId: 'b', inboxSeq: p(2, u0) },
            ],
            [
              { userId: u5, deviceId: 'a', inboxSeq: p(4, u5) },
              { userId: u0, deviceId: 'a', inboxSeq: 1_000_000 },
              { userId: u3, deviceId: 'a', inboxSeq: p(6, u3) },
            ],
            us.map((u) => ({ userId: u, deviceId: 'final', inboxSeq: 1_000_000 })),
          ];
          for (const [i, acks] of flushes.entries()) {
            const want = expected(acks);
            const got = await store.recordAcks(acks);
            assert.deepEqual(got.delivered, want.delivered, `delivered updates of flush ${i + 1}`);
            assert.deepEqual(byMsg(got.counts), want.counts, `counts of flush ${i + 1}`);
          }
          const hist = await store.readHistory(conv, { after: 0, limit: 100 });
          for (const m of hist) {
            if (m.kind === 'system') continue;
            const mine = (await store.readHistory(conv, { after: m.seq - 1, limit: 1, viewer: m.sender }))[0]!;
            // Every other member in the end, but u1 never obtained what its full sync skipped.
            const skipped = inbox.get(u1)!.some((i) => i.conv === conv && i.seq === m.seq && i.inboxSeq > p(0, u1) && i.inboxSeq <= p(5, u1));
            assert.equal(mine.deliveredCount, skipped && m.sender !== u1 ? 4 : 5, `count of seq ${m.seq}`);
            assert.equal(counts.get(k(conv, m.seq, m.sender)), mine.deliveredCount);
          }
          for (const u of us) assert.equal((await entry(u, conv)).deliveredSeq, entrySeq.get(`${u}|${conv}`) ?? 0, `deliveredSeq of ${u}`);
        });
      });

      it('create: conversation, group record, roles, member count; the notice (seq 1) reaches every member', async () => {
        const [a, b, c, outsider] = await users(4);
        const conv = newConv();
        const s = spec({ name: 'Design Crew', joinPolicy: 'approval', inviteNeedsApproval: true, maxMembers: 20 });
        const o = await sendOne(notice(a!, conv, { op: 'create', group: s, members: [b!, c!, b!, a!] }));
        assert.equal(o.message.seq, 1);
        assert.equal(o.message.kind, 'system');
        assert.deepEqual(o.effect, { joined: [a, b, c], left: [], kind: 'group', becameSuper: false });
        assert.deepEqual(sortPointers(o.pointers), sortPointers([a!, b!, c!].map((userId) => ({ userId, inboxSeq: 1 }))));
        for (const u of [a!, b!, c!]) {
          const inbox = await store.readInbox(u, 0, 10);
          assert.deepEqual(inbox, [{ inboxSeq: 1, message: o.message }]);
        }
        const rec = await store.getConversation(conv);
        assert.equal(rec?.kind, 'group');
        assert.equal(rec?.lastSeq, 1);
        const g = await store.getGroup(conv);
        assert.deepEqual(g, {
          conv,
          kind: 'group',
          name: 'Design Crew',
          avatar: s.avatar,
          announcement: '',
          owner: a,
          joinPolicy: 'approval',
          inviteNeedsApproval: true,
          muteAll: false,
          historyVisibility: 'since_join',
          dismissed: false,
          memberCount: 3,
          maxMembers: 20,
          lastSeq: 1,
          createdAt: o.message.time,
        });
        assert.equal((await store.getMember(conv, a!))?.role, 'owner');
        const mb = await store.getMember(conv, b!);
        assert.deepEqual(mb, { conv, userId: b, role: 'member', mutedUntil: 0, joinedAt: o.message.time, joinedSeq: 1 });
        assert.equal(await store.getMember(conv, outsider!), null);
        assert.equal(await store.isMember(conv, c!), true);
        assert.equal(await store.isMember(conv, outsider!), false);
        assert.equal(await store.isMemberNow(conv, outsider!), false);
        assert.deepEqual((await store.members(conv)).sort(), [a!, b!, c!].sort());
        // paging by user id
        const sorted = [a!, b!, c!].sort();
        const p1 = await store.listMembers(conv, '', 2);
        assert.deepEqual(p1.map((m) => m.userId), sorted.slice(0, 2));
        const p2 = await store.listMembers(conv, p1[1]!.userId, 2);
        assert.deepEqual(p2.map((m) => m.userId), sorted.slice(2));
        // entries: the owner read its own notice, the others have it unread
        const eb = await entry(b!, conv);
        assert.equal(eb.kind, 'group');
        assert.equal(eb.peer, null);
        assert.equal(eb.lastSeq, 1);
        assert.equal(eb.unread, 1);
        assert.equal(eb.oldestUnreadSeq, 1);
        assert.deepEqual(eb.lastMessage, o.message);
        assert.equal((await entry(a!, conv)).unread, 0);
        assert.equal(await store.getGroup(`g:nope:${rand()}`), null);
        // creating it again is refused; so is an empty name, which leaves no conversation behind
        expectRefused(await one(notice(b!, conv, { op: 'create', group: spec(), members: [] })), 'invalid');
        const empty = newConv();
        expectRefused(await one(notice(a!, empty, { op: 'create', group: spec({ name: '  ' }), members: [b!] })), 'invalid');
        assert.equal(await store.getConversation(empty), null);
        assert.equal(await store.getGroup(empty), null);
        assert.equal((await store.getConversation(conv))?.lastSeq, 1);
      });

      it('posting: members get pointers and unread; non-members, unknown groups and effects on direct chats are refused', async () => {
        const [a, b, c, x] = await users(4);
        const { conv } = await makeGroup(a!, [b!, c!]);
        const out = await sendMany([greq(b!, conv), greq(c!, conv), greq(b!, conv)]);
        assert.deepEqual(out.map((o) => o.message.seq), [2, 3, 4]);
        for (const o of out) assert.equal(o.pointers.length, 3);
        assert.deepEqual(out.map((o) => pointerOf(o, a!)), [2, 3, 4]);
        assert.equal((await entry(a!, conv)).unread, 3);
        assert.equal((await entry(b!, conv)).unread, 0);
        assert.equal((await entry(b!, conv)).readSeq, 4);
        assert.equal((await entry(c!, conv)).unread, 1);
        expectRefused(await one(greq(x!, conv)), 'forbidden');
        const missing = await one(greq(a!, `g:none:${rand()}`));
        assert.equal(missing.ok, false);
        assert.equal((missing as Refused).error, 'not_found');
        // a group effect on a direct conversation
        await sendOne(dm(a!, b!));
        expectRefused(await one(notice(a!, directConversationId(a!, b!), { op: 'dismiss' })), 'not_found');
        assert.equal((await store.getConversation(conv))?.lastSeq, 4);
        assert.equal((await store.getUser(x!))?.inboxSeq, 0);
      });

      it('add / remove / leave: the new member gets the add notice; the removed one gets the removal, then nothing', async () => {
        const [a, b, c, d, e] = await users(5);
        const { conv } = await makeGroup(a!, [b!, c!]);
        const added = await sendOne(notice(a!, conv, add([d!, e!])));
        assert.equal(added.message.seq, 2);
        assert.deepEqual(added.effect, { joined: [d, e], left: [], kind: 'group', becameSuper: false });
        assert.deepEqual(added.pointers.map((p) => p.userId).sort(), [a!, b!, c!, d!, e!].sort());
        assert.deepEqual((await store.readInbox(d!, 0, 10)).map((i) => i.message.seq), [2], 'the new member gets the add notice, not older history');
        assert.equal((await store.getMember(conv, d!))?.joinedSeq, 2);
        assert.equal((await entry(d!, conv)).unread, 1);
        assert.equal((await entry(d!, conv)).oldestUnreadSeq, 2);
        assert.equal((await store.getGroup(conv))?.memberCount, 5);

        const removed = await sendOne(notice(a!, conv, { op: 'remove', users: [c!] }));
        assert.equal(removed.message.seq, 3);
        assert.deepEqual(removed.effect, { joined: [], left: [c], kind: 'group', becameSuper: false });
        assert.ok(removed.pointers.some((p) => p.userId === c), 'the removed member gets the removal notice');
        assert.equal(await store.isMember(conv, c!), false);
        assert.equal(await store.isMemberNow(conv, c!), false);
        assert.equal(await store.getMember(conv, c!), null);
        assert.equal(await store.formerMemberLimit(conv, c!), 3);
        assert.equal(await store.formerMemberLimit(conv, `nobody_${rand()}`), null);
        assert.equal(await store.formerMemberLimit(conv, a!), null, 'an active member is not a former member');
        assert.equal((await store.getGroup(conv))?.memberCount, 4);
        const cInbox = (await store.getUser(c!))!.inboxSeq;

        const left = await sendOne(notice(e!, conv, { op: 'leave' }));
        assert.equal(left.message.seq, 4);
        assert.deepEqual(left.effect, { joined: [], left: [e], kind: 'group', becameSuper: false });
        assert.ok(left.pointers.some((p) => p.userId === e));
        assert.equal(await store.formerMemberLimit(conv, e!), 4);
        assert.equal((await store.getGroup(conv))?.memberCount, 3);

        const later = await sendOne(greq(b!, conv));
        assert.deepEqual(later.pointers.map((p) => p.userId).sort(), [a!, b!, d!].sort());
        assert.equal((await store.getUser(c!))!.inboxSeq, cInbox, 'nothing reaches the removed member');
        expectRefused(await one(greq(c!, conv)), 'forbidden');
        // the former member's entry stops at the notice
        const ec = await entry(c!, conv);
        assert.equal(ec.lastSeq, 3);
        assert.equal(ec.unread, 3);
        await store.markRead(c!, conv, 1000);
        assert.equal((await entry(c!, conv)).readSeq, 3);
        assert.deepEqual((await store.members(conv)).sort(), [a!, b!, d!].sort());

        assert.deepEqual(await store.membership(conv, c!), { joinedSeq: 1, leftSeq: 3 });
        assert.deepEqual(await store.membership(conv, d!), { joinedSeq: 2, leftSeq: null });
        assert.equal(await store.membership(conv, `nobody_${rand()}`), null);

        // rejoin: active again, history for them restarts at the new notice
        const back = await sendOne(notice(a!, conv, add([c!])));
        assert.deepEqual(await store.membership(conv, c!), { joinedSeq: back.message.seq, leftSeq: null });
        assert.deepEqual(back.effect?.joined, [c]);
        assert.equal(await store.isMember(conv, c!), true);
        assert.equal(await store.formerMemberLimit(conv, c!), null);
        assert.equal((await store.getMember(conv, c!))?.joinedSeq, back.message.seq);
        const ec2 = await entry(c!, conv);
        assert.equal(ec2.lastSeq, back.message.seq);
        assert.equal(ec2.unread, 1);
        assert.equal(ec2.oldestUnreadSeq, back.message.seq);
        assert.equal((await store.getGroup(conv))?.memberCount, 4);
        // adding only existing members is refused
        expectRefused(await one(notice(a!, conv, add([b!]))), 'invalid');
      });

      it('refusals by the group rules write nothing', async () => {
        const [owner, admin, m1, m2, outsider, x] = await users(6);
        const { conv } = await makeGroup(owner!, [admin!, m1!, m2!], { inviteNeedsApproval: true, joinPolicy: 'approval', maxMembers: 5 });
        await sendOne(notice(owner!, conv, { op: 'role', user: admin!, role: 'admin' }));
        assert.equal((await store.getMember(conv, admin!))?.role, 'admin');
        const before = await store.getConversation(conv);
        const cases: [AppendRequest, string][] = [
          [notice(m1!, conv, { op: 'remove', users: [m2!] }), 'forbidden'], // non-admin kick
          [notice(admin!, conv, { op: 'remove', users: [owner!] }), 'forbidden'], // admin kicking the owner
          [notice(owner!, conv, { op: 'leave' }), 'forbidden'], // the owner leaving
          [notice(m1!, conv, add([x!])), 'forbidden'], // plain member inviting under inviteNeedsApproval
          [notice(outsider!, conv, add([outsider!])), 'forbidden'], // self-join under the approval policy
          [notice(owner!, conv, add([x!, outsider!])), 'full'], // 4 + 2 > 5
          [notice(owner!, conv, add([x!], { maxMembers: 4 })), 'full'], // the configured limit is lower
          [notice(admin!, conv, { op: 'dismiss' }), 'forbidden'],
          [notice(admin!, conv, { op: 'role', user: m1!, role: 'admin' }), 'forbidden'],
          [notice(m1!, conv, { op: 'update', patch: { name: 'hijacked' } }), 'forbidden'],
          [notice(m1!, conv, { op: 'mute', user: m2!, until: t0 + 1e9 }), 'forbidden'],
          [notice(owner!, conv, { op: 'remove', users: [outsider!] }), 'not_found'],
          [notice(owner!, conv, { op: 'transfer', to: outsider! }), 'invalid'],
          [notice(outsider!, conv, { op: 'leave' }), 'forbidden'],
        ];
        const out = await store.appendMessages(cases.map(([r]) => r));
        out.forEach((o, i) => expectRefused(o, cases[i]![1]));
        assert.deepEqual(await store.getConversation(conv), before);
        const g = await store.getGroup(conv);
        assert.equal(g?.memberCount, 4);
        assert.equal(g?.name.startsWith('Group '), true);
        assert.equal(await store.isMember(conv, m2!), true);
        assert.equal(await store.isMember(conv, x!), false);
        assert.equal(await store.isMemberNow(conv, x!), false);
        assert.equal((await store.getMember(conv, m1!))?.role, 'member');
        // an admin may invite under inviteNeedsApproval and kick a plain member
        const inv = await sendOne(notice(admin!, conv, add([x!])));
        assert.deepEqual(inv.effect?.joined, [x]);
        const kick = await sendOne(notice(admin!, conv, { op: 'remove', users: [m2!] }));
        assert.deepEqual(kick.effect?.left, [m2]);
        // an open group takes self-joins
        const { conv: open } = await makeGroup(owner!, []);
        const joined = await sendOne(notice(outsider!, open, add([outsider!])));
        assert.deepEqual(joined.effect?.joined, [outsider]);
        assert.equal((await entry(outsider!, open)).unread, 0, 'the own join notice is read');
      });

      it('role, transfer, mute and update change the group and members', async () => {
        const [a, b, c] = await users(3);
        const { conv } = await makeGroup(a!, [b!, c!]);
        const t = await sendOne(notice(a!, conv, { op: 'transfer', to: b! }));
        assert.deepEqual(t.effect, { joined: [], left: [], kind: 'group', becameSuper: false });
        assert.equal((await store.getGroup(conv))?.owner, b);
        assert.equal((await store.getMember(conv, a!))?.role, 'admin');
        assert.equal((await store.getMember(conv, b!))?.role, 'owner');
        expectRefused(await one(notice(a!, conv, { op: 'dismiss' })), 'forbidden');
        // the new owner demotes the old one
        await sendOne(notice(b!, conv, { op: 'role', user: a!, role: 'member' }));
        assert.equal((await store.getMember(conv, a!))?.role, 'member');
        await sendOne(
          notice(b!, conv, { op: 'update', patch: { name: 'Renamed', avatar: 'x.png', announcement: 'Read the rules', joinPolicy: 'approval', inviteNeedsApproval: true, historyVisibility: 'all' } }),
        );
        const g = await store.getGroup(conv);
        assert.equal(g?.historyVisibility, 'all');
        assert.equal(g?.name, 'Renamed');
        assert.equal(g?.avatar, 'x.png');
        assert.equal(g?.announcement, 'Read the rules');
        assert.equal(g?.joinPolicy, 'approval');
        assert.equal(g?.inviteNeedsApproval, true);
        assert.equal(g?.muteAll, false);
        await sendOne(notice(b!, conv, { op: 'mute', user: c!, until: t0 + 5_000_000 }));
        assert.equal((await store.getMember(conv, c!))?.mutedUntil, t0 + 5_000_000);
        assert.equal((await store.getGroup(conv))?.lastSeq, 5);
      });

      it('muted members and mute-all: posts refused; owner/admins exempt from mute-all; unmute restores', async () => {
        const [a, b, c, d] = await users(4);
        const { conv } = await makeGroup(a!, [b!, c!, d!]);
        await sendOne(notice(a!, conv, { op: 'role', user: b!, role: 'admin' }));
        const until = t0 + 50_000_000;
        await sendOne(notice(b!, conv, { op: 'mute', user: c!, until }));
        const seq = (await store.getConversation(conv))!.lastSeq;
        expectRefused(await one(greq(c!, conv)), 'muted');
        // after the mute ends the member may post again (the store judges by the request time)
        await sendOne(greq(c!, conv, { time: until + 1 }));
        expectRefused(await one(greq(c!, conv)), 'muted');
        await sendOne(notice(b!, conv, { op: 'mute', user: c!, until: 0 }));
        await sendOne(greq(c!, conv));
        await sendOne(notice(a!, conv, { op: 'update', patch: { muteAll: true } }));
        assert.equal((await store.getGroup(conv))?.muteAll, true);
        expectRefused(await one(greq(d!, conv)), 'muted');
        expectRefused(await one(greq(c!, conv)), 'muted');
        await sendOne(greq(a!, conv));
        await sendOne(greq(b!, conv));
        await sendOne(notice(b!, conv, { op: 'update', patch: { muteAll: false } }));
        await sendOne(greq(d!, conv));
        assert.deepEqual((await history(conv)).slice(seq).map((m) => m.seq), range(seq + 1, seq + 8));
      });

      it('dismiss: the notice reaches everyone, then the group is read-only and nobody is a member', async () => {
        const [a, b, c] = await users(3);
        const { conv } = await makeGroup(a!, [b!, c!]);
        const name = (await store.getGroup(conv))!.name;
        const o = await sendOne(notice(a!, conv, { op: 'dismiss' }));
        assert.equal(o.pointers.length, 3);
        assert.deepEqual(o.effect, { joined: [], left: [a!, b!, c!].sort(), kind: 'group', becameSuper: false });
        const g = await store.getGroup(conv);
        assert.equal(g?.dismissed, true);
        assert.equal(g?.memberCount, 0);
        for (const u of [a!, b!, c!]) {
          assert.equal(await store.isMember(conv, u), false);
          assert.equal(await store.formerMemberLimit(conv, u), o.message.seq);
        }
        expectRefused(await one(greq(a!, conv)), 'dismissed');
        expectRefused(await one(notice(a!, conv, add([b!]))), 'dismissed');
        expectRefused(await one(notice(a!, conv, { op: 'update', patch: { name: 'x' } })), 'dismissed');
        assert.equal((await store.getConversation(conv))?.lastSeq, 2);
        assert.deepEqual(await store.searchGroups(name, 10), []);
      });

      it('effect notices are idempotent: a retry returns the first result and changes nothing', async () => {
        const [a, b, c] = await users(3);
        const conv = newConv();
        const create = notice(a!, conv, { op: 'create', group: spec(), members: [b!] });
        const first = await sendOne(create);
        const again = await sendOne({ ...create, id: `m_${rand()}` });
        assert.equal(again.duplicate, true);
        assert.deepEqual(again.message, first.message);
        assert.deepEqual(again.pointers, [{ userId: a!, inboxSeq: pointerOf(first, a!) }]);
        const addReq = notice(a!, conv, add([c!]));
        await sendOne(addReq);
        const dup = await sendOne({ ...addReq, id: `m_${rand()}` });
        assert.equal(dup.duplicate, true);
        assert.equal((await store.getGroup(conv))?.memberCount, 3);
        assert.equal((await store.getConversation(conv))?.lastSeq, 2);
      });

      it('one batch: create, posts, a refusal, an add and the new member’s post, in order', async () => {
        const [a, b, c, x] = await users(4);
        const conv = newConv();
        const out = await store.appendMessages([
          notice(a!, conv, { op: 'create', group: spec(), members: [b!] }),
          greq(b!, conv),
          greq(c!, conv),
          notice(a!, conv, add([c!])),
          greq(c!, conv),
          notice(x!, `g:${run}:${rand()}`, { op: 'create', group: spec({ name: '' }), members: [] }),
          greq(a!, conv),
        ]);
        assert.deepEqual(
          out.map((o) => (o.ok ? o.message.seq : o.error)),
          [1, 2, 'forbidden', 3, 4, 'invalid', 5],
        );
        assert.deepEqual((await history(conv)).map((m) => m.seq), [1, 2, 3, 4, 5]);
        assert.deepEqual((await store.readInbox(c!, 0, 10)).map((i) => i.message.seq), [3, 4, 5]);
        assert.deepEqual((await store.readInbox(b!, 0, 10)).map((i) => i.message.seq), [1, 2, 3, 4, 5]);
        assert.equal((await entry(c!, conv)).unread, 1);
        assert.equal((await entry(b!, conv)).unread, 3);
      });

      it('a normal group passing the threshold becomes a super group: pointers before, none after, no seq lost or repeated', async () => {
        const [a, b, c, d, n1, n2] = await users(6);
        const { conv, created } = await makeGroup(a!, [b!, c!, d!], { superThreshold: 4 });
        assert.equal(created.effect?.kind, 'group');
        const before = await sendMany([greq(b!, conv), greq(c!, conv), greq(a!, conv)]);
        for (const o of before) assert.equal(o.pointers.length, 4);
        const sw = await sendOne(notice(a!, conv, add([n1!], { superThreshold: 4 })));
        assert.deepEqual(sw.effect, { joined: [n1], left: [], kind: 'super', becameSuper: true });
        assert.equal(sw.pointers.length, 5, 'the switching notice still reaches every member, the new one included');
        assert.equal((await store.getConversation(conv))?.kind, 'super');
        assert.equal((await store.getGroup(conv))?.kind, 'super');
        const bInbox = (await store.getUser(b!))!.inboxSeq;
        const after = await sendMany([greq(b!, conv), greq(n1!, conv), greq(d!, conv)]);
        for (const o of after) assert.deepEqual(o.pointers, []);
        const more = await sendOne(notice(a!, conv, add([n2!], { superThreshold: 4 })));
        assert.deepEqual(more.effect, { joined: [n2], left: [], kind: 'super', becameSuper: false });
        assert.deepEqual(more.pointers, []);
        assert.equal((await store.getUser(b!))!.inboxSeq, bInbox, 'no pointers after the switch');
        const h = await history(conv);
        assert.deepEqual(h.map((m) => m.seq), range(1, 9));
        assert.equal(new Set(h.map((m) => m.id)).size, 9);
        assert.deepEqual(h.slice(1), [...before, sw, ...after, more].map((o) => o.message));
        // existing members' entries follow the conversation from now on
        const eb = await entry(b!, conv);
        assert.equal(eb.kind, 'super');
        assert.equal(eb.lastSeq, 9);
        assert.deepEqual(eb.lastMessage, more.message);
        assert.equal(eb.readSeq, 6, 'b read up to its own message');
        assert.equal(eb.unread, 3);
        assert.equal(eb.oldestUnreadSeq, 7);
        const en2 = await entry(n2!, conv);
        assert.equal(en2.readSeq, 8);
        assert.equal(en2.unread, 1);
        assert.deepEqual(await store.superGroupsOf(n2!), [{ conv, lastSeq: 9 }]);
        assert.deepEqual(await store.superGroupsOf(b!), [{ conv, lastSeq: 9 }]);
        assert.equal((await store.helloState(n2!, 'd', 'th_none', t0)).inSuperGroups, true);
        const hb = await store.helloState(b!, 'd', 'th_none', t0);
        assert.deepEqual([hb.inSuperGroups, hb.latest], [true, (await store.inboxState(b!)).latest]);
        assert.equal((await store.helloState((await users(1))[0]!, 'd', 'th_none', t0)).inSuperGroups, false);
      });

      it('concurrent posts while a group switches to super: gap-free seqs, pointers exactly up to the switch', async () => {
        const members = await users(6);
        const [owner, ...rest] = members;
        const joiner = (await users(1))[0]!;
        const { conv } = await makeGroup(owner!, rest, { superThreshold: 6 });
        const ops: Promise<AppendOutcome[]>[] = [];
        for (let i = 0; i < 12; i++) {
          if (i === 6) ops.push(store.appendMessages([notice(owner!, conv, add([joiner], { superThreshold: 6 }))]));
          ops.push(store.appendMessages(range(0, 4).map((j) => greq(members[(i + j) % members.length]!, conv))));
        }
        const oks = (await Promise.all(ops)).flat().map(expectOk);
        assert.equal(oks.length, 12 * 5 + 1);
        const sw = oks.find((o) => o.effect)!;
        assert.equal(sw.effect?.becameSuper, true);
        assert.deepEqual(oks.map((o) => o.message.seq).sort((x, y) => x - y), range(2, 62));
        for (const o of oks) {
          if (o.message.seq < sw.message.seq) assert.equal(o.pointers.length, 6, `seq ${o.message.seq} before the switch`);
          else if (o.message.seq > sw.message.seq) assert.deepEqual(o.pointers, [], `seq ${o.message.seq} after the switch`);
        }
        const h = await history(conv);
        assert.deepEqual(h.map((m) => m.seq), range(1, 62));
        assert.equal(new Set(h.map((m) => m.id)).size, 62);
        const inbox = await store.readInbox(rest[0]!, 0, 1000);
        assert.deepEqual(inbox.map((i) => i.message.seq), range(1, sw.message.seq));
      });

      it('super group: created above the threshold, no pointers, entries computed from the conversation', async () => {
        const [a, b, c, d] = await users(4);
        const { conv, created } = await makeGroup(a!, [b!, c!, d!], { superThreshold: 2 });
        assert.deepEqual(created.effect, { joined: [a, b, c, d], left: [], kind: 'super', becameSuper: false });
        assert.deepEqual(created.pointers, []);
        assert.equal((await store.getConversation(conv))?.kind, 'super');
        assert.equal((await store.getUser(b!))?.inboxSeq, 0);
        const e0 = await entry(b!, conv);
        assert.equal(e0.kind, 'super');
        assert.equal(e0.lastSeq, 1);
        assert.equal(e0.unread, 1);
        const v0 = e0.version;
        const out = await sendMany([greq(a!, conv), greq(c!, conv), greq(b!, conv), greq(d!, conv), greq(c!, conv)]);
        for (const o of out) assert.deepEqual(o.pointers, []);
        const eb = await entry(b!, conv);
        assert.equal(eb.lastSeq, 6);
        assert.deepEqual(eb.lastMessage, out[4]!.message);
        assert.equal(eb.readSeq, 4, 'own message read');
        assert.equal(eb.unread, 2);
        assert.equal(eb.oldestUnreadSeq, 5);
        const ea = await entry(a!, conv);
        assert.equal(ea.readSeq, 2);
        assert.equal(ea.unread, 4);
        // no new version per message for members who did not send
        const ed = await store.getEntry(d!, conv);
        const vd = ed!.version;
        await sendOne(greq(a!, conv));
        assert.equal((await store.getEntry(d!, conv))!.version, vd);
        assert.equal((await entry(d!, conv)).lastSeq, 7);
        assert.ok(eb.version > v0, 'the own send moved b’s entry');
        // markRead and updateEntry work on the computed values
        const r = await store.markRead(c!, conv, 6);
        assert.equal(r.readSeq, 6);
        assert.equal(r.unread, 1);
        assert.equal(r.oldestUnreadSeq, 7);
        const r2 = await store.markRead(c!, conv, 1000);
        assert.equal(r2.readSeq, 7);
        assert.equal(r2.unread, 0);
        const del = await store.updateEntry(d!, conv, { deleted: true });
        assert.equal(del.deleted, true);
        assert.equal(del.clearedSeq, 7);
        assert.equal(del.unread, 0);
        assert.equal(del.lastMessage, null);
        await sendOne(greq(a!, conv));
        const back = await entry(d!, conv);
        assert.equal(back.deleted, false, 'a newer message shows the deleted super group again');
        assert.equal(back.unread, 1);
        // a removed member's entry stops at the removal notice; superGroupsOf drops it
        const rm = await sendOne(notice(a!, conv, { op: 'remove', users: [c!] }));
        assert.deepEqual(rm.pointers, []);
        assert.deepEqual(rm.effect?.left, [c]);
        await sendOne(greq(a!, conv));
        const ec = await entry(c!, conv);
        assert.equal(ec.lastSeq, rm.message.seq);
        assert.equal(ec.unread, 2, 'a’s message and the removal notice, nothing after');
        assert.equal(await store.formerMemberLimit(conv, c!), rm.message.seq);
        assert.deepEqual(await store.superGroupsOf(c!), []);
        assert.deepEqual(await store.superGroupsOf(d!), [{ conv, lastSeq: rm.message.seq + 1 }]);
        expectRefused(await one(greq(c!, conv)), 'forbidden');
        assert.equal((await store.getGroup(conv))?.memberCount, 3);
      });

      it('mentions (@user, @all) are counted apart from unread, in normal and super groups, and cleared by markRead', async () => {
        for (const superThreshold of [500, 2]) {
          const [a, b, c, d, x] = await users(5, 'men');
          const { conv } = await makeGroup(a!, [b!, c!, d!], { superThreshold });
          const kind = superThreshold === 2 ? 'super' : 'group';
          assert.equal((await store.getConversation(conv))?.kind, kind);
          const m1 = await sendOne(greq(a!, conv, { mentions: [b!, a!, x!, b!] }));
          await sendOne(greq(a!, conv, { mentions: 'all' }));
          await sendOne(greq(c!, conv));
          await sendOne(greq(b!, conv, { mentions: [c!] }));
          const eb = await entry(b!, conv);
          assert.equal(eb.mentions, 0, `${kind}: own send reads everything before`);
          const ec = await entry(c!, conv);
          assert.equal(ec.mentions, 1, `${kind}: c mentioned by @all; its own message reset the count, then @c`);
          const ed = await entry(d!, conv);
          assert.equal(ed.unread, 5, `${kind}: notice + 4 messages`);
          assert.equal(ed.mentions, 1, `${kind}: d only by @all`);
          const ea = await entry(a!, conv);
          assert.equal(ea.mentions, 0, `${kind}: the sender is not mentioned by its own @all`);
          // reading up to the first mention leaves the @all
          const d1 = await store.markRead(d!, conv, m1.message.seq);
          assert.equal(d1.mentions, 1);
          assert.equal(d1.unread, 3);
          const d2 = await store.markRead(d!, conv, 1000);
          assert.equal(d2.mentions, 0);
          assert.equal(d2.unread, 0);
          await sendOne(greq(a!, conv, { mentions: [d!] }));
          await sendOne(greq(c!, conv, { mentions: 'all' }));
          const ed2 = await entry(d!, conv);
          assert.equal(ed2.mentions, 2, `${kind}: @d and @all`);
          assert.equal(ed2.unread, 2);
          assert.equal((await store.markRead(d!, conv, 1000)).mentions, 0);
          const cleared = await store.updateEntry(c!, conv, { deleted: true });
          assert.equal(cleared.mentions, 0);
        }
      });

      it('searchGroups: case-insensitive name prefix or exact id, not dismissed, limited', async () => {
        const [a] = await users(1);
        const tag = `Zq${rand()}`;
        const { conv: g1 } = await makeGroup(a!, [], { name: `${tag} Alpha` });
        const { conv: g2 } = await makeGroup(a!, [], { name: `${tag.toLowerCase()} beta` });
        const { conv: g3 } = await makeGroup(a!, [], { name: `${tag.toUpperCase()} Gamma` });
        const { conv: other } = await makeGroup(a!, [], { name: `Other ${tag}` });
        const found = await store.searchGroups(tag.toLowerCase(), 10);
        assert.deepEqual(found.map((g) => g.conv).sort(), [g1, g2, g3].sort());
        assert.deepEqual((await store.searchGroups(`${tag.toUpperCase()} a`, 10)).map((g) => g.conv), [g1]);
        assert.equal((await store.searchGroups(tag, 2)).length, 2);
        assert.deepEqual((await store.searchGroups(other, 10)).map((g) => g.conv), [other]);
        assert.equal((await store.searchGroups(other, 10))[0]?.name, `Other ${tag}`);
        await sendOne(notice(a!, g2, { op: 'dismiss' }));
        assert.deepEqual((await store.searchGroups(tag, 10)).map((g) => g.conv).sort(), [g1, g3].sort());
        assert.deepEqual(await store.searchGroups(`nomatch_${rand()}`, 10), []);
        // a renamed group is found by its new name
        await sendOne(notice(a!, g3, { op: 'update', patch: { name: `${tag}-renamed` } }));
        assert.deepEqual((await store.searchGroups(`${tag}-REN`, 10)).map((g) => g.conv), [g3]);
      });

      it('join requests: put (upsert), list by time, take', async () => {
        const [a, b, c, d] = await users(4);
        const { conv } = await makeGroup(a!, [], { joinPolicy: 'approval' });
        assert.deepEqual(await store.listJoinRequests(conv), []);
        const rb: JoinRequestRecord = { conv, userId: b!, inviter: null, message: 'let me in', createdAt: t0 + 20 };
        const rc: JoinRequestRecord = { conv, userId: c!, inviter: a!, message: '', createdAt: t0 + 10 };
        await store.putJoinRequest(rb);
        await store.putJoinRequest(rc);
        assert.deepEqual(await store.listJoinRequests(conv), [rc, rb]);
        const rb2 = { ...rb, message: 'please', createdAt: t0 + 5 };
        await store.putJoinRequest(rb2);
        assert.deepEqual(await store.listJoinRequests(conv), [rb2, rc]);
        assert.deepEqual(await store.takeJoinRequest(conv, b!), rb2);
        assert.equal(await store.takeJoinRequest(conv, b!), null);
        assert.equal(await store.takeJoinRequest(conv, d!), null);
        assert.deepEqual(await store.listJoinRequests(conv), [rc]);
        assert.deepEqual(await store.listJoinRequests(`g:none:${rand()}`), []);
      });

      it('superGroupsOf lists the active super-group memberships with their last seq', async () => {
        const [a, b] = await users(2);
        assert.deepEqual(await store.superGroupsOf(b!), []);
        const { conv: s1 } = await makeGroup(a!, [b!], { superThreshold: 1 });
        const { conv: s2 } = await makeGroup(a!, [b!], { superThreshold: 1 });
        await makeGroup(a!, [b!]);
        await sendMany([greq(a!, s1), greq(a!, s1)]);
        const expected = [
          { conv: s1, lastSeq: 3 },
          { conv: s2, lastSeq: 1 },
        ].sort((x, y) => (x.conv < y.conv ? -1 : 1));
        assert.deepEqual(await store.superGroupsOf(b!), expected);
        await sendOne(notice(b!, s2, { op: 'leave' }));
        assert.deepEqual(await store.superGroupsOf(b!), [{ conv: s1, lastSeq: 3 }]);
      });

      it('a 2 000-member super group stores a constant number of rows per message', async () => {
        const n = 2000;
        const all = await users(n, 'big');
        const [owner, ...rest] = all;
        const { conv, created } = await makeGroup(owner!, rest, { superThreshold: 500, maxMembers: 5000 });
        assert.equal(created.effect?.kind, 'super');
        assert.equal(created.effect?.joined.length, n);
        assert.deepEqual(created.pointers, []);
        assert.equal((await store.getGroup(conv))?.memberCount, n);
        const tables = ['messages', 'inbox', 'entries', 'members', 'message_mentions'] as const;
        const counts = async () => Object.fromEntries(await Promise.all(tables.map(async (t) => [t, await countRows!(t)] as const)));
        const before = countRows ? await counts() : null;
        const senders = [owner!, rest[10]!, rest[500]!, rest[1998]!];
        const out = await sendMany(range(0, 9).map((i) => greq(senders[i % senders.length]!, conv)));
        for (const o of out) assert.deepEqual(o.pointers, []);
        if (before) {
          const after = await counts();
          assert.deepEqual(
            { messages: after.messages! - before.messages!, inbox: after.inbox! - before.inbox!, entries: after.entries! - before.entries!, members: after.members! - before.members!, mentions: after.message_mentions! - before.message_mentions! },
            { messages: 10, inbox: 0, entries: 0, members: 0, mentions: 0 },
          );
          // explicit mentions: one row per mentioned member, @all: none
          await sendOne(greq(owner!, conv, { mentions: [rest[1]!, rest[2]!] }));
          await sendOne(greq(owner!, conv, { mentions: 'all' }));
          const later = await counts();
          assert.equal(later.messages! - after.messages!, 2);
          assert.equal(later.message_mentions! - after.message_mentions!, 2);
          assert.equal(later.inbox! - after.inbox!, 0);
          assert.equal(later.entries! - after.entries!, 0);
        } else {
          await sendOne(greq(owner!, conv, { mentions: [rest[1]!, rest[2]!] }));
          await sendOne(greq(owner!, conv, { mentions: 'all' }));
        }
        const e = await entry(rest[1]!, conv);
        assert.equal(e.lastSeq, 13);
        assert.equal(e.unread, 13);
        assert.equal(e.mentions, 2);
        const e2 = await entry(rest[3]!, conv);
        assert.equal(e2.mentions, 1);
        assert.equal((await store.markRead(rest[1]!, conv, 13)).mentions, 0);
        assert.equal((await store.listMembers(conv, '', 10_000)).length, n);
      });

      it('concurrent adds never exceed maxMembers and keep member_count exact', async () => {
        const [owner, m1, m2] = await users(3);
        const candidates = await users(14, 'cand');
        const { conv } = await makeGroup(owner!, [m1!, m2!], { maxMembers: 8 });
        const results = await Promise.all(
          candidates.map((u, i) =>
            store.appendMessages([i % 2 ? notice(u, conv, add([u], { maxMembers: 8 })) : notice(i % 4 ? m1! : owner!, conv, add([u], { maxMembers: 8 }))]),
          ),
        );
        const outs = results.flat();
        const ok = outs.filter((o) => o.ok);
        assert.equal(ok.length, 5);
        for (const o of outs) if (!o.ok) assert.equal(o.error, 'full');
        const g = await store.getGroup(conv);
        assert.equal(g?.memberCount, 8);
        assert.equal((await store.listMembers(conv, '', 100)).length, 8);
        assert.deepEqual((await history(conv)).map((m) => m.seq), range(1, 6));
        // leaving frees a place
        await sendOne(notice(m2!, conv, { op: 'leave' }));
        const last = candidates.find((u) => !ok.some((o) => (o as Ok).effect?.joined.includes(u)))!;
        await sendOne(notice(last, conv, add([last], { maxMembers: 8 })));
        assert.equal((await store.getGroup(conv))?.memberCount, 8);
      });
    });

    // ----------------------------------------------------------- concurrency
    describe('concurrency', () => {
      it('20 concurrent batches of 50 into one conversation get seqs exactly 1..1000', async () => {
        const a = await newUser('a');
        const b = await newUser('b');
        const conv = directConversationId(a.id, b.id);
        // the conversation does not exist yet: concurrent creation must be safe too
        const batches = range(1, 20).map((i) => range(1, 50).map((j) => ((i + j) % 2 ? dm(a.id, b.id) : dm(b.id, a.id))));
        const results = await Promise.all(batches.map((batch) => store.appendMessages(batch)));
        const oks = results.flat().map(expectOk);
        assert.equal(oks.length, 1000);
        assert.ok(oks.every((o) => !o.duplicate));
        const seqs = oks.map((o) => o.message.seq).sort((x, y) => x - y);
        assert.deepEqual(seqs, range(1, 1000));
        // within one batch, seqs increase in request order
        for (const r of results) {
          const s = r.map((o) => expectOk(o).message.seq);
          for (let i = 1; i < s.length; i++) assert.ok(s[i]! > s[i - 1]!);
        }
        for (const u of [a.id, b.id]) {
          const ptrs = oks.map((o) => pointerOf(o, u)).sort((x, y) => x - y);
          assert.deepEqual(ptrs, range(1, 1000), `gap-free inboxSeq for ${u}`);
          assert.deepEqual(await store.inboxState(u), { latest: 1000, ringStart: 1000 - K + 1 });
        }
        assert.equal((await store.getConversation(conv))?.lastSeq, 1000);
        const history = await store.readHistory(conv, { after: 0, limit: 2000 });
        assert.deepEqual(history.map((m) => m.seq), range(1, 1000));
        assert.equal(new Set(history.map((m) => m.id)).size, 1000);
        // the inbox pointer of each message is consistent with the message
        const bySeq = new Map(oks.map((o) => [o.message.seq, o]));
        const ringItems = await store.readInbox(a.id, 1000 - K, 100);
        for (const item of ringItems) assert.equal(pointerOf(bySeq.get(item.message.seq)!, a.id), item.inboxSeq);
        const ea = await entry(a.id, conv);
        const eb = await entry(b.id, conv);
        assert.equal(ea.lastSeq, 1000);
        assert.equal(eb.lastSeq, 1000);
      });

      it('concurrent batches into an existing conversation (no directMembers) stay gap-free', async () => {
        const a = await newUser('a');
        const b = await newUser('b');
        const conv = directConversationId(a.id, b.id);
        await sendOne(dm(a.id, b.id));
        const plain = (from: string, to: string): AppendRequest => {
          const r = dm(from, to);
          delete r.directMembers;
          return r;
        };
        const results = await Promise.all(range(1, 12).map((i) => store.appendMessages(range(1, 25).map((j) => ((i + j) % 3 ? plain(a.id, b.id) : plain(b.id, a.id))))));
        const oks = results.flat().map(expectOk);
        assert.deepEqual(oks.map((o) => o.message.seq).sort((x, y) => x - y), range(2, 301));
        for (const u of [a.id, b.id]) assert.deepEqual(oks.map((o) => pointerOf(o, u)).sort((x, y) => x - y), range(2, 301));
        assert.equal((await store.getConversation(conv))?.lastSeq, 301);
      });

      it('concurrent batches across conversations sharing users keep every inbox gap-free', async () => {
        const users = await Promise.all(range(1, 4).map(() => newUser('p')));
        const ids = users.map((u) => u.id);
        const pairs: [string, string][] = [];
        for (let i = 0; i < ids.length; i++) for (let j = 0; j < ids.length; j++) if (i !== j) pairs.push([ids[i]!, ids[j]!]);
        const batches = range(0, 15).map((i) => range(0, 19).map((j) => {
          const [from, to] = pairs[(i * 7 + j * 5) % pairs.length]!;
          return dm(from, to);
        }));
        const results = await Promise.all(batches.map((batch) => store.appendMessages(batch)));
        const oks = results.flat().map(expectOk);
        assert.equal(oks.length, 16 * 20);
        for (const u of ids) {
          const ptrs = oks.filter((o) => o.pointers.some((p) => p.userId === u)).map((o) => pointerOf(o, u)).sort((x, y) => x - y);
          assert.deepEqual(ptrs, range(1, ptrs.length), `gap-free inboxSeq for ${u}`);
          assert.equal((await store.inboxState(u)).latest, ptrs.length);
        }
        const convs = new Set(oks.map((o) => o.message.conv));
        for (const conv of convs) {
          const seqs = oks.filter((o) => o.message.conv === conv).map((o) => o.message.seq).sort((x, y) => x - y);
          assert.deepEqual(seqs, range(1, seqs.length), `gap-free seq for ${conv}`);
          assert.equal((await store.getConversation(conv))?.lastSeq, seqs.length);
        }
      });

      it('concurrent retries of the same (sender, clientMsgId) store one message', async () => {
        const a = await newUser('a');
        const b = await newUser('b');
        const conv = directConversationId(a.id, b.id);
        const req = dm(a.id, b.id);
        const results = await Promise.all(range(1, 10).map(() => store.appendMessages([{ ...req, id: `m_${rand()}` }])));
        const oks = results.flat().map(expectOk);
        assert.equal(oks.filter((o) => !o.duplicate).length, 1);
        const first = oks.find((o) => !o.duplicate)!;
        for (const o of oks) {
          assert.deepEqual(o.message, first.message);
          assert.equal(pointerOf(o, a.id), pointerOf(first, a.id));
        }
        assert.equal((await store.getConversation(conv))?.lastSeq, 1);
        assert.equal((await store.getUser(a.id))?.inboxSeq, 1);
        assert.equal((await store.getUser(b.id))?.inboxSeq, 1);
      });

      it('concurrent acks and reads interleaved with sends stay consistent', async () => {
        const a = await newUser('a');
        const b = await newUser('b');
        const conv = directConversationId(a.id, b.id);
        await sendOne(dm(a.id, b.id));
        const ops: Promise<unknown>[] = [];
        for (let i = 0; i < 10; i++) {
          ops.push(store.appendMessages([dm(a.id, b.id), dm(b.id, a.id)]));
          ops.push(store.markDelivered(b.id, 2 * i + 1));
          ops.push(store.markDelivered(a.id, 2 * i + 1));
          ops.push(store.markRead(b.id, conv, i + 1));
          ops.push(store.updateEntry(a.id, conv, { draft: `d${i}` }));
        }
        await Promise.all(ops);
        assert.equal((await store.getConversation(conv))?.lastSeq, 21);
        const eb = await entry(b.id, conv);
        const ea = await entry(a.id, conv);
        assert.equal(eb.lastSeq, 21);
        assert.equal(ea.lastSeq, 21);
        // unread agrees with a recount from history
        const history = await store.readHistory(conv, { after: 0, limit: 100 });
        for (const e of [ea, eb]) {
          const me = e === ea ? a.id : b.id;
          const expected = history.filter((m) => m.seq > e.readSeq && m.sender !== me);
          assert.equal(e.unread, expected.length);
          assert.equal(e.oldestUnreadSeq, expected[0]?.seq ?? null);
        }
        const va = await store.conversationChanges(a.id, 0, 100);
        assert.equal(va.entries.length, 1);
        assert.equal(va.entries[0]!.version, va.version);
      });
    });
  });
}

/**
 * Rows of a database written before groups existed (members without role/left_seq, messages
 * without mention_all, entries without mentions). Apply LEGACY_SCHEMA_SQL (test/legacy-schema.ts) alone (the pre-group
 * tables), then these rows, then open the store: `checkLegacyUpgrade` shows they still work.
 */
export const LEGACY_ROWS_SQL = `
ALTER TABLE users DROP COLUMN username_key;
ALTER TABLE users DROP COLUMN disabled_at;
ALTER TABLE users DROP COLUMN deleted_at;
INSERT INTO users (id, username, password_hash, nickname, created_at, inbox_seq, conv_version) VALUES ('la', 'la', 'h', 'A', 1, 2, 2), ('lb', 'lb', 'h', 'B', 1, 2, 2);
INSERT INTO users (id, username, password_hash, nickname, created_at) VALUES ('lc', 'Bob', 'h', 'Old Bob', 1), ('ld', 'bob', 'h', 'Young bob', 2);
INSERT INTO conversations (id, kind, last_seq, created_at) VALUES ('d:la:lb', 'direct', 2, 1);
INSERT INTO members (conv_id, user_id, joined_at) VALUES ('d:la:lb', 'la', 1), ('d:la:lb', 'lb', 1);
INSERT INTO messages (conv_id, seq, id, sender_id, client_msg_id, kind, body, time, sender_inbox_seq)
  VALUES ('d:la:lb', 1, 'lm1', 'la', 'c1', 'text', '{"text":"one"}', 1, 1), ('d:la:lb', 2, 'lm2', 'la', 'c2', 'text', '{"text":"two"}', 2, 2);
INSERT INTO inbox (user_id, inbox_seq, conv_id, seq) VALUES ('la', 1, 'd:la:lb', 1), ('la', 2, 'd:la:lb', 2), ('lb', 1, 'd:la:lb', 1), ('lb', 2, 'd:la:lb', 2);
INSERT INTO entries (user_id, conv_id, read_seq, unread, last_seq, version) VALUES ('la', 'd:la:lb', 2, 0, 2, 2), ('lb', 'd:la:lb', 0, 2, 2, 2);
`;

export async function checkLegacyUpgrade(store: Store): Promise<void> {
  await store.migrate();
  // Usernames from before username_key: keys backfilled; of two that differ only in case the
  // older owns the key, the younger still logs in with its exact spelling (issue 13).
  assert.equal((await store.getUserByUsername('LA'))?.id, 'la');
  assert.equal((await store.getUserByUsername('BOB'))?.id, 'lc');
  assert.equal((await store.getUserByUsername('Bob'))?.id, 'lc');
  assert.equal((await store.getUserByUsername('bob'))?.id, 'ld');
  assert.equal((await store.getUser('ld'))?.disabledAt, null);
  await assert.rejects(store.createUser({ id: 'le', username: 'BoB', passwordHash: 'h', nickname: 'N', createdAt: 3 }), StoreConflictError);
  const conv = 'd:la:lb';
  assert.equal(await store.isMember(conv, 'la'), true);
  assert.deepEqual(await store.members(conv), ['la', 'lb']);
  assert.deepEqual(await store.getMember(conv, 'lb'), { conv, userId: 'lb', role: 'member', mutedUntil: 0, joinedAt: 1, joinedSeq: 0 });
  assert.equal(await store.formerMemberLimit(conv, 'lb'), null);
  const e = await store.getEntry('lb', conv);
  assert.equal(e?.unread, 2);
  assert.equal(e?.mentions, 0);
  assert.equal(e?.lastSeq, 2);
  assert.equal(e?.lastMessage?.id, 'lm2');
  const [o] = await store.appendMessages([
    { sender: 'lb', clientMsgId: 'c3', conv, kind: 'text', body: { text: 'three' }, time: 3, id: 'lm3', mentions: ['la'] },
  ]);
  assert.equal(o?.ok, true);
  assert.equal((o as Extract<AppendOutcome, { ok: true }>).message.seq, 3);
  assert.deepEqual(sortPointers((o as Extract<AppendOutcome, { ok: true }>).pointers), [
    { userId: 'la', inboxSeq: 3 },
    { userId: 'lb', inboxSeq: 3 },
  ]);
  assert.equal((await store.getEntry('la', conv))?.mentions, 1);
  assert.equal((await store.markRead('la', conv, 3)).mentions, 0);
  const [g] = await store.appendMessages([
    {
      sender: 'la',
      clientMsgId: 'c4',
      conv: 'g:legacy',
      kind: 'system',
      body: {},
      time: 4,
      id: 'lm4',
      effect: { op: 'create', group: { name: 'Old friends', avatar: '', joinPolicy: 'open', inviteNeedsApproval: false, historyVisibility: 'since_join', maxMembers: 10, superThreshold: 500 }, members: ['lb'] },
    },
  ]);
  assert.equal(g?.ok, true);
  assert.equal((await store.getGroup('g:legacy'))?.memberCount, 2);
  await store.migrate();
}
