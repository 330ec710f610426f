/**
 * Concurrency: 2 000 concurrent clients open one 200-share red packet → exactly 200 claims,
 * nothing over-issued, the sum exact, the ledger reconciles. On SQLite (file, WAL,
 * synchronous=FULL, group commit) and on PostgreSQL with four "nodes" (four stores and
 * services, each with its own grab filter and group committer) racing on one packet row.
 * Each runs twice: with the grab filter as configured, and with the filter wide open so
 * that every one of the 2 000 opens reaches the database and the compare-and-set alone
 * has to hold the line.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { OpenResult } from '@magpie/protocol';
import type { SqlWalletStore } from '../src/wallet/sql-wallet-store.ts';
import { pgWallet, sqliteWallet } from './sql-engines.ts';
import { RedPacketService } from '../src/wallet/redpacket-service.ts';
import type { WalletStore } from '../src/wallet/wallet-store.ts';
import { assertReconciles } from './wallet-store-contract.ts';
import { FakeMembers, FakePoster, TEST_OPTIONS, openUntilDecided, principal } from './redpacket-helpers.ts';
import { freshSchemaName, pgUnavailable, rawClient } from './pg-test-helpers.ts';

const CLIENTS = 2000;
const SHARES = 200;
const TOTAL = 200_000; // 2 000 yuan

const WIDE_OPEN = { overAdmitRatio: 10, overAdmitMin: 100_000 };

/** One packet, CLIENTS concurrent clients spread over the given nodes; returns what they got. */
async function race(nodes: { service: RedPacketService }[], members: FakeMembers, wallet: WalletStore, tag: string) {
  const sender = `sender-${tag}`;
  const clients = Array.from({ length: CLIENTS }, (_, i) => `c${i}-${tag}`);
  members.group(`g:${tag}`, [sender, ...clients]);
  assert.ok((await wallet.topUp({ reference: `seed-${tag}`, userId: sender, amount: TOTAL, now: Date.now() })).ok);
  const { packet } = await nodes[0]!.service.send(principal(sender), { clientMsgId: `rp-${tag}`, conv: `g:${tag}`, split: 'random', total: TOTAL, count: SHARES });
  const started = Date.now();
  const results: OpenResult[] = await Promise.all(clients.map((c, i) => openUntilDecided(nodes[i % nodes.length]!.service, c, packet.id, { grabFirst: i % 2 === 0 })));
  const elapsed = Date.now() - started;

  const claimed = results.filter((r) => r.result === 'claimed');
  assert.equal(claimed.length, SHARES, 'exactly as many claims as shares');
  assert.equal(results.filter((r) => r.result === 'all_claimed').length, CLIENTS - SHARES, 'everyone else: all claimed');
  assert.equal(
    claimed.reduce((s, r) => s + (r.result === 'claimed' ? r.amount : 0), 0),
    TOTAL,
    'the sum is exact',
  );
  const claims = await wallet.claims(packet.id);
  assert.equal(claims.length, SHARES, 'the database holds exactly 200 claims');
  assert.equal(new Set(claims.map((c) => c.user)).size, SHARES, 'one claim per user');
  assert.deepEqual(
    claims.map((c) => c.seq),
    Array.from({ length: SHARES }, (_, i) => i + 1),
  );
  assert.ok(claims.every((c) => c.amount >= 1));
  for (const c of claims) assert.equal(await wallet.balance(c.user), c.amount, `credited ${c.user}`);
  const p = await wallet.getPacket(packet.id);
  assert.equal(p!.status, 'finished');
  assert.equal(p!.remainingAmount, 0);
  assert.equal(p!.remainingCount, 0);
  assert.equal(await wallet.balance(sender), 0);
  await assertReconciles(wallet, Date.now());
  return { elapsed, packetId: packet.id };
}

describe('concurrency: 2 000 clients open one 200-share packet — SQLite', () => {
  let dir: string;
  let wallet: SqlWalletStore;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'magpie-rp-'));
    wallet = await sqliteWallet(join(dir, 'magpie.db'), { synchronous: 'full' });
  });
  after(async () => {
    await wallet.close();
    await rm(dir, { recursive: true, force: true });
  });

  for (const [name, over] of [
    ['with the grab filter', {}],
    ['with the filter wide open (the database alone decides)', WIDE_OPEN],
  ] as const) {
    it(name, async () => {
      const members = new FakeMembers();
      const poster = new FakePoster();
      const service = new RedPacketService(wallet, members, poster, { ...TEST_OPTIONS, ...over });
      const tag = `s${Math.random().toString(36).slice(2, 8)}`;
      const { elapsed } = await race([{ service }], members, wallet, tag);
      await new Promise((r) => setTimeout(r, 20));
      assert.equal(poster.ofKind('redpacket.status').length, 1, 'one status message');
      console.log(`# sqlite ${name}: ${CLIENTS} clients, ${SHARES} claims in ${elapsed} ms`);
    });
  }
});

const skip = await pgUnavailable();
describe('concurrency: 2 000 clients open one 200-share packet — PostgreSQL, 4 nodes', { skip: skip ?? false }, () => {
  const schema = freshSchemaName('wallet_conc');
  let stores: SqlWalletStore[] = [];
  let raw: ReturnType<typeof rawClient>;
  before(async () => {
    // Four nodes: four pools on one database (each node's one pool).
    for (let i = 0; i < 4; i++) stores.push(await pgWallet(schema, { max: 4, node: `node${i}` }));
    raw = rawClient(schema);
  });
  after(async () => {
    for (const s of stores) await s.close();
    await raw?.drop();
  });

  for (const [name, over] of [
    ['with the grab filter on every node', {}],
    ['with the filters wide open (row locks and the compare-and-set alone decide)', WIDE_OPEN],
  ] as const) {
    it(name, async () => {
      const members = new FakeMembers();
      const nodes = stores.map((store) => ({ service: new RedPacketService(store, members, new FakePoster(), { ...TEST_OPTIONS, ...over }) }));
      const tag = `p${Math.random().toString(36).slice(2, 8)}`;
      const { elapsed } = await race(nodes, members, stores[0]!, tag);
      console.log(`# postgres ${name}: ${CLIENTS} clients over 4 nodes, ${SHARES} claims in ${elapsed} ms`);
    });
  }
});
