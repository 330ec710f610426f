import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, registerAndLogin, login, RawClient, api, type ServerProcess } from './harness.ts';

/**
 * `npm run backup` / `npm run restore` (src/ops/backup-cli.ts) against a running SQLite node:
 * the backup is taken while the node keeps committing, restored into a fresh data directory,
 * and a new node on it has the accounts and every message that was ACKed before the backup.
 */
const CLI = new URL('../src/ops/backup-cli.ts', import.meta.url).pathname;
const cli = (args: string[], dataDir: string) =>
  spawnSync(process.execPath, ['--import', 'tsx', CLI, ...args], { encoding: 'utf8', env: { ...process.env, MAGPIE_DATA_DIR: dataDir, MAGPIE_STORE: 'sqlite' }, timeout: 60_000 });

/** The same, without blocking this process's event loop (its socket keeps sending meanwhile). */
const cliAsync = (args: string[], dataDir: string) =>
  new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
    const p = spawn(process.execPath, ['--import', 'tsx', CLI, ...args], { env: { ...process.env, MAGPIE_DATA_DIR: dataDir, MAGPIE_STORE: 'sqlite' } });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('close', (status) => resolve({ status, stdout, stderr }));
  });

describe('online SQLite backup and restore', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'magpie-backup-'));
  let srv: ServerProcess | undefined;
  let restored: ServerProcess | undefined;
  after(async () => {
    await srv?.stop();
    await restored?.stop();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('backs up a running node, restores into a new directory, and the new node has everything ACKed before', async () => {
    srv = await startServer({ env: { MAGPIE_USER_RATE: '2000', MAGPIE_USER_BURST: '2000' } });
    const a = await registerAndLogin(srv.url);
    const b = await registerAndLogin(srv.url);
    const { client } = await RawClient.connect(srv.wsUrl, a.token);
    let conv = '';
    for (let i = 0; i < 50; i++) conv = (await client.request({ type: 'send', clientMsgId: `b${i}`, to: b.userId, kind: 'text', body: { text: `before ${i}` } })).message.conv;
    writeFileSync(join(srv.dataDir, 'extra-file.txt'), 'kept');
    // Sends keep going while the backup runs.
    const during = (async () => {
      for (let i = 0; i < 50; i++) await client.request({ type: 'send', clientMsgId: `d${i}`, to: b.userId, kind: 'text', body: { text: `during ${i}` } });
    })();
    const dest = join(tmp, 'bk1');
    const r = await cliAsync(['backup', dest], srv.dataDir);
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.ok(out.databases.some((d: { file: string }) => d.file === 'magpie.db'));
    assert.ok(existsSync(join(srv.dataDir, 'magpie.search.db')), 'the node has its search index file');
    assert.ok(!existsSync(join(dest, 'magpie.search.db')), 'the search index (derived data) is not backed up');
    await during;
    client.close();
    // A second backup into the same (non-empty) directory is refused.
    const again = cli(['backup', dest], srv.dataDir);
    assert.equal(again.status, 1);
    assert.match(again.stderr, /not empty/);

    // Restore into a fresh directory and start a node on it.
    const fresh = join(tmp, 'restored');
    const rr = cli(['restore', dest], fresh);
    assert.equal(rr.status, 0, rr.stderr);
    assert.equal(readFileSync(join(fresh, 'extra-file.txt'), 'utf8'), 'kept');
    // Restoring over a directory with a database needs --force.
    const refused = cli(['restore', dest], fresh);
    assert.equal(refused.status, 1);
    assert.match(refused.stderr, /--force/);
    restored = await startServer({ dataDir: fresh });
    const a2 = await login(restored.url, a.username, 'dev2');
    // The restored node rebuilds its search index from the restored messages.
    const found = await api(restored.url, 'GET', `/api/search?q=${encodeURIComponent('before 4')}`, undefined, a2.token);
    assert.equal(found.status, 200, JSON.stringify(found.body));
    assert.ok((found.body.hits as { body?: unknown; text?: string }[]).length >= 1, JSON.stringify(found.body));
    const h = await api(restored.url, 'GET', `/api/conversations/${conv}/messages?after=0&limit=200`, undefined, a2.token);
    assert.equal(h.status, 200, JSON.stringify(h.body));
    const texts = (h.body.messages as { seq: number; body: { text: string } }[]).map((m) => m.body.text);
    for (let i = 0; i < 50; i++) assert.ok(texts.includes(`before ${i}`), `before ${i} restored`);
    // A consistent snapshot: whatever of the concurrent sends it holds is a gap-free prefix.
    const seqs = (h.body.messages as { seq: number }[]).map((m) => m.seq);
    assert.deepEqual(seqs, Array.from({ length: seqs.length }, (_, i) => i + 1));
  });

  it('refuses a directory that is not a backup, and a damaged database, changing nothing', () => {
    const notBackup = join(tmp, 'nothing');
    const target = join(tmp, 'untouched');
    let r = cli(['restore', notBackup], target);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /not a Magpie backup/);
    const damaged = join(tmp, 'damaged');
    rmSync(damaged, { recursive: true, force: true });
    spawnSync('mkdir', ['-p', damaged]);
    writeFileSync(join(damaged, 'magpie-backup.json'), JSON.stringify({ format: 'magpie-backup/1', createdAt: '', databases: [{ file: 'magpie.db', pages: 1, bytes: 1 }], files: 0 }));
    writeFileSync(join(damaged, 'magpie.db'), Buffer.concat([Buffer.from('SQLite format 3\0'), Buffer.alloc(4096, 7)]));
    r = cli(['restore', damaged], target);
    assert.equal(r.status, 1);
    assert.equal(existsSync(join(target, 'magpie.db')), false, 'nothing restored');
  });
});
