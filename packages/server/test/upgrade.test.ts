/**
 * Upgrade in place: the server of an earlier commit fills a database, this server starts on
 * it, migrates it (db/migrations) and finds every row. Two earlier servers (no release tags
 * exist yet): the last commit before versioned migrations, and the last commit before the
 * messaging tables moved into migration 0004-core (its store created them itself). Their
 * sources come from git and run through tsx beside this checkout, sharing its node_modules.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, fork } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { api, RawClient, registerAndLogin, login, startServer } from './harness.ts';

const ROOT = new URL('../../../', import.meta.url).pathname;
/** Earlier servers: before versioned migrations; before migration 0004-core (messaging tables created by the store). */
const PREVIOUSES = ['5a2d051', '2be6ebc'];
/** The messaging tables and their keys: every row written before the upgrade must be there after it. */
const CORE_TABLES: Record<string, string> = {
  users: 'id',
  sessions: 'token_hash',
  devices: 'user_id, device_id',
  conversations: 'id',
  members: 'conv_id, user_id',
  messages: 'conv_id, seq',
  inbox: 'user_id, inbox_seq',
  entries: 'user_id, conv_id',
  groups: 'conv_id',
};

function snapshot(path: string): Record<string, Record<string, unknown>[]> {
  const db = new Database(path, { readonly: true });
  try {
    const out: Record<string, Record<string, unknown>[]> = {};
    for (const [table, key] of Object.entries(CORE_TABLES)) {
      const exists = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(table);
      out[table] = exists ? (db.prepare(`SELECT * FROM ${table} ORDER BY ${key}`).all() as Record<string, unknown>[]) : [];
    }
    return out;
  } finally {
    db.close();
  }
}
const ADMIN = 'upgrade-test-admin-token-0123456789';

function previousAvailable(PREVIOUS: string): string | null {
  try {
    execFileSync('git', ['-C', ROOT, 'cat-file', '-e', `${PREVIOUS}^{commit}`], { stdio: 'ignore' });
    return null;
  } catch {
    const why = `commit ${PREVIOUS} (previous release) is not in this checkout's git history`;
    console.warn(`SKIP: ${why}`);
    return why;
  }
}

/**
 * The previous release's packages in a temp dir, with node_modules linking to ours except @magpie/*.
 * Packages only earlier releases import stay in the root devDependencies for this (@fastify/helmet).
 */
function checkoutPrevious(PREVIOUS: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'magpie-prev-'));
  execFileSync('sh', ['-c', `git -C "${ROOT}" archive ${PREVIOUS} package.json tsconfig.json packages/protocol packages/server | tar -x -C "${dir}"`]);
  const modules = join(dir, 'node_modules');
  mkdirSync(join(modules, '@magpie'), { recursive: true });
  for (const name of readdirSync(join(ROOT, 'node_modules'))) {
    if (name === '@magpie' || name === '.package-lock.json') continue;
    symlinkSync(join(ROOT, 'node_modules', name), join(modules, name));
  }
  for (const pkg of ['protocol', 'server']) symlinkSync(join(dir, 'packages', pkg), join(modules, '@magpie', pkg));
  return dir;
}

for (const PREVIOUS of PREVIOUSES) test(`a database written by an earlier server (${PREVIOUS}) upgrades in place with every row`, async (t) => {
  const skip = previousAvailable(PREVIOUS);
  if (skip) return t.skip(skip);
  const prev = checkoutPrevious(PREVIOUS);
  const dataDir = mkdtempSync(join(tmpdir(), 'magpie-upgrade-data-'));
  try {
    // 1. The previous server writes users, messages, read state and an instruction.
    const old = fork(join(prev, 'packages/server/src/main.ts'), [], {
      cwd: prev,
      // Commits after the production build export dist/ by default: run the sources.
      execArgv: ['--conditions=magpie-source', '--import', 'tsx'],
      env: { ...process.env, NODE_OPTIONS: '', MAGPIE_PORT: '0', MAGPIE_HOST: '127.0.0.1', MAGPIE_DATA_DIR: dataDir, MAGPIE_LOG_LEVEL: 'warn', MAGPIE_ADMIN_TOKEN: ADMIN },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const oldUrl = await new Promise<string>((resolve, reject) => {
      old.on('message', (m: { ready?: string }) => m.ready && resolve(m.ready.replace('localhost', '127.0.0.1')));
      old.on('exit', (c) => reject(new Error(`previous server exited ${c}`)));
    });
    const a = await registerAndLogin(oldUrl, { deviceId: 'a1' });
    const b = await registerAndLogin(oldUrl, { deviceId: 'b1' });
    const { client } = await RawClient.connect(`${oldUrl.replace(/^http/, 'ws')}/ws`, a.token);
    const sent = [];
    for (let i = 1; i <= 5; i++) sent.push(await client.request({ type: 'send', clientMsgId: `up${i}`, to: b.userId, kind: 'text', body: { text: `before upgrade ${i}` } }));
    const conv = sent[0].message.conv as string;
    // A group with a message, and B's ACK (delivered marks, device row).
    const group = await api(oldUrl, 'POST', '/api/groups', { name: 'Before the upgrade', members: [b.userId] }, a.token);
    assert.equal(group.status, 201, JSON.stringify(group.body));
    const gconv = group.body.group.conv as string;
    await client.request({ type: 'send', clientMsgId: 'g1', conv: gconv, kind: 'text', body: { text: 'group before upgrade' } });
    client.ws.close();
    const { client: ob } = await RawClient.connect(`${oldUrl.replace(/^http/, 'ws')}/ws`, b.token);
    ob.send({ type: 'ack', inboxSeq: 7 });
    await new Promise((r) => setTimeout(r, 300));
    ob.ws.close();
    const issued = await api(oldUrl, 'POST', '/api/admin/instructions', { userId: b.userId, deviceId: 'b1', kind: 'clear_cache', issuedBy: 'upgrade test' }, ADMIN);
    assert.equal(issued.status, 201, JSON.stringify(issued.body));
    // Wallet and red packets (their tables were made by the previous release's own stores).
    const top = await api(oldUrl, 'POST', '/api/admin/wallet/topup', { userId: a.userId, amount: 10_000, reference: 'up-top' }, ADMIN);
    assert.equal(top.status, 200, JSON.stringify(top.body));
    assert.equal((await api(oldUrl, 'POST', '/api/admin/wallet/withdraw', { userId: a.userId, amount: 1_000, reference: 'up-wd' }, ADMIN)).status, 200);
    const sentPacket = await api(oldUrl, 'POST', '/api/redpackets', { clientMsgId: 'rp-up', to: b.userId, total: 300, count: 1, greeting: 'before upgrade' }, a.token);
    assert.equal(sentPacket.status, 201, JSON.stringify(sentPacket.body));
    const packetId = (sentPacket.body.packet?.id ?? sentPacket.body.id) as string;
    assert.ok(packetId, JSON.stringify(sentPacket.body));
    const entriesBefore = (await api(oldUrl, 'GET', '/api/wallet/entries?limit=200', undefined, a.token)).body;
    // Push: settings and the generated VAPID key live in the previous release's own file, push.db.
    const settings = await api(oldUrl, 'PUT', '/api/push/settings', { privacy: 'hide', disabled: ['marketing'] }, b.token);
    assert.equal(settings.status, 200, JSON.stringify(settings.body));
    const vapid = (await api(oldUrl, 'GET', '/api/push/vapid-public-key')).body.publicKey as string;
    assert.ok(vapid);
    old.kill('SIGTERM');
    await new Promise((r) => old.once('exit', r));
    // A device and a queued push as the previous release left them in push.db at the upgrade.
    const pushFile = join(dataDir, 'push.db');
    const pdb = new Database(pushFile);
    const t0 = Date.now();
    pdb.prepare(`INSERT INTO push_devices (user_id, device_id, platform, provider, token, vendor, sandbox, app_version, locale, time_zone, permission, last_seen, created_at, updated_at)
      VALUES (?, 'b-phone', 'ios', 'apns', 'upgrade-token', NULL, 0, '1.0', 'en', 'UTC', 'granted', ?, ?, ?)`).run(b.userId, t0, t0, t0);
    pdb.prepare(`INSERT INTO push_jobs (id, lane, category, user_id, device_id, provider, collapse_key, conv, seq, count, title, body, data, not_before, expires_at, created_at, status)
      VALUES ('pupgrade1', 'live', 'im', ?, 'b-phone', 'apns', NULL, ?, 5, 1, 'a', 'queued before the upgrade', '{}', ?, ?, ?, 'queued')`).run(b.userId, conv, t0 + 3_600_000, t0 + 86_400_000, t0);
    pdb.close();
    const before = snapshot(join(dataDir, 'magpie.db'));
    assert.ok(before.messages!.length >= 7 && before.groups!.length === 1, `rows written: ${Object.entries(before).map(([k, v]) => `${k} ${v.length}`).join(', ')}`);

    // 2a. This server migrates the database; every row is still there, unchanged in every column it had.
    const first = await startServer({ dataDir, keepData: true, env: { MAGPIE_ADMIN_TOKEN: ADMIN } });
    await first.kill();
    const upgraded = snapshot(join(dataDir, 'magpie.db'));
    for (const [table, rows] of Object.entries(before)) {
      assert.equal(upgraded[table]!.length, rows.length, `${table}: row count after the upgrade`);
      rows.forEach((row, i) => {
        const now = upgraded[table]![i]!;
        for (const [col, v] of Object.entries(row)) assert.deepEqual(now[col], v, `${table} row ${i} column ${col}`);
      });
    }

    // 2. This server starts on the same data directory.
    const srv = await startServer({ dataDir, keepData: true, env: { MAGPIE_ADMIN_TOKEN: ADMIN } });
    try {
      const b2 = await login(srv.url, b.username, 'b1');
      const { client: cb } = await RawClient.connect(srv.wsUrl, b2.token);
      const history = await cb.request({ type: 'history', conv, limit: 50 });
      assert.deepEqual(
        history.messages.filter((m: { kind: string }) => m.kind === 'text').map((m: { seq: number; body: { text: string } }) => [m.seq, m.body.text]).sort((x: number[], y: number[]) => x[0]! - y[0]!),
        [1, 2, 3, 4, 5].map((i) => [i, `before upgrade ${i}`]),
      );
      const convs = await cb.request({ type: 'convs', since: 0 });
      const entry = convs.entries.find((e: { conv: string }) => e.conv === conv);
      // The five texts and the red packet (seq 6).
      assert.equal(entry?.unread, 6);
      // A message after the upgrade continues the same gap-free sequence.
      const after = await cb.request({ type: 'send', clientMsgId: 'after', to: a.userId, kind: 'text', body: { text: 'after upgrade' } });
      assert.equal(after.message.seq, 7);
      const gh = await cb.request({ type: 'history', conv: gconv, limit: 50 });
      assert.deepEqual(gh.messages.map((m: { body: { text?: string } }) => m.body.text).filter(Boolean), ['group before upgrade']);
      const gafter = await cb.request({ type: 'send', clientMsgId: 'g2', conv: gconv, kind: 'text', body: { text: 'group after upgrade' } });
      assert.equal(gafter.message.seq, gh.messages.length + 1);
      cb.ws.close();
      const audit = await api(srv.url, 'GET', `/api/admin/instructions?userId=${b.userId}`, undefined, ADMIN);
      assert.equal(audit.status, 200);
      assert.deepEqual(audit.body.instructions.map((i: { id: string; kind: string }) => [i.id, i.kind]), [[issued.body.instruction.id, 'clear_cache']]);
      // Wallet: the balance, every ledger entry, the withdrawal and the unopened packet.
      const a2 = await login(srv.url, a.username, 'a1');
      assert.equal((await api(srv.url, 'GET', '/api/wallet', undefined, a2.token)).body.balance, 10_000 - 1_000 - 300);
      assert.deepEqual((await api(srv.url, 'GET', '/api/wallet/entries?limit=200', undefined, a2.token)).body, entriesBefore);
      // The withdrawal was paid by the previous release: settling it again is refused, as before.
      assert.equal((await api(srv.url, 'POST', '/api/admin/wallet/withdrawals/up-wd/settle', { result: 'paid' }, ADMIN)).status, 409);
      assert.equal((await api(srv.url, 'POST', `/api/redpackets/${packetId}/grab`, undefined, b2.token)).status, 200);
      const opened = await api(srv.url, 'POST', `/api/redpackets/${packetId}/open`, undefined, b2.token);
      assert.equal(opened.status, 200, JSON.stringify(opened.body));
      assert.equal((await api(srv.url, 'GET', '/api/wallet', undefined, b2.token)).body.balance, 300);
      const reconciled = await api(srv.url, 'GET', '/api/admin/reconcile', undefined, ADMIN);
      assert.equal(reconciled.body.ok, true, JSON.stringify(reconciled.body.checks));
      // Push: the same VAPID key (browsers' subscriptions stay valid) and the same settings.
      assert.equal((await api(srv.url, 'GET', '/api/push/vapid-public-key')).body.publicKey, vapid);
      assert.deepEqual((await api(srv.url, 'GET', '/api/push/settings', undefined, b2.token)).body, settings.body);
    } finally {
      await srv.kill();
    }
    // 3. The database records its schema version.
    const db = new Database(join(dataDir, 'magpie.db'), { readonly: true });
    const versions = (db.prepare('SELECT name FROM schema_migrations ORDER BY name').all() as { name: string }[]).map((r) => r.name);
    // push.db was imported into the server's database once and set aside.
    const device = db.prepare("SELECT token FROM push_devices WHERE user_id = ? AND device_id = 'b-phone'").get(b.userId) as { token: string } | undefined;
    const job = db.prepare("SELECT body FROM push_jobs WHERE id = 'pupgrade1'").get() as { body: string } | undefined;
    db.close();
    for (const v of ['0001-instructions', '0004-core', '0005-push', '0006-wallet']) assert.ok(versions.includes(v), `schema_migrations: ${versions.join(', ')}`);
    assert.equal(device?.token, 'upgrade-token');
    assert.equal(job?.body, 'queued before the upgrade');
    assert.equal(existsSync(pushFile), false, 'push.db is set aside');
    assert.equal(existsSync(`${pushFile}.imported`), true);
  } finally {
    rmSync(prev, { recursive: true, force: true });
    rmSync(dataDir, { recursive: true, force: true });
  }
});
