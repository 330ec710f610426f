import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Message } from '@magpie/protocol';
import { SqliteEngine } from '../src/db/sqlite-engine.ts';
import { migrate } from '../src/db/migrate.ts';
import { MIGRATIONS } from '../src/db/migrations/index.ts';
import { SqlReceiptStore } from '../src/receipts/sql-receipt-store.ts';
import { GroupPush } from '../src/receipts/group-push.ts';
import type { SendExtras } from '../src/receipts/receipt-service.ts';
import type { Store, InboxPointer } from '../src/store/store.ts';

/**
 * Who gets an offline push for a group message (per-group levels all / mentions / none;
 * super groups: mentions, @all by owner/admin, replies, level `all`) — without reading the
 * member list of a super group except for @all, which pages it into the bulk lane.
 */
describe('group push targets by notification level', () => {
  let dir: string;
  let db: SqliteEngine;
  let rstore: SqlReceiptStore;
  const members = Array.from({ length: 2500 }, (_, i) => `m${String(i).padStart(4, '0')}`);
  let scans = 0;
  const roles: Record<string, string> = { m0000: 'owner', m0001: 'admin' };
  const store = {
    isMember: async (_c: string, u: string) => members.includes(u),
    getMember: async (_c: string, u: string) => ({ role: roles[u] ?? 'member' }),
    readHistory: async (_c: string, q: { after: number }) => [{ seq: q.after + 1, sender: 'm0042' }],
    listMembers: async (_c: string, after: string, limit: number) => {
      scans++;
      return members.filter((u) => u > after).slice(0, limit).map((userId) => ({ userId }));
    },
  } as unknown as Store;
  const msg = (seq: number, sender: string, conv = 'g:super'): Message => ({ id: `m${seq}`, conv, seq, sender, kind: 'text', body: { text: 'x' }, time: 0, clientMsgId: `c${seq}` });
  const make = (extras: SendExtras | undefined) => {
    const live: string[][] = [];
    const bulk: string[][] = [];
    const normal: string[][] = [];
    const gp = new GroupPush(
      store,
      rstore,
      { onCommitted: (_m, p) => void normal.push(p.map((x) => x.userId)), pushTo: (_m, u, lane) => void (lane === 'bulk' ? bulk : live).push(u) },
      () => extras,
      { defaults: { group: 'all', super: 'mentions' }, pageSize: 1000 },
    );
    return { gp, live, bulk, normal };
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'magpie-gpush-'));
    db = new SqliteEngine(join(dir, 'm.db'), { checkpointMs: 0 });
    await migrate(db, MIGRATIONS);
    rstore = new SqlReceiptStore(db);
    await rstore.setNotify('m0100', 'g:super', 'all');
    await rstore.setNotify('m0200', 'g:super', 'none');
    await rstore.setNotify('m0300', 'g:normal', 'mentions');
    await rstore.setNotify('m0301', 'g:normal', 'none');
  });
  after(async () => {
    await db.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('super group: mentions, the replied-to sender and level `all` — no member scan; `none` silences even a mention', async () => {
    scans = 0;
    const t = make({ mentions: ['m0005', 'm0200', 'stranger'], replyTo: 3 });
    const targets = await t.gp.superTargets(msg(9, 'm0007'), { mentions: ['m0005', 'm0200', 'stranger'], replyTo: 3 });
    assert.deepEqual(targets.direct.sort(), ['m0005', 'm0042', 'm0100']);
    assert.equal(targets.all, false);
    assert.equal(scans, 0);
  });

  it('@all: only from an owner/admin, paged through the bulk lane skipping `none`', async () => {
    scans = 0;
    const plain = make({ mentions: 'all' });
    plain.gp.onCommitted(msg(10, 'm0009'), []);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(scans, 0, 'a member’s @all is ignored');
    const admin = make({ mentions: 'all' });
    admin.gp.onCommitted(msg(11, 'm0001'), []);
    await new Promise((r) => setTimeout(r, 300));
    const all = [...admin.bulk.flat(), ...admin.live.flat()];
    assert.equal(scans, 3);
    assert.deepEqual(admin.live, [['m0100']], 'level `all` users go on the live lane');
    assert.equal(new Set(all).size, members.length - 2, 'everyone but the sender and the `none` member, once');
    assert.ok(!all.includes('m0200') && !all.includes('m0001'));
  });

  it('normal group: pointers filtered by level (default all; mentions keeps mentions and replies; none drops)', async () => {
    const t = make({ mentions: ['m0300'] });
    const ptrs = ['m0007', 'm0300', 'm0301', 'm0302'].map((userId, i) => ({ userId, inboxSeq: i + 1 }) as InboxPointer);
    t.gp.onCommitted(msg(5, 'm0007', 'g:normal'), ptrs);
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(t.normal[0]!.sort(), ['m0007', 'm0300', 'm0302']);
    const quiet = make(undefined);
    quiet.gp.onCommitted(msg(6, 'm0007', 'g:normal'), ptrs);
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(quiet.normal[0]!.sort(), ['m0007', 'm0302']);
  });
});
