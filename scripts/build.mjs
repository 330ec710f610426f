#!/usr/bin/env node
// Production build: compiles packages/protocol, sdk and server (TypeScript -> dist/*.js with
// type declarations), the server's native SQLite extension (scripts/build-native.mjs, skipped
// with a warning without a C compiler), then the web client (scripts/build-web.mjs).
//   node scripts/build.mjs               build everything
//   node scripts/build.mjs --if-missing  build only what has no dist yet (npm start)
//   node scripts/build.mjs --if-stale    build what has no dist or sources newer than it (benchmarks)
import { cpSync, existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';

const root = new URL('..', import.meta.url).pathname;
const mode = process.argv[2] ?? '';
// Dependency order: sdk and server import the built protocol.
const packages = ['protocol', 'sdk', 'server'];

function newest(dir, t = 0) {
  for (const n of readdirSync(dir)) {
    const p = join(dir, n);
    const s = statSync(p);
    t = s.isDirectory() ? newest(p, t) : Math.max(t, s.mtimeMs);
  }
  return t;
}

let tscBin;
try {
  tscBin = join(createRequire(join(root, 'package.json')).resolve('typescript/package.json'), '..', 'bin/tsc');
} catch {
  tscBin = null;
}

for (const pkg of packages) {
  const dir = join(root, 'packages', pkg);
  const built = join(dir, 'dist/index.js');
  if (mode === '--if-missing' && existsSync(built)) continue;
  if (mode === '--if-stale' && existsSync(built) && newest(join(dir, 'src')) <= statSync(built).mtimeMs) continue;
  if (!tscBin) {
    console.error(`build: typescript is not installed (run \`npm install\`); cannot compile packages/${pkg}`);
    process.exit(1);
  }
  const t0 = Date.now();
  const r = spawnSync(process.execPath, [tscBin, '-p', join(dir, 'tsconfig.build.json')], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) {
    console.error(`build: compiling packages/${pkg} failed`);
    process.exit(r.status ?? 1);
  }
  // Static files that live beside the server's modules (the admin console's page) go beside the compiled ones.
  if (pkg === 'server') cpSync(join(dir, 'src/console/ui'), join(dir, 'dist/console/ui'), { recursive: true });
  console.log(`build: packages/${pkg} -> dist (${Date.now() - t0} ms)`);
}

// The native SQLite extension (an optimisation: build-native.mjs never fails the build).
spawnSync(process.execPath, [join(root, 'scripts/build-native.mjs')], { cwd: root, stdio: 'inherit' });

const web = spawnSync(process.execPath, [join(root, 'scripts/build-web.mjs'), ...(mode ? [mode] : [])], { cwd: root, stdio: 'inherit' });
process.exit(web.status ?? 1);
