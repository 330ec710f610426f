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
import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
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

/** The previous release's packages in a temp dir, with node_modules linking to ours except @magpie/*. */
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
    old.kill('SIGTERM');
    await new Promise((r) => old.once('exit', r));
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
        history.messages.map((m: { seq: number; body: { text: string } }) => [m.seq, m.body.text]).sort((x: number[], y: number[]) => x[0]! - y[0]!),
        [1, 2, 3, 4, 5].map((i) => [i, `before upgrade ${i}`]),
      );
      const convs = await cb.request({ type: 'convs', since: 0 });
      const entry = convs.entries.find((e: { conv: string }) => e.conv === conv);
      assert.equal(entry?.unread, 5);
      // A message after the upgrade continues the same gap-free sequence.
      const after = await cb.request({ type: 'send', clientMsgId: 'after', to: a.userId, kind: 'text', body: { text: 'after upgrade' } });
      assert.equal(after.message.seq, 6);
      const gh = await cb.request({ type: 'history', conv: gconv, limit: 50 });
      assert.deepEqual(gh.messages.map((m: { body: { text?: string } }) => m.body.text).filter(Boolean), ['group before upgrade']);
      const gafter = await cb.request({ type: 'send', clientMsgId: 'g2', conv: gconv, kind: 'text', body: { text: 'group after upgrade' } });
      assert.equal(gafter.message.seq, gh.messages.length + 1);
      cb.ws.close();
      const audit = await api(srv.url, 'GET', `/api/admin/instructions?userId=${b.userId}`, undefined, ADMIN);
      assert.equal(audit.status, 200);
      assert.deepEqual(audit.body.instructions.map((i: { id: string; kind: string }) => [i.id, i.kind]), [[issued.body.instruction.id, 'clear_cache']]);
    } finally {
      await srv.kill();
    }
    // 3. The database records its schema version.
    const db = new Database(join(dataDir, 'magpie.db'), { readonly: true });
    const versions = (db.prepare('SELECT name FROM schema_migrations ORDER BY name').all() as { name: string }[]).map((r) => r.name);
    db.close();
    assert.ok(versions.includes('0001-instructions') && versions.includes('0004-core'), `schema_migrations: ${versions.join(', ')}`);
  } finally {
    rmSync(prev, { recursive: true, force: true });
    rmSync(dataDir, { recursive: true, force: true });
  }
});
