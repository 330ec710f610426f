import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { ReceiptStore } from '../src/receipts/receipt-store.ts';
import { emptyBitmap, withBits } from '../src/receipts/bitmap.ts';

export interface ReceiptStoreHarness {
  store: ReceiptStore;
  /** A second store on the same database (another node). */
  other: ReceiptStore;
  cleanup(): Promise<void>;
}

/** One contract for the receipt store on both engines. */
export function runReceiptStoreContract(name: string, open: () => Promise<ReceiptStoreHarness | null>): void {
  describe(`ReceiptStore contract: ${name}`, () => {
    let h: ReceiptStoreHarness | null;
    before(async () => {
      h = await open();
    });
    after(async () => {
      await h?.cleanup();
    });

    const members = Array.from({ length: 20 }, (_, i) => `u${String(i).padStart(2, '0')}`);
    const track = async (s: ReceiptStore, conv: string, seqs: number[], epoch = 0) => {
      await s.putSnapshot({ conv, epoch, members }, 1);
      await s.track(seqs.map((seq) => ({ conv, seq, sender: 'u00', epoch, bitmap: withBits(emptyBitmap(members.length), [0]).bitmap, readCount: 1 })));
    };

    it('snapshots are shared: one per epoch, many messages point at it', async (t) => {
      if (!h) return t.skip('no database');
      await track(h.store, 'g:snap', [1, 2, 3]);
      await h.store.putSnapshot({ conv: 'g:snap', epoch: 0, members: ['other'] }, 2);
      assert.deepEqual((await h.other.snapshot('g:snap', 0))!.members, members, 'an existing snapshot is never replaced');
      assert.equal((await h.store.latestSnapshot('g:snap'))!.epoch, 0);
      await h.store.putSnapshot({ conv: 'g:snap', epoch: 7, members: members.slice(1) }, 3);
      assert.equal((await h.store.latestSnapshot('g:snap'))!.epoch, 7);
      assert.deepEqual((await h.store.trackedBetween('g:snap', 1, 3, 10)).map((x) => x.seq), [2, 3]);
      assert.deepEqual((await h.store.trackedAmong('g:snap', [3, 9, 1])).map((x) => x.seq), [1, 3]);
    });

    it('batched bit setting: counts, lists, idempotent; two nodes setting bits of one message lose none', async (t) => {
      if (!h) return t.skip('no database');
      await track(h.store, 'g:bits', [10, 11]);
      const changed = await h.store.setRead([
        { conv: 'g:bits', seq: 10, indices: [1, 2, 3] },
        { conv: 'g:bits', seq: 11, indices: [1] },
      ]);
      assert.deepEqual(changed.map((c) => [c.conv, c.seq, c.read, c.total]), [
        ['g:bits', 10, 3, 19],
        ['g:bits', 11, 1, 19],
      ]);
      assert.deepEqual(await h.store.setRead([{ conv: 'g:bits', seq: 10, indices: [1, 2] }]), [], 'bits already set change nothing');
      // Concurrent writers on two stores (nodes): every bit lands.
      await Promise.all(members.slice(1).map((_, i) => (i % 2 ? h!.store : h!.other).setRead([{ conv: 'g:bits', seq: 11, indices: [i + 1] }])));
      const [c11] = await h.store.counts('g:bits', [11]);
      assert.equal(c11!.read, 19);
      const b = await h.store.bitmapOf('g:bits', 10);
      assert.equal(b!.sender, 'u00');
      assert.deepEqual(b!.snapshot.members, members);
      assert.equal(await h.store.bitmapOf('g:bits', 99), null);
    });

    it('read reports never go back', async (t) => {
      if (!h) return t.skip('no database');
      assert.equal(await h.store.report('u1', 'g:r', 5), 0);
      assert.equal(await h.store.report('u1', 'g:r', 3), 5);
      assert.equal(await h.store.report('u1', 'g:r', 9), 5);
      assert.equal(await h.store.report('u1', 'g:r', 9), 9);
    });

    it('privacy, group switch, notify levels (versioned per user, by-level index), last seen', async (t) => {
      if (!h) return t.skip('no database');
      assert.equal((await h.store.privacy(['p1'])).size, 0);
      await h.store.setPrivacy('p1', { readReceipts: false, presence: 'nobody' }, 1);
      assert.deepEqual((await h.store.privacy(['p1', 'p2'])).get('p1'), { readReceipts: false, presence: 'nobody' });
      assert.equal(await h.store.groupReceipts('g:s'), null);
      await h.store.setGroupReceipts('g:s', false, 1);
      assert.equal(await h.store.groupReceipts('g:s'), false);
      const s1 = await h.store.setNotify('n1', 'g:a', 'all');
      const s2 = await h.store.setNotify('n1', 'g:b', 'none');
      const s3 = await h.store.setNotify('n1', 'g:a', 'mentions');
      assert.deepEqual([s1.version, s2.version, s3.version], [1, 2, 3]);
      assert.deepEqual(await h.store.notifySettings('n1'), [
        { conv: 'g:b', level: 'none', version: 2 },
        { conv: 'g:a', level: 'mentions', version: 3 },
      ]);
      await h.store.setNotify('n2', 'g:a', 'all');
      await h.store.setNotify('n3', 'g:a', 'all');
      assert.deepEqual(await h.store.usersWithLevel('g:a', 'all', '', 10), ['n2', 'n3']);
      assert.deepEqual(await h.store.usersWithLevel('g:a', 'all', 'n2', 10), ['n3']);
      assert.deepEqual([...(await h.store.notifyLevels('g:a', ['n1', 'n2', 'zz']))].sort(), [
        ['n1', 'mentions'],
        ['n2', 'all'],
      ].sort());
      await h.store.setLastSeen('p1', 100);
      await h.store.setLastSeen('p1', 50);
      assert.equal((await h.store.lastSeen(['p1'])).get('p1'), 100);
      // Written together (one transaction per flush): readable before the commit, all there after it.
      const users = Array.from({ length: 50 }, (_, i) => `q${i}`);
      const writes = users.map((u, i) => h!.store.setLastSeen(u, 1000 + i));
      assert.equal((await h.store.lastSeen(['q7'])).get('q7'), 1007);
      await Promise.all(writes);
      await h.store.setLastSeen('q49', 10);
      const seen = await h.store.lastSeen([...users, 'p1']);
      assert.equal(seen.size, 51);
      assert.equal(seen.get('q0'), 1000);
      assert.equal(seen.get('q49'), 1049);
    });
  });
}
