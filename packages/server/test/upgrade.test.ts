/**
 * Upgrade in place: the server of the previous release fills a database, this server starts
 * on it, migrates it (db/migrations) and finds every row. The previous release is the last
 * commit before versioned migrations (no release tags exist yet); its sources come from git
 * and run through tsx beside this checkout, sharing its node_modules.
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
/** The previous release: the commit before versioned migrations. */
const PREVIOUS = '5a2d051';
const ADMIN = 'upgrade-test-admin-token-0123456789';

function previousAvailable(): string | null {
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
function checkoutPrevious(): string {
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

test(`a database written by the previous release (${PREVIOUS}) upgrades in place with every row`, async (t) => {
  const skip = previousAvailable();
  if (skip) return t.skip(skip);
  const prev = checkoutPrevious();
  const dataDir = mkdtempSync(join(tmpdir(), 'magpie-upgrade-data-'));
  try {
    // 1. The previous server writes users, messages, read state and an instruction.
    const old = fork(join(prev, 'packages/server/src/main.ts'), [], {
      cwd: prev,
      execArgv: ['--import', 'tsx'],
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
    client.ws.close();
    const issued = await api(oldUrl, 'POST', '/api/admin/instructions', { userId: b.userId, deviceId: 'b1', kind: 'clear_cache', issuedBy: 'upgrade test' }, ADMIN);
    assert.equal(issued.status, 201, JSON.stringify(issued.body));
    old.kill('SIGTERM');
    await new Promise((r) => old.once('exit', r));

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
    assert.ok(versions.includes('0001-instructions'), `schema_migrations: ${versions.join(', ')}`);
  } finally {
    rmSync(prev, { recursive: true, force: true });
    rmSync(dataDir, { recursive: true, force: true });
  }
});
