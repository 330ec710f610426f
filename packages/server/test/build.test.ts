/**
 * The production build: `npm install` / `npm run build` compiles protocol, sdk and server to
 * dist/, `npm start` runs packages/server/dist/main.js without tsx, and the packages export
 * built code, so `import('@magpie/server')` works from plain Node.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ROOT = new URL('../../../', import.meta.url).pathname;
const PACKAGES = ['protocol', 'sdk', 'server'];

function newest(dir: string, t = 0): number {
  for (const n of readdirSync(dir)) {
    const p = join(dir, n);
    const s = statSync(p);
    t = s.isDirectory() ? newest(p, t) : Math.max(t, s.mtimeMs);
  }
  return t;
}

/** Compile again only when a source file is newer than its package's build (a dev checkout). */
function ensureBuilt(): void {
  for (const pkg of PACKAGES) {
    const dir = join(ROOT, 'packages', pkg);
    const built = join(dir, 'dist/index.js');
    if (existsSync(built) && newest(join(dir, 'src')) <= statSync(built).mtimeMs) continue;
    const tsc = join(ROOT, 'node_modules/typescript/bin/tsc');
    const r = spawnSync(process.execPath, [tsc, '-p', join(dir, 'tsconfig.build.json')], { cwd: ROOT, encoding: 'utf8' });
    assert.equal(r.status, 0, `tsc -p packages/${pkg}/tsconfig.build.json failed:\n${r.stdout}${r.stderr}`);
  }
}

// Plain Node: no tsx loader and no "magpie-source" condition (the test runner sets both).
const plainEnv = (): NodeJS.ProcessEnv => ({ ...process.env, NODE_OPTIONS: '' });

test('the packages export compiled code that plain Node imports', () => {
  ensureBuilt();
  const script = `
    const server = await import('@magpie/server');
    const protocol = await import('@magpie/protocol');
    const sdk = await import('@magpie/sdk');
    console.log(JSON.stringify({
      server: typeof server.createMagpieServer, loadConfig: typeof server.loadConfig,
      protocol: typeof protocol.decodeClientFrame, sdk: typeof sdk.MagpieClient,
      resolved: import.meta.resolve('@magpie/server'),
    }));`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: join(ROOT, 'packages/server'), env: plainEnv(), encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout.trim()) as Record<string, string>;
  assert.deepEqual({ ...out, resolved: undefined }, { server: 'function', loadConfig: 'function', protocol: 'function', sdk: 'function', resolved: undefined });
  assert.match(out.resolved!, /packages\/server\/dist\/index\.js$/);
});

test('npm start runs the compiled server: it serves the API with no TypeScript loader', async () => {
  ensureBuilt();
  const dataDir = mkdtempSync(join(tmpdir(), 'magpie-build-'));
  const proc = spawn(process.execPath, [join(ROOT, 'packages/server/dist/main.js')], {
    cwd: ROOT,
    env: { ...plainEnv(), MAGPIE_PORT: '0', MAGPIE_HOST: '127.0.0.1', MAGPIE_DATA_DIR: dataDir, MAGPIE_LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  try {
    const url = await new Promise<string>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('compiled server did not start in 20 s')), 20_000);
      let out = '';
      proc.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /"url":"(http:\/\/[^"]+)"/.exec(out);
        if (m) {
          clearTimeout(t);
          resolve(m[1]!);
        }
      });
      proc.on('exit', (code) => reject(new Error(`compiled server exited with ${code}`)));
    });
    const res = await fetch(`${url}/api/register`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'builduser', password: 'a long and unusual passphrase 7' }) });
    assert.equal(res.status, 201, await res.text());
  } finally {
    proc.kill('SIGTERM');
    await new Promise((r) => proc.once('exit', r));
    rmSync(dataDir, { recursive: true, force: true });
  }
});
